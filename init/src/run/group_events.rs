//! The driver's glue for service groups (kept out of run.rs): setting them up, turning a
//! main process's end and `cgroup.events` into `OomKilled` and `GroupEmpty`, and closing
//! the log pipes of an instance whose group is gone.
#![forbid(unsafe_code)]

use super::{Driver, Mode};
use crate::groups::Groups;
use crate::log::Level;
use crate::sys::cgroup;
use supervisor::SvcId;
use supervisor::config::ApplianceConfig;
use supervisor::event::Event as SupEvent;
use supervisor::proto::SvcStatus;

impl Driver {
    /// Sets up the cgroup tree for the services of `cfg` and says once what it got.
    pub(super) fn start_groups(&mut self, cfg: &ApplianceConfig) {
        if self.mode == Mode::Pid1
            && let Err(e) = crate::sys::spawn::protect_from_oom()
        {
            self.log(
                Level::Info,
                &format!(
                    "cannot set keel's oom_score_adj to -1000: {e}; the OOM killer may pick PID 1"
                ),
            );
        }
        let tree = match self.mode {
            Mode::Pid1 => cgroup::setup_pid1(),
            Mode::Supervise if !self.want_cgroups => Err("--no-cgroups".to_string()),
            Mode::Supervise if !nix::unistd::geteuid().is_root() => {
                Err("keel supervise is not running as root".to_string())
            }
            Mode::Supervise => cgroup::setup_supervise(),
        };
        let services: Vec<_> = cfg
            .services
            .iter()
            .map(|s| (s.name.clone(), s.limits.clone()))
            .collect();
        let (groups, notes) = Groups::new(tree, &services);
        for n in notes {
            self.log(Level::Info, &n);
        }
        self.groups = groups;
    }

    /// `svc`'s main process was reaped (its `Exited` follows): an OOM kill in its group
    /// is reported first, then `GroupEmpty` if nothing of it is left.
    pub(super) fn main_exited(&mut self, svc: SvcId) {
        let (oom, empty) = self.groups.main_exited(svc);
        if let Some(limit) = oom {
            self.sup_event(SupEvent::OomKilled { svc, limit });
        }
        if empty {
            self.group_gone(svc);
        }
    }

    /// Carries out `ReleaseGroup` and says what moved where.
    pub(super) fn release_group(&mut self, svc: SvcId) {
        let name = self
            .sup
            .as_ref()
            .and_then(|s| s.config(svc))
            .map(|c| c.name.clone())
            .unwrap_or_default();
        match self.groups.release(svc) {
            Ok((moved, _)) if moved.is_empty() => {}
            Ok((moved, to)) => {
                let pids: Vec<String> = moved.iter().map(|p| p.to_string()).collect();
                self.log(
                    Level::Info,
                    &format!(
                        "{name} left {} process(es) running (pids {}); released to {to} \
                         (leftovers = \"release\"): they run on until they end or keel shuts down",
                        moved.len(),
                        pids.join(" ")
                    ),
                );
            }
            // The core kills the group at its stop timeout if anything is left.
            Err(e) => self.log(Level::Info, &format!("{name}: {e}")),
        }
    }

    /// A watched group's cgroup.events changed: `GroupEmpty` once it is empty.
    pub(super) fn check_group(&mut self, svc: SvcId) {
        if self.groups.check(svc) {
            self.group_gone(svc);
        }
    }

    /// Status rows get memory.current and pids.current of their groups, and a reply
    /// about one service the processes in its group (`keelctl status NAME`).
    pub(super) fn fill_usage(&self, rows: &mut [SvcStatus]) {
        let one = rows.len() == 1;
        for r in rows {
            let Some(svc) = self.sup.as_ref().and_then(|s| s.find(&r.name)) else {
                continue;
            };
            let u = self.groups.usage(svc);
            r.memory = u.memory;
            r.pids = u.pids;
            if one {
                r.procs = self.groups.pids(svc);
            }
        }
    }

    /// Nothing of `svc`'s instance is left: what its log pipes still hold is read, the
    /// pipes are closed (a descendant that kept one open is gone too), and the core told.
    /// Without cgroups "empty" only means the main process exited: a forked daemon may
    /// still write, so its pipes stay until their EOF, as before.
    fn group_gone(&mut self, svc: SvcId) {
        if self.groups.enabled() {
            self.read_pipes_of(svc);
            self.pipes.retain(|(s, _)| *s != svc);
        }
        self.sup_event(SupEvent::GroupEmpty(svc));
    }
}

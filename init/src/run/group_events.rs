//! The driver's glue for service groups: setting them up, carrying out the core's signals
//! to processes and groups, turning a main process's end and `cgroup.events` into
//! `OomKilled` and `GroupEmpty`, and closing the log pipes of an instance whose group is
//! gone. Free functions over `Groups` and `Services`; they return the core's events in the
//! order they must be handled.
#![forbid(unsafe_code)]

use super::host::Host;
use super::services::Services;
use crate::groups::Groups;
use crate::log::Level;
use appliance::ApplianceConfig;
use supervisor::SvcId;
use supervisor::core::Supervisor;
use supervisor::event::{Action as SupAction, Event as SupEvent};
use supervisor::proto::SvcStatus;

/// The cgroup tree for the services of `cfg`, saying once what it got.
pub fn start_groups(cfg: &ApplianceConfig, host: Host) -> Groups {
    let services: Vec<_> = cfg
        .services
        .iter()
        .map(|s| (s.name.clone(), s.limits.clone()))
        .collect();
    let (groups, notes) = Groups::new(host.cgroup_tree(), &services);
    for n in notes {
        host.log(Level::Info, &n);
    }
    groups
}

/// `svc`'s main process was reaped (its `Exited` follows): what its pipes still hold
/// (its last words come before the note that it exited), an OOM kill in its group, then
/// `GroupEmpty` if nothing of it is left.
pub fn main_ended(groups: &mut Groups, svcs: &mut Services, svc: SvcId) -> Vec<SupEvent> {
    let mut out = svcs.read_pipes_of(svc);
    out.extend(main_exited(groups, svcs, svc));
    out
}

/// An OOM kill in `svc`'s group, then `GroupEmpty` if nothing of it is left.
fn main_exited(groups: &mut Groups, svcs: &mut Services, svc: SvcId) -> Vec<SupEvent> {
    let (oom, empty) = groups.main_exited(svc);
    let mut out = Vec::new();
    if let Some(limit) = oom {
        out.push(SupEvent::OomKilled { svc, limit });
    }
    if empty {
        out.extend(group_gone(groups, svcs, svc));
    }
    out
}

/// Carries out the core's signals: `Kill` to a pid, `SignalGroup` and `KillGroup` to a
/// service's group, `ReleaseGroup`; a failure is a log line. Any other action is not
/// this room's and is dropped.
pub fn carry_out(groups: &mut Groups, sup: Option<&Supervisor>, a: SupAction, host: Host) {
    let failed = match a {
        SupAction::Kill { pid, sig } => crate::sys::kill(pid.0, sig.0)
            .err()
            .map(|e| (Level::Debug, format!("kill {pid} {sig}: {e}"))),
        SupAction::SignalGroup { svc, pid, sig } => groups
            .signal(svc, pid, sig)
            .err()
            .map(|e| (Level::Debug, e)),
        SupAction::KillGroup { svc, pid } => groups.kill(svc, pid).err().map(|e| (Level::Info, e)),
        SupAction::ReleaseGroup { svc } => {
            release_group(groups, sup, svc, host);
            None
        }
        _ => None,
    };
    if let Some((level, msg)) = failed {
        host.log(level, &msg);
    }
}

/// Carries out `ReleaseGroup` and says what moved where; the group's emptiness comes as
/// for any watched group (cgroup.events).
fn release_group(groups: &mut Groups, sup: Option<&Supervisor>, svc: SvcId, host: Host) {
    let name = sup
        .and_then(|s| s.config(svc))
        .map(|c| c.name.clone())
        .unwrap_or_default();
    match groups.release(svc) {
        Ok((moved, _)) if moved.is_empty() => {}
        Ok((moved, to)) => {
            let pids: Vec<String> = moved.iter().map(|p| p.to_string()).collect();
            host.log(
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
        Err(e) => host.log(Level::Info, &format!("{name}: {e}")),
    }
}

/// A watched group's cgroup.events changed: `GroupEmpty` once it is empty.
pub fn check_group(groups: &mut Groups, svcs: &mut Services, svc: SvcId) -> Vec<SupEvent> {
    if groups.check(svc) {
        group_gone(groups, svcs, svc)
    } else {
        Vec::new()
    }
}

/// Status rows get memory.current and pids.current of their groups, and a reply
/// about one service the processes in its group (`keelctl status NAME`).
pub fn fill_usage(groups: &Groups, sup: Option<&Supervisor>, rows: &mut [SvcStatus]) {
    let one = rows.len() == 1;
    for r in rows {
        let Some(svc) = sup.and_then(|s| s.find(&r.name)) else {
            continue;
        };
        let u = groups.usage(svc);
        r.memory = u.memory;
        r.pids = u.pids;
        if one {
            r.procs = groups.pids(svc);
        }
    }
}

/// Nothing of `svc`'s instance is left: what its log pipes still hold is read, the
/// pipes are closed (a descendant that kept one open is gone too), and the core told.
/// Without cgroups "empty" only means the main process exited: a forked daemon may
/// still write, so its pipes stay until their EOF, as before.
fn group_gone(groups: &Groups, svcs: &mut Services, svc: SvcId) -> Vec<SupEvent> {
    let mut out = Vec::new();
    if groups.enabled() {
        out = svcs.read_pipes_of(svc);
        svcs.close_pipes_of(svc);
    }
    out.push(SupEvent::GroupEmpty(svc));
    out
}

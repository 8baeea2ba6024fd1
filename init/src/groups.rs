//! The driver's side of service groups (docs/services.md, "Cgroups"): which group each
//! service has, what to report to the core about it, and how to carry out its
//! `SignalGroup` and `KillGroup` actions.
//!
//! With cgroups (PID 1, or `keel supervise` as root on a host with a writable cgroup2),
//! a service's group is `keel/<name>`; a main process's exit is followed by `GroupEmpty`
//! once `cgroup.events` says `populated 0` (at once when nothing is left). Without them,
//! `GroupEmpty` is reported right before the main process's `Exited`, and a stop signals
//! the main process only: keel's behaviour before cgroups, said once at start.
//!
//! Must hold no policy: when to signal or kill is the core's decision.
#![forbid(unsafe_code)]

use crate::sys::cgroup::{self, Group, Tree};
use appliance::Limits;
use appliance::limits::DEFAULT_PIDS_MAX;
use std::os::fd::{BorrowedFd, OwnedFd};
use supervisor::{Pid, Sig, SvcId};

/// One service's group and what the driver knows of it.
#[derive(Debug)]
struct Slot {
    name: String,
    limits: Limits,
    group: Option<Group>,
    /// Its main process runs (spawned, not reaped).
    main_alive: bool,
    /// The main process was reaped, the group not yet seen empty: poll its events.
    watching: bool,
    /// `oom_kill` of memory.events when the current instance started.
    oom_base: u64,
}

/// Every service's group, or none when cgroups are unavailable.
#[derive(Debug)]
pub struct Groups {
    tree: Option<Tree>,
    slots: Vec<Slot>,
    /// `keel/released.scope`, made when a service first releases processes.
    released: Option<Group>,
}

/// Memory and pids in use by a service's group, for `keelctl status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub memory: Option<u64>,
    pub pids: Option<u64>,
}

impl Groups {
    /// No groups (before the supervisor starts).
    pub fn none() -> Groups {
        Groups {
            tree: None,
            slots: Vec::new(),
            released: None,
        }
    }

    /// Groups for `services` (name and limits) under `tree`; the notes say what is
    /// (un)available, once.
    pub fn new(tree: Result<Tree, String>, services: &[(String, Limits)]) -> (Groups, Vec<String>) {
        let mut notes = Vec::new();
        let tree = match tree {
            Ok(t) => {
                notes.push(format!(
                    "service groups in {} (controllers: {})",
                    t.dir.display(),
                    if t.controllers.is_empty() {
                        "none, so no limits apply".to_string()
                    } else {
                        t.controllers.join(" ")
                    }
                ));
                Some(t)
            }
            Err(why) => {
                notes.push(format!(
                    "cgroups unavailable ({why}): a stop signals each service's main process only, \
                     and processes it left behind keep running; limits do not apply"
                ));
                None
            }
        };
        let slots = services
            .iter()
            .map(|(name, limits)| Slot {
                name: name.clone(),
                limits: limits.clone(),
                group: None,
                main_alive: false,
                watching: false,
                oom_base: 0,
            })
            .collect();
        (
            Groups {
                tree,
                slots,
                released: None,
            },
            notes,
        )
    }

    /// True when services run in their own cgroups.
    pub fn enabled(&self) -> bool {
        self.tree.is_some()
    }

    /// Before `svc` is spawned: its group made and its limits applied; the returned fd
    /// (cgroup.procs) goes to the child, which enters the group before exec. `Ok(None)`:
    /// no cgroups. An error is a reason not to start it.
    pub fn prepare(&mut self, svc: SvcId) -> Result<Option<OwnedFd>, String> {
        if let Some(w) = self
            .slots
            .get(svc.0)
            .and_then(|s| s.limits.workdir.as_deref())
            && !std::path::Path::new(w).is_dir()
        {
            return Err(format!(
                "its workdir {w} is not a directory; create it or change `workdir`"
            ));
        }
        let Some(tree) = &self.tree else {
            return Ok(None);
        };
        let Some(slot) = self.slots.get_mut(svc.0) else {
            return Ok(None);
        };
        if slot.group.is_none() {
            let g = Group::create(tree, &slot.name).map_err(|e| {
                format!(
                    "cannot create its group {}: {e}",
                    tree.dir.join(cgroup::dir_name(&slot.name)).display()
                )
            })?;
            slot.group = Some(g);
        }
        let Some(g) = &slot.group else {
            return Ok(None);
        };
        let has_pids = tree.controllers.iter().any(|c| c == "pids");
        for (file, value) in limit_files(&slot.limits, has_pids) {
            let controller = file.split('.').next().unwrap_or_default();
            if !tree.controllers.iter().any(|c| c == controller) {
                return Err(format!(
                    "its {} needs the {controller} controller, which {} does not offer",
                    file,
                    tree.dir.display()
                ));
            }
            g.set(file, &value)
                .map_err(|e| format!("cannot write {value} to {}/{file}: {e}", g.dir.display()))?;
        }
        slot.oom_base = g.read_key("memory.events", "oom_kill").unwrap_or(0);
        g.procs_fd()
            .map(Some)
            .map_err(|e| format!("cannot open {}/cgroup.procs: {e}", g.dir.display()))
    }

    /// `svc`'s main process runs.
    pub fn spawned(&mut self, svc: SvcId) {
        if let Some(s) = self.slots.get_mut(svc.0) {
            s.main_alive = true;
            s.watching = false;
        }
    }

    /// `svc`'s main process was reaped. Returns the memory_max of an OOM kill in its
    /// group since it started (0: no memory_max), and whether the group is empty now
    /// (always, without cgroups); otherwise the group is watched until it is.
    pub fn main_exited(&mut self, svc: SvcId) -> (Option<u64>, bool) {
        let Some(slot) = self.slots.get_mut(svc.0) else {
            return (None, true);
        };
        slot.main_alive = false;
        let Some(g) = &mut slot.group else {
            return (None, true);
        };
        let kills = g.read_key("memory.events", "oom_kill").unwrap_or(0);
        let oom = (kills > slot.oom_base).then(|| slot.limits.memory_max.unwrap_or(0));
        slot.oom_base = kills;
        // An unreadable cgroup.events counts as empty: waiting for ever would be worse.
        let empty = !g.populated().unwrap_or(false);
        slot.watching = !empty;
        (oom, empty)
    }

    /// The groups to poll (POLLPRI on cgroup.events).
    pub fn watched(&self) -> impl Iterator<Item = (SvcId, BorrowedFd<'_>)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let g = s.group.as_ref()?;
            s.watching.then(|| (SvcId(i), g.events_fd()))
        })
    }

    /// Re-reads a watched group; true (once) when it has become empty.
    pub fn check(&mut self, svc: SvcId) -> bool {
        let Some(slot) = self.slots.get_mut(svc.0) else {
            return false;
        };
        let Some(g) = &mut slot.group else {
            return false;
        };
        if !slot.watching || slot.main_alive {
            return false;
        }
        if g.populated().unwrap_or(false) {
            return false;
        }
        slot.watching = false;
        true
    }

    /// Carries out `SignalGroup`: every process of the group, or the main pid alone.
    pub fn signal(&self, svc: SvcId, pid: Option<Pid>, sig: Sig) -> Result<(), String> {
        match self.slots.get(svc.0).and_then(|s| s.group.as_ref()) {
            Some(g) => {
                g.signal(sig.0);
                Ok(())
            }
            None => match pid {
                Some(p) => crate::sys::kill(p.0, sig.0).map_err(|e| format!("kill {p} {sig}: {e}")),
                None => Ok(()),
            },
        }
    }

    /// Carries out `KillGroup`: cgroup.kill, or SIGKILL to the main pid alone.
    pub fn kill(&self, svc: SvcId, pid: Option<Pid>) -> Result<(), String> {
        match self.slots.get(svc.0).and_then(|s| s.group.as_ref()) {
            Some(g) => g
                .kill()
                .map_err(|e| format!("cannot write {}/cgroup.kill: {e}", g.dir.display())),
            None => self.signal(svc, pid, Sig::KILL),
        }
    }

    /// Carries out `ReleaseGroup`: every process left in `svc`'s group moves to
    /// `keel/released.scope` (made on first use). Returns the pids moved and where they
    /// went; without cgroups, nothing.
    pub fn release(&mut self, svc: SvcId) -> Result<(Vec<i32>, String), String> {
        let (Some(tree), Some(g)) = (
            &self.tree,
            self.slots.get(svc.0).and_then(|s| s.group.as_ref()),
        ) else {
            return Ok((Vec::new(), String::new()));
        };
        if self.released.is_none() {
            let r = Group::released(tree).map_err(|e| {
                format!(
                    "cannot create {}: {e}",
                    tree.dir.join(cgroup::RELEASED).display()
                )
            })?;
            self.released = Some(r);
        }
        let Some(to) = &self.released else {
            return Ok((Vec::new(), String::new()));
        };
        let moved = g.move_procs(to, 4).map_err(|e| {
            format!(
                "cannot move the processes of {} to {}: {e}",
                g.dir.display(),
                to.dir.display()
            )
        })?;
        Ok((moved, to.dir.display().to_string()))
    }

    /// The processes released from their services' groups (`keel/released.scope`).
    pub fn released_pids(&self) -> Vec<i32> {
        self.released.as_ref().map(Group::pids).unwrap_or_default()
    }

    /// The limits of `svc` as the config gave them.
    pub fn limits(&self, svc: SvcId) -> Option<&Limits> {
        self.slots.get(svc.0).map(|s| &s.limits)
    }

    /// memory.current and pids.current of `svc`'s group (None without cgroups).
    pub fn usage(&self, svc: SvcId) -> Usage {
        let Some(g) = self.slots.get(svc.0).and_then(|s| s.group.as_ref()) else {
            return Usage::default();
        };
        Usage {
            memory: g.read_u64("memory.current"),
            pids: g.read_u64("pids.current"),
        }
    }

    /// The processes in `svc`'s group now.
    pub fn pids(&self, svc: SvcId) -> Vec<i32> {
        self.slots
            .get(svc.0)
            .and_then(|s| s.group.as_ref())
            .map(Group::pids)
            .unwrap_or_default()
    }

    /// `keel supervise`'s end: ends what was released, removes the (empty) groups and
    /// the tree it made.
    pub fn cleanup(&mut self) {
        if let Some(r) = self.released.take() {
            let _ = r.kill();
            let _ = r.remove();
        }
        for s in &mut self.slots {
            if let Some(g) = s.group.take() {
                let _ = g.remove();
            }
        }
        if let Some(t) = &self.tree {
            cgroup::remove_tree(t);
        }
    }
}

/// The interface files a service's limits set, with their values. memory.oom.group goes
/// with memory_max: an OOM kill then takes the whole service, not one random process.
/// The resource numbers and values of a service's `rlimits`, for `SpawnSpec::rlimits`.
pub fn rlimits(l: &Limits) -> Vec<(i32, u64)> {
    use appliance::limits::Rlimit;
    l.rlimits
        .iter()
        .map(|&(r, v)| {
            let res = match r {
                Rlimit::Nofile => libc::RLIMIT_NOFILE,
                Rlimit::Core => libc::RLIMIT_CORE,
                Rlimit::Nproc => libc::RLIMIT_NPROC,
                Rlimit::Memlock => libc::RLIMIT_MEMLOCK,
                Rlimit::Stack => libc::RLIMIT_STACK,
                Rlimit::Fsize => libc::RLIMIT_FSIZE,
                Rlimit::As => libc::RLIMIT_AS,
                Rlimit::Cpu => libc::RLIMIT_CPU,
            };
            // The resource type is u32 on glibc and i32 on musl.
            #[allow(clippy::unnecessary_cast)]
            (res as i32, v)
        })
        .collect()
}

/// The default pids_max applies only where the pids controller is (`has_pids`); a limit
/// the config sets is required (an error when its controller is missing).
pub fn limit_files(l: &Limits, has_pids: bool) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if let Some(m) = l.memory_max {
        v.push(("memory.max", m.to_string()));
        v.push(("memory.oom.group", "1".to_string()));
    }
    match l.pids_max {
        Some(p) => v.push(("pids.max", p.to_string())),
        None if has_pids => v.push(("pids.max", DEFAULT_PIDS_MAX.to_string())),
        None => {}
    }
    if let Some(w) = l.cpu_weight {
        v.push(("cpu.weight", w.to_string()));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_become_interface_files() {
        let l = Limits {
            memory_max: Some(32 << 20),
            pids_max: Some(64),
            cpu_weight: Some(50),
            ..Limits::default()
        };
        assert_eq!(
            limit_files(&l, true),
            [
                ("memory.max", "33554432".to_string()),
                ("memory.oom.group", "1".to_string()),
                ("pids.max", "64".to_string()),
                ("cpu.weight", "50".to_string()),
            ]
        );
        assert_eq!(limit_files(&Limits::default(), false), []);
        assert_eq!(
            limit_files(&Limits::default(), true),
            [("pids.max", "512".to_string())]
        );
    }
}

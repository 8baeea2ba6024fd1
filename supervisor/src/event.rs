//! The closed sets of what can happen to the supervisor ([`Event`]) and what it asks the
//! driver to do ([`Action`]).
//!
//! Everything that can wake keel's loop is an `Event`; every effect on the world is an
//! `Action`. Must not grow methods that do IO: init/ turns actions into system calls.

use crate::proto::{Request, Response};
use crate::types::{Pid, PowerKind, Sig, SvcId, WaitStatus};
use appliance::Ready;
use std::fmt;

/// A control connection, numbered by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

/// Something the driver saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The driver carried out `Action::Spawn` for `svc` and the child is `pid`. It must
    /// report this (or `SpawnFailed`) before it reports anything else about that child.
    Spawned { svc: SvcId, pid: Pid },
    /// `Action::Spawn` failed before the program ran (fork, exec setup): `errno`.
    SpawnFailed { svc: SvcId, errno: i32 },
    /// The reaper collected `pid` (any child, services or orphans).
    Exited { pid: Pid, status: WaitStatus },
    /// Nothing of `svc`'s group is left (cgroup.events says `populated 0`, or, without
    /// cgroups, its main process was reaped: the driver then reports this just before that
    /// `Exited`). Reported at most once per instance, never before its `Spawned`.
    GroupEmpty(SvcId),
    /// The kernel's OOM killer killed a process of `svc`'s group (memory.events'
    /// `oom_kill` grew); `limit` is its memory_max in bytes. Reported before the `Exited`.
    OomKilled { svc: SvcId, limit: u64 },
    /// `svc` said READY=1 on its notify socket, or its TCP port answered.
    Ready(SvcId),
    /// `svc` wrote this to its stdout or stderr.
    Output { svc: SvcId, data: Vec<u8> },
    /// The time from `next_deadline` has come (timers due at `now` also fire on any event).
    Deadline,
    /// A decoded request on a control connection.
    Control(ConnId, Request),
    /// A control connection closed (stop following logs on it).
    Closed(ConnId),
    /// A signal, the power button or Ctrl-Alt-Del asked for this.
    Shutdown(PowerKind),
}

/// What the driver should start, as data (s6's cspawn).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnSpec {
    pub name: String,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub user: Option<String>,
    pub group: Option<String>,
    /// Capabilities to keep (`None`: leave them as root has them).
    pub capabilities: Option<Vec<String>>,
    /// stdin, stdout and stderr on the console tty instead of /dev/null and the log pipe.
    pub console: bool,
    /// How readiness is reported: `Notify` needs a NOTIFY_SOCKET, `Tcp` a probe.
    pub ready: Ready,
}

/// A line for the console log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// keel's own message, printed as `keel: TEXT`.
    Note(String),
    /// A line a service wrote, printed as `NAME: LINE`.
    Output {
        svc: SvcId,
        name: String,
        line: String,
    },
}

impl Action {
    /// The main process this action signals and with what: `Kill`, and `SignalGroup` or
    /// `KillGroup` (as SIGKILL) while the main process lives. The promise is the same for
    /// all three: the pid is a child the core spawned and has not seen exit.
    pub fn signals_pid(&self) -> Option<(Pid, Sig)> {
        match *self {
            Action::Kill { pid, sig } => Some((pid, sig)),
            Action::SignalGroup { pid, sig, .. } => pid.map(|p| (p, sig)),
            Action::KillGroup { pid, .. } => pid.map(|p| (p, Sig::KILL)),
            Action::Spawn(..)
            | Action::Reply(..)
            | Action::Log(_)
            | Action::Emergency { .. }
            | Action::ReleaseGroup { .. }
            | Action::Halt(_) => None,
        }
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Record::Note(t) => write!(f, "keel: {t}"),
            Record::Output { name, line, .. } => write!(f, "{name}: {line}"),
        }
    }
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start a process for `svc` and report `Event::Spawned` or `Event::SpawnFailed`.
    Spawn(SvcId, SpawnSpec),
    /// Send `sig` to `pid` (always a child the core spawned and has not seen exit).
    Kill { pid: Pid, sig: Sig },
    /// Send `sig` to every process in `svc`'s group; without cgroups, to its main `pid`
    /// (when it has one: `None` means the main process has exited, leaving the rest).
    SignalGroup {
        svc: SvcId,
        pid: Option<Pid>,
        sig: Sig,
    },
    /// End `svc`'s group at once (write `cgroup.kill`); without cgroups, SIGKILL to `pid`.
    KillGroup { svc: SvcId, pid: Option<Pid> },
    /// `svc`'s main process is gone and its leftovers are released: move every process
    /// left in its group out of it (`keel/released.scope`), then report `GroupEmpty` as
    /// for any watched group. Without cgroups there is nothing to move.
    ReleaseGroup { svc: SvcId },
    /// Send this on a control connection.
    Reply(ConnId, Response),
    /// Write this to the console log.
    Log(Record),
    /// A service with `on_give_up = "emergency"` gave up: open the emergency shell, saying
    /// which service and why.
    Emergency { svc: SvcId, why: String },
    /// Every service is stopped after a shutdown request: sync and do this.
    Halt(PowerKind),
}

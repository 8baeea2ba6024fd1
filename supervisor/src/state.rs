//! The state of one service: where it is ([`Phase`]) and where it should be ([`Target`]).
//!
//! Must hold no policy: the decisions are in core.rs, which matches on these types
//! exhaustively. Must stay bounded: nothing here grows with the number of restarts.
//!
//! # Phase × target
//!
//! Every service has a phase and a target (dinit's current and desired state). The core
//! also computes, after every event, whether each service may *keep* running: its target
//! is up, no restart of it was requested, keel is not shutting down, and everything it
//! needs is `Up` and may keep running too. A service that may not keep running is stopped
//! once everything that needs it has stopped (reverse order); a service starts once
//! everything it needs is `Up`, everything it is `after` has settled, and nothing that
//! needs it is still running from before (forward order).
//!
//! | phase      | target up                                              | target down                                  |
//! |------------|--------------------------------------------------------|----------------------------------------------|
//! | `Down`     | waiting to start: for a need, an `after`, or for its dependents to finish stopping | stopped; stays so until a start request |
//! | `Delayed`  | serving a restart backoff; then as `Down`               | never persists: lowering the target moves `Delayed` to `Down` at once |
//! | `Starting` | spawned, not yet ready (pid unknown until `Spawned`; a oneshot is `Starting` while it runs) | a stop arrived during start: it is signalled as soon as its pid is known and its dependents are down |
//! | `Up`       | running and ready (a finished oneshot is `Up` with no pid) | to be stopped once its dependents are down |
//! | `Stopping` | stopping for a cascade or a restart; starts again when down and allowed | stopping for good |
//! | `GaveUp`   | crash loop; retried at `retry_at` (retry-slowly) or only on request; what needs it waits and says why | given up and not wanted; stays until a start request |

use crate::restart::History;
use crate::types::{Mono, Pid, WaitStatus};

/// How a service ended during shutdown, for the shutdown report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopHow {
    /// It had no process when the shutdown began (or it was a finished oneshot).
    AlreadyDown,
    /// It exited by itself with this status: on its stop signal, or on its own.
    Exited(WaitStatus),
    /// It was sent SIGKILL after its `stop_timeout`, then ended with this status.
    Killed(WaitStatus),
    /// It survived SIGKILL for the kill grace and the shutdown went on without it.
    Abandoned,
}

/// The shutdown record of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    pub how: StopHow,
    /// When it was sent its stop signal (None when it was never signalled).
    pub signalled_at: Option<Mono>,
    /// When it was known to be down.
    pub at: Mono,
}

/// Where a service is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No process, not waiting for a timer.
    Down,
    /// No process; may start again at `until` (restart backoff).
    Delayed { until: Mono },
    /// Spawn requested; `pid` is None until the driver reports `Spawned`.
    Starting { pid: Option<Pid> },
    /// Ready. `pid` is None for a oneshot that exited 0.
    Up { pid: Option<Pid> },
    /// Signalled; SIGKILL at `kill_at`, or given up on if `killed` already.
    Stopping {
        pid: Pid,
        kill_at: Mono,
        killed: bool,
    },
    /// Too many failures; tried again at `retry_at` if set.
    GaveUp { retry_at: Option<Mono> },
}

impl Phase {
    /// The live process, if any.
    pub fn pid(self) -> Option<Pid> {
        match self {
            Phase::Starting { pid } | Phase::Up { pid } => pid,
            Phase::Stopping { pid, .. } => Some(pid),
            Phase::Down | Phase::Delayed { .. } | Phase::GaveUp { .. } => None,
        }
    }

    /// True when nothing of the service is left: no process, not up, no spawn pending.
    pub fn is_quiet(self) -> bool {
        match self {
            Phase::Down | Phase::Delayed { .. } | Phase::GaveUp { .. } => true,
            Phase::Starting { .. } | Phase::Up { .. } | Phase::Stopping { .. } => false,
        }
    }

    pub fn is_up(self) -> bool {
        matches!(self, Phase::Up { .. })
    }
}

/// What is left of a service's group (its cgroup, or what the driver stands in for one)
/// besides its main process. A service counts as stopped, may start again, and lets what
/// it needs stop, only when its phase has no process *and* its group is `Empty`.
///
/// | group      | meaning                                                                 |
/// |------------|-------------------------------------------------------------------------|
/// | `Empty`    | nothing of it runs (the driver reported `GroupEmpty`, or it never ran)  |
/// | `Busy`     | its processes run: set when its spawn is reported                       |
/// | `Draining` | its main process is gone but others of the group are not: they have been sent the stop signal; `cgroup.kill` at `kill_at` (already done if `killed`) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Empty,
    Busy,
    Draining { kill_at: Mono, killed: bool },
}

/// Where a service should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Up,
    Down,
}

impl Svc {
    /// True when nothing of the service is left: its phase is quiet and its group empty.
    pub fn is_quiet(&self) -> bool {
        self.phase.is_quiet() && self.group == Group::Empty
    }
}

/// One service's run-time state.
#[derive(Debug, Clone)]
pub struct Svc {
    pub phase: Phase,
    pub target: Target,
    /// A restart was requested: stop (with dependents), then start at once.
    pub restart_requested: bool,
    pub history: History,
    /// When it last became ready.
    pub up_since: Option<Mono>,
    pub last_exit: Option<WaitStatus>,
    /// Spawns so far.
    pub starts: u32,
    /// Why it is down, stopping, delayed or given up, in words for `keelctl status`.
    pub note: String,
    /// When its stop signal was last sent.
    pub signalled_at: Option<Mono>,
    /// How it ended during shutdown (None before a shutdown, or while it still runs).
    pub stopped: Option<Stopped>,
    /// When its current start was asked for (the spawn), while it is starting.
    pub started_at: Option<Mono>,
    /// It was stopped because it did not become ready within its start_timeout: its exit
    /// is a failure, not a requested stop.
    pub timed_out: bool,
    /// Its group, for "stopped means the whole group is gone".
    pub group: Group,
    /// The current instance had a process killed by the OOM killer at this memory.max
    /// (bytes), as the driver reported; cleared at the next spawn.
    pub oom: Option<u64>,
}

impl Svc {
    pub fn new() -> Svc {
        Svc {
            phase: Phase::Down,
            target: Target::Up,
            restart_requested: false,
            history: History::default(),
            up_since: None,
            last_exit: None,
            starts: 0,
            note: String::new(),
            signalled_at: None,
            stopped: None,
            started_at: None,
            timed_out: false,
            group: Group::Empty,
            oom: None,
        }
    }
}

impl Default for Svc {
    fn default() -> Self {
        Svc::new()
    }
}

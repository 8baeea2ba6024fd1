//! The supervisor's pure state machine: one step function from an [`Event`] and the time
//! to a list of [`Action`]s, plus the single deadline the driver should wake up at.
//!
//! Must not do IO, make system calls, read the clock or panic on any event sequence.
//! The driver (init/src/run/) owns the poll loop and carries out the actions.
//!
//! Each step first fires due timers (SIGKILL escalation), then applies the event, then
//! *settles*: it computes which services may keep running (see state.rs), stops what may
//! not in reverse topological order (a service is signalled only once everything that
//! needs it has no process left), then starts what can start in forward order, and
//! repeats until nothing changes. Defined outcomes of the cases that go wrong elsewhere:
//!
//! - A service fails: everything that transitively needs it is stopped in reverse order
//!   with its stop signal (SIGKILL after its `stop_timeout`); the failed one is started
//!   again after its backoff *and* once all of those are down; they start again in forward
//!   order once it is ready. A failure during a stop is not counted: we asked for it.
//! - A crash during a cascade: a dependent that exits while it is being (or about to be)
//!   stopped counts as stopped, not as failed; another failure joins the same cascade.
//! - A dependent that fails while waiting (in its own backoff) keeps its backoff, and also
//!   waits for what it needs to be ready.
//! - A dependency gives up: it stays `GaveUp`; what needs it stays down, and status says
//!   "waiting for NAME, which gave up". `on_give_up = "reboot"` shuts down in order and
//!   reboots; `"emergency"` emits [`Action::Emergency`]; `"retry-slowly"` retries after
//!   [`appliance::defaults::SLOW_RETRY`].
//! - Manual stop of a service stops everything that needs it too (they cannot run
//!   without it) and none of them comes back until started by request; manual start
//!   also starts what it needs; manual restart stops it and its dependents and brings
//!   all of them back. A manual start or restart forgets the failure history.
//! - A process that survives SIGKILL is waited for (logged after [`KILL_GRACE`]), since
//!   starting around it would break the order; during shutdown it is given up on after
//!   [`KILL_GRACE`] so a shutdown always completes.
//! - Shutdown: every target goes down, services stop in reverse order of needs *and*
//!   after, and [`Action::Halt`] is emitted once nothing is left.

use crate::event::{Action, ConnId, Event, Record, SpawnSpec};
use crate::log::{DEFAULT_RING_BYTES, LogRing};
use crate::proto::{Request, Response, SvcState, SvcStatus};
use crate::restart::{self, Decision, Rng};
use crate::state::{Group, Phase, StopHow, Stopped, Svc, Target};
use crate::timeline::{BootReport, BootRow};
use crate::types::{Mono, Pid, PowerKind, Sig, SvcId, WaitStatus};
use appliance::graph::Graph;
use appliance::{
    ApplianceConfig, Kind, Leftovers, OnGiveUp, Ready, Restart, ServiceConfig, defaults,
};
use std::time::Duration;

/// How long a process may survive SIGKILL before keel stops waiting for it.
pub const KILL_GRACE: Duration = Duration::from_secs(5);
/// A deadline that never comes (a process that survived SIGKILL outside shutdown).
const NEVER: Mono = Mono(u64::MAX);
/// At most this many connections may follow logs at once.
pub const MAX_FOLLOWERS: usize = 16;
/// At most this many `wait` requests may be pending at once.
pub const MAX_WAITERS: usize = 16;

/// The first start, readiness and end of one service, for the boot timeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct FirstRun {
    started: Option<Mono>,
    ready: Option<Mono>,
    finished: Option<Mono>,
}

/// One line of the shutdown report: how a service ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopRow {
    pub name: String,
    pub stop_signal: Sig,
    pub stop_timeout: Duration,
    /// None: still running when the report was made (the shutdown went on without it).
    pub how: Option<StopHow>,
    /// From its stop signal to its end, when it was signalled.
    pub took: Option<Duration>,
    /// When it ended.
    pub at: Option<Mono>,
}

/// The supervisor. Sized at construction; memory does not grow with restarts.
#[derive(Debug, Clone)]
pub struct Supervisor {
    cfg: Vec<ServiceConfig>,
    graph: Graph,
    svcs: Vec<Svc>,
    logs: Vec<LogRing>,
    followers: Vec<(ConnId, SvcId)>,
    rng: Rng,
    shutdown: Option<PowerKind>,
    halted: bool,
    /// Messages from construction (graph problems), emitted on the first step.
    pending: Vec<String>,
    /// Per service, its first run (bounded: one entry per service).
    first: Vec<FirstRun>,
    /// When /init started, if the driver said (PID 1).
    init_at: Option<Mono>,
    /// When every service that could had been ready once.
    up_at: Option<Mono>,
    /// Pending `wait` requests: the connection and the services it waits for.
    waiters: Vec<(ConnId, Vec<SvcId>)>,
    /// The time of the last event, for how long things have waited in `status`.
    now: Mono,
}

impl Supervisor {
    /// A supervisor with every service wanted up. Jitter uses a fixed seed; the driver
    /// should prefer [`Supervisor::with_seed`] with a random one.
    pub fn new(config: &ApplianceConfig) -> Supervisor {
        Supervisor::with_seed(config, 0x6b65_656c)
    }

    /// As [`Supervisor::new`], with the seed for backoff jitter.
    pub fn with_seed(config: &ApplianceConfig, seed: u64) -> Supervisor {
        let (graph, errors) = Graph::build(&config.services);
        let n = config.services.len();
        let pending = errors
            .iter()
            .map(|e| format!("config problem ignored: {e:?}"))
            .collect();
        Supervisor {
            cfg: config.services.clone(),
            graph,
            svcs: (0..n).map(|_| Svc::new()).collect(),
            logs: (0..n).map(|_| LogRing::new(DEFAULT_RING_BYTES)).collect(),
            followers: Vec::new(),
            rng: Rng::new(seed),
            shutdown: None,
            halted: false,
            pending,
            first: vec![FirstRun::default(); n],
            init_at: None,
            up_at: None,
            waiters: Vec::new(),
            now: Mono(0),
        }
    }

    /// Tells the supervisor when /init started (CLOCK_MONOTONIC), for the boot timeline.
    pub fn set_init_time(&mut self, at: Mono) {
        self.init_at = Some(at);
    }

    /// The boot timeline so far (`keelctl boot`).
    pub fn boot_report(&self) -> BootReport {
        let names = |ids: &[SvcId]| -> Vec<String> {
            ids.iter().map(|d| self.name(*d).to_string()).collect()
        };
        BootReport {
            init_at: self.init_at,
            up_at: self.up_at,
            rows: self
                .first
                .iter()
                .enumerate()
                .map(|(i, f)| BootRow {
                    name: self.cfg[i].name.clone(),
                    oneshot: self.cfg[i].kind == Kind::Oneshot,
                    started: f.started,
                    ready: f.ready,
                    finished: f.finished,
                    needs: names(&self.graph.needs[i]),
                    after: names(&self.graph.after[i]),
                })
                .collect(),
        }
    }

    /// The service called `name`.
    pub fn find(&self, name: &str) -> Option<SvcId> {
        self.cfg.iter().position(|s| s.name == name).map(SvcId)
    }

    /// The config of `svc`.
    pub fn config(&self, svc: SvcId) -> Option<&ServiceConfig> {
        self.cfg.get(svc.0)
    }

    /// The run-time state of `svc`, for tests and the driver's diagnostics.
    pub fn state(&self, svc: SvcId) -> Option<&Svc> {
        self.svcs.get(svc.0)
    }

    /// True while `svc` has given up (a crash loop): the watchdog stops petting.
    pub fn gave_up(&self, svc: SvcId) -> bool {
        self.svcs
            .get(svc.0)
            .is_some_and(|s| matches!(s.phase, Phase::GaveUp { .. }))
    }

    /// The dependency graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// True once [`Action::Halt`] has been emitted.
    pub fn halted(&self) -> bool {
        self.halted
    }

    /// When the driver must call [`Supervisor::handle`] with [`Event::Deadline`] at the
    /// latest, if anything is timed.
    pub fn next_deadline(&self) -> Option<Mono> {
        let phases = self
            .svcs
            .iter()
            .zip(&self.cfg)
            .filter_map(|(s, c)| match s.phase {
                Phase::Delayed { until } => Some(until),
                Phase::Stopping { kill_at, .. } => Some(kill_at),
                Phase::GaveUp { retry_at } => retry_at,
                // fire_timers skips start deadlines during shutdown: so must this, or a
                // due one would wake the loop at once, for ever (found by the property
                // test: PID 1 would spin).
                Phase::Starting { pid: Some(_) } if self.shutdown.is_none() => start_deadline(s, c),
                Phase::Down | Phase::Starting { .. } | Phase::Up { .. } => None,
            });
        let groups = self.svcs.iter().filter_map(|s| match s.group {
            Group::Draining { kill_at, .. } => Some(kill_at),
            Group::Empty | Group::Busy => None,
        });
        phases.chain(groups).filter(|&t| t != NEVER).min()
    }

    /// The last `n` lines `svc` wrote (its log ring), oldest first.
    pub fn log_tail(&self, svc: SvcId, n: usize) -> Vec<String> {
        self.logs.get(svc.0).map_or_else(Vec::new, |r| r.tail(n))
    }

    /// How each service ended in the shutdown, in the order they ended (those still
    /// running or never recorded last). Empty before a shutdown.
    pub fn shutdown_report(&self) -> Vec<StopRow> {
        if self.shutdown.is_none() {
            return Vec::new();
        }
        let mut rows: Vec<StopRow> = self
            .cfg
            .iter()
            .zip(&self.svcs)
            .map(|(c, s)| StopRow {
                name: c.name.clone(),
                stop_signal: c.stop_signal,
                stop_timeout: c.stop_timeout,
                how: s.stopped.map(|st| st.how),
                took: s
                    .stopped
                    .and_then(|st| st.signalled_at.map(|t| st.at.since(t))),
                at: s.stopped.map(|st| st.at),
            })
            .collect();
        rows.sort_by_key(|r| r.at.map_or(u64::MAX, |m| m.0));
        rows
    }

    /// One row per service, in the order of the config.
    pub fn status(&self) -> Vec<SvcStatus> {
        (0..self.svcs.len())
            .map(|i| self.status_of(SvcId(i)))
            .collect()
    }

    /// Handles one event at time `now`, appending what to do to `out`.
    pub fn handle(&mut self, ev: Event, now: Mono, out: &mut Vec<Action>) {
        self.now = self.now.max(now);
        for p in self.pending.drain(..) {
            out.push(Action::Log(Record::Note(p)));
        }
        // The event is applied before due timers fire: it happened by `now`, and a child
        // reported as exited in the same wake-up as its stop deadline must not be sent
        // SIGKILL (its pid is reaped and may already belong to another process). Found by
        // the `core` fuzz target (supervisor/fuzz/artifacts/core/kill-after-reap).
        // A group reported empty while the core still holds its main pid comes just
        // before that pid's `Exited` in the same wake-up: timers wait for that event (they
        // fire on every event), or a stop deadline due now would SIGKILL a reaped pid.
        let fire = match ev {
            Event::GroupEmpty(s) => self.svcs.get(s.0).is_none_or(|v| v.phase.pid().is_none()),
            _ => true,
        };
        match ev {
            Event::Spawned { svc, pid } => self.on_spawned(svc, pid, now, out),
            Event::SpawnFailed { svc, errno } => self.on_spawn_failed(svc, errno, now, out),
            Event::Exited { pid, status } => self.on_exit(pid, status, now, out),
            Event::GroupEmpty(svc) => self.on_group_empty(svc, out),
            Event::OomKilled { svc, limit } => self.on_oom(svc, limit, out),
            Event::Ready(svc) => self.on_ready(svc, now, out),
            Event::Output { svc, data } => self.on_output(svc, &data, out),
            Event::Deadline => {}
            Event::Control(conn, req) => self.on_control(conn, req, now, out),
            Event::Closed(conn) => {
                self.followers.retain(|(c, _)| *c != conn);
                self.waiters.retain(|(c, _)| *c != conn);
            }
            Event::Shutdown(kind) => self.begin_shutdown(kind, now, out),
        }
        if fire {
            self.fire_timers(now, out);
        }
        self.settle(now, out);
        self.track_boot(now, out);
        self.answer_waiters(out);
    }

    /// Records first starts, readiness and ends, and says once when the boot is done:
    /// every service has been ready once or cannot come up without a request.
    fn track_boot(&mut self, now: Mono, out: &mut Vec<Action>) {
        if self.up_at.is_some() {
            return;
        }
        for (f, svc) in self.first.iter_mut().zip(&self.svcs) {
            if f.started.is_none() && svc.starts > 0 {
                f.started = Some(now);
            }
            if f.ready.is_none() && svc.up_since.is_some() {
                f.ready = svc.up_since;
            }
            if f.finished.is_none() && svc.last_exit.is_some() {
                f.finished = Some(now);
            }
        }
        if self.shutdown.is_some() {
            return;
        }
        let blocked = self.blocked();
        let done = self
            .first
            .iter()
            .zip(&blocked)
            .all(|(f, b)| f.ready.is_some() || *b);
        if !done || self.first.iter().all(|f| f.ready.is_none()) {
            return;
        }
        self.up_at = Some(now);
        let report = self.boot_report();
        let mut line = report.summary(None).unwrap_or_default();
        let down: Vec<&str> = self
            .first
            .iter()
            .enumerate()
            .filter(|(_, f)| f.ready.is_none())
            .map(|(i, _)| self.name(SvcId(i)))
            .collect();
        if !down.is_empty() {
            line.push_str(&format!("; not up: {}", down.join(", ")));
        }
        Self::note(out, line);
    }

    /// Answers the `wait` requests that can be answered now.
    fn answer_waiters(&mut self, out: &mut Vec<Action>) {
        if self.waiters.is_empty() {
            return;
        }
        let blocked = self.blocked();
        let mut i = 0;
        while i < self.waiters.len() {
            let (conn, ids) = &self.waiters[i];
            let reply = if ids.iter().all(|s| self.svcs[s.0].phase.is_up()) {
                let names: Vec<&str> = ids.iter().map(|s| self.name(*s)).collect();
                Some(Response::Ok(format!("{} ready", names.join(", "))))
            } else if self.shutdown.is_some() {
                Some(Response::Err("keel is shutting down".into()))
            } else {
                ids.iter().find(|s| blocked[s.0]).map(|s| {
                    let st = self.status_of(*s);
                    let why = if st.why.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", st.why)
                    };
                    Response::Err(format!(
                        "{} cannot become ready without a start request ({}{why})",
                        st.name, st.state
                    ))
                })
            };
            match reply {
                Some(r) => {
                    out.push(Action::Reply(*conn, r));
                    self.waiters.swap_remove(i);
                }
                None => i += 1,
            }
        }
    }

    fn name(&self, s: SvcId) -> &str {
        self.cfg.get(s.0).map_or("?", |c| c.name.as_str())
    }

    fn note(out: &mut Vec<Action>, text: String) {
        out.push(Action::Log(Record::Note(text)));
    }

    fn fire_timers(&mut self, now: Mono, out: &mut Vec<Action>) {
        for i in 0..self.svcs.len() {
            let (svc, c) = (&self.svcs[i], &self.cfg[i]);
            let Phase::Starting { pid: Some(pid) } = svc.phase else {
                continue;
            };
            if self.shutdown.is_some() || start_deadline(svc, c).is_none_or(|t| t > now) {
                continue;
            }
            let limit = c.start_timeout.unwrap_or_default();
            let what = if c.kind == Kind::Oneshot {
                "finish"
            } else {
                "become ready"
            };
            let name = c.name.clone();
            let sig = c.stop_signal;
            let (kill_at, killed) = if sig == Sig::KILL {
                (now.plus(KILL_GRACE), true)
            } else {
                (now.plus(c.stop_timeout), false)
            };
            Self::note(
                out,
                format!("{name} did not {what} within {limit:?} (start_timeout); stopping it"),
            );
            let svc = &mut self.svcs[i];
            svc.timed_out = true;
            svc.note = format!("did not {what} within {limit:?} (start_timeout)");
            svc.phase = Phase::Stopping {
                pid,
                kill_at,
                killed,
            };
            svc.signalled_at = Some(now);
            out.push(Self::stop_action(c.leftovers, SvcId(i), Some(pid), sig));
        }
        self.fire_group_timers(now, out);
        for i in 0..self.svcs.len() {
            let Phase::Stopping {
                pid,
                kill_at,
                killed,
            } = self.svcs[i].phase
            else {
                continue;
            };
            if kill_at > now {
                continue;
            }
            let name = self.name(SvcId(i)).to_string();
            if killed && self.shutdown.is_some() {
                Self::note(
                    out,
                    format!(
                        "{name} (pid {pid}) did not exit {KILL_GRACE:?} after SIGKILL; shutting down without it"
                    ),
                );
                self.svcs[i].phase = Phase::Down;
                // Its group with it: the last phase of shutdown kills what is left.
                self.svcs[i].group = Group::Empty;
                self.svcs[i].restart_requested = false;
                self.svcs[i].stopped = Some(Stopped {
                    how: StopHow::Abandoned,
                    signalled_at: self.svcs[i].signalled_at,
                    at: now,
                });
            } else if killed {
                // Outside shutdown keel keeps waiting: starting what it needs again, or a
                // second instance, while it lives would break the order guarantees.
                Self::note(
                    out,
                    format!(
                        "{name} (pid {pid}) did not exit {KILL_GRACE:?} after SIGKILL; still waiting for it"
                    ),
                );
                self.svcs[i].phase = Phase::Stopping {
                    pid,
                    kill_at: NEVER,
                    killed: true,
                };
            } else {
                let leftovers = self.cfg[i].leftovers;
                let whom = match leftovers {
                    Leftovers::Stop => "its group",
                    Leftovers::Release => "it",
                };
                Self::note(
                    out,
                    format!("{name} (pid {pid}) did not stop in time; sending SIGKILL to {whom}"),
                );
                out.push(Self::stop_action(leftovers, SvcId(i), Some(pid), Sig::KILL));
                self.svcs[i].phase = Phase::Stopping {
                    pid,
                    kill_at: now.plus(KILL_GRACE),
                    killed: true,
                };
            }
        }
    }

    fn on_spawned(&mut self, s: SvcId, pid: Pid, now: Mono, out: &mut Vec<Action>) {
        let Some(svc) = self.svcs.get_mut(s.0) else {
            return;
        };
        match svc.phase {
            Phase::Starting { pid: None } => {
                svc.group = Group::Busy;
                svc.oom = None;
                let started = self.cfg[s.0].ready == Ready::Started;
                svc.phase = if started {
                    Phase::Up { pid: Some(pid) }
                } else {
                    Phase::Starting { pid: Some(pid) }
                };
                if started {
                    svc.up_since = Some(now);
                }
            }
            Phase::Starting { pid: Some(_) }
            | Phase::Up { .. }
            | Phase::Down
            | Phase::Delayed { .. }
            | Phase::Stopping { .. }
            | Phase::GaveUp { .. } => {
                // The driver started a process the core did not ask for (a driver bug):
                // it has no place in the state, so it is killed rather than leaked.
                let name = self.name(s).to_string();
                Self::note(
                    out,
                    format!("unexpected spawn report for {name} (pid {pid}); killing it"),
                );
                out.push(Action::Kill {
                    pid,
                    sig: Sig::KILL,
                });
            }
        }
    }

    fn on_spawn_failed(&mut self, s: SvcId, errno: i32, now: Mono, out: &mut Vec<Action>) {
        let Some(svc) = self.svcs.get(s.0) else {
            return;
        };
        if svc.phase != (Phase::Starting { pid: None }) {
            return;
        }
        let name = self.name(s).to_string();
        Self::note(
            out,
            format!("cannot start {name}: spawn failed with errno {errno}"),
        );
        self.failed(
            s,
            None,
            format!("spawn failed with errno {errno}"),
            now,
            out,
        );
    }

    fn on_ready(&mut self, s: SvcId, now: Mono, out: &mut Vec<Action>) {
        let Some(svc) = self.svcs.get_mut(s.0) else {
            return;
        };
        let notify = matches!(self.cfg[s.0].ready, Ready::Notify | Ready::Tcp(_));
        if let Phase::Starting { pid: Some(pid) } = svc.phase
            && notify
        {
            svc.phase = Phase::Up { pid: Some(pid) };
            svc.up_since = Some(now);
            let name = self.name(s).to_string();
            Self::note(out, format!("{name} is ready"));
        }
    }

    fn on_output(&mut self, s: SvcId, data: &[u8], out: &mut Vec<Action>) {
        let Some(ring) = self.logs.get_mut(s.0) else {
            return;
        };
        let mut lines = Vec::new();
        ring.push(data, &mut lines);
        self.forward(s, lines, out);
    }

    fn forward(&self, s: SvcId, lines: Vec<String>, out: &mut Vec<Action>) {
        let name = self.name(s).to_string();
        for line in lines {
            for (conn, _) in self.followers.iter().filter(|(_, f)| *f == s) {
                out.push(Action::Reply(*conn, Response::Line(line.clone())));
            }
            out.push(Action::Log(Record::Output {
                svc: s,
                name: name.clone(),
                line,
            }));
        }
    }

    fn on_exit(&mut self, pid: Pid, status: WaitStatus, now: Mono, out: &mut Vec<Action>) {
        let Some(i) = self.svcs.iter().position(|s| s.phase.pid() == Some(pid)) else {
            Self::note(
                out,
                format!("reaped pid {pid} ({status}), which is not a service"),
            );
            return;
        };
        let s = SvcId(i);
        let mut rest = Vec::new();
        if let Some(ring) = self.logs.get_mut(i) {
            ring.flush(&mut rest);
        }
        self.forward(s, rest, out);
        let keep = self.keep();
        let name = self.name(s).to_string();
        let c = &self.cfg[i];
        let svc = &mut self.svcs[i];
        svc.last_exit = Some(status);
        if self.shutdown.is_some() && svc.phase.pid() == Some(pid) {
            let how = match svc.phase {
                Phase::Stopping { killed: true, .. } => StopHow::Killed(status),
                _ => StopHow::Exited(status),
            };
            svc.stopped = Some(Stopped {
                how,
                signalled_at: svc.signalled_at,
                at: now,
            });
        }
        let timed_out = std::mem::take(&mut svc.timed_out);
        let oneshot_done = matches!(svc.phase, Phase::Starting { .. })
            && c.kind == Kind::Oneshot
            && status.success()
            && keep[i];
        if svc.group == Group::Busy && !oneshot_done {
            // The rest of the group goes with its main process: on the stop signal already
            // sent (and its deadline) when it was stopping, else on one sent now. Released
            // leftovers are moved out of the group instead, whatever the phase.
            match svc.phase {
                // The driver says what it moved, if anything.
                _ if c.leftovers == Leftovers::Release => {
                    Self::drain(svc, s, c, c.stop_signal, now, out)
                }
                Phase::Stopping {
                    kill_at, killed, ..
                } => svc.group = Group::Draining { kill_at, killed },
                Phase::Down
                | Phase::Delayed { .. }
                | Phase::Starting { .. }
                | Phase::Up { .. }
                | Phase::GaveUp { .. } => {
                    Self::note(
                        out,
                        format!("{name}'s main process exited; stopping the rest of its group"),
                    );
                    Self::drain(svc, s, c, c.stop_signal, now, out);
                }
            }
        }
        let status_words = match svc.oom {
            Some(limit) => oom_words(limit),
            None => status.to_string(),
        };
        match svc.phase {
            Phase::Stopping { .. } if timed_out && keep[i] && self.shutdown.is_none() => {
                let reason = format!("{} and was stopped ({status})", svc.note);
                Self::note(
                    out,
                    format!("{name} stopped ({status}) after its start timed out"),
                );
                self.failed(s, None, reason, now, out);
            }
            Phase::Stopping { .. } => {
                svc.phase = Phase::Down;
                svc.restart_requested = false;
                Self::note(out, format!("{name} stopped ({status})"));
            }
            Phase::Starting { .. } if c.kind == Kind::Oneshot && status.success() && keep[i] => {
                svc.phase = Phase::Up { pid: None };
                svc.up_since = Some(now);
                svc.history.consecutive = 0;
                Self::note(out, format!("{name} finished"));
            }
            Phase::Starting { .. } | Phase::Up { .. } if !keep[i] => {
                // It was going to be stopped anyway (a cascade or a stop request is under
                // way): its exit counts as the stop, not as a failure.
                svc.phase = Phase::Down;
                svc.restart_requested = false;
                Self::note(
                    out,
                    format!("{name} exited ({status}) while it was to be stopped"),
                );
            }
            Phase::Starting { .. } | Phase::Up { .. } => {
                Self::note(out, format!("{name} exited ({status_words})"));
                self.failed(s, Some(status), status_words, now, out);
            }
            Phase::Down | Phase::Delayed { .. } | Phase::GaveUp { .. } => {}
        }
    }

    /// The action that sends a service its stop signal: the whole group gets it, or with
    /// released leftovers the main process alone.
    fn stop_action(leftovers: Leftovers, svc: SvcId, pid: Option<Pid>, sig: Sig) -> Action {
        if let (Leftovers::Release, Some(pid)) = (leftovers, pid) {
            Action::Kill { pid, sig }
        } else if sig == Sig::KILL {
            Action::KillGroup { svc, pid }
        } else {
            Action::SignalGroup { svc, pid, sig }
        }
    }

    /// Stops what is left of `s`'s group once its main process is gone, or moves it out
    /// of the group (`leftovers = "release"`; should the move leave anything, the group is
    /// killed at the stop timeout).
    fn drain(
        svc: &mut Svc,
        s: SvcId,
        c: &ServiceConfig,
        sig: Sig,
        now: Mono,
        out: &mut Vec<Action>,
    ) {
        if c.leftovers == Leftovers::Release {
            svc.group = Group::Draining {
                kill_at: now.plus(c.stop_timeout),
                killed: false,
            };
            out.push(Action::ReleaseGroup { svc: s });
            return;
        }
        let killed = sig == Sig::KILL;
        let kill_at = now.plus(if killed { KILL_GRACE } else { c.stop_timeout });
        svc.group = Group::Draining { kill_at, killed };
        out.push(Self::stop_action(c.leftovers, s, None, sig));
    }

    /// Groups that outlived their stop timeout get `cgroup.kill`; a group that survives
    /// even that is waited for (given up on during shutdown, so a shutdown completes).
    fn fire_group_timers(&mut self, now: Mono, out: &mut Vec<Action>) {
        for i in 0..self.svcs.len() {
            let Group::Draining { kill_at, killed } = self.svcs[i].group else {
                continue;
            };
            if kill_at > now {
                continue;
            }
            let name = self.name(SvcId(i)).to_string();
            let timeout = self.cfg[i].stop_timeout;
            let svc = &mut self.svcs[i];
            if !killed {
                let what = match self.cfg[i].leftovers {
                    Leftovers::Stop => "outlived it",
                    Leftovers::Release => "were still in its group, not released,",
                };
                Self::note(
                    out,
                    format!(
                        "processes of {name} {what} by {timeout:?} (stop_timeout); killing its group"
                    ),
                );
                svc.group = Group::Draining {
                    kill_at: now.plus(KILL_GRACE),
                    killed: true,
                };
                out.push(Action::KillGroup {
                    svc: SvcId(i),
                    pid: None,
                });
            } else if self.shutdown.is_some() {
                Self::note(
                    out,
                    format!(
                        "processes of {name} survived the group kill for {KILL_GRACE:?}; shutting down without them"
                    ),
                );
                svc.group = Group::Empty;
            } else {
                Self::note(
                    out,
                    format!(
                        "processes of {name} survived the group kill for {KILL_GRACE:?}; still waiting for them"
                    ),
                );
                svc.group = Group::Draining {
                    kill_at: NEVER,
                    killed: true,
                };
            }
        }
    }

    fn on_group_empty(&mut self, s: SvcId, out: &mut Vec<Action>) {
        let Some(svc) = self.svcs.get_mut(s.0) else {
            return;
        };
        let was = std::mem::replace(&mut svc.group, Group::Empty);
        if matches!(was, Group::Draining { .. }) && svc.phase.is_quiet() {
            let name = self.name(s).to_string();
            Self::note(out, format!("the last process of {name} is gone"));
        }
    }

    fn on_oom(&mut self, s: SvcId, limit: u64, out: &mut Vec<Action>) {
        let Some(svc) = self.svcs.get_mut(s.0) else {
            return;
        };
        svc.oom = Some(limit);
        let name = self.name(s).to_string();
        Self::note(out, format!("{name}: {}", oom_words(limit)));
    }

    /// `s` ended on its own (or could not be spawned): apply its restart policy.
    fn failed(
        &mut self,
        s: SvcId,
        status: Option<WaitStatus>,
        reason: String,
        now: Mono,
        out: &mut Vec<Action>,
    ) {
        let i = s.0;
        let c = &self.cfg[i];
        let name = c.name.clone();
        let svc = &mut self.svcs[i];
        let success = status.is_some_and(WaitStatus::success);
        let restart = match c.restart {
            Restart::Always => true,
            Restart::OnFailure => !success,
            Restart::Never => false,
        };
        if !restart {
            svc.phase = Phase::Down;
            svc.target = Target::Down;
            let word = match c.restart {
                Restart::Always => "always",
                Restart::OnFailure => "on-failure",
                Restart::Never => "never",
            };
            svc.note = format!("{reason}; restart = \"{word}\", so it stays down");
            return;
        }
        let ran_for = svc.up_since.map(|t| now.since(t));
        let was_up = matches!(svc.phase, Phase::Up { .. });
        let ran_for = if was_up { ran_for } else { None };
        match restart::decide(
            &c.backoff,
            &c.crash_loop,
            &mut svc.history,
            ran_for,
            now,
            &mut self.rng,
        ) {
            Decision::StartAt(until) => {
                svc.phase = Phase::Delayed { until };
                svc.note = format!("{reason}; restarting in {:?}", until.since(now));
                Self::note(out, format!("restarting {name} in {:?}", until.since(now)));
            }
            Decision::GiveUp => {
                let (limit, within) = (c.crash_loop.limit, c.crash_loop.within);
                let why = format!("{reason}; gave up after {limit} failures within {within:?}");
                match c.on_give_up {
                    OnGiveUp::RetrySlowly => {
                        svc.phase = Phase::GaveUp {
                            retry_at: Some(now.plus(defaults::SLOW_RETRY)),
                        };
                        svc.note = format!("{why}; retrying in {:?}", defaults::SLOW_RETRY);
                        Self::note(
                            out,
                            format!("giving up on {name} for {:?}: {why}", defaults::SLOW_RETRY),
                        );
                    }
                    OnGiveUp::Reboot => {
                        svc.phase = Phase::GaveUp { retry_at: None };
                        svc.note = format!("{why}; rebooting");
                        Self::note(out, format!("giving up on {name}: {why}; rebooting"));
                        self.begin_shutdown(PowerKind::Reboot, now, out);
                    }
                    OnGiveUp::Emergency => {
                        svc.phase = Phase::GaveUp { retry_at: None };
                        svc.note = format!("{why}; emergency shell");
                        Self::note(out, format!("giving up on {name}: {why}"));
                        out.push(Action::Emergency {
                            svc: s,
                            why: format!("service {name} {why}"),
                        });
                    }
                }
            }
        }
    }

    fn begin_shutdown(&mut self, kind: PowerKind, now: Mono, out: &mut Vec<Action>) {
        if self.shutdown.is_some() {
            return;
        }
        self.shutdown = Some(kind);
        Self::note(out, format!("stopping every service for {kind}"));
        for svc in &mut self.svcs {
            svc.target = Target::Down;
            svc.stopped = match svc.phase {
                Phase::Down
                | Phase::Delayed { .. }
                | Phase::GaveUp { .. }
                | Phase::Up { pid: None } => Some(Stopped {
                    how: StopHow::AlreadyDown,
                    signalled_at: None,
                    at: now,
                }),
                Phase::Starting { .. } | Phase::Up { pid: Some(_) } | Phase::Stopping { .. } => {
                    None
                }
            };
            svc.note = format!("stopped for {kind}");
            if let Group::Draining {
                kill_at: NEVER,
                killed,
            } = svc.group
            {
                svc.group = Group::Draining {
                    kill_at: now.plus(KILL_GRACE),
                    killed,
                };
            }
            if let Phase::Stopping {
                pid,
                kill_at: NEVER,
                killed,
            } = svc.phase
            {
                svc.phase = Phase::Stopping {
                    pid,
                    kill_at: now.plus(KILL_GRACE),
                    killed,
                };
            }
        }
    }

    fn on_control(&mut self, conn: ConnId, req: Request, now: Mono, out: &mut Vec<Action>) {
        let reply = match req {
            Request::Status(names) => match names.iter().find(|n| self.find(n).is_none()) {
                Some(n) => self.no_such(n),
                None if names.is_empty() => Response::Status(self.status()),
                None => Response::Status(
                    names
                        .iter()
                        .filter_map(|n| self.find(n))
                        .map(|s| self.status_of(s))
                        .collect(),
                ),
            },
            Request::Boot => Response::Boot(self.boot_report()),
            Request::Wait(names) => match names.iter().find(|n| self.find(n).is_none()) {
                Some(n) => self.no_such(n),
                None if self.waiters.len() >= MAX_WAITERS => Response::Err(format!(
                    "too many pending waits (at most {MAX_WAITERS}); retry later"
                )),
                None => {
                    let ids = names.iter().filter_map(|n| self.find(n)).collect();
                    // Answered at the end of this step, or when it can be.
                    self.waiters.push((conn, ids));
                    return;
                }
            },
            Request::Start(n) | Request::Stop(n) | Request::Restart(n)
                if self.find(&n).is_none() =>
            {
                self.no_such(&n)
            }
            Request::Logs { ref name, .. } if self.find(name).is_none() => self.no_such(name),
            Request::Start(_) | Request::Restart(_) | Request::PowerOff | Request::Reboot
                if self.shutdown.is_some() =>
            {
                Response::Err("keel is shutting down".into())
            }
            Request::Start(n) => {
                let s = self.find(&n).unwrap_or(SvcId(0));
                self.want(s);
                if self.svcs[s.0].phase.is_up() {
                    Response::Ok(format!("{n} is already up"))
                } else {
                    Response::Ok(format!("starting {n}"))
                }
            }
            Request::Restart(n) => {
                let s = self.find(&n).unwrap_or(SvcId(0));
                self.want(s);
                let svc = &mut self.svcs[s.0];
                match svc.phase {
                    Phase::Starting { .. } | Phase::Up { .. } | Phase::Stopping { .. } => {
                        svc.restart_requested = true;
                        svc.note = "restarting by request".into();
                    }
                    Phase::Down | Phase::Delayed { .. } | Phase::GaveUp { .. } => {}
                }
                Response::Ok(format!("restarting {n}"))
            }
            Request::Stop(n) => {
                let s = self.find(&n).unwrap_or(SvcId(0));
                let mut all = vec![s];
                all.extend(self.graph.dependents(s));
                for d in all {
                    let svc = &mut self.svcs[d.0];
                    if svc.target == Target::Up {
                        svc.target = Target::Down;
                        svc.restart_requested = false;
                        svc.note = if d == s {
                            "stopped by request".into()
                        } else {
                            format!("stopped because it needs {n}, which was stopped by request")
                        };
                    }
                }
                Response::Ok(format!("stopping {n}"))
            }
            Request::Logs {
                name,
                lines,
                follow,
            } => {
                let s = self.find(&name).unwrap_or(SvcId(0));
                if follow && self.followers.len() >= MAX_FOLLOWERS {
                    Response::Err(format!(
                        "too many log followers (at most {MAX_FOLLOWERS}); close one and retry"
                    ))
                } else {
                    if follow {
                        self.followers.push((conn, s));
                    }
                    let ring = &self.logs[s.0];
                    let n = lines.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
                    Response::Logs {
                        dropped: ring.dropped(),
                        lines: ring.tail(n),
                    }
                }
            }
            Request::PowerOff | Request::Reboot => {
                let kind = if req == Request::Reboot {
                    PowerKind::Reboot
                } else {
                    PowerKind::PowerOff
                };
                out.push(Action::Reply(
                    conn,
                    Response::Ok(format!("{kind} requested")),
                ));
                self.begin_shutdown(kind, now, out);
                return;
            }
        };
        out.push(Action::Reply(conn, reply));
    }

    fn no_such(&self, n: &str) -> Response {
        let names = self.cfg.iter().map(|c| c.name.as_str());
        let hint = match appliance::closest(n, names) {
            Some(c) => format!("; did you mean {c}?"),
            None => String::new(),
        };
        Response::Err(format!("no service named {n}{hint}"))
    }

    /// A start request: `s` and everything it needs are wanted again, failures forgotten.
    fn want(&mut self, s: SvcId) {
        let mut all = self.graph.requirements(s);
        all.push(s);
        for d in all {
            let svc = &mut self.svcs[d.0];
            svc.target = Target::Up;
            if let Phase::GaveUp { .. } | Phase::Delayed { .. } = svc.phase {
                svc.phase = Phase::Down;
            }
            if d == s {
                svc.history.reset();
            }
            if svc.is_quiet() {
                svc.note.clear();
            }
        }
    }

    /// Which services may keep running (see state.rs), computed in forward order.
    fn keep(&self) -> Vec<bool> {
        let mut keep = vec![false; self.svcs.len()];
        for &s in &self.graph.order {
            let svc = &self.svcs[s.0];
            keep[s.0] = svc.target == Target::Up
                && !svc.restart_requested
                && self.shutdown.is_none()
                && self.graph.needs[s.0]
                    .iter()
                    .all(|n| keep[n.0] && self.svcs[n.0].phase.is_up());
        }
        keep
    }

    /// Services that cannot come up without a request: not wanted, given up, or needing
    /// such a service. An `after` on them does not hold anything back.
    fn blocked(&self) -> Vec<bool> {
        let mut blocked = vec![false; self.svcs.len()];
        for &s in &self.graph.order {
            let svc = &self.svcs[s.0];
            blocked[s.0] = svc.target == Target::Down
                || matches!(svc.phase, Phase::GaveUp { retry_at: None })
                || self.graph.needs[s.0].iter().any(|n| blocked[n.0]);
        }
        blocked
    }

    fn settle(&mut self, now: Mono, out: &mut Vec<Action>) {
        // Each pass changes at least one phase; a bound keeps a bug from spinning PID 1.
        for _ in 0..(4 * self.svcs.len() + 4) {
            let keep = self.keep();
            let blocked = self.blocked();
            let mut changed = false;
            for idx in (0..self.graph.order.len()).rev() {
                let s = self.graph.order[idx];
                changed |= self.try_stop(s, &keep, now, out);
            }
            for idx in 0..self.graph.order.len() {
                let s = self.graph.order[idx];
                changed |= self.try_start(s, &keep, &blocked, now, out);
            }
            if !changed {
                break;
            }
        }
        if let Some(kind) = self.shutdown
            && !self.halted
            && self.svcs.iter().all(Svc::is_quiet)
        {
            self.halted = true;
            Self::note(out, "every service is stopped".into());
            out.push(Action::Halt(kind));
        }
    }

    /// Stops `s` if it may not keep running and nothing that must stop first is left.
    fn try_stop(&mut self, s: SvcId, keep: &[bool], now: Mono, out: &mut Vec<Action>) -> bool {
        let i = s.0;
        if keep[i] {
            return false;
        }
        let phase = self.svcs[i].phase;
        match phase {
            Phase::Delayed { .. } | Phase::GaveUp { .. } if self.svcs[i].target == Target::Down => {
                self.svcs[i].phase = if matches!(phase, Phase::GaveUp { .. }) {
                    Phase::GaveUp { retry_at: None }
                } else {
                    Phase::Down
                };
                return phase != self.svcs[i].phase;
            }
            Phase::Starting { pid: Some(_) } | Phase::Up { .. } => {}
            Phase::Down
            | Phase::Delayed { .. }
            | Phase::GaveUp { .. }
            | Phase::Starting { pid: None }
            | Phase::Stopping { .. } => {
                return false;
            }
        }
        let mut first: Vec<SvcId> = self.graph.needed_by[i].clone();
        if self.shutdown.is_some() {
            first.extend(self.graph.before[i].iter().copied());
        }
        if !first.iter().all(|d| self.svcs[d.0].is_quiet()) {
            return false;
        }
        let why = self.stop_reason(s);
        let c = &self.cfg[i];
        let name = c.name.clone();
        let svc = &mut self.svcs[i];
        if !svc.restart_requested && svc.target == Target::Up {
            svc.note = why.clone();
        }
        match phase.pid() {
            None if svc.group == Group::Busy => {
                // A finished oneshot that left processes running: they are its service.
                svc.phase = Phase::Down;
                svc.restart_requested = false;
                svc.signalled_at = Some(now);
                Self::note(out, format!("stopping what {name} left running ({why})"));
                Self::drain(svc, s, c, c.stop_signal, now, out);
            }
            None => {
                svc.phase = Phase::Down;
                svc.restart_requested = false;
                Self::note(out, format!("{name} is down ({why})"));
            }
            Some(pid) => {
                let sig = c.stop_signal;
                let (kill_at, killed) = if sig == Sig::KILL {
                    (now.plus(KILL_GRACE), true)
                } else {
                    (now.plus(c.stop_timeout), false)
                };
                svc.phase = Phase::Stopping {
                    pid,
                    kill_at,
                    killed,
                };
                svc.signalled_at = Some(now);
                Self::note(out, format!("stopping {name} ({why})"));
                out.push(Self::stop_action(c.leftovers, s, Some(pid), sig));
            }
        }
        true
    }

    fn stop_reason(&self, s: SvcId) -> String {
        let svc = &self.svcs[s.0];
        if self.shutdown.is_some() || svc.target == Target::Down {
            return svc.note.clone();
        }
        if svc.restart_requested {
            return "restarting by request".into();
        }
        // The first requirement, in forward order, that is the root of the trouble.
        for n in self.graph.requirements(s) {
            let need = &self.svcs[n.0];
            if !need.phase.is_up() || need.restart_requested || need.target == Target::Down {
                return format!("it needs {}, which {}", self.name(n), self.down_words(n));
            }
        }
        "stopping".into()
    }

    fn down_words(&self, n: SvcId) -> &'static str {
        let svc = &self.svcs[n.0];
        match svc.phase {
            Phase::GaveUp { .. } => "gave up",
            Phase::Delayed { .. } => "failed",
            Phase::Stopping { .. } if svc.restart_requested => "is restarting",
            Phase::Stopping { .. } => "is stopping",
            Phase::Up { .. } if svc.restart_requested => "is restarting",
            Phase::Up { .. } | Phase::Starting { .. } if svc.target == Target::Down => {
                "is stopping"
            }
            Phase::Up { .. } => "is going down",
            Phase::Starting { .. } => "is not ready yet",
            Phase::Down if svc.target == Target::Down => "is stopped",
            Phase::Down => "is down",
        }
    }

    /// Starts `s` if it is wanted, its timer is due, and its neighbours allow it.
    fn try_start(
        &mut self,
        s: SvcId,
        keep: &[bool],
        blocked: &[bool],
        now: Mono,
        out: &mut Vec<Action>,
    ) -> bool {
        let i = s.0;
        let svc = &self.svcs[i];
        if svc.target != Target::Up || self.shutdown.is_some() || svc.restart_requested {
            return false;
        }
        match svc.phase {
            Phase::Down => {}
            Phase::Delayed { until }
            | Phase::GaveUp {
                retry_at: Some(until),
            } if until <= now => {}
            Phase::Delayed { .. }
            | Phase::GaveUp { .. }
            | Phase::Starting { .. }
            | Phase::Up { .. }
            | Phase::Stopping { .. } => {
                return false;
            }
        }
        let needs_up = self.graph.needs[i]
            .iter()
            .all(|n| keep[n.0] && self.svcs[n.0].phase.is_up());
        let after_settled = self.graph.after[i].iter().all(|a| {
            let other = &self.svcs[a.0];
            blocked[a.0] || other.phase.is_up() || matches!(other.phase, Phase::GaveUp { .. })
        });
        let dependents_down = self.graph.needed_by[i]
            .iter()
            .all(|d| self.svcs[d.0].is_quiet());
        // Never a second instance beside what is left of the first.
        let group_gone = self.svcs[i].group == Group::Empty;
        if !(needs_up && after_settled && dependents_down && group_gone) {
            // A served backoff or slow retry turns into plain waiting, so no deadline in
            // the past stays armed.
            let svc = &mut self.svcs[i];
            let served = match svc.phase {
                Phase::Delayed { until }
                | Phase::GaveUp {
                    retry_at: Some(until),
                } => until <= now,
                Phase::Down
                | Phase::GaveUp { retry_at: None }
                | Phase::Starting { .. }
                | Phase::Up { .. }
                | Phase::Stopping { .. } => false,
            };
            if served {
                svc.phase = Phase::Down;
                return true;
            }
            return false;
        }
        let c = &self.cfg[i];
        let spec = SpawnSpec {
            name: c.name.clone(),
            argv: c.exec.clone(),
            env: c.env.clone(),
            user: c.user.clone(),
            group: c.group.clone(),
            capabilities: c.capabilities.clone(),
            console: c.console,
            ready: c.ready,
        };
        let name = c.name.clone();
        let svc = &mut self.svcs[i];
        svc.phase = Phase::Starting { pid: None };
        svc.starts = svc.starts.saturating_add(1);
        svc.up_since = None;
        svc.started_at = Some(now);
        svc.timed_out = false;
        svc.note.clear();
        Self::note(out, format!("starting {name}"));
        out.push(Action::Spawn(s, spec));
        true
    }

    fn status_of(&self, s: SvcId) -> SvcStatus {
        let svc = &self.svcs[s.0];
        let c = &self.cfg[s.0];
        let (state, why) = match svc.phase {
            _ if svc.phase.is_quiet() && svc.group != Group::Empty => (
                SvcState::Stopping,
                "its main process exited; waiting for the rest of its group to end".into(),
            ),
            Phase::Down if svc.target == Target::Up && self.shutdown.is_none() => {
                (SvcState::Waiting, self.waiting_reason(s))
            }
            Phase::Down => (SvcState::Down, svc.note.clone()),
            Phase::Delayed { .. } => (SvcState::Restarting, svc.note.clone()),
            Phase::Starting { .. } if c.kind == Kind::Oneshot => {
                (SvcState::Running, self.start_wait(svc, c, "running"))
            }
            Phase::Starting { .. } => {
                let why = match c.ready {
                    Ready::Notify => "waiting for READY=1".to_string(),
                    Ready::Tcp(p) => format!("waiting for tcp port {p}"),
                    Ready::Started | Ready::Exit => String::new(),
                };
                (SvcState::Starting, self.start_wait(svc, c, &why))
            }
            Phase::Up { pid: None } => (SvcState::Done, String::new()),
            Phase::Up { .. } => (SvcState::Up, String::new()),
            Phase::Stopping { .. } => (SvcState::Stopping, svc.note.clone()),
            Phase::GaveUp { .. } => (SvcState::GaveUp, svc.note.clone()),
        };
        SvcStatus {
            name: c.name.clone(),
            state,
            pid: svc.phase.pid().map(|p| p.0),
            ready_since: if svc.phase.is_up() {
                svc.up_since
            } else {
                None
            },
            restarts: svc.starts.saturating_sub(1),
            last_exit: svc.last_exit,
            why,
            memory: None,
            pids: None,
            procs: Vec::new(),
        }
    }

    /// `waiting for READY=1 for 12s of start_timeout 90s`: what a starting service does and
    /// how long it has, as `keelctl status` shows it.
    fn start_wait(&self, svc: &Svc, c: &ServiceConfig, doing: &str) -> String {
        let Some(at) = svc.started_at else {
            return doing.to_string();
        };
        let secs = self.now.since(at).as_secs();
        match c.start_timeout {
            Some(t) => format!("{doing} for {secs}s of start_timeout {t:?}"),
            None => format!("{doing} for {secs}s"),
        }
    }

    fn waiting_reason(&self, s: SvcId) -> String {
        for &n in &self.graph.needs[s.0] {
            if !self.svcs[n.0].phase.is_up() {
                return format!("waiting for {}, which {}", self.name(n), self.down_words(n));
            }
        }
        for &a in &self.graph.after[s.0] {
            if !self.svcs[a.0].phase.is_up()
                && !matches!(self.svcs[a.0].phase, Phase::GaveUp { .. })
            {
                return format!("waiting for {} to settle (after)", self.name(a));
            }
        }
        for &d in &self.graph.needed_by[s.0] {
            if !self.svcs[d.0].is_quiet() {
                return format!("waiting for {} to stop", self.name(d));
            }
        }
        String::new()
    }
}

/// What an OOM kill was, with the service's memory_max in bytes (0: it has none, so the
/// whole machine ran out).
fn oom_words(limit: u64) -> String {
    if limit == 0 {
        "killed by the OOM killer (no memory_max: the system ran out of memory)".into()
    } else {
        format!("killed by the OOM killer at memory.max {}", bytes(limit))
    }
}

/// Bytes as `keel check` reads them back: `32M`, `1G`, `4096`.
pub fn bytes(n: u64) -> String {
    for (unit, size) in [("G", 1u64 << 30), ("M", 1 << 20), ("K", 1 << 10)] {
        if n >= size && n % size == 0 {
            return format!("{}{unit}", n / size);
        }
    }
    n.to_string()
}

/// When a starting service's start_timeout runs out, if it has one.
fn start_deadline(svc: &Svc, c: &ServiceConfig) -> Option<Mono> {
    Some(svc.started_at?.plus(c.start_timeout?))
}

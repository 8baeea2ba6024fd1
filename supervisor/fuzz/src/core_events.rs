//! The `core` target: bytes decode to a small hand-built config and a sequence of driver
//! events, which a fake driver feeds into a `Supervisor`.
//!
//! The driver mostly keeps the contract (it answers every spawn with `Spawned` or
//! `SpawnFailed`, reaps only what it spawned, wakes at every deadline), but some ops break
//! it the way a buggy driver or a stray orphan would (reports for services that asked for
//! nothing, out-of-range ids, unknown pids), since the core must not panic on any event
//! sequence. Checked: no panic; a kill only ever targets a live child; nothing is spawned
//! after a shutdown request; a `Deadline` never leaves a deadline at or before its time
//! armed (the driver would spin); `Halt` comes at most once; and a final shutdown always
//! completes. Must stay cheap: inputs are capped so one run is far below a millisecond
//! per op.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Duration;
use appliance::{
    ApplianceConfig, Kind, Leftovers, OnGiveUp, Ready, Restart, ServiceConfig,
};
use supervisor::core::{KILL_GRACE, Supervisor};
use supervisor::event::{Action, ConnId, Event};
use supervisor::proto::Request;
use supervisor::{Mono, Pid, PowerKind, Sig, SvcId, WaitStatus};

/// `KEEL_FUZZ_TOLERATE=kill-after-reap` lets one known finding pass so fuzzing can look
/// past it: a stop timer due at the time of an exit report fires before the exit is
/// applied, so the core sends SIGKILL to the pid it is being told was reaped
/// (docs/fuzzing.md, supervisor/tests/fuzz_regressions.rs). Off by default.
fn tolerate_kill_after_reap() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        std::env::var("KEEL_FUZZ_TOLERATE")
            .is_ok_and(|v| v.split(',').any(|w| w == "kill-after-reap"))
    })
}

/// `KEEL_FUZZ_TRACE=1` prints every event and the actions it produced (for triage).
fn trace() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("KEEL_FUZZ_TRACE").is_some())
}

/// The most ops one input runs, so a long input cannot time out libFuzzer.
const MAX_OPS: usize = 400;

/// Reads the input front to back; past the end it yields zeros.
struct Bytes<'a> {
    data: &'a [u8],
}

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.data.split_at(n.min(self.data.len()));
        self.data = b;
        a
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Up to six services with lower-index edges (acyclic), and now and then an edge to any
/// name, a cycle or an unknown one, as only a hand-built config can have.
fn build_config(b: &mut Bytes<'_>) -> ApplianceConfig {
    let n = usize::from(b.u8() % 6) + 1;
    let mut services = Vec::with_capacity(n);
    for i in 0..n {
        let flags = b.u8();
        let more = b.u8();
        let name = format!("s{i}");
        let mut s = if flags & 1 != 0 {
            ServiceConfig::oneshot(&name, &["/x"])
        } else {
            ServiceConfig::new(&name, &["/x"])
        };
        if s.kind == Kind::Longrun {
            s.ready = match (flags >> 1) % 3 {
                0 => Ready::Started,
                1 => Ready::Notify,
                _ => Ready::Tcp(80),
            };
        }
        s.restart = match (flags >> 3) % 3 {
            0 => Restart::Always,
            1 => Restart::OnFailure,
            _ => Restart::Never,
        };
        s.on_give_up = match (flags >> 5) % 3 {
            0 => OnGiveUp::RetrySlowly,
            1 => OnGiveUp::Reboot,
            _ => OnGiveUp::Emergency,
        };
        s.console = flags & 0x80 != 0 && i == 0;
        if more & 1 != 0 {
            s.stop_signal = Sig::KILL;
        }
        s.stop_timeout = Duration::from_millis(u64::from(more >> 1) * 50);
        s.crash_loop.limit = u32::from(more % 4) + 1;
        s.backoff.initial = Duration::from_millis(u64::from(b.u8()) * 10);
        s.backoff.jitter_milli = u32::from(b.u8()) * 4;
        let needs = b.u8();
        let after = b.u8();
        for j in 0..i {
            if needs & (1 << j) != 0 {
                s.needs.push(format!("s{j}"));
            } else if after & (1 << j) != 0 {
                s.after.push(format!("s{j}"));
            }
        }
        // Bit 6 of `after` (bits 0-4 are edges): leftovers are released, not stopped.
        if after & 0x40 != 0 {
            s.leftovers = Leftovers::Release;
        }
        // Bit 7 of `after`: one edge to any name, forward, self or unknown.
        if after & 0x80 != 0 {
            let to = needs % 8;
            s.needs.push(format!("s{to}"));
        }
        services.push(s);
    }
    ApplianceConfig {
        services,
        ..ApplianceConfig::default()
    }
}

/// A request of any kind, naming a service, its neighbour out of range or nonsense.
fn request(b: &mut Bytes<'_>, n: usize) -> Request {
    let kind = b.u8();
    let sel = b.u8();
    let name = match sel % 4 {
        3 => "nosuch".to_string(),
        _ => format!("s{}", usize::from(sel >> 2) % (n + 1)),
    };
    match kind % 11 {
        0 => Request::Status(Vec::new()),
        8 => Request::Status(vec![name]),
        9 => Request::Wait(vec![name]),
        10 => Request::Boot,
        1 => Request::Start(name),
        2 => Request::Stop(name),
        3 => Request::Restart(name),
        4 => Request::Logs {
            name,
            lines: (kind & 0x10 != 0).then(|| u32::from(b.u8())),
            follow: kind & 0x20 != 0,
        },
        5 => Request::PowerOff,
        6 => Request::Reboot,
        _ => Request::Logs {
            name,
            lines: Some(0),
            follow: true,
        },
    }
}

struct Driver {
    sup: Supervisor,
    n: usize,
    now: Mono,
    next_pid: i32,
    /// Processes alive (spawned or reported, not yet reaped), with who they belong to.
    live: Vec<(Pid, Option<SvcId>)>,
    /// Pids that got a signal, in order, for "it exits when told".
    signalled: BTreeSet<Pid>,
    /// Services whose next spawn fails.
    fail_next: Vec<SvcId>,
    /// SIGKILL leaves the process alive (stuck in D state).
    sigkill_survivors: bool,
    shutdown_asked: bool,
    halts: usize,
    /// Deadline wakes in a row that left a deadline at or before their time.
    stale_wakes: usize,
}

impl Driver {
    fn handle(&mut self, ev: Event) {
        let is_deadline = ev == Event::Deadline;
        let mut queue = vec![ev];
        let mut rounds = 0;
        let mut acted = false;
        while let Some(ev) = queue.pop() {
            rounds += 1;
            assert!(rounds < 10_000, "spawn reports never stop coming");
            let live_before: Vec<Pid> = self.live.iter().map(|(p, _)| *p).collect();
            let mut out = Vec::new();
            let exited = match ev {
                Event::Exited { pid, .. } => Some(pid),
                _ => None,
            };
            let trace = trace().then(|| format!("{ev:?}"));
            self.sup.handle(ev, self.now, &mut out);
            if let Some(ev) = trace {
                eprintln!("{} {ev} -> {out:?}", self.now);
            }
            acted |= !out.is_empty();
            for a in out {
                match a {
                    Action::Spawn(s, _) => {
                        assert!(
                            !self.shutdown_asked && self.halts == 0,
                            "s{} spawned during shutdown",
                            s.0
                        );
                        assert!(s.0 < self.n, "spawn for unknown service {}", s.0);
                        if let Some(i) = self.fail_next.iter().position(|f| *f == s) {
                            self.fail_next.swap_remove(i);
                            queue.push(Event::SpawnFailed { svc: s, errno: 13 });
                        } else {
                            let pid = Pid(self.next_pid);
                            self.next_pid += 1;
                            self.live.push((pid, Some(s)));
                            queue.push(Event::Spawned { svc: s, pid });
                        }
                    }
                    Action::SignalGroup { pid: None, .. } => {}
                    // The move out of the group always works here.
                    Action::ReleaseGroup { svc } => queue.push(Event::GroupEmpty(svc)),
                    Action::KillGroup { svc, pid: None } => {
                        if !self.sigkill_survivors {
                            queue.push(Event::GroupEmpty(svc));
                        }
                    }
                    Action::Kill { .. } | Action::SignalGroup { .. } | Action::KillGroup { .. } => {
                        let Some((pid, sig)) = a.signals_pid() else {
                            continue;
                        };
                        let known_issue = tolerate_kill_after_reap() && exited == Some(pid);
                        assert!(
                            live_before.contains(&pid)
                                || self.live.iter().any(|(p, _)| *p == pid)
                                || known_issue,
                            "kill {sig} of pid {pid}, which is not a live child"
                        );
                        self.signalled.insert(pid);
                        if sig == Sig::KILL && !self.sigkill_survivors {
                            let owner = self.owner(pid);
                            self.reap(pid);
                            // LIFO: the group's end is handled before the exit.
                            queue.push(Event::Exited {
                                pid,
                                status: WaitStatus::Signaled(Sig::KILL),
                            });
                            if let Some(s) = owner {
                                queue.push(Event::GroupEmpty(s));
                            }
                        }
                    }
                    Action::Halt(_) => {
                        self.halts += 1;
                        assert_eq!(self.halts, 1, "halt emitted twice");
                    }
                    Action::Reply(..) | Action::Log(_) | Action::Emergency { .. } => {}
                }
            }
            assert_eq!(self.sup.status().len(), self.n);
        }
        // A deadline at or before the time just handled is fine once (a stop timer armed
        // by this very step, e.g. `stop_timeout = 0`): the driver wakes again at once. A
        // wake that does nothing and leaves it armed, or an endless run of them, means
        // the driver spins.
        let past = self.sup.next_deadline().is_some_and(|t| t <= self.now);
        if is_deadline && past {
            self.stale_wakes += 1;
            assert!(
                acted && self.stale_wakes <= 4 * self.n + 4,
                "deadline {:?} still armed after {} wakes at {} (the driver would spin)",
                self.sup.next_deadline(),
                self.stale_wakes,
                self.now
            );
        } else if is_deadline {
            self.stale_wakes = 0;
        }
    }

    fn reap(&mut self, pid: Pid) {
        self.live.retain(|(p, _)| *p != pid);
        self.signalled.remove(&pid);
    }

    /// The service whose main process `pid` is, if any.
    fn owner(&self, pid: Pid) -> Option<SvcId> {
        self.live.iter().find(|(p, _)| *p == pid).and_then(|(_, s)| *s)
    }

    /// `pid` exits; a service's group empties with its main process (the driver without
    /// cgroups reports that first).
    fn exit(&mut self, pid: Pid, status: WaitStatus) {
        let owner = self.owner(pid);
        self.reap(pid);
        if let Some(s) = owner {
            self.handle(Event::GroupEmpty(s));
        }
        self.handle(Event::Exited { pid, status });
    }

    /// Moves time forward by `ms`, waking at every deadline on the way.
    fn advance(&mut self, ms: u64) {
        let end = Mono(self.now.0.saturating_add(ms));
        let mut wakes = 0;
        while let Some(t) = self.sup.next_deadline() {
            if t > end {
                break;
            }
            wakes += 1;
            assert!(wakes < 10_000, "deadlines never stop coming");
            self.now = self.now.max(t);
            self.handle(Event::Deadline);
        }
        self.now = end;
    }

    fn op(&mut self, b: &mut Bytes<'_>) {
        let op = b.u8();
        let arg = b.u8();
        let svc = SvcId(usize::from(arg) % (self.n + 1));
        match op % 14 {
            0 | 1 => {
                if !self.live.is_empty() {
                    let (pid, _) = self.live[usize::from(arg) % self.live.len()];
                    let status = match b.u8() {
                        c @ 0..=199 => WaitStatus::Exited(i32::from(c % 4)),
                        s => WaitStatus::Signaled(Sig(s % 65)),
                    };
                    self.exit(pid, status);
                }
            }
            2 => {
                // Everything that was told to stop does.
                let told: Vec<Pid> = self.signalled.iter().copied().collect();
                for pid in told {
                    self.exit(pid, WaitStatus::Signaled(Sig::TERM));
                }
            }
            3 | 4 => self.handle(Event::Ready(svc)),
            5 | 6 => self.advance(u64::from(b.u16()) * 4),
            7 => {
                let req = request(b, self.n);
                if matches!(req, Request::PowerOff | Request::Reboot) {
                    self.shutdown_asked = true;
                }
                self.handle(Event::Control(ConnId(u64::from(arg % 20)), req));
            }
            8 => self.handle(Event::Closed(ConnId(u64::from(arg % 20)))),
            9 => {
                let len = usize::from(b.u8());
                let data = b.take(len).to_vec();
                self.handle(Event::Output { svc, data });
            }
            10 => self.fail_next.push(svc),
            11 => {
                // An orphan the reaper collected, or a pid the core never heard of.
                let pid = Pid(i32::from(b.u16() as i16));
                self.exit(pid, WaitStatus::Exited(0));
            }
            12 => {
                // A driver bug: a spawn report nobody asked for (or a stale one).
                let pid = Pid(self.next_pid);
                self.next_pid += 1;
                self.live.push((pid, None));
                if arg & 1 == 0 {
                    self.handle(Event::Spawned { svc, pid });
                } else {
                    self.handle(Event::SpawnFailed { svc, errno: 1 });
                }
            }
            _ => {
                let kind = match arg % 3 {
                    0 => PowerKind::Halt,
                    1 => PowerKind::PowerOff,
                    _ => PowerKind::Reboot,
                };
                self.shutdown_asked = true;
                self.handle(Event::Shutdown(kind));
            }
        }
    }

    /// Shuts down and lets every told process exit (or not, if SIGKILL cannot end it);
    /// the core must reach `Halt` within a bounded time.
    fn finish(&mut self) {
        if self.halts == 0 {
            self.shutdown_asked = true;
            self.handle(Event::Shutdown(PowerKind::PowerOff));
        }
        let mut rounds = 0;
        while self.halts == 0 {
            rounds += 1;
            assert!(
                rounds <= 200,
                "shutdown did not complete: {:?}",
                self.sup.status()
            );
            let told: Vec<Pid> = self.signalled.iter().copied().collect();
            if !told.is_empty() && !self.sigkill_survivors {
                for pid in told {
                    self.exit(pid, WaitStatus::Signaled(Sig::TERM));
                }
                continue;
            }
            let Some(t) = self.sup.next_deadline() else {
                panic!(
                    "shutdown stalled with no deadline and nothing to wait for: {:?}",
                    self.sup.status()
                );
            };
            // Only stop timers may run during a shutdown: a stop timeout (at most 6.35 s
            // here) or the grace after SIGKILL.
            let step = t.0.saturating_sub(self.now.0);
            assert!(
                step <= 6_350 + KILL_GRACE.as_millis() as u64,
                "shutdown waits {step} ms for a timer: {:?}",
                self.sup.status()
            );
            self.advance(step);
        }
    }
}

/// See the module docs.
pub fn core(data: &[u8]) {
    let mut b = Bytes { data };
    let cfg = build_config(&mut b);
    let n = cfg.services.len();
    let seed = u64::from(b.u16());
    let sigkill_survivors = b.u8() & 1 != 0;
    let mut d = Driver {
        sup: Supervisor::with_seed(&cfg, seed),
        n,
        now: Mono(0),
        next_pid: 100,
        live: Vec::new(),
        signalled: BTreeSet::new(),
        fail_next: Vec::new(),
        sigkill_survivors,
        shutdown_asked: false,
        halts: 0,
        stale_wakes: 0,
    };
    d.handle(Event::Deadline);
    let mut ops = 0;
    while !b.is_empty() && ops < MAX_OPS {
        d.op(&mut b);
        ops += 1;
    }
    d.finish();
}

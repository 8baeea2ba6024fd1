//! The PID 1 lifecycle as a pure state machine: the console shell, the emergency shell,
//! and the shutdown sequence.
//!
//! `Lifecycle::handle(event, now)` returns the actions to carry out; `run.rs` turns
//! signals, reaped children and deadlines into events and carries the actions out. No IO,
//! no clock, no system calls here: time comes in as `Mono`, so every timing rule is tested
//! in microseconds.
//!
//! States. `mode` is Console (normal) or Emergency (a fatal boot error or a panic), and
//! `shell` is Waiting (a start is due at a deadline), Starting (a spawn was asked for) or
//! Running (pid known). `shutdown` is None, or a kind with a phase:
//! - Console + Running: a person can use the machine; when the shell exits it is started
//!   again after `respawn_delay` (0 after a normal session, backing off up to 30 s when it
//!   keeps dying at once).
//! - Emergency + Running: when the emergency shell exits, the machine reboots; if it
//!   cannot even be spawned, the machine reboots at once (sync + reboot(2)).
//! - shutdown Term: every process got SIGTERM; when none is left, or after
//!   `TERM_GRACE_MS`, every process gets SIGKILL (phase Kill, `KILL_GRACE_MS`), then
//!   `Finish`. Nothing is respawned during a shutdown. A second request does not restart
//!   it; a poweroff request during a reboot or halt turns it into a poweroff.
#![forbid(unsafe_code)]

use crate::log::Level;
use crate::sys::clock::Mono;
use crate::sys::power::PowerKind;
use crate::sys::reap::{Ended, exit_code};
use nix::sys::signal::Signal;

/// How long processes get between SIGTERM and SIGKILL at shutdown.
pub const TERM_GRACE_MS: u64 = 3000;
/// How long to wait for processes to vanish after SIGKILL before going on anyway.
pub const KILL_GRACE_MS: u64 = 2000;
/// A shell that ran at least this long exited normally (a person typed `exit`).
pub const HEALTHY_RUN_MS: u64 = 5000;
/// First delay after a shell died at once; doubles per quick death up to `MAX_BACKOFF_MS`.
pub const FIRST_BACKOFF_MS: u64 = 500;
/// The longest wait before the next console shell.
pub const MAX_BACKOFF_MS: u64 = 30_000;
/// How long the emergency shell waits for a killed console shell to be reaped.
pub const REPLACE_WAIT_MS: u64 = 1000;

/// Which shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellKind {
    Console,
    Emergency,
}

impl ShellKind {
    fn name(self) -> &'static str {
        match self {
            ShellKind::Console => "console shell",
            ShellKind::Emergency => "emergency shell",
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A request to stop the machine (signal, applet, power button).
    Power(PowerKind),
    /// The shell asked for by `Action::SpawnShell` is running.
    Spawned { pid: i32 },
    /// The shell could not be started (the parent's error; exec errors come as `Exited`).
    SpawnFailed { error: String },
    /// A child ended (from the reaper).
    Exited { pid: i32, ended: Ended },
    /// The reaper found no children at all.
    NoChildren,
    /// Something keel cannot go on from (a panic): drop to the emergency shell.
    Emergency(String),
    /// Time passed; deadlines at or before `now` fire.
    Tick,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Log(Level, String),
    SpawnShell(ShellKind),
    /// Signal one process (a negative pid is a process group).
    Kill {
        pid: i32,
        sig: Signal,
    },
    /// Signal every process but PID 1.
    KillAll(Signal),
    /// Sync and reboot(2). The last action.
    Finish(PowerKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shell {
    Waiting {
        at: Mono,
    },
    Starting,
    Running {
        pid: i32,
        since: Mono,
    },
    /// The console shell was killed to make way for the emergency shell, which starts once
    /// the old one is reaped (or at `until`): while the old session leader lives, its exit
    /// would hang up the tty under the new shell.
    Replacing {
        old: i32,
        until: Mono,
    },
    /// No shell will be started again (shutdown, or the emergency shell ended).
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Term,
    Kill,
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shutdown {
    kind: PowerKind,
    phase: Phase,
    deadline: Mono,
}

/// The delay before the next console shell, given how long the last one ran and how many
/// quick deaths came in a row (including this one).
pub fn respawn_delay(ran_ms: u64, quick_deaths: u32) -> u64 {
    if ran_ms >= HEALTHY_RUN_MS || quick_deaths == 0 {
        return 0;
    }
    let shift = quick_deaths.saturating_sub(1).min(16);
    FIRST_BACKOFF_MS
        .saturating_mul(1 << shift)
        .min(MAX_BACKOFF_MS)
}

/// The lifecycle state machine. See the module docs for the states.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    tty: String,
    mode: ShellKind,
    shell: Shell,
    quick_deaths: u32,
    shutdown: Option<Shutdown>,
}

impl Lifecycle {
    /// Starts the lifecycle with the shell on `tty` (a /dev path). With `fatal`, the boot
    /// failed and the emergency shell comes instead of the console shell.
    pub fn new(tty: &str, fatal: Option<&str>, now: Mono) -> (Lifecycle, Vec<Action>) {
        let mut lc = Lifecycle {
            tty: tty.to_string(),
            mode: ShellKind::Console,
            shell: Shell::Waiting { at: now },
            quick_deaths: 0,
            shutdown: None,
        };
        let mut out = Vec::new();
        if let Some(what) = fatal {
            lc.enter_emergency(what, now, &mut out);
        } else {
            lc.shell = Shell::Starting;
            out.push(Action::SpawnShell(ShellKind::Console));
        }
        (lc, out)
    }

    /// The mode the machine is in.
    pub fn mode(&self) -> ShellKind {
        self.mode
    }

    /// Whether a shutdown is under way, and of which kind.
    pub fn shutting_down(&self) -> Option<PowerKind> {
        self.shutdown.map(|s| s.kind)
    }

    /// The earliest deadline, for the poll timeout.
    pub fn next_deadline(&self) -> Option<Mono> {
        let shell = match self.shell {
            Shell::Waiting { at } | Shell::Replacing { until: at, .. }
                if self.shutdown.is_none() =>
            {
                Some(at)
            }
            _ => None,
        };
        let stop = self
            .shutdown
            .filter(|s| s.phase != Phase::Finished)
            .map(|s| s.deadline);
        match (shell, stop) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Handles one event.
    pub fn handle(&mut self, ev: Event, now: Mono) -> Vec<Action> {
        let mut out = Vec::new();
        match ev {
            Event::Power(kind) => self.request(kind, now, &mut out),
            Event::Spawned { pid } => {
                if self.shell == Shell::Starting {
                    self.shell = Shell::Running { pid, since: now };
                    let name = self.mode.name();
                    out.push(Action::Log(Level::Info, format!("{name} on {}", self.tty)));
                }
            }
            Event::SpawnFailed { error } => self.spawn_failed(&error, now, &mut out),
            Event::Exited { pid, ended } => self.exited(pid, ended, now, &mut out),
            Event::NoChildren => {
                if let Some(s) = self.shutdown
                    && s.phase != Phase::Finished
                {
                    out.push(Action::Log(Level::Debug, "no processes left".to_string()));
                    self.finish(&mut out);
                }
            }
            Event::Emergency(what) => {
                if self.shutdown.is_none() {
                    self.enter_emergency(&what, now, &mut out);
                } else {
                    out.push(Action::Log(
                        Level::Info,
                        format!("EMERGENCY during shutdown: {what}"),
                    ));
                }
            }
            Event::Tick => self.tick(now, &mut out),
        }
        out
    }

    fn enter_emergency(&mut self, what: &str, now: Mono, out: &mut Vec<Action>) {
        out.push(Action::Log(Level::Info, format!("EMERGENCY: {what}")));
        if let Shell::Running { pid, .. } = self.shell
            && self.mode == ShellKind::Emergency
        {
            // The emergency shell is already there; keep it.
            let _ = pid;
            return;
        }
        if let Shell::Running { pid, .. } = self.shell {
            // The console shell leads its own session; hang up its whole process group so
            // two shells never read the same tty.
            out.push(Action::Kill {
                pid: -pid,
                sig: Signal::SIGHUP,
            });
            out.push(Action::Kill {
                pid,
                sig: Signal::SIGKILL,
            });
        }
        self.mode = ShellKind::Emergency;
        if let Shell::Running { pid, .. } = self.shell {
            self.shell = Shell::Replacing {
                old: pid,
                until: now.plus_ms(REPLACE_WAIT_MS),
            };
        } else {
            self.shell = Shell::Starting;
            out.push(Action::SpawnShell(ShellKind::Emergency));
        }
    }

    fn request(&mut self, kind: PowerKind, now: Mono, out: &mut Vec<Action>) {
        match &mut self.shutdown {
            None => {
                out.push(Action::Log(Level::Info, kind.verb().to_string()));
                if let Shell::Running { pid, .. } = self.shell {
                    // An interactive shell ignores SIGTERM; a hangup ends its session.
                    out.push(Action::Kill {
                        pid: -pid,
                        sig: Signal::SIGHUP,
                    });
                }
                self.shell = Shell::Done;
                self.shutdown = Some(Shutdown {
                    kind,
                    phase: Phase::Term,
                    deadline: now.plus_ms(TERM_GRACE_MS),
                });
                out.push(Action::KillAll(Signal::SIGTERM));
                // A stopped process only acts on SIGTERM once it runs again.
                out.push(Action::KillAll(Signal::SIGCONT));
            }
            Some(s) if kind == PowerKind::PowerOff && s.kind != PowerKind::PowerOff => {
                out.push(Action::Log(
                    Level::Info,
                    format!(
                        "poweroff requested while {}: powering off instead",
                        s.kind.verb()
                    ),
                ));
                s.kind = PowerKind::PowerOff;
            }
            Some(s) => out.push(Action::Log(
                Level::Debug,
                format!("already {}; {:?} request ignored", s.kind.verb(), kind),
            )),
        }
    }

    fn spawn_failed(&mut self, error: &str, now: Mono, out: &mut Vec<Action>) {
        if self.shell != Shell::Starting {
            return;
        }
        match self.mode {
            ShellKind::Console => {
                self.quick_deaths = self.quick_deaths.saturating_add(1);
                let delay = respawn_delay(0, self.quick_deaths);
                out.push(Action::Log(
                    Level::Info,
                    format!(
                        "cannot start the console shell on {}: {error}; retrying in {} ms",
                        self.tty, delay
                    ),
                ));
                self.shell = Shell::Waiting {
                    at: now.plus_ms(delay),
                };
            }
            ShellKind::Emergency => {
                out.push(Action::Log(
                    Level::Info,
                    format!(
                        "cannot start the emergency shell on {}: {error}; rebooting",
                        self.tty
                    ),
                ));
                self.shell = Shell::Done;
                self.shutdown = Some(Shutdown {
                    kind: PowerKind::Reboot,
                    phase: Phase::Finished,
                    deadline: now,
                });
                out.push(Action::Finish(PowerKind::Reboot));
            }
        }
    }

    fn exited(&mut self, pid: i32, ended: Ended, now: Mono, out: &mut Vec<Action>) {
        let code = exit_code(ended);
        if let Shell::Replacing { old, .. } = self.shell
            && old == pid
        {
            out.push(Action::Log(
                Level::Debug,
                format!("old console shell (pid {pid}) ended"),
            ));
            self.shell = Shell::Starting;
            out.push(Action::SpawnShell(self.mode));
            return;
        }
        let Shell::Running {
            pid: shell_pid,
            since,
        } = self.shell
        else {
            out.push(Action::Log(
                Level::Debug,
                format!("reaped pid {pid} (exit code {code})"),
            ));
            return;
        };
        if pid != shell_pid {
            out.push(Action::Log(
                Level::Debug,
                format!("reaped pid {pid} (exit code {code})"),
            ));
            return;
        }
        let ran = now.since(since);
        match self.mode {
            ShellKind::Console => {
                if ran >= HEALTHY_RUN_MS {
                    self.quick_deaths = 0;
                } else {
                    self.quick_deaths = self.quick_deaths.saturating_add(1);
                }
                let delay = respawn_delay(ran, self.quick_deaths);
                out.push(Action::Log(
                    Level::Info,
                    format!(
                        "console shell (pid {pid}) exited with code {code} after {}.{:03} s; next one in {}.{:03} s",
                        ran / 1000,
                        ran % 1000,
                        delay / 1000,
                        delay % 1000
                    ),
                ));
                self.shell = Shell::Waiting {
                    at: now.plus_ms(delay),
                };
            }
            ShellKind::Emergency => {
                out.push(Action::Log(
                    Level::Info,
                    format!("emergency shell (pid {pid}) exited with code {code}"),
                ));
                self.shell = Shell::Done;
                self.request(PowerKind::Reboot, now, out);
            }
        }
    }

    fn tick(&mut self, now: Mono, out: &mut Vec<Action>) {
        if let Some(s) = self.shutdown {
            if now < s.deadline {
                return;
            }
            match s.phase {
                Phase::Term => {
                    out.push(Action::Log(
                        Level::Info,
                        format!(
                            "processes still running {} s after SIGTERM: sending SIGKILL",
                            TERM_GRACE_MS / 1000
                        ),
                    ));
                    out.push(Action::KillAll(Signal::SIGKILL));
                    self.shutdown = Some(Shutdown {
                        phase: Phase::Kill,
                        deadline: now.plus_ms(KILL_GRACE_MS),
                        ..s
                    });
                }
                Phase::Kill => {
                    out.push(Action::Log(
                        Level::Info,
                        "processes remain after SIGKILL; going on".to_string(),
                    ));
                    self.finish(out);
                }
                Phase::Finished => {}
            }
            return;
        }
        if let Shell::Replacing { old, until } = self.shell
            && now >= until
        {
            out.push(Action::Log(
                Level::Info,
                format!("old console shell (pid {old}) has not ended; starting the emergency shell anyway"),
            ));
            self.shell = Shell::Starting;
            out.push(Action::SpawnShell(self.mode));
        }
        if let Shell::Waiting { at } = self.shell
            && now >= at
        {
            self.shell = Shell::Starting;
            out.push(Action::SpawnShell(self.mode));
        }
    }

    fn finish(&mut self, out: &mut Vec<Action>) {
        if let Some(s) = &mut self.shutdown {
            s.phase = Phase::Finished;
            out.push(Action::Finish(s.kind));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTY: &str = "/dev/ttyS0";

    fn ms(v: u64) -> Mono {
        Mono(v)
    }

    fn logs(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Log(_, m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    fn non_logs(actions: &[Action]) -> Vec<Action> {
        actions
            .iter()
            .filter(|a| !matches!(a, Action::Log(..)))
            .cloned()
            .collect()
    }

    fn started_console() -> Lifecycle {
        let (mut lc, out) = Lifecycle::new(TTY, None, ms(0));
        assert_eq!(out, vec![Action::SpawnShell(ShellKind::Console)]);
        let out = lc.handle(Event::Spawned { pid: 10 }, ms(0));
        assert_eq!(logs(&out), vec!["console shell on /dev/ttyS0"]);
        lc
    }

    #[test]
    fn fatal_boot_gives_the_emergency_marker_then_the_shell() {
        let (mut lc, out) = Lifecycle::new(TTY, Some("invalid appliance config: x"), ms(0));
        assert_eq!(
            out,
            vec![
                Action::Log(Level::Info, "EMERGENCY: invalid appliance config: x".into()),
                Action::SpawnShell(ShellKind::Emergency)
            ]
        );
        let out = lc.handle(Event::Spawned { pid: 5 }, ms(1));
        assert_eq!(logs(&out), vec!["emergency shell on /dev/ttyS0"]);
    }

    #[test]
    fn console_shell_respawns_at_once_after_a_normal_session() {
        let mut lc = started_console();
        let out = lc.handle(
            Event::Exited {
                pid: 10,
                ended: Ended::Exited(0),
            },
            ms(60_000),
        );
        assert!(non_logs(&out).is_empty());
        assert_eq!(lc.next_deadline(), Some(ms(60_000)));
        let out = lc.handle(Event::Tick, ms(60_000));
        assert_eq!(out, vec![Action::SpawnShell(ShellKind::Console)]);
    }

    #[test]
    fn a_shell_that_keeps_dying_backs_off_up_to_the_cap() {
        let mut lc = started_console();
        let mut now = 0;
        let mut delays = Vec::new();
        for i in 0..10 {
            now += 100;
            lc.handle(
                Event::Exited {
                    pid: 10 + i,
                    ended: Ended::Exited(127),
                },
                ms(now),
            );
            let at = lc.next_deadline().map(|d| d.0).unwrap_or(0);
            delays.push(at - now);
            assert!(
                lc.handle(Event::Tick, ms(at.saturating_sub(1))).is_empty(),
                "fired early"
            );
            now = at;
            assert_eq!(
                lc.handle(Event::Tick, ms(now)),
                vec![Action::SpawnShell(ShellKind::Console)]
            );
            lc.handle(Event::Spawned { pid: 11 + i }, ms(now));
        }
        assert_eq!(&delays[..4], &[500, 1000, 2000, 4000]);
        assert_eq!(delays[9], MAX_BACKOFF_MS);
    }

    #[test]
    fn spawn_failure_of_the_console_shell_is_retried() {
        let (mut lc, _) = Lifecycle::new(TTY, None, ms(0));
        let out = lc.handle(
            Event::SpawnFailed {
                error: "EAGAIN".into(),
            },
            ms(0),
        );
        assert!(logs(&out)[0].contains("retrying in 500 ms"), "{out:?}");
        assert_eq!(
            lc.handle(Event::Tick, ms(500)),
            vec![Action::SpawnShell(ShellKind::Console)]
        );
    }

    #[test]
    fn emergency_shell_that_cannot_start_reboots_at_once() {
        let (mut lc, _) = Lifecycle::new(TTY, Some("boom"), ms(0));
        let out = lc.handle(
            Event::SpawnFailed {
                error: "ENOMEM".into(),
            },
            ms(0),
        );
        assert_eq!(non_logs(&out), vec![Action::Finish(PowerKind::Reboot)]);
    }

    #[test]
    fn emergency_shell_exit_reboots_in_order() {
        let (mut lc, _) = Lifecycle::new(TTY, Some("boom"), ms(0));
        lc.handle(Event::Spawned { pid: 7 }, ms(0));
        let out = lc.handle(
            Event::Exited {
                pid: 7,
                ended: Ended::Exited(0),
            },
            ms(10),
        );
        assert!(logs(&out).contains(&"rebooting".to_string()), "{out:?}");
        // The emergency shell is gone: no hangup for it, only the rest get TERM and CONT.
        assert_eq!(
            non_logs(&out),
            vec![
                Action::KillAll(Signal::SIGTERM),
                Action::KillAll(Signal::SIGCONT)
            ]
        );
        assert_eq!(
            lc.handle(Event::NoChildren, ms(20)),
            vec![
                Action::Log(Level::Debug, "no processes left".into()),
                Action::Finish(PowerKind::Reboot)
            ]
        );
    }

    #[test]
    fn shutdown_terms_then_kills_then_finishes_on_deadlines() {
        let mut lc = started_console();
        let out = lc.handle(Event::Power(PowerKind::PowerOff), ms(1000));
        assert_eq!(
            out,
            vec![
                Action::Log(Level::Info, "powering off".into()),
                // An interactive shell ignores SIGTERM: its session is hung up first.
                Action::Kill {
                    pid: -10,
                    sig: Signal::SIGHUP
                },
                Action::KillAll(Signal::SIGTERM),
                Action::KillAll(Signal::SIGCONT)
            ]
        );
        assert_eq!(lc.next_deadline(), Some(ms(1000 + TERM_GRACE_MS)));
        // The shell dying is not respawned during a shutdown.
        let out = lc.handle(
            Event::Exited {
                pid: 10,
                ended: Ended::Signaled(15, false),
            },
            ms(1100),
        );
        assert!(non_logs(&out).is_empty());
        assert!(lc.handle(Event::Tick, ms(3999)).is_empty());
        let out = lc.handle(Event::Tick, ms(4000));
        assert_eq!(non_logs(&out), vec![Action::KillAll(Signal::SIGKILL)]);
        assert_eq!(lc.next_deadline(), Some(ms(4000 + KILL_GRACE_MS)));
        let out = lc.handle(Event::Tick, ms(6000));
        assert_eq!(non_logs(&out), vec![Action::Finish(PowerKind::PowerOff)]);
        assert_eq!(lc.next_deadline(), None);
        assert!(
            lc.handle(Event::NoChildren, ms(6001)).is_empty(),
            "finished twice"
        );
    }

    #[test]
    fn shutdown_ends_early_when_no_process_is_left() {
        let mut lc = started_console();
        lc.handle(Event::Power(PowerKind::Halt), ms(0));
        let out = lc.handle(Event::NoChildren, ms(50));
        assert_eq!(non_logs(&out), vec![Action::Finish(PowerKind::Halt)]);
    }

    #[test]
    fn second_request_does_not_restart_but_poweroff_wins() {
        let mut lc = started_console();
        lc.handle(Event::Power(PowerKind::Reboot), ms(0));
        let out = lc.handle(Event::Power(PowerKind::Reboot), ms(100));
        assert!(non_logs(&out).is_empty());
        assert_eq!(
            lc.next_deadline(),
            Some(ms(TERM_GRACE_MS)),
            "deadline moved"
        );
        let out = lc.handle(Event::Power(PowerKind::PowerOff), ms(200));
        assert!(logs(&out)[0].contains("powering off instead"), "{out:?}");
        let out = lc.handle(Event::Power(PowerKind::Halt), ms(300));
        assert!(non_logs(&out).is_empty());
        let out = lc.handle(Event::NoChildren, ms(400));
        assert_eq!(non_logs(&out), vec![Action::Finish(PowerKind::PowerOff)]);
    }

    #[test]
    fn panic_replaces_the_console_shell_with_the_emergency_shell() {
        let mut lc = started_console();
        let out = lc.handle(Event::Emergency("keel panicked: oops".into()), ms(5));
        assert_eq!(logs(&out), vec!["EMERGENCY: keel panicked: oops"]);
        assert_eq!(
            non_logs(&out),
            vec![
                Action::Kill {
                    pid: -10,
                    sig: Signal::SIGHUP
                },
                Action::Kill {
                    pid: 10,
                    sig: Signal::SIGKILL
                },
            ]
        );
        assert_eq!(lc.mode(), ShellKind::Emergency);
        // The emergency shell starts only once the old session leader is reaped: its
        // exit would hang up the tty under the new shell.
        assert_eq!(lc.next_deadline(), Some(ms(5 + REPLACE_WAIT_MS)));
        let out = lc.handle(
            Event::Exited {
                pid: 10,
                ended: Ended::Signaled(9, false),
            },
            ms(7),
        );
        assert_eq!(
            non_logs(&out),
            vec![Action::SpawnShell(ShellKind::Emergency)]
        );
        let out = lc.handle(Event::Spawned { pid: 20 }, ms(8));
        assert_eq!(logs(&out), vec!["emergency shell on /dev/ttyS0"]);
        assert_eq!(lc.shutting_down(), None);
    }

    #[test]
    fn emergency_shell_starts_anyway_when_the_old_shell_lingers() {
        let mut lc = started_console();
        lc.handle(Event::Emergency("oops".into()), ms(0));
        assert!(lc.handle(Event::Tick, ms(REPLACE_WAIT_MS - 1)).is_empty());
        let out = lc.handle(Event::Tick, ms(REPLACE_WAIT_MS));
        assert_eq!(
            non_logs(&out),
            vec![Action::SpawnShell(ShellKind::Emergency)]
        );
    }

    #[test]
    fn orphans_are_logged_at_debug_only() {
        let mut lc = started_console();
        let out = lc.handle(
            Event::Exited {
                pid: 99,
                ended: Ended::Exited(3),
            },
            ms(1),
        );
        assert_eq!(
            out,
            vec![Action::Log(
                Level::Debug,
                "reaped pid 99 (exit code 3)".into()
            )]
        );
    }

    #[test]
    fn respawn_delay_table() {
        for (ran, deaths, want) in [
            (10_000, 0, 0),
            (10_000, 3, 0),
            (100, 1, 500),
            (100, 2, 1000),
            (100, 6, 16_000),
            (100, 7, MAX_BACKOFF_MS),
            (100, 1000, MAX_BACKOFF_MS),
        ] {
            assert_eq!(
                respawn_delay(ran, deaths),
                want,
                "ran {ran} deaths {deaths}"
            );
        }
    }
}

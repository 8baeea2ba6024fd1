//! The PID 1 lifecycle as a pure state machine: what is not a service. That is the
//! emergency shell, and the shutdown sequence around the supervisor.
//!
//! `Lifecycle::handle(event, now)` returns the actions to carry out; `run.rs` turns
//! signals, reaped children, the supervisor's verdicts and deadlines into events and
//! carries the actions out. No IO, no clock, no system calls here: time comes in as
//! `Mono`, so every timing rule is tested in microseconds.
//!
//! The console shell is a service (`[services.console]` with `console = true`), run and
//! restarted by the supervisor. The lifecycle only takes the console over for the
//! emergency shell: a fatal boot error starts it at once; an emergency later (a panic in
//! keel, a service whose `on_give_up = "emergency"`) first asks the driver to release the
//! console (`ReleaseConsole`: stop the console services) and starts the emergency shell
//! once they are gone (`ConsoleReleased`) or after `REPLACE_WAIT_MS`, because a session
//! leader exiting under the new shell would hang up its tty.
//!
//! Shutdown, one phase after the other, each with a deadline so it always ends:
//! - Services: the supervisor stops every service in reverse dependency order
//!   (`StopServices`); it reports `ServicesStopped`, or `SERVICES_GRACE_MS` passes;
//! - Term: every remaining process gets SIGTERM (and SIGCONT); when none is left, or after
//!   `TERM_GRACE_MS`, every process gets SIGKILL (phase Kill, `KILL_GRACE_MS`);
//! - then `Finish`: sync and reboot(2).
//!
//! A second request does not restart the sequence; a poweroff request during a reboot or
//! halt turns it into a poweroff. When the emergency shell exits, the machine reboots; if
//! it cannot even be spawned, the machine reboots at once.
#![forbid(unsafe_code)]

use crate::log::Level;
use crate::sys::clock::Mono;
use crate::sys::power::PowerKind;
use crate::sys::reap::{Ended, exit_code};
use nix::sys::signal::Signal;

/// How long the supervisor may take to stop every service before the rest goes on anyway.
/// Each service is bounded by its own `stop_timeout` plus keel's SIGKILL grace; this only
/// catches a pathological config (long timeouts on a long chain).
pub const SERVICES_GRACE_MS: u64 = 120_000;
/// How long processes get between SIGTERM and SIGKILL at shutdown.
pub const TERM_GRACE_MS: u64 = 3000;
/// How long to wait for processes to vanish after SIGKILL before going on anyway.
pub const KILL_GRACE_MS: u64 = 2000;
/// How long the emergency shell waits for the console services to be gone.
pub const REPLACE_WAIT_MS: u64 = 1000;

/// Which shell (the console shell is a service now; the name stays for `shell_spec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellKind {
    Console,
    Emergency,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A request to stop the machine (signal, applet, power button, keelctl).
    Power(PowerKind),
    /// The supervisor has stopped every service (after `StopServices`).
    ServicesStopped,
    /// The console services are gone (after `ReleaseConsole`).
    ConsoleReleased,
    /// The emergency shell asked for by `Action::SpawnShell` is running.
    Spawned { pid: i32 },
    /// The shell could not be started (the parent's error; exec errors come as `Exited`).
    SpawnFailed { error: String },
    /// A child that is not a service ended (from the reaper).
    Exited { pid: i32, ended: Ended },
    /// The reaper found no children at all.
    NoChildren,
    /// Something keel cannot go on from: drop to the emergency shell.
    Emergency(String),
    /// Time passed; deadlines at or before `now` fire.
    Tick,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Log(Level, String),
    SpawnShell(ShellKind),
    /// Stop the services that own the console (the emergency shell takes it).
    ReleaseConsole,
    /// Ask the supervisor to stop every service in order.
    StopServices(PowerKind),
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
    /// No shell of the lifecycle's: the console belongs to the services.
    Idle,
    Starting,
    Running {
        pid: i32,
    },
    /// Waiting for the console services to be gone, at most until `until`.
    Replacing {
        until: Mono,
    },
    /// No shell will be started again (shutdown, or the emergency shell ended).
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Services,
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

/// The lifecycle state machine. See the module docs for the states.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    tty: String,
    emergency: bool,
    shell: Shell,
    shutdown: Option<Shutdown>,
}

impl Lifecycle {
    /// Starts the lifecycle for the console `tty` (a /dev path). With `fatal`, the boot
    /// failed and the emergency shell starts at once; otherwise the console is the
    /// services'.
    pub fn new(tty: &str, fatal: Option<&str>, now: Mono) -> (Lifecycle, Vec<Action>) {
        let mut lc = Lifecycle {
            tty: tty.to_string(),
            emergency: false,
            shell: Shell::Idle,
            shutdown: None,
        };
        let mut out = Vec::new();
        if let Some(what) = fatal {
            out.push(Action::Log(Level::Info, format!("EMERGENCY: {what}")));
            lc.emergency = true;
            lc.shell = Shell::Starting;
            out.push(Action::SpawnShell(ShellKind::Emergency));
        }
        let _ = now;
        (lc, out)
    }

    /// True once an emergency happened (the emergency shell owns the console).
    pub fn in_emergency(&self) -> bool {
        self.emergency
    }

    /// True while the console services are being stopped for the emergency shell.
    pub fn releasing_console(&self) -> bool {
        matches!(self.shell, Shell::Replacing { .. })
    }

    /// Whether a shutdown is under way, and of which kind.
    pub fn shutting_down(&self) -> Option<PowerKind> {
        self.shutdown.map(|s| s.kind)
    }

    /// The earliest deadline, for the poll timeout.
    pub fn next_deadline(&self) -> Option<Mono> {
        let shell = match self.shell {
            Shell::Replacing { until } if self.shutdown.is_none() => Some(until),
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
            Event::ServicesStopped => {
                if let Some(s) = self.shutdown
                    && s.phase == Phase::Services
                {
                    self.term(now, &mut out);
                }
            }
            Event::ConsoleReleased => {
                if let Shell::Replacing { .. } = self.shell
                    && self.shutdown.is_none()
                {
                    self.shell = Shell::Starting;
                    out.push(Action::SpawnShell(ShellKind::Emergency));
                }
            }
            Event::Spawned { pid } => {
                if self.shell == Shell::Starting {
                    self.shell = Shell::Running { pid };
                    out.push(Action::Log(
                        Level::Info,
                        format!("emergency shell on {}", self.tty),
                    ));
                }
            }
            Event::SpawnFailed { error } => self.spawn_failed(&error, now, &mut out),
            Event::Exited { pid, ended } => self.exited(pid, ended, now, &mut out),
            Event::NoChildren => {
                if let Some(s) = self.shutdown
                    && matches!(s.phase, Phase::Term | Phase::Kill)
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
        self.emergency = true;
        match self.shell {
            // The emergency shell is there or on its way; keep it.
            Shell::Running { .. } | Shell::Starting | Shell::Replacing { .. } | Shell::Done => {}
            Shell::Idle => {
                out.push(Action::ReleaseConsole);
                self.shell = Shell::Replacing {
                    until: now.plus_ms(REPLACE_WAIT_MS),
                };
            }
        }
    }

    fn request(&mut self, kind: PowerKind, now: Mono, out: &mut Vec<Action>) {
        match &mut self.shutdown {
            None => {
                out.push(Action::Log(Level::Info, kind.verb().to_string()));
                if let Shell::Running { pid } = self.shell {
                    // An interactive shell ignores SIGTERM; a hangup ends its session.
                    out.push(Action::Kill {
                        pid: -pid,
                        sig: Signal::SIGHUP,
                    });
                }
                self.shell = Shell::Done;
                self.shutdown = Some(Shutdown {
                    kind,
                    phase: Phase::Services,
                    deadline: now.plus_ms(SERVICES_GRACE_MS),
                });
                out.push(Action::StopServices(kind));
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

    fn term(&mut self, now: Mono, out: &mut Vec<Action>) {
        if let Some(s) = &mut self.shutdown {
            s.phase = Phase::Term;
            s.deadline = now.plus_ms(TERM_GRACE_MS);
            out.push(Action::KillAll(Signal::SIGTERM));
            // A stopped process only acts on SIGTERM once it runs again.
            out.push(Action::KillAll(Signal::SIGCONT));
        }
    }

    fn spawn_failed(&mut self, error: &str, now: Mono, out: &mut Vec<Action>) {
        if self.shell != Shell::Starting {
            return;
        }
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

    fn exited(&mut self, pid: i32, ended: Ended, now: Mono, out: &mut Vec<Action>) {
        let code = exit_code(ended);
        match self.shell {
            Shell::Running { pid: shell } if shell == pid => {
                out.push(Action::Log(
                    Level::Info,
                    format!("emergency shell (pid {pid}) exited with code {code}"),
                ));
                self.shell = Shell::Done;
                self.request(PowerKind::Reboot, now, out);
            }
            _ => out.push(Action::Log(
                Level::Debug,
                format!("reaped pid {pid} (exit code {code})"),
            )),
        }
    }

    fn tick(&mut self, now: Mono, out: &mut Vec<Action>) {
        if let Some(s) = self.shutdown {
            if now < s.deadline {
                return;
            }
            match s.phase {
                Phase::Services => {
                    out.push(Action::Log(
                        Level::Info,
                        format!(
                            "services still stopping after {} s; going on",
                            SERVICES_GRACE_MS / 1000
                        ),
                    ));
                    self.term(now, out);
                }
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
        if let Shell::Replacing { until } = self.shell
            && now >= until
        {
            out.push(Action::Log(
                Level::Info,
                "the console services have not stopped; starting the emergency shell anyway"
                    .to_string(),
            ));
            self.shell = Shell::Starting;
            out.push(Action::SpawnShell(ShellKind::Emergency));
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

    fn normal() -> Lifecycle {
        let (lc, out) = Lifecycle::new(TTY, None, ms(0));
        assert!(out.is_empty(), "the console is the services': {out:?}");
        assert_eq!(lc.next_deadline(), None);
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
        assert!(lc.in_emergency());
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
        // The emergency shell is gone: no hangup for it; the services stop first.
        assert_eq!(
            non_logs(&out),
            vec![Action::StopServices(PowerKind::Reboot)]
        );
        assert_eq!(
            lc.handle(Event::ServicesStopped, ms(15)),
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
    fn shutdown_stops_services_then_terms_then_kills_then_finishes() {
        let mut lc = normal();
        let out = lc.handle(Event::Power(PowerKind::PowerOff), ms(1000));
        assert_eq!(
            out,
            vec![
                Action::Log(Level::Info, "powering off".into()),
                Action::StopServices(PowerKind::PowerOff)
            ]
        );
        // Nothing is signalled while the services stop, and no child counts as the end.
        assert!(non_logs(&lc.handle(Event::NoChildren, ms(1001))).is_empty());
        assert_eq!(lc.next_deadline(), Some(ms(1000 + SERVICES_GRACE_MS)));
        let out = lc.handle(Event::ServicesStopped, ms(2000));
        assert_eq!(
            non_logs(&out),
            vec![
                Action::KillAll(Signal::SIGTERM),
                Action::KillAll(Signal::SIGCONT)
            ]
        );
        assert_eq!(lc.next_deadline(), Some(ms(2000 + TERM_GRACE_MS)));
        assert!(lc.handle(Event::Tick, ms(4999)).is_empty());
        let out = lc.handle(Event::Tick, ms(5000));
        assert_eq!(non_logs(&out), vec![Action::KillAll(Signal::SIGKILL)]);
        assert_eq!(lc.next_deadline(), Some(ms(5000 + KILL_GRACE_MS)));
        let out = lc.handle(Event::Tick, ms(7000));
        assert_eq!(non_logs(&out), vec![Action::Finish(PowerKind::PowerOff)]);
        assert_eq!(lc.next_deadline(), None);
        assert!(
            lc.handle(Event::NoChildren, ms(7001)).is_empty(),
            "finished twice"
        );
    }

    #[test]
    fn services_that_never_stop_are_given_up_on() {
        let mut lc = normal();
        lc.handle(Event::Power(PowerKind::Reboot), ms(0));
        assert!(lc.handle(Event::Tick, ms(SERVICES_GRACE_MS - 1)).is_empty());
        let out = lc.handle(Event::Tick, ms(SERVICES_GRACE_MS));
        assert!(logs(&out)[0].contains("services still stopping"), "{out:?}");
        assert_eq!(
            non_logs(&out),
            vec![
                Action::KillAll(Signal::SIGTERM),
                Action::KillAll(Signal::SIGCONT)
            ]
        );
        // A late report from the supervisor changes nothing.
        assert!(
            lc.handle(Event::ServicesStopped, ms(SERVICES_GRACE_MS + 1))
                .is_empty()
        );
    }

    #[test]
    fn shutdown_ends_early_when_no_process_is_left() {
        let mut lc = normal();
        lc.handle(Event::Power(PowerKind::Halt), ms(0));
        lc.handle(Event::ServicesStopped, ms(10));
        let out = lc.handle(Event::NoChildren, ms(50));
        assert_eq!(non_logs(&out), vec![Action::Finish(PowerKind::Halt)]);
    }

    #[test]
    fn second_request_does_not_restart_but_poweroff_wins() {
        let mut lc = normal();
        lc.handle(Event::Power(PowerKind::Reboot), ms(0));
        let out = lc.handle(Event::Power(PowerKind::Reboot), ms(100));
        assert!(non_logs(&out).is_empty());
        assert_eq!(
            lc.next_deadline(),
            Some(ms(SERVICES_GRACE_MS)),
            "deadline moved"
        );
        let out = lc.handle(Event::Power(PowerKind::PowerOff), ms(200));
        assert!(logs(&out)[0].contains("powering off instead"), "{out:?}");
        let out = lc.handle(Event::Power(PowerKind::Halt), ms(300));
        assert!(non_logs(&out).is_empty());
        lc.handle(Event::ServicesStopped, ms(350));
        let out = lc.handle(Event::NoChildren, ms(400));
        assert_eq!(non_logs(&out), vec![Action::Finish(PowerKind::PowerOff)]);
    }

    #[test]
    fn emergency_releases_the_console_before_the_shell_starts() {
        let mut lc = normal();
        let out = lc.handle(Event::Emergency("keel panicked: oops".into()), ms(5));
        assert_eq!(logs(&out), vec!["EMERGENCY: keel panicked: oops"]);
        assert_eq!(non_logs(&out), vec![Action::ReleaseConsole]);
        assert!(lc.releasing_console());
        assert_eq!(lc.next_deadline(), Some(ms(5 + REPLACE_WAIT_MS)));
        let out = lc.handle(Event::ConsoleReleased, ms(7));
        assert_eq!(
            non_logs(&out),
            vec![Action::SpawnShell(ShellKind::Emergency)]
        );
        let out = lc.handle(Event::Spawned { pid: 20 }, ms(8));
        assert_eq!(logs(&out), vec!["emergency shell on /dev/ttyS0"]);
        assert_eq!(lc.shutting_down(), None);
        // A second emergency keeps the shell that is there.
        let out = lc.handle(Event::Emergency("again".into()), ms(9));
        assert!(non_logs(&out).is_empty());
        // Powering off hangs up the emergency shell's session.
        let out = lc.handle(Event::Power(PowerKind::PowerOff), ms(10));
        assert_eq!(
            non_logs(&out),
            vec![
                Action::Kill {
                    pid: -20,
                    sig: Signal::SIGHUP
                },
                Action::StopServices(PowerKind::PowerOff)
            ]
        );
    }

    #[test]
    fn emergency_shell_starts_anyway_when_the_console_lingers() {
        let mut lc = normal();
        lc.handle(Event::Emergency("oops".into()), ms(0));
        assert!(lc.handle(Event::Tick, ms(REPLACE_WAIT_MS - 1)).is_empty());
        let out = lc.handle(Event::Tick, ms(REPLACE_WAIT_MS));
        assert_eq!(
            non_logs(&out),
            vec![Action::SpawnShell(ShellKind::Emergency)]
        );
        assert!(
            lc.handle(Event::ConsoleReleased, ms(REPLACE_WAIT_MS + 1))
                .is_empty()
        );
    }

    #[test]
    fn orphans_are_logged_at_debug_only() {
        let mut lc = normal();
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
}

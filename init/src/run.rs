//! The main loop of PID 1: poll the signalfd, reap, turn what arrived into lifecycle
//! events, carry out the actions.
//!
//! The driver has no policy (that is `lifecycle.rs`): it never sleeps, never waits for a
//! child, and its one poll timeout is the lifecycle's nearest deadline. Errors become log
//! lines; nothing here returns an error or exits. The supervisor (issue 3) slots in as a
//! second event source and action sink in the same loop.
#![forbid(unsafe_code)]

use crate::boot::Booted;
use crate::consoles::term_for;
use crate::lifecycle::{Action, Event, Lifecycle, ShellKind};
use crate::log;
use crate::sys::power::{self, PowerKind};
use crate::sys::spawn::{SpawnSpec, spawn};
use crate::sys::{clock, reap, signals};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::SignalFd;
use std::collections::VecDeque;
use std::os::fd::AsFd;

/// The shell keel starts on the console (busybox ash).
pub const SHELL: &str = "/bin/sh";

/// What a signal to PID 1 asks for (busybox's convention, plus SIGPWR as sysvinit's
/// power-failure signal). SIGINT is Ctrl-Alt-Del once RB_DISABLE_CAD is set.
pub fn power_request(signo: i32) -> Option<PowerKind> {
    match signo {
        libc::SIGUSR1 => Some(PowerKind::Halt),
        libc::SIGUSR2 | libc::SIGPWR => Some(PowerKind::PowerOff),
        libc::SIGTERM | libc::SIGINT => Some(PowerKind::Reboot),
        _ => None,
    }
}

/// The spawn of a console or emergency shell on `tty` (a /dev path): its own session with
/// the tty as controlling terminal, so job control works.
pub fn shell_spec(kind: ShellKind, tty: &str) -> SpawnSpec {
    let name = tty.strip_prefix("/dev/").unwrap_or(tty);
    let mut env = vec![
        "HOME=/root".to_string(),
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        format!("TERM={}", term_for(name)),
        format!("SHELL={SHELL}"),
        "USER=root".to_string(),
        "LOGNAME=root".to_string(),
    ];
    if kind == ShellKind::Emergency {
        env.push("KEEL_EMERGENCY=1".to_string());
        // The prompt says where the person is, so nobody takes it for a normal boot.
        env.push("PS1=(keel emergency) \\w # ".to_string());
    }
    SpawnSpec {
        argv: vec![SHELL.to_string(), "-l".to_string()],
        env,
        cwd: "/".to_string(),
        setsid: true,
        tty: Some(tty.to_string()),
    }
}

/// The PID 1 loop's state.
pub struct Driver {
    sfd: Option<SignalFd>,
    lc: Lifecycle,
    tty: String,
    /// Set once reboot(2) has failed for every mode: keel then only reaps, forever.
    stuck: bool,
    /// `keel.test_panic`: panic once in the next round (a test hook, see `boot::TEST_PANIC`).
    test_panic: bool,
}

impl Driver {
    /// Sets up the signalfd and the lifecycle from the boot's result, and starts the
    /// first shell.
    pub fn new(booted: &Booted) -> Driver {
        if let Err(e) = signals::block_all() {
            log::info(&format!("cannot block signals: {e}"));
        }
        let sfd = match signals::signal_fd() {
            Ok(fd) => Some(fd),
            Err(e) => {
                log::info(&format!(
                    "cannot create a signalfd: {e}; power requests by signal will be lost"
                ));
                None
            }
        };
        let tty = booted.consoles.primary_path();
        let (lc, first) = Lifecycle::new(&tty, booted.fatal.as_deref(), clock::now());
        let mut d = Driver {
            sfd,
            lc,
            tty,
            stuck: false,
            test_panic: booted.test_panic,
        };
        d.carry_out(first);
        d
    }

    /// Drops to the emergency shell (after a panic in keel).
    pub fn emergency(&mut self, what: &str) {
        let actions = self
            .lc
            .handle(Event::Emergency(what.to_string()), clock::now());
        self.carry_out(actions);
    }

    /// Runs one round of the loop: wait for a signal or the next deadline, then handle
    /// everything that is due. Never blocks past the nearest deadline.
    pub fn step(&mut self) {
        if self.test_panic {
            self.test_panic = false;
            panic!(
                "deliberate panic requested by {} on the kernel command line",
                crate::boot::TEST_PANIC
            );
        }
        let timeout = match (self.stuck, self.lc.next_deadline()) {
            (true, _) | (false, None) => PollTimeout::NONE,
            (false, Some(at)) => {
                let ms = at.since(clock::now()).min(i32::MAX as u64);
                PollTimeout::try_from(ms as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut events = Vec::new();
        match &self.sfd {
            Some(sfd) => {
                let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, timeout) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => log::debug(&format!("poll failed: {e}")),
                }
                for signo in signals::read_pending(sfd) {
                    if let Some(kind) = power_request(signo) {
                        events.push(Event::Power(kind));
                    } else if signo != libc::SIGCHLD {
                        log::debug(&format!("ignored signal {signo}"));
                    }
                }
            }
            None => {
                // No signalfd: poll nothing with a bounded timeout and reap each round.
                let bounded = if timeout == PollTimeout::NONE {
                    PollTimeout::from(1000u16)
                } else {
                    timeout
                };
                let _ = poll(&mut [], bounded);
            }
        }
        let now = clock::now();
        for ev in events {
            let actions = self.lc.handle(ev, now);
            self.carry_out(actions);
        }
        self.reap();
        let actions = self.lc.handle(Event::Tick, clock::now());
        self.carry_out(actions);
    }

    fn reap(&mut self) {
        let drained = reap::drain();
        let now = clock::now();
        for (pid, ended) in drained.ended {
            let actions = self.lc.handle(Event::Exited { pid, ended }, now);
            self.carry_out(actions);
        }
        if drained.no_children {
            let actions = self.lc.handle(Event::NoChildren, now);
            self.carry_out(actions);
        }
    }

    fn carry_out(&mut self, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            let follow = match action {
                Action::Log(level, msg) => {
                    log::log(level, &msg);
                    Vec::new()
                }
                Action::SpawnShell(kind) => {
                    let ev = match spawn(&shell_spec(kind, &self.tty)) {
                        Ok(pid) => Event::Spawned { pid },
                        Err(e) => Event::SpawnFailed {
                            error: e.to_string(),
                        },
                    };
                    self.lc.handle(ev, clock::now())
                }
                Action::Kill { pid, sig } => {
                    if let Err(e) = power::kill_one(pid, sig) {
                        log::debug(&format!("kill {pid} {sig}: {e}"));
                    }
                    Vec::new()
                }
                Action::KillAll(sig) => match power::kill_all(sig) {
                    Err(Errno::ESRCH) => self.lc.handle(Event::NoChildren, clock::now()),
                    Err(e) => {
                        log::info(&format!("cannot send {sig} to all processes: {e}"));
                        Vec::new()
                    }
                    Ok(()) => Vec::new(),
                },
                Action::Finish(kind) => {
                    self.finish(kind);
                    Vec::new()
                }
            };
            queue.extend(follow);
        }
    }

    fn finish(&mut self, kind: PowerKind) {
        log::debug("syncing filesystems");
        let e = power::finish(kind, true);
        log::info(&format!("reboot(2) for {} failed: {e}", kind.verb()));
        if kind != PowerKind::Reboot {
            let e = power::finish(PowerKind::Reboot, false);
            log::info(&format!("reboot(2) failed again: {e}"));
        }
        log::info(
            "EMERGENCY: the kernel refused to stop the machine; keel keeps running and reaping",
        );
        self.stuck = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_signals_follow_busybox() {
        assert_eq!(power_request(libc::SIGUSR1), Some(PowerKind::Halt));
        assert_eq!(power_request(libc::SIGUSR2), Some(PowerKind::PowerOff));
        assert_eq!(power_request(libc::SIGTERM), Some(PowerKind::Reboot));
        assert_eq!(power_request(libc::SIGINT), Some(PowerKind::Reboot));
        assert_eq!(power_request(libc::SIGPWR), Some(PowerKind::PowerOff));
        assert_eq!(power_request(libc::SIGCHLD), None);
        assert_eq!(power_request(libc::SIGHUP), None);
    }

    #[test]
    fn shell_has_its_own_session_on_the_tty() {
        let s = shell_spec(ShellKind::Console, "/dev/ttyS0");
        assert_eq!(s.argv, ["/bin/sh", "-l"]);
        assert!(s.setsid);
        assert_eq!(s.tty.as_deref(), Some("/dev/ttyS0"));
        assert!(s.env.contains(&"TERM=vt100".to_string()));
        assert!(!s.env.iter().any(|e| e.starts_with("KEEL_EMERGENCY")));
        let e = shell_spec(ShellKind::Emergency, "/dev/tty0");
        assert!(e.env.contains(&"TERM=linux".to_string()));
        assert!(e.env.contains(&"KEEL_EMERGENCY=1".to_string()));
        assert!(e.env.iter().any(|v| v.starts_with("PS1=(keel emergency)")));
        assert!(!s.env.iter().any(|v| v.starts_with("PS1=")));
    }
}

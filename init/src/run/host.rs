//! What the loop runs on: the machine (PID 1) or a host (`keel supervise`). Every
//! difference between the two that is not the lifecycle's (which only PID 1 has) is a
//! method here: where log lines go, whether console services get the console, which
//! cgroup tree services get, whether the `[watchdog]` is armed, what a signal asks for.
#![forbid(unsafe_code)]

use crate::log::{self, Level};
use crate::sys::cgroup::{self, Tree};
use crate::sys::clock;
use supervisor::PowerKind;

/// PID 1 or `keel supervise`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// The machine's init: consoles, emergency shell, reboot(2) at the end.
    Pid1,
    /// `keel supervise`: an ordinary process (a child subreaper) logging to stderr;
    /// `cgroups` is false with `--no-cgroups`.
    Supervise { cgroups: bool },
}

/// What a signal to keel asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signalled {
    /// PID 1: the lifecycle's shutdown of this kind.
    Power(PowerKind),
    /// `keel supervise`: stop every service, then exit.
    StopAll,
    /// Nothing, said at debug level (PID 1 notes what it ignores).
    Ignored,
    /// Nothing to do or say (SIGCHLD: the reaper runs every round anyway).
    Nothing,
}

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

impl Host {
    /// One log line: PID 1's consoles and /dev/kmsg, or stderr under `keel supervise`
    /// (debug lines only with `KEEL_DEBUG` set).
    pub fn log(self, level: Level, msg: &str) {
        match self {
            Host::Pid1 => log::log(level, msg),
            Host::Supervise { .. } => {
                if level == Level::Info || std::env::var_os("KEEL_DEBUG").is_some() {
                    use std::io::Write;
                    let (secs, micros) = clock::since_boot();
                    // The same lines as PID 1's log: escaped, cut to fit a kmsg record.
                    let text: String = log::lines(msg)
                        .iter()
                        .map(|l| log::console_line(secs, micros, l))
                        .collect();
                    // A closed stderr must not end the loop (eprint! would panic).
                    let _ = std::io::stderr().write_all(text.as_bytes());
                }
            }
        }
    }

    /// Whether `console = true` services get the console tty (PID 1 only; under
    /// `keel supervise` their output goes to the log).
    pub fn has_console(self) -> bool {
        self == Host::Pid1
    }

    /// Whether the `[watchdog]` is armed (the host's watchdog is not keel's to pet).
    pub fn arms_watchdog(self) -> bool {
        self == Host::Pid1
    }

    /// The cgroup tree for services, or why there is none. In PID 1 keel first protects
    /// itself from the OOM killer.
    pub fn cgroup_tree(self) -> Result<Tree, String> {
        match self {
            Host::Pid1 => {
                if let Err(e) = crate::sys::spawn::protect_from_oom() {
                    self.log(
                        Level::Info,
                        &format!(
                            "cannot set keel's oom_score_adj to -1000: {e}; the OOM killer may pick PID 1"
                        ),
                    );
                }
                cgroup::setup_pid1()
            }
            Host::Supervise { cgroups: false } => Err("--no-cgroups".to_string()),
            Host::Supervise { .. } if !nix::unistd::geteuid().is_root() => {
                Err("keel supervise is not running as root".to_string())
            }
            Host::Supervise { .. } => cgroup::setup_supervise(),
        }
    }

    /// What signal `signo` asks for.
    pub fn signalled(self, signo: i32) -> Signalled {
        match self {
            Host::Pid1 => match power_request(signo) {
                Some(kind) => Signalled::Power(kind),
                None if signo == libc::SIGCHLD => Signalled::Nothing,
                None => Signalled::Ignored,
            },
            Host::Supervise { .. } => match signo {
                libc::SIGTERM | libc::SIGINT | libc::SIGHUP => Signalled::StopAll,
                _ => Signalled::Nothing,
            },
        }
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
    fn a_host_stops_its_services_on_term_int_and_hup() {
        let h = Host::Supervise { cgroups: true };
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            assert_eq!(h.signalled(s), Signalled::StopAll);
        }
        assert_eq!(h.signalled(libc::SIGUSR1), Signalled::Nothing);
        assert_eq!(h.signalled(libc::SIGCHLD), Signalled::Nothing);
        assert_eq!(Host::Pid1.signalled(libc::SIGCHLD), Signalled::Nothing);
        assert_eq!(
            Host::Pid1.signalled(libc::SIGHUP),
            Signalled::Ignored,
            "PID 1 ignores SIGHUP"
        );
        assert_eq!(
            Host::Pid1.signalled(libc::SIGUSR2),
            Signalled::Power(PowerKind::PowerOff)
        );
    }
}

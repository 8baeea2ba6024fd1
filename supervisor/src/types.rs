//! keel's own small value types: monotonic time, process ids, wait statuses and power
//! kinds. Signals and service ids are the appliance config's (`appliance::Sig`,
//! `appliance::SvcId`), re-exported here so the core's API names one type for each.
//!
//! They exist so the supervisor needs neither libc nor nix. Must not read the clock or call
//! into the OS: init/ reads the clock and the reaper into these types and uses them itself.

pub use appliance::{Sig, SvcId};
use std::fmt;
use std::time::Duration;

/// Milliseconds of CLOCK_MONOTONIC since boot, as read by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mono(pub u64);

impl Mono {
    /// This instant plus `d`, saturating instead of overflowing.
    pub fn plus(self, d: Duration) -> Mono {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Mono(self.0.saturating_add(ms))
    }

    /// How long after `earlier` this instant is (zero if it is not after it).
    pub fn since(self, earlier: Mono) -> Duration {
        Duration::from_millis(self.ms_since(earlier))
    }

    /// This instant plus `ms` milliseconds, saturating.
    pub fn plus_ms(self, ms: u64) -> Mono {
        Mono(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to this instant (0 when `earlier` is later).
    pub fn ms_since(self, earlier: Mono) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Mono {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

/// A process id as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid(pub i32);

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How a child ended, as the reaper saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitStatus {
    /// It called exit with this code.
    Exited(i32),
    /// A signal killed it.
    Signaled(Sig),
}

impl WaitStatus {
    /// True for `exit 0` only.
    pub fn success(self) -> bool {
        self == WaitStatus::Exited(0)
    }

    /// The shell's number for this status: the exit code, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            WaitStatus::Exited(c) => c,
            WaitStatus::Signaled(s) => 128 + i32::from(s.0),
        }
    }
}

impl fmt::Display for WaitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitStatus::Exited(c) => write!(f, "exit code {c}"),
            WaitStatus::Signaled(s) => write!(f, "killed by {s}"),
        }
    }
}

/// What the machine does once shutdown has stopped every service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PowerKind {
    Halt,
    PowerOff,
    Reboot,
}

impl PowerKind {
    /// What the machine is doing, the log marker tests wait for (`keel: powering off`).
    pub fn verb(self) -> &'static str {
        match self {
            PowerKind::PowerOff => "powering off",
            PowerKind::Reboot => "rebooting",
            PowerKind::Halt => "halting",
        }
    }
}

impl fmt::Display for PowerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerKind::Halt => "halt",
            PowerKind::PowerOff => "poweroff",
            PowerKind::Reboot => "reboot",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_status_code_follows_the_shell() {
        assert_eq!(WaitStatus::Exited(3).code(), 3);
        assert_eq!(WaitStatus::Signaled(Sig::KILL).code(), 137);
        assert!(WaitStatus::Exited(0).success());
        assert!(!WaitStatus::Signaled(Sig::TERM).success());
    }

    #[test]
    fn mono_arithmetic_saturates() {
        assert_eq!(Mono(5).plus(Duration::from_millis(10)), Mono(15));
        assert_eq!(Mono(u64::MAX).plus(Duration::from_secs(1)), Mono(u64::MAX));
        assert_eq!(Mono(5).since(Mono(10)), Duration::ZERO);
        assert_eq!(Mono(1234).to_string(), "1.234");
    }
}

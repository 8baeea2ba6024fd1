//! Signals: PID 1 blocks them and reads them from a signalfd; it never runs a handler.
//!
//! `block_all` runs first thing in PID 1: every signal is blocked except the synchronous
//! faults (SEGV, BUS, FPE, ILL, ABRT, TRAP, SYS), which must stay deliverable or the
//! kernel kills the process. Children inherit the blocked mask, so every spawn resets it
//! (`spawn.rs`); nothing here installs SIG_IGN, which children would inherit too.

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// The faults that stay unblocked: blocking them would turn a crash into a hang or a kill.
pub const SYNCHRONOUS: [Signal; 7] = [
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGABRT,
    Signal::SIGTRAP,
    Signal::SIGSYS,
];

/// The set PID 1 blocks: everything but the synchronous faults.
pub fn blocked_set() -> SigSet {
    let mut set = SigSet::all();
    for s in SYNCHRONOUS {
        set.remove(s);
    }
    set
}

/// Blocks every signal except the synchronous faults in the calling (only) thread.
pub fn block_all() -> Result<(), Errno> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&blocked_set()), None)
}

/// A non-blocking, close-on-exec signalfd over the blocked set.
pub fn signal_fd() -> Result<SignalFd, Errno> {
    SignalFd::with_flags(
        &blocked_set(),
        SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
    )
}

/// Reads every pending signal number from `fd` (up to a bound per call).
pub fn read_pending(fd: &SignalFd) -> Vec<i32> {
    let mut out = Vec::new();
    for _ in 0..256 {
        match fd.read_signal() {
            Ok(Some(info)) => out.push(info.ssi_signo as i32),
            Ok(None) => break,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    out
}

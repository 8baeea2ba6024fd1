//! The OS seam: every system call keel makes goes through here.
//!
//! This is the only module allowed to contain `unsafe`; each block carries a `// SAFETY:`
//! comment. Policy does not live here: these functions do what they are told and report
//! errors as `Errno`, and the callers decide what an error means. Nothing here may block
//! PID 1 for long (no sleeps, no blocking reads of ttys).

pub mod caps;
pub mod cgroup;
pub mod clock;
pub mod console;
pub mod control;
pub mod fs;
pub mod input;
pub mod kmod;
pub mod linux;
pub mod net;
pub mod notify;
pub mod pipe;
pub mod power;
pub mod probe;
pub mod reap;
pub mod signals;
pub mod spawn;
pub mod users;
pub mod watchdog;

/// Makes this process a child subreaper: orphans of its descendants are re-parented to it
/// (and reaped by `reap::drain`) instead of to PID 1 (`keel supervise`).
pub fn become_subreaper() -> Result<(), nix::errno::Errno> {
    nix::sys::prctl::set_child_subreaper(true)
}

/// A seed for the supervisor's backoff jitter: 8 bytes from getrandom(GRND_INSECURE),
/// which never blocks, or the clock mixed with the pid when that fails (jitter does not
/// need secrecy, only that two machines booted together do not retry in lockstep).
pub fn jitter_seed() -> u64 {
    let mut buf = [0u8; 8];
    // SAFETY: `buf` is a valid, writable 8-byte buffer for the whole call, and
    // getrandom(2) writes at most `buf.len()` bytes into it.
    let n = unsafe {
        libc::getrandom(
            buf.as_mut_ptr().cast::<libc::c_void>(),
            buf.len(),
            libc::GRND_INSECURE | libc::GRND_NONBLOCK,
        )
    };
    if n == 8 {
        return u64::from_le_bytes(buf);
    }
    let (secs, micros) = clock::since_boot();
    (secs << 20) ^ u64::from(micros) ^ (u64::from(std::process::id()) << 40)
}

/// Sends signal number `signo` to `pid` (numbers nix has no name for are refused).
pub fn kill(pid: i32, signo: u8) -> Result<(), nix::errno::Errno> {
    let sig = nix::sys::signal::Signal::try_from(i32::from(signo))?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)
}

//! Console file descriptors: opening ttys for the logger without ever blocking on them.
//!
//! Log fds are opened O_WRONLY|O_NONBLOCK|O_NOCTTY|O_CLOEXEC: a slow or stuck console
//! returns EAGAIN instead of stopping PID 1, opening never makes a tty keel's controlling
//! terminal, and no child inherits them. Nothing here reads from a tty.

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, OwnedFd};

/// Opens a console (or /dev/kmsg) for non-blocking writes.
pub fn open_log_target(path: &str) -> Result<OwnedFd, Errno> {
    open(
        path,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// One write(2); never retried here, so a full tty costs one failed call.
pub fn write_once<F: AsFd>(fd: F, buf: &[u8]) -> Result<usize, Errno> {
    nix::unistd::write(fd, buf)
}

/// Waits up to `ms` for `fd` to accept a write. Only applets call this; PID 1 never waits
/// on a console.
pub fn wait_writable<F: AsFd>(fd: F, ms: u16) {
    let mut fds = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLOUT,
    )];
    let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
}

/// Waits up to 1 s for `fd` to have data: for tests that drain a pipe standing in for a tty.
#[cfg(test)]
pub fn wait_readable_for_test<F: AsFd>(fd: F) {
    let mut fds = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(1000u16));
}

/// Points fds 0, 1 and 2 at /dev/null, so nothing in keel can block on the console it
/// was started with. Errors are returned; the caller logs them.
pub fn stdio_to_null() -> Result<(), Errno> {
    let null = open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    nix::unistd::dup2_stderr(&null)?;
    Ok(())
}

/// Makes `path` (a tty) this process's controlling terminal and its stdin, stdout and
/// stderr, starting a new session first unless this process already leads one. For a
/// program that then execs a shell on that tty (`keel getty` without a password).
pub fn take_tty_as_stdio(path: &str) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    match nix::unistd::setsid() {
        // EPERM: already a process group leader; the supervisor starts services as
        // session leaders, which is what TIOCSCTTY needs.
        Ok(_) | Err(Errno::EPERM) => {}
        Err(e) => return Err(e),
    }
    let tty = open(path, OFlag::O_RDWR | OFlag::O_NOCTTY, Mode::empty())?;
    // SAFETY: TIOCSCTTY takes an int argument (1: steal the tty from another session, as
    // root may); `tty` is an open fd owned by this function for the whole call.
    let rc = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSCTTY as _, 1) };
    if rc < 0 {
        return Err(Errno::last());
    }
    nix::unistd::dup2_stdin(&tty)?;
    nix::unistd::dup2_stdout(&tty)?;
    nix::unistd::dup2_stderr(&tty)?;
    Ok(())
}

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

/// Points fds 0, 1 and 2 at /dev/null, so nothing in keel can block on the console it
/// was started with. Errors are returned; the caller logs them.
pub fn stdio_to_null() -> Result<(), Errno> {
    let null = open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    nix::unistd::dup2_stderr(&null)?;
    Ok(())
}

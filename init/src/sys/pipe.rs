//! Log pipes: one per spawned service, stdout and stderr in, keel reads without blocking.
//!
//! The read end is O_NONBLOCK and close-on-exec and sits in the poll set; the write end is
//! close-on-exec too (the child gets its own copies on 1 and 2 from dup2) and is closed in
//! the parent right after the fork, so EOF comes when the last writer (the service, or a
//! daemon it forked) is gone. Reads are bounded per round: a chatty service cannot starve
//! the loop.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use std::os::fd::{AsFd, OwnedFd};

/// Bytes read from one pipe per round at most.
pub const READ_BUDGET: usize = 64 * 1024;

/// A new pipe: (read end, write end).
pub fn new() -> Result<(OwnedFd, OwnedFd), Errno> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    nix::fcntl::fcntl(&r, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    Ok((r, w))
}

/// What one bounded read found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drained {
    pub data: Vec<u8>,
    /// Every writer is gone (or the pipe failed): close it.
    pub eof: bool,
}

/// Reads what is there, up to [`READ_BUDGET`], without blocking.
pub fn drain<F: AsFd>(fd: F) -> Drained {
    let mut out = Drained::default();
    let mut buf = [0u8; 4096];
    while out.data.len() < READ_BUDGET {
        match nix::unistd::read(fd.as_fd(), &mut buf) {
            Ok(0) => {
                out.eof = true;
                break;
            }
            Ok(n) => out.data.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => break,
            Err(_) => {
                out.eof = true;
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_without_blocking_and_sees_eof() {
        let Ok((r, w)) = new() else {
            panic!("pipe2 failed")
        };
        assert_eq!(
            drain(&r),
            Drained::default(),
            "an empty pipe must not block"
        );
        assert_eq!(nix::unistd::write(&w, b"hello\n"), Ok(6));
        drop(w);
        let d = drain(&r);
        assert_eq!(d.data, b"hello\n");
        assert!(d.eof);
    }
}

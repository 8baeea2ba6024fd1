//! The control socket: a non-blocking unix stream listener, its connections, and who is
//! on the other end (SO_PEERCRED).
//!
//! Each connection buffers what came in (at most a request's worth, see
//! [`Conn::take_line`]; what does not fit stays in the socket until the lines before it
//! are answered, so pipelined requests are never dropped) and what is to go out (at most
//! [`MAX_OUTPUT`]); reads and writes never block, so a client that stops reading or sends
//! garbage costs keel a buffer, never its loop. Deciding what a request means is not done
//! here.

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, UnixAddr, accept4, bind, getsockopt, listen,
    socket, sockopt,
};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

/// Bytes queued for one client at most; a client that falls this far behind (a `logs -f`
/// that does not read) is dropped. 32 connections cost PID 1 at most 8 MiB. One answer
/// is always queued whole, however large, when nothing else waits: its size is bounded by
/// what keel holds (the log rings, the status of every service).
pub const MAX_OUTPUT: usize = 256 << 10;

/// No further request is taken from a connection while this much of its output waits:
/// pipelined requests wait in the socket, not in keel's memory.
pub const HIGH_WATER: usize = 64 << 10;

/// The listening socket.
#[derive(Debug)]
pub struct Listener {
    pub fd: OwnedFd,
    pub path: String,
}

fn io_errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

impl Listener {
    /// Binds `path` with mode 0600. A stale socket file is replaced; one that a live
    /// process still accepts on is not (EADDRINUSE).
    pub fn bind(path: &str) -> Result<Listener, Errno> {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(Errno::EADDRINUSE);
        }
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_errno(&e)),
        }
        let fd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        let addr = UnixAddr::new(path)?;
        // Create the socket file with no permissions for others from the start.
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
        let bound = bind(fd.as_raw_fd(), &addr);
        nix::sys::stat::umask(old);
        bound?;
        listen(&fd, Backlog::new(16).unwrap_or(Backlog::MAXCONN))?;
        Ok(Listener {
            fd,
            path: path.to_string(),
        })
    }

    /// Accepts one waiting connection, with the peer's uid. `Ok(None)`: none waiting.
    pub fn accept(&self) -> Result<Option<(OwnedFd, Option<u32>)>, Errno> {
        match accept4(
            self.fd.as_raw_fd(),
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        ) {
            Ok(raw) => {
                // SAFETY: accept4 just returned this descriptor; nothing else owns it.
                let fd = unsafe { OwnedFd::from_raw_fd(raw) };
                let uid = getsockopt(&fd, sockopt::PeerCredentials)
                    .ok()
                    .map(|c| c.uid());
                Ok(Some((fd, uid)))
            }
            Err(Errno::EAGAIN) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Why a connection's input cannot give a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// More than `max` bytes without a newline.
    TooLong,
}

/// One client.
#[derive(Debug)]
pub struct Conn {
    pub fd: OwnedFd,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Stop reading; close once the output is flushed.
    pub closing: bool,
    /// The peer hung up or an error happened: close now.
    pub dead: bool,
    /// Dropped because its output passed [`MAX_OUTPUT`] (the driver logs it).
    pub overflowed: bool,
    /// It asked to follow logs: never evicted for being idle.
    pub following: bool,
    /// When it was accepted or last sent a request.
    pub last_active: supervisor::Mono,
}

impl Conn {
    pub fn new(fd: OwnedFd, now: supervisor::Mono) -> Conn {
        Conn {
            fd,
            input: Vec::new(),
            output: Vec::new(),
            closing: false,
            dead: false,
            overflowed: false,
            following: false,
            last_active: now,
        }
    }

    /// Reads what is waiting while a line is not complete, keeping at most `max + 1`
    /// bytes of input: what does not fit stays in the socket for the next read, never
    /// dropped. Returns whether any byte came.
    pub fn read(&mut self, max: usize) -> bool {
        let mut buf = [0u8; 2048];
        let mut got = false;
        for _ in 0..16 {
            let room = (max + 1).saturating_sub(self.input.len()).min(buf.len());
            if room == 0 || self.has_line() {
                return got;
            }
            match nix::unistd::read(self.fd.as_fd(), &mut buf[..room]) {
                Ok(0) => {
                    // The client is done sending (it may still read): answer what came,
                    // then close.
                    self.closing = true;
                    return got;
                }
                Ok(n) => {
                    got = true;
                    self.input.extend_from_slice(&buf[..n]);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return got,
                Err(_) => {
                    self.dead = true;
                    return got;
                }
            }
        }
        got
    }

    /// A whole line waits in the input.
    pub fn has_line(&self) -> bool {
        self.input.contains(&b'\n')
    }

    /// Bytes of input read and not yet taken (at most `max + 1` of [`Conn::read`]); for the
    /// fuzz target `control_framing`.
    #[doc(hidden)]
    pub fn input_len(&self) -> usize {
        self.input.len()
    }

    /// Bytes waiting to be sent.
    pub fn output_len(&self) -> usize {
        self.output.len()
    }

    /// Whether keel takes requests from this connection now: not closing, and not so far
    /// behind on its answers that more would pile up.
    pub fn takes_requests(&self) -> bool {
        !self.closing && !self.dead && self.output.len() < HIGH_WATER
    }

    /// Poll it for input: it takes requests and no whole line is waiting already.
    pub fn wants_read(&self) -> bool {
        self.takes_requests() && !self.has_line()
    }

    /// The next complete line (newline included), if any; an error when `max` bytes came
    /// without one.
    pub fn take_line(&mut self, max: usize) -> Option<Result<Vec<u8>, Overflow>> {
        take_line(&mut self.input, max)
    }

    /// Queues bytes to send; a client too far behind is marked dead (and `overflowed`).
    /// One answer is queued whole when nothing else waits, whatever its size.
    pub fn queue(&mut self, bytes: &[u8]) {
        if self.dead {
            return;
        }
        if !self.output.is_empty() && self.output.len() + bytes.len() > MAX_OUTPUT {
            self.dead = true;
            self.overflowed = true;
            self.output = Vec::new();
            return;
        }
        self.output.extend_from_slice(bytes);
    }

    /// True when output is waiting (poll for POLLOUT).
    pub fn wants_write(&self) -> bool {
        !self.output.is_empty()
    }

    /// Writes what the socket takes now.
    pub fn flush(&mut self) {
        while !self.output.is_empty() {
            match nix::unistd::write(self.fd.as_fd(), &self.output) {
                Ok(0) => break,
                Ok(n) => {
                    self.output.drain(..n);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                Err(_) => {
                    self.dead = true;
                    break;
                }
            }
        }
    }

    /// Done: dead, or closing with nothing left to send.
    pub fn finished(&self) -> bool {
        self.dead || (self.closing && self.output.is_empty())
    }
}

/// A spare descriptor (/dev/null) kept for the moment keel runs out: closing it frees
/// one slot to accept a waiting connection and tell it why it is refused, so a full fd
/// table does not leave the listener readable for ever (the loop would spin).
pub fn spare_fd() -> Option<OwnedFd> {
    std::fs::File::open("/dev/null").ok().map(OwnedFd::from)
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit, so PID 1's own table (log
/// pipes, control connections, notify sockets) is as large as it may be. Children get
/// the soft limit back ([`super::spawn`] restores it), so services see what they would
/// have without keel. Returns (old soft, hard).
pub fn raise_nofile() -> Result<(u64, u64), Errno> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    super::spawn::set_child_nofile(soft, hard);
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok((soft, hard))
}

/// Splits the first line off `input` (pure; see [`Conn::take_line`]).
pub fn take_line(input: &mut Vec<u8>, max: usize) -> Option<Result<Vec<u8>, Overflow>> {
    match input.iter().position(|&b| b == b'\n') {
        Some(i) if i < max => Some(Ok(input.drain(..=i).collect())),
        Some(_) => {
            input.clear();
            Some(Err(Overflow::TooLong))
        }
        None if input.len() >= max => {
            input.clear();
            Some(Err(Overflow::TooLong))
        }
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_bounded() {
        let mut b = b"keel/1 status\nkeel/1 st".to_vec();
        assert_eq!(
            take_line(&mut b, 1024),
            Some(Ok(b"keel/1 status\n".to_vec()))
        );
        assert_eq!(take_line(&mut b, 1024), None);
        let mut long = vec![b'a'; 1024];
        assert_eq!(take_line(&mut long, 1024), Some(Err(Overflow::TooLong)));
        let mut long_line = vec![b'a'; 2000];
        long_line.push(b'\n');
        assert_eq!(
            take_line(&mut long_line, 1024),
            Some(Err(Overflow::TooLong))
        );
        // Exactly the limit, newline included, is accepted.
        let mut edge = vec![b'a'; 1023];
        edge.push(b'\n');
        assert!(matches!(take_line(&mut edge, 1024), Some(Ok(l)) if l.len() == 1024));
    }
}

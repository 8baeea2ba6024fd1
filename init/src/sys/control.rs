//! The control socket: a non-blocking unix stream listener, its connections, and who is
//! on the other end (SO_PEERCRED).
//!
//! Each connection buffers what came in (at most a request's worth, see
//! [`Conn::take_line`]) and what is to go out (at most [`MAX_OUTPUT`]); reads and writes
//! never block, so a client that stops reading or sends garbage costs keel a buffer, never
//! its loop. Deciding what a request means is not done here.

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, UnixAddr, accept4, bind, getsockopt, listen,
    socket, sockopt,
};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

/// Bytes queued for one client at most; a client that falls this far behind is dropped.
pub const MAX_OUTPUT: usize = 4 << 20;

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
}

impl Conn {
    pub fn new(fd: OwnedFd) -> Conn {
        Conn {
            fd,
            input: Vec::new(),
            output: Vec::new(),
            closing: false,
            dead: false,
        }
    }

    /// Reads what is waiting, keeping at most `max + 1` bytes of unfinished input.
    pub fn read(&mut self, max: usize) {
        let mut buf = [0u8; 1024];
        for _ in 0..16 {
            match nix::unistd::read(self.fd.as_fd(), &mut buf) {
                Ok(0) => {
                    // The client is done sending (it may still read): answer what came,
                    // then close.
                    self.closing = true;
                    return;
                }
                Ok(n) => {
                    let room = (max + 1).saturating_sub(self.input.len());
                    self.input.extend_from_slice(&buf[..n.min(room)]);
                    if self.input.len() > max && !self.input.contains(&b'\n') {
                        return;
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return,
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
    }

    /// The next complete line (newline included), if any; an error when `max` bytes came
    /// without one.
    pub fn take_line(&mut self, max: usize) -> Option<Result<Vec<u8>, Overflow>> {
        take_line(&mut self.input, max)
    }

    /// Queues bytes to send; a client too far behind is marked dead.
    pub fn queue(&mut self, bytes: &[u8]) {
        if self.output.len() + bytes.len() > MAX_OUTPUT {
            self.dead = true;
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

//! TCP readiness probes: non-blocking connects to a local port.
//!
//! `start` opens a non-blocking socket and begins a connect to 127.0.0.1 or ::1; the
//! driver polls it for POLLOUT and asks `finish` whether it connected. Nothing here waits
//! or retries: when to try again is the driver's deadline.

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6, connect, getsockopt, socket,
    sockopt,
};
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd};

/// How a connect attempt stands.
#[derive(Debug)]
pub enum Attempt {
    /// It connected at once: the port is open.
    Open,
    /// In progress: poll the socket for POLLOUT, then call `finish`.
    Pending(OwnedFd),
    /// Refused or impossible right now.
    Failed(Errno),
}

/// Starts a connect to `port` on loopback (`v6`: ::1, else 127.0.0.1).
pub fn start(port: u16, v6: bool) -> Attempt {
    let family = if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    let fd = match socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    ) {
        Ok(fd) => fd,
        Err(e) => return Attempt::Failed(e),
    };
    let result = if v6 {
        let addr = SockaddrIn6::from(SocketAddrV6::new(Ipv6Addr::LOCALHOST, port, 0, 0));
        connect(fd.as_raw_fd(), &addr)
    } else {
        connect(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, port))
    };
    match result {
        Ok(()) => Attempt::Open,
        Err(Errno::EINPROGRESS) | Err(Errno::EINTR) => Attempt::Pending(fd),
        Err(e) => Attempt::Failed(e),
    }
}

/// After POLLOUT (or POLLERR/POLLHUP): did the pending connect succeed?
pub fn finish(fd: &OwnedFd) -> bool {
    matches!(getsockopt(fd, sockopt::SocketError), Ok(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One whole probe of `port`: start, wait up to 2 s for the connect, finish.
    fn connects(port: u16) -> bool {
        match start(port, false) {
            Attempt::Open => true,
            Attempt::Pending(fd) => {
                let mut fds = [nix::poll::PollFd::new(
                    std::os::fd::AsFd::as_fd(&fd),
                    nix::poll::PollFlags::POLLOUT,
                )];
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(2000u16));
                finish(&fd)
            }
            Attempt::Failed(_) => false,
        }
    }

    #[test]
    fn an_open_port_connects_and_a_closed_one_does_not() {
        let Ok(l) = std::net::TcpListener::bind("127.0.0.1:0") else {
            return;
        };
        let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
        assert!(connects(port), "port {port} is listening");
        drop(l);
        assert!(!connects(port), "port {port} is closed");
    }
}

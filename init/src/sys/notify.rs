//! sd_notify readiness: one unix datagram socket per service, `NOTIFY_SOCKET` in its env.
//!
//! A socket per service (not one shared socket) means a datagram says which service it is
//! for by where it arrives, so descendants (dhclient's hook script, `keel notify`) can
//! report for it without keel matching pids. The socket is owned by the service's user
//! with mode 0600. The datagram parser is pure and never fails: unknown keys are ignored,
//! as systemd does.

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr, bind, recv, socket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// The largest datagram read; longer ones are cut (READY=1 comes first in practice).
pub const MAX_DATAGRAM: usize = 4096;
/// Datagrams read from one socket per round at most.
pub const PER_ROUND: usize = 16;

/// What a datagram said.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Notice {
    pub ready: bool,
    pub status: Option<String>,
    pub stopping: bool,
}

/// Parses one sd_notify datagram: newline-separated `KEY=VALUE` assignments.
pub fn parse(data: &[u8]) -> Notice {
    let text = String::from_utf8_lossy(data);
    let mut n = Notice::default();
    for line in text.split('\n') {
        match line.split_once('=') {
            Some(("READY", "1")) => n.ready = true,
            Some(("STOPPING", "1")) => n.stopping = true,
            Some(("STATUS", s)) => n.status = Some(s.chars().take(200).collect()),
            _ => {}
        }
    }
    n
}

/// Binds a non-blocking datagram socket at `path` (an old one is replaced), owned by
/// `uid`:`gid` with mode 0600.
pub fn bind_at(path: &str, uid: u32, gid: u32) -> Result<OwnedFd, Errno> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)),
    }
    let addr = UnixAddr::new(path)?;
    bind(fd.as_raw_fd(), &addr)?;
    nix::unistd::chown(
        path,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )?;
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        path,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )?;
    Ok(fd)
}

/// Reads the waiting datagrams (at most [`PER_ROUND`]) without blocking.
pub fn receive<F: AsFd>(fd: F) -> Vec<Notice> {
    let mut out = Vec::new();
    let mut buf = [0u8; MAX_DATAGRAM];
    for _ in 0..PER_ROUND {
        match recv(fd.as_fd().as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => out.push(parse(&buf[..n])),
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    out
}

/// Sends one datagram to the socket at `path` (the `keel notify` applet).
pub fn send(path: &str, message: &str) -> Result<(), Errno> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
    nix::sys::socket::sendto(fd.as_raw_fd(), message.as_bytes(), &addr, MsgFlags::empty()).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_parse_like_sd_notify() {
        assert_eq!(
            parse(b"READY=1\nSTATUS=listening on 80"),
            Notice {
                ready: true,
                status: Some("listening on 80".into()),
                stopping: false
            }
        );
        assert_eq!(parse(b"READY=0\nMAINPID=7\n"), Notice::default());
        assert_eq!(parse(b"\xff\xfe"), Notice::default());
        assert!(parse(b"STOPPING=1").stopping);
    }

    #[test]
    fn a_datagram_arrives_on_the_bound_socket() {
        let dir = std::env::temp_dir().join(format!("keel-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("svc").display().to_string();
        let fd = bind_at(
            &path,
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        assert!(fd.is_ok(), "{fd:?}");
        let Ok(fd) = fd else { return };
        assert!(receive(&fd).is_empty());
        assert_eq!(send(&path, "READY=1"), Ok(()));
        assert_eq!(receive(&fd).first().map(|n| n.ready), Some(true));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

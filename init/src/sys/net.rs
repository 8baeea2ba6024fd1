//! The loopback interface: bringing `lo` up with SIOCSIFFLAGS.
//!
//! The kernel gives `lo` 127.0.0.1/8 and ::1 by itself once it is up, so one flag is all
//! PID 1 sets here. Other interfaces belong to netcfg and are configured over netlink.

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
use std::os::fd::{AsRawFd, OwnedFd};

fn control_socket() -> Result<OwnedFd, Errno> {
    match socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    ) {
        // Interface ioctls work on any socket; a kernel without IPv4 still has AF_UNIX.
        Err(Errno::EAFNOSUPPORT) => socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        ),
        other => other,
    }
}

/// Sets IFF_UP on the interface `name` (at most 15 bytes).
pub fn set_up(name: &str) -> Result<(), Errno> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(Errno::EINVAL);
    }
    let sock = control_socket()?;
    // SAFETY: `ifreq` is plain old data (a name array and a union of integers, sockaddrs
    // and a pointer); all-zero bytes are a valid value for every field.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: `sock` is an open socket; SIOCGIFFLAGS reads `ifr_name` and writes
    // `ifr_ifru.ifru_flags` of the `ifreq` we pass by valid, exclusive pointer.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) };
    Errno::result(rc)?;
    // SAFETY: the kernel has just filled `ifru_flags` (SIOCGIFFLAGS), so reading that
    // union field reads initialized memory of the right type.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short != 0 {
        return Ok(());
    }
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: as above; SIOCSIFFLAGS reads the name and the flags from `req`.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req) };
    Errno::result(rc).map(drop)
}

//! Netlink itself, shared by rtnetlink (`rtnl`, links, addresses, routes) and nfnetlink
//! (`nft`, the firewall): the socket, message framing and attribute parsing, with nix's safe
//! socket API and no `unsafe` code. Layouts are linux/netlink.h, in host byte order.
//!
//! Nothing here blocks without a bound: every receive has [`REPLY_TIMEOUT_SECS`].

use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, sockopt,
};
use nix::sys::time::TimeVal;

/// How long one netlink request may wait for its reply.
pub const REPLY_TIMEOUT_SECS: i64 = 2;

#[doc(hidden)]
pub const NLMSG_ERROR: u16 = 2;
#[doc(hidden)]
pub const NLMSG_DONE: u16 = 3;
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
pub(crate) const NLM_F_REPLACE: u16 = 0x100;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
pub(crate) const NLM_F_APPEND: u16 = 0x800;
/// Attribute type flag of a nested attribute (NLA_F_NESTED).
pub(crate) const NLA_F_NESTED: u16 = 0x8000;

#[doc(hidden)]
pub const HDR_LEN: usize = 16;

/// Why a netlink call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NlError {
    /// A system call on the socket failed.
    Socket { what: &'static str, errno: i32 },
    /// The kernel answered with this errno.
    Kernel(i32),
    /// No reply within [`REPLY_TIMEOUT_SECS`].
    Timeout,
    /// A reply keel could not read.
    Protocol(String),
    /// No link has this name.
    NoLink(String),
}

impl NlError {
    /// The kernel says the thing to delete is not there.
    pub fn is_gone(&self) -> bool {
        matches!(self, NlError::Kernel(e) if [
            Errno::ENOENT as i32, Errno::ESRCH as i32, Errno::EADDRNOTAVAIL as i32
        ].contains(e))
    }
}

impl fmt::Display for NlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NlError::Socket { what, errno } => {
                let e = Errno::from_raw(*errno);
                write!(f, "netlink {what} failed: {e:?} ({})", e.desc())
            }
            NlError::Kernel(errno) => {
                let e = Errno::from_raw(*errno);
                write!(f, "the kernel refused: {e:?} ({})", e.desc())
            }
            NlError::Timeout => {
                write!(f, "no netlink reply within {REPLY_TIMEOUT_SECS} s")
            }
            NlError::Protocol(m) => write!(f, "unreadable netlink reply: {m}"),
            NlError::NoLink(n) => write!(f, "no network link named {n}"),
        }
    }
}

impl std::error::Error for NlError {}

/// A netlink message under construction.
pub(crate) struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    pub(crate) fn new(ty: u16, flags: u16) -> Msg {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(&[0; 8]);
        Msg { buf }
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Msg {
        self.buf.extend_from_slice(b);
        self
    }

    pub(crate) fn attr(&mut self, ty: u16, payload: &[u8]) -> &mut Msg {
        let len = 4 + payload.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
        self
    }

    pub(crate) fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

impl Msg {
    /// Appends a nested attribute whose payload `f` writes.
    pub(crate) fn nest(&mut self, ty: u16, f: impl FnOnce(&mut Msg)) -> &mut Msg {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        f(self);
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        self.buf[at + 2..at + 4].copy_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        self
    }
}

#[doc(hidden)]
pub fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

#[doc(hidden)]
pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Iterates over the rtattrs in `b`: (type, payload).
#[doc(hidden)]
pub fn attrs(b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let len = usize::from(u16_at(b, at)?);
        let ty = u16_at(b, at + 2)? & 0x3fff;
        if len < 4 {
            return None;
        }
        let payload = b.get(at + 4..at + len)?;
        at += (len + 3) & !3;
        Some((ty, payload))
    })
}

/// The largest errno the kernel uses (MAX_ERRNO in linux/err.h).
pub const MAX_ERRNO: i32 = 4095;

/// Reads the payload of an NLMSG_ERROR message (struct nlmsgerr: an `int error`, then the
/// header of the request): `Ok(0)` for an ACK, `Ok(errno)` (positive) for a refusal, an
/// error for a payload too short to hold the code or a code that is not `0` or `-errno`
/// (positive, or past [`MAX_ERRNO`]). Never panics; it reads only the first 4 bytes.
#[doc(hidden)]
pub fn nlmsgerr(payload: &[u8]) -> Result<i32, NlError> {
    let Some(raw) = u32_at(payload, 0) else {
        return Err(NlError::Protocol(format!(
            "NLMSG_ERROR with {} bytes, too short for its error code",
            payload.len()
        )));
    };
    match raw as i32 {
        0 => Ok(0),
        code if (-MAX_ERRNO..0).contains(&code) => Ok(-code),
        code => Err(NlError::Protocol(format!(
            "NLMSG_ERROR with error code {code}, not 0 nor a negative errno"
        ))),
    }
}

/// A bound netlink socket of one protocol, with a receive timeout.
pub(crate) struct Socket {
    fd: OwnedFd,
}

fn sock_err(what: &'static str) -> impl Fn(Errno) -> NlError {
    move |e: Errno| NlError::Socket {
        what,
        errno: e as i32,
    }
}

impl Socket {
    /// Opens a socket in the calling thread's network namespace.
    pub(crate) fn open(proto: SockProtocol) -> Result<Socket, NlError> {
        let fd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            proto,
        )
        .map_err(sock_err("socket"))?;
        socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(sock_err("bind"))?;
        socket::setsockopt(
            &fd,
            sockopt::ReceiveTimeout,
            &TimeVal::new(REPLY_TIMEOUT_SECS, 0),
        )
        .map_err(sock_err("setsockopt"))?;
        Ok(Socket { fd })
    }

    pub(crate) fn send(&self, buf: &[u8]) -> Result<(), NlError> {
        socket::send(self.fd.as_raw_fd(), buf, MsgFlags::empty())
            .map(|_| ())
            .map_err(sock_err("send"))
    }

    /// Receives one datagram; [`NlError::Timeout`] after [`REPLY_TIMEOUT_SECS`].
    pub(crate) fn recv(&self, rx: &mut [u8]) -> Result<usize, NlError> {
        loop {
            match socket::recv(self.fd.as_raw_fd(), rx, MsgFlags::empty()) {
                Ok(n) => return Ok(n),
                Err(Errno::EAGAIN) => return Err(NlError::Timeout),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(sock_err("recv")(e)),
            }
        }
    }
}

/// Iterates over the messages in one received datagram: (type, seq, payload), or an error for
/// a truncated one.
#[doc(hidden)]
pub fn messages(rx: &[u8]) -> impl Iterator<Item = Result<(u16, u32, &[u8]), NlError>> {
    let n = rx.len();
    let mut at = 0;
    std::iter::from_fn(move || {
        if at + HDR_LEN > n {
            return None;
        }
        let start = at;
        let bad = move || NlError::Protocol(format!("truncated message at byte {start} of {n}"));
        let (Some(len), Some(ty), Some(seq)) =
            (u32_at(rx, at), u16_at(rx, at + 4), u32_at(rx, at + 8))
        else {
            at = n;
            return Some(Err(bad()));
        };
        let len = len as usize;
        if len < HDR_LEN || at + len > n {
            at = n;
            return Some(Err(bad()));
        }
        let payload = &rx[at + HDR_LEN..at + len];
        at += (len + 3) & !3;
        Some(Ok((ty, seq, payload)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_payload(code: i32) -> Vec<u8> {
        let mut p = code.to_ne_bytes().to_vec();
        p.extend_from_slice(&[0; HDR_LEN]);
        p
    }

    #[test]
    fn nlmsgerr_reads_ack_and_errno() {
        assert_eq!(nlmsgerr(&err_payload(0)), Ok(0));
        assert_eq!(nlmsgerr(&err_payload(-17)), Ok(17));
        assert_eq!(nlmsgerr(&err_payload(-MAX_ERRNO)), Ok(MAX_ERRNO));
    }

    /// Seen while writing the fuzz target `rtnetlink`: `-code` overflowed (a panic in a debug build)
    /// for i32::MIN, and a positive code became a negative "errno".
    #[test]
    fn nlmsgerr_refuses_codes_that_are_no_errno() {
        for code in [i32::MIN, -MAX_ERRNO - 1, 1, i32::MAX] {
            assert!(
                matches!(nlmsgerr(&err_payload(code)), Err(NlError::Protocol(_))),
                "{code}"
            );
        }
    }

    /// Seen while writing the fuzz target `nfnetlink_acks`: a short NLMSG_ERROR was read as an ACK.
    #[test]
    fn a_short_nlmsgerr_is_no_ack() {
        for len in 0..4 {
            assert!(
                matches!(nlmsgerr(&[0; 3][..len]), Err(NlError::Protocol(_))),
                "{len} bytes"
            );
        }
    }
}

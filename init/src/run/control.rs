//! The control room: the control socket's listener and connections. Accepting (with the
//! uid check, the connection cap and idle eviction, and a spare descriptor for when keel
//! runs out), reading one request at a time, queueing replies, flushing. What a request
//! means is the core's; this room only says who may ask and carries the bytes.
#![forbid(unsafe_code)]

use super::fds::{Registry, Source};
use super::host::Host;
use crate::log::Level;
use crate::sys::clock;
use crate::sys::control::{self, Conn, Listener, Overflow};
use nix::errno::Errno;
use nix::poll::PollFlags;
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use supervisor::event::ConnId;
use supervisor::proto::{MAX_REQUEST, Request, Response};
use supervisor::{Mono, PowerKind};

/// At most this many control connections at once; more get an error and are closed.
pub const MAX_CONNS: usize = 32;
/// At the cap, a connection idle this long that does not follow logs gives its slot to a
/// new one (told why), so idle clients cannot lock keelctl out.
pub const IDLE_EVICT_MS: u64 = 10_000;
/// With no descriptor left to accept (EMFILE, ENFILE) and no spare to free, the listener
/// is not polled for this long, so a waiting connection cannot make the loop spin.
pub const ACCEPT_BACKOFF_MS: u64 = 1_000;
/// Requests taken from one connection per round, so one client cannot starve the rest.
pub const REQUESTS_PER_ROUND: usize = 256;
/// The connection id of keel's own requests (replies to it are dropped).
pub const INTERNAL: ConnId = ConnId(0);

/// Who may use the control socket: root, and the user keel runs as (`own`, for
/// `keel supervise`). Err is the reply to anyone else.
pub fn authorise(peer: Option<u32>, own: u32) -> Result<(), String> {
    match peer {
        Some(0) => Ok(()),
        Some(u) if u == own => Ok(()),
        Some(u) => Err(format!(
            "permission denied: the control socket is for root (uid 0); you are uid {u}"
        )),
        None => Err("permission denied: cannot tell who you are (SO_PEERCRED)".into()),
    }
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// In PID 1 the lifecycle runs a power request (services first, then the rest): the
    /// reply goes out at once, the request to the lifecycle.
    Power(PowerKind, Response),
    /// Nobody can answer it but this reply.
    Refused(Response),
    /// The core's.
    Core(Request),
}

/// Routes a request: `lifecycle` in PID 1, `services` when the config loaded.
pub fn route(r: Request, lifecycle: bool, services: bool) -> Routed {
    let power = match r {
        Request::PowerOff => Some(PowerKind::PowerOff),
        Request::Reboot => Some(PowerKind::Reboot),
        _ => None,
    };
    match power {
        Some(kind) if lifecycle => {
            Routed::Power(kind, Response::Ok(format!("{} requested", kind.verb())))
        }
        _ if !services => Routed::Refused(Response::Err(
            "no services are running: the appliance config did not load (see the console)".into(),
        )),
        _ => Routed::Core(r),
    }
}

/// The listener and its connections.
#[derive(Debug)]
pub struct Control {
    listener: Option<Listener>,
    /// Kept to free one descriptor when accept finds none (see `control::spare_fd`).
    spare: Option<OwnedFd>,
    /// The listener is not polled before this (out of descriptors).
    paused_until: Option<Mono>,
    conns: BTreeMap<u64, Conn>,
    next_conn: u64,
}

impl Control {
    /// No listener yet.
    pub fn new() -> Control {
        Control {
            listener: None,
            spare: None,
            paused_until: None,
            conns: BTreeMap::new(),
            next_conn: 1,
        }
    }

    /// Listens on `socket`; false (and a log line) when it cannot.
    pub fn listen(&mut self, socket: &str, host: Host) -> bool {
        match Listener::bind(socket) {
            Ok(l) => {
                self.listener = Some(l);
                self.spare = control::spare_fd();
                true
            }
            Err(e) => {
                host.log(
                    Level::Info,
                    &format!("cannot listen on {socket}: {e}; keelctl will not work"),
                );
                false
            }
        }
    }

    /// Takes waiting connections; returns the ids of connections closed to make room
    /// (the core must forget them).
    pub fn accept(&mut self, host: Host) -> Vec<ConnId> {
        let own = nix::unistd::geteuid().as_raw();
        let mut evicted = Vec::new();
        for _ in 0..16 {
            let Some(l) = &self.listener else { break };
            let (fd, uid) = match l.accept() {
                Ok(Some(x)) => x,
                Ok(None) => break,
                Err(e @ (Errno::EMFILE | Errno::ENFILE)) => {
                    self.out_of_fds(e, host);
                    break;
                }
                Err(e) => {
                    host.log(Level::Debug, &format!("accept on the control socket: {e}"));
                    break;
                }
            };
            let now = clock::now();
            let mut conn = Conn::new(fd, now);
            let refusal = authorise(uid, own).err();
            if refusal.is_none() && self.conns.len() >= MAX_CONNS {
                evicted.extend(self.evict_idle(now, host));
            }
            let refusal = refusal.or_else(|| {
                (self.conns.len() >= MAX_CONNS).then(|| {
                    format!("too many control connections (at most {MAX_CONNS}, each busy or idle less than {} s); try again", IDLE_EVICT_MS / 1000)
                })
            });
            if let Some(why) = refusal {
                conn.queue(Response::Err(why).encode().as_bytes());
                conn.closing = true;
                conn.flush();
                // A refused client gets one try to read the reason; it is not kept.
                continue;
            }
            let id = self.next_conn;
            self.next_conn += 1;
            self.conns.insert(id, conn);
        }
        evicted
    }

    /// accept found no descriptor. Free the spare to take the waiting connection and tell
    /// it why it is refused (so it does not wait, and the listener is not left readable);
    /// without a spare, stop polling the listener for a while. Either way the loop does
    /// not spin on a connection it cannot take.
    fn out_of_fds(&mut self, e: Errno, host: Host) {
        let what = format!(
            "keel is out of file descriptors ({e}): control connections are refused until some close"
        );
        if self.spare.take().is_some()
            && let Some(l) = &self.listener
        {
            if let Ok(Some((fd, _))) = l.accept() {
                let mut conn = Conn::new(fd, clock::now());
                conn.queue(Response::Err(what.clone()).encode().as_bytes());
                conn.flush();
            }
            self.spare = control::spare_fd();
        }
        if self.spare.is_none() {
            // No spare (it could not be had again): back off instead.
            self.paused_until = Some(clock::now().plus_ms(ACCEPT_BACKOFF_MS));
        }
        host.log(Level::Debug, &what);
    }

    /// Closes the connection idle longest, if it has been idle [`IDLE_EVICT_MS`] and does
    /// not follow logs, telling it why.
    fn evict_idle(&mut self, now: Mono, host: Host) -> Option<ConnId> {
        let id = self
            .conns
            .iter()
            .filter(|(_, c)| !c.following && !c.closing && !c.wants_write())
            .filter(|(_, c)| now.ms_since(c.last_active) >= IDLE_EVICT_MS)
            .min_by_key(|(_, c)| c.last_active)
            .map(|(id, _)| *id)?;
        if let Some(mut c) = self.conns.remove(&id) {
            let why = format!(
                "closed: idle for {} s while every control connection was taken",
                now.ms_since(c.last_active) / 1000
            );
            c.queue(Response::Err(why).encode().as_bytes());
            c.flush();
        }
        host.log(
            Level::Debug,
            "closed an idle control connection to make room for a new one",
        );
        Some(ConnId(id))
    }

    /// The next request of connection `id`, while it keeps up with the answers: more is
    /// read from the socket only when no whole line is buffered, so nothing is dropped;
    /// an input that cannot be a request gets an error reply, then the connection closes.
    pub fn next_request(&mut self, id: u64) -> Option<Request> {
        let c = self.conns.get_mut(&id)?;
        if !c.takes_requests() && c.wants_write() {
            c.flush();
        }
        if !c.takes_requests() {
            return None;
        }
        if !c.has_line() {
            c.read(MAX_REQUEST);
        }
        let r = match c.take_line(MAX_REQUEST)? {
            Ok(bytes) => match Request::decode(&bytes) {
                Ok(r) => r,
                Err(e) => {
                    c.queue(Response::Err(e.to_string()).encode().as_bytes());
                    c.closing = true;
                    return None;
                }
            },
            Err(Overflow::TooLong) => {
                let e = supervisor::proto::ProtoError::TooLong;
                c.queue(Response::Err(e.to_string()).encode().as_bytes());
                c.closing = true;
                return None;
            }
        };
        c.last_active = clock::now();
        if matches!(r, Request::Logs { follow: true, .. }) {
            c.following = true;
        }
        Some(r)
    }

    /// Queues `resp` for `conn` (dropped for [`INTERNAL`] or a connection gone).
    pub fn reply(&mut self, conn: ConnId, resp: &Response) {
        if conn != INTERNAL
            && let Some(c) = self.conns.get_mut(&conn.0)
        {
            c.queue(resp.encode().as_bytes());
        }
    }

    /// Writes what is queued; returns the connections that are done (the core must
    /// forget them).
    pub fn flush(&mut self, host: Host) -> Vec<ConnId> {
        let mut gone = Vec::new();
        for (id, c) in &mut self.conns {
            if c.wants_write() {
                c.flush();
            }
            if c.finished() {
                gone.push(*id);
            }
        }
        for id in &gone {
            if self.conns.remove(id).is_some_and(|c| c.overflowed) {
                host.log(
                    Level::Info,
                    &format!(
                        "dropped a control connection more than {} KiB behind on its output (a keelctl logs -f that does not read?)",
                        control::MAX_OUTPUT >> 10
                    ),
                );
            }
        }
        gone.into_iter().map(ConnId).collect()
    }

    /// Connections with a request waiting in keel's buffer that they may take now (the
    /// poll must not wait for them: no new byte will come to wake them).
    pub fn waiting(&self) -> Vec<u64> {
        self.conns
            .iter()
            .filter(|(_, c)| c.takes_requests() && c.has_line())
            .map(|(id, _)| *id)
            .collect()
    }

    /// When the listener is polled again after running out of descriptors.
    pub fn deadline(&self) -> Option<Mono> {
        self.paused_until
    }

    /// Polls the listener again once its pause is over.
    pub fn unpause(&mut self, now: Mono) {
        if self.paused_until.is_some_and(|at| now >= at) {
            self.paused_until = None;
        }
    }

    /// Adds the listener (unless paused) and the connections to the poll.
    pub fn register<'a>(&'a self, reg: &mut Registry<'a>) {
        if let (Some(l), None) = (&self.listener, self.paused_until) {
            reg.add(l.fd.as_fd(), PollFlags::POLLIN, Source::Listener);
        }
        for (id, c) in &self.conns {
            let mut flags = PollFlags::empty();
            if c.wants_read() {
                flags |= PollFlags::POLLIN;
            }
            if c.wants_write() {
                flags |= PollFlags::POLLOUT;
            }
            reg.add(c.fd.as_fd(), flags, Source::Conn(*id));
        }
    }

    /// Removes the socket (`keel supervise`'s end; PID 1's lives in a tmpfs).
    pub fn cleanup(&mut self) {
        if let Some(l) = self.listener.take() {
            let _ = std::fs::remove_file(&l.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_goes_to_the_lifecycle_in_pid1_and_the_rest_to_the_core() {
        assert_eq!(
            route(Request::Reboot, true, false),
            Routed::Power(
                PowerKind::Reboot,
                Response::Ok("rebooting requested".into())
            )
        );
        assert_eq!(
            route(Request::PowerOff, false, true),
            Routed::Core(Request::PowerOff)
        );
        assert_eq!(
            route(Request::Status(Vec::new()), true, true),
            Routed::Core(Request::Status(Vec::new()))
        );
        let Routed::Refused(Response::Err(e)) = route(Request::Status(Vec::new()), true, false)
        else {
            panic!("a request with no services must be refused");
        };
        assert!(e.contains("did not load"), "{e}");
    }

    #[test]
    fn root_and_keels_own_user_may_ask_nobody_else() {
        assert_eq!(authorise(Some(0), 1000), Ok(()));
        assert_eq!(authorise(Some(1000), 1000), Ok(()));
        assert!(
            authorise(Some(1001), 1000)
                .unwrap_err()
                .contains("uid 1001")
        );
        assert!(authorise(None, 0).unwrap_err().contains("SO_PEERCRED"));
    }
}

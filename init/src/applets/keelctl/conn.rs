//! keelctl's side of the control socket: connect, send one request, read the answers
//! (one, or a stream for `logs -f` and `wait`) within a timeout.
#![forbid(unsafe_code)]

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;
use supervisor::proto::{Request, Response};

use super::{DEFAULT_TIMEOUT, Opts};

fn connect(socket: &str) -> Result<UnixStream, String> {
    UnixStream::connect(socket).map_err(|e| match e.kind() {
        ErrorKind::NotFound => format!(
            "cannot reach keel at {socket}: no such socket; is keel running? (keel supervise takes --socket PATH; pass the same to keelctl)"
        ),
        ErrorKind::ConnectionRefused => format!(
            "cannot reach keel at {socket}: connection refused; is keel running? the socket may be left over"
        ),
        ErrorKind::PermissionDenied => {
            format!("cannot reach keel at {socket}: permission denied; keelctl needs root")
        }
        _ => format!("cannot reach keel at {socket}: {e}"),
    })
}

/// Why a conversation with keel ended without an answer.
#[derive(Debug)]
pub(super) enum Failure {
    /// keel could not be reached or broke off: the message.
    Unreachable(String),
    /// No answer within the time limit.
    TimedOut(Duration),
}

/// One connection: sends a request, then yields responses as they are complete.
pub(super) struct Conn {
    stream: UnixStream,
    socket: String,
    buf: String,
    pending: Vec<u8>,
    answered: bool,
}

impl Conn {
    pub(super) fn open(
        socket: &str,
        req: &Request,
        timeout: Option<Duration>,
    ) -> Result<Conn, Failure> {
        let mut stream = connect(socket).map_err(Failure::Unreachable)?;
        // A zero timeout means "none" to the socket; keep at least a millisecond.
        let t = timeout.map(|t| t.max(Duration::from_millis(1)));
        let _ = stream.set_read_timeout(t);
        let _ = stream.set_write_timeout(Some(timeout.unwrap_or(DEFAULT_TIMEOUT)));
        stream
            .write_all(req.encode().as_bytes())
            .map_err(|e| Failure::Unreachable(format!("cannot send to {socket}: {e}")))?;
        Ok(Conn {
            stream,
            socket: socket.to_string(),
            buf: String::new(),
            pending: Vec::new(),
            answered: false,
        })
    }

    /// The next response; Ok(None) when keel closed the connection after answering.
    pub(super) fn next(&mut self, timeout: Option<Duration>) -> Result<Option<Response>, Failure> {
        let mut raw = [0u8; 8192];
        loop {
            match Response::decode(&self.buf) {
                Ok(Some((resp, used))) => {
                    self.buf.drain(..used);
                    self.answered = true;
                    return Ok(Some(resp));
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(Failure::Unreachable(format!(
                        "keel sent something this keelctl cannot read: {e}"
                    )));
                }
            }
            let n = match self.stream.read(&mut raw) {
                Ok(0) if self.answered => return Ok(None),
                Ok(0) => {
                    return Err(Failure::Unreachable(
                        "keel closed the connection without answering".into(),
                    ));
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(Failure::TimedOut(timeout.unwrap_or_default()));
                }
                Err(e) => {
                    return Err(Failure::Unreachable(format!(
                        "cannot read from {}: {e}",
                        self.socket
                    )));
                }
            };
            self.pending
                .extend_from_slice(raw.get(..n).unwrap_or_default());
            // Only whole UTF-8 sequences go to the decoder; an incomplete one waits.
            let valid = match std::str::from_utf8(&self.pending) {
                Ok(s) => s.len(),
                Err(e) => e.valid_up_to(),
            };
            let (text, rest) = self.pending.split_at_checked(valid).unwrap_or_default();
            self.buf.push_str(&String::from_utf8_lossy(text));
            self.pending = rest.to_vec();
        }
    }
}

/// Sends `req` and returns the one answer.
pub(super) fn ask(opts: &Opts, req: &Request) -> Result<Response, Failure> {
    let mut c = Conn::open(&opts.socket, req, opts.timeout)?;
    c.next(opts.timeout)?
        .ok_or_else(|| Failure::Unreachable("keel closed the connection without answering".into()))
}

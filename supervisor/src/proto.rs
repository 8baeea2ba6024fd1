//! The control protocol between `keelctl` and keel: the one serialized boundary.
//!
//! Text, line based, UTF-8. A request is one line of at most [`MAX_REQUEST`] bytes:
//!
//! ```text
//! keel/2 status [NAME...]
//! keel/2 start NAME | keel/2 stop NAME | keel/2 restart NAME
//! keel/2 logs NAME [-n N] [-f]
//! keel/2 wait NAME...
//! keel/2 boot
//! keel/2 poweroff | keel/2 reboot
//! ```
//!
//! A response is a header line, maybe followed by as many lines as the header says:
//!
//! ```text
//! ok TEXT
//! err TEXT
//! status N            then N lines: name TAB state TAB pid TAB ready-since-ms TAB restarts
//!                                   TAB last-exit TAB why TAB memory TAB pids TAB procs
//!                                   ("-" for none; last exit is "exit:CODE" or
//!                                   "signal:NUMBER"; memory is memory.current in bytes,
//!                                   pids is pids.current, procs the group's pids, comma-
//!                                   separated; a row of an older keel/2 ends after why)
//! logs N DROPPED      then N lines of output; DROPPED lines were lost to the ring's size
//! line TEXT           one more line of a followed log (`logs -f`)
//! boot N INIT UP      then N lines: name TAB oneshot TAB started TAB ready TAB finished
//!                                   TAB needs TAB after   (times in ms since boot or "-";
//!                                   oneshot "0" or "1"; needs and after comma-separated
//!                                   names or "-"); INIT: when /init started, UP: when every
//!                                   service had been ready once
//! ```
//!
//! `wait` is answered once every named service is ready (`ok`), or as soon as one of them
//! cannot become ready without a request (`err` with the reason: it gave up, it is stopped,
//! keel is shutting down).
//!
//! Text fields escape `\` as `\\`, newline as `\n`, tab as `\t` and carriage return as
//! `\r`. Decoding is total: it returns an error for anything malformed and never panics.
//! Must not grow without bound: requests and responses have size limits.
//!
//! # History
//! - 1: status, start, stop, restart, logs (with -n and -f), poweroff, reboot.
//! - 2: status takes service names; wait; boot (the boot timeline); later, status rows
//!   gained memory, pids and procs (cgroups), which a decoder treats as optional.

use crate::timeline::{BootReport, BootRow};
use crate::types::{Mono, Sig, WaitStatus};
use std::fmt;

/// The version this keel speaks; a request names it as `keel/VERSION`.
pub const PROTOCOL_VERSION: u32 = 2;
/// The longest request accepted, newline included.
pub const MAX_REQUEST: usize = 1024;
/// The most lines one response may carry (a status of many services, a long log tail).
pub const MAX_RESPONSE_LINES: usize = 100_000;

/// What keelctl asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Every service when empty, otherwise these, in this order.
    Status(Vec<String>),
    Start(String),
    Stop(String),
    Restart(String),
    /// The last `lines` lines (all kept if None), then new ones as they come if `follow`.
    Logs {
        name: String,
        lines: Option<u32>,
        follow: bool,
    },
    /// Answer once all of these are ready, or as soon as one cannot become ready.
    Wait(Vec<String>),
    /// The boot timeline.
    Boot,
    PowerOff,
    Reboot,
}

/// At most this many names in one status or wait request (a request line is at most
/// [`MAX_REQUEST`] bytes anyway).
pub const MAX_NAMES: usize = 64;

/// One row of `keelctl status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvcStatus {
    pub name: String,
    pub state: SvcState,
    pub pid: Option<i32>,
    pub ready_since: Option<Mono>,
    /// Starts after the first one.
    pub restarts: u32,
    pub last_exit: Option<WaitStatus>,
    /// Why it is in this state, in words ("waiting for network", "stopped by request").
    pub why: String,
    /// memory.current of its group in bytes (None without cgroups or the controller).
    pub memory: Option<u64>,
    /// pids.current of its group.
    pub pids: Option<u64>,
    /// The processes in its group (filled when one service was asked for).
    pub procs: Vec<i32>,
}

/// What a service is doing, as `keelctl status` names it (docs/services.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SvcState {
    /// Ready.
    Up,
    /// Running, not ready yet.
    Starting,
    /// A oneshot that has not finished.
    Running,
    /// Wanted, but waiting for what it needs or comes after, or for dependents to stop.
    Waiting,
    /// Serving its backoff before a restart.
    Restarting,
    /// Signalled to stop.
    Stopping,
    /// Not running and not wanted.
    Down,
    /// A oneshot that finished.
    Done,
    /// Stopped after a crash loop (`on_give_up`).
    GaveUp,
}

impl SvcState {
    pub const ALL: [SvcState; 9] = [
        SvcState::Up,
        SvcState::Starting,
        SvcState::Running,
        SvcState::Waiting,
        SvcState::Restarting,
        SvcState::Stopping,
        SvcState::Down,
        SvcState::Done,
        SvcState::GaveUp,
    ];

    /// The word on the wire and in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            SvcState::Up => "up",
            SvcState::Starting => "starting",
            SvcState::Running => "running",
            SvcState::Waiting => "waiting",
            SvcState::Restarting => "restarting",
            SvcState::Stopping => "stopping",
            SvcState::Down => "down",
            SvcState::Done => "done",
            SvcState::GaveUp => "gave-up",
        }
    }

    pub fn parse(word: &str) -> Option<SvcState> {
        SvcState::ALL.into_iter().find(|s| s.as_str() == word)
    }

    /// Up for `keelctl is-up` and `wait`: ready, or a oneshot that finished.
    pub fn is_up(self) -> bool {
        matches!(self, SvcState::Up | SvcState::Done)
    }
}

impl fmt::Display for SvcState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What keel answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Ok(String),
    Err(String),
    Status(Vec<SvcStatus>),
    Logs { dropped: u64, lines: Vec<String> },
    Line(String),
    Boot(BootReport),
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    TooLong,
    NotUtf8,
    Unterminated,
    Version(String),
    Malformed(String),
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::TooLong => write!(f, "request longer than {MAX_REQUEST} bytes"),
            ProtoError::NotUtf8 => f.write_str("message is not UTF-8"),
            ProtoError::Unterminated => f.write_str("request does not end with a newline"),
            ProtoError::Version(v) => {
                write!(
                    f,
                    "protocol {v} is not supported; this keel speaks keel/{PROTOCOL_VERSION}, use a keelctl of the same version"
                )
            }
            ProtoError::Malformed(m) => f.write_str(m),
        }
    }
}

/// Escapes a text field so it fits on one line and has no tabs.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`escape`].
pub fn unescape(s: &str) -> Result<String, ProtoError> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            other => {
                return Err(ProtoError::Malformed(format!(
                    "bad escape \\{}",
                    other.map_or(String::new(), String::from)
                )));
            }
        }
    }
    Ok(out)
}

/// Config names, plus `@` for the per-console instances (`getty@ttyS0`, see
/// `appliance::ApplianceConfig::expand_consoles`).
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

impl Request {
    /// One line, newline included.
    pub fn encode(&self) -> String {
        let body = match self {
            Request::Status(names) => words("status", names),
            Request::Wait(names) => words("wait", names),
            Request::Boot => "boot".to_string(),
            Request::Start(n) => format!("start {n}"),
            Request::Stop(n) => format!("stop {n}"),
            Request::Restart(n) => format!("restart {n}"),
            Request::Logs {
                name,
                lines,
                follow,
            } => {
                let mut s = format!("logs {name}");
                if let Some(n) = lines {
                    s.push_str(&format!(" -n {n}"));
                }
                if *follow {
                    s.push_str(" -f");
                }
                s
            }
            Request::PowerOff => "poweroff".to_string(),
            Request::Reboot => "reboot".to_string(),
        };
        format!("keel/{PROTOCOL_VERSION} {body}\n")
    }

    /// Decodes one request line (with its newline). Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Request, ProtoError> {
        if bytes.len() > MAX_REQUEST {
            return Err(ProtoError::TooLong);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| ProtoError::NotUtf8)?;
        let line = text.strip_suffix('\n').ok_or(ProtoError::Unterminated)?;
        if line.contains('\n') {
            return Err(ProtoError::Malformed("one request per line".into()));
        }
        let mut words = line.split_ascii_whitespace();
        let version = words
            .next()
            .ok_or_else(|| ProtoError::Malformed("empty request".into()))?;
        if version != format!("keel/{PROTOCOL_VERSION}") {
            return Err(ProtoError::Version(version.chars().take(32).collect()));
        }
        let verb = words
            .next()
            .ok_or_else(|| ProtoError::Malformed("no command after the version".into()))?;
        let args: Vec<&str> = words.collect();
        let name = |args: &[&str]| -> Result<String, ProtoError> {
            match args.first() {
                Some(n) if valid_name(n) => Ok((*n).to_string()),
                Some(_) => Err(ProtoError::Malformed(format!(
                    "{verb}: not a valid service name"
                ))),
                None => Err(ProtoError::Malformed(format!(
                    "{verb} needs a service name"
                ))),
            }
        };
        let no_more = |args: &[&str], n: usize| -> Result<(), ProtoError> {
            if args.len() > n {
                return Err(ProtoError::Malformed(format!(
                    "{verb}: unexpected argument"
                )));
            }
            Ok(())
        };
        let names = |args: &[&str], at_least: usize| -> Result<Vec<String>, ProtoError> {
            if args.len() < at_least {
                return Err(ProtoError::Malformed(format!(
                    "{verb} needs a service name"
                )));
            }
            if args.len() > MAX_NAMES {
                return Err(ProtoError::Malformed(format!(
                    "{verb}: more than {MAX_NAMES} names"
                )));
            }
            args.iter()
                .map(|n| {
                    if valid_name(n) {
                        Ok((*n).to_string())
                    } else {
                        Err(ProtoError::Malformed(format!(
                            "{verb}: not a valid service name"
                        )))
                    }
                })
                .collect()
        };
        let req = match verb {
            "status" => return Ok(Request::Status(names(&args, 0)?)),
            "wait" => return Ok(Request::Wait(names(&args, 1)?)),
            "boot" => Request::Boot,
            "poweroff" => Request::PowerOff,
            "reboot" => Request::Reboot,
            "start" => Request::Start(name(&args)?),
            "stop" => Request::Stop(name(&args)?),
            "restart" => Request::Restart(name(&args)?),
            "logs" => {
                let n = name(&args)?;
                let (mut lines, mut follow) = (None, false);
                let mut rest = args.iter().skip(1);
                while let Some(a) = rest.next() {
                    match *a {
                        "-f" if !follow => follow = true,
                        "-n" if lines.is_none() => {
                            let count = rest.next().and_then(|c| c.parse::<u32>().ok());
                            lines = Some(count.ok_or_else(|| {
                                ProtoError::Malformed("logs: -n needs a number".into())
                            })?);
                        }
                        _ => return Err(ProtoError::Malformed("logs: unexpected argument".into())),
                    }
                }
                return Ok(Request::Logs {
                    name: n,
                    lines,
                    follow,
                });
            }
            _ => {
                return Err(ProtoError::Malformed(
                    "unknown command; use status, start, stop, restart, logs, wait, boot, poweroff or reboot"
                        .into(),
                ));
            }
        };
        let arity = match req {
            Request::Boot | Request::PowerOff | Request::Reboot => 0,
            _ => 1,
        };
        no_more(&args, arity)?;
        Ok(req)
    }
}

fn words(verb: &str, names: &[String]) -> String {
    let mut s = verb.to_string();
    for n in names {
        s.push(' ');
        s.push_str(n);
    }
    s
}

fn names_text(names: &[String]) -> String {
    if names.is_empty() {
        "-".into()
    } else {
        names.join(",")
    }
}

fn parse_names(s: &str) -> Option<Vec<String>> {
    if s == "-" {
        return Some(Vec::new());
    }
    s.split(',')
        .map(|n| valid_name(n).then(|| n.to_string()))
        .collect()
}

fn exit_text(e: Option<WaitStatus>) -> String {
    match e {
        None => "-".into(),
        Some(WaitStatus::Exited(c)) => format!("exit:{c}"),
        Some(WaitStatus::Signaled(s)) => format!("signal:{}", s.0),
    }
}

fn parse_exit(s: &str) -> Option<Option<WaitStatus>> {
    if s == "-" {
        return Some(None);
    }
    if let Some(c) = s.strip_prefix("exit:") {
        return c.parse().ok().map(|c| Some(WaitStatus::Exited(c)));
    }
    s.strip_prefix("signal:")?
        .parse()
        .ok()
        .map(|n| Some(WaitStatus::Signaled(Sig(n))))
}

fn opt<T: fmt::Display>(v: Option<T>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn parse_opt<T: std::str::FromStr>(s: &str) -> Option<Option<T>> {
    if s == "-" {
        Some(None)
    } else {
        s.parse().ok().map(Some)
    }
}

impl Response {
    /// The header line and any following lines, each ended by a newline.
    pub fn encode(&self) -> String {
        match self {
            Response::Ok(t) => format!("ok {}\n", escape(t)),
            Response::Err(t) => format!("err {}\n", escape(t)),
            Response::Line(t) => format!("line {}\n", escape(t)),
            Response::Logs { dropped, lines } => {
                let mut s = format!("logs {} {dropped}\n", lines.len());
                for l in lines {
                    s.push_str(&escape(l));
                    s.push('\n');
                }
                s
            }
            Response::Boot(b) => {
                let mut s = format!(
                    "boot {} {} {}\n",
                    b.rows.len(),
                    opt(b.init_at.map(|m| m.0)),
                    opt(b.up_at.map(|m| m.0))
                );
                for r in &b.rows {
                    s.push_str(&format!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                        escape(&r.name),
                        u8::from(r.oneshot),
                        opt(r.started.map(|m| m.0)),
                        opt(r.ready.map(|m| m.0)),
                        opt(r.finished.map(|m| m.0)),
                        names_text(&r.needs),
                        names_text(&r.after),
                    ));
                }
                s
            }
            Response::Status(rows) => {
                let mut s = format!("status {}\n", rows.len());
                for r in rows {
                    let since = opt(r.ready_since.map(|m| m.0));
                    let procs = if r.procs.is_empty() {
                        "-".to_string()
                    } else {
                        let p: Vec<String> = r.procs.iter().map(i32::to_string).collect();
                        p.join(",")
                    };
                    s.push_str(&format!(
                        "{}\t{}\t{}\t{since}\t{}\t{}\t{}\t{}\t{}\t{procs}\n",
                        escape(&r.name),
                        r.state,
                        opt(r.pid),
                        r.restarts,
                        exit_text(r.last_exit),
                        escape(&r.why),
                        opt(r.memory),
                        opt(r.pids),
                    ));
                }
                s
            }
        }
    }

    /// Decodes the first response in `buf`. `Ok(None)` means more bytes are needed;
    /// otherwise returns the response and how many bytes it took. Never panics.
    pub fn decode(buf: &str) -> Result<Option<(Response, usize)>, ProtoError> {
        let Some(end) = buf.find('\n') else {
            return Ok(None);
        };
        let header = &buf[..end];
        let mut used = end + 1;
        let (kind, rest) = header.split_once(' ').unwrap_or((header, ""));
        let bad = |what: &str| ProtoError::Malformed(format!("bad {what} response"));
        // Takes `n` more lines, or says more bytes are needed.
        let mut take = |n: usize| -> Option<Vec<&str>> {
            let mut lines = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let rest = &buf[used..];
                let e = rest.find('\n')?;
                lines.push(&rest[..e]);
                used += e + 1;
            }
            Some(lines)
        };
        let resp = match kind {
            "ok" => Response::Ok(unescape(rest)?),
            "err" => Response::Err(unescape(rest)?),
            "line" => Response::Line(unescape(rest)?),
            "logs" => {
                let (n, dropped) = rest.split_once(' ').ok_or_else(|| bad("logs"))?;
                let n: usize = n.parse().map_err(|_| bad("logs"))?;
                let dropped: u64 = dropped.parse().map_err(|_| bad("logs"))?;
                if n > MAX_RESPONSE_LINES {
                    return Err(bad("logs"));
                }
                let Some(raw) = take(n) else { return Ok(None) };
                let lines = raw
                    .into_iter()
                    .map(unescape)
                    .collect::<Result<Vec<_>, _>>()?;
                Response::Logs { dropped, lines }
            }
            "boot" => {
                let mut f = rest.split(' ');
                let (Some(n), Some(init), Some(up), None) =
                    (f.next(), f.next(), f.next(), f.next())
                else {
                    return Err(bad("boot"));
                };
                let n: usize = n.parse().map_err(|_| bad("boot"))?;
                if n > MAX_RESPONSE_LINES {
                    return Err(bad("boot"));
                }
                let mono = |s: &str| parse_opt::<u64>(s).map(|m| m.map(Mono));
                let init_at = mono(init).ok_or_else(|| bad("boot"))?;
                let up_at = mono(up).ok_or_else(|| bad("boot"))?;
                let Some(raw) = take(n) else { return Ok(None) };
                let mut rows = Vec::with_capacity(raw.len());
                for line in raw {
                    let f: Vec<&str> = line.split('\t').collect();
                    let [name, oneshot, started, ready, finished, needs, after] = f.as_slice()
                    else {
                        return Err(bad("boot"));
                    };
                    rows.push(BootRow {
                        name: unescape(name)?,
                        oneshot: match *oneshot {
                            "0" => false,
                            "1" => true,
                            _ => return Err(bad("boot")),
                        },
                        started: mono(started).ok_or_else(|| bad("boot"))?,
                        ready: mono(ready).ok_or_else(|| bad("boot"))?,
                        finished: mono(finished).ok_or_else(|| bad("boot"))?,
                        needs: parse_names(needs).ok_or_else(|| bad("boot"))?,
                        after: parse_names(after).ok_or_else(|| bad("boot"))?,
                    });
                }
                Response::Boot(BootReport {
                    init_at,
                    up_at,
                    rows,
                })
            }
            "status" => {
                let n: usize = rest.parse().map_err(|_| bad("status"))?;
                if n > MAX_RESPONSE_LINES {
                    return Err(bad("status"));
                }
                let Some(raw) = take(n) else { return Ok(None) };
                let mut rows = Vec::with_capacity(raw.len());
                for line in raw {
                    let f: Vec<&str> = line.split('\t').collect();
                    let (base, usage) = match f.len() {
                        7 => (&f[..], None),
                        10 => (&f[..7], Some(&f[7..])),
                        _ => return Err(bad("status")),
                    };
                    let [name, state, pid, since, restarts, exit, why] = base else {
                        return Err(bad("status"));
                    };
                    let (memory, pids, procs) = match usage {
                        Some([m, p, list]) => (
                            parse_opt::<u64>(m).ok_or_else(|| bad("status"))?,
                            parse_opt::<u64>(p).ok_or_else(|| bad("status"))?,
                            if *list == "-" {
                                Vec::new()
                            } else {
                                list.split(',')
                                    .map(|x| x.parse::<i32>().map_err(|_| bad("status")))
                                    .collect::<Result<Vec<_>, _>>()?
                            },
                        ),
                        _ => (None, None, Vec::new()),
                    };
                    rows.push(SvcStatus {
                        name: unescape(name)?,
                        state: SvcState::parse(state).ok_or_else(|| bad("status"))?,
                        pid: parse_opt(pid).ok_or_else(|| bad("status"))?,
                        ready_since: parse_opt::<u64>(since)
                            .ok_or_else(|| bad("status"))?
                            .map(Mono),
                        restarts: restarts.parse().map_err(|_| bad("status"))?,
                        last_exit: parse_exit(exit).ok_or_else(|| bad("status"))?,
                        why: unescape(why)?,
                        memory,
                        pids,
                        procs,
                    });
                }
                Response::Status(rows)
            }
            _ => return Err(ProtoError::Malformed("unknown response".into())),
        };
        Ok(Some((resp, used)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{Just, Strategy, any, prop_assert_eq, prop_oneof, proptest};

    fn name() -> impl Strategy<Value = String> {
        "[a-z0-9_.-]{1,20}".prop_filter("names cannot start with - or .", |n| {
            !n.starts_with(['-', '.'])
        })
    }

    fn request() -> impl Strategy<Value = Request> {
        prop_oneof![
            proptest::collection::vec(name(), 0..4).prop_map(Request::Status),
            proptest::collection::vec(name(), 1..4).prop_map(Request::Wait),
            Just(Request::Boot),
            Just(Request::PowerOff),
            Just(Request::Reboot),
            name().prop_map(Request::Start),
            name().prop_map(Request::Stop),
            name().prop_map(Request::Restart),
            (name(), proptest::option::of(any::<u32>()), any::<bool>()).prop_map(
                |(name, lines, follow)| Request::Logs {
                    name,
                    lines,
                    follow
                }
            ),
        ]
    }

    fn status() -> impl Strategy<Value = SvcStatus> {
        (
            name(),
            proptest::sample::select(SvcState::ALL.to_vec()),
            proptest::option::of(any::<i32>()),
            proptest::option::of(any::<u64>()),
            any::<u32>(),
            0u8..3,
            any::<i32>(),
            ".*",
            (
                proptest::option::of(any::<u64>()),
                proptest::option::of(any::<u64>()),
                proptest::collection::vec(any::<i32>(), 0..3),
            ),
        )
            .prop_map(
                |(name, state, pid, since, restarts, ek, code, why, (memory, pids, procs))| {
                    SvcStatus {
                        name,
                        state,
                        pid,
                        ready_since: since.map(Mono),
                        restarts,
                        last_exit: match ek {
                            0 => None,
                            1 => Some(WaitStatus::Exited(code)),
                            _ => Some(WaitStatus::Signaled(Sig(code as u8))),
                        },
                        why,
                        memory,
                        pids,
                        procs,
                    }
                },
            )
    }

    fn boot() -> impl Strategy<Value = Response> {
        let t = || proptest::option::of(any::<u64>().prop_map(Mono));
        let row = (
            name(),
            any::<bool>(),
            t(),
            t(),
            t(),
            proptest::collection::vec(name(), 0..3),
            proptest::collection::vec(name(), 0..3),
        )
            .prop_map(
                |(name, oneshot, started, ready, finished, needs, after)| BootRow {
                    name,
                    oneshot,
                    started,
                    ready,
                    finished,
                    needs,
                    after,
                },
            );
        (t(), t(), proptest::collection::vec(row, 0..4)).prop_map(|(init_at, up_at, rows)| {
            Response::Boot(BootReport {
                init_at,
                up_at,
                rows,
            })
        })
    }

    fn response() -> impl Strategy<Value = Response> {
        prop_oneof![
            ".*".prop_map(Response::Ok),
            ".*".prop_map(Response::Err),
            ".*".prop_map(Response::Line),
            (any::<u64>(), proptest::collection::vec(".*", 0..5))
                .prop_map(|(dropped, lines)| Response::Logs { dropped, lines }),
            proptest::collection::vec(status(), 0..4).prop_map(Response::Status),
            boot(),
        ]
    }

    #[test]
    fn requests_decode_from_their_documented_text() {
        let logs = Request::Logs {
            name: "sshd".into(),
            lines: Some(20),
            follow: true,
        };
        assert_eq!(Request::decode(b"keel/2 logs sshd -f -n 20\n"), Ok(logs));
        assert_eq!(
            Request::decode(b"keel/2 status\n"),
            Ok(Request::Status(vec![]))
        );
        assert_eq!(
            Request::decode(b"keel/2 status sshd getty@ttyS0\n"),
            Ok(Request::Status(vec!["sshd".into(), "getty@ttyS0".into()]))
        );
        assert_eq!(
            Request::decode(b"keel/2 wait a b\n"),
            Ok(Request::Wait(vec!["a".into(), "b".into()]))
        );
        assert_eq!(Request::decode(b"keel/2 boot\n"), Ok(Request::Boot));
        assert_eq!(
            Request::decode(b"keel/2  restart   net\n"),
            Ok(Request::Restart("net".into()))
        );
    }

    #[test]
    fn malformed_requests_are_errors() {
        assert_eq!(
            Request::decode(&[b'x'; MAX_REQUEST + 1]),
            Err(ProtoError::TooLong)
        );
        assert_eq!(
            Request::decode(b"keel/2 status"),
            Err(ProtoError::Unterminated)
        );
        assert_eq!(Request::decode(b"\xff\n"), Err(ProtoError::NotUtf8));
        assert_eq!(
            Request::decode(b"keel/1 status\n"),
            Err(ProtoError::Version("keel/1".into()))
        );
        for bad in [
            "\n",
            "keel/2\n",
            "keel/2 start\n",
            "keel/2 status a/b\n",
            "keel/2 wait\n",
            "keel/2 boot x\n",
            "keel/2 start a b\n",
            "keel/2 logs a -n\n",
            "keel/2 logs a -n x\n",
            "keel/2 logs a -f -f\n",
            "keel/2 start a/b\n",
            "keel/2 explode\n",
            "keel/2 status\nkeel/2 status\n",
        ] {
            assert!(
                matches!(
                    Request::decode(bad.as_bytes()),
                    Err(ProtoError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn status_rows_without_usage_still_decode() {
        // A row as keel/2 wrote it before cgroups: seven fields.
        let old = "status 1\nsshd\tup\t42\t1000\t0\t-\t\n";
        let Ok(Some((Response::Status(rows), _))) = Response::decode(old) else {
            panic!("an older status row did not decode");
        };
        assert_eq!((rows[0].memory, rows[0].pids), (None, None));
        assert!(rows[0].procs.is_empty());
        let new = "status 1\nsshd\tup\t42\t1000\t0\t-\t\t2097152\t3\t42,43\n";
        let Ok(Some((Response::Status(rows), _))) = Response::decode(new) else {
            panic!("a status row with usage did not decode");
        };
        assert_eq!((rows[0].memory, rows[0].pids), (Some(2 << 20), Some(3)));
        assert_eq!(rows[0].procs, [42, 43]);
        for bad in [
            "status 1\nsshd\tup\t42\t1000\t0\t-\t\tx\t3\t-\n",
            "status 1\nsshd\tup\t42\t1000\t0\t-\t\t1\t3\t4,x\n",
            "status 1\nsshd\tup\t42\t1000\t0\t-\t\t1\n",
        ] {
            assert!(Response::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn responses_wait_for_all_their_lines() {
        let r = Response::Logs {
            dropped: 3,
            lines: vec!["a\tb".into(), "c\\n".into()],
        };
        let text = r.encode();
        assert_eq!(text, "logs 2 3\na\\tb\nc\\\\n\n");
        for cut in 0..text.len() {
            assert_eq!(Response::decode(&text[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(Response::decode(&text), Ok(Some((r, text.len()))));
    }

    proptest! {
        #[test]
        fn requests_round_trip(r in request()) {
            prop_assert_eq!(Request::decode(r.encode().as_bytes()), Ok(r));
        }

        #[test]
        fn responses_round_trip(r in response(), tail in ".*") {
            let text = r.encode();
            let both = format!("{text}{tail}");
            prop_assert_eq!(Response::decode(&both), Ok(Some((r, text.len()))));
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let _ = Request::decode(&bytes);
            let _ = Response::decode(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn decoding_near_miss_text_never_panics(s in "(keel/2 |status |logs |wait |boot |ok |err |line |[0-9 \\t\\n\\\\-])*") {
            let _ = Request::decode(s.as_bytes());
            let _ = Response::decode(&s);
        }
    }
}

//! keel's own log: one line per event to every console tty and to /dev/kmsg.
//!
//! Console lines look like `[    1.234567] keel: <message>` (CLOCK_MONOTONIC since boot,
//! as the kernel's own stamps); /dev/kmsg gets `<7>keel: <message>`, debug level, so the
//! kernel does not echo it to the console a second time.
//!
//! What reaches a console is text a terminal shows as it is: control characters but the
//! tab are escaped (`supervisor::log::escape`; service output already is, keel's own
//! messages may quote a service's STATUS= or a file name), and a line longer than a kmsg
//! record takes ([`RECORD_MAX`]) is split, the rest marked `… ` (the kernel refuses a
//! longer record whole: EINVAL).
//!
//! Invariant: in PID 1, logging never blocks and never fails. Every fd is non-blocking; what
//! a busy console does not take at once waits in that console's backlog (at most
//! [`BACKLOG_MAX`] bytes), which the main loop writes out when poll says the tty has room
//! ([`backlogged`], [`flush_backlog`]): a burst of lines at boot on a slow serial console
//! arrives late, not lost. A line that does not fit in the backlog is dropped and counted,
//! and the count is reported on that console once the backlog has drained. Applets that print to the
//! consoles themselves (`use_consoles_waiting`) are ordinary processes: they wait, bounded,
//! for a busy console rather than drop a line a person needs to read. Before /dev is mounted and the consoles are known,
//! lines go to `/dev/console` (the node the initramfs carries). The state is one global
//! behind a mutex so that the panic hook can log too; a poisoned mutex is still used.
#![forbid(unsafe_code)]

use crate::sys::{clock, console};
use std::os::fd::OwnedFd;
use std::sync::{Mutex, MutexGuard, TryLockError};

/// How much a line matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Only to /dev/kmsg, and to the consoles when `keel.debug` is on.
    Debug,
    /// To the consoles and /dev/kmsg.
    Info,
}

struct Sink {
    name: String,
    fd: OwnedFd,
    dropped: u64,
    /// What the console has not taken yet (PID 1 only), written before any new line.
    backlog: Vec<u8>,
}

/// The most a console's backlog holds: 16 KiB is 1.4 s of a 115200 baud serial port and
/// 8.5 s at Linode's 19200; beyond that, lines are dropped and counted.
pub const BACKLOG_MAX: usize = 16 * 1024;

impl Sink {
    fn open(name: &str) -> Result<Sink, nix::errno::Errno> {
        let fd = console::open_log_target(&format!("/dev/{name}"))?;
        Ok(Sink {
            name: name.to_string(),
            fd,
            dropped: 0,
            backlog: Vec::new(),
        })
    }
}

struct Logger {
    consoles: Vec<Sink>,
    kmsg: Option<OwnedFd>,
    kmsg_dropped: u64,
    /// Lines logged before /dev/kmsg could be opened (before /dev is mounted), replayed
    /// into it once it opens so that dmesg has the whole boot. At most `EARLY_MAX`.
    early: Vec<String>,
    verbose: bool,
    /// How many rounds of `WAIT_ROUND_MS` a write may wait for a busy console: 0 in PID 1,
    /// which never waits; applets that print to the consoles themselves may wait.
    patience_rounds: u8,
}

/// One wait for a busy console, in an applet.
const WAIT_ROUND_MS: u16 = 250;
/// How many rounds an applet waits for a busy console before it drops a line (2 s).
const APPLET_PATIENCE_ROUNDS: u8 = 8;

/// How many early lines are kept for /dev/kmsg; more are counted, not kept.
const EARLY_MAX: usize = 32;

static LOGGER: Mutex<Logger> = Mutex::new(Logger {
    consoles: Vec::new(),
    kmsg: None,
    kmsg_dropped: 0,
    early: Vec::new(),
    verbose: false,
    patience_rounds: 0,
});

/// The logger, or `None` when this thread already holds it: keel is single-threaded, so
/// that only happens when a panic (and so the panic hook's log line) strikes in the middle
/// of a log write. Waiting then would deadlock PID 1.
fn logger() -> Option<MutexGuard<'static, Logger>> {
    match LOGGER.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// The way out when the logger is busy: one non-blocking write to /dev/console.
fn write_console_directly(line: &str) {
    if let Ok(fd) = console::open_log_target("/dev/console") {
        let _ = console::write_once(&fd, line.as_bytes());
    }
}
/// Bytes of message text per line: a /dev/kmsg record holds 992 bytes (LOG_LINE_MAX in
/// kernel/printk/printk.c, 1024 less a 32-byte prefix) with `<7>keel: `, the note of
/// dropped records and the newline around it.
pub const RECORD_MAX: usize = 900;

/// The lines `msg` is logged as: one per line of it (empty ones left out), escaped, each
/// cut into pieces of at most [`RECORD_MAX`] bytes, every piece after the first marked
/// `supervisor::log::CONTINUED`.
pub fn lines(msg: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in msg.split('\n').filter(|p| !p.is_empty()) {
        let text = supervisor::log::escape(part);
        let mut rest: &str = &text;
        let mut first = true;
        while !rest.is_empty() {
            let room = if first {
                RECORD_MAX
            } else {
                RECORD_MAX - supervisor::log::CONTINUED.len()
            };
            let mut end = rest.len().min(room);
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            let (piece, tail) = rest.split_at(end);
            out.push(if first {
                piece.to_string()
            } else {
                format!("{}{piece}", supervisor::log::CONTINUED)
            });
            first = false;
            rest = tail;
        }
    }
    out
}

/// Formats a console line. `secs` and `micros` are the time since boot.
pub fn console_line(secs: u64, micros: u32, msg: &str) -> String {
    format!("[{secs:5}.{micros:06}] keel: {msg}\n")
}

/// Formats a /dev/kmsg record (priority 7, debug).
pub fn kmsg_record(msg: &str) -> String {
    format!("<7>keel: {msg}\n")
}

/// Opens `/dev/console` as the only console until `use_consoles` names the real ones.
pub fn init_early() {
    if let Some(mut l) = logger()
        && l.consoles.is_empty()
        && let Ok(sink) = Sink::open("console")
    {
        l.consoles.push(sink);
    }
}

/// The text of keel's clock mark in /dev/kmsg, before the seconds.
pub const CLOCK_MARK: &str = "clock mark: CLOCK_MONOTONIC ";

/// Writes one debug record to /dev/kmsg that says what keel's clock (CLOCK_MONOTONIC) read
/// as it was written: `keel: clock mark: CLOCK_MONOTONIC 1.234567`. The kernel stamps its
/// log with its own clock (local_clock), which runs apart from CLOCK_MONOTONIC by a few
/// ms to tens of ms over a boot; `keelctl boot` uses the pair to put the kernel's `Run
/// /init` stamp on keel's clock. PID 1 writes it once /dev/kmsg is open.
pub fn mark_clock() {
    let (secs, micros) = clock::since_boot();
    if let Some(l) = logger()
        && let Some(kmsg) = &l.kmsg
    {
        let _ = console::write_once(
            kmsg,
            kmsg_record(&format!("{CLOCK_MARK}{secs}.{micros:06}")).as_bytes(),
        );
    }
}

/// Switches logging to `/dev/<name>` for each name, and opens /dev/kmsg. A console that
/// cannot be opened is reported on the others; if none opens, the old ones are kept.
pub fn use_consoles(names: &[String]) {
    let mut opened = Vec::new();
    let mut failed = Vec::new();
    for name in names {
        match Sink::open(name) {
            Ok(sink) => opened.push(sink),
            Err(e) => failed.push(format!("cannot open console /dev/{name} for the log: {e}")),
        }
    }
    if let Some(mut l) = logger() {
        if !opened.is_empty() {
            l.consoles = opened;
        }
        if l.kmsg.is_none() {
            l.kmsg = console::open_log_target("/dev/kmsg").ok();
            let early = std::mem::take(&mut l.early);
            if let Some(kmsg) = &l.kmsg {
                for line in early {
                    let _ = console::write_once(kmsg, kmsg_record(&line).as_bytes());
                }
            }
        }
    }
    for f in failed {
        info(&f);
    }
}

/// Like `use_consoles`, for an applet that prints to the consoles itself (`keel hostkeys`,
/// `keel getty`): it is an ordinary process, not PID 1, so a line waits up to 2 s for a busy
/// console (the fingerprint block, a console login banner) instead of being dropped.
pub fn use_consoles_waiting(names: &[String]) {
    if let Some(mut l) = logger() {
        l.patience_rounds = APPLET_PATIENCE_ROUNDS;
    }
    use_consoles(names);
}

/// Turns debug lines on the consoles on or off (`keel.debug` on the command line).
pub fn set_verbose(on: bool) {
    if let Some(mut l) = logger() {
        l.verbose = on;
    }
}

/// Logs at info level.
pub fn info(msg: &str) {
    log(Level::Info, msg);
}

/// Logs at debug level.
pub fn debug(msg: &str) {
    log(Level::Debug, msg);
}

/// Logs one line (a message with newlines is logged as several lines).
pub fn log(level: Level, msg: &str) {
    let (secs, micros) = clock::since_boot();
    let parts = lines(msg);
    match logger() {
        Some(mut l) => {
            for part in &parts {
                l.write_line(level, secs, micros, part);
            }
        }
        None => {
            for part in &parts {
                write_console_directly(&console_line(secs, micros, part));
            }
        }
    }
}

impl Logger {
    fn write_line(&mut self, level: Level, secs: u64, micros: u32, msg: &str) {
        if level >= Level::Info || self.verbose {
            let line = console_line(secs, micros, msg);
            let patience = self.patience_rounds;
            for sink in &mut self.consoles {
                if patience == 0 {
                    queue_line(sink, &line, secs, micros);
                    continue;
                }
                if sink.dropped > 0 {
                    let note = dropped_note(sink, secs, micros);
                    if write_all_or_drop(sink, &note, patience) {
                        sink.dropped = 0;
                    }
                }
                if !write_all_or_drop(sink, &line, patience) {
                    sink.dropped += 1;
                }
            }
        }
        if let Some(kmsg) = &self.kmsg {
            // /dev/kmsg is rate-limited by the kernel (printk.devkmsg); a refused record is
            // counted and reported in the next one that gets through.
            let record = if self.kmsg_dropped > 0 {
                kmsg_record(&format!(
                    "({} earlier records dropped) {msg}",
                    self.kmsg_dropped
                ))
            } else {
                kmsg_record(msg)
            };
            match console::write_once(kmsg, record.as_bytes()) {
                Ok(_) => self.kmsg_dropped = 0,
                Err(_) => self.kmsg_dropped += 1,
            }
        } else if self.early.len() < EARLY_MAX {
            self.early.push(msg.to_string());
        } else {
            self.kmsg_dropped += 1;
        }
    }
}

/// PID 1's write of `line` to `sink`: after what the backlog holds, which is written
/// first; what the console does not take goes into the backlog; a line that does not fit
/// there is dropped and counted. One write(2) at most per call for each of the backlog and
/// the line; never a wait.
fn queue_line(sink: &mut Sink, line: &str, secs: u64, micros: u32) {
    flush_sink(sink, secs, micros);
    if !sink.backlog.is_empty() {
        if sink.dropped == 0 && sink.backlog.len() + line.len() <= BACKLOG_MAX {
            sink.backlog.extend_from_slice(line.as_bytes());
        } else {
            // Once a line is dropped, the rest wait for the drain and the note, so the
            // note stands where the gap is.
            sink.dropped += 1;
        }
        return;
    }
    let bytes = line.as_bytes();
    match write_reopening(sink, bytes) {
        Ok(n) => sink.backlog.extend_from_slice(&bytes[n..]),
        Err(_) => sink.dropped += 1,
    }
}

/// Writes what `sink`'s backlog holds, once; when it has drained and lines were dropped,
/// queues the note that says how many. A console that fails (not EAGAIN) loses its backlog,
/// counted as one dropped line, so that a dead tty is never polled again and again.
fn flush_sink(sink: &mut Sink, secs: u64, micros: u32) {
    if !sink.backlog.is_empty() {
        let mut pending = std::mem::take(&mut sink.backlog);
        match write_reopening(sink, &pending) {
            Ok(n) => {
                pending.drain(..n);
                sink.backlog = pending;
            }
            Err(_) => sink.dropped += 1,
        }
    }
    if sink.backlog.is_empty() && sink.dropped > 0 {
        let note = dropped_note(sink, secs, micros);
        sink.dropped = 0;
        match write_reopening(sink, note.as_bytes()) {
            Ok(n) => sink.backlog.extend_from_slice(&note.as_bytes()[n..]),
            Err(_) => sink.dropped += 1,
        }
    }
}

/// The console line that says how many lines `sink` dropped.
fn dropped_note(sink: &Sink, secs: u64, micros: u32) -> String {
    console_line(
        secs,
        micros,
        &format!(
            "{} log lines dropped on {} (console busy)",
            sink.dropped, sink.name
        ),
    )
}

/// One non-blocking write to the console; `Ok(0)` when it is busy (EAGAIN). A tty that was
/// hung up (EIO: the session that had it as controlling terminal ended) is opened again
/// and the write tried once more.
fn write_reopening(sink: &mut Sink, bytes: &[u8]) -> Result<usize, nix::errno::Errno> {
    match console::write_once(&sink.fd, bytes) {
        Ok(n) => Ok(n),
        Err(nix::errno::Errno::EAGAIN) => Ok(0),
        Err(nix::errno::Errno::EIO) => {
            sink.fd = Sink::open(&sink.name)?.fd;
            match console::write_once(&sink.fd, bytes) {
                Err(nix::errno::Errno::EAGAIN) => Ok(0),
                other => other,
            }
        }
        Err(e) => Err(e),
    }
}

/// Copies of the fds of the consoles whose backlog is not empty, for the main loop to poll
/// for POLLOUT (empty, and no syscall, when every console has kept up).
pub fn backlogged() -> Vec<OwnedFd> {
    let Some(l) = logger() else {
        return Vec::new();
    };
    l.consoles
        .iter()
        .filter(|s| !s.backlog.is_empty())
        .filter_map(|s| s.fd.try_clone().ok())
        .collect()
}

/// Writes what each console's backlog holds, as much as it takes now; never waits.
pub fn flush_backlog() {
    let (secs, micros) = clock::since_boot();
    if let Some(mut l) = logger() {
        for sink in &mut l.consoles {
            flush_sink(sink, secs, micros);
        }
    }
}

/// Waits up to `ms` for the consoles to take their backlog: the last lines before the
/// machine powers off or reboots.
pub fn drain(ms: u16) {
    let rounds = ms / 50;
    for _ in 0..=rounds {
        flush_backlog();
        let fds = backlogged();
        let Some(fd) = fds.first() else {
            return;
        };
        console::wait_writable(fd, 50);
    }
}

/// Writes a whole line; false if it was dropped.
///
/// With no patience (PID 1) that is one write(2), and a line that would block or is cut
/// short is dropped. With patience (an applet), a busy console is waited for, at most
/// `patience` rounds of `WAIT_ROUND_MS`, and the rest of a cut-short line is written after.
///
/// When the session that had this tty as its controlling terminal ends (a shell exits),
/// the kernel hangs the tty up and every open fd on it returns EIO from then on; the
/// console is then opened again and the write tried once more.
fn write_all_or_drop(sink: &mut Sink, line: &str, patience: u8) -> bool {
    let bytes = line.as_bytes();
    let mut done = 0;
    let mut waits = 0;
    loop {
        match write_reopening(sink, &bytes[done..]) {
            Ok(n) if done + n == bytes.len() => return true,
            // Cut short, or busy (EAGAIN): wait for room, if this writer may.
            Ok(n) => done += n,
            Err(_) => return false,
        }
        if waits >= patience {
            return false;
        }
        waits += 1;
        console::wait_writable(&sink.fd, WAIT_ROUND_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid1_drops_a_line_on_a_full_console_and_an_applet_waits_for_it() {
        use nix::fcntl::OFlag;
        use std::io::Read;
        let Ok((r, w)) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC) else {
            panic!("pipe2");
        };
        let mut sink = Sink {
            name: "test-pipe".into(),
            fd: w,
            dropped: 0,
            backlog: Vec::new(),
        };
        // Fill the pipe as a stuck console would be.
        let chunk = [b'x'; 4096];
        while console::write_once(&sink.fd, &chunk).is_ok() {}
        let line = "[    1.000000] keel: a line a person must see\n";
        assert!(
            !write_all_or_drop(&mut sink, line, 0),
            "PID 1 must not wait"
        );
        let reader = std::thread::spawn(move || {
            let mut f = std::fs::File::from(r);
            let mut all = Vec::new();
            let mut buf = [0u8; 65536];
            while !all.ends_with(b"see\n") {
                match f.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => all.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        console::wait_readable_for_test(&f)
                    }
                    Err(_) => break,
                }
            }
            all
        });
        assert!(write_all_or_drop(&mut sink, line, APPLET_PATIENCE_ROUNDS));
        drop(sink);
        let all = reader.join().unwrap_or_default();
        assert!(all.ends_with(line.as_bytes()));
    }

    #[test]
    fn pid1_keeps_what_a_full_console_cannot_take_and_drops_only_past_the_backlog() {
        use nix::fcntl::OFlag;
        use std::io::Read;
        let Ok((r, w)) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC) else {
            panic!("pipe2");
        };
        let mut sink = Sink {
            name: "test-pipe".into(),
            fd: w,
            dropped: 0,
            backlog: Vec::new(),
        };
        let chunk = [b'x'; 4096];
        let mut stuffed = 0;
        while let Ok(n) = console::write_once(&sink.fd, &chunk) {
            stuffed += n;
        }
        // The console is full: lines wait in the backlog, in order, none dropped.
        let line = |i: usize| format!("[    1.000000] keel: line {i:04} of the boot burst\n");
        let fit = BACKLOG_MAX / line(0).len();
        for i in 0..fit {
            queue_line(&mut sink, &line(i), 1, 0);
        }
        assert_eq!(sink.dropped, 0);
        assert_eq!(sink.backlog.len(), fit * line(0).len());
        // Past the backlog's room, lines are counted, not kept.
        queue_line(&mut sink, &line(fit), 1, 0);
        queue_line(&mut sink, &line(fit + 1), 1, 0);
        assert_eq!(sink.dropped, 2);
        assert_eq!(sink.backlog.len(), fit * line(0).len());
        // The console drains: the backlog goes out, then the note, then new lines.
        let mut f = std::fs::File::from(r);
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        let mut rounds = 0;
        while !sink.backlog.is_empty() || sink.dropped > 0 || got.len() < stuffed {
            rounds += 1;
            assert!(rounds < 10_000, "the backlog never drained");
            if let Ok(n) = f.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
            flush_sink(&mut sink, 2, 0);
        }
        queue_line(&mut sink, &line(9999), 3, 0);
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&got[stuffed..]).into_owned();
        let expected: String = (0..fit).map(line).collect::<String>()
            + "[    2.000000] keel: 2 log lines dropped on test-pipe (console busy)\n"
            + &line(9999);
        assert_eq!(text, expected);
    }

    #[test]
    fn console_line_matches_the_kernel_stamp() {
        assert_eq!(
            console_line(1, 234567, "hello"),
            "[    1.234567] keel: hello\n"
        );
        assert_eq!(console_line(12345, 7, "x"), "[12345.000007] keel: x\n");
        assert_eq!(console_line(123456, 0, "x"), "[123456.000000] keel: x\n");
    }

    #[test]
    fn lines_are_escaped_and_cut_to_fit_a_kmsg_record() {
        assert_eq!(lines("a\n\nb\x1b[31m\tc"), ["a", "b\\x1b[31m\tc"]);
        let long = "é".repeat(1000);
        let got = lines(&format!("svc: {long}"));
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got.iter().all(|l| kmsg_record(l).len() <= 992 - 40));
        assert!(!got[0].starts_with("… ") && got[1].starts_with("… ") && got[2].starts_with("… "));
        let joined: String = got.iter().map(|l| l.trim_start_matches("… ")).collect();
        assert_eq!(joined, format!("svc: {long}"));
    }

    #[test]
    fn kmsg_record_is_debug_level() {
        assert_eq!(kmsg_record("starting"), "<7>keel: starting\n");
    }
}

#[cfg(test)]
mod reentry_tests {
    use super::*;

    #[test]
    fn a_log_line_inside_a_log_write_does_not_deadlock() {
        // The panic hook logs; if the panic struck inside a log write, the logger is
        // already held by this thread and must be skipped, not waited for.
        let held = logger();
        assert!(held.is_some());
        assert!(
            logger().is_none(),
            "re-entry must not wait for the held logger"
        );
        drop(held);
        assert!(logger().is_some());
    }
}

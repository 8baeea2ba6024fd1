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
//! Invariant: in PID 1, logging never blocks and never fails. Every fd is non-blocking; a
//! write that would block (or is cut short) is dropped and counted, and the count is
//! reported on that console once it accepts writes again. Applets that print to the
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
}

impl Sink {
    fn open(name: &str) -> Result<Sink, nix::errno::Errno> {
        let fd = console::open_log_target(&format!("/dev/{name}"))?;
        Ok(Sink {
            name: name.to_string(),
            fd,
            dropped: 0,
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
                if sink.dropped > 0 {
                    let note = console_line(
                        secs,
                        micros,
                        &format!(
                            "{} log lines dropped on {} (console busy)",
                            sink.dropped, sink.name
                        ),
                    );
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
    let mut reopened = false;
    let mut waits = 0;
    loop {
        match console::write_once(&sink.fd, &bytes[done..]) {
            Ok(n) if done + n == bytes.len() => return true,
            Ok(n) if n > 0 => done += n,
            Ok(_) => return false,
            Err(nix::errno::Errno::EIO) if !reopened => {
                reopened = true;
                match Sink::open(&sink.name) {
                    Ok(fresh) => sink.fd = fresh.fd,
                    Err(_) => return false,
                }
                continue;
            }
            Err(nix::errno::Errno::EAGAIN) => {}
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

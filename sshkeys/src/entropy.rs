//! Waiting for the kernel CRNG before anything makes a key, and saying how long that took.
//!
//! Readiness is decided only by `getrandom(GRND_NONBLOCK)` (EAGAIN means not ready) or by
//! /dev/random becoming readable; `entropy_avail` is reported, never used as a threshold
//! (since Linux 5.18 it is a counter capped at 256 that says nothing about readiness).
//! [`Waiter`] is the pure decision: given readings and the time, when to warn and what to report.
//! [`wait_for_crng`] drives it over an [`Entropy`] source and a clock the caller provides.
//! This module must not read the clock itself and must not block except in [`Entropy::wait`].

use std::fmt;
use std::fs::File;
use std::io;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::rand::{GetRandomFlags, getrandom};

/// How often the waiter warns while the CRNG is not ready.
pub const WARN_EVERY: Duration = Duration::from_secs(5);

/// The longest single blocking round, so a missed wake-up delays readiness by at most this.
pub const MAX_ROUND: Duration = Duration::from_secs(1);

/// Where the kernel reports its entropy estimate (reported, never decided on).
pub const ENTROPY_AVAIL_PATH: &str = "/proc/sys/kernel/random/entropy_avail";

/// The device whose readability means the CRNG is ready (Linux 5.6 and later).
pub const DEV_RANDOM_PATH: &str = "/dev/random";

/// What the OS tells about the kernel random number generator.
pub trait Entropy {
    /// Whether the CRNG is initialised, without blocking.
    fn crng_ready(&mut self) -> io::Result<bool>;

    /// The kernel's entropy estimate, for the report only; `None` when it cannot be read.
    fn entropy_avail(&mut self) -> Option<u32>;

    /// Blocks for at most `timeout`, returning early when the CRNG may have become ready.
    fn wait(&mut self, timeout: Duration) -> io::Result<()>;
}

/// The real kernel: getrandom(2) with GRND_NONBLOCK, /proc for entropy_avail, poll(2) on /dev/random.
#[derive(Debug, Default)]
pub struct KernelEntropy {
    random: Option<File>,
}

impl KernelEntropy {
    /// A source that opens /dev/random on the first blocking round.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Entropy for KernelEntropy {
    fn crng_ready(&mut self) -> io::Result<bool> {
        let mut byte = [0u8; 1];
        loop {
            match getrandom(&mut byte[..], GetRandomFlags::NONBLOCK) {
                Ok(_) => return Ok(true),
                Err(rustix::io::Errno::AGAIN) => return Ok(false),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn entropy_avail(&mut self) -> Option<u32> {
        std::fs::read_to_string(ENTROPY_AVAIL_PATH)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        let random = match &mut self.random {
            Some(file) => file,
            None => {
                let file = File::open(DEV_RANDOM_PATH).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot open {DEV_RANDOM_PATH} to poll it: {e}"),
                    )
                })?;
                self.random.insert(file)
            }
        };
        let timeout = Timespec {
            tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        let mut fds = [PollFd::new(random, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => {
                let e = io::Error::from(e);
                Err(io::Error::new(
                    e.kind(),
                    format!("cannot poll {DEV_RANDOM_PATH}: {e}"),
                ))
            }
        }
    }
}

/// A warning while the CRNG is still not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// How long the waiter has waited so far.
    pub waited: Duration,
    /// What entropy_avail said at that moment.
    pub entropy_avail: Option<u32>,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "still waiting for the kernel crng after {} ({}); host keys wait for it, console login does not; \
             a virtio-rng device or a cpu with rdrand makes it ready at once",
            Secs(self.waited),
            Avail(self.entropy_avail)
        )
    }
}

/// The final line: the CRNG is ready, after how long, and what entropy_avail said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// How long the waiter waited (the time the first look itself took when `at_once`).
    pub waited: Duration,
    /// What entropy_avail said when readiness was seen.
    pub entropy_avail: Option<u32>,
    /// How many warnings were given on the way.
    pub warnings: u32,
    /// The CRNG was ready at the first look: nothing waited.
    pub at_once: bool,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at_once {
            write!(
                f,
                "kernel crng ready at once ({})",
                Avail(self.entropy_avail)
            )
        } else {
            write!(
                f,
                "kernel crng ready after waiting {} ({})",
                Secs(self.waited),
                Avail(self.entropy_avail)
            )
        }
    }
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The CRNG is ready; log the report and go on.
    Ready(Report),
    /// Not ready: log the warning if there is one, then wait at most `timeout` and look again.
    Wait {
        /// A warning that is due now.
        warn: Option<Warning>,
        /// How long to block before the next look.
        timeout: Duration,
    },
}

/// The pure waiter: fed readings and the time, it says when to warn and when it is done.
///
/// Times are offsets on any monotonic clock (keel uses CLOCK_MONOTONIC since boot); only
/// differences matter. A clock that goes backwards is treated as no time passing.
#[derive(Debug, Clone)]
pub struct Waiter {
    start: Duration,
    next_warn: Duration,
    warn_every: Duration,
    warnings: u32,
    looks: u32,
}

impl Waiter {
    /// A waiter that starts at `now` and warns every [`WARN_EVERY`].
    pub fn new(now: Duration) -> Self {
        Self::with_warn_every(now, WARN_EVERY)
    }

    /// A waiter that starts at `now` and warns every `warn_every` (at least 1 ms).
    pub fn with_warn_every(now: Duration, warn_every: Duration) -> Self {
        let warn_every = warn_every.max(Duration::from_millis(1));
        Self {
            start: now,
            next_warn: now.saturating_add(warn_every),
            warn_every,
            warnings: 0,
            looks: 0,
        }
    }

    /// Takes one reading made at `now` and decides the next step.
    pub fn step(&mut self, now: Duration, ready: bool, entropy_avail: Option<u32>) -> Step {
        let waited = now.saturating_sub(self.start);
        let at_once = self.looks == 0;
        self.looks = self.looks.saturating_add(1);
        if ready {
            return Step::Ready(Report {
                waited,
                entropy_avail,
                warnings: self.warnings,
                at_once,
            });
        }
        let mut warn = None;
        if now >= self.next_warn {
            warn = Some(Warning {
                waited,
                entropy_avail,
            });
            self.warnings = self.warnings.saturating_add(1);
            // Skip the deadlines a long stall jumped over, so a late wake-up warns once, not in a burst.
            while self.next_warn <= now {
                self.next_warn = self.next_warn.saturating_add(self.warn_every);
            }
        }
        let timeout = self.next_warn.saturating_sub(now).min(MAX_ROUND);
        Step::Wait { warn, timeout }
    }
}

/// An error from the entropy source; the CRNG state is unknown.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot tell whether the kernel crng is ready: {source}; keys are not generated until it is"
)]
pub struct EntropyError {
    #[source]
    source: io::Error,
}

/// Blocks until the CRNG is ready, calling `warn` every [`WARN_EVERY`] while it waits.
///
/// `now` is the caller's monotonic clock (this crate never reads the clock itself).
pub fn wait_for_crng<E: Entropy>(
    source: &mut E,
    mut now: impl FnMut() -> Duration,
    mut warn: impl FnMut(&Warning),
) -> Result<Report, EntropyError> {
    let mut waiter = Waiter::new(now());
    loop {
        let ready = source
            .crng_ready()
            .map_err(|source| EntropyError { source })?;
        let avail = source.entropy_avail();
        match waiter.step(now(), ready, avail) {
            Step::Ready(report) => return Ok(report),
            Step::Wait {
                warn: warning,
                timeout,
            } => {
                if let Some(warning) = warning {
                    warn(&warning);
                }
                source
                    .wait(timeout)
                    .map_err(|source| EntropyError { source })?;
            }
        }
    }
}

/// Seconds with millisecond precision, as `1.234s`.
struct Secs(Duration);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0.as_secs(), self.0.subsec_millis())
    }
}

/// The entropy_avail part of a message.
struct Avail(Option<u32>);

impl fmt::Display for Avail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "entropy_avail {n}"),
            None => write!(f, "entropy_avail unreadable"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn ready_at_first_look_reports_at_once() {
        let mut w = Waiter::new(ms(1000));
        let step = w.step(ms(1000), true, Some(256));
        let Step::Ready(report) = step else {
            panic!("expected ready, got {step:?}")
        };
        assert_eq!(report.waited, Duration::ZERO);
        assert_eq!(
            report.to_string(),
            "kernel crng ready at once (entropy_avail 256)"
        );
        // The time the first look itself took does not turn "at once" into a wait.
        let mut w = Waiter::new(ms(1000));
        let Step::Ready(report) = w.step(ms(1003), true, None) else {
            panic!("expected ready")
        };
        assert!(report.at_once);
        assert_eq!(report.waited, ms(3));
        // A first look that says not ready means the report says how long it waited.
        let mut w = Waiter::new(ms(1000));
        assert!(matches!(w.step(ms(1000), false, None), Step::Wait { .. }));
        let Step::Ready(report) = w.step(ms(1250), true, Some(256)) else {
            panic!("expected ready")
        };
        assert_eq!(
            report.to_string(),
            "kernel crng ready after waiting 0.250s (entropy_avail 256)"
        );
    }

    #[test]
    fn waits_until_the_next_warning_and_warns_every_period() {
        let mut w = Waiter::new(ms(0));
        // Before the first deadline: no warning, rounds capped at MAX_ROUND.
        assert_eq!(
            w.step(ms(0), false, Some(3)),
            Step::Wait {
                warn: None,
                timeout: ms(1000)
            }
        );
        assert_eq!(
            w.step(ms(4500), false, Some(3)),
            Step::Wait {
                warn: None,
                timeout: ms(500)
            }
        );
        // At the deadline: one warning with how long so far and entropy_avail.
        let Step::Wait {
            warn: Some(warning),
            timeout,
        } = w.step(ms(5000), false, Some(17))
        else {
            panic!("expected a warning at 5 s")
        };
        assert_eq!(
            warning,
            Warning {
                waited: ms(5000),
                entropy_avail: Some(17)
            }
        );
        assert_eq!(timeout, ms(1000));
        assert!(
            warning
                .to_string()
                .starts_with("still waiting for the kernel crng after 5.000s (entropy_avail 17); ")
        );
        // No second warning before the next period.
        assert_eq!(
            w.step(ms(9999), false, None),
            Step::Wait {
                warn: None,
                timeout: ms(1)
            }
        );
        assert!(matches!(
            w.step(ms(10_000), false, None),
            Step::Wait { warn: Some(_), .. }
        ));
        let Step::Ready(report) = w.step(ms(12_345), true, None) else {
            panic!("expected ready")
        };
        assert_eq!(report.warnings, 2);
        assert_eq!(
            report.to_string(),
            "kernel crng ready after waiting 12.345s (entropy_avail unreadable)"
        );
    }

    #[test]
    fn a_long_stall_warns_once_not_in_a_burst() {
        let mut w = Waiter::with_warn_every(ms(0), ms(100));
        assert!(
            matches!(w.step(ms(1050), false, None), Step::Wait { warn: Some(_), timeout } if timeout == ms(50))
        );
        assert!(matches!(
            w.step(ms(1060), false, None),
            Step::Wait { warn: None, .. }
        ));
    }

    #[test]
    fn a_clock_going_backwards_does_not_underflow() {
        let mut w = Waiter::new(ms(5000));
        assert_eq!(
            w.step(ms(10), false, None),
            Step::Wait {
                warn: None,
                timeout: ms(1000)
            }
        );
        let Step::Ready(report) = w.step(ms(10), true, None) else {
            panic!("expected ready")
        };
        assert_eq!(report.waited, Duration::ZERO);
    }

    /// A fake kernel whose CRNG becomes ready at a given time on a shared fake clock.
    struct FakeKernel {
        clock: Rc<Cell<Duration>>,
        ready_at: Duration,
        waits: Vec<Duration>,
        fail: bool,
    }

    impl Entropy for FakeKernel {
        fn crng_ready(&mut self) -> io::Result<bool> {
            if self.fail {
                return Err(io::Error::from_raw_os_error(38));
            }
            Ok(self.clock.get() >= self.ready_at)
        }
        fn entropy_avail(&mut self) -> Option<u32> {
            Some(
                u32::try_from(self.clock.get().as_millis() / 100)
                    .unwrap_or(u32::MAX)
                    .min(256),
            )
        }
        fn wait(&mut self, timeout: Duration) -> io::Result<()> {
            self.waits.push(timeout);
            // Like poll on /dev/random: wake at readiness or at the timeout, whichever is first.
            let now = self.clock.get();
            let wake = if self.ready_at > now {
                (now + timeout).min(self.ready_at)
            } else {
                now
            };
            self.clock.set(wake);
            Ok(())
        }
    }

    #[test]
    fn driver_warns_while_waiting_and_reports_the_wait() {
        let clock = Rc::new(Cell::new(ms(2000)));
        let mut kernel = FakeKernel {
            clock: clock.clone(),
            ready_at: ms(14_500),
            waits: vec![],
            fail: false,
        };
        let mut warnings = vec![];
        let report = wait_for_crng(&mut kernel, || clock.get(), |w| warnings.push(w.clone()));
        let report = report.map_err(|e| e.to_string());
        assert_eq!(
            report,
            Ok(Report {
                waited: ms(12_500),
                entropy_avail: Some(145),
                warnings: 2,
                at_once: false,
            })
        );
        assert_eq!(
            warnings,
            vec![
                Warning {
                    waited: ms(5000),
                    entropy_avail: Some(70)
                },
                Warning {
                    waited: ms(10_000),
                    entropy_avail: Some(120)
                },
            ]
        );
        assert!(kernel.waits.iter().all(|t| *t <= MAX_ROUND && !t.is_zero()));
    }

    #[test]
    fn driver_reports_an_error_from_the_source() {
        let clock = Rc::new(Cell::new(ms(0)));
        let mut kernel = FakeKernel {
            clock: clock.clone(),
            ready_at: ms(0),
            waits: vec![],
            fail: true,
        };
        let err = wait_for_crng(&mut kernel, || clock.get(), |_| {});
        let Err(err) = err else {
            panic!("expected an error")
        };
        assert!(
            err.to_string()
                .starts_with("cannot tell whether the kernel crng is ready: ")
        );
    }

    #[test]
    fn the_real_kernel_answers() {
        // The test machine booted long ago, so its CRNG is ready; this checks the syscall path.
        let mut kernel = KernelEntropy::new();
        assert!(matches!(kernel.crng_ready(), Ok(true)));
        if std::path::Path::new(ENTROPY_AVAIL_PATH).exists() {
            assert!(kernel.entropy_avail().is_some());
        }
        assert!(kernel.wait(ms(10)).is_ok());
    }
}

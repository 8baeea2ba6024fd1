//! The clock: the only place keel reads the time.
//!
//! keel uses CLOCK_MONOTONIC (time since boot, as the kernel's log stamps) for log lines
//! and deadlines. The wall clock is read and set once, at boot, by the clock floor
//! (`boot.rs`: a clock earlier than the image's build time is set to it); nothing else
//! reads it.

use nix::time::{ClockId, clock_gettime};
use supervisor::Mono;

/// Seconds and microseconds since boot; (0, 0) if the clock cannot be read.
pub fn since_boot() -> (u64, u32) {
    match clock_gettime(ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => {
            let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
            let micros = u32::try_from(ts.tv_nsec() / 1000).unwrap_or(0);
            (secs, micros)
        }
        Err(_) => (0, 0),
    }
}

/// Now, as a `Mono` (milliseconds since boot, the unit of every deadline).
pub fn now() -> Mono {
    let (secs, micros) = since_boot();
    Mono(
        secs.saturating_mul(1000)
            .saturating_add(u64::from(micros / 1000)),
    )
}

/// The wall clock (CLOCK_REALTIME), in whole seconds since 1970 (for the boot's clock floor).
pub fn realtime_secs() -> Result<i64, nix::errno::Errno> {
    clock_gettime(ClockId::CLOCK_REALTIME).map(|ts| ts.tv_sec())
}

/// Sets the wall clock (CLOCK_REALTIME) to `secs` seconds since 1970 (needs CAP_SYS_TIME).
pub fn set_realtime_secs(secs: i64) -> Result<(), nix::errno::Errno> {
    nix::time::clock_settime(
        ClockId::CLOCK_REALTIME,
        nix::sys::time::TimeSpec::new(secs, 0),
    )
}

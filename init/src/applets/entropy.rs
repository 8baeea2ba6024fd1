//! `keel entropy`: the `entropy` oneshot. Waits until the kernel CRNG is ready, so that no
//! key is made from a random number generator that is not yet seeded.
//!
//! Readiness comes from `sshkeys::wait_for_crng` (getrandom with GRND_NONBLOCK, then poll
//! on /dev/random); entropy_avail is reported, never decided on. While it waits it warns on
//! every console every few seconds; when done it says how long it waited. Only `hostkeys`
//! needs it: the console login does not wait. It must not read entropy_avail as a
//! threshold and must not write to /dev/random.
#![forbid(unsafe_code)]

use crate::applets::log_to_consoles;
use crate::exit::Exit;
use crate::log;
use crate::sys::clock;
use std::time::Duration;

fn say(msg: &str) {
    log::info(&format!("entropy: {msg}"));
}

/// keel's monotonic clock as a `Duration` since boot.
fn since_boot() -> Duration {
    let (secs, micros) = clock::since_boot();
    Duration::new(secs, micros.saturating_mul(1000))
}

/// Runs `keel entropy`.
pub fn main(args: &[String]) -> Exit {
    log_to_consoles();
    if !args.is_empty() {
        say("usage: keel entropy (waits for the kernel crng)");
        return Exit::Permanent;
    }
    let mut source = sshkeys::KernelEntropy::new();
    match sshkeys::wait_for_crng(&mut source, since_boot, |w| say(&w.to_string())) {
        Ok(report) => {
            say(&report.to_string());
            Exit::Ok
        }
        Err(e) => {
            say(&e.to_string());
            Exit::Temporary
        }
    }
}

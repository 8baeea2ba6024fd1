//! The `[watchdog]` table: a hardware watchdog that only a healthy keel pets.
//!
//! ```toml
//! [watchdog]
//! device = "/dev/watchdog"   # the default
//! timeout = "30s"            # the default; the machine resets this long after the last pet
//! needs = ["sshd"]           # no pet once one of these has given up (default: none)
//! ```
//!
//! keel pets from its main loop (every third of the timeout), so a hung PID 1 resets the
//! machine, and stops petting when a service in `needs` gives up, so a machine that lost
//! what it is for resets too. A clean poweroff or reboot disarms it first. This module
//! holds the model and its validation; init/src/sys/watchdog.rs drives the device.

use super::{Val, Validator, entries};
use std::time::Duration;

/// The keys of `[watchdog]`.
pub const FIELDS: &[&str] = &["device", "timeout", "needs"];
/// The device when the config names none.
pub const DEFAULT_DEVICE: &str = "/dev/watchdog";
/// The timeout when the config gives none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// `[watchdog]` as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watchdog {
    pub device: String,
    /// Whole seconds, 2..=3600 (the watchdog API counts seconds).
    pub timeout: Duration,
    /// Services whose giving up stops the petting, with where each was written.
    pub needs: Vec<String>,
}

impl Default for Watchdog {
    fn default() -> Self {
        Watchdog {
            device: DEFAULT_DEVICE.to_string(),
            timeout: DEFAULT_TIMEOUT,
            needs: Vec::new(),
        }
    }
}

impl Watchdog {
    /// How often keel pets: a third of the timeout, so two missed rounds still do not
    /// reset a busy machine.
    pub fn interval(&self) -> Duration {
        (self.timeout / 3).max(Duration::from_millis(500))
    }
}

impl Validator {
    /// Reads `[watchdog]`; returns it and the place of each name in `needs`.
    pub(super) fn watchdog(&mut self, v: &Val<'_>) -> Option<(Watchdog, Vec<usize>)> {
        let t = self.table(v, "watchdog")?;
        let mut w = Watchdog::default();
        let mut places = Vec::new();
        for (key, v) in entries(t) {
            let at = v.span().start;
            match key.get_ref().as_ref() {
                "device" => {
                    if let Some(d) = self.string(v, "watchdog.device") {
                        if d.starts_with("/dev/") {
                            w.device = d;
                        } else {
                            self.err(at, format!("`watchdog.device` = \"{d}\" must be a device under /dev, such as \"/dev/watchdog\""));
                        }
                    }
                }
                "timeout" => {
                    if let Some(d) = self.duration(v, "watchdog.timeout") {
                        if d.subsec_nanos() != 0 || !(2..=3600).contains(&d.as_secs()) {
                            self.err(at, "`watchdog.timeout` must be whole seconds from 2s to 3600s (the watchdog counts seconds)");
                        } else {
                            w.timeout = d;
                        }
                    }
                }
                "needs" => {
                    if let Some(names) = self.strings(v, "watchdog.needs") {
                        for (n, p) in names {
                            w.needs.push(n);
                            places.push(p);
                        }
                    }
                }
                _ => self.unknown(key, "[watchdog]", FIELDS),
            }
        }
        Some((w, places))
    }
}

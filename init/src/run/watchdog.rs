//! The watchdog room, the driver's side of `[watchdog]`: arm the device at start, pet it
//! from the loop every interval while no service in `needs` has given up, disarm it on a
//! clean poweroff or reboot, and say in /run/keel/watchdog what it is doing (keelctl
//! status shows that file).
#![forbid(unsafe_code)]

use super::host::Host;
use super::{RUN_DIR, WATCHDOG_STATE as STATE_FILE};
use crate::log::Level;
use crate::sys::clock;
use crate::sys::watchdog::Device;
use appliance::ApplianceConfig;
use supervisor::Mono;
use supervisor::SvcId;
use supervisor::core::Supervisor;

/// An armed watchdog and when to pet it next.
#[derive(Debug)]
pub struct Dog {
    dev: Device,
    path: String,
    needs: Vec<(SvcId, String)>,
    interval_ms: u64,
    next_at: Mono,
    /// Why it is not petted (a needed service gave up), once said.
    stopped: Option<String>,
}

impl Dog {
    /// Opens and arms the `[watchdog]` device of `cfg` (PID 1 only), and pets it once.
    pub fn start(cfg: &ApplianceConfig, sup: &Supervisor, host: Host) -> Option<Dog> {
        let w = cfg.watchdog.as_ref()?;
        if !host.arms_watchdog() {
            host.log(
                Level::Info,
                &format!(
                    "[watchdog] is ignored under keel supervise ({} is the host's)",
                    w.device
                ),
            );
            return None;
        }
        let secs = i32::try_from(w.timeout.as_secs()).unwrap_or(30);
        let dev = match Device::open(&w.device, secs) {
            Ok(dev) => dev,
            Err(e) => {
                host.log(
                    Level::Info,
                    &format!(
                        "cannot arm the watchdog {}: {e}; the kernel needs a watchdog driver (i6300esb, xen_wdt or softdog) and the device must exist",
                        w.device
                    ),
                );
                return None;
            }
        };
        let needs: Vec<(SvcId, String)> = w
            .needs
            .iter()
            .filter_map(|n| Some((sup.find(n)?, n.clone())))
            .collect();
        let names: Vec<&str> = needs.iter().map(|(_, n)| n.as_str()).collect();
        let line = format!(
            "armed {} timeout {}s, petted every {:.1}s{}",
            w.device,
            dev.timeout_s,
            w.interval().as_secs_f64(),
            if names.is_empty() {
                String::new()
            } else {
                format!(" while {} has not given up", names.join(", "))
            }
        );
        host.log(Level::Info, &format!("watchdog {line}"));
        write_state(&line);
        let interval_ms = u64::try_from(w.interval().as_millis()).unwrap_or(10_000);
        let mut dog = Dog {
            dev,
            path: w.device.clone(),
            needs,
            interval_ms,
            next_at: clock::now(),
            stopped: None,
        };
        dog.pet(Some(sup), host);
        Some(dog)
    }

    /// When the loop must wake to pet.
    pub fn deadline(&self) -> Mono {
        self.next_at
    }

    /// Pets the watchdog if it is due and no needed service has given up.
    pub fn pet(&mut self, sup: Option<&Supervisor>, host: Host) {
        let now = clock::now();
        if now < self.next_at {
            return;
        }
        let gave_up: Vec<&str> = self
            .needs
            .iter()
            .filter(|(s, _)| sup.is_some_and(|sup| sup.gave_up(*s)))
            .map(|(_, n)| n.as_str())
            .collect();
        let why = (!gave_up.is_empty()).then(|| format!("{} gave up", gave_up.join(", ")));
        let timeout = self.dev.timeout_s;
        let mut say = None;
        self.next_at = now.plus_ms(self.interval_ms);
        match why {
            Some(w) => {
                if self.stopped.as_ref() != Some(&w) {
                    say = Some(format!(
                        "watchdog: not petting {} any more: {w}; the machine resets within {timeout}s",
                        self.path
                    ));
                    write_state(&format!("stopped petting {}: {w}", self.path));
                    self.stopped = Some(w);
                }
            }
            None => {
                if self.stopped.take().is_some() {
                    say = Some(format!("watchdog: petting {} again", self.path));
                    write_state(&format!("armed {} timeout {timeout}s", self.path));
                }
                if let Err(e) = self.dev.pet() {
                    say = Some(format!("watchdog: cannot pet {}: {e}", self.path));
                }
            }
        }
        if let Some(s) = say {
            host.log(Level::Info, &s);
        }
    }

    /// A clean poweroff or reboot: magic close, so the halt is never raced by a reset.
    pub fn disarm(mut self, host: Host) {
        self.dev.disarm();
        host.log(Level::Info, &format!("watchdog {} disarmed", self.path));
        write_state(&format!("disarmed {}", self.path));
    }
}

fn write_state(line: &str) {
    let _ = crate::sys::fs::mkdir(RUN_DIR, 0o711);
    let _ = crate::sys::fs::create(STATE_FILE, &format!("{line}\n"));
}

//! The driver's side of `[watchdog]` (kept out of run.rs): arm the device at start, pet it
//! from the loop every interval while no service in `needs` has given up, disarm it on a
//! clean poweroff or reboot, and say in /run/keel/watchdog what it is doing (keelctl
//! status shows that file).
#![forbid(unsafe_code)]

use super::{Driver, Mode, RUN_DIR, WATCHDOG_STATE as STATE_FILE};
use crate::log::Level;
use crate::sys::clock;
use crate::sys::watchdog::Device;
use supervisor::SvcId;
use supervisor::config::ApplianceConfig;

/// An armed watchdog and when to pet it next.
#[derive(Debug)]
pub struct Dog {
    dev: Device,
    path: String,
    needs: Vec<(SvcId, String)>,
    interval_ms: u64,
    next_at: clock::Mono,
    /// Why it is not petted (a needed service gave up), once said.
    stopped: Option<String>,
}

impl Driver {
    /// Opens and arms the `[watchdog]` device (PID 1 only).
    pub(super) fn start_watchdog(&mut self, cfg: &ApplianceConfig) {
        let Some(w) = &cfg.watchdog else { return };
        if self.mode == Mode::Supervise {
            self.log(
                Level::Info,
                &format!(
                    "[watchdog] is ignored under keel supervise ({} is the host's)",
                    w.device
                ),
            );
            return;
        }
        let secs = i32::try_from(w.timeout.as_secs()).unwrap_or(30);
        match Device::open(&w.device, secs) {
            Ok(dev) => {
                let needs: Vec<(SvcId, String)> = w
                    .needs
                    .iter()
                    .filter_map(|n| Some((self.sup.as_ref()?.find(n)?, n.clone())))
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
                self.log(Level::Info, &format!("watchdog {line}"));
                write_state(&line);
                let interval_ms = u64::try_from(w.interval().as_millis()).unwrap_or(10_000);
                self.dog = Some(Dog {
                    dev,
                    path: w.device.clone(),
                    needs,
                    interval_ms,
                    next_at: clock::now(),
                    stopped: None,
                });
                self.pet_watchdog();
            }
            Err(e) => self.log(
                Level::Info,
                &format!(
                    "cannot arm the watchdog {}: {e}; the kernel needs a watchdog driver (i6300esb, xen_wdt or softdog) and the device must exist",
                    w.device
                ),
            ),
        }
    }

    /// When the loop must wake to pet.
    pub(super) fn watchdog_deadline(&self) -> Option<clock::Mono> {
        self.dog.as_ref().map(|d| d.next_at)
    }

    /// Pets the watchdog if it is due and no needed service has given up.
    pub(super) fn pet_watchdog(&mut self) {
        let now = clock::now();
        let Some(dog) = &self.dog else { return };
        if now < dog.next_at {
            return;
        }
        let gave_up: Vec<&str> = dog
            .needs
            .iter()
            .filter(|(s, _)| self.sup.as_ref().is_some_and(|sup| sup.gave_up(*s)))
            .map(|(_, n)| n.as_str())
            .collect();
        let why = (!gave_up.is_empty()).then(|| format!("{} gave up", gave_up.join(", ")));
        let timeout = dog.dev.timeout_s;
        let mut say = None;
        if let Some(dog) = &mut self.dog {
            dog.next_at = now.plus_ms(dog.interval_ms);
            match why {
                Some(w) => {
                    if dog.stopped.as_ref() != Some(&w) {
                        say = Some(format!(
                            "watchdog: not petting {} any more: {w}; the machine resets within {timeout}s",
                            dog.path
                        ));
                        write_state(&format!("stopped petting {}: {w}", dog.path));
                        dog.stopped = Some(w);
                    }
                }
                None => {
                    if dog.stopped.take().is_some() {
                        say = Some(format!("watchdog: petting {} again", dog.path));
                        write_state(&format!("armed {} timeout {timeout}s", dog.path));
                    }
                    if let Err(e) = dog.dev.pet() {
                        say = Some(format!("watchdog: cannot pet {}: {e}", dog.path));
                    }
                }
            }
        }
        if let Some(s) = say {
            self.log(Level::Info, &s);
        }
    }

    /// A clean poweroff or reboot: magic close, so the halt is never raced by a reset.
    pub(super) fn disarm_watchdog(&mut self) {
        if let Some(mut dog) = self.dog.take() {
            dog.dev.disarm();
            self.log(Level::Info, &format!("watchdog {} disarmed", dog.path));
            write_state(&format!("disarmed {}", dog.path));
        }
    }
}

fn write_state(line: &str) {
    let _ = crate::sys::fs::mkdir(RUN_DIR, 0o711);
    let _ = crate::sys::fs::create(STATE_FILE, &format!("{line}\n"));
}

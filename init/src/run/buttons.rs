//! The power buttons (PID 1 only): the input devices with KEY_POWER, watched in the
//! loop's poll; a press asks the lifecycle for a poweroff.
#![forbid(unsafe_code)]

use super::fds::{Registry, Source};
use super::host::Host;
use crate::log::Level;
use crate::sys::input;
use nix::poll::PollFlags;
use std::os::fd::AsFd;

/// The buttons watched.
#[derive(Debug, Default)]
pub struct Buttons(Vec<input::Button>);

impl Buttons {
    /// Opens every power button, saying which (and when there is none).
    pub fn open(host: Host) -> Buttons {
        let (buttons, notes) = input::open_power_buttons();
        for n in notes {
            host.log(Level::Info, &n);
        }
        if buttons.is_empty() {
            host.log(
                Level::Info,
                "no power button found (KEY_POWER): ACPI power-off requests will not be seen",
            );
        }
        for b in &buttons {
            host.log(Level::Debug, &format!("watching power button {}", b.path));
        }
        Buttons(buttons)
    }

    /// Adds the buttons to the poll.
    pub fn register<'a>(&'a self, reg: &mut Registry<'a>) {
        for (i, b) in self.0.iter().enumerate() {
            reg.add(b.file.as_fd(), PollFlags::POLLIN, Source::Button(i));
        }
    }

    /// Reads the buttons that woke up (a lost one is dropped); true when one was pressed.
    pub fn read(&mut self, woken: &[usize], host: Host) -> bool {
        let mut pressed = false;
        for &i in woken.iter().rev() {
            let Some(b) = self.0.get_mut(i) else {
                continue;
            };
            match input::read_button(b) {
                Ok(p) => pressed |= p,
                Err(e) => {
                    host.log(Level::Info, &format!("power button lost: {e}"));
                    self.0.remove(i);
                }
            }
        }
        if pressed {
            host.log(Level::Info, "power button pressed");
        }
        pressed
    }
}

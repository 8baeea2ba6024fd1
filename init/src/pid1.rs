//! PID 1's entry point: boot, then the main loop, under a net that catches every panic.
//!
//! Invariant: `main` never returns and never exits. A panic is printed on the consoles by
//! the hook, then caught here and turned into `keel: EMERGENCY: ...` and the emergency
//! shell, with the same loop going on. After `MAX_PANICS` panics, or when even the
//! emergency path panics, keel syncs and reboots (RB_AUTOBOOT), the last thing that is
//! still better than a kernel panic.
#![forbid(unsafe_code)]

use crate::boot::{self, Booted};
use crate::consoles;
use crate::log;
use crate::run::Driver;
use crate::sys::linux::LinuxSys;
use crate::sys::power;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use supervisor::PowerKind;

/// How many panics keel survives before it reboots instead.
pub const MAX_PANICS: u32 = 5;

static LAST_PANIC: Mutex<String> = Mutex::new(String::new());

fn last_panic() -> String {
    let msg = LAST_PANIC
        .lock()
        .map(|m| m.clone())
        .unwrap_or_else(|p| p.into_inner().clone());
    if msg.is_empty() {
        "keel panicked".to_string()
    } else {
        format!("keel panicked: {msg}")
    }
}

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string().replace(":\n", ": ").replace('\n', " ");
        log::info(&format!("panic: {msg}"));
        match LAST_PANIC.lock() {
            Ok(mut m) => *m = msg,
            Err(p) => *p.into_inner() = msg,
        }
    }));
}

/// Reboots as the last resort; if the kernel refuses, idles forever without exiting.
fn last_resort(why: &str) -> ! {
    log::info(&format!("EMERGENCY: {why}; rebooting"));
    log::drain(2000);
    let e = power::finish(PowerKind::Reboot, true);
    log::info(&format!("reboot(2) failed: {e}; keel idles"));
    loop {
        let _ = nix::poll::poll(&mut [], nix::poll::PollTimeout::NONE);
    }
}

/// PID 1's main. Never returns.
pub fn main() -> ! {
    // When /init started, for the boot timeline (keelctl boot, the "up in" line).
    let init_at = crate::sys::clock::now();
    log::init_early();
    install_panic_hook();

    let mut booted = match catch_unwind(|| boot::boot(&mut LinuxSys)) {
        Ok(b) => b,
        Err(_) => {
            let active = crate::sys::fs::read_to_string(consoles::ACTIVE_PATH).unwrap_or_default();
            let consoles = consoles::parse_active(&active);
            log::use_consoles(&consoles.all);
            Booted {
                consoles,
                config: None,
                fatal: Some(format!("{} during boot", last_panic())),
                cause: crate::lifecycle::Cause::Boot,
                emergency: crate::lifecycle::EmergencyOpts::default(),
                debug: false,
                test_panic: false,
            }
        }
    };
    log::set_verbose(booted.debug);
    // Per-console services (getty) become one instance per console before the supervisor
    // numbers the services (appliance::ApplianceConfig::expand_consoles).
    let consoles = booted.consoles.all.clone();
    if let Some(cfg) = booted.config.as_mut() {
        cfg.expand_consoles(&consoles);
    }
    if let Err(e) = crate::sys::console::stdio_to_null() {
        log::debug(&format!("cannot point stdio at /dev/null: {e}"));
    }

    let mut driver = match catch_unwind(|| Driver::new(&booted)) {
        Ok(d) => d,
        Err(_) => last_resort(&format!("{} while starting the main loop", last_panic())),
    };
    driver.set_init_time(init_at);
    let mut panics = 0u32;
    loop {
        // The inner loop never ends; the only way out is a panic.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            loop {
                driver.step();
            }
        }));
        panics += 1;
        let what = last_panic();
        if panics > MAX_PANICS {
            last_resort(&format!("{what} ({panics} panics)"));
        }
        if catch_unwind(AssertUnwindSafe(|| driver.emergency(&what))).is_err() {
            last_resort(&format!(
                "{} while starting the emergency shell",
                last_panic()
            ));
        }
    }
}

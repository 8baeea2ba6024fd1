//! The start room: what the loop needs before its first round. The signalfd (and the
//! open files limit), the directory of `keel supervise`'s socket, and everything that
//! comes with an appliance config: the supervisor, the service groups, the services'
//! descriptors, the watchdog; and the config read again when keel goes on after an
//! emergency shell.
#![forbid(unsafe_code)]

use super::host::Host;
use super::services::Services;
use super::{group_events, watchdog::Dog};
use crate::groups::Groups;
use crate::log;
use crate::sys::signals;
use appliance::ApplianceConfig;
use nix::sys::signalfd::SignalFd;
use supervisor::core::Supervisor;

/// Raises the open files limit and makes the signalfd (None, said, when it cannot be had:
/// the loop then wakes each second to reap).
pub fn signal_fd() -> Option<SignalFd> {
    match crate::sys::control::raise_nofile() {
        Ok((soft, hard)) if soft < hard => log::debug(&format!(
            "open files limit raised from {soft} to {hard} (services keep {soft})"
        )),
        Ok(_) => {}
        Err(e) => log::info(&format!("cannot raise the open files limit: {e}")),
    }
    match signals::signal_fd() {
        Ok(fd) => Some(fd),
        Err(e) => {
            log::info(&format!(
                "cannot create a signalfd: {e}; power requests by signal will be lost"
            ));
            None
        }
    }
}

/// The directory of the control socket at `socket` (made 0711 if missing); its notify
/// sockets go to `notify/` in it.
pub fn socket_dir(socket: &str) -> Result<String, String> {
    let dir = std::path::Path::new(socket)
        .parent()
        .map_or_else(|| ".".to_string(), |p| p.display().to_string());
    let dir = if dir.is_empty() { ".".to_string() } else { dir };
    crate::sys::fs::mkdir(&dir, 0o711)
        .map_err(|e| format!("cannot create {dir} for the control socket: {e}"))?;
    Ok(dir)
}

/// What comes with an appliance config.
pub struct Supervised {
    pub sup: Supervisor,
    pub groups: Groups,
    pub svcs: Services,
    pub dog: Option<Dog>,
}

/// The supervisor of `cfg`, its groups, the services' notify sockets (in `notify_dir`)
/// and the armed watchdog.
pub fn supervised(
    cfg: &ApplianceConfig,
    host: Host,
    consoles: &[String],
    notify_dir: &str,
) -> Supervised {
    let sup = Supervisor::with_seed(cfg, crate::sys::jitter_seed());
    let groups = group_events::start_groups(cfg, host);
    let svcs = Services::new(cfg, host, consoles, notify_dir);
    let dog = Dog::start(cfg, &sup, host);
    Supervised {
        sup,
        groups,
        svcs,
        dog,
    }
}

/// The appliance config read again after the emergency shell (it may have been fixed
/// there), expanded for `consoles`, with its modules loaded; Err says why not.
pub fn reload(consoles: &[String]) -> Result<ApplianceConfig, String> {
    let mut sys = crate::sys::linux::LinuxSys;
    let mut cfg = crate::boot::load_appliance(&mut sys)?;
    cfg.expand_consoles(consoles);
    match crate::boot::load_modules(&mut sys, &cfg) {
        Some(what) => Err(what),
        None => Ok(cfg),
    }
}

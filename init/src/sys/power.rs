//! The end of the machine: sync, reboot(2), Ctrl-Alt-Del, and signals to every process.
//!
//! `finish` is the last thing PID 1 does; it never returns. The orderly part (who gets
//! SIGTERM when, how long to wait) is decided in `lifecycle.rs`.

use nix::errno::Errno;
use nix::sys::reboot::{RebootMode, reboot, set_cad_enabled};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use supervisor::PowerKind;

/// The signal that asks PID 1 for `kind` (busybox convention).
pub fn request_signal(kind: PowerKind) -> Signal {
    match kind {
        PowerKind::PowerOff => Signal::SIGUSR2,
        PowerKind::Reboot => Signal::SIGTERM,
        PowerKind::Halt => Signal::SIGUSR1,
    }
}

fn mode(kind: PowerKind) -> RebootMode {
    match kind {
        PowerKind::PowerOff => RebootMode::RB_POWER_OFF,
        PowerKind::Reboot => RebootMode::RB_AUTOBOOT,
        PowerKind::Halt => RebootMode::RB_HALT_SYSTEM,
    }
}

/// Makes Ctrl-Alt-Del (and Xen's reboot) send SIGINT to PID 1 instead of rebooting at once.
pub fn disable_cad() -> Result<(), Errno> {
    set_cad_enabled(false)
}

/// Flushes every filesystem.
pub fn sync() {
    nix::unistd::sync();
}

/// Sends `sig` to every process but PID 1 and kernel threads. ESRCH means none is left.
pub fn kill_all(sig: Signal) -> Result<(), Errno> {
    kill(Pid::from_raw(-1), sig)
}

/// Sends `sig` to one process.
pub fn kill_one(pid: i32, sig: Signal) -> Result<(), Errno> {
    kill(Pid::from_raw(pid), sig)
}

/// Syncs and calls reboot(2). Returns only the error if the kernel refused; the caller
/// then tries RB_AUTOBOOT, and if that fails too, keeps PID 1 alive.
pub fn finish(kind: PowerKind, do_sync: bool) -> Errno {
    if do_sync {
        sync();
    }
    match reboot(mode(kind)) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// What became of the state disk at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    Unmounted,
    /// Busy (a process survived SIGKILL with a file open): remounted read-only instead.
    RemountedReadOnly,
}

/// Unmounts the filesystem at `path`, or remounts it read-only when it is busy.
pub fn release_mount(path: &str) -> Result<Released, Errno> {
    use nix::mount::{MntFlags, MsFlags, mount, umount2};
    match umount2(path, MntFlags::empty()) {
        Ok(()) => Ok(Released::Unmounted),
        Err(Errno::EBUSY) => mount(
            None::<&str>,
            path,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map(|()| Released::RemountedReadOnly),
        Err(e) => Err(e),
    }
}

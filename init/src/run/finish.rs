//! The finish room: the lifecycle's signals to every process at shutdown, the end of the
//! machine once it says `Finish` (sync, the state disk released, the shutdown report, the
//! watchdog disarmed, reboot(2)), and the end of `keel supervise` (the orphans its
//! services left behind).
#![forbid(unsafe_code)]

use super::host::Host;
use super::watchdog::Dog;
use crate::lifecycle::{self, Lifecycle};
use crate::log::Level;
use crate::sys::power;
use crate::sys::{clock, reap, signals};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use std::os::fd::AsFd;
use supervisor::PowerKind;
use supervisor::core::Supervisor;

/// Carries out `Finish(kind)`: sync, release the state disk, sync, print the shutdown
/// report, disarm the watchdog, reboot(2). Returns only when the kernel refused every
/// mode (keel then keeps running and reaping).
pub fn finish(
    kind: PowerKind,
    sup: Option<&Supervisor>,
    lc: Option<&Lifecycle>,
    dog: &mut Option<Dog>,
    host: Host,
) {
    let began = clock::now();
    host.log(Level::Debug, "syncing filesystems");
    power::sync();
    release_state_disk(host);
    power::sync();
    let finish_ms = clock::now().ms_since(began);
    let rows = sup.map(Supervisor::shutdown_report).unwrap_or_default();
    let times = lc.map(Lifecycle::phase_times).unwrap_or_default();
    for line in lifecycle::report::render(kind, &rows, times, finish_ms) {
        host.log(Level::Info, &line);
    }
    if let Some(d) = dog.take() {
        d.disarm(host);
    }
    // The report's lines may still wait in a slow console's backlog: give it up to 2 s.
    crate::log::drain(2000);
    let e = power::finish(kind, false);
    host.log(
        Level::Info,
        &format!("reboot(2) for {} failed: {e}", kind.verb()),
    );
    if kind != PowerKind::Reboot {
        let e = power::finish(PowerKind::Reboot, false);
        host.log(Level::Info, &format!("reboot(2) failed again: {e}"));
    }
    host.log(
        Level::Info,
        "EMERGENCY: the kernel refused to stop the machine; keel keeps running and reaping",
    );
}

/// Carries out the lifecycle's `Kill` (a failure is only worth a debug line: the
/// process may be gone already).
pub fn kill(pid: i32, sig: Signal, host: Host) {
    if let Err(e) = power::kill_one(pid, sig) {
        host.log(Level::Debug, &format!("kill {pid} {sig}: {e}"));
    }
}

/// Carries out `KillAll`: `sig` to every process but PID 1; true when none was left
/// (ESRCH), which the lifecycle is told as `NoChildren`.
pub fn kill_all(sig: Signal, host: Host) -> bool {
    match power::kill_all(sig) {
        Ok(()) => false,
        Err(nix::errno::Errno::ESRCH) => true,
        Err(e) => {
            host.log(
                Level::Info,
                &format!("cannot send {sig} to all processes: {e}"),
            );
            false
        }
    }
}

/// Unmounts the state disk, or remounts it read-only when something still holds it.
pub fn release_state_disk(host: Host) {
    let dir = crate::applets::state::STATE_DIR;
    let info = crate::sys::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let Some((source, _)) = crate::applets::state::mounted_at(&info, dir) else {
        host.log(Level::Debug, &format!("no state disk on {dir}"));
        return;
    };
    match power::release_mount(dir) {
        Ok(power::Released::Unmounted) => host.log(
            Level::Info,
            &format!("unmounted the state disk {source} from {dir}"),
        ),
        Ok(power::Released::RemountedReadOnly) => host.log(
            Level::Info,
            &format!("the state disk {source} on {dir} is busy: remounted read-only"),
        ),
        Err(e) => host.log(
            Level::Info,
            &format!("cannot unmount or remount read-only the state disk {source} on {dir}: {e}"),
        ),
    }
}

/// `keel supervise`, after every service stopped: the processes its services left
/// behind (orphans re-parented to keel, the subreaper) get SIGTERM, SIGKILL after
/// `grace`, and are reaped, so keel exits leaving nothing of its services running and
/// no zombie. PID 1 does the same at shutdown with kill(-1) (the lifecycle's KillAll).
/// `sfd` wakes the wait when a child ends.
pub fn end_orphans(sfd: Option<&SignalFd>, grace: std::time::Duration, host: Host) {
    let left = reap::children();
    if left.is_empty() {
        return;
    }
    host.log(
        Level::Info,
        &format!(
            "{} process(es) left behind by services ({}): sending SIGTERM, SIGKILL after {} s",
            left.len(),
            left.iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            grace.as_secs_f32()
        ),
    );
    for &pid in &left {
        let _ = power::kill_one(pid, Signal::SIGTERM);
    }
    let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
    let mut deadline = clock::now().plus_ms(grace_ms);
    let mut killed = false;
    loop {
        reap::drain();
        let still = reap::children();
        if still.is_empty() {
            return;
        }
        let now = clock::now();
        if now >= deadline {
            if killed {
                // SIGKILL cannot be refused; what is left is in the kernel's hands.
                host.log(Level::Info, "processes survived SIGKILL; exiting anyway");
                return;
            }
            host.log(
                Level::Info,
                &format!("{} process(es) ignored SIGTERM: SIGKILL", still.len()),
            );
            for pid in still {
                let _ = power::kill_one(pid, Signal::SIGKILL);
            }
            killed = true;
            deadline = now.plus_ms(grace_ms);
            continue;
        }
        // Sleep until a child ends (SIGCHLD on the signalfd) or the deadline.
        let wait = u16::try_from(deadline.ms_since(now).min(1000)).unwrap_or(1000);
        match sfd {
            Some(sfd) => {
                let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::from(wait));
                let _ = signals::read_pending(sfd);
            }
            None => {
                let _ = poll(&mut [], PollTimeout::from(wait.min(20)));
            }
        }
    }
}

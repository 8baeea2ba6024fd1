//! The one reaper: the only caller of `waitpid` in keel.
//!
//! `drain` empties `waitpid(-1, WNOHANG)` and reports every child that ended; it runs
//! after each SIGCHLD (and after signalling everything at shutdown). Nothing else in keel
//! may wait for a child (clippy.toml bans the std `wait` family), because any other wait
//! would steal statuses from this loop. Deciding what an exit means is not done here.

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use supervisor::Sig;

/// How a signal that killed a child is reported (Linux numbers fit a byte).
fn killed_by(sig: nix::sys::signal::Signal) -> supervisor::WaitStatus {
    supervisor::WaitStatus::Signaled(Sig(u8::try_from(sig as i32).unwrap_or(0)))
}

/// What one drain found.
#[derive(Debug, Default)]
pub struct Drained {
    /// Children that ended, in the order the kernel reported them.
    pub ended: Vec<(i32, supervisor::WaitStatus)>,
    /// True when keel has no children left at all (ECHILD).
    pub no_children: bool,
}

/// Reaps every child that has ended, without blocking.
///
/// Errors other than ECHILD cannot happen with these arguments; one is treated like
/// "nothing more to reap now" so the loop goes on.
pub fn drain() -> Drained {
    let mut out = Drained::default();
    // A bound keeps a pathological fork storm from starving the rest of the loop; what is
    // left is reaped on the next round.
    for _ in 0..4096 {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => out
                .ended
                .push((pid.as_raw(), supervisor::WaitStatus::Exited(code))),
            Ok(WaitStatus::Signaled(pid, sig, _core)) => {
                out.ended.push((pid.as_raw(), killed_by(sig)));
            }
            Ok(WaitStatus::StillAlive) => break,
            // Stops and continues are not asked for (no WUNTRACED); skip them if they come.
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => {
                out.no_children = true;
                break;
            }
            Err(_) => break,
        }
    }
    out
}

/// The pids of this process's living children (zombies included), from
/// `/proc/self/task/*/children`: for `keel supervise`, which after its services stopped
/// still holds the orphans they left behind (it is their subreaper). Empty when the
/// kernel lacks CONFIG_PROC_CHILDREN.
pub fn children() -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killing_signal_keeps_its_number_and_the_shell_code() {
        use nix::sys::signal::Signal;
        let table = [
            (Signal::SIGHUP, 129),
            (Signal::SIGKILL, 137),
            (Signal::SIGSEGV, 139),
            (Signal::SIGTERM, 143),
        ];
        for (sig, want) in table {
            let ended = killed_by(sig);
            assert_eq!(ended, supervisor::WaitStatus::Signaled(Sig(sig as u8)));
            assert_eq!(ended.code(), want, "{ended:?}");
        }
    }
}

//! Spawning: the only code that turns a `SpawnSpec` into a process.
//!
//! A spawn is data (s6's cspawn): argv, env, cwd, whether to start a new session, and the
//! tty that becomes the child's controlling terminal and stdio. Everything the child needs
//! is built before `fork`; the child then makes only async-signal-safe calls: restore
//! default dispositions, clear the blocked mask PID 1 runs with, setsid, open the tty,
//! TIOCSCTTY, dup2 to 0/1/2, chdir, execve. If `exec` fails it exits 127 (not found) or
//! 126 (cannot execute), as a shell does. The caller registers the returned pid before it
//! next reaps, so the exit cannot be missed. This module never waits for the child.

use crate::exit::Exit;
use nix::errno::Errno;
use std::ffi::CString;

/// What to start and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnSpec {
    /// The program (an absolute path, not searched in PATH) and its arguments.
    pub argv: Vec<String>,
    /// The whole environment, as `NAME=value`.
    pub env: Vec<String>,
    /// The working directory.
    pub cwd: String,
    /// Start a new session (and process group) with the child as leader.
    pub setsid: bool,
    /// A tty to open as stdin, stdout and stderr, and to make the controlling terminal
    /// (needs `setsid`). `None` means /dev/null for all three.
    pub tty: Option<String>,
}

fn cstring(s: &str) -> Result<CString, Errno> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

/// Everything the child touches, prepared in the parent so the child does not allocate.
struct Prepared {
    path: CString,
    /// Owned here so that the pointers in `argv_ptrs` stay valid until exec.
    #[allow(dead_code)]
    argv: Vec<CString>,
    /// Owned here so that the pointers in `env_ptrs` stay valid until exec.
    #[allow(dead_code)]
    env: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    env_ptrs: Vec<*const libc::c_char>,
    cwd: CString,
    stdio: CString,
}

fn prepare(spec: &SpawnSpec) -> Result<Prepared, Errno> {
    let first = spec.argv.first().ok_or(Errno::EINVAL)?;
    let argv = spec
        .argv
        .iter()
        .map(|a| cstring(a))
        .collect::<Result<Vec<_>, _>>()?;
    let env = spec
        .env
        .iter()
        .map(|e| cstring(e))
        .collect::<Result<Vec<_>, _>>()?;
    let mut argv_ptrs: Vec<_> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<_> = env.iter().map(|e| e.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    Ok(Prepared {
        path: cstring(first)?,
        argv,
        env,
        argv_ptrs,
        env_ptrs,
        cwd: cstring(&spec.cwd)?,
        stdio: cstring(spec.tty.as_deref().unwrap_or("/dev/null"))?,
    })
}

/// Starts `spec` and returns the child's pid. Errors are the parent's (bad spec, fork
/// failed); failures in the child show up as its exit code.
pub fn spawn(spec: &SpawnSpec) -> Result<i32, Errno> {
    let p = prepare(spec)?;
    let ctty = spec.tty.is_some() && spec.setsid;
    // SAFETY: keel is single-threaded (no threads are ever started), so the child is a
    // faithful copy with no locks held by other threads; the child runs only
    // async-signal-safe libc calls on data prepared above and ends in execve or _exit.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(child.as_raw()),
        nix::unistd::ForkResult::Child => {
            // SAFETY: in the freshly forked child; see `child_exec`.
            unsafe { child_exec(&p, spec.setsid, ctty) }
        }
    }
}

/// The child's half of `spawn`. Never returns.
///
/// # Safety
/// Must only be called in a child right after `fork`, with `p` fully prepared.
unsafe fn child_exec(p: &Prepared, setsid: bool, ctty: bool) -> ! {
    // SAFETY: every call below is async-signal-safe and gets valid pointers: the sigset
    // and sigaction structs are locals, the strings are NUL-terminated CStrings owned by
    // `p`, and the argv/env pointer arrays are NULL-terminated arrays of those.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        if setsid {
            libc::setsid();
        }
        let fd = libc::open(p.stdio.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        if fd < 0 {
            libc::_exit(i32::from(Exit::Temporary.code()));
        }
        if ctty {
            // Steal the tty if an old session still claims it: the console is PID 1's
            // to give.
            libc::ioctl(fd, libc::TIOCSCTTY as _, 1);
        }
        for target in 0..3 {
            if fd != target {
                libc::dup2(fd, target);
            }
        }
        if fd > 2 {
            libc::close(fd);
        }
        libc::chdir(p.cwd.as_ptr());
        libc::execve(p.path.as_ptr(), p.argv_ptrs.as_ptr(), p.env_ptrs.as_ptr());
        let errno = *libc::__errno_location();
        libc::_exit(i32::from(Exit::for_exec_errno(errno).code()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_rejects_empty_argv_and_nul_bytes() {
        let mut spec = SpawnSpec {
            argv: vec![],
            env: vec![],
            cwd: "/".into(),
            setsid: false,
            tty: None,
        };
        assert_eq!(prepare(&spec).err(), Some(Errno::EINVAL));
        spec.argv = vec!["/bin/sh\0x".into()];
        assert_eq!(prepare(&spec).err(), Some(Errno::EINVAL));
        spec.argv = vec!["/bin/sh".into(), "-l".into()];
        let p = prepare(&spec).map_err(|e| e.to_string());
        assert!(p.is_ok());
        if let Ok(p) = p {
            assert_eq!(p.argv_ptrs.len(), 3);
            assert!(p.argv_ptrs[2].is_null());
            assert_eq!(p.env_ptrs.len(), 1);
        }
    }
}

#[cfg(test)]
mod live_tests {
    use super::*;
    use crate::sys::{reap, signals};

    /// Reaps until `pid` shows up (bounded), as PID 1's loop would.
    fn wait_for(pid: i32) -> Option<reap::Ended> {
        for _ in 0..2000 {
            let d = reap::drain();
            if let Some((_, ended)) = d.ended.into_iter().find(|(p, _)| *p == pid) {
                return Some(ended);
            }
            let _ = nix::poll::poll(&mut [], nix::poll::PollTimeout::from(5u8));
        }
        None
    }

    #[test]
    fn child_starts_with_a_clean_signal_mask_and_exec_errors_map_to_127() {
        // PID 1 runs with everything blocked; the child must not inherit that.
        assert_eq!(signals::block_all(), Ok(()));
        let status_file =
            std::env::temp_dir().join(format!("keel-spawn-test-{}", std::process::id()));
        let spec = SpawnSpec {
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                // The shell's own status is what its children inherit.
                format!("cat /proc/$$/status > {}; exit 7", status_file.display()),
            ],
            env: vec!["PATH=/usr/bin:/bin".into()],
            cwd: "/".into(),
            setsid: true,
            tty: None,
        };
        let pid = spawn(&spec).map_err(|e| e.to_string());
        assert!(pid.is_ok(), "{pid:?}");
        let ended = wait_for(pid.unwrap_or(0));
        assert_eq!(
            ended,
            Some(reap::Ended::Exited(7)),
            "mask or dispositions leaked"
        );

        let missing = SpawnSpec {
            argv: vec!["/nonexistent/keel-test".into()],
            ..spec
        };
        let pid = spawn(&missing).unwrap_or(0);
        assert_eq!(wait_for(pid), Some(reap::Ended::Exited(127)));
    }
}

//! Spawning: the only code that turns a `SpawnSpec` into a process.
//!
//! A spawn is data (s6's cspawn): argv, env, cwd, whether to start a new session, the tty
//! that becomes the child's controlling terminal and stdio, the pipe that takes stdout and
//! stderr, the credentials and the capabilities to keep. Everything the child needs is
//! built before `fork` (names resolved, masks computed, pointer arrays laid out); the child
//! then makes only async-signal-safe calls and raw system calls, never allocating:
//!
//! 0. with `cgroup`: write `0` to the service group's `cgroup.procs` (an fd the parent
//!    opened), so the child and everything it ever forks are in the group before exec;
//! 1. restore default dispositions and clear the blocked mask PID 1 runs with, and the
//!    soft RLIMIT_NOFILE keel had before it raised its own (`control::raise_nofile`);
//! 2. setsid; open the tty (or /dev/null) as 0/1/2, TIOCSCTTY; dup2 the log pipe to 1/2;
//! 3. with `caps`: drop every other capability from the bounding set (PR_CAPBSET_DROP,
//!    while still root), and PR_SET_KEEPCAPS when a uid change follows;
//! 4. with `creds`: setgroups, setresgid, setresuid as raw system calls (libc's wrappers
//!    synchronize threads, which a forked child must not rely on);
//! 5. with `caps`: capset(effective = permitted = inheritable = kept), the kept set raised
//!    into the ambient set for a non-root user (so it survives exec), PR_SET_NO_NEW_PRIVS;
//! 6. the config's rlimits (soft = hard), umask, oom_score_adj back to 0 when keel set
//!    its own to -1000 (the child must be the OOM killer's fair game, not immune);
//! 7. chdir (a workdir that fails ends the child with 111) and execve.
//!
//! A step that fails ends the child with 111 before exec (fail closed: a service never
//! runs with more privilege than asked). If `exec` fails it exits 127 (not found) or 126
//! (cannot execute), as a shell does. The caller registers the returned pid before it next
//! reaps, so the exit cannot be missed. This module never waits for the child.

use crate::exit::Exit;
use crate::sys::caps;
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The RLIMIT_NOFILE children get (soft, hard), set once when keel raises its own; both 0
/// (never set): children inherit keel's.
static CHILD_NOFILE: (AtomicU64, AtomicU64) = (AtomicU64::new(0), AtomicU64::new(0));
/// Set once keel has made itself immune to the OOM killer: children reset theirs to 0.
static OOM_PROTECTED: AtomicBool = AtomicBool::new(false);

/// keel's own oom_score_adj to -1000, so the OOM killer never picks PID 1 (children are
/// set back to 0 before exec).
pub fn protect_from_oom() -> Result<(), Errno> {
    crate::sys::fs::write_existing("/proc/self/oom_score_adj", "-1000")?;
    OOM_PROTECTED.store(true, Ordering::Relaxed);
    Ok(())
}

/// Remembers the limit children get back (see `control::raise_nofile`).
pub fn set_child_nofile(soft: u64, hard: u64) {
    CHILD_NOFILE.0.store(soft, Ordering::Relaxed);
    CHILD_NOFILE.1.store(hard, Ordering::Relaxed);
}

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
    /// The write end of a log pipe: stdout and stderr go there instead (stdin stays).
    /// Must be close-on-exec in the parent; the child's copies on 1 and 2 are not.
    pub output: Option<RawFd>,
    /// Who the child runs as; `None` keeps keel's own ids (root).
    pub creds: Option<Creds>,
    /// The capabilities to keep, as a mask by number; `None` leaves them alone.
    pub caps: Option<u64>,
    /// A group's `cgroup.procs`, open for writing and close-on-exec: the child enters the
    /// group first thing (a failure ends it with 111: it never runs outside its group).
    pub cgroup: Option<RawFd>,
    /// setrlimit(resource, soft = hard = value) for each, after keel's own NOFILE reset.
    pub rlimits: Vec<(i32, u64)>,
    /// The umask before exec (`None`: keel's).
    pub umask: Option<u32>,
}

/// Numeric credentials, resolved from /etc/passwd and /etc/group before the fork.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (may be empty: then the child has none).
    pub groups: Vec<u32>,
}

impl SpawnSpec {
    /// A spec for `argv` with `env`, in `/`, with stdio on /dev/null and nothing else.
    pub fn new(argv: Vec<String>, env: Vec<String>) -> SpawnSpec {
        SpawnSpec {
            argv,
            env,
            cwd: "/".to_string(),
            setsid: true,
            tty: None,
            output: None,
            creds: None,
            caps: None,
            cgroup: None,
            rlimits: Vec::new(),
            umask: None,
        }
    }
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
    output: Option<RawFd>,
    /// (uid, gid) and the supplementary groups, when they change.
    ids: Option<(u32, u32)>,
    groups: Vec<libc::gid_t>,
    /// Capabilities to drop from the bounding set, and the kept mask for capset.
    bounding_drop: Vec<libc::c_int>,
    keep: Option<[u32; 2]>,
    /// Kept capability numbers to raise into the ambient set (non-root users only).
    ambient: Vec<libc::c_int>,
    /// RLIMIT_NOFILE to set (`rlim_max == 0`: leave keel's).
    nofile: libc::rlimit,
    cgroup: Option<RawFd>,
    rlimits: Vec<(i32, libc::rlimit)>,
    umask: Option<libc::mode_t>,
    /// /proc/self/oom_score_adj, when keel's own is -1000.
    oom_reset: Option<CString>,
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
    let (bounding_drop, keep, ambient) = match spec.caps {
        None => (Vec::new(), None, Vec::new()),
        Some(mask) => {
            let last = caps::last_cap();
            let drop = (0..=last).filter(|c| mask & (1u64 << c) == 0).collect();
            let non_root = spec.creds.as_ref().is_some_and(|c| c.uid != 0);
            let ambient = if non_root {
                (0..=last).filter(|c| mask & (1u64 << c) != 0).collect()
            } else {
                Vec::new()
            };
            (drop, Some(caps::split(mask)), ambient)
        }
    };
    Ok(Prepared {
        path: cstring(first)?,
        argv,
        env,
        argv_ptrs,
        env_ptrs,
        cwd: cstring(&spec.cwd)?,
        stdio: cstring(spec.tty.as_deref().unwrap_or("/dev/null"))?,
        output: spec.output,
        ids: spec.creds.as_ref().map(|c| (c.uid, c.gid)),
        groups: spec
            .creds
            .as_ref()
            .map(|c| c.groups.clone())
            .unwrap_or_default(),
        bounding_drop,
        keep,
        ambient,
        nofile: libc::rlimit {
            rlim_cur: CHILD_NOFILE.0.load(Ordering::Relaxed),
            rlim_max: CHILD_NOFILE.1.load(Ordering::Relaxed),
        },
        cgroup: spec.cgroup,
        rlimits: spec
            .rlimits
            .iter()
            .map(|&(r, v)| {
                let v = if v == u64::MAX {
                    libc::RLIM_INFINITY
                } else {
                    v
                };
                (
                    r,
                    libc::rlimit {
                        rlim_cur: v,
                        rlim_max: v,
                    },
                )
            })
            .collect(),
        umask: spec.umask,
        oom_reset: if OOM_PROTECTED.load(Ordering::Relaxed) {
            Some(cstring("/proc/self/oom_score_adj")?)
        } else {
            None
        },
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
        if let Some(fd) = p.cgroup
            && libc::write(fd, b"0".as_ptr().cast(), 1) != 1
        {
            libc::_exit(i32::from(Exit::Temporary.code()));
        }
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
        if p.nofile.rlim_max != 0 {
            // Best effort: a service with keel's raised limit still runs.
            libc::setrlimit(libc::RLIMIT_NOFILE, &p.nofile);
        }
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
        if let Some(out) = p.output {
            if libc::dup2(out, 1) < 0 || libc::dup2(out, 2) < 0 {
                libc::_exit(i32::from(Exit::Temporary.code()));
            }
        }
        if p.keep.is_some() {
            for &cap in &p.bounding_drop {
                // EINVAL: a capability this kernel does not know, nothing to drop.
                if libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) < 0
                    && *libc::__errno_location() != libc::EINVAL
                {
                    libc::_exit(i32::from(Exit::Temporary.code()));
                }
            }
            if p.ids.is_some_and(|(uid, _)| uid != 0)
                && libc::prctl(libc::PR_SET_KEEPCAPS, 1 as libc::c_ulong, 0, 0, 0) < 0
            {
                libc::_exit(i32::from(Exit::Temporary.code()));
            }
        }
        if let Some((uid, gid)) = p.ids {
            let failed = libc::syscall(libc::SYS_setgroups, p.groups.len(), p.groups.as_ptr()) < 0
                || libc::syscall(libc::SYS_setresgid, gid, gid, gid) < 0
                || libc::syscall(libc::SYS_setresuid, uid, uid, uid) < 0;
            if failed {
                libc::_exit(i32::from(Exit::Temporary.code()));
            }
        }
        if let Some(keep) = p.keep {
            let header = caps::Header {
                version: caps::VERSION_3,
                pid: 0,
            };
            let data = [
                caps::Data {
                    effective: keep[0],
                    permitted: keep[0],
                    inheritable: keep[0],
                },
                caps::Data {
                    effective: keep[1],
                    permitted: keep[1],
                    inheritable: keep[1],
                },
            ];
            if libc::syscall(libc::SYS_capset, &header, data.as_ptr()) < 0 {
                libc::_exit(i32::from(Exit::Temporary.code()));
            }
            for &cap in &p.ambient {
                let raise = libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong;
                if libc::prctl(libc::PR_CAP_AMBIENT, raise, cap as libc::c_ulong, 0, 0) < 0 {
                    libc::_exit(i32::from(Exit::Temporary.code()));
                }
            }
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) < 0 {
                libc::_exit(i32::from(Exit::Temporary.code()));
            }
        }
        for (resource, lim) in &p.rlimits {
            if libc::setrlimit(*resource as _, lim) < 0 {
                libc::_exit(i32::from(Exit::Temporary.code()));
            }
        }
        if let Some(mask) = p.umask {
            libc::umask(mask);
        }
        if let Some(path) = &p.oom_reset {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd >= 0 {
                libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
            }
        }
        if libc::chdir(p.cwd.as_ptr()) < 0 {
            libc::_exit(i32::from(Exit::Temporary.code()));
        }
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
            setsid: false,
            ..SpawnSpec::new(vec![], vec![])
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
    fn wait_for(pid: i32) -> Option<supervisor::WaitStatus> {
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
            ..SpawnSpec::new(vec![], vec![])
        };
        let pid = spawn(&spec).map_err(|e| e.to_string());
        assert!(pid.is_ok(), "{pid:?}");
        let ended = wait_for(pid.unwrap_or(0));
        assert_eq!(
            ended,
            Some(supervisor::WaitStatus::Exited(7)),
            "mask or dispositions leaked"
        );

        let missing = SpawnSpec {
            argv: vec!["/nonexistent/keel-test".into()],
            ..spec
        };
        let pid = spawn(&missing).unwrap_or(0);
        assert_eq!(wait_for(pid), Some(supervisor::WaitStatus::Exited(127)));
    }
}

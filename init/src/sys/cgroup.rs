//! cgroup v2: one group per service, so a stop reaches everything the service started.
//!
//! PID 1 mounts cgroup2 on /sys/fs/cgroup (unless it is there), moves itself into the leaf
//! `init` (a group with processes cannot hand controllers to children, except the root),
//! enables the memory, pids and cpu controllers for `keel/`, and each service runs in
//! `keel/<name>`. `keel supervise` uses the group it was started in: `<own>/keel-<pid>/`
//! holds its services (controllers only when the host lets it enable them).
//!
//! The child enters its group itself, before exec: it writes `0` to the group's
//! `cgroup.procs` (an fd opened here, in the parent), so nothing it forks can escape.
//! Emptiness is `populated 0` in `cgroup.events`, which poll reports as POLLPRI; the file
//! must be re-read through the same open file for the next change to be reported.
//!
//! Must not decide anything: the callers (init/src/groups.rs) say what to create, signal
//! and read, and what an error means.

use nix::errno::Errno;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Where PID 1 mounts the hierarchy.
pub const MOUNT_POINT: &str = "/sys/fs/cgroup";
/// The controllers keel enables for its services.
pub const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

fn io_errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

/// The directory under which service groups live, and what it can do.
#[derive(Debug, Clone)]
pub struct Tree {
    /// `…/keel` (PID 1) or `…/keel-<pid>` (supervise).
    pub dir: PathBuf,
    /// The controllers enabled for the services (memory, pids, cpu), as the kernel lists
    /// them in the tree's `cgroup.subtree_control`.
    pub controllers: Vec<String>,
    /// Whether keel made `dir` (and removes it when `keel supervise` ends).
    pub owned: bool,
}

/// True when `path` is the root of a cgroup2 mount (statfs magic).
pub fn is_cgroup2(path: &str) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

fn write_file(path: &Path, text: &str) -> Result<(), Errno> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_errno(&e))?;
    f.write_all(text.as_bytes()).map_err(|e| io_errno(&e))
}

fn read_file(path: &Path) -> Result<String, Errno> {
    std::fs::read_to_string(path).map_err(|e| io_errno(&e))
}

fn mkdir(path: &Path) -> Result<(), Errno> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_errno(&e)),
    }
}

/// Enables what it can of [`CONTROLLERS`] in `dir`'s subtree_control (one write each, so
/// a controller the kernel lacks does not stop the others); returns what is enabled.
fn enable_controllers(dir: &Path) -> Vec<String> {
    let available = read_file(&dir.join("cgroup.controllers")).unwrap_or_default();
    for c in CONTROLLERS {
        if available.split_whitespace().any(|a| a == c) {
            let _ = write_file(&dir.join("cgroup.subtree_control"), &format!("+{c}"));
        }
    }
    read_file(&dir.join("cgroup.subtree_control"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// PID 1: mounts cgroup2 on [`MOUNT_POINT`] if needed, moves keel into `init`, and
/// prepares `keel/` with the controllers.
pub fn setup_pid1() -> Result<Tree, String> {
    if !is_cgroup2(MOUNT_POINT) {
        crate::sys::fs::mkdir(MOUNT_POINT, 0o755)
            .map_err(|e| format!("cannot create {MOUNT_POINT}: {e}"))?;
        nix::mount::mount(
            Some("cgroup2"),
            MOUNT_POINT,
            Some("cgroup2"),
            nix::mount::MsFlags::MS_NOSUID
                | nix::mount::MsFlags::MS_NODEV
                | nix::mount::MsFlags::MS_NOEXEC,
            Some("nsdelegate"),
        )
        .map_err(|e| {
            format!("cannot mount cgroup2 on {MOUNT_POINT}: {e} (the kernel needs CONFIG_CGROUPS)")
        })?;
    }
    let root = Path::new(MOUNT_POINT);
    let init = root.join("init");
    mkdir(&init).map_err(|e| format!("cannot create {}: {e}", init.display()))?;
    write_file(&init.join("cgroup.procs"), "0")
        .map_err(|e| format!("cannot move keel into {}: {e}", init.display()))?;
    enable_controllers(root);
    let dir = root.join("keel");
    mkdir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let controllers = enable_controllers(&dir);
    Ok(Tree {
        dir,
        controllers,
        owned: false,
    })
}

/// `keel supervise`: the cgroup2 mount and keel's own group in it, from
/// /proc/self/mountinfo and /proc/self/cgroup; services go in `<own>/keel-<pid>/`.
pub fn setup_supervise() -> Result<Tree, String> {
    let info = read_file(Path::new("/proc/self/mountinfo"))
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let mount = cgroup2_mount(&info).ok_or("no cgroup2 file system is mounted")?;
    let own = read_file(Path::new("/proc/self/cgroup"))
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let path = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("/proc/self/cgroup has no cgroup2 entry")?;
    let base = Path::new(&mount).join(path.trim_start_matches('/'));
    let dir = base.join(format!("keel-{}", std::process::id()));
    mkdir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let controllers = enable_controllers(&dir);
    Ok(Tree {
        dir,
        controllers,
        owned: true,
    })
}

/// The mount point of the first cgroup2 file system in a mountinfo text.
pub fn cgroup2_mount(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if post.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        pre.split_whitespace()
            .nth(4)
            .map(|p| p.replace("\\040", " "))
    })
}

/// A service name as a group directory name: letters, digits, `-`, `_` and `@` stay;
/// anything else, `.` included (every interface file has one, so no name can collide
/// with them), becomes `%XX`.
pub fn dir_name(service: &str) -> String {
    let mut out = String::with_capacity(service.len());
    for b in service.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One service's group.
#[derive(Debug)]
pub struct Group {
    pub dir: PathBuf,
    /// `cgroup.events`, kept open: poll it for POLLPRI, re-read it for `populated`.
    events: File,
}

/// The group that processes released from their service's group move to
/// (`leftovers = "release"`). Its name has a `.`, which [`dir_name`] never leaves in a
/// service's, so no service can have it.
pub const RELEASED: &str = "released.scope";

impl Group {
    /// Creates (or reuses) the group of `service` under `tree`.
    pub fn create(tree: &Tree, service: &str) -> Result<Group, Errno> {
        Group::create_dir(tree.dir.join(dir_name(service)))
    }

    /// Creates (or reuses) [`RELEASED`] under `tree`.
    pub fn released(tree: &Tree) -> Result<Group, Errno> {
        Group::create_dir(tree.dir.join(RELEASED))
    }

    fn create_dir(dir: PathBuf) -> Result<Group, Errno> {
        mkdir(&dir)?;
        let events = File::open(dir.join("cgroup.events")).map_err(|e| io_errno(&e))?;
        Ok(Group { dir, events })
    }

    /// `cgroup.procs` opened for writing, close-on-exec: the child writes `0` to it
    /// before exec to enter the group.
    pub fn procs_fd(&self) -> Result<OwnedFd, Errno> {
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(self.dir.join("cgroup.procs"))
            .map(OwnedFd::from)
            .map_err(|e| io_errno(&e))
    }

    /// The fd to poll for POLLPRI (a change of `cgroup.events`).
    pub fn events_fd(&self) -> BorrowedFd<'_> {
        self.events.as_fd()
    }

    /// Whether any process is left in the group (re-reads `cgroup.events`, which also
    /// re-arms its notification).
    pub fn populated(&mut self) -> Result<bool, Errno> {
        let mut text = String::new();
        self.events
            .seek(SeekFrom::Start(0))
            .map_err(|e| io_errno(&e))?;
        self.events
            .read_to_string(&mut text)
            .map_err(|e| io_errno(&e))?;
        Ok(key_value(&text, "populated") != Some(0))
    }

    /// The pids in the group now.
    pub fn pids(&self) -> Vec<i32> {
        read_file(&self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Sends `signo` to every process in the group (a fork racing this is caught by the
    /// `cgroup.kill` that follows after stop_timeout). Returns how many were signalled.
    pub fn signal(&self, signo: u8) -> usize {
        self.pids()
            .into_iter()
            .filter(|p| crate::sys::kill(*p, signo).is_ok())
            .count()
    }

    /// SIGKILL to the whole group at once, forks included (`cgroup.kill`, Linux 5.14);
    /// on an older kernel, SIGKILL to each process.
    pub fn kill(&self) -> Result<(), Errno> {
        match write_file(&self.dir.join("cgroup.kill"), "1") {
            Err(Errno::ENOENT) => {
                self.signal(libc::SIGKILL as u8);
                Ok(())
            }
            r => r,
        }
    }

    /// Writes an interface file of the group (`memory.max`, `pids.max`, …).
    pub fn set(&self, file: &str, value: &str) -> Result<(), Errno> {
        write_file(&self.dir.join(file), value)
    }

    /// A number from a one-value file (`memory.current`); `max` and errors are None.
    pub fn read_u64(&self, file: &str) -> Option<u64> {
        read_file(&self.dir.join(file)).ok()?.trim().parse().ok()
    }

    /// A `key value` line of a flat-keyed file (`memory.events` `oom_kill`).
    pub fn read_key(&self, file: &str, key: &str) -> Option<u64> {
        key_value(&read_file(&self.dir.join(file)).ok()?, key)
    }

    /// Moves every process of this group into `to`, again while forks keep adding some,
    /// up to `rounds` times; returns the pids moved. A process that exits meanwhile is not
    /// an error.
    pub fn move_procs(&self, to: &Group, rounds: usize) -> Result<Vec<i32>, Errno> {
        let target = to.dir.join("cgroup.procs");
        let mut moved = Vec::new();
        for _ in 0..rounds {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for p in pids {
                match write_file(&target, &p.to_string()) {
                    Ok(()) => moved.push(p),
                    Err(Errno::ESRCH) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(moved)
    }

    /// Removes the (empty) group directory.
    pub fn remove(&self) -> Result<(), Errno> {
        std::fs::remove_dir(&self.dir).map_err(|e| io_errno(&e))
    }
}

/// The value of `key` in a flat-keyed cgroup file (`populated 1`, `oom_kill 3`).
pub fn key_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

/// Removes a tree keel made (supervise mode), once its groups are removed.
pub fn remove_tree(tree: &Tree) {
    if tree.owned {
        let _ = std::fs::remove_dir(&tree.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_or_collide_with_interface_files() {
        assert_eq!(dir_name("getty@ttyS0"), "getty@ttyS0");
        assert_eq!(dir_name("memory.max"), "memory%2Emax");
        assert_eq!(dir_name("../x"), "%2E%2E%2Fx");
        assert_eq!(dir_name("a b"), "a%20b");
    }

    #[test]
    fn flat_keyed_files_and_mountinfo_are_read() {
        assert_eq!(key_value("populated 0\nfrozen 0\n", "populated"), Some(0));
        assert_eq!(key_value("low 0\noom 2\noom_kill 3\n", "oom_kill"), Some(3));
        assert_eq!(key_value("low 0\n", "oom_kill"), None);
        let info = "25 1 0:22 / /sys rw - sysfs sysfs rw\n\
                    33 25 0:29 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(info).as_deref(),
            Some("/sys/fs/cgroup/unified")
        );
        assert_eq!(
            cgroup2_mount("25 1 0:22 / /sys rw - sysfs sysfs rw\n"),
            None
        );
    }
}

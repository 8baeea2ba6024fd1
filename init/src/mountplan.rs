//! The mount plan: which filesystems PID 1 mounts at boot, as pure data.
//!
//! `plan(mountinfo)` returns the steps in order; a target already listed in
//! `/proc/self/mountinfo` is left alone (so keel also works when the kernel mounted
//! devtmpfs itself, or when it runs a second time). When devtmpfs cannot be mounted, the
//! executor runs `dev_fallback()` instead: a tmpfs on /dev with the device nodes a boot
//! needs made by mknod. This module only describes; `boot.rs` carries the steps out
//! through the `Sys` trait. It must not touch the filesystem.
#![forbid(unsafe_code)]

/// Mount flags, as the kernel's MS_* bits.
pub type Flags = u64;
pub const NOSUID: Flags = libc::MS_NOSUID as Flags;
pub const NODEV: Flags = libc::MS_NODEV as Flags;
pub const NOEXEC: Flags = libc::MS_NOEXEC as Flags;
pub const REMOUNT: Flags = libc::MS_REMOUNT as Flags;

/// One mount(2) call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mount {
    pub source: &'static str,
    pub target: &'static str,
    pub fstype: &'static str,
    pub flags: Flags,
    /// Filesystem options (the `data` argument), empty for none.
    pub data: &'static str,
}

/// What to do when a mount fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFail {
    /// Log it and go on: the system works without it, less well.
    Warn,
    /// Run `dev_fallback()` (only for /dev).
    DevFallback,
    /// The boot cannot go on (the emergency shell follows).
    Fatal,
}

/// A character device node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub path: &'static str,
    pub major: u64,
    pub minor: u64,
    /// Permission bits, applied exactly (not through the umask).
    pub mode: u32,
}

/// One step of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Create a directory if it is missing (mode applied exactly); failure is logged only.
    Mkdir { path: &'static str, mode: u32 },
    /// Mount, after making sure the target directory exists.
    Mount { mount: Mount, on_fail: OnFail },
    /// Make a character device node unless the path exists.
    Mknod(Node),
    /// Make a symlink at `link` pointing to `target` unless `link` exists.
    Symlink {
        target: &'static str,
        link: &'static str,
    },
}

/// The base filesystems, in mount order. The tmpfs sizes are the defaults of
/// `[system]` run_size, tmp_size and shm_size; the boot remounts one the config sizes
/// otherwise (the config is read only after /proc is up).
pub const BASE: [(Mount, OnFail); 7] = [
    (
        Mount {
            source: "proc",
            target: "/proc",
            fstype: "proc",
            flags: NOSUID | NODEV | NOEXEC,
            data: "",
        },
        OnFail::Fatal,
    ),
    (
        Mount {
            source: "sysfs",
            target: "/sys",
            fstype: "sysfs",
            flags: NOSUID | NODEV | NOEXEC,
            data: "",
        },
        OnFail::Warn,
    ),
    (
        Mount {
            source: "devtmpfs",
            target: "/dev",
            fstype: "devtmpfs",
            flags: NOSUID,
            data: "mode=0755",
        },
        OnFail::DevFallback,
    ),
    (
        Mount {
            source: "devpts",
            target: "/dev/pts",
            fstype: "devpts",
            flags: NOSUID | NOEXEC,
            data: "gid=5,mode=0620,ptmxmode=0666",
        },
        OnFail::Warn,
    ),
    (
        Mount {
            source: "shm",
            target: "/dev/shm",
            fstype: "tmpfs",
            flags: NOSUID | NODEV,
            data: "mode=1777,size=25%",
        },
        OnFail::Warn,
    ),
    (
        Mount {
            source: "run",
            target: "/run",
            fstype: "tmpfs",
            flags: NOSUID | NODEV,
            data: "mode=0755,size=10%",
        },
        OnFail::Warn,
    ),
    (
        Mount {
            source: "tmp",
            target: "/tmp",
            fstype: "tmpfs",
            flags: NOSUID | NODEV,
            data: "mode=1777,size=25%",
        },
        OnFail::Warn,
    ),
];

/// Nodes made on the fallback tmpfs /dev (and only there).
pub const FALLBACK_NODES: [Node; 9] = [
    Node {
        path: "/dev/console",
        major: 5,
        minor: 1,
        mode: 0o600,
    },
    Node {
        path: "/dev/null",
        major: 1,
        minor: 3,
        mode: 0o666,
    },
    Node {
        path: "/dev/zero",
        major: 1,
        minor: 5,
        mode: 0o666,
    },
    Node {
        path: "/dev/full",
        major: 1,
        minor: 7,
        mode: 0o666,
    },
    Node {
        path: "/dev/random",
        major: 1,
        minor: 8,
        mode: 0o666,
    },
    Node {
        path: "/dev/urandom",
        major: 1,
        minor: 9,
        mode: 0o666,
    },
    Node {
        path: "/dev/kmsg",
        major: 1,
        minor: 11,
        mode: 0o644,
    },
    Node {
        path: "/dev/tty",
        major: 5,
        minor: 0,
        mode: 0o666,
    },
    Node {
        path: "/dev/ptmx",
        major: 5,
        minor: 2,
        mode: 0o666,
    },
];

/// The mount targets listed in `/proc/self/mountinfo` (field 5), with the kernel's octal
/// escapes (`\040` for a space) undone.
pub fn mounted_targets(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The boot's mount steps, given the text of `/proc/self/mountinfo` (empty when /proc is
/// not mounted yet, which is the normal case for PID 1).
pub fn plan(mountinfo: &str) -> Vec<Step> {
    let mounted = mounted_targets(mountinfo);
    let mut steps = Vec::new();
    for (mount, on_fail) in BASE {
        if mounted.iter().any(|t| t == mount.target) {
            continue;
        }
        steps.push(Step::Mount { mount, on_fail });
    }
    // With devpts mounted, /dev/ptmx must reach its multiplexer. devtmpfs has a ptmx node
    // that does; a tmpfs /dev without one gets the symlink (the step is skipped when the
    // path exists).
    steps.push(Step::Symlink {
        target: "pts/ptmx",
        link: "/dev/ptmx",
    });
    steps.push(Step::Symlink {
        target: "/proc/self/fd",
        link: "/dev/fd",
    });
    steps
}

/// What replaces devtmpfs when it cannot be mounted: a tmpfs and the basic nodes.
pub fn dev_fallback() -> Vec<Step> {
    let mut steps = vec![Step::Mount {
        mount: Mount {
            source: "dev",
            target: "/dev",
            fstype: "tmpfs",
            flags: NOSUID,
            data: "mode=0755",
        },
        on_fail: OnFail::Fatal,
    }];
    steps.extend(FALLBACK_NODES.iter().copied().map(Step::Mknod));
    steps
}

/// The tmpfs mounts the config can size: (target, its `[system]` field).
pub const SIZED: [(&str, &str); 3] = [
    ("/run", "run_size"),
    ("/tmp", "tmp_size"),
    ("/dev/shm", "shm_size"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tmpfs_sizes_mounted_are_the_config_defaults() {
        use appliance::defaults;
        for (target, size) in [
            ("/run", defaults::RUN_SIZE),
            ("/tmp", defaults::TMP_SIZE),
            ("/dev/shm", defaults::SHM_SIZE),
        ] {
            let (m, _) = BASE
                .iter()
                .find(|(m, _)| m.target == target)
                .unwrap_or_else(|| panic!("no {target} in BASE"));
            assert!(
                m.data.ends_with(&format!(",size={size}")),
                "{target}: {}",
                m.data
            );
        }
    }

    fn targets(steps: &[Step]) -> Vec<&'static str> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Mount { mount, .. } => Some(mount.target),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn fresh_boot_mounts_everything_in_order() {
        let steps = plan("");
        assert_eq!(
            targets(&steps),
            [
                "/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/run", "/tmp"
            ]
        );
        let Step::Mount { mount, on_fail } = steps[2] else {
            panic!("third step is not a mount")
        };
        assert_eq!(mount.fstype, "devtmpfs");
        assert_eq!(on_fail, OnFail::DevFallback);
    }

    #[test]
    fn already_mounted_targets_are_left_alone() {
        let mountinfo = "\
22 1 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs devtmpfs rw,size=10k,mode=755
23 22 0:20 / /dev/pts rw,nosuid,noexec - devpts devpts rw,gid=5,mode=620
";
        let steps = plan(mountinfo);
        assert_eq!(
            targets(&steps),
            ["/proc", "/sys", "/dev/shm", "/run", "/tmp"]
        );
    }

    #[test]
    fn tmp_is_sticky_and_run_is_private() {
        let steps = plan("");
        let find = |t: &str| {
            steps.iter().find_map(|s| match s {
                Step::Mount { mount, .. } if mount.target == t => Some(*mount),
                _ => None,
            })
        };
        let mode = |t: &str| find(t).and_then(|m| m.data.split(',').next());
        assert_eq!(mode("/tmp"), Some("mode=1777"));
        assert_eq!(mode("/run"), Some("mode=0755"));
        assert_eq!(mode("/dev/shm"), Some("mode=1777"));
    }

    #[test]
    fn fallback_is_a_tmpfs_with_the_basic_nodes() {
        let steps = dev_fallback();
        let Step::Mount { mount, on_fail } = steps[0] else {
            panic!("first step is not a mount")
        };
        assert_eq!(
            (mount.target, mount.fstype, on_fail),
            ("/dev", "tmpfs", OnFail::Fatal)
        );
        let nodes: Vec<_> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Mknod(n) => Some((n.path, n.major, n.minor)),
                _ => None,
            })
            .collect();
        for want in [
            ("/dev/console", 5, 1),
            ("/dev/null", 1, 3),
            ("/dev/zero", 1, 5),
            ("/dev/random", 1, 8),
            ("/dev/urandom", 1, 9),
            ("/dev/tty", 5, 0),
            ("/dev/ptmx", 5, 2),
        ] {
            assert!(nodes.contains(&want), "missing {want:?} in {nodes:?}");
        }
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        let mi = "40 1 0:33 / /mnt/my\\040disk rw - tmpfs tmpfs rw\n";
        assert_eq!(mounted_targets(mi), ["/mnt/my disk"]);
        assert_eq!(mounted_targets("garbage\n"), Vec::<String>::new());
    }
}

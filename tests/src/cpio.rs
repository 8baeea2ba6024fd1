//! A tiny newc cpio writer for overlay initrds: the files a test adds to the guest.
//!
//! The kernel unpacks every archive concatenated in the initrd and later entries win, so a
//! test gives the guest a broken `/etc/keel/appliance.toml` by appending a small archive
//! after the image's. This writer is for tests only: the image itself is written by
//! `cargo xtask image`, reproducibly; this one must not be used to build shipped artefacts.

use std::collections::BTreeMap;

/// What an overlay entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file with its contents.
    File(Vec<u8>),
    /// A directory.
    Dir,
    /// A symbolic link to the given target.
    Symlink(String),
    /// A character device with major and minor numbers.
    CharDev(u32, u32),
}

/// One entry: the node and its permission bits (without the file type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub node: Node,
    pub perm: u32,
}

impl Entry {
    /// The full st_mode: file type bits plus permissions.
    fn mode(&self) -> u32 {
        let kind = match self.node {
            Node::File(_) => 0o100_000,
            Node::Dir => 0o040_000,
            Node::Symlink(_) => 0o120_000,
            Node::CharDev(..) => 0o020_000,
        };
        kind | (self.perm & 0o7777)
    }
}

/// A set of entries keyed by guest path, written in sorted order so parents come first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Archive {
    entries: BTreeMap<String, Entry>,
}

/// The guest path without leading or trailing slashes, as cpio names are relative to `/`.
fn clean(path: &str) -> String {
    path.trim_matches('/').to_string()
}

impl Archive {
    pub fn new() -> Self {
        Self::default()
    }

    /// Is the archive empty?
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds (or replaces) `path` with `node` and `perm`; missing parents become 0755 dirs.
    pub fn add(&mut self, path: &str, node: Node, perm: u32) {
        let name = clean(path);
        let mut parent = name.as_str();
        while let Some((up, _)) = parent.rsplit_once('/') {
            self.entries.entry(up.to_string()).or_insert(Entry {
                node: Node::Dir,
                perm: 0o755,
            });
            parent = up;
        }
        if !name.is_empty() {
            self.entries.insert(name, Entry { node, perm });
        }
    }

    /// The guest paths in archive order.
    pub fn paths(&self) -> Vec<&str> {
        self.entries.keys().map(String::as_str).collect()
    }

    /// The archive in newc format, ending with the `TRAILER!!!` record.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (ino, (name, entry)) in (1u32..).zip(&self.entries) {
            let data: &[u8] = match &entry.node {
                Node::File(d) => d,
                Node::Symlink(target) => target.as_bytes(),
                Node::Dir | Node::CharDev(..) => &[],
            };
            let (rmaj, rmin) = match entry.node {
                Node::CharDev(maj, min) => (maj, min),
                _ => (0, 0),
            };
            let nlink = if entry.node == Node::Dir { 2 } else { 1 };
            write_record(&mut out, ino, entry.mode(), nlink, (rmaj, rmin), name, data);
        }
        write_record(&mut out, 0, 0, 1, (0, 0), "TRAILER!!!", &[]);
        out
    }
}

/// Appends one newc record: header, NUL-terminated name and data, each padded to 4 bytes.
fn write_record(
    out: &mut Vec<u8>,
    ino: u32,
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
    name: &str,
    data: &[u8],
) {
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        nlink,
        0, // mtime
        u32::try_from(data.len()).unwrap_or(u32::MAX),
        0, // devmajor
        0, // devminor
        rdev.0,
        rdev.1,
        u32::try_from(name.len() + 1).unwrap_or(u32::MAX),
        0, // check
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

/// Pads `out` with NUL bytes to a multiple of 4.
pub fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the names, modes and data back from a newc archive (the format, not our writer).
    fn read_back(bytes: &[u8]) -> Vec<(String, u32, Vec<u8>, u32)> {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let header = &bytes[pos..pos + 110];
            assert_eq!(&header[..6], b"070701", "bad magic at {pos}");
            let field = |i: usize| {
                let s = std::str::from_utf8(&header[6 + i * 8..14 + i * 8]).unwrap();
                u32::from_str_radix(s, 16).unwrap()
            };
            let (mode, size, rmin) = (field(1), field(6) as usize, field(10));
            let namesize = field(11) as usize;
            let name_start = pos + 110;
            let name =
                String::from_utf8(bytes[name_start..name_start + namesize - 1].to_vec()).unwrap();
            assert_eq!(
                bytes[name_start + namesize - 1],
                0,
                "name of {name} not NUL-terminated"
            );
            let data_start = (name_start + namesize).next_multiple_of(4);
            let data = bytes[data_start..data_start + size].to_vec();
            pos = (data_start + size).next_multiple_of(4);
            if name == "TRAILER!!!" {
                assert_eq!(pos, bytes.len(), "bytes after the trailer");
                return out;
            }
            out.push((name, mode, data, rmin));
        }
    }

    #[test]
    fn parents_come_first_and_are_directories() {
        let mut a = Archive::new();
        a.add("/etc/keel/appliance.toml", Node::File(b"x".to_vec()), 0o644);
        a.add("/bin/busybox", Node::File(vec![1, 2, 3]), 0o755);
        assert_eq!(
            a.paths(),
            [
                "bin",
                "bin/busybox",
                "etc",
                "etc/keel",
                "etc/keel/appliance.toml"
            ]
        );
        let back = read_back(&a.to_bytes());
        assert_eq!(back[0].0, "bin");
        assert_eq!(back[0].1, 0o040_755);
        assert_eq!(
            back[4],
            (
                "etc/keel/appliance.toml".into(),
                0o100_644,
                b"x".to_vec(),
                0
            )
        );
    }

    #[test]
    fn symlinks_devices_and_odd_sizes_round_trip() {
        let mut a = Archive::new();
        a.add("/dev/console", Node::CharDev(5, 1), 0o600);
        a.add("/bin/sh", Node::Symlink("busybox".into()), 0o777);
        a.add("/a", Node::File(b"12345".to_vec()), 0o600);
        let bytes = a.to_bytes();
        assert_eq!(bytes.len() % 4, 0);
        let back = read_back(&bytes);
        let names: Vec<_> = back.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["a", "bin", "bin/sh", "dev", "dev/console"]);
        assert_eq!(back[0].2, b"12345");
        assert_eq!(back[2].1, 0o120_777);
        assert_eq!(back[2].2, b"busybox");
        assert_eq!(back[4].1, 0o020_600);
        assert_eq!(back[4].3, 1, "rdev minor of /dev/console");
    }

    #[test]
    fn later_add_replaces_and_keeps_explicit_dir_modes() {
        let mut a = Archive::new();
        a.add("/root/.ssh", Node::Dir, 0o700);
        a.add(
            "/root/.ssh/authorized_keys",
            Node::File(b"old".to_vec()),
            0o600,
        );
        a.add(
            "/root/.ssh/authorized_keys",
            Node::File(b"new".to_vec()),
            0o600,
        );
        let back = read_back(&a.to_bytes());
        assert_eq!(back.len(), 3);
        assert_eq!(back[1].1, 0o040_700, "explicit mode of /root/.ssh kept");
        assert_eq!(back[2].2, b"new");
    }

    /// GNU cpio, when installed, must list what we wrote.
    #[test]
    fn gnu_cpio_reads_it() {
        #![allow(clippy::disallowed_methods)]
        use std::io::Write;
        use std::process::{Command, Stdio};
        if !std::path::Path::new("/usr/bin/cpio").exists() {
            eprintln!(
                "skipping gnu_cpio_reads_it: /usr/bin/cpio is not installed (apt-get install cpio)"
            );
            return;
        }
        let mut a = Archive::new();
        a.add("/init", Node::File(b"#!/bin/sh\n".to_vec()), 0o755);
        a.add("/dev/null", Node::CharDev(1, 3), 0o666);
        a.add("/bin/sh", Node::Symlink("busybox".into()), 0o777);
        let mut child = Command::new("cpio")
            .args(["-t", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&a.to_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let listed = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            listed.lines().collect::<Vec<_>>(),
            ["bin", "bin/sh", "dev", "dev/null", "init"]
        );
    }
}

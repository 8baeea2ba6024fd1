//! A reproducible newc ("070701") cpio writer: the format the kernel unpacks into the
//! initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! The writer numbers inodes itself, writes uid/gid 0, one mtime for every entry and
//! nlink 1 for files (the kernel treats nlink >= 2 with equal inodes as hard links). It
//! does not sort: the caller hands entries in order, parents before children. It never
//! reads the host filesystem.

use anyhow::{Result, bail};
use std::io::Write;

/// File type bits of `st_mode`.
pub(crate) const S_IFDIR: u32 = 0o040_000;
pub(crate) const S_IFREG: u32 = 0o100_000;
pub(crate) const S_IFLNK: u32 = 0o120_000;
pub(crate) const S_IFCHR: u32 = 0o020_000;

/// What one archive entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    CharDev { major: u32, minor: u32 },
}

impl Kind {
    /// The `st_mode` file type bits.
    pub(crate) fn type_bits(&self) -> u32 {
        match self {
            Kind::Dir => S_IFDIR,
            Kind::File(_) => S_IFREG,
            Kind::Symlink(_) => S_IFLNK,
            Kind::CharDev { .. } => S_IFCHR,
        }
    }

    /// The bytes stored after the header: file contents or the link target.
    pub(crate) fn data(&self) -> &[u8] {
        match self {
            Kind::File(data) => data,
            Kind::Symlink(target) => target.as_bytes(),
            Kind::Dir | Kind::CharDev { .. } => &[],
        }
    }
}

/// Writes entries to `out` in newc format.
pub(crate) struct Writer<W: Write> {
    out: W,
    mtime: u32,
    next_ino: u32,
    offset: u64,
}

impl<W: Write> Writer<W> {
    /// A writer that stamps every entry with `mtime` (seconds since the epoch).
    pub(crate) fn new(out: W, mtime: u32) -> Self {
        Writer {
            out,
            mtime,
            next_ino: 1,
            offset: 0,
        }
    }

    /// Writes one entry. `path` is relative (no leading `/`); `perm` holds the
    /// permission bits (including setuid, setgid and sticky).
    pub(crate) fn entry(&mut self, path: &str, perm: u32, kind: &Kind) -> Result<()> {
        if path.is_empty() || path.starts_with('/') || path.contains('\0') {
            bail!("cpio: bad entry name {path:?}: names are relative and not empty");
        }
        if perm & !0o7777 != 0 {
            bail!("cpio: {path}: permission bits {perm:o} carry more than 0o7777");
        }
        let (rmaj, rmin) = match kind {
            Kind::CharDev { major, minor } => (*major, *minor),
            _ => (0, 0),
        };
        let nlink = if matches!(kind, Kind::Dir) { 2 } else { 1 };
        let ino = self.next_ino;
        self.next_ino += 1;
        self.record(
            path,
            ino,
            kind.type_bits() | perm,
            nlink,
            rmaj,
            rmin,
            kind.data(),
        )
    }

    /// Writes the `TRAILER!!!` record and returns the inner writer.
    pub(crate) fn finish(mut self) -> Result<W> {
        self.record("TRAILER!!!", 0, 0, 1, 0, 0, &[])?;
        self.out.flush()?;
        Ok(self.out)
    }

    #[allow(clippy::too_many_arguments)] // The header's own fields, in order.
    fn record(
        &mut self,
        name: &str,
        ino: u32,
        mode: u32,
        nlink: u32,
        rmaj: u32,
        rmin: u32,
        data: &[u8],
    ) -> Result<()> {
        let Ok(size) = u32::try_from(data.len()) else {
            bail!(
                "cpio: {name}: {} bytes do not fit newc's 32-bit size",
                data.len()
            );
        };
        let namesize = name.len() + 1;
        let fields = [
            ino,
            mode,
            0,
            0,
            nlink,
            self.mtime,
            size,
            0,
            0,
            rmaj,
            rmin,
            namesize as u32,
            0,
        ];
        let mut header = String::with_capacity(110);
        header.push_str("070701");
        for f in fields {
            header.push_str(&format!("{f:08X}"));
        }
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Pads to the next multiple of 4 bytes.
    fn pad(&mut self) -> Result<()> {
        let n = ((4 - self.offset % 4) % 4) as usize;
        self.put(&[0u8; 3][..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn archive() -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), 1_700_000_000);
        let entries: [(&str, u32, Kind); 6] = [
            ("bin", 0o755, Kind::Dir),
            ("bin/hello", 0o755, Kind::File(b"hello, cpio\n".to_vec())),
            ("bin/sh", 0o777, Kind::Symlink("hello".into())),
            ("dev", 0o755, Kind::Dir),
            ("dev/console", 0o600, Kind::CharDev { major: 5, minor: 1 }),
            ("tmp", 0o1777, Kind::Dir),
        ];
        for (path, perm, kind) in &entries {
            w.entry(path, *perm, kind).expect("entry");
        }
        w.finish().expect("finish")
    }

    fn gnu_cpio(args: &[&str], input: &[u8]) -> Option<String> {
        let dir = std::env::temp_dir().join(format!("keel-cpio-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let file = dir.join(format!("a-{}.cpio", args.join("_").replace('/', "_")));
        std::fs::write(&file, input).ok()?;
        let out = Command::new("cpio")
            .args(args)
            .stdin(std::fs::File::open(&file).ok()?)
            .current_dir(&dir)
            .output();
        let _ = std::fs::remove_dir_all(&dir);
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                eprintln!("skipped: GNU cpio not runnable ({e}); apt-get install cpio");
                return None;
            }
        };
        assert!(
            out.status.success(),
            "cpio {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    #[test]
    fn layout_is_padded_and_ends_with_the_trailer() {
        let a = archive();
        assert_eq!(a.len() % 4, 0);
        assert!(a.starts_with(b"070701"));
        // First header: inode 1, a directory 0755, uid/gid 0, nlink 2, the fixed mtime.
        let h = std::str::from_utf8(&a[..110]).expect("ascii header");
        assert_eq!(&h[6..14], "00000001");
        assert_eq!(&h[14..22], "000041ED");
        assert_eq!(&h[22..38], "0000000000000000");
        assert_eq!(&h[38..46], "00000002");
        assert_eq!(&h[46..54], format!("{:08X}", 1_700_000_000));
        let tail = String::from_utf8_lossy(&a[a.len() - 128..]).into_owned();
        assert!(tail.contains("TRAILER!!!"));
    }

    #[test]
    fn gnu_cpio_reads_back_dir_file_symlink_and_device() {
        let a = archive();
        let Some(list) = gnu_cpio(&["-itv", "--quiet"], &a) else {
            return;
        };
        let lines: Vec<&str> = list.lines().collect();
        assert_eq!(lines.len(), 6, "{list}");
        let expect = [
            ("drwxr-xr-x", "bin"),
            ("-rwxr-xr-x", "bin/hello"),
            ("lrwxrwxrwx", "bin/sh -> hello"),
            ("drwxr-xr-x", "dev"),
            ("crw-------", "dev/console"),
            ("drwxrwxrwt", "tmp"),
        ];
        for (line, (mode, name)) in lines.iter().zip(expect) {
            assert!(line.starts_with(mode), "{line:?} should start with {mode}");
            assert!(line.ends_with(name), "{line:?} should end with {name}");
            assert!(line.contains(" root "), "{line:?} should be owned by root");
        }
        assert!(
            lines[4].contains("5,   1"),
            "device numbers in {:?}",
            lines[4]
        );
        let Some(data) = gnu_cpio(&["-i", "--quiet", "--to-stdout", "bin/hello"], &a) else {
            return;
        };
        assert_eq!(data, "hello, cpio\n");
    }

    #[test]
    fn bad_names_and_modes_are_refused() {
        let mut w = Writer::new(Vec::new(), 0);
        assert!(w.entry("/abs", 0o644, &Kind::Dir).is_err());
        assert!(w.entry("", 0o644, &Kind::Dir).is_err());
        assert!(w.entry("x", 0o100_644, &Kind::Dir).is_err());
    }
}

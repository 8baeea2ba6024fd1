//! The newc ("070701") cpio format, the one the kernel unpacks into the initramfs
//! (Documentation/driver-api/early-userspace/buffer-format.rst): one writer, one reader and
//! one filter, shared by `cargo xtask` (the image, the bench, the kernel's embedded cpio) and
//! keel-tests (overlay initrds). Pure: it writes to any `io::Write` and reads from a byte
//! slice; it never touches the host filesystem.
//!
//! The writer numbers inodes itself, writes uid/gid 0, one mtime for every entry and nlink 1
//! for files (the kernel treats nlink >= 2 with equal inodes as hard links), so the same
//! entries give the same bytes. [`Writer`] does not sort: the caller hands entries in order,
//! parents before children. [`Archive`] sorts by path, which puts parents first.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::ops::Range;

/// File type bits of `st_mode`.
pub const S_IFMT: u32 = 0o170_000;
pub const S_IFDIR: u32 = 0o040_000;
pub const S_IFREG: u32 = 0o100_000;
pub const S_IFLNK: u32 = 0o120_000;
pub const S_IFCHR: u32 = 0o020_000;

/// The header: magic and 13 fields of 8 hex digits.
pub const HEADER_LEN: usize = 110;
pub const MAGIC: &[u8] = b"070701";
pub const TRAILER: &str = "TRAILER!!!";

/// What went wrong, in words that name the entry or the byte offset.
#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error(format!("cpio: write failed: {e}"))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

fn err<T>(msg: String) -> Result<T> {
    Err(Error(msg))
}

/// What one archive entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    CharDev { major: u32, minor: u32 },
}

impl Kind {
    /// The `st_mode` file type bits.
    pub fn type_bits(&self) -> u32 {
        match self {
            Kind::Dir => S_IFDIR,
            Kind::File(_) => S_IFREG,
            Kind::Symlink(_) => S_IFLNK,
            Kind::CharDev { .. } => S_IFCHR,
        }
    }

    /// The bytes stored after the header: file contents or the link target.
    pub fn data(&self) -> &[u8] {
        match self {
            Kind::File(data) => data,
            Kind::Symlink(target) => target.as_bytes(),
            Kind::Dir | Kind::CharDev { .. } => &[],
        }
    }
}

/// Writes entries to `out` in newc format.
pub struct Writer<W: Write> {
    out: W,
    mtime: u32,
    next_ino: u32,
    offset: u64,
}

impl<W: Write> Writer<W> {
    /// A writer that stamps every entry with `mtime` (seconds since the epoch).
    pub fn new(out: W, mtime: u32) -> Self {
        Writer {
            out,
            mtime,
            next_ino: 1,
            offset: 0,
        }
    }

    /// Writes one entry. `path` is relative (no leading `/`); `perm` holds the
    /// permission bits (including setuid, setgid and sticky).
    pub fn entry(&mut self, path: &str, perm: u32, kind: &Kind) -> Result<()> {
        if path.is_empty() || path.starts_with('/') || path.contains('\0') {
            return err(format!(
                "cpio: bad entry name {path:?}: names are relative and not empty"
            ));
        }
        if perm & !0o7777 != 0 {
            return err(format!(
                "cpio: {path}: permission bits {perm:o} carry more than 0o7777"
            ));
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
            (rmaj, rmin),
            kind.data(),
        )
    }

    /// Writes the `TRAILER!!!` record and returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        self.record(TRAILER, 0, 0, 1, (0, 0), &[])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn record(
        &mut self,
        name: &str,
        ino: u32,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> Result<()> {
        let Ok(size) = u32::try_from(data.len()) else {
            return err(format!(
                "cpio: {name}: {} bytes do not fit newc's 32-bit size",
                data.len()
            ));
        };
        let namesize = name.len() + 1;
        let fields = [
            ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            self.mtime,
            size,
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            namesize as u32,
            0, // check
        ];
        let mut header = String::with_capacity(HEADER_LEN);
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

/// A set of entries keyed by path, written in sorted order so parents come first, with
/// mtime 0. For overlay initrds in tests: a later `add` of the same path replaces it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Archive {
    entries: BTreeMap<String, (u32, Kind)>,
}

impl Archive {
    pub fn new() -> Self {
        Self::default()
    }

    /// Is the archive empty?
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds (or replaces) `path` (leading and trailing `/` ignored) with `kind` and the
    /// permission bits of `perm`; missing parents become 0755 directories.
    pub fn add(&mut self, path: &str, kind: Kind, perm: u32) {
        let name = path.trim_matches('/').to_string();
        let mut parent = name.as_str();
        while let Some((up, _)) = parent.rsplit_once('/') {
            self.entries
                .entry(up.to_string())
                .or_insert((0o755, Kind::Dir));
            parent = up;
        }
        if !name.is_empty() {
            self.entries.insert(name, (perm & 0o7777, kind));
        }
    }

    /// The paths in archive order.
    pub fn paths(&self) -> Vec<&str> {
        self.entries.keys().map(String::as_str).collect()
    }

    /// The archive in newc format, ending with the `TRAILER!!!` record. Fails only for a
    /// name holding NUL or a file over 4 GiB.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut w = Writer::new(Vec::new(), 0);
        for (path, (perm, kind)) in &self.entries {
            w.entry(path, *perm, kind)?;
        }
        w.finish()
    }
}

/// Pads `out` with NUL bytes to a multiple of 4 (an archive appended after a compressed
/// one must start 4-aligned).
pub fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// One record as stored: borrowed from the archive it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// The name as stored (may start with `./` or `/`; see [`Record::path`]).
    pub name: &'a [u8],
    pub ino: u32,
    pub mode: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub rdev: (u32, u32),
    pub data: &'a [u8],
    /// Where the whole record (header to padding) sits in the archive.
    pub span: Range<usize>,
}

impl Record<'_> {
    /// The name without a leading `./` or `/`.
    pub fn path(&self) -> &[u8] {
        let p = self.name.strip_prefix(b"./").unwrap_or(self.name);
        p.strip_prefix(b"/").unwrap_or(p)
    }

    /// The file type bits of the mode.
    pub fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }
}

/// The records of one archive, and where its `TRAILER!!!` record starts.
#[derive(Debug)]
pub struct Parsed<'a> {
    pub records: Vec<Record<'a>>,
    pub trailer_at: usize,
}

/// Reads the records of the newc archive at the start of `data`, up to its trailer.
pub fn parse(data: &[u8]) -> Result<Parsed<'_>> {
    let mut records = Vec::new();
    let mut at = 0usize;
    loop {
        let Some(header) = data.get(at..at + HEADER_LEN) else {
            return err(format!("cpio: truncated header at byte {at}"));
        };
        if &header[..6] != MAGIC {
            return err(format!(
                "cpio: no newc magic 070701 at byte {at} (is it compressed?)"
            ));
        }
        let field = |i: usize| -> Result<u32> {
            let hex = &header[6 + 8 * i..14 + 8 * i];
            std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error(format!("cpio: bad header field {i} at byte {at}")))
        };
        let size = field(6)? as usize;
        let namesize = field(11)? as usize;
        let name_at = at + HEADER_LEN;
        let Some(name) = data.get(name_at..name_at + namesize.saturating_sub(1)) else {
            return err(format!("cpio: truncated name at byte {name_at}"));
        };
        if name == TRAILER.as_bytes() {
            return Ok(Parsed {
                records,
                trailer_at: at,
            });
        }
        let data_at = (name_at + namesize).next_multiple_of(4);
        let end = (data_at + size).next_multiple_of(4);
        if end > data.len() {
            return err(format!(
                "cpio: truncated entry {:?} at byte {at}",
                String::from_utf8_lossy(name)
            ));
        }
        records.push(Record {
            name,
            ino: field(0)?,
            mode: field(1)?,
            nlink: field(4)?,
            mtime: field(5)?,
            rdev: (field(9)?, field(10)?),
            data: &data[data_at..data_at + size],
            span: at..end,
        });
        at = end;
    }
}

/// One entry read back: relative path, permission bits, what it is.
pub type Entry = (String, u32, Kind);

/// Reads a newc archive as entries the writer can write again, and the mtime of its first
/// entry (0 when empty). Fails on file types the writer does not write.
pub fn read(data: &[u8]) -> Result<(Vec<Entry>, u32)> {
    let parsed = parse(data)?;
    let mtime = parsed.records.first().map_or(0, |r| r.mtime);
    let mut out = Vec::with_capacity(parsed.records.len());
    for r in parsed.records {
        let Ok(path) = std::str::from_utf8(r.path()) else {
            return err(format!(
                "cpio: entry name {:?} is not UTF-8",
                String::from_utf8_lossy(r.name)
            ));
        };
        let kind = match r.file_type() {
            S_IFDIR => Kind::Dir,
            S_IFREG => Kind::File(r.data.to_vec()),
            S_IFLNK => Kind::Symlink(String::from_utf8_lossy(r.data).into_owned()),
            S_IFCHR => Kind::CharDev {
                major: r.rdev.0,
                minor: r.rdev.1,
            },
            other => {
                return err(format!(
                    "cpio: {path}: file type {other:o} is not one the writer writes"
                ));
            }
        };
        out.push((path.to_string(), r.mode & 0o7777, kind));
    }
    Ok((out, mtime))
}

/// What [`filter`] left out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    pub entries: usize,
    pub bytes: u64,
}

/// Copies an archive keeping the records `keep` accepts, byte for byte (so the result is
/// as reproducible as the input), then the trailer and whatever follows it.
pub fn filter(archive: &[u8], keep: impl Fn(&Record) -> bool) -> Result<(Vec<u8>, Dropped)> {
    let parsed = parse(archive)?;
    let mut out = Vec::with_capacity(archive.len());
    let mut dropped = Dropped::default();
    for r in &parsed.records {
        if keep(r) {
            out.extend_from_slice(&archive[r.span.clone()]);
        } else {
            dropped.entries += 1;
            dropped.bytes += r.data.len() as u64;
        }
    }
    out.extend_from_slice(&archive[parsed.trailer_at..]);
    Ok((out, dropped))
}

#[cfg(test)]
mod tests;

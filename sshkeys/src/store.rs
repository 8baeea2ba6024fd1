//! The host key on disk: kept when valid, created when missing, replaced when corrupt, written atomically.
//!
//! Every write goes to a temporary file in the same directory (created exclusively with its final
//! mode: 0600 for the private key, 0644 for the .pub), is fsynced, renamed over the target, and
//! then the directory is fsynced. A corrupt key is hard-linked aside to `<name>.corrupt-<n>` just
//! before the rename, so the key path holds the old file or the new one at every moment and the
//! corrupt bytes are never lost. All file operations go through [`Fs`] so tests can fail any step.
//! This module must not generate keys itself (the caller passes a generator) nor read the clock.
//!
//! It does not trust what it finds: the real [`OsFs`] opens the key without following a
//! symlink and without blocking (a FIFO in its place does not hang it), reads only a regular
//! file of at most [`MAX_KEY_FILE`] bytes (a link to /dev/zero is not read for ever), and
//! sets the mode through that open file, never through a path that may have been swapped
//! for a symlink. Anything else at the key path is an unusable key: moved aside and
//! replaced. Writing the `.pub` is best effort (sshd needs only the private key): a
//! read-only disk holding a valid key keeps sshd up.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::hostkey::{HostKey, KeyError};

/// The private key's mode; sshd refuses a host key that others can read.
pub const PRIVATE_MODE: u32 = 0o600;

/// The public key's mode.
pub const PUBLIC_MODE: u32 = 0o644;

/// The largest key file read: an ED25519 key in OpenSSH format is about 400 bytes.
pub const MAX_KEY_FILE: u64 = 64 * 1024;

/// How many `<name>.corrupt-<n>` slots are tried before giving up.
pub const MAX_CORRUPT_SLOTS: u32 = 999;

/// The file operations the store needs, one method per step so a test can fail each of them.
pub trait Fs {
    /// An open file being written.
    type File;

    /// Reads a whole file; a missing file is an error of kind `NotFound`, and something
    /// that is not a regular file of at most [`MAX_KEY_FILE`] bytes (a symlink, a FIFO, a
    /// device, a huge file) one of kind `InvalidData` that says what it is.
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>>;
    /// The permission bits of a file (without following a symlink).
    fn mode(&mut self, path: &Path) -> io::Result<u32>;
    /// Sets the permission bits of a file.
    fn set_mode(&mut self, path: &Path, mode: u32) -> io::Result<()>;
    /// Whether anything exists at `path` (without following a symlink).
    fn exists(&mut self, path: &Path) -> io::Result<bool>;
    /// Creates a directory and its parents.
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()>;
    /// Creates a file that must not exist yet, with `mode`.
    fn create_new(&mut self, path: &Path, mode: u32) -> io::Result<Self::File>;
    /// Writes all of `data` to the file.
    fn write_all(&mut self, file: &mut Self::File, data: &[u8]) -> io::Result<()>;
    /// Flushes the file's data and metadata to the disk (fsync).
    fn sync(&mut self, file: &mut Self::File) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to` atomically.
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes `to` a second name for the file at `from`.
    fn hard_link(&mut self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&mut self, path: &Path) -> io::Result<()>;
    /// Flushes a directory's entries to the disk (fsync on the directory).
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()>;
}

/// The real file system, through std.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsFs;

impl Fs for OsFs {
    type File = File;

    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let mut file = open_untrusted(path)?;
        let mut data = Vec::new();
        (&mut file)
            .take(MAX_KEY_FILE + 1)
            .read_to_end(&mut data)
            .map_err(|e| match e.kind() {
                io::ErrorKind::WouldBlock => invalid("did not have its data ready"),
                _ => e,
            })?;
        if data.len() as u64 > MAX_KEY_FILE {
            return Err(invalid(&format!("is larger than {MAX_KEY_FILE} bytes")));
        }
        Ok(data)
    }
    fn mode(&mut self, path: &Path) -> io::Result<u32> {
        Ok(fs::symlink_metadata(path)?.permissions().mode() & 0o7777)
    }
    fn set_mode(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        // fchmod on what was opened without following a symlink.
        open_untrusted(path)?.set_permissions(fs::Permissions::from_mode(mode))
    }
    fn exists(&mut self, path: &Path) -> io::Result<bool> {
        match fs::symlink_metadata(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }
    fn create_new(&mut self, path: &Path, mode: u32) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
    }
    fn write_all(&mut self, file: &mut File, data: &[u8]) -> io::Result<()> {
        file.write_all(data)
    }
    fn sync(&mut self, file: &mut File) -> io::Result<()> {
        file.sync_all()
    }
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn hard_link(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        fs::hard_link(from, to)
    }
    fn remove(&mut self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Opens `path` for reading if it is a regular file: O_NOFOLLOW (a symlink is refused,
/// ELOOP) and O_NONBLOCK (a FIFO does not wait for a writer), then fstat.
fn open_untrusted(path: &Path) -> io::Result<File> {
    // The values of O_NOFOLLOW and O_NONBLOCK on Linux (x86_64 and aarch64 alike); this
    // crate has no libc to name them.
    const O_NOFOLLOW: i32 = 0o400_000;
    const O_NONBLOCK: i32 = 0o4000;
    const ELOOP: i32 = 40;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(O_NOFOLLOW | O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(ELOOP) => invalid("is a symbolic link, not a regular file"),
            _ => e,
        })?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_dir() {
            "a directory"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a file"
        };
        return Err(invalid(&format!("is {what}, not a regular file")));
    }
    Ok(file)
}

/// What [`ensure_host_key`] did, for the caller's log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A valid key was already there and is used as it is.
    Kept {
        /// The .pub was missing or did not match the key and was written again.
        pub_rewritten: bool,
        /// The key's mode was not 0600 and was set to 0600.
        mode_fixed: bool,
    },
    /// There was no key; a new one was written.
    Created,
    /// The key file could not be used; it now lives at `moved_to` and a new key took its place.
    Replaced {
        /// Where the old file was moved.
        moved_to: PathBuf,
        /// Why it could not be used.
        reason: String,
    },
}

/// The key in use after [`ensure_host_key`], where it is, and what was done to get there.
#[derive(Debug, Clone)]
pub struct Ensured {
    /// The host key now on disk.
    pub key: HostKey,
    /// The private key's path (the .pub is beside it).
    pub path: PathBuf,
    /// What was done.
    pub action: Action,
    /// The `.pub` could not be written (a read-only disk): the key is used anyway, since
    /// sshd needs only the private key.
    pub pub_error: Option<String>,
}

impl fmt::Display for Ensured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.action {
            Action::Kept {
                pub_rewritten,
                mode_fixed,
            } => {
                write!(f, "kept the existing host key {path}")?;
                if *mode_fixed {
                    write!(f, "; its mode was not 0600 and was set to 0600")?;
                }
                if *pub_rewritten {
                    write!(f, "; its .pub was missing or stale and was written again")?;
                }
                Ok(())
            }
            Action::Created => write!(f, "created a new host key {path}"),
            Action::Replaced { moved_to, reason } => write!(
                f,
                "the host key {path} was unusable ({reason}); moved it to {} and created a new one: \
                 clients that knew the old key will warn",
                moved_to.display()
            ),
        }?;
        if let Some(e) = &self.pub_error {
            write!(
                f,
                "; its .pub was not written ({e}), which sshd does not need"
            )?;
        }
        Ok(())
    }
}

/// Why the host key could not be made ready; sshd cannot start without it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("cannot {op} {}: {source}; check that the state directory is writable and not full", path.display())]
    Io {
        /// What was being done (`read`, `create`, `fsync`, ...).
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// No key could be made or encoded.
    #[error("cannot make a host key for {}: {source}", path.display())]
    Key {
        /// The key path.
        path: PathBuf,
        /// Why.
        #[source]
        source: KeyError,
    },
    /// Every `.corrupt-<n>` name is taken.
    #[error("cannot move aside the unusable key {}: {}.corrupt-1 to -{MAX_CORRUPT_SLOTS} all exist; remove old ones", path.display(), path.display())]
    NoCorruptSlot {
        /// The key path.
        path: PathBuf,
    },
    /// The key name is not a plain file name.
    #[error("the host key name {0:?} must be a plain file name")]
    BadName(String),
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

/// Makes sure `dir/name` holds a valid ED25519 host key and `dir/name.pub` its public line.
///
/// - A valid key is kept (its mode is set to 0600 and its .pub rewritten if needed).
/// - A missing key is created with `generate`.
/// - An unusable key (unparsable, encrypted, not ED25519) is moved to `name.corrupt-<n>` and
///   replaced with a key from `generate`; `generate` runs before anything is moved.
///
/// On any error the key path holds the old file or the complete new one, never a partial one.
pub fn ensure_host_key<F: Fs>(
    fs: &mut F,
    dir: &Path,
    name: &str,
    generate: impl FnOnce() -> Result<HostKey, KeyError>,
) -> Result<Ensured, StoreError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(StoreError::BadName(name.to_string()));
    }
    let path = dir.join(name);
    let pub_path = dir.join(format!("{name}.pub"));
    let key_err = |source| StoreError::Key {
        path: path.clone(),
        source,
    };

    ensure_dir(fs, dir)?;

    let existing = match fs.read(&path) {
        // The bytes are a private key: wipe them when done.
        Ok(bytes) => Some(Ok(zeroize::Zeroizing::new(bytes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        // Not a regular file, or too large: unusable, like a corrupt key.
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Some(Err(e.to_string())),
        Err(e) => return Err(io_err("read", &path)(e)),
    };

    let parsed =
        existing.map(|r| r.and_then(|b| HostKey::from_openssh(&b).map_err(|e| e.to_string())));
    let (key, action) = match parsed {
        Some(Ok(key)) => {
            let mode_fixed = fs.mode(&path).map_err(io_err("stat", &path))? != PRIVATE_MODE;
            if mode_fixed {
                fs.set_mode(&path, PRIVATE_MODE)
                    .map_err(io_err("chmod 0600", &path))?;
            }
            let line = pub_file_text(&key).map_err(key_err)?;
            let stale = match fs.read(&pub_path) {
                Ok(bytes) => Ok(bytes != line.as_bytes()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(true),
                Err(e) => Err(io_err("read", &pub_path)(e).to_string()),
            };
            let written = match stale {
                Ok(true) => write_atomic(fs, dir, &pub_path, line.as_bytes(), PUBLIC_MODE, None)
                    .map(|()| true)
                    .map_err(|e| e.to_string()),
                other => other.map(|_| false),
            };
            return Ok(Ensured {
                key,
                path,
                action: Action::Kept {
                    pub_rewritten: written == Ok(true),
                    mode_fixed,
                },
                pub_error: written.err(),
            });
        }
        Some(Err(why)) => {
            let moved_to = free_corrupt_slot(fs, dir, name)?;
            let key = generate().map_err(key_err)?;
            let text = key.private_openssh().map_err(key_err)?;
            write_atomic(
                fs,
                dir,
                &path,
                text.as_bytes(),
                PRIVATE_MODE,
                Some(&moved_to),
            )?;
            (
                key,
                Action::Replaced {
                    moved_to,
                    reason: why,
                },
            )
        }
        None => {
            let key = generate().map_err(key_err)?;
            let text = key.private_openssh().map_err(key_err)?;
            write_atomic(fs, dir, &path, text.as_bytes(), PRIVATE_MODE, None)?;
            (key, Action::Created)
        }
    };
    let line = pub_file_text(&key).map_err(key_err)?;
    let pub_error = write_atomic(fs, dir, &pub_path, line.as_bytes(), PUBLIC_MODE, None)
        .err()
        .map(|e| e.to_string());
    Ok(Ensured {
        key,
        path,
        action,
        pub_error,
    })
}

/// Creates `dir` if it is missing and fsyncs the parent of each directory it created,
/// so a key written on the first boot of a state disk survives a power cut with its path.
fn ensure_dir<F: Fs>(fs: &mut F, dir: &Path) -> Result<(), StoreError> {
    if fs.exists(dir).map_err(io_err("stat", dir))? {
        return Ok(());
    }
    let mut missing = vec![dir];
    while let Some(parent) = missing.last().and_then(|d| d.parent()) {
        if parent.as_os_str().is_empty() || fs.exists(parent).map_err(io_err("stat", parent))? {
            break;
        }
        missing.push(parent);
    }
    fs.create_dir_all(dir)
        .map_err(io_err("create the directory", dir))?;
    for created in missing.iter().rev() {
        if let Some(parent) = created.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs.sync_dir(parent)
                .map_err(io_err("fsync the directory", parent))?;
        }
    }
    Ok(())
}

/// The .pub file's whole text: the public line and a newline, as ssh-keygen writes it.
fn pub_file_text(key: &HostKey) -> Result<String, KeyError> {
    let mut line = key.public_line()?;
    line.push('\n');
    Ok(line)
}

/// The first `name.corrupt-<n>` that does not exist yet.
fn free_corrupt_slot<F: Fs>(fs: &mut F, dir: &Path, name: &str) -> Result<PathBuf, StoreError> {
    for n in 1..=MAX_CORRUPT_SLOTS {
        let candidate = dir.join(format!("{name}.corrupt-{n}"));
        if !fs.exists(&candidate).map_err(io_err("stat", &candidate))? {
            return Ok(candidate);
        }
    }
    Err(StoreError::NoCorruptSlot {
        path: dir.join(name),
    })
}

/// Replaces `path` with `data` atomically; with `keep_old_at`, the old file gets that second name first.
fn write_atomic<F: Fs>(
    fs: &mut F,
    dir: &Path,
    path: &Path,
    data: &[u8],
    mode: u32,
    keep_old_at: Option<&Path>,
) -> Result<(), StoreError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp"));
    // A temporary file left by a crash may have another mode: remove it, then create exclusively.
    match fs.remove(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("remove the stale temporary file", &tmp)(e)),
    }
    let mut file = fs.create_new(&tmp, mode).map_err(io_err("create", &tmp))?;
    let result = write_sync_rename(fs, &mut file, dir, &tmp, path, data, keep_old_at);
    drop(file);
    if result.is_err() {
        // Best effort: the error being returned matters more than a leftover temporary file,
        // which the next run removes anyway.
        let _ = fs.remove(&tmp);
    }
    result
}

fn write_sync_rename<F: Fs>(
    fs: &mut F,
    file: &mut F::File,
    dir: &Path,
    tmp: &Path,
    path: &Path,
    data: &[u8],
    keep_old_at: Option<&Path>,
) -> Result<(), StoreError> {
    fs.write_all(file, data).map_err(io_err("write", tmp))?;
    fs.sync(file).map_err(io_err("fsync", tmp))?;
    if let Some(aside) = keep_old_at {
        fs.hard_link(path, aside)
            .map_err(io_err("link the old key aside to", aside))?;
    }
    fs.rename(tmp, path)
        .map_err(io_err("rename the temporary file onto", path))?;
    fs.sync_dir(dir).map_err(io_err("fsync the directory", dir))
}

#[cfg(test)]
mod tests {
    //! A fake file system with a crash model: file data is durable only after `sync`, and names
    //! (creations, renames, links, removals) only after `sync_dir`. Any one step can be made to fail.

    use super::*;
    use crate::hostkey::host_key_from_seed;
    use std::collections::BTreeMap;

    #[derive(Clone, Debug)]
    struct Inode {
        data: Vec<u8>,
        synced: Vec<u8>,
        mode: u32,
    }

    #[derive(Clone, Debug, Default)]
    struct FakeFs {
        inodes: Vec<Inode>,
        names: BTreeMap<PathBuf, usize>,
        durable: BTreeMap<PathBuf, usize>,
        dirs: std::collections::BTreeSet<PathBuf>,
        steps: usize,
        fail_at: Option<usize>,
        log: Vec<String>,
    }

    impl FakeFs {
        /// A directory holding `files`, all durable.
        fn with(files: &[(&str, &[u8], u32)]) -> Self {
            let mut fs = Self::default();
            for (name, data, mode) in files {
                fs.inodes.push(Inode {
                    data: data.to_vec(),
                    synced: data.to_vec(),
                    mode: *mode,
                });
                fs.names
                    .insert(PathBuf::from(DIR).join(name), fs.inodes.len() - 1);
            }
            fs.durable = fs.names.clone();
            fs.dirs = Path::new(DIR).ancestors().map(Path::to_path_buf).collect();
            fs
        }

        /// A file system where not even the state directory exists yet.
        fn bare() -> Self {
            let mut fs = Self::default();
            fs.dirs.insert(PathBuf::from("/"));
            fs
        }

        /// Counts a step and fails it if it is the chosen one.
        fn step(&mut self, what: &str, path: &Path) -> io::Result<()> {
            self.log.push(format!("{what} {}", path.display()));
            let n = self.steps;
            self.steps += 1;
            if self.fail_at == Some(n) {
                return Err(io::Error::other(format!(
                    "injected failure at step {n} ({what})"
                )));
            }
            Ok(())
        }

        /// What the directory holds now: name to contents.
        fn live(&self) -> BTreeMap<String, Vec<u8>> {
            self.view(&self.names, |i| i.data.clone())
        }

        /// What the directory would hold after a power cut now.
        fn crashed(&self) -> Self {
            let mut after = Self::default();
            for (path, ino) in &self.durable {
                let data = self.inodes[*ino].synced.clone();
                after.inodes.push(Inode {
                    data: data.clone(),
                    synced: data,
                    mode: self.inodes[*ino].mode,
                });
                after.names.insert(path.clone(), after.inodes.len() - 1);
            }
            after.durable = after.names.clone();
            after.dirs = self.dirs.clone();
            after
        }

        fn view(
            &self,
            names: &BTreeMap<PathBuf, usize>,
            data: impl Fn(&Inode) -> Vec<u8>,
        ) -> BTreeMap<String, Vec<u8>> {
            names
                .iter()
                .map(|(p, i)| {
                    (
                        p.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        data(&self.inodes[*i]),
                    )
                })
                .collect()
        }

        fn not_found(path: &Path) -> io::Error {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} not found", path.display()),
            )
        }

        fn ino(&self, path: &Path) -> io::Result<usize> {
            self.names
                .get(path)
                .copied()
                .ok_or_else(|| Self::not_found(path))
        }
    }

    impl Fs for FakeFs {
        type File = usize;

        fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
            self.step("read", path)?;
            Ok(self.inodes[self.ino(path)?].data.clone())
        }
        fn mode(&mut self, path: &Path) -> io::Result<u32> {
            self.step("mode", path)?;
            Ok(self.inodes[self.ino(path)?].mode)
        }
        fn set_mode(&mut self, path: &Path, mode: u32) -> io::Result<()> {
            self.step("set_mode", path)?;
            let ino = self.ino(path)?;
            self.inodes[ino].mode = mode;
            Ok(())
        }
        fn exists(&mut self, path: &Path) -> io::Result<bool> {
            self.step("exists", path)?;
            Ok(self.names.contains_key(path) || self.dirs.contains(path))
        }
        fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
            self.step("create_dir_all", dir)?;
            self.dirs.extend(dir.ancestors().map(Path::to_path_buf));
            Ok(())
        }
        fn create_new(&mut self, path: &Path, mode: u32) -> io::Result<usize> {
            self.step("create_new", path)?;
            if self.names.contains_key(path) {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
            }
            self.inodes.push(Inode {
                data: vec![],
                synced: vec![],
                mode,
            });
            self.names.insert(path.to_path_buf(), self.inodes.len() - 1);
            Ok(self.inodes.len() - 1)
        }
        fn write_all(&mut self, file: &mut usize, data: &[u8]) -> io::Result<()> {
            self.step("write_all", Path::new("<file>"))?;
            self.inodes[*file].data.extend_from_slice(data);
            Ok(())
        }
        fn sync(&mut self, file: &mut usize) -> io::Result<()> {
            self.step("sync", Path::new("<file>"))?;
            self.inodes[*file].synced = self.inodes[*file].data.clone();
            Ok(())
        }
        fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
            self.step("rename", from)?;
            let ino = self
                .names
                .remove(from)
                .ok_or_else(|| Self::not_found(from))?;
            self.names.insert(to.to_path_buf(), ino);
            Ok(())
        }
        fn hard_link(&mut self, from: &Path, to: &Path) -> io::Result<()> {
            self.step("hard_link", from)?;
            let ino = self.ino(from)?;
            if self.names.contains_key(to) {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
            }
            self.names.insert(to.to_path_buf(), ino);
            Ok(())
        }
        fn remove(&mut self, path: &Path) -> io::Result<()> {
            self.step("remove", path)?;
            self.names
                .remove(path)
                .map(|_| ())
                .ok_or_else(|| Self::not_found(path))
        }
        fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
            self.step("sync_dir", dir)?;
            self.durable = self.names.clone();
            Ok(())
        }
    }

    const DIR: &str = "/state/ssh";
    const NAME: &str = "ssh_host_ed25519_key";
    const PUB: &str = "ssh_host_ed25519_key.pub";

    // Deriving a key is slow in a debug build, and the failure tests make hundreds of runs.
    static NEW_KEY: std::sync::OnceLock<HostKey> = std::sync::OnceLock::new();
    static OLD_KEY: std::sync::OnceLock<HostKey> = std::sync::OnceLock::new();

    fn new_key() -> HostKey {
        NEW_KEY
            .get_or_init(|| host_key_from_seed([42; 32], "root@new"))
            .clone()
    }

    fn old_key() -> HostKey {
        OLD_KEY
            .get_or_init(|| host_key_from_seed([9; 32], "root@old"))
            .clone()
    }

    fn private_text(key: &HostKey) -> Vec<u8> {
        key.private_openssh()
            .map(|t| t.as_bytes().to_vec())
            .unwrap_or_default()
    }

    fn pub_text(key: &HostKey) -> Vec<u8> {
        pub_file_text(key)
            .map(String::into_bytes)
            .unwrap_or_default()
    }

    fn run(fs: &mut FakeFs) -> Result<Ensured, StoreError> {
        ensure_host_key(fs, Path::new(DIR), NAME, || Ok(new_key()))
    }

    const CORRUPT: &[u8] = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n";

    /// The starting directories every scenario is tried from.
    fn scenarios() -> Vec<(&'static str, FakeFs)> {
        let old = private_text(&old_key());
        let old_pub = pub_text(&old_key());
        vec![
            ("no directory yet", FakeFs::bare()),
            ("empty", FakeFs::with(&[])),
            (
                "valid key, pub missing",
                FakeFs::with(&[(NAME, &old, 0o600)]),
            ),
            (
                "valid key, stale pub, mode 0644",
                FakeFs::with(&[
                    (NAME, &old, 0o644),
                    (PUB, b"ssh-ed25519 AAAA wrong\n", 0o644),
                ]),
            ),
            (
                "corrupt key",
                FakeFs::with(&[(NAME, CORRUPT, 0o600), (PUB, &old_pub, 0o644)]),
            ),
            (
                "corrupt key, slot 1 taken",
                FakeFs::with(&[
                    (NAME, b"junk", 0o600),
                    (&format!("{NAME}.corrupt-1"), b"older", 0o600),
                ]),
            ),
            (
                "stale temp file",
                FakeFs::with(&[(&format!(".{NAME}.tmp"), b"half a ke", 0o644)]),
            ),
        ]
    }

    /// The checks that must hold in any state the store can leave behind.
    fn check_state(
        label: &str,
        start: &BTreeMap<String, Vec<u8>>,
        now: &BTreeMap<String, Vec<u8>>,
    ) {
        let new = private_text(&new_key());
        match (start.get(NAME), now.get(NAME)) {
            (old, current) if old == current => {}
            (_, Some(current)) if *current == new => {}
            (old, current) => panic!(
                "{label}: the key is neither the old one nor the new one: old {:?}, now {:?}",
                old.map(|b| String::from_utf8_lossy(b).into_owned()),
                current.map(|b| String::from_utf8_lossy(b).into_owned())
            ),
        }
        // Whatever was at the key path before still exists somewhere: nothing is ever lost.
        if let Some(old) = start.get(NAME) {
            assert!(
                now.values().any(|v| v == old),
                "{label}: the old key's bytes are gone"
            );
        }
    }

    #[test]
    fn a_clean_run_gives_a_valid_consistent_key_in_every_scenario() -> Result<(), StoreError> {
        for (label, start) in scenarios() {
            let mut fs = start.clone();
            let ensured = run(&mut fs)?;
            for state in [fs.live(), fs.crashed().live()] {
                let key = state.get(NAME).map(|b| HostKey::from_openssh(b));
                let Some(Ok(key)) = key else {
                    panic!("{label}: no valid key after a clean run")
                };
                assert_eq!(
                    state.get(PUB),
                    Some(&pub_text(&key)),
                    "{label}: .pub does not match"
                );
                assert_eq!(
                    key.public_line().ok(),
                    ensured.key.public_line().ok(),
                    "{label}"
                );
                assert!(
                    !state.contains_key(&format!(".{NAME}.tmp")),
                    "{label}: temp file left"
                );
                check_state(label, &start.live(), &state);
            }
            let mode = fs.inodes[fs.names[&PathBuf::from(DIR).join(NAME)]].mode;
            assert_eq!(mode, 0o600, "{label}: key mode");
            let pub_mode = fs.inodes[fs.names[&PathBuf::from(DIR).join(PUB)]].mode;
            assert_eq!(pub_mode, 0o644, "{label}: pub mode");
        }
        Ok(())
    }

    #[test]
    fn a_failure_at_every_step_leaves_the_old_or_the_new_key() {
        for (label, start) in scenarios() {
            let mut clean = start.clone();
            let outcome = run(&mut clean);
            assert!(outcome.is_ok(), "{label}: clean run failed: {outcome:?}");
            let steps = clean.steps;
            assert!(steps >= 2, "{label}: only {steps} steps");
            for fail_at in 0..steps {
                let mut fs = start.clone();
                fs.fail_at = Some(fail_at);
                let result = run(&mut fs);
                let what = format!("{label}, failing step {fail_at} ({})", clean.log[fail_at]);
                // A failure writing the .pub is reported beside the key, which is in use.
                let err = match result {
                    Err(e) => e.to_string(),
                    Ok(e) => e
                        .pub_error
                        .clone()
                        .unwrap_or_else(|| panic!("{what}: the injected failure was not reported")),
                };
                assert!(err.contains("injected failure"), "{what}: {err}");
                check_state(&what, &start.live(), &fs.live());
                check_state(
                    &format!("{what}, then a power cut"),
                    &start.live(),
                    &fs.crashed().live(),
                );
                // The next boot, with nothing failing, ends with a valid key and a matching .pub.
                for mut next in [fs.clone(), fs.crashed()] {
                    next.fail_at = None;
                    let ensured = run(&mut next);
                    let Ok(ensured) = ensured else {
                        panic!("{what}: the next run failed: {ensured:?}")
                    };
                    let state = next.live();
                    assert_eq!(
                        state.get(PUB),
                        Some(&pub_text(&ensured.key)),
                        "{what}: next run's .pub"
                    );
                    assert!(
                        !state.contains_key(&format!(".{NAME}.tmp")),
                        "{what}: temp file left"
                    );
                }
            }
        }
    }

    #[test]
    fn a_missing_fsync_would_be_caught_by_the_crash_model() {
        // Guards the fake itself: a rename made durable without the data fsync leaves an empty file.
        let mut fs = FakeFs::with(&[]);
        let dir = Path::new(DIR);
        let tmp = dir.join("t");
        let mut f = fs.create_new(&tmp, 0o600).unwrap_or_default();
        let _ = fs.write_all(&mut f, b"data");
        let _ = fs.rename(&tmp, &dir.join(NAME));
        let _ = fs.sync_dir(dir);
        assert_eq!(fs.live().get(NAME), Some(&b"data".to_vec()));
        assert_eq!(fs.crashed().live().get(NAME), Some(&Vec::new()));
    }

    #[test]
    fn kept_key_is_not_rewritten() -> Result<(), StoreError> {
        let old = private_text(&old_key());
        let mut fs = FakeFs::with(&[(NAME, &old, 0o600), (PUB, &pub_text(&old_key()), 0o644)]);
        let ensured = run(&mut fs)?;
        assert_eq!(
            ensured.action,
            Action::Kept {
                pub_rewritten: false,
                mode_fixed: false
            }
        );
        assert_eq!(ensured.key.public_line().ok(), old_key().public_line().ok());
        assert!(
            fs.log
                .iter()
                .all(|l| l.starts_with("read") || l.starts_with("mode") || l.starts_with("exists")),
            "{:?}",
            fs.log
        );
        assert_eq!(
            ensured.to_string(),
            format!("kept the existing host key {DIR}/{NAME}")
        );
        Ok(())
    }

    #[test]
    fn missing_pub_and_loose_mode_are_repaired() -> Result<(), StoreError> {
        let old = private_text(&old_key());
        let mut fs = FakeFs::with(&[(NAME, &old, 0o644)]);
        let ensured = run(&mut fs)?;
        assert_eq!(
            ensured.action,
            Action::Kept {
                pub_rewritten: true,
                mode_fixed: true
            }
        );
        assert_eq!(fs.live().get(PUB), Some(&pub_text(&old_key())));
        assert_eq!(fs.live().get(NAME), Some(&old));
        Ok(())
    }

    #[test]
    fn corrupt_key_is_moved_aside_and_replaced() -> Result<(), StoreError> {
        let mut fs = FakeFs::with(&[
            (NAME, CORRUPT, 0o600),
            (&format!("{NAME}.corrupt-1"), b"older", 0o600),
        ]);
        let ensured = run(&mut fs)?;
        let moved_to = PathBuf::from(DIR).join(format!("{NAME}.corrupt-2"));
        let Action::Replaced {
            moved_to: got,
            reason,
        } = &ensured.action
        else {
            panic!("expected replaced, got {:?}", ensured.action)
        };
        assert_eq!(got, &moved_to);
        assert!(
            reason.starts_with("not a usable openssh private key"),
            "{reason}"
        );
        let live = fs.live();
        assert_eq!(
            live.get(&format!("{NAME}.corrupt-2")),
            Some(&CORRUPT.to_vec())
        );
        assert_eq!(
            live.get(&format!("{NAME}.corrupt-1")),
            Some(&b"older".to_vec())
        );
        assert_eq!(live.get(NAME), Some(&private_text(&new_key())));
        assert_eq!(live.get(PUB), Some(&pub_text(&new_key())));
        let message = ensured.to_string();
        assert!(
            message.contains("was unusable (not a usable openssh private key"),
            "{message}"
        );
        assert!(
            message.contains(&format!("moved it to {DIR}/{NAME}.corrupt-2")),
            "{message}"
        );
        Ok(())
    }

    #[test]
    fn the_steps_of_a_first_boot_in_order() -> Result<(), StoreError> {
        let mut fs = FakeFs::bare();
        run(&mut fs)?;
        let expected = [
            "exists /state/ssh",
            "exists /state",
            "exists /",
            "create_dir_all /state/ssh",
            "sync_dir /",
            "sync_dir /state",
            "read /state/ssh/ssh_host_ed25519_key",
            "remove /state/ssh/.ssh_host_ed25519_key.tmp",
            "create_new /state/ssh/.ssh_host_ed25519_key.tmp",
            "write_all <file>",
            "sync <file>",
            "rename /state/ssh/.ssh_host_ed25519_key.tmp",
            "sync_dir /state/ssh",
            "remove /state/ssh/.ssh_host_ed25519_key.pub.tmp",
            "create_new /state/ssh/.ssh_host_ed25519_key.pub.tmp",
            "write_all <file>",
            "sync <file>",
            "rename /state/ssh/.ssh_host_ed25519_key.pub.tmp",
            "sync_dir /state/ssh",
        ];
        assert_eq!(fs.log, expected);
        Ok(())
    }

    #[test]
    fn missing_key_is_created() -> Result<(), StoreError> {
        let mut fs = FakeFs::with(&[]);
        let ensured = run(&mut fs)?;
        assert_eq!(ensured.action, Action::Created);
        assert_eq!(ensured.path, PathBuf::from(DIR).join(NAME));
        Ok(())
    }

    #[test]
    fn a_generator_error_moves_nothing() {
        let mut fs = FakeFs::with(&[(NAME, CORRUPT, 0o600)]);
        let before = fs.live();
        let result = ensure_host_key(&mut fs, Path::new(DIR), NAME, || {
            Err(KeyError::CrngNotReady)
        });
        let Err(err) = result else {
            panic!("expected an error")
        };
        assert!(err.to_string().contains("crng is not ready"), "{err}");
        assert_eq!(fs.live(), before);
    }

    #[test]
    fn a_bad_name_is_refused() {
        let mut fs = FakeFs::with(&[]);
        for name in ["", "a/b", "..", "."] {
            let result = ensure_host_key(&mut fs, Path::new(DIR), name, || Ok(new_key()));
            assert!(matches!(result, Err(StoreError::BadName(_))), "{name:?}");
        }
    }

    #[test]
    fn the_real_file_system_round_trip() -> Result<(), StoreError> {
        let dir = std::env::temp_dir().join(format!("sshkeys-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let key_dir = dir.join("var/lib/keel/ssh");
        let first = ensure_host_key(&mut OsFs, &key_dir, NAME, || Ok(new_key()))?;
        assert_eq!(first.action, Action::Created);
        let mode = |p: &Path| {
            fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o7777)
                .ok()
        };
        assert_eq!(mode(&key_dir.join(NAME)), Some(0o600));
        assert!(
            matches!(mode(&key_dir.join(PUB)), Some(m) if m & 0o077 != 0o077 && m & 0o400 != 0)
        );
        let second = ensure_host_key(&mut OsFs, &key_dir, NAME, || Err(KeyError::CrngNotReady))?;
        assert_eq!(
            second.action,
            Action::Kept {
                pub_rewritten: false,
                mode_fixed: false
            }
        );
        fs::write(key_dir.join(NAME), b"garbage").map_err(io_err("write", &key_dir))?;
        let third = ensure_host_key(&mut OsFs, &key_dir, NAME, || Ok(old_key()))?;
        assert!(matches!(third.action, Action::Replaced { .. }));
        assert_eq!(
            fs::read(key_dir.join(format!("{NAME}.corrupt-1"))).ok(),
            Some(b"garbage".to_vec())
        );
        assert_eq!(mode(&key_dir.join(NAME)), Some(0o600));
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    /// What the real store makes of something other than a key file at the key path: it
    /// must not hang, read without end or follow a link, and must end with a new key.
    fn hostile(label: &str, plant: impl FnOnce(&Path)) -> (Ensured, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("sshkeys-hostile-{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("cannot create the test directory");
        plant(&dir.join(NAME));
        let ensured = ensure_host_key(&mut OsFs, &dir, NAME, || Ok(new_key()))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let meta = fs::symlink_metadata(dir.join(NAME)).expect("no key after the run");
        assert!(
            meta.file_type().is_file(),
            "{label}: the key is not a regular file"
        );
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600, "{label}");
        assert_eq!(
            fs::read(dir.join(NAME)).ok(),
            Some(private_text(&new_key())),
            "{label}"
        );
        (ensured, dir)
    }

    fn reason(e: &Ensured) -> String {
        match &e.action {
            Action::Replaced { reason, .. } => reason.clone(),
            other => panic!("expected the key to be replaced, got {other:?}"),
        }
    }

    #[test]
    // A test process, not PID 1: there is no reaper here for mkfifo's status to race.
    #[allow(clippy::disallowed_methods)]
    fn a_fifo_at_the_key_path_is_replaced_not_waited_on() {
        let (e, dir) = hostile("fifo", |p| {
            let made = std::process::Command::new("mkfifo").arg(p).status();
            assert!(made.is_ok_and(|s| s.success()), "mkfifo failed");
        });
        assert!(reason(&e).contains("is a FIFO, not a regular file"), "{e}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_symlink_to_dev_zero_is_not_read() {
        let (e, dir) = hostile("zero", |p| {
            std::os::unix::fs::symlink("/dev/zero", p).expect("cannot make the symlink");
        });
        assert!(reason(&e).contains("symbolic link"), "{e}");
        // The link itself was moved aside, not what it points to.
        let aside = dir.join(format!("{NAME}.corrupt-1"));
        assert!(
            fs::symlink_metadata(&aside).is_ok_and(|m| m.file_type().is_symlink()),
            "the link was not kept aside"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_huge_file_is_read_only_up_to_the_cap() {
        let (e, dir) = hostile("huge", |p| {
            fs::write(p, vec![b'A'; MAX_KEY_FILE as usize * 4]).expect("cannot write");
        });
        assert!(reason(&e).contains("larger than 65536 bytes"), "{e}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_symlink_to_a_valid_key_is_not_followed_by_chmod() {
        let outside = std::env::temp_dir().join(format!("sshkeys-outside-{}", std::process::id()));
        fs::write(&outside, private_text(&old_key())).expect("cannot write");
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o644)).expect("chmod");
        let (e, dir) = hostile("link", |p| {
            std::os::unix::fs::symlink(&outside, p).expect("cannot make the symlink");
        });
        assert!(reason(&e).contains("symbolic link"), "{e}");
        let m = fs::metadata(&outside).map(|m| m.permissions().mode() & 0o7777);
        assert_eq!(m.ok(), Some(0o644), "the link's target was chmod'ed");
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::remove_file(&outside);
    }

    #[test]
    fn a_valid_key_whose_pub_cannot_be_written_is_still_used() {
        // A read-only state disk with a key and no .pub: the .pub write fails at once.
        let old = private_text(&old_key());
        let mut clean = FakeFs::with(&[(NAME, &old, 0o600)]);
        run(&mut clean).expect("clean run");
        let create = clean
            .log
            .iter()
            .position(|l| l.starts_with("remove") || l.starts_with("create_new"))
            .expect("the clean run wrote nothing");
        let mut fs = FakeFs::with(&[(NAME, &old, 0o600)]);
        fs.fail_at = Some(create);
        let e = run(&mut fs).expect("a .pub that cannot be written must not stop sshd");
        assert_eq!(e.key.public_line().ok(), old_key().public_line().ok());
        assert!(
            e.pub_error
                .as_deref()
                .is_some_and(|p| p.contains("injected failure")),
            "{e:?}"
        );
        assert!(e.to_string().contains("its .pub was not written"), "{e}");
        assert_eq!(fs.live().get(NAME), Some(&old));
    }
}

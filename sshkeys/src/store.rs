//! The host key on disk: kept when valid, created when missing, replaced when corrupt, written atomically.
//!
//! Every write goes to a temporary file in the same directory (created exclusively with its final
//! mode: 0600 for the private key, 0644 for the .pub), is fsynced, renamed over the target, and
//! then the directory is fsynced. A corrupt key is hard-linked aside to `<name>.corrupt-<n>` just
//! before the rename, so the key path holds the old file or the new one at every moment and the
//! corrupt bytes are never lost. All file operations go through [`Fs`] so tests can fail any step.
//! This module must not generate keys itself (the caller passes a generator) nor read the clock.

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

/// How many `<name>.corrupt-<n>` slots are tried before giving up.
pub const MAX_CORRUPT_SLOTS: u32 = 999;

/// The file operations the store needs, one method per step so a test can fail each of them.
pub trait Fs {
    /// An open file being written.
    type File;

    /// Reads a whole file; a missing file is an error of kind `NotFound`.
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
        fs::read(path)
    }
    fn mode(&mut self, path: &Path) -> io::Result<u32> {
        Ok(fs::symlink_metadata(path)?.permissions().mode() & 0o7777)
    }
    fn set_mode(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
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
        }
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

    fs.create_dir_all(dir)
        .map_err(io_err("create the directory", dir))?;

    let existing = match fs.read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err("read", &path)(e)),
    };

    let (key, action) = match existing.map(|bytes| HostKey::from_openssh(&bytes)) {
        Some(Ok(key)) => {
            let mode_fixed = fs.mode(&path).map_err(io_err("stat", &path))? != PRIVATE_MODE;
            if mode_fixed {
                fs.set_mode(&path, PRIVATE_MODE)
                    .map_err(io_err("chmod 0600", &path))?;
            }
            let line = pub_file_text(&key).map_err(key_err)?;
            let pub_rewritten = match fs.read(&pub_path) {
                Ok(bytes) => bytes != line.as_bytes(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => true,
                Err(e) => return Err(io_err("read", &pub_path)(e)),
            };
            if pub_rewritten {
                write_atomic(fs, dir, &pub_path, line.as_bytes(), PUBLIC_MODE, None)?;
            }
            return Ok(Ensured {
                key,
                path,
                action: Action::Kept {
                    pub_rewritten,
                    mode_fixed,
                },
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
                    reason: why.to_string(),
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
    write_atomic(fs, dir, &pub_path, line.as_bytes(), PUBLIC_MODE, None)?;
    Ok(Ensured { key, path, action })
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

//! The cache outside the clone where xtask keeps what is slow to build (the kernel's
//! source and objects, and any other artefact keyed by its inputs): `$KEEL_CACHE`, else
//! `$XDG_CACHE_HOME/keel`, else `~/.cache/keel`, with one lock per artefact kind.

use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn phase(msg: &str) {
    eprintln!("cache: {msg}");
}

/// `$KEEL_CACHE`, else `$XDG_CACHE_HOME/keel`, else `~/.cache/keel`.
pub(crate) fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("KEEL_CACHE").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("keel"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("keel")),
        None => bail!("neither KEEL_CACHE nor HOME is set: set KEEL_CACHE to a cache directory"),
    }
}

/// One build at a time per cache (kernel, sshd): two clones sharing it wait for each other. The
/// lock is a directory holding the owner's pid (std's file locks need a newer Rust than the
/// workspace's MSRV); a lock whose owner is gone is taken over.
pub(crate) struct CacheLock(PathBuf);

impl Drop for CacheLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn lock_cache(cache: &Path) -> Result<CacheLock> {
    fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
    let path = cache.join("lock");
    let mut told = false;
    loop {
        match fs::create_dir(&path) {
            Ok(()) => {
                fs::write(path.join("pid"), std::process::id().to_string())?;
                return Ok(CacheLock(path));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = fs::read_to_string(path.join("pid")).unwrap_or_default();
                let owner = owner.trim();
                let alive = !owner.is_empty() && Path::new("/proc").join(owner).exists();
                if !alive && lock_is_stale(&path) {
                    phase(&format!(
                        "taking over a stale lock {} (pid {owner:?} is gone)",
                        path.display()
                    ));
                    let _ = fs::remove_dir_all(&path);
                    continue;
                }
                if !told {
                    phase(&format!(
                        "waiting for another build (pid {owner}) to finish: lock {}",
                        path.display()
                    ));
                    told = true;
                }
                std::thread::sleep(Duration::from_secs(2));
            }
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
        }
    }
}

/// A lock without a live owner is stale once it is a few seconds old (its owner may be
/// between creating the directory and writing its pid).
fn lock_is_stale(path: &Path) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > Duration::from_secs(5))
}

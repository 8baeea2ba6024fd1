//! Filesystem calls of the boot: mounts, directories, device nodes, symlinks, reads.
//!
//! Modes are applied exactly: after creating a directory or node, the permission bits are
//! set with chmod, so the umask (0022 for PID 1) cannot turn 1777 into 1755. Nothing here
//! decides what to mount; that is `mountplan.rs`.

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, fchmodat, makedev, mknod as nix_mknod};
use std::path::Path;

fn io_errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

/// Reads a whole file as text (invalid UTF-8 is replaced, never an error).
pub fn read_to_string(path: &str) -> Result<String, Errno> {
    // Lossy, by the command line's rule (PID 1 reads /proc/cmdline through here).
    std::fs::read(path)
        .map(|b| netcfg::cmdline::decode(&b))
        .map_err(|e| io_errno(&e))
}

/// Writes `text` to an existing file such as a sysctl under /proc/sys (no create, no
/// truncate beyond what the file itself does).
pub fn write_existing(path: &str, text: &str) -> Result<(), Errno> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_errno(&e))?;
    f.write_all(text.as_bytes()).map_err(|e| io_errno(&e))
}

/// Creates (or truncates) the regular file `path` with mode 0644 and writes `text`.
pub fn create(path: &str, text: &str) -> Result<(), Errno> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| io_errno(&e))?;
    f.write_all(text.as_bytes()).map_err(|e| io_errno(&e))
}

/// Whether `path` exists (a dangling symlink counts as existing).
pub fn exists(path: &str) -> bool {
    Path::new(path).symlink_metadata().is_ok()
}

/// Creates a directory and its parents; sets `mode` on the last one if it was created.
/// An existing directory is not an error and keeps its mode.
pub fn mkdir(path: &str, mode: u32) -> Result<(), Errno> {
    if Path::new(path).is_dir() {
        return Ok(());
    }
    if let Some(parent) = Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| io_errno(&e))?;
    }
    match nix::unistd::mkdir(path, Mode::from_bits_truncate(mode)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e),
    }
    chmod(path, mode)
}

fn chmod(path: &str, mode: u32) -> Result<(), Errno> {
    fchmodat(
        nix::fcntl::AT_FDCWD,
        path,
        Mode::from_bits_truncate(mode),
        FchmodatFlags::FollowSymlink,
    )
}

/// Makes a character device node with exactly `mode`; an existing path is left alone.
pub fn mknod_char(path: &str, major: u64, minor: u64, mode: u32) -> Result<(), Errno> {
    match nix_mknod(
        path,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(mode),
        makedev(major, minor),
    ) {
        Ok(()) => chmod(path, mode),
        Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes a symlink; an existing `link` is left alone.
pub fn symlink(target: &str, link: &str) -> Result<(), Errno> {
    match std::os::unix::fs::symlink(target, link) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_errno(&e)),
    }
}

/// mount(2).
pub fn mount(
    source: &str,
    target: &str,
    fstype: &str,
    flags: u64,
    data: &str,
) -> Result<(), Errno> {
    let flags = MsFlags::from_bits_truncate(flags as libc::c_ulong);
    let data = if data.is_empty() { None } else { Some(data) };
    nix::mount::mount(Some(source), target, Some(fstype), flags, data)
}

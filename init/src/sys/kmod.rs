//! Kernel module loading: finit_module(2) on a file.
//!
//! Which modules to load, and in what order, is decided by `modload.rs` from modules.dep;
//! this only loads one file. EEXIST (already loaded) is returned as is; the caller treats
//! it as success.

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::kmod::{ModuleInitFlags, finit_module};
use nix::sys::stat::Mode;

/// `MODULE_INIT_COMPRESSED_FILE`: the kernel decompresses the file itself (Linux 5.17+).
const MODULE_INIT_COMPRESSED_FILE: libc::c_uint = 4;

/// Loads the module in `path` with no parameters.
pub fn load(path: &str) -> Result<(), Errno> {
    let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    let compressed = [".ko.xz", ".ko.gz", ".ko.zst"]
        .iter()
        .any(|s| path.ends_with(s));
    let flags = if compressed {
        ModuleInitFlags::from_bits_retain(MODULE_INIT_COMPRESSED_FILE)
    } else {
        ModuleInitFlags::empty()
    };
    finit_module(&fd, c"", flags)
}

/// The running kernel's release (`uname -r`).
pub fn kernel_release() -> Result<String, Errno> {
    let u = nix::sys::utsname::uname()?;
    Ok(u.release().to_string_lossy().into_owned())
}

//! The hardware watchdog device (/dev/watchdog): open, set the timeout, pet, magic close.
//!
//! Opening the device arms it; each pet (WDIOC_KEEPALIVE) restarts its countdown. Closing
//! it after writing `V` ("magic close") disarms it on drivers that honour it (i6300esb,
//! softdog, xen_wdt all do unless built with nowayout). Must not decide when to pet:
//! that is init/src/run/watchdog.rs.

use nix::errno::Errno;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

nix::ioctl_read!(wdioc_keepalive, b'W', 5, libc::c_int);
nix::ioctl_readwrite!(wdioc_settimeout, b'W', 6, libc::c_int);

/// An open, armed watchdog.
#[derive(Debug)]
pub struct Device {
    file: File,
    /// The timeout the driver accepted, in seconds (it may round).
    pub timeout_s: i32,
}

impl Device {
    /// Opens (arms) `path` and asks for `timeout_s` seconds.
    pub fn open(path: &str, timeout_s: i32) -> Result<Device, Errno> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| e.raw_os_error().map_or(Errno::EIO, Errno::from_raw))?;
        let mut t: libc::c_int = timeout_s;
        // SAFETY: the fd is open for the whole call and `t` is a valid c_int the ioctl
        // reads and writes back (the timeout the driver set).
        let set = unsafe { wdioc_settimeout(file.as_raw_fd(), &mut t) };
        let mut dev = Device { file, timeout_s };
        match set {
            Ok(_) => dev.timeout_s = t,
            Err(e) => {
                // A driver with a fixed timeout: keep it armed, but the caller must know.
                dev.disarm();
                return Err(e);
            }
        }
        Ok(dev)
    }

    /// Restarts the countdown.
    pub fn pet(&self) -> Result<(), Errno> {
        let mut dummy: libc::c_int = 0;
        // SAFETY: the fd is open for the whole call and `dummy` is a valid c_int the
        // ioctl may write.
        unsafe { wdioc_keepalive(self.file.as_raw_fd(), &mut dummy) }.map(|_| ())
    }

    /// Magic close: `V`, then close, so a clean halt is never raced by a reset.
    pub fn disarm(&mut self) {
        let _ = self.file.write_all(b"V");
    }
}

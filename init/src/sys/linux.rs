//! `LinuxSys`: the boot's `Sys` trait carried out with real system calls.
//!
//! A thin mapping onto the other `sys` modules and the logger; it holds no state and makes
//! no decisions.

use crate::boot::Sys;
use crate::log::{self, Level};
use crate::mountplan::Mount;
use crate::sys::{clock, fs, kmod, net, power, signals};
use nix::errno::Errno;

/// The real system.
#[derive(Debug, Default)]
pub struct LinuxSys;

impl Sys for LinuxSys {
    fn block_signals(&mut self) -> Result<(), Errno> {
        signals::block_all()
    }

    fn log(&mut self, level: Level, msg: &str) {
        log::log(level, msg);
    }

    fn set_verbose(&mut self, on: bool) {
        log::set_verbose(on);
    }

    fn use_consoles(&mut self, names: &[String]) {
        log::use_consoles(names);
        log::mark_clock();
    }

    fn read_file(&mut self, path: &str) -> Result<String, Errno> {
        fs::read_to_string(path)
    }

    fn write_file(&mut self, path: &str, text: &str) -> Result<(), Errno> {
        fs::write_existing(path, text)
    }

    fn create_file(&mut self, path: &str, text: &str) -> Result<(), Errno> {
        fs::create(path, text)
    }

    fn exists(&mut self, path: &str) -> bool {
        fs::exists(path)
    }

    fn mkdir(&mut self, path: &str, mode: u32) -> Result<(), Errno> {
        fs::mkdir(path, mode)
    }

    fn mount(&mut self, m: &Mount) -> Result<(), Errno> {
        fs::mount(m.source, m.target, m.fstype, m.flags, m.data)
    }

    fn remount_tmpfs(&mut self, target: &str, flags: u64, data: &str) -> Result<(), Errno> {
        let remount = crate::mountplan::REMOUNT;
        fs::mount("tmpfs", target, "tmpfs", flags | remount, data)
    }

    fn mknod(&mut self, path: &str, major: u64, minor: u64, mode: u32) -> Result<(), Errno> {
        fs::mknod_char(path, major, minor, mode)
    }

    fn symlink(&mut self, target: &str, link: &str) -> Result<(), Errno> {
        fs::symlink(target, link)
    }

    fn kernel_release(&mut self) -> Result<String, Errno> {
        kmod::kernel_release()
    }

    fn load_module(&mut self, path: &str) -> Result<(), Errno> {
        kmod::load(path)
    }

    fn set_hostname(&mut self, name: &str) -> Result<(), Errno> {
        nix::unistd::sethostname(name)
    }

    fn realtime(&mut self) -> Result<i64, Errno> {
        clock::realtime_secs()
    }

    fn set_realtime(&mut self, secs: i64) -> Result<(), Errno> {
        clock::set_realtime_secs(secs)
    }

    fn loopback_up(&mut self) -> Result<(), Errno> {
        net::set_up("lo")
    }

    fn disable_cad(&mut self) -> Result<(), Errno> {
        power::disable_cad()
    }
}

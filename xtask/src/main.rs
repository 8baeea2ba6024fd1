//! `cargo xtask`: builds keel's image and kernel, boots it under QEMU, runs every test
//! and the benchmarks. Not shipped; runs on the developer's (Debian) machine.
//!
//! Each subcommand is a module with `pub(crate) fn run(args: Vec<String>) -> Result<()>`
//! that parses its own arguments.
#![allow(clippy::disallowed_methods)] // xtask is a host tool: it may wait on its children.

mod bench;
mod boot;
mod busybox;
mod cache;
mod debsrc;
mod dhclient;
mod elf;
mod fuzz;
mod image;
mod kernel;
mod prereq;
mod sshd;
mod test;
mod util;

use anyhow::Result;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  image [--ssh-key FILE]...   build keel and target/keel/initramfs.cpio(.gz) + manifest.txt
  kernel [--src DIR] [--initramfs FILE] [--check]
                              build target/keel/bzImage, the kernel with the initramfs inside
  sshd [--without-openssl]    build keel's static sshd from Debian's openssh source (cached)
  busybox [--fresh]           build keel's static busybox from Debian's source with the
                              applets of configs/busybox.config (cached)
  dhclient [--fresh]          build keel's static dhclient from Debian's isc-dhcp source
                              (the client only; cached)
  boot [-- KERNEL_ARGS...]    boot the image under QEMU, serial console on this terminal
  test [--no-vm|--fuzz-only]
                              run every test: unit, integration, fuzz harnesses and VM
  fuzz [TARGET|PROJECT]... [--seconds N]
                              run the libFuzzer targets of every fuzz project (docs/fuzzing.md)
  bench [--runs N] [--json PATH]
                              keel against a shell-script init, runsv and s6 (docs/performance.md)

Run `cargo xtask <command> --help` for a command's options.";

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || matches!(args[0].as_str(), "-h" | "--help" | "help") {
        println!("{USAGE}");
        return;
    }
    let cmd = args.remove(0);
    let result: Result<()> = match cmd.as_str() {
        "image" => image::run(args),
        "kernel" => kernel::run(args),
        "boot" => boot::run(args),
        "test" => test::run(args),
        "fuzz" => fuzz::run(args),
        "bench" => bench::run(args),
        "sshd" => sshd::run(args),
        "busybox" => busybox::run(args),
        "dhclient" => dhclient::run(args),
        other => {
            eprintln!("xtask: unknown command {other:?}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("xtask {cmd}: error: {e:#}");
        std::process::exit(1);
    }
}

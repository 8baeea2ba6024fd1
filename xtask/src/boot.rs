//! `cargo xtask boot`: builds the image and boots it under QEMU with the serial console on
//! this terminal, for a person to use: the single image `target/keel/bzImage` by default,
//! the Debian kernel with the separate initramfs with `--modular`.
//!
//! The QEMU command line comes from the VM harness (`keel_tests::qemu::Spec`), so a manual
//! boot has the same devices as the VM tests. This module only parses options, picks the
//! port and the accelerator, and execs QEMU; it never edits the image.

use crate::prereq::{self, need};
use anyhow::{Context, Result, bail};
use keel_tests::artefacts::{self, Kind};
use keel_tests::qemu::{self, Accel, GUEST_SSH_PORT, Serial, Spec};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::Duration;

const USAGE: &str = "\
usage: cargo xtask boot [--modular] [--kernel FILE] [--initrd FILE|none] [--no-build]
                        [-- KERNEL_ARGS...]

Builds the image and the single-image kernel (cargo xtask image, cargo xtask kernel) and
boots target/keel/bzImage, the initramfs built in, under QEMU with the serial console on
this terminal. Quit with Ctrl-A X; Ctrl-A C switches to the QEMU monitor.

  --modular         boot the Debian kernel /boot/vmlinuz-$(cat target/keel/kernel.release)
                    with target/keel/initramfs.cpio.gz as the initrd, loading modules
                    (builds only the image; also KEEL_VM_KERNEL=modular)
  --kernel FILE     boot this kernel instead (also $KEEL_KERNEL); no kernel build
  --initrd FILE     initrd (also $KEEL_INITRD; default: none for the single image,
                    initramfs.cpio.gz with --modular); `none` for no initrd
  --no-build        boot what is already built
  -- ARGS...        extra kernel arguments, e.g. `-- ip=dhcp keel.debug`

Host port 127.0.0.1:2222 (or a free one if taken) is forwarded to the guest's 2222.";

/// The host port a person expects for ssh.
const PREFERRED_PORT: u16 = 2222;

/// What the command line asked for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Opts {
    modular: bool,
    kernel: Option<PathBuf>,
    /// `None`: the default; `Some(None)`: no initrd; `Some(Some(f))`: this file.
    initrd: Option<Option<PathBuf>>,
    no_build: bool,
    append: Vec<String>,
    help: bool,
}

fn parse(args: Vec<String>) -> Result<Opts> {
    let mut o = Opts::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--" => {
                o.append.extend(it.by_ref());
            }
            "--kernel" => {
                let f = it.next().context("--kernel needs a file")?;
                o.kernel = Some(PathBuf::from(f));
            }
            "--initrd" => {
                let f = it.next().context("--initrd needs a file or `none`")?;
                o.initrd = Some((f != "none").then(|| PathBuf::from(f)));
            }
            "--no-build" => o.no_build = true,
            "--modular" => o.modular = true,
            "-h" | "--help" => o.help = true,
            other => bail!("unknown option {other:?} (kernel arguments go after `--`)\n\n{USAGE}"),
        }
    }
    Ok(o)
}

pub(crate) fn run(args: Vec<String>) -> Result<()> {
    let opts = parse(args)?;
    if opts.help {
        println!("{USAGE}");
        return Ok(());
    }
    prereq::ensure(&[need("/usr/bin/qemu-system-x86_64", "qemu-system-x86")])?;
    let kind = if opts.modular {
        Kind::Modular
    } else {
        Kind::from_env()?
    };
    let own_kernel = opts.kernel.is_some() || std::env::var_os("KEEL_KERNEL").is_some();
    if !opts.no_build {
        crate::image::run(vec![])?;
        if kind == Kind::Single && !own_kernel {
            crate::kernel::run(Vec::new())?;
        }
    }
    let kernel = match opts.kernel {
        Some(k) => k,
        None => artefacts::kernel(kind)?,
    };
    let initrd = opts.initrd.unwrap_or_else(|| artefacts::initrd(kind));
    artefacts::Artefacts {
        kernel: kernel.clone(),
        initrd: initrd.clone(),
    }
    .check()?;

    let port = if qemu::port_is_free(PREFERRED_PORT) {
        PREFERRED_PORT
    } else {
        let p = qemu::free_port().context("cannot find a free TCP port on 127.0.0.1")?;
        eprintln!(
            "xtask boot: 127.0.0.1:{PREFERRED_PORT} is in use (another VM?); forwarding 127.0.0.1:{p} instead"
        );
        p
    };
    let accel = if qemu::probe_kvm(&kernel, Duration::from_secs(15)) {
        Accel::Kvm
    } else {
        Accel::Tcg
    };
    let mut spec = Spec::new(kernel, port);
    spec.accel = accel;
    spec.initrd = initrd;
    spec.append = opts.append;
    spec.serial = Serial::Interactive;

    eprintln!(
        "xtask boot: {}",
        match (kind, own_kernel) {
            (_, true) => "the kernel given with --kernel or KEEL_KERNEL",
            (Kind::Single, false) =>
                "the single image (initramfs built in; --modular for the Debian kernel)",
            (Kind::Modular, false) =>
                "the modular path: the Debian kernel with the separate initramfs",
        }
    );
    eprintln!("xtask boot: {}", spec.shown());
    eprintln!(
        "xtask boot: accelerator {} ({})",
        if accel == Accel::Kvm { "kvm" } else { "tcg" },
        if accel == Accel::Kvm {
            "a probe booted the kernel under KVM"
        } else {
            "no working KVM here, software emulation: the single image reaches keel in about 6 s and sshd in about 7 s, the modular Debian kernel reaches keel in about 15 s"
        }
    );
    eprintln!("xtask boot: serial console follows; quit with Ctrl-A X (Ctrl-A C: QEMU monitor)");
    eprintln!(
        "xtask boot: ssh (once sshd runs; key from `cargo xtask image --ssh-key FILE`): ssh -p {port} root@127.0.0.1  (guest port {GUEST_SSH_PORT})"
    );
    let err = spec.command().exec();
    Err(err).with_context(|| {
        format!(
            "cannot run {}: apt-get install qemu-system-x86",
            spec.qemu.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn options_and_kernel_args() {
        let o = parse(args(&[
            "--no-build",
            "--kernel",
            "k",
            "--",
            "ip=dhcp",
            "--no-build",
        ]))
        .unwrap();
        assert!(o.no_build);
        assert_eq!(o.kernel, Some(PathBuf::from("k")));
        assert_eq!(o.initrd, None);
        assert_eq!(
            o.append,
            ["ip=dhcp", "--no-build"],
            "everything after -- is the kernel's"
        );
    }

    #[test]
    fn modular_is_a_flag_and_single_the_default() {
        assert!(!parse(args(&[])).unwrap().modular);
        let o = parse(args(&["--modular", "--no-build"])).unwrap();
        assert!(o.modular && o.no_build);
    }

    #[test]
    fn initrd_none_means_built_in() {
        assert_eq!(
            parse(args(&["--initrd", "none"])).unwrap().initrd,
            Some(None)
        );
        assert_eq!(
            parse(args(&["--initrd", "x.gz"])).unwrap().initrd,
            Some(Some(PathBuf::from("x.gz")))
        );
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(
            parse(args(&["ip=dhcp"]))
                .unwrap_err()
                .to_string()
                .contains("after `--`")
        );
        assert!(parse(args(&["--kernel"])).is_err());
    }
}

//! Installs what a subcommand needs on a Debian machine: as root with apt-get, otherwise
//! it prints the exact command to run and stops.

use crate::util::{have, run};
use anyhow::{Result, bail};
use std::process::Command;

/// A thing we need: a file or program that shows it is there, and the Debian package.
pub(crate) struct Need {
    pub probe: &'static str,
    pub package: &'static str,
}

pub(crate) const fn need(probe: &'static str, package: &'static str) -> Need {
    Need { probe, package }
}

/// Whether xtask runs as root (the effective uid).
pub(crate) fn is_root() -> bool {
    // The effective uid, read from /proc so xtask needs no libc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Makes sure every `Need` is met, installing the missing packages when root.
pub(crate) fn ensure(needs: &[Need]) -> Result<()> {
    let mut missing: Vec<&str> = needs
        .iter()
        .filter(|n| !have(n.probe))
        .map(|n| n.package)
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() {
        bail!(
            "missing Debian packages: {list}\n  run: sudo apt-get update && sudo apt-get install -y {list}\n  then run this command again"
        );
    }
    eprintln!("xtask: installing {list} (apt-get)");
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    Ok(())
}

/// The Rust target keel is built for.
pub(crate) const MUSL: &str = "x86_64-unknown-linux-musl";

/// Makes sure the musl target is installed for the current toolchain.
pub(crate) fn ensure_musl_target() -> Result<()> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match out {
        Ok(o)
            if String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == MUSL) =>
        {
            Ok(())
        }
        Ok(_) => {
            eprintln!("xtask: installing the Rust target {MUSL} (rustup)");
            run(Command::new("rustup").args(["target", "add", MUSL]))
        }
        Err(_) => {
            bail!("rustup not found; install the {MUSL} target for your toolchain and run again")
        }
    }
}

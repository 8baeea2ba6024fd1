//! The bench baseline: keel's image with keel taken out and a busybox shell script as
//! /init (`baseline/init.sh`), so both appliances carry the same busybox, sshd, dhclient,
//! nft, libraries, kernel modules and /etc.
//!
//! It reads the `initramfs.cpio` that `cargo xtask image` wrote back into an image
//! `Tree`, swaps /init, drops keel's links and config, and adds the module list, the
//! dhclient hook and the nftables ruleset keel would load. It writes only under
//! `target/keel/bench/` and never changes keel's own artefacts.
//!
//! For the single image, whose initramfs is built into the kernel, it also writes an
//! overlay: only the files that differ (/init, /etc/bench, the power links), which the
//! kernel unpacks over keel's built-in initramfs. keel's own files stay there, unused.

use crate::image::Tree;
use anyhow::{Context, Result, bail};
use keel::modules::ModDb;
use keel_tests::artefacts::Kind as KernelKind;
use newc::Kind;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The baseline's /init.
const INIT: &str = include_str!("baseline/init.sh");

/// Debian's ssh-keygen, which the baseline's /init runs.
const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";

/// Its dhclient hook.
const DHCLIENT_SCRIPT: &str = include_str!("baseline/dhclient-script.sh");

/// What keel's image has that the baseline must not: keel itself and its config.
const KEEL_ONLY: &[&str] = &[
    "init",
    "sbin/keel",
    "sbin/keelctl",
    "sbin/dhcp-hook",
    "sbin/poweroff",
    "sbin/reboot",
    "sbin/halt",
    "etc/keel/appliance.toml",
];

/// The baseline's archives.
#[derive(Debug, Clone)]
pub(crate) struct Baseline {
    pub cpio: PathBuf,
    pub gz: PathBuf,
    /// The files that differ from keel's image, to unpack over the single image's.
    pub overlay: PathBuf,
    /// How many modules its /init loads.
    pub modules: usize,
}

/// Builds the baseline from keel's `image_cpio` into `out`, to boot on `kernel`: only the
/// modular kernel has modules to load.
pub(crate) fn build(
    image_cpio: &Path,
    release: &str,
    out: &Path,
    kernel: KernelKind,
) -> Result<Baseline> {
    let data = std::fs::read(image_cpio).with_context(|| {
        format!(
            "cannot read {}: run `cargo xtask image` first",
            image_cpio.display()
        )
    })?;
    let (entries, mtime) = read_cpio(&data)
        .with_context(|| format!("{} is not a newc cpio archive", image_cpio.display()))?;
    let mut tree = Tree::default();
    for (path, perm, kind) in entries {
        tree.insert(&path, perm, kind)?;
    }

    let config_text = match tree.entries.get("etc/keel/appliance.toml") {
        Some((_, Kind::File(d))) => String::from_utf8_lossy(d).into_owned(),
        _ => bail!(
            "{} has no /etc/keel/appliance.toml: rebuild it with `cargo xtask image`",
            image_cpio.display()
        ),
    };
    let config = supervisor::config::parse(&config_text, "/etc/keel/appliance.toml")
        .map_err(|d| anyhow::anyhow!("the image's appliance config does not parse: {d:?}"))?;

    let modules = match kernel {
        KernelKind::Modular => module_list(&tree, release, &config.modules.load)?,
        KernelKind::Single => Vec::new(),
    };
    let ruleset = netcfg::firewall::render(&config.firewall);

    for path in KEEL_ONLY {
        tree.entries.remove(*path);
    }
    // What the baseline adds or replaces; also the whole overlay for the single image.
    let mut own = Tree::default();
    for name in ["poweroff", "reboot", "halt"] {
        own.insert(
            &format!("sbin/{name}"),
            0o777,
            Kind::Symlink("/bin/busybox".into()),
        )?;
    }
    own.insert("init", 0o755, Kind::File(INIT.as_bytes().to_vec()))?;
    own.insert(
        "etc/bench/dhclient-script",
        0o755,
        Kind::File(DHCLIENT_SCRIPT.as_bytes().to_vec()),
    )?;
    own.insert(
        "etc/bench/ruleset.nft",
        0o644,
        Kind::File(ruleset.into_bytes()),
    )?;
    // keel's image no longer has ssh-keygen (keel makes its host keys itself); the seeds'
    // way makes its key with Debian's, so the baseline brings it and its libraries.
    let keygen = PathBuf::from(SSH_KEYGEN);
    own.add_host(&keygen, "the baseline's /init")?;
    for lib in crate::elf::closure_by_user(std::slice::from_ref(&keygen))?.keys() {
        own.add_host(lib, "ssh-keygen")?;
    }
    let list: String = modules.iter().map(|m| format!("{m}\n")).collect();
    own.insert("etc/bench/modules", 0o644, Kind::File(list.into_bytes()))?;
    for (path, (perm, kind)) in &own.entries {
        if !matches!(kind, Kind::Dir) || !tree.entries.contains_key(path) {
            tree.entries.insert(path.clone(), (*perm, kind.clone()));
        }
    }

    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let archive = tree.write_cpio(mtime)?;
    let cpio = out.join("baseline.cpio");
    let gz = out.join("baseline.cpio.gz");
    let overlay = out.join("baseline-overlay.cpio");
    std::fs::write(&cpio, &archive).with_context(|| format!("cannot write {}", cpio.display()))?;
    std::fs::write(&overlay, own.write_cpio(mtime)?)
        .with_context(|| format!("cannot write {}", overlay.display()))?;
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(&archive)?;
    std::fs::write(&gz, enc.finish()?).with_context(|| format!("cannot write {}", gz.display()))?;
    Ok(Baseline {
        cpio,
        gz,
        overlay,
        modules: modules.len(),
    })
}

/// The module files to insmod, in load order, relative to /lib/modules/<release>/, from
/// the image's own modules.dep and softdeps (what keel plans from).
fn module_list(tree: &Tree, release: &str, load: &[String]) -> Result<Vec<String>> {
    let file = |name: &str| -> String {
        match tree.entries.get(&format!("lib/modules/{release}/{name}")) {
            Some((_, Kind::File(d))) => String::from_utf8_lossy(d).into_owned(),
            _ => String::new(),
        }
    };
    let dep = file("modules.dep");
    if dep.is_empty() {
        bail!(
            "the image has no lib/modules/{release}/modules.dep: rebuild it with `cargo xtask image`"
        );
    }
    let db = ModDb::parse(
        &dep,
        &file("modules.softdep"),
        &file("modules.alias"),
        &file("modules.builtin"),
    );
    Ok(db.plan(load).load.into_iter().map(|m| m.path).collect())
}

/// One archive entry: relative path, permission bits, what it is.
pub(crate) use newc::Entry;

/// Reads a newc archive: (relative path, permission bits, entry) in archive order, and
/// the mtime of its first entry.
pub(crate) fn read_cpio(data: &[u8]) -> Result<(Vec<Entry>, u32)> {
    Ok(newc::read(data)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_round_trips_through_the_image_writer() {
        let mut t = Tree::default();
        t.dir(".", 0o755).expect("root");
        t.insert("bin/busybox", 0o755, Kind::File(b"\x7fELF!".to_vec()))
            .expect("file");
        t.insert("bin/sh", 0o777, Kind::Symlink("busybox".into()))
            .expect("link");
        t.insert("dev/console", 0o600, Kind::CharDev { major: 5, minor: 1 })
            .expect("dev");
        let bytes = t.write_cpio(1234).expect("write");
        let (entries, mtime) = read_cpio(&bytes).expect("read");
        assert_eq!(mtime, 1234);
        let back: Vec<Entry> = t
            .entries
            .iter()
            .map(|(p, (perm, k))| (p.clone(), *perm, k.clone()))
            .collect();
        assert_eq!(entries, back);
        assert!(read_cpio(&bytes[..bytes.len() - 20]).is_err());
    }

    #[test]
    fn init_script_prints_both_markers_and_never_exits() {
        assert!(INIT.starts_with("#!/bin/sh\n"));
        assert!(INIT.contains("echo \"bench-baseline: init started\" > /dev/kmsg"));
        assert!(INIT.contains("echo \"bench-baseline: sshd ready\" > /dev/kmsg"));
        // The bench probes the banner only after this line (see guest.rs).
        assert!(INIT.contains("echo \"bench-baseline: network up\" > /dev/kmsg"));
        let last = INIT.trim_end().lines().last().unwrap_or_default();
        assert_eq!(last, "done", "PID 1 must end in its endless loop");
    }
}

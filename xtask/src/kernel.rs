//! `cargo xtask kernel`: builds the single-image kernel, `target/keel/bzImage`, a minimal
//! guest kernel with keel's initramfs embedded (issue 8).
//!
//! The recipe: Debian's linux-source-6.1 (or `--src DIR`), `make tinyconfig`, then
//! `kernel/configs/kvm_guest.config` and our fragments `configs/kernel/*.config` merged in
//! name order with `scripts/kconfig/merge_config.sh`, then `make olddefconfig`. Every option
//! a fragment sets is then checked in the final `.config`, because merge_config silently drops
//! options whose dependencies are missing.
//!
//! The source is unpacked and built out of tree (`O=`) in a cache outside the clone
//! (`$KEEL_CACHE/kernel/`, default `~/.cache/keel/kernel/`), one build directory per source
//! version and fragment hash, so a second clone or a rebuild reuses the objects. The initramfs
//! is copied into the build directory only when its bytes changed, so make relinks only then.
//! The build is reproducible: timestamp, user, host and build number are fixed.
//!
//! Rooms: `kernel/kconfig.rs` (the fragments, the merged config and its check),
//! `kernel/make.rs` (make with progress and a log), `crate::cache` (the cache directory and
//! its lock); this file holds the command, the source, the build directories and the sizes.
//!
//! This module must not write anywhere in the clone but `target/keel/bzImage`,
//! `target/keel/kernel.config` and `target/keel/kernel-build.log`, and must not build the
//! initramfs itself (that is `cargo xtask image`).

mod kconfig;
mod make;

use crate::cache::{cache_dir, lock_cache};
use crate::prereq::{self, need};
use crate::util::{
    copy_atomic, file_len, hex, out_dir, project_root, source_date_epoch, write_atomic,
};
use anyhow::{Context, Result, bail};
use kconfig::{configure, fragment_hash, read_fragments, wanted_options};
use make::{make_bzimage, mmss};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const USAGE: &str = "\
usage: cargo xtask kernel [--src DIR] [--initramfs FILE] [--check] [-j N] [-v]

Builds target/keel/bzImage: Debian's linux-source-6.1 (or DIR), `make tinyconfig`,
kernel/configs/kvm_guest.config and configs/kernel/*.config, with the initramfs
(default target/keel/initramfs.cpio, from `cargo xtask image`) embedded.

  --src DIR         build this kernel source tree instead of linux-source-6.1
  --initramfs FILE  embed this cpio archive instead of target/keel/initramfs.cpio
  --check           only make the merged config and check every option the fragments set
  -j N              parallel make jobs (default: the number of CPUs)
  -v                show every line of make's output, not a summary

The build is cached in $KEEL_CACHE/kernel (default ~/.cache/keel/kernel), keyed by the
source version and a hash of the fragments. The build timestamp comes from
SOURCE_DATE_EPOCH, or else from the last commit.";

/// The Debian package holding the default source tarball.
const DEB_SOURCE: &str = "linux-source-6.1";
const DEB_TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";
/// The top directory inside the tarball.
const DEB_TOPDIR: &str = "linux-source-6.1";
/// How many build directories the cache keeps (the most recently built).
const KEEP_BUILDS: usize = 3;

struct Opts {
    src: Option<PathBuf>,
    initramfs: Option<PathBuf>,
    check: bool,
    jobs: usize,
    verbose: bool,
}

fn parse_args(args: Vec<String>) -> Result<Option<Opts>> {
    let mut opts = Opts {
        src: None,
        initramfs: None,
        check: false,
        jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
        verbose: false,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "--src" => opts.src = Some(it.next().context("--src needs a directory")?.into()),
            "--initramfs" => {
                opts.initramfs = Some(it.next().context("--initramfs needs a file")?.into());
            }
            "--check" => opts.check = true,
            "-v" | "--verbose" => opts.verbose = true,
            "-j" | "--jobs" => {
                let n = it.next().context("-j needs a number")?;
                opts.jobs = n
                    .parse()
                    .ok()
                    .filter(|&n: &usize| n > 0)
                    .with_context(|| format!("-j {n:?}: give a positive number of jobs"))?;
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    Ok(Some(opts))
}

pub(crate) fn run(args: Vec<String>) -> Result<()> {
    let Some(opts) = parse_args(args)? else {
        return Ok(());
    };
    let started = Instant::now();
    ensure_prereqs(opts.src.is_none())?;

    let fragments = read_fragments(&project_root().join("configs").join("kernel"))?;
    let wanted = wanted_options(&fragments);
    let cache = cache_dir()?.join("kernel");
    let lock = lock_cache(&cache)?;
    let source = resolve_source(&opts, &cache)?;
    let key = format!("{}-{}", source.key, fragment_hash(&fragments));
    phase(&format!(
        "source {} ({}), {} fragments, {} options checked",
        source.version,
        source.tree.display(),
        fragments.len(),
        wanted.len()
    ));

    if opts.check {
        // A check needs the lock only to unpack the source: it works in its own directory,
        // so it does not wait for a build.
        drop(lock);
        let scratch = cache.join(format!("check-{}", std::process::id()));
        if scratch.exists() {
            fs::remove_dir_all(&scratch)
                .with_context(|| format!("cannot remove {}", scratch.display()))?;
        }
        fs::create_dir_all(&scratch)?;
        let config = scratch.join(".config");
        let result = configure(
            &source.tree,
            &scratch,
            &config,
            &fragments,
            Path::new("/dev/null"),
        );
        let _ = fs::remove_dir_all(&scratch);
        result?;
        phase(&format!(
            "config ok: all {} options from configs/kernel/ are in the merged config",
            wanted.len()
        ));
        return Ok(());
    }

    let initramfs = opts
        .initramfs
        .clone()
        .unwrap_or_else(|| out_dir().join("initramfs.cpio"));
    if !initramfs.is_file() {
        bail!(
            "initramfs {} not found: run `cargo xtask image` first, or pass --initramfs FILE",
            initramfs.display()
        );
    }

    let builds = cache.join("build");
    let build = builds.join(&key);
    if !build.join(".config").exists() {
        seed_build_dir(&builds, &source.key, &build)?;
    }
    fs::create_dir_all(&build).with_context(|| format!("cannot create {}", build.display()))?;
    let embedded = build.join("keel-initramfs.cpio");
    let archive =
        fs::read(&initramfs).with_context(|| format!("cannot read {}", initramfs.display()))?;
    let (archive, dropped) = drop_modules(&archive)
        .with_context(|| format!("{}: not a valid newc cpio archive", initramfs.display()))?;
    if dropped.entries > 0 {
        phase(&format!(
            "initramfs: left out {} entries ({}) under /lib/modules: this kernel has no \
             loadable modules",
            dropped.entries,
            human(dropped.bytes)
        ));
    }
    let changed = write_if_changed(&archive, &embedded)?;
    phase(&format!(
        "initramfs {} ({} embedded){}",
        initramfs.display(),
        human(archive.len() as u64),
        if changed { ", changed" } else { ", unchanged" }
    ));

    // The config depends only on the source and the fragments, which name the build
    // directory, and on the embedded path, which is inside it: once checked, it is reused.
    // A `--src` tree can change under the same name, so its config is always made again.
    let live = build.join(".config");
    let stamp = build.join(".keel-config-ok");
    let checked =
        opts.src.is_none() && live.exists() && fs::read_to_string(&stamp).is_ok_and(|k| k == key);
    if checked {
        phase("config: unchanged since it was checked");
    } else {
        // The config is made beside the live one and replaces it only when it differs, so
        // an unchanged config leaves every object up to date.
        let fresh = build.join(".config.keel-new");
        configure(&source.tree, &build, &fresh, &fragments, &embedded)?;
        if fs::read(&live).ok() != Some(fs::read(&fresh)?) {
            fs::rename(&fresh, &live)?;
            phase("config changed: make rebuilds what depends on it");
        } else {
            fs::remove_file(&fresh)?;
        }
        fs::write(&stamp, &key)?;
    }

    let log_path = out_dir().join("kernel-build.log");
    fs::create_dir_all(out_dir())?;
    let epoch = source_date_epoch()?;
    make_bzimage(&source.tree, &build, &opts, epoch, &log_path)?;

    let image = build.join("arch/x86/boot/bzImage");
    let dest = out_dir().join("bzImage");
    copy_atomic(&image, &dest)?;
    copy_atomic(&live, &out_dir().join("kernel.config"))?;
    File::create(build.join(".keel-built"))?.write_all(key.as_bytes())?;
    prune_builds(&builds, &build);

    report_sizes(&dest, &embedded, &build)?;
    phase(&format!(
        "done in {}: {}",
        mmss(started.elapsed()),
        dest.display()
    ));
    Ok(())
}

fn phase(msg: &str) {
    eprintln!("kernel: {msg}");
}

fn ensure_prereqs(debian_source: bool) -> Result<()> {
    let mut needs = vec![
        need("make", "make"),
        need("gcc", "build-essential"),
        need("bc", "bc"),
        need("bison", "bison"),
        need("flex", "flex"),
        need("/usr/include/libelf.h", "libelf-dev"),
        need("/usr/include/openssl/ssl.h", "libssl-dev"),
        need("xz", "xz-utils"),
        // CONFIG_KERNEL_ZSTD (configs/kernel/10-base.config) compresses the payload with it.
        need("zstd", "zstd"),
        need("cpio", "cpio"),
        need("perl", "perl"),
    ];
    if debian_source {
        needs.push(need(DEB_TARBALL, DEB_SOURCE));
    }
    prereq::ensure(&needs)
}

struct Source {
    tree: PathBuf,
    /// Shown to the user: the kernel version and where it came from.
    version: String,
    /// The first part of the build directory's name.
    key: String,
}

fn resolve_source(opts: &Opts, cache: &Path) -> Result<Source> {
    if let Some(src) = &opts.src {
        let tree = src
            .canonicalize()
            .with_context(|| format!("--src {}: no such directory", src.display()))?;
        if !tree.join("Makefile").is_file() || !tree.join("Kconfig").is_file() {
            bail!(
                "--src {}: not a kernel source tree (no Makefile and Kconfig)",
                tree.display()
            );
        }
        let version = capture(
            Command::new("make")
                .arg("-s")
                .arg("-C")
                .arg(&tree)
                .arg("kernelversion"),
        )?;
        let path_hash = &hex(&Sha256::digest(tree.as_os_str().as_encoded_bytes()))[..8];
        return Ok(Source {
            key: format!("{version}-src{path_hash}"),
            version,
            tree,
        });
    }
    let deb = capture(Command::new("dpkg-query").args(["-W", "-f=${Version}", DEB_SOURCE]))
        .with_context(|| format!("cannot read the version of the Debian package {DEB_SOURCE}"))?;
    let unpacked = cache.join("src").join(&deb);
    let tree = unpacked.join(DEB_TOPDIR);
    if !unpacked.join(".keel-unpacked").exists() {
        let partial = cache.join("src").join(format!("{deb}.partial"));
        if partial.exists() {
            fs::remove_dir_all(&partial)?;
        }
        fs::create_dir_all(&partial)?;
        phase(&format!(
            "unpacking {DEB_TARBALL} into {}",
            unpacked.display()
        ));
        crate::util::run(
            Command::new("tar")
                .arg("-xJf")
                .arg(DEB_TARBALL)
                .arg("-C")
                .arg(&partial),
        )?;
        if unpacked.exists() {
            fs::remove_dir_all(&unpacked)?;
        }
        fs::rename(&partial, &unpacked)?;
        File::create(unpacked.join(".keel-unpacked"))?;
    }
    Ok(Source {
        version: format!("{DEB_SOURCE} {deb}"),
        key: deb,
        tree,
    })
}

/// Runs a command and returns its trimmed standard output.
fn capture(cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start {shown}"))?;
    if !out.status.success() {
        bail!("{shown} failed: {}", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// unchanged file keeps its mtime, so make does not relink.
fn write_if_changed(bytes: &[u8], to: &Path) -> Result<bool> {
    if fs::read(to).ok().as_deref() == Some(bytes) {
        return Ok(false);
    }
    write_atomic(to, bytes)?;
    Ok(true)
}

/// Copies a newc cpio archive without the entries under `lib/modules/`: the modular boot's
/// modules are dead weight in a kernel built without module support. Entries are copied
/// byte for byte, so the result is as reproducible as the input. A regular file with more
/// than one link is kept, because newc stores the data of a hard-linked set only once.
pub(crate) fn drop_modules(archive: &[u8]) -> Result<(Vec<u8>, newc::Dropped)> {
    Ok(newc::filter(archive, |r| {
        let path = r.path();
        let under_modules = path == b"lib/modules" || path.starts_with(b"lib/modules/");
        !under_modules || (r.file_type() == newc::S_IFREG && r.nlink > 1)
    })?)
}

/// A new build directory starts as a copy of the newest build of the same source, so a
/// fragment change recompiles only what it touches.
fn seed_build_dir(builds: &Path, source_key: &str, build: &Path) -> Result<()> {
    let prefix = format!("{source_key}-");
    let newest = newest_builds(builds).into_iter().find(|(dir, _)| {
        dir.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
            && dir != build
    });
    let Some((seed, _)) = newest else {
        phase(&format!(
            "new build directory {} (a first build takes ~10 minutes with -j2)",
            build.display()
        ));
        return Ok(());
    };
    phase(&format!(
        "new build directory {}, seeded from {}",
        build.display(),
        seed.display()
    ));
    if build.exists() {
        fs::remove_dir_all(build)?;
    }
    crate::util::run(
        Command::new("cp")
            .arg("-a")
            .arg("--reflink=auto")
            .arg(&seed)
            .arg(build),
    )?;
    let _ = fs::remove_file(build.join(".keel-built"));
    let _ = fs::remove_file(build.join(".keel-config-ok"));
    Ok(())
}

/// Finished build directories, newest first.
fn newest_builds(builds: &Path) -> Vec<(PathBuf, std::time::SystemTime)> {
    let mut found: Vec<_> = fs::read_dir(builds)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let dir = e.path();
            let when = fs::metadata(dir.join(".keel-built"))
                .ok()?
                .modified()
                .ok()?;
            Some((dir, when))
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.1));
    found
}

/// Keeps the `KEEP_BUILDS` newest build directories (and always `current`).
fn prune_builds(builds: &Path, current: &Path) {
    for (dir, _) in newest_builds(builds).into_iter().skip(KEEP_BUILDS) {
        if dir != current {
            phase(&format!("removing old build directory {}", dir.display()));
            let _ = fs::remove_dir_all(&dir);
        }
    }
}

fn human(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // Sizes of files, shown with one decimal.
    let b = bytes as f64;
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", b / f64::from(1u32 << 20))
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

/// Prints the sizes: the bzImage, and the initramfs inside it (raw, and compressed as the
/// kernel payload is, `zstd -22 --ultra` (kbuild's ZSTD22), to split the total into kernel
/// and initramfs).
fn report_sizes(image: &Path, cpio: &Path, build: &Path) -> Result<()> {
    let total = file_len(image).unwrap_or(0);
    let raw = file_len(cpio).unwrap_or(0);
    let compressed = Command::new("zstd")
        .args(["-22", "--ultra", "-q", "-c"])
        .arg(cpio)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| o.stdout.len() as u64);
    let vmlinux = file_len(&build.join("vmlinux")).unwrap_or(0);
    let digest = hex(&Sha256::digest(fs::read(image)?));
    match compressed {
        Some(c) => phase(&format!(
            "sizes: bzImage {} = kernel ~{} + initramfs ~{} (zstd; {} raw); vmlinux {}",
            human(total),
            human(total.saturating_sub(c)),
            human(c),
            human(raw),
            human(vmlinux)
        )),
        None => phase(&format!(
            "sizes: bzImage {}, initramfs {} raw; vmlinux {}",
            human(total),
            human(raw),
            human(vmlinux)
        )),
    }
    phase(&format!("sha256 {digest}  {}", image.display()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::kconfig::*;
    use super::make::*;
    use super::*;

    fn frag(name: &str, text: &str) -> Fragment {
        Fragment {
            name: name.to_owned(),
            text: text.to_owned(),
        }
    }

    #[test]
    fn parses_fragment_lines() {
        assert_eq!(
            parse_line("CONFIG_64BIT=y"),
            Some(("CONFIG_64BIT", Want::Set("y".into())))
        );
        assert_eq!(
            parse_line("CONFIG_LOCALVERSION=\"-keel\""),
            Some(("CONFIG_LOCALVERSION", Want::Set("\"-keel\"".into())))
        );
        assert_eq!(
            parse_line("# CONFIG_MODULES is not set"),
            Some(("CONFIG_MODULES", Want::Unset))
        );
        assert_eq!(parse_line("# a comment = with an equals sign"), None);
        assert_eq!(parse_line("# Xen PVH guests is not set"), None);
        assert_eq!(parse_line(""), None);
        assert_eq!(parse_line("FOO=y"), None);
    }

    #[test]
    fn later_fragment_wins() {
        let w = wanted_options(&[
            frag("10-a.config", "CONFIG_A=y\nCONFIG_B=y\n"),
            frag("20-b.config", "# CONFIG_B is not set\n"),
        ]);
        assert_eq!(w["CONFIG_A"].want, Want::Set("y".into()));
        assert_eq!(w["CONFIG_B"].want, Want::Unset);
        assert_eq!(w["CONFIG_B"].origin, "configs/kernel/20-b.config:1");
    }

    #[test]
    fn reports_options_that_did_not_stick() {
        let w = wanted_options(&[frag(
            "10-a.config",
            "CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=y\n# CONFIG_D is not set\n# CONFIG_E is not set\nCONFIG_F=\"x\"\n",
        )]);
        let config = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_D=y\nCONFIG_F=\"y\"\n";
        let missing = missing_options(&w, config);
        let names: Vec<&str> = missing
            .iter()
            .map(|m| m.split(['=', ' ']).next().unwrap_or(""))
            .collect();
        assert_eq!(names, ["CONFIG_B", "CONFIG_C", "CONFIG_D", "CONFIG_F"]);
        assert!(missing[0].contains("10-a.config:2"), "{}", missing[0]);
        assert!(missing[0].contains("is not set"), "{}", missing[0]);
        assert!(missing[1].contains("absent"), "{}", missing[1]);
        assert!(missing[2].contains("CONFIG_D off"), "{}", missing[2]);
        assert!(
            missing_options(&w, "CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=y\nCONFIG_F=\"x\"\n").is_empty()
        );
    }

    #[test]
    fn our_fragments_parse_and_hash_stably() {
        let dir = project_root().join("configs").join("kernel");
        let fragments = read_fragments(&dir).unwrap();
        let wanted = wanted_options(&fragments);
        for must in [
            "CONFIG_64BIT",
            "CONFIG_SERIAL_8250_CONSOLE",
            "CONFIG_XEN_PVH",
            "CONFIG_NFT_CT",
        ] {
            assert!(
                wanted.contains_key(must),
                "{must} missing from configs/kernel"
            );
        }
        assert_eq!(wanted["CONFIG_MODULES"].want, Want::Unset);
        assert_eq!(wanted["CONFIG_IP_PNP"].want, Want::Unset);
        let h = fragment_hash(&fragments);
        assert_eq!(h.len(), 12);
        assert_eq!(h, fragment_hash(&fragments));
        let mut changed = read_fragments(&dir).unwrap();
        changed[0].text.push_str("CONFIG_X=y\n");
        assert_ne!(h, fragment_hash(&changed));
    }

    #[test]
    fn formats_timestamps_like_date() {
        assert_eq!(format_utc(0), "Thu Jan  1 00:00:00 UTC 1970");
        // `date -u -d @1795315025` on this machine.
        assert_eq!(format_utc(1_795_315_025), "Sun Nov 22 02:37:05 UTC 2026");
        assert_eq!(format_utc(951_782_400), "Tue Feb 29 00:00:00 UTC 2000");
    }

    /// One newc entry, as `cpio -H newc` writes it.
    fn newc(name: &str, mode: u32, nlink: u32, data: &[u8]) -> Vec<u8> {
        let mut e = format!(
            "070701{:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            1,
            0,
            0,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        )
        .into_bytes();
        e.extend_from_slice(name.as_bytes());
        e.push(0);
        while e.len() % 4 != 0 {
            e.push(0);
        }
        e.extend_from_slice(data);
        while e.len() % 4 != 0 {
            e.push(0);
        }
        e
    }

    #[test]
    fn drops_modules_from_the_archive() {
        let init = newc("init", 0o100_755, 1, b"#!/bin/sh\n");
        let keep_dir = newc("lib", 0o040_755, 2, b"");
        let modules = [
            newc("lib/modules", 0o040_755, 2, b""),
            newc(
                "lib/modules/6.1.0/kernel/ext4.ko",
                0o100_644,
                1,
                b"elf data!",
            ),
            newc("./lib/modules/6.1.0/modules.dep", 0o100_644, 1, b"x"),
        ];
        let linked = newc("lib/modules/hard", 0o100_644, 2, b"shared");
        let near = newc("lib/modulesX", 0o100_644, 1, b"kept");
        let trailer = newc("TRAILER!!!", 0, 1, b"");
        let mut archive = Vec::new();
        for e in [
            &init,
            &keep_dir,
            &modules[0],
            &modules[1],
            &modules[2],
            &linked,
            &near,
            &trailer,
        ] {
            archive.extend_from_slice(e);
        }
        archive.extend_from_slice(&[0; 512]);
        let (out, dropped) = drop_modules(&archive).unwrap();
        assert_eq!(
            dropped,
            newc::Dropped {
                entries: 3,
                bytes: 10
            }
        );
        let mut expected = Vec::new();
        for e in [&init, &keep_dir, &linked, &near, &trailer] {
            expected.extend_from_slice(e);
        }
        expected.extend_from_slice(&[0; 512]);
        assert_eq!(out, expected);
        // Something else, or a cut archive, is an error, not a silent copy.
        assert!(drop_modules(b"not a cpio archive at all, but long enough to hold a newc header of 110 bytes.................................").is_err());
        assert!(drop_modules(&archive[..200]).is_err());
    }

    #[test]
    fn parses_arguments() {
        let o = parse_args(vec!["--check".into(), "-j".into(), "3".into()])
            .unwrap()
            .unwrap();
        assert!(o.check);
        assert_eq!(o.jobs, 3);
        assert!(parse_args(vec!["-j".into(), "0".into()]).is_err());
        assert!(parse_args(vec!["--bogus".into()]).is_err());
        assert!(parse_args(vec!["--src".into()]).is_err());
    }
}

//! `cargo xtask busybox`: keel's busybox, a static x86_64 musl build of Debian 12's
//! `busybox` source package (Debian's patches applied) with only the applets the appliance
//! uses (`configs/busybox.config`), instead of Debian's busybox-static with all 270.
//!
//! The recipe, as `cargo xtask sshd`'s (`debsrc`):
//! 1. apt's source mechanism with a private state in `$KEEL_CACHE/busybox/apt/`: the newest
//!    `busybox` source the archive serves, Debian's patches applied by dpkg-source.
//! 2. `make allnoconfig`, then the options of `configs/busybox.config` over it, then
//!    `make oldconfig`; the build fails when kconfig dropped one of them (an unmet
//!    dependency or a wrong name).
//! 3. `make busybox` with musl-gcc, the kernel's `linux/`, `asm/` and `asm-generic/` headers
//!    (musl-gcc sees none; `ip`, `nc` and `udhcpc` need them), Debian's version string in the
//!    banner; busybox's own flags (-Os, --gc-sections) and CONFIG_STATIC; then `strip`.
//! 4. Checks: no PT_INTERP and no DT_NEEDED, and `busybox --list-full` has every applet of
//!    `NEEDED`.
//!
//! The result lands in `$KEEL_CACHE/busybox/out/<key>/busybox` with the resolved `.config`
//! and `info.txt`. The key hashes the source version, the toolchain, the make arguments and
//! the config, so a Debian security update or a config change is a rebuild and anything else
//! a cache hit. Reproducible: relative paths, `-ffile-prefix-map`, KCONFIG_NOTIMESTAMP, the
//! banner names the Debian version instead of the build time, SOURCE_DATE_EPOCH from the
//! Debian changelog, stripped.

use crate::cache::{cache_dir, lock_cache};
use crate::debsrc::{self, apt, build_cmd, changelog_epoch, jobs, kernel_headers, key_of, prune};
use crate::prereq::{self, need};
use crate::util::{file_len, hex, out_dir, project_root};
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const USAGE: &str = "\
usage: cargo xtask busybox [--fresh] [-v]

Builds keel's busybox, static for x86_64 musl, from Debian 12's busybox source package with
the applets of configs/busybox.config, and prints its path. Cached in $KEEL_CACHE/busybox
(default ~/.cache/keel/busybox), keyed by the source version, the toolchain, the flags and
the config: a second build is a cache hit.

  --fresh   build again from the source even when cached, and check the result has the
            same sha256 as the cached one
  -v        show the commands run";

/// Bump when the recipe changes in a way the flags and the config do not show.
const RECIPE: &str = "keel-busybox-1";

/// The config fragment over `allnoconfig`, relative to the project root.
pub(crate) const CONFIG: &str = "configs/busybox.config";

/// The directory in the source tree that holds the kernel headers (relative, so no build
/// path gets into the flags).
const HEADERS: &str = "keel-kernel-headers";

/// Every applet something in the image runs, with who runs it: keel, its services and
/// scripts, the VM tests (inside the guest, on the console or over ssh) and the bench's floor.
/// The config turns on more (the console user's toolset); these are the ones that must be
/// there. The image build and the host test check the built busybox has each.
pub(crate) const NEEDED: &[(&str, &str)] = &[
    // keel (init/src): the console and emergency shells, services' `/bin/sh -c`, getty.
    (
        "sh",
        "keel: console and emergency shells, `/bin/sh -c` services",
    ),
    ("getty", "keel getty: the console login prompt"),
    ("login", "getty, when root has a password"),
    (
        "sulogin",
        "keel: the emergency shell when root has a password",
    ),
    ("passwd", "root's password on the state disk (docs/ssh.md)"),
    ("udhcpc", "keel network with keel.dhcp=udhcpc"),
    // The VM test harness wraps every console command (tests/src/console.rs).
    ("printf", "the VM harness's command markers"),
    ("sed", "the VM harness's output markers"),
    ("tail", "the VM harness (tail -c1)"),
    ("wc", "the VM harness (wc -l), the bench"),
    ("rm", "the VM harness"),
    // The VM tests' own commands (tests/tests) and the bench's (xtask/src/bench).
    ("echo", "VM tests, bench"),
    ("cat", "VM tests, bench"),
    ("ls", "VM tests (vm_firewall, vm_cgroup)"),
    ("readlink", "vm_boot (readlink -f)"),
    ("grep", "VM tests, bench"),
    ("awk", "vm_boot, vm_cgroup, vm_lifecycle"),
    ("cut", "vm_boot, vm_ssh"),
    ("sort", "vm_boot"),
    ("tr", "vm_boot, vm_network"),
    ("df", "vm_boot"),
    ("date", "vm_boot (the clock floor)"),
    ("dmesg", "VM tests and the bench over ssh"),
    (
        "ip",
        "vm_network, vm_firewall, the harness's ssh setup, the floor",
    ),
    ("hostname", "vm_network"),
    ("kill", "vm_network, vm_supervisor, bench"),
    ("pidof", "vm_network, vm_firewall, bench"),
    ("netstat", "vm_firewall (netstat -ltn)"),
    ("nc", "vm_firewall (nc -ll -p PORT -e)"),
    ("sleep", "VM tests' services, bench"),
    ("setsid", "vm_cgroup"),
    ("dd", "vm_cgroup"),
    ("touch", "vm_cgroup"),
    ("test", "vm_cgroup, the harness's ssh setup"),
    ("mkdir", "the harness's ssh setup, the floor"),
    ("id", "vm_ssh (id -un)"),
    ("tty", "vm_ssh"),
    ("true", "VM tests"),
    ("false", "the harness test"),
    // The bench's floor (xtask/src/bench/baseline/floor.sh) runs on this busybox.
    ("mount", "the bench's floor"),
    ("uname", "the bench's floor"),
    ("insmod", "the bench's floor (modular kernel)"),
    ("ifconfig", "the bench's floor"),
    ("route", "the bench's floor"),
    ("chmod", "the bench's floor"),
];

/// What `cargo xtask busybox` gives: the binary and what it was built from.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    pub busybox: PathBuf,
    /// `busybox 1:1.35.0-4+deb12u1`.
    pub source: String,
}

pub(crate) use debsrc::Opts;

fn phase(msg: &str) {
    debsrc::phase("busybox", msg);
}

fn logged(cmd: &mut Command, what: &str, log: &Path, verbose: bool) -> Result<()> {
    debsrc::step::logged("busybox", cmd, what, log, verbose)
}

pub(crate) fn run(args: Vec<String>) -> Result<()> {
    let Some(opts) = debsrc::parse_opts(args, USAGE)? else {
        return Ok(());
    };
    let built = build(&opts)?;
    eprintln!(
        "busybox: {} (from {})",
        built.busybox.display(),
        built.source
    );
    println!("{}", built.busybox.display());
    Ok(())
}

fn ensure_prereqs() -> Result<()> {
    prereq::ensure(&[
        need("musl-gcc", "musl-tools"),
        need("dpkg-source", "dpkg-dev"),
        need("make", "make"),
        need("gcc", "build-essential"),
        need("strip", "binutils"),
        need("/usr/include/linux/rtnetlink.h", "linux-libc-dev"),
    ])
}

/// make's arguments for the build in the unpacked tree (`tree` is only mapped away).
fn make_args(tree: &Path, version: &str) -> Vec<String> {
    vec![
        "CC=musl-gcc".into(),
        "HOSTCC=gcc".into(),
        format!(
            "EXTRA_CFLAGS=-isystem {HEADERS} -ffile-prefix-map={}=.",
            tree.display()
        ),
        // Debian's version.patch: the banner says `BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1)`
        // instead of the build's date and time.
        format!("BB_EXTRA_VERSION=Debian {version}"),
        "KCONFIG_NOTIMESTAMP=1".into(),
        "SKIP_STRIP=y".into(),
        "V=1".into(),
    ]
}

/// The versions of everything that turns the source into the binary.
fn toolchain() -> Result<String> {
    debsrc::toolchain(&[("ld", "--version"), ("make", "--version")])
}

/// The `CONFIG_X=value` lines of a config fragment (comments and blank lines skipped).
fn fragment_options(text: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            bail!("{CONFIG}:{}: not a CONFIG_X=value line: {line:?}", n + 1);
        };
        if !key.starts_with("CONFIG_") || value.is_empty() {
            bail!("{CONFIG}:{}: not a CONFIG_X=value line: {line:?}", n + 1);
        }
        if out.insert(key.to_owned(), value.to_owned()).is_some() {
            bail!("{CONFIG}:{}: {key} is set twice", n + 1);
        }
    }
    if out.is_empty() {
        bail!("{CONFIG} sets no option");
    }
    Ok(out)
}

/// The key a `.config` line sets, `CONFIG_X=...` or `# CONFIG_X is not set`.
fn config_key(line: &str) -> Option<&str> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("# ") {
        return rest
            .strip_suffix(" is not set")
            .filter(|k| k.starts_with("CONFIG_"));
    }
    line.split_once('=')
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("CONFIG_"))
}

/// `dotconfig` (what `make allnoconfig` wrote) with every option of `fragment` set as the
/// fragment says; `make oldconfig` then settles what depends on them.
fn merge_config(dotconfig: &str, fragment: &BTreeMap<String, String>) -> String {
    let mut out: String = dotconfig
        .lines()
        .filter(|l| config_key(l).is_none_or(|k| !fragment.contains_key(k)))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str("# keel: configs/busybox.config\n");
    for (k, v) in fragment {
        out.push_str(&format!("{k}={v}\n"));
    }
    out
}

/// The options of `fragment` that the resolved `.config` does not set as asked.
fn dropped(dotconfig: &str, fragment: &BTreeMap<String, String>) -> Vec<String> {
    let got: BTreeMap<&str, &str> = dotconfig
        .lines()
        .filter_map(|l| l.trim().split_once('='))
        .filter(|(k, _)| k.starts_with("CONFIG_"))
        .collect();
    fragment
        .iter()
        .filter(|(k, v)| got.get(k.as_str()) != Some(&v.as_str()))
        .map(|(k, v)| match got.get(k.as_str()) {
            Some(g) => format!("{k}={v} (kconfig made it {g})"),
            None => {
                format!("{k}={v} (kconfig left it unset: a dependency is off, or no such option)")
            }
        })
        .collect()
}

/// `busybox --list-full`: applet paths relative to /, such as `bin/sh`, sorted.
pub(crate) fn applets(busybox: &Path) -> Result<Vec<String>> {
    let out = Command::new(busybox)
        .arg("--list-full")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {} --list-full", busybox.display()))?;
    if !out.status.success() {
        bail!("{} --list-full failed: {}", busybox.display(), out.status);
    }
    let text = String::from_utf8(out.stdout).context("busybox --list-full printed non-UTF-8")?;
    let mut list: Vec<String> = text
        .lines()
        .map(|l| l.trim().trim_start_matches('/').to_string())
        .filter(|l| !l.is_empty())
        .collect();
    list.sort();
    list.dedup();
    Ok(list)
}

/// The applets of `NEEDED` that `list` (from `applets`) lacks.
pub(crate) fn missing(list: &[String]) -> Vec<&'static str> {
    NEEDED
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !list.iter().any(|l| l.rsplit('/').next() == Some(*name)))
        .collect()
}

/// Builds keel's busybox, or takes it from the cache.
pub(crate) fn build(opts: &Opts) -> Result<Built> {
    let started = Instant::now();
    ensure_prereqs()?;
    let config_path = project_root().join(CONFIG);
    let config_text = fs::read_to_string(&config_path)
        .with_context(|| format!("cannot read {}", config_path.display()))?;
    let fragment = fragment_options(&config_text)?;
    let cache = cache_dir()?.join("busybox");
    let _lock = lock_cache(&cache)?;
    let apt = apt::Apt::setup(&cache.join("apt"), "busybox")?;
    apt.update_if_stale()?;
    let (version, dsc) = apt.fetch("busybox")?;
    let source = format!("busybox {version}");

    let placeholder = Path::new("/BUILD/busybox");
    let recipe = format!(
        "{RECIPE}\n{source}\n{}\nmake {}\nconfig\n{}",
        toolchain()?,
        make_args(placeholder, &version).join(" "),
        fragment
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect::<String>()
    );
    let key = key_of(&recipe);
    let out = cache.join("out").join(&key);
    let binary = out.join("busybox");
    let cached = binary.is_file();
    if cached && !opts.fresh {
        phase(&format!(
            "cached: {} ({source}; key {key})",
            binary.display()
        ));
        return Ok(Built {
            busybox: binary,
            source,
        });
    }

    phase(&format!(
        "building from {source} (key {key}; about a minute on 2 busy cores)"
    ));
    let logs = out_dir().join("busybox-build");
    fs::create_dir_all(&logs)?;
    let build = cache.join("build");
    if build.exists() {
        fs::remove_dir_all(&build)
            .with_context(|| format!("cannot remove the old {}", build.display()))?;
    }
    fs::create_dir_all(&build)?;
    let tree = debsrc::unpack("busybox", &dsc, &build.join("busybox"), &logs, opts.verbose)?;
    let epoch = changelog_epoch(&tree)?;
    kernel_headers(&tree.join(HEADERS))?;

    let t = Instant::now();
    let mut allno = build_cmd(&tree, epoch, &["make", "allnoconfig"]);
    allno.env("KCONFIG_NOTIMESTAMP", "1");
    logged(
        &mut allno,
        "make allnoconfig",
        &logs.join("busybox-allnoconfig.log"),
        opts.verbose,
    )?;
    let dotconfig = tree.join(".config");
    let base = fs::read_to_string(&dotconfig)?;
    fs::write(&dotconfig, merge_config(&base, &fragment))?;
    let mut old = build_cmd(&tree, epoch, &["make", "oldconfig"]);
    old.env("KCONFIG_NOTIMESTAMP", "1");
    logged(
        &mut old,
        &format!(
            "make oldconfig (the {} options of {CONFIG})",
            fragment.len()
        ),
        &logs.join("busybox-oldconfig.log"),
        opts.verbose,
    )?;
    let resolved = fs::read_to_string(&dotconfig)?;
    let lost = dropped(&resolved, &fragment);
    if !lost.is_empty() {
        bail!(
            "busybox's kconfig did not take {} option(s) of {CONFIG}: {}; the resolved config \
             is {}",
            lost.len(),
            lost.join("; "),
            dotconfig.display()
        );
    }
    let mut make = build_cmd(&tree, epoch, &["make", &jobs()]);
    make.args(make_args(&tree, &version)).arg("busybox");
    logged(
        &mut make,
        "make busybox",
        &logs.join("busybox-make.log"),
        opts.verbose,
    )?;
    let make_time = debsrc::step::mmss(t.elapsed());

    let (partial, stripped) = debsrc::strip_static(
        &cache,
        &key,
        "busybox",
        &tree.join("busybox_unstripped"),
        &logs.join("busybox-make.log"),
    )?;
    let list = applets(&stripped)?;
    let lacking = missing(&list);
    if !lacking.is_empty() {
        bail!(
            "the built busybox lacks applet(s) the image needs: {} (NEEDED in \
             xtask/src/busybox.rs; turn them on in {CONFIG})",
            lacking.join(", ")
        );
    }
    let digest = hex(&Sha256::digest(fs::read(&stripped)?));
    if cached {
        let old = hex(&Sha256::digest(fs::read(&binary)?));
        if old != digest {
            bail!(
                "not reproducible: this build of busybox has sha256 {digest}, the cached one \
                 {old} ({}); the build logs are in {}",
                binary.display(),
                logs.display()
            );
        }
        phase(&format!(
            "reproducible: the fresh build has the cached sha256 {digest}"
        ));
    }
    let size = file_len(&stripped).unwrap_or(0);
    fs::copy(&dotconfig, partial.join("config"))?;
    let info = format!(
        "{recipe}\nsha256 {digest}\nsize {size}\nbuilt in {} (make {make_time})\n{} applets: {}\n",
        debsrc::step::mmss(started.elapsed()),
        list.len(),
        list.join(" ")
    );
    fs::write(partial.join("info.txt"), info)?;
    if out.exists() {
        fs::remove_dir_all(&out)?;
    }
    fs::rename(&partial, &out)?;
    let _ = fs::remove_dir_all(&build);
    prune("busybox", &cache.join("out"), &out);
    phase(&format!(
        "built {} ({size} bytes, {} applets, sha256 {digest}) in {}",
        binary.display(),
        list.len(),
        debsrc::step::mmss(started.elapsed()),
    ));
    Ok(Built {
        busybox: binary,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_config_parses_and_asks_for_the_needed_groups() {
        let text = fs::read_to_string(project_root().join(CONFIG)).unwrap();
        let f = fragment_options(&text).unwrap();
        for want in [
            "CONFIG_STATIC",
            "CONFIG_FEATURE_INSTALLER",
            "CONFIG_ASH_JOB_CONTROL",
            "CONFIG_FEATURE_EDITING",
            "CONFIG_USE_BB_CRYPT",
            "CONFIG_USE_BB_CRYPT_SHA",
            "CONFIG_GETTY",
            "CONFIG_LOGIN",
            "CONFIG_SULOGIN",
            "CONFIG_UDHCPC",
        ] {
            assert_eq!(f.get(want).map(String::as_str), Some("y"), "{want}");
        }
        // Every needed applet has a reason, and none is listed twice.
        let mut names: Vec<&str> = NEEDED.iter().map(|(n, _)| *n).collect();
        assert!(NEEDED.iter().all(|(_, why)| !why.is_empty()));
        names.sort_unstable();
        let len = names.len();
        names.dedup();
        assert_eq!(names.len(), len, "an applet is listed twice in NEEDED");
    }

    #[test]
    fn a_bad_fragment_line_is_refused() {
        assert!(fragment_options("CONFIG_A=y\nCONFIG_A=y\n").is_err());
        assert!(fragment_options("A=y\n").is_err());
        assert!(fragment_options("CONFIG_A\n").is_err());
        assert!(fragment_options("# only a comment\n").is_err());
        let f = fragment_options("# c\n\nCONFIG_A=y\nCONFIG_B=\"x y\"\n").unwrap();
        assert_eq!(f["CONFIG_B"], "\"x y\"");
    }

    #[test]
    fn merge_sets_the_fragment_over_allnoconfig_and_dropped_options_are_found() {
        let base = "#\n# comment\nCONFIG_HAVE_DOT_CONFIG=y\n# CONFIG_ASH is not set\n\
                    CONFIG_PREFIX=\"./_install\"\n# CONFIG_LS is not set\n";
        let f = fragment_options("CONFIG_ASH=y\nCONFIG_PREFIX=\"/x\"\n").unwrap();
        let merged = merge_config(base, &f);
        assert!(!merged.contains("# CONFIG_ASH is not set"), "{merged}");
        assert!(!merged.contains("./_install"), "{merged}");
        assert!(merged.contains("\nCONFIG_ASH=y\n") && merged.contains("CONFIG_PREFIX=\"/x\""));
        assert!(merged.contains("# CONFIG_LS is not set") && merged.contains("HAVE_DOT_CONFIG=y"));
        assert!(dropped(&merged, &f).is_empty());
        // kconfig turned ASH off again (say, a dependency was off): the build must stop.
        let resolved = merged.replace("CONFIG_ASH=y", "# CONFIG_ASH is not set");
        let lost = dropped(&resolved, &f);
        assert_eq!(lost.len(), 1);
        assert!(lost[0].starts_with("CONFIG_ASH=y"), "{lost:?}");
    }

    #[test]
    fn missing_applets_are_named() {
        let all: Vec<String> = NEEDED.iter().map(|(n, _)| format!("bin/{n}")).collect();
        assert!(missing(&all).is_empty());
        let without_nc: Vec<String> = all.iter().filter(|a| *a != "bin/nc").cloned().collect();
        assert_eq!(missing(&without_nc), ["nc"]);
    }

    #[test]
    fn make_names_no_build_path_but_the_mapped_one() {
        let args = make_args(Path::new("/B/busybox"), "1:1.35.0-4+deb12u1").join(" ");
        assert!(args.contains("-ffile-prefix-map=/B/busybox=."), "{args}");
        assert!(args.contains("-isystem keel-kernel-headers"), "{args}");
        assert!(
            args.contains("BB_EXTRA_VERSION=Debian 1:1.35.0-4+deb12u1"),
            "{args}"
        );
        assert!(args.contains("CC=musl-gcc"));
    }
}

/// Host tests of the built busybox (`cargo test -p xtask busybox::host -- --ignored`, run
/// by `cargo xtask test`): it builds keel's busybox or takes it from the cache, then checks it
/// is static, has every applet the image needs, checks `$6$` hashes as `openssl passwd -6`
/// makes them, and its shell runs what the VM harness sends.
#[cfg(test)]
mod host {
    use super::*;

    fn built() -> Built {
        build(&Opts::default()).expect("cargo xtask busybox")
    }

    #[test]
    #[ignore = "builds keel's busybox (a minute when not cached); run by cargo xtask test"]
    fn busybox_is_static_and_has_every_applet_the_image_needs() {
        let b = built();
        let info = crate::elf::read(&b.busybox).unwrap();
        assert!(info.interp.is_none(), "PT_INTERP {:?}", info.interp);
        assert!(info.needed.is_empty(), "DT_NEEDED {:?}", info.needed);
        let list = applets(&b.busybox).unwrap();
        assert_eq!(missing(&list), Vec::<&str>::new(), "applets: {list:?}");
        assert!(list.iter().any(|l| l == "bin/sh"), "{list:?}");
        // What keel provides itself is not busybox's.
        for keel in ["sbin/init", "sbin/poweroff", "sbin/reboot", "sbin/halt"] {
            assert!(!list.iter().any(|l| l == keel), "{keel} in {list:?}");
        }
        let banner = Command::new(&b.busybox).output().unwrap();
        let banner = String::from_utf8_lossy(&banner.stdout);
        assert!(
            banner.starts_with("BusyBox v1.35.0 (Debian 1:1.35.0-"),
            "{banner}"
        );
    }

    #[test]
    #[ignore = "builds keel's busybox (a minute when not cached); run by cargo xtask test"]
    fn busybox_crypt_gives_the_sha512_hashes_that_openssl_gives() {
        let b = built();
        for (password, salt) in [("correct horse", "abcdefgh"), ("keel-test", "Zz09./xY")] {
            let ours = Command::new(&b.busybox)
                .args(["mkpasswd", "-m", "sha512", password, salt])
                .output()
                .unwrap();
            let theirs = Command::new("openssl")
                .args(["passwd", "-6", "-salt", salt, password])
                .output()
                .expect("openssl (apt-get install openssl)");
            assert!(ours.status.success(), "{ours:?}");
            let ours = String::from_utf8_lossy(&ours.stdout).trim().to_owned();
            assert!(ours.starts_with(&format!("$6${salt}$")), "{ours}");
            assert_eq!(ours, String::from_utf8_lossy(&theirs.stdout).trim());
        }
    }

    #[test]
    #[ignore = "builds keel's busybox (a minute when not cached); run by cargo xtask test"]
    fn busybox_sh_runs_what_the_vm_harness_sends() {
        let b = built();
        let dir = std::env::temp_dir().join(format!("keel-busybox-sh-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // Links as the image has them, so the shell finds the applets by name.
        for applet in applets(&b.busybox).unwrap() {
            let name = applet.rsplit('/').next().unwrap().to_owned();
            std::os::unix::fs::symlink(&b.busybox, dir.join(name)).unwrap();
        }
        let cmd = format!(
            "{}; echo $((6*7)) | awk '{{print $1 + 0}}'; sleep 0.1; \
             printf 'b\\na\\n' | sort | tr '\\n' ' '; echo; cut -d: -f1 /etc/passwd | grep -c '^root$'",
            keel_tests::console::wrap_command("echo hi; false", 7)
        );
        let out = Command::new(dir.join("sh"))
            .args(["-c", &cmd])
            .env("PATH", &dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            keel_tests::console::extract_marked(&text, 7).map(|(r, o, _)| (r, o)),
            Some((1, "hi\n".to_owned())),
            "{text}"
        );
        assert!(text.ends_with("42\na b \n1\n"), "{text:?}");
        let _ = fs::remove_dir_all(&dir);
    }
}

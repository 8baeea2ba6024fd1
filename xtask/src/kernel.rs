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
//! This module must not write anywhere in the clone but `target/keel/bzImage`,
//! `target/keel/kernel.config` and `target/keel/kernel-build.log`, and must not build the
//! initramfs itself (that is `cargo xtask image`).

use crate::prereq::{self, need};
use crate::util::{
    copy_atomic, file_len, hex, out_dir, project_root, source_date_epoch, write_atomic,
};
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// Bumped when the recipe changes in a way the fragment hash does not see.
const RECIPE: &str = "keel-kernel-recipe-1";
/// The Debian package holding the default source tarball.
const DEB_SOURCE: &str = "linux-source-6.1";
const DEB_TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";
/// The top directory inside the tarball.
const DEB_TOPDIR: &str = "linux-source-6.1";
/// How many build directories the cache keeps (the most recently built).
const KEEP_BUILDS: usize = 3;
/// Progress: a line every this many compiled files, and at least this often.
const PROGRESS_EVERY: usize = 150;
const HEARTBEAT: Duration = Duration::from_secs(30);
/// Lines of the log shown when make fails.
const TAIL_ON_FAILURE: usize = 60;
/// A guess at the number of compiled files for a first build, refined after each full build.
const DEFAULT_CC_COUNT: usize = 1600;

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
        need("cpio", "cpio"),
        need("perl", "perl"),
    ];
    if debian_source {
        needs.push(need(DEB_TARBALL, DEB_SOURCE));
    }
    prereq::ensure(&needs)
}

/// `$KEEL_CACHE`, else `$XDG_CACHE_HOME/keel`, else `~/.cache/keel`.
fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("KEEL_CACHE").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("keel"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("keel")),
        None => bail!("neither KEEL_CACHE nor HOME is set: set KEEL_CACHE to a cache directory"),
    }
}

/// One kernel build at a time per cache: two clones sharing it wait for each other. The
/// lock is a directory holding the owner's pid (std's file locks need a newer Rust than the
/// workspace's MSRV); a lock whose owner is gone is taken over.
struct CacheLock(PathBuf);

impl Drop for CacheLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn lock_cache(cache: &Path) -> Result<CacheLock> {
    fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
    let path = cache.join("lock");
    let mut told = false;
    loop {
        match fs::create_dir(&path) {
            Ok(()) => {
                fs::write(path.join("pid"), std::process::id().to_string())?;
                return Ok(CacheLock(path));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = fs::read_to_string(path.join("pid")).unwrap_or_default();
                let owner = owner.trim();
                let alive = !owner.is_empty() && Path::new("/proc").join(owner).exists();
                if !alive && lock_is_stale(&path) {
                    phase(&format!(
                        "taking over a stale lock {} (pid {owner:?} is gone)",
                        path.display()
                    ));
                    let _ = fs::remove_dir_all(&path);
                    continue;
                }
                if !told {
                    phase(&format!(
                        "waiting for another kernel build (pid {owner}) to finish: lock {}",
                        path.display()
                    ));
                    told = true;
                }
                std::thread::sleep(Duration::from_secs(2));
            }
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
        }
    }
}

/// A lock without a live owner is stale once it is a few seconds old (its owner may be
/// between creating the directory and writing its pid).
fn lock_is_stale(path: &Path) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > Duration::from_secs(5))
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

/// A fragment file of `configs/kernel/`.
struct Fragment {
    name: String,
    text: String,
}

fn read_fragments(dir: &Path) -> Result<Vec<Fragment>> {
    let mut fragments = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "config") {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            fragments.push(Fragment { name, text });
        }
    }
    if fragments.is_empty() {
        bail!("no *.config fragments in {}", dir.display());
    }
    fragments.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(fragments)
}

/// What a fragment asks of one option.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Want {
    /// `CONFIG_X=value`: the line must be in the final .config.
    Set(String),
    /// `# CONFIG_X is not set`: the option must not be set.
    Unset,
}

/// Where an option was asked for, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    want: Want,
    origin: String,
}

/// Parses one line of a config fragment or a .config.
fn parse_line(line: &str) -> Option<(&str, Want)> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("# ") {
        let name = rest.strip_suffix(" is not set")?;
        return name.starts_with("CONFIG_").then_some((name, Want::Unset));
    }
    let (name, value) = line.split_once('=')?;
    name.starts_with("CONFIG_")
        .then(|| (name, Want::Set(value.to_owned())))
}

/// Every option the fragments ask for; a later fragment overrides an earlier one, as in
/// merge_config.
fn wanted_options(fragments: &[Fragment]) -> BTreeMap<String, Wanted> {
    let mut wanted = BTreeMap::new();
    for f in fragments {
        for (n, line) in f.text.lines().enumerate() {
            if let Some((name, want)) = parse_line(line) {
                let origin = format!("configs/kernel/{}:{}", f.name, n + 1);
                wanted.insert(name.to_owned(), Wanted { want, origin });
            }
        }
    }
    wanted
}

/// The options of `wanted` that the final `config` does not have, each with a message.
fn missing_options(wanted: &BTreeMap<String, Wanted>, config: &str) -> Vec<String> {
    let have: BTreeMap<&str, Want> = config.lines().filter_map(parse_line).collect();
    let mut missing = Vec::new();
    for (name, w) in wanted {
        let got = have.get(name.as_str());
        let ok = match (&w.want, got) {
            (Want::Set(v), Some(Want::Set(g))) => v == g,
            (Want::Set(_), _) => false,
            (Want::Unset, Some(Want::Set(_))) => false,
            (Want::Unset, _) => true,
        };
        if !ok {
            let asked = match &w.want {
                Want::Set(v) => format!("{name}={v}"),
                Want::Unset => format!("{name} off"),
            };
            let found = match got {
                Some(Want::Set(g)) => format!("{name}={g}"),
                Some(Want::Unset) => "is not set".to_owned(),
                None => "absent (unknown option, or its menu is off)".to_owned(),
            };
            missing.push(format!(
                "{asked} ({}): the final config has {found}",
                w.origin
            ));
        }
    }
    missing
}

/// A short hash of the recipe and the fragments, naming the build directory.
fn fragment_hash(fragments: &[Fragment]) -> String {
    let mut h = Sha256::new();
    h.update(RECIPE.as_bytes());
    for f in fragments {
        h.update(f.name.as_bytes());
        h.update([0]);
        h.update(f.text.as_bytes());
        h.update([0]);
    }
    hex(&h.finalize())[..12].to_owned()
}

/// Makes the merged config in `config` (a path inside `build`), then checks it.
fn configure(
    tree: &Path,
    build: &Path,
    config: &Path,
    fragments: &[Fragment],
    initramfs: &Path,
) -> Result<()> {
    phase("config: tinyconfig + kvm_guest.config + configs/kernel/*.config, olddefconfig");
    let generated = build.join("keel-generated.config");
    fs::write(
        &generated,
        format!(
            "# Written by cargo xtask kernel: the embedded initramfs, owned by root.\n\
             CONFIG_INITRAMFS_SOURCE=\"{}\"\nCONFIG_INITRAMFS_ROOT_UID=0\nCONFIG_INITRAMFS_ROOT_GID=0\n",
            initramfs.display()
        ),
    )?;
    let log = build.join("keel-config.log");
    let quiet = |cmd: &mut Command| -> Result<()> {
        let out = File::options().create(true).append(true).open(&log)?;
        let shown = format!("{cmd:?}");
        let status = cmd
            .env("KCONFIG_CONFIG", config)
            .stdout(out.try_clone()?)
            .stderr(out)
            .status()
            .with_context(|| format!("cannot start {shown}"))?;
        if !status.success() {
            print_tail(&log);
            bail!("{shown} failed: {status}; full log: {}", log.display());
        }
        Ok(())
    };
    let _ = fs::remove_file(&log);
    let o = format!("O={}", build.display());
    quiet(
        Command::new("make")
            .arg("-C")
            .arg(tree)
            .arg(&o)
            .arg("tinyconfig"),
    )?;
    let mut merge = Command::new(tree.join("scripts/kconfig/merge_config.sh"));
    merge
        .current_dir(tree)
        .arg("-m")
        .arg("-O")
        .arg(build)
        .arg(config)
        .arg(tree.join("kernel/configs/kvm_guest.config"));
    let dir = project_root().join("configs").join("kernel");
    for f in fragments {
        merge.arg(dir.join(&f.name));
    }
    merge.arg(&generated);
    quiet(&mut merge)?;
    quiet(
        Command::new("make")
            .arg("-C")
            .arg(tree)
            .arg(&o)
            .arg("olddefconfig"),
    )?;

    let mut wanted = wanted_options(fragments);
    let generated_text = fs::read_to_string(&generated)?;
    for (n, line) in generated_text.lines().enumerate() {
        if let Some((name, want)) = parse_line(line) {
            let origin = format!("{}:{}", generated.display(), n + 1);
            wanted.insert(name.to_owned(), Wanted { want, origin });
        }
    }
    let text =
        fs::read_to_string(config).with_context(|| format!("cannot read {}", config.display()))?;
    let missing = missing_options(&wanted, &text);
    if !missing.is_empty() {
        bail!(
            "{} option(s) did not stick in {} (merge_config drops an option whose `depends on` \
             is not met: add the dependency to a fragment, or find it with \
             `grep -rn 'config NAME' {}`):\n  {}",
            missing.len(),
            config.display(),
            tree.display(),
            missing.join("\n  ")
        );
    }
    Ok(())
}

/// Writes `bytes` to `to` when they differ from what is there; says whether it did. An
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
fn drop_modules(archive: &[u8]) -> Result<(Vec<u8>, newc::Dropped)> {
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

/// Formats seconds since the epoch as `date -u` does: `Sun Nov 22 02:37:05 UTC 2026`.
fn format_utc(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // 1970-01-01 was a Thursday.
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let weekday = WEEKDAYS[days.rem_euclid(7) as usize];
    let month_name = MONTHS[(month - 1) as usize];
    format!(
        "{weekday} {month_name} {day:2} {:02}:{:02}:{:02} UTC {year}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn mmss(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

/// Runs `make bzImage`, its output condensed on stderr and complete in `log_path`.
fn make_bzimage(tree: &Path, build: &Path, opts: &Opts, epoch: i64, log_path: &Path) -> Result<()> {
    let timestamp = format_utc(epoch);
    phase(&format!(
        "make -j{} bzImage in {} (timestamp {timestamp:?}; log {})",
        opts.jobs,
        build.display(),
        log_path.display()
    ));
    let count_file = build.join(".keel-cc-count");
    let expected: usize = fs::read_to_string(&count_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_CC_COUNT);

    let mut cmd = Command::new("make");
    cmd.arg("-C")
        .arg(tree)
        .arg(format!("O={}", build.display()))
        .arg(format!("-j{}", opts.jobs))
        .arg("bzImage")
        .env("KBUILD_BUILD_TIMESTAMP", &timestamp)
        .env("KBUILD_BUILD_USER", "keel")
        .env("KBUILD_BUILD_HOST", "keel")
        .env("KBUILD_BUILD_VERSION", "1")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("cannot start make")?;
    // make's stdout and stderr arrive on one channel, in the order they are read.
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let mut readers = Vec::new();
    let out = child
        .stdout
        .take()
        .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
    let err = child
        .stderr
        .take()
        .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
    for stream in [out, err].into_iter().flatten() {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);

    let mut log =
        File::create(log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let started = Instant::now();
    let mut last_shown = Instant::now();
    let mut compiled = 0usize;
    let mut warnings = 0usize;
    for line in lines {
        writeln!(log, "{line}")?;
        if opts.verbose {
            eprintln!("{line}");
            continue;
        }
        let tag = line.split_whitespace().next().unwrap_or("");
        if tag == "CC" {
            compiled += 1;
        }
        if line.contains("warning:") {
            warnings += 1;
        }
        let milestone = matches!(
            tag,
            "LD" | "OBJCOPY" | "XZKERN" | "ZSTD22" | "GZIP" | "BUILD"
        ) && (line.contains("vmlinux")
            || line.contains("bzImage")
            || line.contains("setup.bin"))
            || line.starts_with("Kernel:")
            || line.contains("error:")
            || line.contains("Error ")
            || (tag == "CC" && compiled % PROGRESS_EVERY == 0)
            || last_shown.elapsed() >= HEARTBEAT;
        if milestone {
            let done = if compiled > 0 {
                format!(" {compiled}/~{} compiled,", expected.max(compiled))
            } else {
                String::new()
            };
            eprintln!(
                "kernel: [{}]{done} {}",
                mmss(started.elapsed()),
                line.trim()
            );
            last_shown = Instant::now();
        }
    }
    let status = child.wait().context("cannot wait for make")?;
    for r in readers {
        let _ = r.join();
    }
    drop(log);
    if !status.success() {
        print_tail(log_path);
        bail!(
            "make bzImage failed ({status}); the last {TAIL_ON_FAILURE} lines are above, the full log is {}",
            log_path.display()
        );
    }
    // A nearly full build tells how many files a full build compiles, for the next estimate.
    if compiled > expected / 2 {
        let _ = fs::write(&count_file, compiled.to_string());
    }
    phase(&format!(
        "make finished in {}: {compiled} files compiled, {warnings} warnings",
        mmss(started.elapsed())
    ));
    Ok(())
}

fn print_tail(log: &Path) {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(TAIL_ON_FAILURE);
    eprintln!(
        "---- last {} lines of {} ----",
        lines.len() - from,
        log.display()
    );
    for l in &lines[from..] {
        eprintln!("{l}");
    }
    eprintln!("----");
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

/// Prints the sizes: the bzImage, and the initramfs inside it (raw, and gzip -9 compressed
/// as the kernel payload is, to split the total into kernel and initramfs).
fn report_sizes(image: &Path, cpio: &Path, build: &Path) -> Result<()> {
    let total = file_len(image).unwrap_or(0);
    let raw = file_len(cpio).unwrap_or(0);
    let compressed = fs::read(cpio).ok().and_then(|data| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&data).ok()?;
        enc.finish().ok().map(|gz| gz.len() as u64)
    });
    let vmlinux = file_len(&build.join("vmlinux")).unwrap_or(0);
    let digest = hex(&Sha256::digest(fs::read(image)?));
    match compressed {
        Some(c) => phase(&format!(
            "sizes: bzImage {} = kernel ~{} + initramfs ~{} (gzip; {} raw); vmlinux {}",
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

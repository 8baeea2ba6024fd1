//! What keel's builds from Debian source packages share (`cargo xtask sshd`, `cargo xtask
//! busybox`, `cargo xtask dhclient`): their common options, apt's source mechanism with a private state (`apt`), long steps logged with
//! progress lines (`step`), `dpkg-source -x` with Debian's patches, SOURCE_DATE_EPOCH from
//! the Debian changelog, the kernel headers musl-gcc does not see, cache keys and pruning.

pub(crate) mod apt;
pub(crate) mod step;

use crate::util::hex;
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The options of a build that has no others (`cargo xtask busybox`, `cargo xtask dhclient`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Opts {
    /// Build again even when the cache has this recipe.
    pub fresh: bool,
    /// Show the build's own output as it runs.
    pub verbose: bool,
}

/// Parses `--fresh` and `-v`/`--verbose`; `None` after printing `usage` for `-h`/`--help`.
pub(crate) fn parse_opts(args: Vec<String>, usage: &str) -> Result<Option<Opts>> {
    let mut opts = Opts::default();
    for a in args {
        match a.as_str() {
            "--fresh" => opts.fresh = true,
            "-v" | "--verbose" => opts.verbose = true,
            "-h" | "--help" => {
                println!("{usage}");
                return Ok(None);
            }
            other => bail!("unknown argument {other:?}\n\n{usage}"),
        }
    }
    Ok(Some(opts))
}

/// The versions of everything that turns a source into its binary, for the cache key: gcc's,
/// the first line each of `tools` prints for its argument (`("ld", "--version")`), and the
/// installed musl-dev and linux-libc-dev packages.
pub(crate) fn toolchain(tools: &[(&str, &str)]) -> Result<String> {
    let first_line = |prog: &str, arg: &str| -> Result<String> {
        let out = Command::new(prog)
            .arg(arg)
            .stderr(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {prog} {arg}"))?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned())
    };
    let mut text = format!("gcc {}\n", first_line("gcc", "-dumpfullversion")?);
    for (prog, arg) in tools {
        text.push_str(&first_line(prog, arg)?);
        text.push('\n');
    }
    text.push_str(&format!(
        "musl-dev {}\nlinux-libc-dev {}",
        apt::installed("musl-dev")?,
        apt::installed("linux-libc-dev")?
    ));
    Ok(text)
}

/// A progress line of build `who`.
pub(crate) fn phase(who: &str, msg: &str) {
    eprintln!("{who}: {msg}");
}

/// How many builds of each kind the cache keeps (the most recently made).
const KEEP_BUILDS: usize = 3;

/// Removes all but the `KEEP_BUILDS` newest directories of `dir` (never `current`).
pub(crate) fn prune(who: &str, dir: &Path, current: &Path) {
    let mut found: Vec<(PathBuf, std::time::SystemTime)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            let when = e.metadata().ok()?.modified().ok()?;
            path.is_dir().then_some((path, when))
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.1));
    for (old, _) in found.into_iter().skip(KEEP_BUILDS) {
        if old != current {
            phase(who, &format!("removing the old build {}", old.display()));
            let _ = fs::remove_dir_all(&old);
        }
    }
}

/// The first 12 hex digits of the recipe's sha256.
pub(crate) fn key_of(recipe: &str) -> String {
    hex(&Sha256::digest(recipe.as_bytes()))[..12].to_owned()
}

/// `-jN` for make, N the machine's cores.
pub(crate) fn jobs() -> String {
    format!(
        "-j{}",
        std::thread::available_parallelism().map_or(2, |n| n.get())
    )
}

/// Fixed environment for configure and make.
pub(crate) fn env(cmd: &mut Command, epoch: i64) {
    cmd.env("LC_ALL", "C")
        .env("TZ", "UTC")
        .env("SOURCE_DATE_EPOCH", epoch.to_string());
}

/// One step of a source build: `nice -n 10 ARGS` in `tree`, with the build's environment.
pub(crate) fn build_cmd(tree: &Path, epoch: i64, args: &[&str]) -> Command {
    let mut cmd = Command::new("nice");
    cmd.args(["-n", "10"]).args(args).current_dir(tree);
    env(&mut cmd, epoch);
    cmd
}

/// `dpkg-source -x` of a .dsc (Debian's patches applied) into `into`, logged as build `who`.
pub(crate) fn unpack(
    who: &str,
    dsc: &Path,
    into: &Path,
    logs: &Path,
    verbose: bool,
) -> Result<PathBuf> {
    let name = dsc
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    step::logged(
        who,
        Command::new("dpkg-source")
            .arg("-x")
            .arg(dsc)
            .arg(into)
            .env("LC_ALL", "C"),
        &format!("{name}: dpkg-source -x (Debian's patches)"),
        &logs.join(format!(
            "{}-unpack.log",
            name.split('_').next().unwrap_or("src")
        )),
        verbose,
    )?;
    Ok(into.to_path_buf())
}

/// The date of the Debian changelog's top entry: the source's own timestamp.
pub(crate) fn changelog_epoch(tree: &Path) -> Result<i64> {
    let out = Command::new("dpkg-parsechangelog")
        .args(["-S", "Timestamp"])
        .current_dir(tree)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run dpkg-parsechangelog")?;
    let s = String::from_utf8_lossy(&out.stdout);
    s.trim().parse().with_context(|| {
        format!(
            "dpkg-parsechangelog -S Timestamp in {} printed {s:?}",
            tree.display()
        )
    })
}

/// `linux/`, `asm/` (x86_64) and `asm-generic/` from linux-libc-dev, and nothing of glibc.
pub(crate) fn kernel_headers(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir)?;
    for (from, to) in [
        ("/usr/include/linux", "linux"),
        ("/usr/include/asm-generic", "asm-generic"),
        ("/usr/include/x86_64-linux-gnu/asm", "asm"),
    ] {
        crate::util::run(Command::new("cp").arg("-rL").arg(from).arg(dir.join(to)))?;
    }
    Ok(())
}

/// A fresh `CACHE/out/KEY.partial` holding `built` stripped as `name`, which must be a
/// static executable (the link log `log` is named if not). Returns (partial, stripped).
pub fn strip_static(
    cache: &Path,
    key: &str,
    name: &str,
    built: &Path,
    log: &Path,
) -> Result<(PathBuf, PathBuf)> {
    let partial = cache.join("out").join(format!("{key}.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial)?;
    }
    fs::create_dir_all(&partial)?;
    let stripped = partial.join(name);
    crate::util::run(
        Command::new("strip")
            .arg("--strip-all")
            .arg("-o")
            .arg(&stripped)
            .arg(built),
    )?;
    if !crate::elf::is_static(&stripped)? {
        anyhow::bail!(
            "{} has PT_INTERP or DT_NEEDED: the link was not static (see {})",
            stripped.display(),
            log.display()
        );
    }
    Ok((partial, stripped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_keeps_the_newest_and_the_current() {
        let dir = std::env::temp_dir().join(format!("keel-debsrc-prune-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for (i, name) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            fs::create_dir_all(dir.join(name)).unwrap();
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1000 + i as u64);
            fs::File::open(dir.join(name))
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
        prune("test", &dir, &dir.join("a"));
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["a", "c", "d", "e"]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn keys_follow_the_recipe() {
        assert_eq!(key_of("a"), key_of("a"));
        assert_ne!(
            key_of("openssh 1:9.2p1-2+deb12u10"),
            key_of("openssh 1:9.2p1-2+deb12u11")
        );
        assert_eq!(key_of("x").len(), 12);
    }
}

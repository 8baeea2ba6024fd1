//! Small helpers shared by the subcommands.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (the directory holding the top Cargo.toml).
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `target/keel/`, where every artefact of the image build goes.
pub(crate) fn out_dir() -> PathBuf {
    project_root().join("target").join("keel")
}

/// Runs a command, inheriting stdio; fails with the command line when it fails.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed: {status}");
    }
    Ok(())
}

/// Is `prog` on PATH (or an existing path)?
pub(crate) fn have(prog: &str) -> bool {
    if prog.contains('/') {
        return Path::new(prog).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(prog).is_file()))
}

/// The time stamped into every artefact: SOURCE_DATE_EPOCH, else the last commit's time,
/// else 0 (with a word on stderr).
pub(crate) fn source_date_epoch() -> Result<i64> {
    if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
        return v
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds"));
    }
    let out = Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(project_root())
        .stderr(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let s = String::from_utf8_lossy(&o.stdout);
            s.trim()
                .parse()
                .with_context(|| format!("git log -1 --format=%ct printed {s:?}"))
        }
        _ => {
            eprintln!("xtask: no SOURCE_DATE_EPOCH and no git history; using time 0");
            Ok(0)
        }
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The size of the file at `path`, or None when it cannot be read.
pub(crate) fn file_len(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// A temporary name next to `path`; the pid keeps two builds running at once apart.
fn temp_beside(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    PathBuf::from(tmp)
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
/// Build artefacts only: no fsync (a crash loses a build, which is rebuilt); the atomic
/// store with fsync that a running appliance needs is sshkeys::store.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = temp_beside(path);
    std::fs::write(&tmp, data).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename to {}", path.display()))
}

/// Copies `from` to `to` through a temporary file and a rename.
pub(crate) fn copy_atomic(from: &Path, to: &Path) -> Result<()> {
    let tmp = temp_beside(to);
    std::fs::copy(from, &tmp)
        .with_context(|| format!("cannot copy {} to {}", from.display(), tmp.display()))?;
    std::fs::rename(&tmp, to).with_context(|| format!("cannot rename to {}", to.display()))?;
    Ok(())
}

//! The kernel config: our fragments read and hashed, what each asks of an option, the merged
//! `.config` made with merge_config.sh and olddefconfig, and every asked-for option checked
//! in it (merge_config silently drops options whose dependencies are missing).

use super::make::print_tail;
use super::phase;
use crate::util::{hex, project_root};
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::Path;
use std::process::Command;

/// Bumped when the recipe changes in a way the fragment hash does not see.
pub(super) const RECIPE: &str = "keel-kernel-recipe-1";

/// A fragment file of `configs/kernel/`.
pub(super) struct Fragment {
    pub(super) name: String,
    pub(super) text: String,
}

pub(super) fn read_fragments(dir: &Path) -> Result<Vec<Fragment>> {
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
pub(super) enum Want {
    /// `CONFIG_X=value`: the line must be in the final .config.
    Set(String),
    /// `# CONFIG_X is not set`: the option must not be set.
    Unset,
}

/// Where an option was asked for, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Wanted {
    pub(super) want: Want,
    pub(super) origin: String,
}

/// Parses one line of a config fragment or a .config.
pub(super) fn parse_line(line: &str) -> Option<(&str, Want)> {
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
pub(super) fn wanted_options(fragments: &[Fragment]) -> BTreeMap<String, Wanted> {
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
pub(super) fn missing_options(wanted: &BTreeMap<String, Wanted>, config: &str) -> Vec<String> {
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
pub(super) fn fragment_hash(fragments: &[Fragment]) -> String {
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
pub(super) fn configure(
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

//! Where the kernel and initrd a VM boots come from.
//!
//! Today: the host's Debian kernel whose modules `cargo xtask image` packed
//! (`/boot/vmlinuz-$(cat target/keel/kernel.release)`) and `target/keel/initramfs.cpio.gz`.
//! When the single-image kernel lands (issue 8), `locate` returns `target/keel/bzImage` with
//! no initrd by default and the modular pair on request; callers already take
//! `initrd: Option`. Env overrides: `KEEL_KERNEL`, `KEEL_INITRD` (`none`: no initrd).
//! Nothing here builds.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The workspace root, from this crate's manifest directory.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `target/keel/`, where the image build writes its artefacts.
pub fn out_dir() -> PathBuf {
    project_root().join("target").join("keel")
}

/// What to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artefacts {
    pub kernel: PathBuf,
    /// `None` for a kernel with the initramfs built in.
    pub initrd: Option<PathBuf>,
}

/// The kernel release the image's modules came from, read from `kernel.release`.
pub fn kernel_release(out: &Path) -> Result<String> {
    let file = out.join("kernel.release");
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "cannot read {}: run `cargo xtask image` first (it writes it)",
            file.display()
        )
    })?;
    let release = text.trim();
    if release.is_empty() || release.contains('/') {
        bail!(
            "{}: bad kernel release {release:?}: run `cargo xtask image` again",
            file.display()
        );
    }
    Ok(release.to_string())
}

/// The kernel to boot: `KEEL_KERNEL`, else the Debian kernel whose modules the image holds.
pub fn default_kernel() -> Result<PathBuf> {
    match std::env::var_os("KEEL_KERNEL") {
        Some(k) => Ok(PathBuf::from(k)),
        None => Ok(PathBuf::from(format!(
            "/boot/vmlinuz-{}",
            kernel_release(&out_dir())?
        ))),
    }
}

/// The initrd to boot: `KEEL_INITRD` (`none` for a kernel with the initramfs built in),
/// else the image's `initramfs.cpio.gz`.
pub fn default_initrd() -> Option<PathBuf> {
    match std::env::var_os("KEEL_INITRD") {
        Some(i) if i == "none" => None,
        Some(i) => Some(PathBuf::from(i)),
        None => Some(out_dir().join("initramfs.cpio.gz")),
    }
}

/// The default artefacts, after the `KEEL_KERNEL` / `KEEL_INITRD` overrides.
pub fn locate() -> Result<Artefacts> {
    let a = Artefacts {
        kernel: default_kernel()?,
        initrd: default_initrd(),
    };
    a.check()?;
    Ok(a)
}

impl Artefacts {
    /// Fails naming the missing file and what makes it.
    pub fn check(&self) -> Result<()> {
        if !self.kernel.is_file() {
            bail!(
                "kernel {} not found: install linux-image-amd64 and run `cargo xtask image`, or set KEEL_KERNEL",
                self.kernel.display()
            );
        }
        if let Some(initrd) = &self.initrd {
            if !initrd.is_file() {
                bail!(
                    "initrd {} not found: run `cargo xtask image`, or set KEEL_INITRD",
                    initrd.display()
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(project_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }

    #[test]
    fn kernel_release_is_read_and_checked() {
        let dir = std::env::temp_dir().join(format!("keel-artefacts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = kernel_release(&dir).unwrap_err().to_string();
        assert!(
            err.contains("kernel.release") && err.contains("cargo xtask image"),
            "{err}"
        );
        std::fs::write(dir.join("kernel.release"), "6.1.0-56-amd64\n").unwrap();
        assert_eq!(kernel_release(&dir).unwrap(), "6.1.0-56-amd64");
        std::fs::write(dir.join("kernel.release"), "../../etc\n").unwrap();
        assert!(kernel_release(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_files_are_named() {
        let a = Artefacts {
            kernel: "/nonexistent/vmlinuz".into(),
            initrd: None,
        };
        assert!(
            a.check()
                .unwrap_err()
                .to_string()
                .contains("/nonexistent/vmlinuz")
        );
    }
}

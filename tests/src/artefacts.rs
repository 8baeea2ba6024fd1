//! Where the kernel and initrd a VM boots come from.
//!
//! Two ways to boot the same image (issue 8). The default, `Single`, is the single image
//! `target/keel/bzImage` from `cargo xtask kernel`, with the initramfs built in and no initrd.
//! `Modular` is the host's Debian kernel whose modules `cargo xtask image` packed
//! (`/boot/vmlinuz-$(cat target/keel/kernel.release)`) with `target/keel/initramfs.cpio.gz`
//! as the initrd. `KEEL_VM_KERNEL=single|modular` picks one for every VM that does not pick
//! its own; `KEEL_KERNEL` and `KEEL_INITRD` (`none`: no initrd) override the files whatever
//! the kind. Nothing here builds.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The variable that chooses the kernel kind for VMs that do not choose one.
pub const KIND_VAR: &str = "KEEL_VM_KERNEL";

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

/// Which kernel boots the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// `target/keel/bzImage` with the initramfs built in (no module loading).
    #[default]
    Single,
    /// The Debian kernel plus `initramfs.cpio.gz`, loading the modules the image packed.
    Modular,
}

impl Kind {
    /// The kind `KEEL_VM_KERNEL` names (`single`, `modular`), `Single` when unset or empty.
    pub fn from_env() -> Result<Kind> {
        match std::env::var(KIND_VAR) {
            Err(std::env::VarError::NotPresent) => Ok(Kind::Single),
            Err(std::env::VarError::NotUnicode(v)) => {
                bail!("{KIND_VAR}={v:?} is not one of single, modular")
            }
            Ok(v) => Kind::parse(&v)
                .with_context(|| format!("{KIND_VAR}={v:?} is not one of single, modular")),
        }
    }

    /// `single` or `modular` (empty: `single`).
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "" | "single" => Some(Kind::Single),
            "modular" => Some(Kind::Modular),
            _ => None,
        }
    }

    /// `single` or `modular`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Single => "single",
            Kind::Modular => "modular",
        }
    }
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

/// The single image, `target/keel/bzImage`.
pub fn single_image() -> PathBuf {
    out_dir().join("bzImage")
}

/// The kernel for `kind`: `KEEL_KERNEL`, else the single image or the Debian kernel whose
/// modules the image holds.
pub fn kernel(kind: Kind) -> Result<PathBuf> {
    if let Some(k) = std::env::var_os("KEEL_KERNEL").filter(|k| !k.is_empty()) {
        return Ok(PathBuf::from(k));
    }
    match kind {
        Kind::Single => Ok(single_image()),
        Kind::Modular => Ok(PathBuf::from(format!(
            "/boot/vmlinuz-{}",
            kernel_release(&out_dir())?
        ))),
    }
}

/// The initrd for `kind`: `KEEL_INITRD` (`none` for no initrd), else none for the single
/// image and the image's `initramfs.cpio.gz` for the modular kernel.
pub fn initrd(kind: Kind) -> Option<PathBuf> {
    match std::env::var_os("KEEL_INITRD") {
        Some(i) if i == "none" => None,
        Some(i) if !i.is_empty() => Some(PathBuf::from(i)),
        _ => match kind {
            Kind::Single => None,
            Kind::Modular => Some(out_dir().join("initramfs.cpio.gz")),
        },
    }
}

/// The artefacts for `kind`, after the `KEEL_KERNEL` / `KEEL_INITRD` overrides, checked.
pub fn locate(kind: Kind) -> Result<Artefacts> {
    let a = Artefacts {
        kernel: kernel(kind)?,
        initrd: initrd(kind),
    };
    a.check()?;
    Ok(a)
}

impl Artefacts {
    /// Fails naming the missing file and what makes it.
    pub fn check(&self) -> Result<()> {
        if !self.kernel.is_file() {
            let hint = if self.kernel.ends_with("bzImage") {
                "run `cargo xtask image` then `cargo xtask kernel`, or set KEEL_VM_KERNEL=modular for the Debian kernel"
            } else {
                "install linux-image-amd64 and run `cargo xtask image`, or set KEEL_KERNEL"
            };
            bail!("kernel {} not found: {hint}", self.kernel.display());
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

    #[test]
    fn kinds_parse_and_default_to_the_single_image() {
        assert_eq!(Kind::default(), Kind::Single);
        assert_eq!(Kind::parse(""), Some(Kind::Single));
        assert_eq!(Kind::parse("single"), Some(Kind::Single));
        assert_eq!(Kind::parse("modular"), Some(Kind::Modular));
        assert_eq!(Kind::parse("Modular"), None);
        for k in [Kind::Single, Kind::Modular] {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn a_missing_single_image_says_how_to_build_it() {
        let a = Artefacts {
            kernel: "/nonexistent/bzImage".into(),
            initrd: None,
        };
        let err = a.check().unwrap_err().to_string();
        assert!(
            err.contains("cargo xtask kernel") && err.contains("KEEL_VM_KERNEL=modular"),
            "{err}"
        );
    }
}

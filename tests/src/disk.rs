//! Disks for the VM tests, made on the host with Debian's tools.

use anyhow::{Context, Result, ensure};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The state disk's label and uuid, as the kernel command line names them.
pub const STATE_LABEL: &str = "keel-state";
pub const STATE_UUID: &str = "6b1f6a5e-2c4d-4e8f-9a0b-1c2d3e4f5a6b";

/// Makes `dir/state.img`, a 16 MiB ext4 state disk (mkfs.ext4 from e2fsprogs) labelled
/// [`STATE_LABEL`] with uuid [`STATE_UUID`], holding the test key in
/// root/.ssh/authorized_keys with the modes sshd's StrictModes wants.
pub fn ext4_state_disk(dir: &Path) -> Result<PathBuf> {
    let tree = dir.join("tree");
    let ssh = tree.join("root/.ssh");
    std::fs::create_dir_all(&ssh)?;
    let public = crate::ssh::test_public_key()?;
    std::fs::write(ssh.join("authorized_keys"), public)?;
    let set = |p: &Path, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
    };
    set(&tree, 0o755)?;
    set(&tree.join("root"), 0o700)?;
    set(&ssh, 0o700)?;
    set(&ssh.join("authorized_keys"), 0o600)?;
    let img = dir.join("state.img");
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", STATE_LABEL, "-U", STATE_UUID, "-d"])
        .arg(&tree)
        .arg(&img)
        .arg("16M")
        .output()
        .context("cannot run mkfs.ext4: apt-get install e2fsprogs")?;
    ensure!(
        out.status.success(),
        "mkfs.ext4 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(img)
}

/// Runs a disk tool and fails with its stderr.
fn tool(cmd: &mut Command, package: &str) -> Result<()> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {name}: apt-get install {package}"))?;
    ensure!(
        out.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Makes `dir/seed.img`, a 2 MiB vfat NoCloud seed labelled CIDATA (mkfs.vfat from
/// dosfstools, mcopy from mtools) holding `meta-data` and, when given, `user-data`.
pub fn nocloud_vfat(dir: &Path, meta_data: &str, user_data: Option<&str>) -> Result<PathBuf> {
    let img = dir.join("seed.img");
    let _ = std::fs::remove_file(&img);
    tool(
        Command::new("mkfs.vfat")
            .args(["-C", "-n", "CIDATA"])
            .arg(&img)
            .arg("2048"),
        "dosfstools",
    )?;
    for (name, text) in [("meta-data", Some(meta_data)), ("user-data", user_data)] {
        let Some(text) = text else { continue };
        let file = dir.join(name);
        std::fs::write(&file, text)?;
        tool(
            Command::new("mcopy")
                .arg("-i")
                .arg(&img)
                .arg(&file)
                .arg(format!("::{name}")),
            "mtools",
        )?;
    }
    Ok(img)
}

/// Makes `dir/seed.iso`, an iso9660 NoCloud seed with volume id `cidata`, Rock Ridge and
/// Joliet names (what cloud-localds makes; xorriso's genisoimage mode).
pub fn nocloud_iso(dir: &Path, meta_data: &str, user_data: Option<&str>) -> Result<PathBuf> {
    let files = dir.join("iso-files");
    std::fs::create_dir_all(&files)?;
    std::fs::write(files.join("meta-data"), meta_data)?;
    if let Some(u) = user_data {
        std::fs::write(files.join("user-data"), u)?;
    }
    let iso = dir.join("seed.iso");
    let _ = std::fs::remove_file(&iso);
    tool(
        Command::new("xorriso")
            .args([
                "-as",
                "genisoimage",
                "-quiet",
                "-volid",
                "cidata",
                "-joliet",
                "-rock",
                "-output",
            ])
            .arg(&iso)
            .arg(&files),
        "xorriso",
    )?;
    Ok(iso)
}

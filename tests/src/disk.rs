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

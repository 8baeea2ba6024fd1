//! The test ssh key and the ssh command line the harness uses to reach a guest.
//!
//! The key is generated once with ssh-keygen under `target/keel/test-ssh/` and is for test
//! VMs only; it must never be baked into an image that leaves the machine.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The private test key, created with `ssh-keygen -t ed25519` on first use.
pub fn test_key() -> Result<PathBuf> {
    let dir = crate::artefacts::out_dir().join("test-ssh");
    let key = dir.join("id_ed25519");
    if key.is_file() && key.with_extension("pub").is_file() {
        return Ok(key);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Generate under a private name and rename, so two test processes, or two tests in
    // one process, never see half a key or collide on the temporary name.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!("tmp-{}-{n}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_file(tmp.with_extension("pub"));
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "keel-vm-tests", "-f"])
        .arg(&tmp)
        .output()
        .context("cannot run ssh-keygen: apt-get install openssh-client")?;
    if !out.status.success() {
        bail!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    std::fs::rename(tmp.with_extension("pub"), key.with_extension("pub"))
        .with_context(|| format!("cannot move the test key into {}", dir.display()))?;
    std::fs::rename(&tmp, &key)
        .with_context(|| format!("cannot move the test key into {}", dir.display()))?;
    Ok(key)
}

/// The public half of the test key, one OpenSSH line.
pub fn test_public_key() -> Result<String> {
    let key = test_key()?;
    let pub_file = key.with_extension("pub");
    std::fs::read_to_string(&pub_file)
        .with_context(|| format!("cannot read {}", pub_file.display()))
}

/// The ssh arguments for `root@127.0.0.1:port` with `key`, never prompting.
pub fn ssh_args(port: u16, key: &Path) -> Vec<String> {
    [
        "-p",
        &port.to_string(),
        "-i",
        &key.display().to_string(),
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "ServerAliveInterval=5",
        "-o",
        "ServerAliveCountMax=3",
        "root@127.0.0.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_never_prompts_and_targets_the_port() {
        let args = ssh_args(40222, Path::new("/k/id"));
        let joined = args.join(" ");
        assert!(joined.starts_with("-p 40222 -i /k/id "));
        assert!(joined.contains("BatchMode=yes"));
        assert_eq!(args.last().map(String::as_str), Some("root@127.0.0.1"));
    }
}

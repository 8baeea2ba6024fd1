//! Checks keys and fingerprints against OpenSSH's own ssh-keygen, and against a committed golden.
//!
//! ssh-keygen comes from Debian's openssh-client package (present on the project's machines);
//! these tests fail, saying so, when it is missing rather than passing without checking anything.
// This test binary is not PID 1: running ssh-keygen and waiting for it races no reaper.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sshkeys::{HostKey, KeyError, OsFs, ensure_host_key, generate_host_key, host_key_from_seed};

const SSH_KEYGEN: &str = "ssh-keygen";

/// Runs ssh-keygen and returns its standard output, or its exit and error text.
fn ssh_keygen(args: &[&str]) -> Result<String, String> {
    let out = Command::new(SSH_KEYGEN).args(args).output().map_err(|e| {
        format!(
            "cannot run {SSH_KEYGEN} {args:?}: {e}; install it with apt-get install openssh-client"
        )
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{SSH_KEYGEN} {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A fresh directory for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sshkeys-{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let made = fs::create_dir_all(&dir);
        assert!(made.is_ok(), "cannot create {}: {made:?}", dir.display());
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes the key pair as the store would name it, with ssh's modes.
fn write_pair(dir: &Path, key: &HostKey) -> Result<PathBuf, String> {
    let path = dir.join("ssh_host_ed25519_key");
    let text = key.private_openssh().map_err(|e| e.to_string())?;
    fs::write(&path, text.as_bytes()).map_err(|e| e.to_string())?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())?;
    let line = key.public_line().map_err(|e| e.to_string())?;
    fs::write(dir.join("ssh_host_ed25519_key.pub"), format!("{line}\n"))
        .map_err(|e| e.to_string())?;
    Ok(path)
}

/// Everything ssh-keygen says about our files must equal what we say about the key.
fn check_against_ssh_keygen(dir: &Path, key: &HostKey) -> Result<(), String> {
    let path = write_pair(dir, key)?;
    let key_file = path.to_string_lossy().into_owned();
    let pub_file = format!("{key_file}.pub");

    // -y re-derives the public key from our private file: it must equal our .pub exactly.
    let derived = ssh_keygen(&["-y", "-f", &key_file])?;
    let line = key.public_line().map_err(|e| e.to_string())?;
    assert_eq!(
        derived,
        format!("{line}\n"),
        "ssh-keygen -y differs from our .pub"
    );

    // -l on either file gives our fingerprint line.
    // Given a private key, ssh-keygen reads the .pub beside it and, when the comment is empty,
    // shows that file's name instead of "no comment"; keel always sets a comment.
    let via_private = |text: String| match key.comment() {
        "" => text.replacen(" no comment (", &format!(" {pub_file} ("), 1),
        _ => text,
    };
    let expected_line = format!("{}\n", key.fingerprint_line());
    assert_eq!(
        ssh_keygen(&["-l", "-f", &pub_file])?,
        expected_line,
        "-l on the .pub"
    );
    let expected_private = via_private(expected_line);
    assert_eq!(
        ssh_keygen(&["-l", "-f", &key_file])?,
        expected_private,
        "-l on the private key"
    );
    assert_eq!(
        ssh_keygen(&["-l", "-E", "sha256", "-f", &key_file])?,
        expected_private
    );

    // -lv adds the randomart box: byte for byte what we print on the console.
    let block = key.fingerprint_block();
    assert_eq!(
        ssh_keygen(&["-lv", "-f", &pub_file])?,
        block,
        "-lv on the .pub"
    );
    assert_eq!(
        ssh_keygen(&["-lv", "-f", &key_file])?,
        via_private(block),
        "-lv on the private key"
    );
    Ok(())
}

#[test]
fn fixed_seed_keys_match_ssh_keygen() -> Result<(), String> {
    let dir = TempDir::new("fixed");
    let seeds: [[u8; 32]; 5] = [[0; 32], [1; 32], [0x2a; 32], [0xff; 32], {
        let mut s = [0u8; 32];
        for (i, b) in s.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        s
    }];
    for (i, seed) in seeds.into_iter().enumerate() {
        for comment in ["root@keel", "", "keel host key"] {
            let key = host_key_from_seed(seed, comment);
            check_against_ssh_keygen(&dir.0, &key)
                .map_err(|e| format!("seed {i}, comment {comment:?}: {e}"))?;
        }
    }
    Ok(())
}

#[test]
fn generated_keys_match_ssh_keygen() -> Result<(), String> {
    let dir = TempDir::new("random");
    for _ in 0..5 {
        let key = generate_host_key("root@keel").map_err(|e| e.to_string())?;
        check_against_ssh_keygen(&dir.0, &key)?;
    }
    Ok(())
}

#[test]
fn keys_made_by_ssh_keygen_are_read_back() -> Result<(), String> {
    let dir = TempDir::new("theirs");
    let path = dir.0.join("k");
    let file = path.to_string_lossy().into_owned();
    ssh_keygen(&[
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        "made by ssh-keygen",
        "-f",
        &file,
    ])?;
    let text = fs::read(&path).map_err(|e| e.to_string())?;
    let key = HostKey::from_openssh(&text).map_err(|e| e.to_string())?;
    let their_pub = fs::read_to_string(dir.0.join("k.pub")).map_err(|e| e.to_string())?;
    assert_eq!(
        format!("{}\n", key.public_line().map_err(|e| e.to_string())?),
        their_pub
    );
    assert_eq!(
        format!("{}\n", key.fingerprint_line()),
        ssh_keygen(&["-l", "-f", &file])?
    );
    assert_eq!(key.comment(), "made by ssh-keygen");
    Ok(())
}

#[test]
fn encrypted_and_non_ed25519_keys_are_refused() -> Result<(), String> {
    let dir = TempDir::new("refused");
    let enc = dir.0.join("enc").to_string_lossy().into_owned();
    ssh_keygen(&["-q", "-t", "ed25519", "-N", "secret", "-f", &enc])?;
    let text = fs::read(&enc).map_err(|e| e.to_string())?;
    let got = HostKey::from_openssh(&text);
    assert!(
        matches!(got, Err(KeyError::Encrypted)),
        "encrypted key: {got:?}"
    );

    let ecdsa = dir.0.join("ecdsa").to_string_lossy().into_owned();
    ssh_keygen(&["-q", "-t", "ecdsa", "-N", "", "-f", &ecdsa])?;
    let text = fs::read(&ecdsa).map_err(|e| e.to_string())?;
    let got = HostKey::from_openssh(&text);
    let Err(err) = got else {
        panic!("ecdsa key accepted: {got:?}")
    };
    assert_eq!(
        err.to_string(),
        "not a usable openssh private key: unknown algorithm"
    );
    Ok(())
}

#[test]
fn the_store_keeps_an_ssh_keygen_key_and_replaces_an_encrypted_one() -> Result<(), String> {
    let dir = TempDir::new("store");
    let path = dir.0.join("ssh_host_ed25519_key");
    let file = path.to_string_lossy().into_owned();
    // A key ssh-keygen made without its .pub: kept, and the .pub written to what ssh-keygen derives.
    ssh_keygen(&["-q", "-t", "ed25519", "-N", "", "-C", "old", "-f", &file])?;
    fs::remove_file(dir.0.join("ssh_host_ed25519_key.pub")).map_err(|e| e.to_string())?;
    let kept = ensure_host_key(&mut OsFs, &dir.0, "ssh_host_ed25519_key", || {
        Err(KeyError::CrngNotReady)
    })
    .map_err(|e| e.to_string())?;
    assert!(
        kept.to_string().contains("its .pub was missing or stale"),
        "{kept}"
    );
    let written = fs::read_to_string(format!("{file}.pub")).map_err(|e| e.to_string())?;
    assert_eq!(written, ssh_keygen(&["-y", "-f", &file])?);

    // An encrypted key cannot be loaded by sshd at boot: moved aside and replaced.
    fs::remove_file(&path).map_err(|e| e.to_string())?;
    ssh_keygen(&["-q", "-t", "ed25519", "-N", "secret", "-f", &file])?;
    let encrypted = fs::read(&path).map_err(|e| e.to_string())?;
    let replaced = ensure_host_key(&mut OsFs, &dir.0, "ssh_host_ed25519_key", || {
        Ok(host_key_from_seed([5; 32], "new"))
    })
    .map_err(|e| e.to_string())?;
    assert!(
        replaced.to_string().contains("encrypted with a passphrase"),
        "{replaced}"
    );
    assert_eq!(
        fs::read(dir.0.join("ssh_host_ed25519_key.corrupt-1")).ok(),
        Some(encrypted)
    );
    assert_eq!(
        ssh_keygen(&["-lv", "-f", &file])?,
        host_key_from_seed([5; 32], "new").fingerprint_block()
    );
    Ok(())
}

/// The committed golden: a seed of 32 bytes 0x2a, comment `keel-golden`, checked once with
/// ssh-keygen 9.2p1 (see tests/golden/README.md). This test needs no ssh-keygen.
#[test]
fn committed_golden_matches() -> Result<(), String> {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let read =
        |name: &str| fs::read_to_string(golden.join(name)).map_err(|e| format!("{name}: {e}"));
    let key = host_key_from_seed([0x2a; 32], "keel-golden");
    assert_eq!(
        *key.private_openssh().map_err(|e| e.to_string())?,
        read("seed-2a.key")?
    );
    assert_eq!(
        format!("{}\n", key.public_line().map_err(|e| e.to_string())?),
        read("seed-2a.key.pub")?
    );
    assert_eq!(key.fingerprint_block(), read("seed-2a.ssh-keygen-lv.txt")?);
    let parsed =
        HostKey::from_openssh(read("seed-2a.key")?.as_bytes()).map_err(|e| e.to_string())?;
    assert_eq!(parsed.fingerprint(), key.fingerprint());
    Ok(())
}

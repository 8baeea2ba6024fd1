//! The check behind sshkeys' fuzz target: arbitrary bytes as the host-key file found on the
//! state disk, through `HostKey::from_openssh` and `store::ensure_host_key` over an
//! in-memory file system. It panics only when sshkeys breaks a promise.
//!
//! The libFuzzer binary in `fuzz_targets/` calls it; so do the stable tests in `tests/`.
//! This crate must not do IO, and must not weaken a check to make a finding go away.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sshkeys::hostkey::{HostKey, KeyError, PEM_BEGIN, host_key_from_seed};
use sshkeys::store::{self, Action, Fs, MAX_KEY_FILE, PRIVATE_MODE, PUBLIC_MODE};

/// One target's check: panics on a finding.
pub type Check = fn(&[u8]);

/// The targets by name, for the replay tests and the docs.
pub const TARGETS: &[(&str, Check)] = &[("hostkey", hostkey)];

const DIR: &str = "/var/lib/keel/ssh";
const NAME: &str = "ssh_host_ed25519_key";

/// A file system in memory: files by path (data, mode), directories, no failures.
#[derive(Default)]
struct MemFs {
    files: BTreeMap<PathBuf, (Vec<u8>, u32)>,
    dirs: Vec<PathBuf>,
}

fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such file")
}

impl Fs for MemFs {
    type File = PathBuf;

    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        let (data, _) = self.files.get(path).ok_or_else(not_found)?;
        if data.len() as u64 > MAX_KEY_FILE {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "too large"));
        }
        Ok(data.clone())
    }
    fn mode(&mut self, path: &Path) -> io::Result<u32> {
        self.files.get(path).map(|f| f.1).ok_or_else(not_found)
    }
    fn set_mode(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        self.files.get_mut(path).ok_or_else(not_found)?.1 = mode;
        Ok(())
    }
    fn exists(&mut self, path: &Path) -> io::Result<bool> {
        Ok(self.files.contains_key(path) || self.dirs.iter().any(|d| d == path))
    }
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        self.dirs.extend(dir.ancestors().map(Path::to_path_buf));
        Ok(())
    }
    fn create_new(&mut self, path: &Path, mode: u32) -> io::Result<PathBuf> {
        if self.files.contains_key(path) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
        }
        self.files.insert(path.to_path_buf(), (Vec::new(), mode));
        Ok(path.to_path_buf())
    }
    fn write_all(&mut self, file: &mut PathBuf, data: &[u8]) -> io::Result<()> {
        self.files
            .get_mut(file.as_path())
            .ok_or_else(not_found)?
            .0
            .extend_from_slice(data);
        Ok(())
    }
    fn sync(&mut self, _: &mut PathBuf) -> io::Result<()> {
        Ok(())
    }
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let f = self.files.remove(from).ok_or_else(not_found)?;
        self.files.insert(to.to_path_buf(), f);
        Ok(())
    }
    fn hard_link(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        // A copy is enough here: nothing writes a file after linking it.
        let f = self.files.get(from).cloned().ok_or_else(not_found)?;
        if self.files.contains_key(to) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
        }
        self.files.insert(to.to_path_buf(), f);
        Ok(())
    }
    fn remove(&mut self, path: &Path) -> io::Result<()> {
        self.files.remove(path).map(|_| ()).ok_or_else(not_found)
    }
    fn sync_dir(&mut self, _: &Path) -> io::Result<()> {
        Ok(())
    }
}

/// Checks a key that parsed: its text round-trips, its public line and fingerprint are
/// well formed and do not depend on how the file was written.
fn check_key(key: &HostKey, what: &str) {
    let text = key
        .private_openssh()
        .unwrap_or_else(|e| panic!("{what}: parsed key does not re-encode: {e}"));
    assert!(
        text.starts_with(PEM_BEGIN),
        "{what}: re-encoded without the PEM line"
    );
    let again = HostKey::from_openssh(text.as_bytes())
        .unwrap_or_else(|e| panic!("{what}: re-encoded key does not parse: {e}"));
    assert_eq!(
        again.public_bytes(),
        key.public_bytes(),
        "{what}: public key changed"
    );
    assert_eq!(again.comment(), key.comment(), "{what}: comment changed");
    assert!(
        key.public_bytes().is_some(),
        "{what}: an ED25519 key without its public half"
    );
    let line = key
        .public_line()
        .unwrap_or_else(|e| panic!("{what}: no public line: {e}"));
    assert!(
        line.starts_with("ssh-ed25519 "),
        "{what}: public line {line:?}"
    );
    assert!(
        !line.contains('\n'),
        "{what}: public line with a newline: {line:?}"
    );
    assert_eq!(
        again.fingerprint(),
        key.fingerprint(),
        "{what}: fingerprint changed"
    );
    let fp = key.fingerprint_line();
    assert!(
        fp.starts_with("256 SHA256:") && fp.ends_with("(ED25519)"),
        "{what}: {fp:?}"
    );
    assert_eq!(
        key.randomart().lines().count(),
        11,
        "{what}: randomart is not 11 lines"
    );
}

/// The host-key file's bytes:
/// - `HostKey::from_openssh` never panics; a key it takes re-encodes and parses back to the
///   same public key and comment, with a well-formed public line and fingerprint;
/// - `ensure_host_key` with that file in place keeps it exactly when it parses (bytes
///   untouched, mode 0600, the .pub its public line), and otherwise moves the very same
///   bytes to `<name>.corrupt-1` and writes a new key that parses, with its .pub.
pub fn hostkey(data: &[u8]) {
    let parsed = HostKey::from_openssh(data);
    if let Ok(key) = &parsed {
        check_key(key, "the file");
    }
    if let Err(e) = &parsed {
        assert!(
            !e.to_string().is_empty(),
            "an error that says nothing: {e:?}"
        );
    }

    let dir = Path::new(DIR);
    let path = dir.join(NAME);
    let pub_path = dir.join(format!("{NAME}.pub"));
    let mut fs = MemFs::default();
    fs.create_dir_all(dir).unwrap_or_default();
    // The file as found: a mode from the input, so the chmod is exercised too.
    let mode = if data.first().is_some_and(|b| b & 1 == 1) {
        0o644
    } else {
        PRIVATE_MODE
    };
    fs.files.insert(path.clone(), (data.to_vec(), mode));
    // Made once: deriving a key costs more than the rest of a run.
    static FRESH: OnceLock<HostKey> = OnceLock::new();
    let fresh = FRESH.get_or_init(|| host_key_from_seed([7; 32], "fuzz"));
    let got = store::ensure_host_key(&mut fs, dir, NAME, || Ok::<_, KeyError>(fresh.clone()))
        .unwrap_or_else(|e| panic!("the store failed on a working file system: {e}"));
    assert_eq!(got.path, path);
    assert_eq!(
        got.pub_error, None,
        "the .pub was not written: {:?}",
        got.pub_error
    );
    match (&parsed, &got.action) {
        (Ok(key), Action::Kept { mode_fixed, .. }) => {
            assert_eq!(
                got.key.public_bytes(),
                key.public_bytes(),
                "kept another key"
            );
            assert_eq!(fs.files[&path].0, data, "a kept key file was rewritten");
            assert_eq!(*mode_fixed, mode != PRIVATE_MODE);
        }
        (Err(_), Action::Replaced { moved_to, reason }) => {
            assert_eq!(moved_to, &dir.join(format!("{NAME}.corrupt-1")));
            assert!(!reason.is_empty(), "replaced without a reason");
            assert_eq!(
                fs.files[moved_to].0, data,
                "the corrupt bytes were not kept"
            );
            assert_eq!(
                got.key.public_bytes(),
                fresh.public_bytes(),
                "not the new key"
            );
            let now = HostKey::from_openssh(&fs.files[&path].0)
                .unwrap_or_else(|e| panic!("the new key file does not parse: {e}"));
            assert_eq!(now.public_bytes(), fresh.public_bytes());
        }
        (p, a) => panic!(
            "file parsed as {:?} but the store did {a:?}",
            p.as_ref().err()
        ),
    }
    assert_eq!(fs.files[&path].1, PRIVATE_MODE, "the key is not 0600");
    let line = got.key.public_line().unwrap_or_default();
    assert_eq!(
        fs.files.get(&pub_path).map(|f| (f.0.clone(), f.1)),
        Some((format!("{line}\n").into_bytes(), PUBLIC_MODE)),
        "the .pub is not the key's public line"
    );
}

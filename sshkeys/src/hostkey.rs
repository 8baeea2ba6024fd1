//! ED25519 host keys: made from a seed, written in OpenSSH's formats, shown as ssh-keygen shows them.
//!
//! Everything here is pure except [`generate_host_key`], which takes 32 bytes from the kernel CRNG
//! with GRND_NONBLOCK and refuses, rather than blocks, when the CRNG is not ready yet.
//! This module must not touch files: the store ([`crate::store`]) does that.

use std::fmt;

use rustix::rand::{GetRandomFlags, getrandom};
use ssh_key::private::{Ed25519Keypair, KeypairData};
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey};
use zeroize::Zeroizing;

/// Why a key could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The kernel CRNG is not initialised; run the entropy wait first.
    #[error(
        "the kernel crng is not ready yet; wait for it (the entropy oneshot) before making a host key"
    )]
    CrngNotReady,
    /// getrandom(2) failed for another reason.
    #[error("cannot read 32 random bytes from the kernel: {0}")]
    Random(#[source] std::io::Error),
    /// The file is empty (a write that never completed, or a truncated file).
    #[error("the file is empty")]
    Empty,
    /// The file is not in the OpenSSH private key format at all.
    #[error("the file does not start with {PEM_BEGIN}")]
    NotOpenssh,
    /// The text is not an OpenSSH private key this crate can use.
    #[error("not a usable openssh private key: {0}")]
    Parse(#[source] ssh_key::Error),
    /// The key is encrypted with a passphrase, which a host key must not be.
    #[error("the private key is encrypted with a passphrase; sshd cannot load it at boot")]
    Encrypted,
    /// The key is not ED25519.
    #[error("the private key is {0}, not ssh-ed25519")]
    WrongAlgorithm(String),
    /// Encoding failed (not expected for a valid ED25519 key).
    #[error("cannot encode the key in openssh format: {0}")]
    Encode(#[source] ssh_key::Error),
}

/// An unencrypted ED25519 key pair with its comment.
#[derive(Clone, Debug)]
pub struct HostKey {
    key: PrivateKey,
}

/// Makes the host key whose private half is `seed` (RFC 8032), with `comment` in both files.
///
/// The same seed and comment always give byte-identical files: the OpenSSH check integers are
/// derived from the key, not drawn at random.
pub fn host_key_from_seed(seed: [u8; 32], comment: &str) -> HostKey {
    let seed = Zeroizing::new(seed);
    let keypair = Ed25519Keypair::from_seed(&seed);
    let mut key = PrivateKey::from(keypair);
    key.set_comment(comment);
    HostKey { key }
}

/// Makes a new host key from the kernel CRNG; fails with [`KeyError::CrngNotReady`] instead of blocking.
pub fn generate_host_key(comment: &str) -> Result<HostKey, KeyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    let mut filled = 0;
    while filled < seed.len() {
        match getrandom(&mut seed[filled..], GetRandomFlags::NONBLOCK) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => return Err(KeyError::CrngNotReady),
            Err(e) => return Err(KeyError::Random(e.into())),
        }
    }
    Ok(host_key_from_seed(*seed, comment))
}

impl HostKey {
    /// Reads an OpenSSH private key file's text, accepting only an unencrypted ED25519 key
    /// whose public half matches its private half.
    pub fn from_openssh(text: &[u8]) -> Result<Self, KeyError> {
        let start = text.iter().position(|b| !b.is_ascii_whitespace());
        let Some(start) = start else {
            return Err(KeyError::Empty);
        };
        if !text[start..].starts_with(PEM_BEGIN.as_bytes()) {
            return Err(KeyError::NotOpenssh);
        }
        let key = PrivateKey::from_openssh(text).map_err(KeyError::Parse)?;
        if key.is_encrypted() {
            return Err(KeyError::Encrypted);
        }
        if key.algorithm() != Algorithm::Ed25519 {
            return Err(KeyError::WrongAlgorithm(key.algorithm().to_string()));
        }
        // The public key outside the private section must be the one inside it.
        match key.key_data() {
            KeypairData::Ed25519(pair)
                if key.public_key().key_data().ed25519() == Some(&pair.public) =>
            {
                Ok(Self { key })
            }
            _ => Err(KeyError::Parse(ssh_key::Error::PublicKey)),
        }
    }

    /// The private key file's text (`-----BEGIN OPENSSH PRIVATE KEY-----`, LF line ends).
    pub fn private_openssh(&self) -> Result<Zeroizing<String>, KeyError> {
        self.key
            .to_openssh(LineEnding::LF)
            .map_err(KeyError::Encode)
    }

    /// The `.pub` line without a newline: `ssh-ed25519 AAAA... comment`, as `ssh-keygen -y` prints it.
    pub fn public_line(&self) -> Result<String, KeyError> {
        self.key.public_key().to_openssh().map_err(KeyError::Encode)
    }

    /// The comment stored with the key.
    pub fn comment(&self) -> &str {
        self.key.comment()
    }

    /// The 32-byte ED25519 public key.
    pub fn public_bytes(&self) -> Option<[u8; 32]> {
        self.key.public_key().key_data().ed25519().map(|pk| pk.0)
    }

    /// `SHA256:` and the unpadded base64 of the SHA-256 of the public key blob.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint(self.key.fingerprint(HashAlg::Sha256))
    }

    /// The randomart box of the SHA-256 fingerprint, as `ssh-keygen -lv` draws it (no final newline).
    pub fn randomart(&self) -> String {
        self.key
            .fingerprint(HashAlg::Sha256)
            .to_randomart(&format!("[{} {}]", TYPE_NAME, BITS))
    }

    /// The line `ssh-keygen -l` prints: `256 SHA256:... comment (ED25519)`.
    pub fn fingerprint_line(&self) -> String {
        let comment = match self.comment() {
            "" => "no comment",
            c => c,
        };
        format!("{BITS} {} {comment} ({TYPE_NAME})", self.fingerprint())
    }

    /// What `ssh-keygen -lv -f` prints: the fingerprint line then the randomart box, ending in a newline.
    pub fn fingerprint_block(&self) -> String {
        format!("{}\n{}\n", self.fingerprint_line(), self.randomart())
    }
}

/// The first line of an OpenSSH private key file.
pub const PEM_BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";

/// ssh-keygen's name for the key type in `-l` output and the randomart title.
const TYPE_NAME: &str = "ED25519";

/// The key size ssh-keygen reports for ED25519.
const BITS: u32 = 256;

/// A SHA-256 fingerprint; displays as `SHA256:<base64 without padding>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint(ssh_key::Fingerprint);

impl Fingerprint {
    /// The raw 32-byte digest.
    pub fn digest(&self) -> [u8; 32] {
        self.0.sha256().unwrap_or_default()
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_files_and_round_trip() -> Result<(), KeyError> {
        let a = host_key_from_seed([7; 32], "root@keel");
        let b = host_key_from_seed([7; 32], "root@keel");
        let text = a.private_openssh()?;
        assert_eq!(*text, *b.private_openssh()?);
        assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        assert!(text.ends_with("-----END OPENSSH PRIVATE KEY-----\n"));
        let back = HostKey::from_openssh(text.as_bytes())?;
        assert_eq!(back.comment(), "root@keel");
        assert_eq!(back.public_line()?, a.public_line()?);
        assert_eq!(*back.private_openssh()?, *text);
        assert!(
            a.public_line()?
                .starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI")
        );
        assert!(a.public_line()?.ends_with(" root@keel"));
        Ok(())
    }

    #[test]
    fn rfc8032_test_vector_1_public_key() {
        // RFC 8032 section 7.1, TEST 1: the secret key and the public key it must give.
        let seed = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let public = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        let key = host_key_from_seed(seed, "");
        assert_eq!(key.public_bytes(), Some(public));
    }

    #[test]
    fn different_seeds_different_fingerprints() {
        let a = host_key_from_seed([1; 32], "");
        let b = host_key_from_seed([2; 32], "");
        assert_ne!(a.fingerprint(), b.fingerprint());
        let fp = a.fingerprint().to_string();
        assert!(fp.starts_with("SHA256:"));
        assert_eq!(fp.len(), 7 + 43, "{fp}");
        assert!(!fp.ends_with('='));
    }

    #[test]
    fn fingerprint_line_says_no_comment_like_ssh_keygen() {
        let key = host_key_from_seed([1; 32], "");
        assert!(key.fingerprint_line().ends_with(" no comment (ED25519)"));
        assert!(key.fingerprint_line().starts_with("256 SHA256:"));
        let block = key.fingerprint_block();
        let lines: Vec<&str> = block.lines().collect();
        assert_eq!(lines.len(), 12);
        assert_eq!(lines[1], "+--[ED25519 256]--+");
        assert_eq!(lines[11], "+----[SHA256]-----+");
        assert!(
            lines[2..11]
                .iter()
                .all(|l| l.len() == 19 && l.starts_with('|') && l.ends_with('|'))
        );
    }

    #[test]
    fn rejects_garbage_truncated_and_tampered_keys() -> Result<(), KeyError> {
        let refused = |text: &[u8]| HostKey::from_openssh(text).err().map(|e| e.to_string());
        let not_openssh = Some(format!("the file does not start with {PEM_BEGIN}"));
        assert_eq!(refused(b"hello"), not_openssh);
        assert_eq!(refused(b" \n\0"), not_openssh);
        assert_eq!(refused(b""), Some("the file is empty".to_string()));
        assert_eq!(refused(b"\n \n"), Some("the file is empty".to_string()));
        let header_only = format!("{PEM_BEGIN}\n");
        let got = HostKey::from_openssh(header_only.as_bytes());
        assert!(matches!(got, Err(KeyError::Parse(_))), "{got:?}");
        let text = host_key_from_seed([3; 32], "c").private_openssh()?;
        let truncated = &text.as_bytes()[..text.len() / 2];
        let got = HostKey::from_openssh(truncated);
        assert!(matches!(got, Err(KeyError::Parse(_))), "{got:?}");
        // A file whose stored public half is another key's: the halves no longer match.
        let mut pair = Ed25519Keypair::from_seed(&[3; 32]);
        pair.public = Ed25519Keypair::from_seed(&[4; 32]).public;
        let mixed = PrivateKey::from(pair)
            .to_openssh(LineEnding::LF)
            .map_err(KeyError::Encode)?;
        assert!(matches!(
            HostKey::from_openssh(mixed.as_bytes()),
            Err(KeyError::Parse(_))
        ));
        Ok(())
    }

    #[test]
    fn generate_uses_the_ready_crng() -> Result<(), KeyError> {
        let a = generate_host_key("x")?;
        let b = generate_host_key("x")?;
        assert_ne!(a.public_bytes(), b.public_bytes());
        Ok(())
    }

    fn hex(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        out
    }
}

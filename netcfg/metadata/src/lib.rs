//! The pure half of keel's `metadata` service (issue 18): what the platform says about the
//! machine (root's ssh keys, the host name, the instance id), read from a NoCloud seed's
//! `meta-data` and `user-data` or from the Linode Metadata service, and the platform's block
//! in root's authorized_keys.
//!
//! Nothing here does IO: init mounts the seed, talks to 169.254.169.254 and writes the files;
//! this crate builds the requests and reads what came back. Every parser takes arbitrary
//! bytes and never panics; a bad document gives warnings (or an `Err`) and no keys, and a
//! bad key line is dropped with a warning, never the whole source. Small on purpose (std
//! only, hand-written parsers, few `format!`s): it goes into keel's static binary.
#![forbid(unsafe_code)]

pub mod http;
mod json;
pub mod keys;
pub mod linode;
pub mod nocloud;
mod yaml;

/// The longest host name keel sets (the kernel's `__NEW_UTS_LEN`).
pub const HOSTNAME_MAX: usize = 64;

/// What one source found. Keys are whole authorized_keys lines (`ssh-ed25519 AAAA... comment`),
/// trimmed, deduplicated in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub keys: Vec<String>,
    pub hostname: Option<String>,
    pub instance_id: Option<String>,
    pub warnings: Vec<String>,
}

impl Found {
    /// Adds one key line (trimmed) if [`keys::check_line`] accepts it and it is not there yet;
    /// otherwise a warning `{what}: {reason}` (with the line's start, so it can be found).
    pub fn add_key(&mut self, what: &str, line: &str) {
        let line = line.trim();
        match keys::check_line(line) {
            Ok(()) => {
                if !self.keys.iter().any(|k| k == line) {
                    self.keys.push(line.to_string());
                }
            }
            Err(e) => self.warnings.push(cat(&[
                what,
                " (",
                &shown(line, 24),
                "): ",
                &e,
                ", key dropped",
            ])),
        }
    }

    fn warn(&mut self, parts: &[&str]) {
        self.warnings.push(cat(parts));
    }
}

/// A hostname keel may set: 1..=64 bytes, labels of `[A-Za-z0-9-]` not starting or ending
/// with `-`, dots between labels. An FQDN is taken as is (the kernel's host name may hold
/// one). `None` when valid, else why not.
pub fn hostname_error(name: &str) -> Option<String> {
    let why = if name.is_empty() {
        "empty"
    } else if name.len() > HOSTNAME_MAX {
        "longer than 64 bytes"
    } else if name.split('.').any(str::is_empty) {
        "an empty label (two dots, or a dot at an end)"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        "only letters, digits, '-' and '.' are allowed"
    } else if name
        .split('.')
        .any(|l| l.starts_with('-') || l.ends_with('-'))
    {
        "a label starts or ends with '-'"
    } else {
        return None;
    };
    Some(cat(&["host name ", &shown(name, 40), ": ", why]))
}

/// Concatenation without `format!`'s machinery.
pub(crate) fn cat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        s.push_str(p);
    }
    s
}

/// `s` for a message: quoted, control characters as `?`, cut after `max` characters.
pub(crate) fn shown(s: &str, max: usize) -> String {
    let mut out = String::from("\"");
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push_str("...");
            break;
        }
        out.push(if c.is_control() { '?' } else { c });
    }
    out.push('"');
    out
}

//! authorized_keys lines: which keel accepts from a platform, and the platform's block in
//! root's authorized_keys.

/// The key types keel accepts (what OpenSSH's sshd takes by default, minus DSA).
pub const TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// The longest line keel accepts (an RSA key of 16384 bits is ~2.8 KB).
pub const LINE_MAX: usize = 16 * 1024;

/// True for an authorized_keys line keel accepts: `TYPE BASE64 [comment]` (no options), TYPE
/// one of [`TYPES`], the base64 valid and naming the same type inside, no control
/// characters, at most 16 KiB. Err says why.
pub fn check_line(line: &str) -> Result<(), String> {
    if line.len() > LINE_MAX {
        return Err("longer than 16 KiB".into());
    }
    if line.chars().any(char::is_control) {
        return Err("a control character (tab, newline, ...) in the line".into());
    }
    let (ty, rest) = line.split_once(' ').unwrap_or((line, ""));
    if ty.is_empty() {
        return Err("empty, or starts with a space".into());
    }
    if !TYPES.contains(&ty) {
        return Err(crate::cat(&[
            "not a key type keel accepts (options before the type are not accepted): ",
            &crate::shown(ty, 40),
        ]));
    }
    let b64 = rest.trim_start_matches(' ');
    let b64 = b64.split(' ').next().unwrap_or("");
    if b64.is_empty() {
        return Err("no key data after the type".into());
    }
    let blob = base64(b64.as_bytes()).ok_or("the key data is not valid base64")?;
    // The blob is SSH strings (a u32 length, then the bytes), exactly as many as the type
    // has, the first one the type: a key cut short or pasted under another type is refused.
    let mut fields = Vec::new();
    let mut b = blob.as_slice();
    while let Some(l) = b.get(..4) {
        let n = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
        let Some(f) = b.get(4..).and_then(|r| r.get(..n)) else {
            break;
        };
        fields.push(f);
        b = &b[4 + n..];
    }
    let want = match ty {
        "ssh-ed25519" => 2,
        "sk-ecdsa-sha2-nistp256@openssh.com" => 4,
        _ => 3,
    };
    if fields.first() != Some(&ty.as_bytes()) {
        return Err(crate::cat(&["the key data is not a ", ty, " key"]));
    }
    if !b.is_empty() || fields.len() != want {
        return Err(crate::cat(&[
            "the key data is not a whole ",
            ty,
            " key (cut short?)",
        ]));
    }
    Ok(())
}

fn base64(s: &[u8]) -> Option<Vec<u8>> {
    if s.is_empty() || s.len() % 4 != 0 {
        return None;
    }
    let pad = s.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in &s[..s.len() - pad] {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The first line of the platform's block, followed by the source and `)`.
pub const BEGIN: &str = "# keel: keys from the platform (";
/// The last line of the platform's block.
pub const END: &str = "# keel: end of keys from the platform";

/// authorized_keys text with the platform's block replaced (or appended, or removed when
/// `keys` is empty): lines outside the block stay byte for byte (a last line without a
/// newline gets one when a block is appended after it); the block is `BEGIN{source})\n`,
/// one key per line, `END\n`. A BEGIN without an END: everything from BEGIN to the end is the
/// old block. Several blocks: all go, the new one takes the place of the first. Keys that
/// [`check_line`] refuses are left out (they could end the block early). Idempotent.
pub fn merge(existing: &str, source: &str, keys: &[String]) -> String {
    let mut out = String::with_capacity(existing.len() + 64 * keys.len() + 80);
    let mut at = None;
    let mut inside = false;
    for line in existing.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if inside {
            inside = bare.trim_end() != END;
        } else if bare.starts_with(BEGIN) {
            inside = true;
            at.get_or_insert(out.len());
        } else {
            out.push_str(line);
        }
    }
    let mut block = String::new();
    let keys: Vec<&String> = keys.iter().filter(|k| check_line(k).is_ok()).collect();
    if !keys.is_empty() {
        block.push_str(BEGIN);
        block.extend(source.chars().map(|c| if c.is_control() { '?' } else { c }));
        block.push_str(")\n");
        for k in keys {
            block.push_str(k);
            block.push('\n');
        }
        block.push_str(END);
        block.push('\n');
    }
    match at {
        Some(at) => out.insert_str(at, &block),
        None if block.is_empty() => {}
        None => {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&block);
        }
    }
    out
}

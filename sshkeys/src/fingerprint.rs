//! The SHA256 fingerprint of any public key line (`TYPE BASE64 [comment]`), as
//! `ssh-keygen -l` prints it, for keys keel installs but does not otherwise parse (RSA,
//! ECDSA, security keys): the hash of the key blob, in unpadded base64.
#![forbid(unsafe_code)]

use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (padding optional); None on any other byte.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let body = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in body.bytes() {
        let v = ALPHABET.iter().position(|&a| a == b)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (bits < 6 && acc == 0).then_some(out)
}

/// Unpadded standard base64.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// `SHA256:...` of a public key line's blob; None when the line has no valid base64 blob
/// whose own type name matches the line's.
pub fn line_fingerprint(line: &str) -> Option<String> {
    let mut words = line.split_ascii_whitespace();
    let kind = words.next()?;
    let blob = base64_decode(words.next()?)?;
    // The blob starts with its type as an SSH string: 4 bytes of length, then the name.
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    if blob.get(4..4 + len)? != kind.as_bytes() {
        return None;
    }
    Some(format!("SHA256:{}", base64_encode(&Sha256::digest(&blob))))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with ssh-keygen; the fingerprints are what `ssh-keygen -lf` printed.
    const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCyNsbR2/npOhLFIfCXXuDjEYu/GxLmYMWOv32WokXjoYJEjUYTtyU0rmO4DYvWMLDV2TrTZ9k4A9IpfLNRoxDg/rILmmFvUn1qRzk7JDQL5IZxk0Am4tQMXoVhkT4KtqHKCkp3kNGBHT9ZsgeR4SVDIBIlmKewqXTDWYC1DoLuu9XXSlodNrMivWlwQqQLy+VKqlK1NubfiXMf8yeexP2Qgau/RXpVQofn6HX22Nn5hjWMTgVcHYn2sYSGA53O4CL8ZCFWhuldg7tLwtoQM3JtGH4l6jbYqtDl+YyYN6oyri6NkzIUhGvtVEC/5JasPnlMhFWyukoM6E8IEdNGkRpd rsa-test";
    const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFsgNb/sXJMngsqdEqvpfuivVD2IE4UYNPb+mHOg1lbzMrRXXHkyEHEsuOUBD8PyrI36E8RxZHuvVZkMATpFO50= ec-test";

    #[test]
    fn fingerprints_are_ssh_keygen_s() {
        assert_eq!(
            line_fingerprint(RSA).as_deref(),
            Some("SHA256:3F/sa5FGv7v1qBXm/Av8c8ei0e3zropiL+JITjqEbGk")
        );
        assert_eq!(
            line_fingerprint(ECDSA).as_deref(),
            Some("SHA256:BZx6uXceHc/kPOWv/OpOsMYf1AtTe6ZXw+ucWHWf/eo")
        );
    }

    #[test]
    fn a_line_whose_blob_is_not_its_type_has_none() {
        let swapped = RSA.replacen("ssh-rsa", "ssh-ed25519", 1);
        assert_eq!(line_fingerprint(&swapped), None);
        assert_eq!(line_fingerprint("ssh-rsa AAAA!"), None);
        assert_eq!(line_fingerprint("ssh-rsa"), None);
        assert_eq!(line_fingerprint(""), None);
    }

    #[test]
    fn base64_round_trips() {
        for n in 0..20u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            let text = base64_encode(&data);
            assert_eq!(base64_decode(&text), Some(data));
        }
        assert_eq!(base64_encode(b"foob"), "Zm9vYg");
        assert_eq!(base64_decode("Zm9vYg=="), Some(b"foob".to_vec()));
        assert_eq!(base64_decode("Zm9vYh"), None);
    }
}

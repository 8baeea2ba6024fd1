//! Reading an HTTP/1.x response: the Linode Metadata service's, read until EOF (the requests
//! say `Connection: close`). Strict: anything unexpected is an `Err`, never a guess.

use crate::cat;

/// The most keel reads from one response.
pub const MAX_RESPONSE: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Parses a whole HTTP/1.x response read until EOF: the status line, headers (names
/// case-insensitive; `Content-Length` honoured and checked against what arrived;
/// `Transfer-Encoding: chunked` decoded), the body. Over [`MAX_RESPONSE`], truncated or
/// malformed: an `Err` naming what was wrong. Interim 1xx responses are skipped. A 3xx is
/// just a status (no redirect is followed; the caller takes anything but 200 as a failure).
pub fn parse_response(bytes: &[u8]) -> Result<Response, String> {
    if bytes.len() > MAX_RESPONSE {
        return Err("response larger than 64 KiB".into());
    }
    let mut rest = bytes;
    loop {
        let (status, length, chunked, body) = head(rest)?;
        if (100..200).contains(&status) {
            rest = body;
            continue;
        }
        if status == 204 || status == 304 {
            return Ok(Response {
                status,
                body: Vec::new(),
            });
        }
        let body = if chunked {
            dechunk(body)?
        } else if let Some(n) = length {
            if body.len() < n {
                return Err(cat(&[
                    "truncated body: ",
                    &body.len().to_string(),
                    " of ",
                    &n.to_string(),
                    " bytes (Content-Length)",
                ]));
            }
            if body.len() > n {
                return Err("more bytes than Content-Length says".into());
            }
            body.to_vec()
        } else {
            body.to_vec()
        };
        return Ok(Response { status, body });
    }
}

/// One line up to `\n` (a `\r` before it dropped) and what follows; `None` without a `\n`.
fn line(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = b.iter().position(|&c| c == b'\n')?;
    let l = &b[..i];
    Some((l.strip_suffix(b"\r").unwrap_or(l), &b[i + 1..]))
}

type Head<'a> = (u16, Option<usize>, bool, &'a [u8]);

fn head(b: &[u8]) -> Result<Head<'_>, String> {
    let (status_line, mut rest) = line(b).ok_or("truncated: no whole status line")?;
    let s = status_line;
    let ok = s.len() >= 12
        && s.starts_with(b"HTTP/1.")
        && s[7].is_ascii_digit()
        && s[8] == b' '
        && s[9..12].iter().all(u8::is_ascii_digit)
        && (s.len() == 12 || s[12] == b' ');
    if !ok {
        return Err(cat(&[
            "not an HTTP/1.x status line: ",
            &crate::shown(&String::from_utf8_lossy(s), 40),
        ]));
    }
    let status = s[9..12]
        .iter()
        .fold(0u16, |a, &d| a * 10 + u16::from(d - b'0'));
    if !(100..600).contains(&status) {
        return Err(cat(&["status ", &status.to_string(), " out of range"]));
    }
    let (mut length, mut chunked) = (None, false);
    loop {
        let (h, r) = line(rest).ok_or("truncated: the headers do not end")?;
        rest = r;
        if h.is_empty() {
            return Ok((status, length, chunked, rest));
        }
        let colon = h.iter().position(|&c| c == b':');
        let Some(colon) = colon.filter(|&i| i > 0 && h[..i].iter().all(|c| c.is_ascii_graphic()))
        else {
            return Err(cat(&[
                "malformed header line: ",
                &crate::shown(&String::from_utf8_lossy(h), 40),
            ]));
        };
        let name = &h[..colon];
        let value = h[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = (!value.is_empty() && value.len() <= 9 && value.iter().all(u8::is_ascii_digit))
                .then(|| value.iter().fold(0, |a, &d| a * 10 + usize::from(d - b'0')))
                .ok_or("bad Content-Length")?;
            if length.is_some_and(|l| l != n) {
                return Err("two different Content-Length headers".into());
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if !value.eq_ignore_ascii_case(b"chunked") {
                return Err(cat(&[
                    "unsupported Transfer-Encoding: ",
                    &crate::shown(&String::from_utf8_lossy(value), 40),
                ]));
            }
            chunked = true;
        }
    }
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let (size_line, rest) = line(b).ok_or("truncated chunked body: no chunk size line")?;
        let hex = size_line
            .split(|&c| c == b';')
            .next()
            .unwrap_or(b"")
            .trim_ascii();
        let size = (!hex.is_empty() && hex.len() <= 8)
            .then(|| {
                hex.iter().try_fold(0usize, |a, &c| {
                    Some(a * 16 + (c as char).to_digit(16)? as usize)
                })
            })
            .flatten()
            .ok_or("bad chunk size")?;
        if size == 0 {
            // Trailers, up to the empty line.
            let mut r = rest;
            loop {
                let (t, next) =
                    line(r).ok_or("truncated chunked body: no end after the last chunk")?;
                if t.is_empty() {
                    return Ok(out);
                }
                r = next;
            }
        }
        let data = rest
            .get(..size)
            .ok_or("truncated chunked body: a chunk shorter than its size")?;
        out.extend_from_slice(data);
        let after = &rest[size..];
        if after.is_empty() || after == b"\r" {
            return Err("truncated chunked body: no line end after a chunk".into());
        }
        b = after
            .strip_prefix(b"\r\n")
            .or_else(|| after.strip_prefix(b"\n"))
            .ok_or("malformed chunked body: no line end after a chunk")?;
    }
}

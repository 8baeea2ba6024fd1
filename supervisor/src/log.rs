//! Bounded per-service output rings: what a service wrote to stdout and stderr, line by
//! line, for `keelctl logs` and for the console.
//!
//! Each ring is a fixed number of bytes allocated once; when it is full the oldest lines
//! are dropped (the latest lines usually explain a crash) and counted. Must never grow,
//! block or fail: output is data, never an error.
//!
//! A service is not trusted with root's terminal: every control character but the tab
//! is stored escaped (`\x1b`, [`escape`]), so neither `keelctl logs` nor the console
//! replays an escape sequence, and a line cut at [`MAX_LINE`] goes on in a line marked
//! [`CONTINUED`].

use std::collections::VecDeque;

/// Bytes kept per service.
pub const DEFAULT_RING_BYTES: usize = 64 * 1024;
/// A line longer than this is cut and committed, so one endless line cannot hold memory.
pub const MAX_LINE: usize = 4096;
/// What a line that goes on from the one before starts with.
pub const CONTINUED: &str = "… ";

/// `text` with every control character but the tab (C0, DEL, C1) written as `\xNN`, so it
/// can be shown on a terminal as it is. Idempotent: the result has no control character.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            // Every control character is below U+0100.
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// How many bytes at the end of `b` are the start of a UTF-8 sequence still missing its
/// continuation bytes (kept for the next piece of a cut line, not replaced by U+FFFD).
fn incomplete_tail(b: &[u8]) -> usize {
    for back in 1..=b.len().min(3) {
        let x = b[b.len() - back];
        if x & 0xC0 == 0x80 {
            continue;
        }
        let need = match x {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if need > back { back } else { 0 };
    }
    0
}

/// One service's output.
#[derive(Debug, Clone)]
pub struct LogRing {
    /// Complete lines, each ended by `\n`, oldest first; never longer than `cap`.
    bytes: VecDeque<u8>,
    cap: usize,
    /// The unfinished last line, at most `MAX_LINE` bytes.
    partial: Vec<u8>,
    lines: usize,
    dropped: u64,
    /// The last line committed was cut, so the next one is marked [`CONTINUED`].
    continued: bool,
}

impl LogRing {
    /// A ring of `cap` bytes (at least 2).
    pub fn new(cap: usize) -> LogRing {
        let cap = cap.max(2);
        LogRing {
            bytes: VecDeque::with_capacity(cap),
            cap,
            partial: Vec::new(),
            lines: 0,
            dropped: 0,
            continued: false,
        }
    }

    /// Appends output; every line completed by it is also pushed to `complete` (lossy
    /// UTF-8, escaped, without the newline or a CR before it) so the caller can forward it
    /// to the console.
    pub fn push(&mut self, data: &[u8], complete: &mut Vec<String>) {
        for &b in data {
            if b == b'\n' {
                self.commit(complete, false);
            } else {
                self.partial.push(b);
                if self.partial.len() >= MAX_LINE {
                    self.commit(complete, true);
                }
            }
        }
    }

    /// Commits an unfinished last line (when the service exits).
    pub fn flush(&mut self, complete: &mut Vec<String>) {
        if !self.partial.is_empty() {
            self.commit(complete, false);
        }
    }

    /// Commits the partial line; `cut`: it is not finished (it reached [`MAX_LINE`]).
    fn commit(&mut self, complete: &mut Vec<String>, cut: bool) {
        let mut raw = std::mem::take(&mut self.partial);
        let carry = if cut {
            raw.split_off(raw.len() - incomplete_tail(&raw))
        } else {
            if raw.last() == Some(&b'\r') {
                raw.pop();
            }
            Vec::new()
        };
        let mut line = if self.continued {
            CONTINUED.to_string()
        } else {
            String::new()
        };
        line.push_str(&escape(&String::from_utf8_lossy(&raw)));
        self.continued = cut;
        if line.len() > self.cap - 1 {
            let mut end = self.cap - 1;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
        }
        while self.bytes.len() + line.len() + 1 > self.cap {
            self.drop_oldest();
        }
        self.bytes.extend(line.bytes());
        self.bytes.push_back(b'\n');
        self.lines += 1;
        complete.push(line);
        raw.clear();
        raw.extend_from_slice(&carry);
        self.partial = raw;
    }

    fn drop_oldest(&mut self) {
        while let Some(b) = self.bytes.pop_front() {
            if b == b'\n' {
                break;
            }
        }
        self.lines = self.lines.saturating_sub(1);
        self.dropped += 1;
    }

    /// The last `n` complete lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let skip = self.lines.saturating_sub(n);
        let mut out = Vec::with_capacity(self.lines - skip);
        let mut line = Vec::new();
        let mut index = 0;
        for &b in &self.bytes {
            if b == b'\n' {
                if index >= skip {
                    out.push(String::from_utf8_lossy(&line).into_owned());
                }
                line.clear();
                index += 1;
            } else if index >= skip {
                line.push(b);
            }
        }
        out
    }

    /// Lines dropped to make room since the ring was made.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Complete lines held.
    pub fn len(&self) -> usize {
        self.lines
    }

    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_across_writes() {
        let mut r = LogRing::new(100);
        let mut done = Vec::new();
        r.push(b"hel", &mut done);
        assert!(done.is_empty());
        r.push(b"lo\nwor", &mut done);
        r.push(b"ld\n", &mut done);
        assert_eq!(done, ["hello", "world"]);
        assert_eq!(r.tail(10), ["hello", "world"]);
        assert_eq!(r.tail(1), ["world"]);
    }

    #[test]
    fn a_full_ring_drops_the_oldest_and_counts() {
        let mut r = LogRing::new(16);
        let mut done = Vec::new();
        for i in 0..10 {
            r.push(format!("line{i}\n").as_bytes(), &mut done);
        }
        assert_eq!(r.tail(100), ["line8", "line9"]);
        assert_eq!(r.dropped(), 8);
        assert_eq!(done.len(), 10);
    }

    #[test]
    fn an_endless_line_is_cut_and_the_ring_stays_bounded() {
        let mut r = LogRing::new(DEFAULT_RING_BYTES);
        let mut done = Vec::new();
        r.push(&vec![b'x'; MAX_LINE * 3 + 5], &mut done);
        assert_eq!(done.len(), 3);
        r.flush(&mut done);
        assert_eq!(done.last().map(String::as_str), Some("… xxxxx"));
        assert!(done[1].starts_with(CONTINUED) && !done[0].starts_with(CONTINUED));
        for _ in 0..100 {
            r.push(&vec![b'y'; 1000], &mut done);
            r.push(b"\n", &mut done);
        }
        assert!(r.bytes.len() <= DEFAULT_RING_BYTES);
        assert!(r.bytes.capacity() <= DEFAULT_RING_BYTES * 2);
        let tiny = {
            let mut t = LogRing::new(4);
            t.push(b"abcdefgh\n", &mut done);
            t.tail(5)
        };
        assert_eq!(tiny, ["abc"]);
        // A character is not split at a cut: it opens the next piece whole.
        let mut r = LogRing::new(DEFAULT_RING_BYTES);
        let mut done = Vec::new();
        let mut long = vec![b'a'; MAX_LINE - 1];
        long.extend_from_slice("é!\n".as_bytes());
        r.push(&long, &mut done);
        assert_eq!(done.len(), 2);
        assert_eq!(done[0].len(), MAX_LINE - 1);
        assert_eq!(done[1], "… é!");
    }

    #[test]
    fn control_characters_are_escaped_and_tabs_kept() {
        let mut r = LogRing::new(100);
        let mut done = Vec::new();
        r.push(b"a\x1b[2Jb\tc\x07d\x7f\r\n", &mut done);
        r.push("e\u{9b}31m\n".as_bytes(), &mut done);
        assert_eq!(done, ["a\\x1b[2Jb\tc\\x07d\\x7f", "e\\x9b31m"]);
        assert_eq!(r.tail(2), done);
        assert_eq!(escape(&done[0]), done[0]);
        assert_eq!(escape("plain\ttext"), "plain\ttext");
    }

    #[test]
    fn invalid_utf8_is_kept_lossily() {
        let mut r = LogRing::new(100);
        let mut done = Vec::new();
        r.push(b"a\xffb\n", &mut done);
        assert_eq!(r.tail(1), ["a\u{fffd}b"]);
    }
}

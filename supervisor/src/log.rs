//! Bounded per-service output rings: what a service wrote to stdout and stderr, line by
//! line, for `keelctl logs` and for the console.
//!
//! Each ring is a fixed number of bytes allocated once; when it is full the oldest lines
//! are dropped (the latest lines usually explain a crash) and counted. Must never grow,
//! block or fail: output is data, never an error.

use std::collections::VecDeque;

/// Bytes kept per service.
pub const DEFAULT_RING_BYTES: usize = 64 * 1024;
/// A line longer than this is cut and committed, so one endless line cannot hold memory.
pub const MAX_LINE: usize = 4096;

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
        }
    }

    /// Appends output; every line completed by it is also pushed to `complete` (lossy
    /// UTF-8, without the newline) so the caller can forward it to the console.
    pub fn push(&mut self, data: &[u8], complete: &mut Vec<String>) {
        for &b in data {
            if b == b'\n' {
                self.commit(complete);
            } else {
                self.partial.push(b);
                if self.partial.len() >= MAX_LINE {
                    self.commit(complete);
                }
            }
        }
    }

    /// Commits an unfinished last line (when the service exits).
    pub fn flush(&mut self, complete: &mut Vec<String>) {
        if !self.partial.is_empty() {
            self.commit(complete);
        }
    }

    fn commit(&mut self, complete: &mut Vec<String>) {
        let mut line = std::mem::take(&mut self.partial);
        line.truncate(self.cap - 1);
        complete.push(String::from_utf8_lossy(&line).into_owned());
        while self.bytes.len() + line.len() + 1 > self.cap {
            self.drop_oldest();
        }
        self.bytes.extend(line.iter().copied());
        self.bytes.push_back(b'\n');
        self.lines += 1;
        line.clear();
        self.partial = line;
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
        assert_eq!(done.last().map(String::len), Some(5));
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
    }

    #[test]
    fn invalid_utf8_is_kept_lossily() {
        let mut r = LogRing::new(100);
        let mut done = Vec::new();
        r.push(b"a\xffb\n", &mut done);
        assert_eq!(r.tail(1), ["a\u{fffd}b"]);
    }
}

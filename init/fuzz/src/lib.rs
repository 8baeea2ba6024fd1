//! The checks behind keel's own fuzz targets, one function per target, each taking arbitrary
//! bytes and panicking only when keel breaks a promise: the state disk's superblock reader
//! (`applets::state`) and the control socket's framing (`sys::control::Conn`, driven as
//! `run/` drives it).
//!
//! The libFuzzer binaries in `fuzz_targets/` call these; so do the stable tests in `tests/`.
//! `control_framing` uses a real Unix socket pair (the framing reads a descriptor); nothing
//! else does IO. This crate must not weaken a check to make a finding go away.
#![forbid(unsafe_code)]

use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use keel::applets::state::{self, SUPERBLOCK_OFFSET, StateSpec};
use keel::sys::control::{Conn, Overflow};
use supervisor::Mono;
use supervisor::proto::{MAX_REQUEST, ProtoError, Request};

/// One target's check: panics on a finding.
pub type Check = fn(&[u8]);

/// The targets by name, for the replay tests and the docs.
pub const TARGETS: &[(&str, Check)] = &[
    ("superblock", superblock),
    ("control_framing", control_framing),
];

const EXT_MAGIC: u16 = 0xEF53;

/// The device's first bytes as given, and the same bytes placed at the superblock's offset
/// (so short inputs reach the fields):
/// - `parse_superblock` never panics, and finds a superblock exactly when 2048 bytes are
///   there and the ext2/3/4 magic is at 1024 + 0x38;
/// - what it reads is what is there: the uuid's 16 bytes, the label up to its first NUL;
/// - the uuid as text names the filesystem (`keel.state=UUID=...`, in either case), and a
///   label that survives as text names it too (`keel.state=LABEL=...`);
/// - `parse_spec` and `mounted_at` never panic on the bytes as text.
pub fn superblock(data: &[u8]) {
    check_head(data);
    let mut head = vec![0u8; SUPERBLOCK_OFFSET];
    head.extend_from_slice(data);
    check_head(&head);
    let text = String::from_utf8_lossy(data);
    if let Ok(spec) = state::parse_spec(&text) {
        let _ = spec.to_string();
    }
    let _ = state::mounted_at(&text, "/var/lib/keel");
}

fn check_head(head: &[u8]) {
    let got = state::parse_superblock(head);
    let sb = head.get(SUPERBLOCK_OFFSET..SUPERBLOCK_OFFSET + 1024);
    let magic = sb.map(|s| u16::from_le_bytes([s[0x38], s[0x39]]));
    assert_eq!(
        got.is_some(),
        magic == Some(EXT_MAGIC),
        "superblock found: {}, magic {magic:x?}",
        got.is_some()
    );
    let (Some(got), Some(sb)) = (got, sb) else {
        return;
    };
    assert_eq!(&got.uuid[..], &sb[0x68..0x78], "uuid misread");
    let name = &sb[0x78..0x88];
    let raw = name.split(|&b| b == 0).next().unwrap_or_default();
    assert_eq!(got.label, String::from_utf8_lossy(raw), "label misread");
    assert!(!got.label.contains('\0'), "label with a NUL");
    let uuid = got.uuid_text();
    assert_eq!(uuid.len(), 36, "uuid text {uuid:?}");
    for u in [uuid.clone(), uuid.to_ascii_uppercase()] {
        let spec = state::parse_spec(&format!("UUID={u}"))
            .unwrap_or_else(|e| panic!("its own uuid is refused: {e}"));
        assert!(spec.matches(&got), "UUID={u} does not match its filesystem");
    }
    if !got.label.is_empty() && got.label.as_bytes() == raw {
        let spec = state::parse_spec(&format!("LABEL={}", got.label))
            .unwrap_or_else(|e| panic!("its own label is refused: {e}"));
        assert_eq!(spec, StateSpec::Label(got.label.clone()));
        assert!(spec.matches(&got), "LABEL={} does not match", got.label);
    }
    let other = StateSpec::Path("/dev/vdb".into());
    assert!(!other.matches(&got), "a path matched a superblock");
}

/// What the framing made of a stream: each request (or the protocol error that ends the
/// connection), in order.
type Framed = Vec<Result<Request, ProtoError>>;

/// Reads and frames what is waiting, as `run/control.rs`'s `next_request` does: read only when no whole
/// line is buffered, take one line at a time, stop at the first error. Checks the input
/// buffer's bound after every step. Returns false once the connection is done.
fn drain(c: &mut Conn, out: &mut Framed) -> bool {
    loop {
        if c.closing || c.dead {
            return false;
        }
        if !c.has_line() {
            c.read(MAX_REQUEST);
        }
        assert!(
            c.input_len() <= MAX_REQUEST + 1,
            "{} bytes of input buffered",
            c.input_len()
        );
        assert!(!c.dead, "a socket pair failed");
        match c.take_line(MAX_REQUEST) {
            None => return !c.closing,
            Some(Ok(line)) => {
                assert!(
                    line.len() <= MAX_REQUEST && line.ends_with(b"\n"),
                    "{line:?}"
                );
                let r = Request::decode(&line);
                let stop = r.is_err();
                out.push(r);
                if stop {
                    return false;
                }
            }
            Some(Err(Overflow::TooLong)) => {
                out.push(Err(ProtoError::TooLong));
                return false;
            }
        }
    }
}

/// Sends `chunks` one after the other into a socket pair, framing what is waiting after
/// each, then hangs up and frames the rest.
fn frame(chunks: &[&[u8]]) -> Framed {
    let (mut client, server) = UnixStream::pair().unwrap_or_else(|e| panic!("socketpair: {e}"));
    server
        .set_nonblocking(true)
        .unwrap_or_else(|e| panic!("O_NONBLOCK: {e}"));
    let mut c = Conn::new(OwnedFd::from(server), Mono(0));
    let mut out = Vec::new();
    let mut open = true;
    for chunk in chunks {
        if !open {
            break;
        }
        // The socket buffer holds far more than an input (libFuzzer's -max_len).
        client
            .write_all(chunk)
            .unwrap_or_else(|e| panic!("write: {e}"));
        open = drain(&mut c, &mut out);
    }
    drop(client);
    // Bounded: each round takes a line or reads; the stream is finite.
    for _ in 0..=chunks.iter().map(|c| c.len()).sum::<usize>() + 2 {
        if !open {
            break;
        }
        open = drain(&mut c, &mut out);
    }
    assert!(!open || c.closing, "the end of the stream was not seen");
    out
}

/// The control socket's framing with partial reads: the first byte is how many cuts (up to
/// 15), the next ones the length of each piece, the rest the client's stream. The requests
/// framed must be the same, in the same order, with the same final error, whether the
/// stream comes in one write or in those pieces; the input buffer never holds more than
/// `MAX_REQUEST + 1` bytes; nothing panics.
pub fn control_framing(data: &[u8]) {
    let cuts = usize::from(data.first().copied().unwrap_or(0) & 0x0f);
    let lens = data.get(1..1 + cuts).unwrap_or_default();
    let mut stream = data.get(1 + cuts..).unwrap_or_default();
    let whole = frame(&[stream]);
    let mut pieces: Vec<&[u8]> = Vec::new();
    for l in lens {
        let (a, b) = stream.split_at(usize::from(*l).min(stream.len()));
        pieces.push(a);
        stream = b;
    }
    pieces.push(stream);
    let split = frame(&pieces);
    assert_eq!(
        split,
        whole,
        "pieces {:?} framed differently",
        pieces.iter().map(|p| p.len()).collect::<Vec<_>>()
    );
    let lines = pieces.concat().iter().filter(|b| **b == b'\n').count();
    assert!(whole.len() <= lines + 1, "more requests than lines");
}

//! The ACPI power button as evdev devices: find the `/dev/input/event*` devices whose
//! key capability bitmap has KEY_POWER, open them non-blocking for the poll set, and read
//! their `struct input_event` records.
//!
//! Only devices present when keel starts are watched (evdev and button are loaded by the
//! boot on a modular kernel, built in on the single-image one); one that appears later is
//! not. The parsers are pure and tested; nothing here decides what a press means.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

/// KEY_POWER from linux/input-event-codes.h.
pub const KEY_POWER: u16 = 116;
/// EV_KEY from linux/input-event-codes.h.
pub const EV_KEY: u16 = 1;
/// The size of `struct input_event`: a `struct timeval` (two longs), type, code, value.
pub const EVENT_SIZE: usize = 2 * std::mem::size_of::<libc::c_long>() + 8;

/// True when a sysfs key capability bitmap (`capabilities/key`: hex words of
/// `long` width, most significant word first) has bit `code` set.
pub fn has_key(bitmap: &str, code: u16) -> bool {
    let bits = usize::try_from(libc::c_long::BITS).unwrap_or(64);
    let words: Vec<&str> = bitmap.split_whitespace().collect();
    let index = usize::from(code) / bits;
    let Some(word) = words
        .len()
        .checked_sub(index + 1)
        .and_then(|i| words.get(i))
    else {
        return false;
    };
    u64::from_str_radix(word, 16).is_ok_and(|w| w >> (usize::from(code) % bits) & 1 == 1)
}

/// True when `buf` (whole `input_event` records) holds a press of KEY_POWER.
pub fn power_pressed(buf: &[u8]) -> bool {
    buf.chunks_exact(EVENT_SIZE).any(|rec| {
        let at = EVENT_SIZE - 8;
        let kind = u16::from_ne_bytes([rec[at], rec[at + 1]]);
        let code = u16::from_ne_bytes([rec[at + 2], rec[at + 3]]);
        let value = i32::from_ne_bytes([rec[at + 4], rec[at + 5], rec[at + 6], rec[at + 7]]);
        kind == EV_KEY && code == KEY_POWER && value == 1
    })
}

/// One watched power button.
#[derive(Debug)]
pub struct Button {
    pub path: String,
    pub file: File,
}

/// Opens every `/dev/input/eventN` whose `/sys/class/input/eventN/device/capabilities/key`
/// has KEY_POWER. Errors are returned as lines to log; a machine without one is normal.
pub fn open_power_buttons() -> (Vec<Button>, Vec<String>) {
    let mut found = Vec::new();
    let mut notes = Vec::new();
    let Ok(dir) = std::fs::read_dir("/sys/class/input") else {
        return (
            found,
            vec!["no /sys/class/input: no power button to watch".into()],
        );
    };
    let mut names: Vec<String> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("event"))
        .collect();
    names.sort();
    for name in names {
        let caps = format!("/sys/class/input/{name}/device/capabilities/key");
        let Ok(bitmap) = std::fs::read_to_string(&caps) else {
            continue;
        };
        if !has_key(&bitmap, KEY_POWER) {
            continue;
        }
        let path = format!("/dev/input/{name}");
        match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(file) => found.push(Button { path, file }),
            Err(e) => notes.push(format!("cannot open power button {path}: {e}")),
        }
    }
    (found, notes)
}

/// Reads what is waiting on `b`; true when it holds a power button press. `Err` means the
/// device is gone (EOF or an error other than EAGAIN) and should be dropped.
pub fn read_button(b: &mut Button) -> Result<bool, String> {
    let mut pressed = false;
    let mut buf = vec![0u8; EVENT_SIZE * 16];
    for _ in 0..64 {
        match b.file.read(&mut buf) {
            Ok(0) => return Err(format!("{} closed", b.path)),
            Ok(n) => pressed |= power_pressed(buf.get(..n).unwrap_or(&[])),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading {}: {e}", b.path)),
        }
    }
    Ok(pressed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u16, code: u16, value: i32) -> Vec<u8> {
        let mut r = vec![0u8; EVENT_SIZE - 8];
        r.extend(kind.to_ne_bytes());
        r.extend(code.to_ne_bytes());
        r.extend(value.to_ne_bytes());
        r
    }

    #[test]
    fn key_bitmap_finds_the_power_key() {
        // QEMU's ACPI power button (LNXPWRBN) on x86_64: bit 116 is bit 52 of word 1.
        assert!(has_key("10000000000000 0\n", KEY_POWER));
        assert!(!has_key("0 0", KEY_POWER));
        // A keyboard has many keys, KEY_POWER among them or not.
        assert!(has_key(
            "ffffffff 10000000000000 fffffffffffffffe",
            KEY_POWER
        ));
        assert!(!has_key(
            "ffffffff ffefffffffffffff fffffffffffffffe",
            KEY_POWER
        ));
        // One word only: bit 116 is beyond it; a garbage word is no.
        assert!(!has_key("ffffffffffffffff", KEY_POWER));
        assert!(!has_key("zz 0", KEY_POWER));
        assert!(!has_key("", KEY_POWER));
    }

    #[test]
    fn only_a_press_of_the_power_key_counts() {
        let press = record(EV_KEY, KEY_POWER, 1);
        let release = record(EV_KEY, KEY_POWER, 0);
        let syn = record(0, 0, 0);
        let other = record(EV_KEY, 115, 1);
        assert!(power_pressed(
            &[syn.clone(), press.clone(), syn.clone()].concat()
        ));
        assert!(!power_pressed(&[release, syn, other].concat()));
        // A torn record is ignored, not misread.
        assert!(!power_pressed(&press[..EVENT_SIZE - 1]));
    }
}

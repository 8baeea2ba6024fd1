//! `keel hostkeys`: the `hostkeys` oneshot. Makes sure the ED25519 host key exists in
//! /var/lib/keel/ssh and shows its fingerprint on every console.
//!
//! It runs after `entropy` (so the CRNG is ready) and `state` (so /var/lib/keel is the
//! state disk when there is one). The key is kept when valid, created when missing and
//! replaced (the old file moved aside) when unusable, by `sshkeys::ensure_host_key`. The
//! console then gets the public key line and the fingerprint in `ssh-keygen -lv` form (the
//! line and the randomart), so a person can compare it with what their ssh client shows
//! before trusting the machine, and a line saying whether the key lives on the state disk
//! or in RAM (new at every boot).
//!
//! When the state directory cannot take a key (a read-only or full disk with no usable key
//! on it), a key is made in RAM instead, in `sshkeys::RAM_HOST_KEY_DIR`, and the console
//! says so; `keel sshd` passes it to sshd, so ssh still comes up.
//!
//! Console output goes through keel's log (every tty in /sys/class/tty/console/active,
//! opened non-blocking, and /dev/kmsg); the randomart box is written raw so it stays a box.
//! This applet must never print the private key.
#![forbid(unsafe_code)]

use crate::applets::log_to_consoles;
use crate::applets::state::{STATE_DIR, mounted_at};
use crate::consoles;
use crate::exit::Exit;
use crate::log;
use crate::sys::{console, fs};
use std::path::Path;

/// Writes `text` once to every active console, without blocking (a busy console misses it;
/// the fingerprint line is in the log and in dmesg anyway).
fn write_raw_to_consoles(text: &str) {
    let active = fs::read_to_string(consoles::ACTIVE_PATH).unwrap_or_default();
    for name in consoles::parse_active(&active).all {
        if let Ok(fd) = console::open_log_target(&format!("/dev/{name}")) {
            let _ = console::write_once(&fd, text.as_bytes());
        }
    }
}

fn say(msg: &str) {
    log::info(&format!("hostkeys: {msg}"));
}

/// Where the key lives, from what is mounted on /var/lib/keel.
pub fn storage(mountinfo: &str) -> String {
    match mounted_at(mountinfo, STATE_DIR) {
        Some((source, fstype)) if fstype != "tmpfs" && fstype != "ramfs" => format!(
            "the host key is on the state disk {source} ({fstype}): it stays the same across reboots"
        ),
        _ => "the host key is in RAM (no state disk): it is new at every boot, so clients will \
              warn after each reboot; see keel.state= in docs/ssh.md"
            .to_string(),
    }
}

/// The comment stored in the key, as ssh-keygen writes it: `root@<hostname>`.
fn comment() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "keel".to_string());
    format!("root@{host}")
}

/// Runs `keel hostkeys`.
pub fn main(args: &[String]) -> Exit {
    log_to_consoles();
    if !args.is_empty() {
        say("usage: keel hostkeys (makes /var/lib/keel/ssh/ssh_host_ed25519_key)");
        return Exit::Permanent;
    }
    let comment = comment();
    let on_disk = sshkeys::ensure_host_key(
        &mut sshkeys::OsFs,
        Path::new(sshkeys::HOST_KEY_DIR),
        sshkeys::HOST_KEY_NAME,
        || sshkeys::generate_host_key(&comment),
    );
    let ensured = match on_disk {
        Ok(e) => {
            say(&e.to_string());
            let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            say(&storage(&mountinfo));
            e
        }
        Err(disk) => match sshkeys::ensure_host_key(
            &mut sshkeys::OsFs,
            Path::new(sshkeys::RAM_HOST_KEY_DIR),
            sshkeys::HOST_KEY_NAME,
            || sshkeys::generate_host_key(&comment),
        ) {
            Ok(e) => {
                say(&format!(
                    "{disk}; using a host key in RAM instead ({}): it is new at every boot, so \
                     clients will warn after each reboot until the state disk takes a key",
                    e.path.display()
                ));
                e
            }
            Err(ram) => {
                say(&format!(
                    "{disk}; and not in RAM either: {ram}; sshd cannot start without a host key"
                ));
                return Exit::Temporary;
            }
        },
    };
    match ensured.key.public_line() {
        Ok(line) => say(&format!("public key: {line}")),
        Err(e) => say(&format!("cannot encode the public key line: {e}")),
    }
    let key = &ensured.key;
    say(&format!(
        "fingerprint: {} (compare with what ssh shows before you trust this machine)",
        key.fingerprint_line()
    ));
    write_raw_to_consoles(&format!("{}\n", key.randomart()));
    Exit::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_names_the_disk_or_ram() {
        let disk = "30 22 254:16 / /var/lib/keel rw - ext4 /dev/vdb rw\n";
        let s = storage(disk);
        assert!(s.contains("state disk /dev/vdb (ext4)"), "{s}");
        assert!(s.contains("same across reboots"), "{s}");
        let ram = "22 1 0:5 / / rw - rootfs rootfs rw\n";
        assert!(storage(ram).contains("in RAM"), "{}", storage(ram));
        let tmpfs = "31 22 0:40 / /var/lib/keel rw - tmpfs tmpfs rw\n";
        assert!(storage(tmpfs).contains("in RAM"));
    }
}

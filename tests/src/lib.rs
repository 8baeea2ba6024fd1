//! VM test harness: QEMU with a serial console you can expect on and type into.
//!
//! `Vm::boot(BootOpts::new("test_name"))` starts `qemu-system-x86_64 -accel tcg` with the
//! single image `target/keel/bzImage` from `cargo xtask kernel` (or, with
//! `KEEL_VM_KERNEL=modular` or `BootOpts::kind`, the Debian kernel and the initramfs from
//! `cargo xtask image`; see `artefacts`), a virtio NIC forwarding a free host port to the guest's
//! 2222, virtio-rng, `-no-reboot` and a monitor socket; the console goes to
//! `target/keel/vm-logs/<test_name>.log`. Then `wait_for`, `run`, `send_line`,
//! `wait_exit`, `monitor` and `ssh` drive it, and dropping the `Vm` kills QEMU.
//!
//! This is a host tool: it may wait on its children and read the clock, so it opts out of
//! the workspace's PID 1 bans. It must not be linked into anything that ships.
#![allow(clippy::disallowed_methods)] // A host tool: it waits on QEMU and reads the clock.
#![forbid(unsafe_code)]

pub mod artefacts;
pub mod console;
pub mod disk;
pub mod monitor;
pub mod qemu;
pub mod scratch;
pub mod ssh;
pub mod vm;

pub use console::Pattern;
pub use scratch::Scratch;
pub use vm::{BootOpts, Vm};

use std::time::Duration;

/// How long a boot may take to reach a marker: TCG boots of the Debian kernel take ~20 s
/// on an idle machine; this leaves room for a loaded one. Never assert timings.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// How long one console or ssh command may take.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// How long QEMU may take to exit by itself after a poweroff request.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// The variable that turns the VM tests on.
pub const ENABLE_VAR: &str = "KEEL_VM_TESTS";

/// Checks that `needles` appear in `text` in this order (each after the end of the one
/// before); the error names the first one missing and shows `text`.
pub fn in_order(text: &str, needles: &[&str]) -> anyhow::Result<()> {
    let mut at = 0;
    for needle in needles {
        match text[at..].find(needle) {
            Some(i) => at += i + needle.len(),
            None => anyhow::bail!("{needle:?} missing or out of order:\n{text}"),
        }
    }
    Ok(())
}

/// A root password for the tests that log in on the console, and its hash
/// (`openssl passwd -6 -salt keeltest console-pw-42`).
pub const TEST_PASSWORD: &str = "console-pw-42";
pub const TEST_PASSWORD_HASH: &str = "$6$keeltest$0EcwHmC75c1ihh901ua8JMDRIHRe6pekyvbwegQsUDHyaGBtbBmMX5XuXY/JllZPWm/gD237oYkaSMFwY/qaZ0";

/// An /etc/shadow that gives root `TEST_PASSWORD` (and locks sshd and nobody).
pub fn shadow_with_test_password() -> String {
    format!(
        "root:{TEST_PASSWORD_HASH}::0:99999:7:::\nsshd:*::0:99999:7:::\nnobody:*::0:99999:7:::\n"
    )
}

/// Are VM tests enabled (`KEEL_VM_TESTS=1`)? If not, prints why `test` is skipped.
pub fn vm_tests_enabled(test: &str) -> bool {
    if std::env::var(ENABLE_VAR).is_ok_and(|v| v == "1") {
        return true;
    }
    eprintln!(
        "skipping {test}: VM tests run only with {ENABLE_VAR}=1 (`cargo xtask test` sets it after building the image)"
    );
    false
}

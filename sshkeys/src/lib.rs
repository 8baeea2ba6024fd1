//! Entropy readiness, ED25519 host keys in OpenSSH format, their fingerprints, and the key store.
//!
//! Decisions are pure; whether the kernel CRNG is ready is an input, not a blocking call.
//! The operating system is reached only through two small seams that tests replace with fakes:
//! [`entropy::Entropy`] (getrandom and /dev/random) and [`store::Fs`] (the state directory).
//! This crate must not read the clock: callers pass the time in, as the supervisor core does.
//!
//! The `entropy` oneshot calls [`entropy::wait_for_crng`]; the `hostkeys` oneshot calls
//! [`store::ensure_host_key`] with [`hostkey::generate_host_key`] and prints
//! [`hostkey::HostKey::fingerprint_block`] on the console.
#![forbid(unsafe_code)]

pub mod entropy;
pub mod fingerprint;
pub mod hostkey;
pub mod store;

pub use entropy::{Entropy, KernelEntropy, Report, Step, Waiter, Warning, wait_for_crng};
pub use hostkey::{HostKey, KeyError, generate_host_key, host_key_from_seed};
pub use store::{Action, Ensured, Fs, OsFs, StoreError, ensure_host_key};

/// Where keel keeps the ED25519 host key (the .pub sits beside it), part of the image contract.
pub const HOST_KEY_PATH: &str = "/var/lib/keel/ssh/ssh_host_ed25519_key";

/// The directory of [`HOST_KEY_PATH`], as [`store::ensure_host_key`] takes it.
pub const HOST_KEY_DIR: &str = "/var/lib/keel/ssh";

/// Where `keel hostkeys` puts a key in RAM when the state directory cannot take one (a
/// read-only or full disk); `keel sshd` then hands it to sshd with `-h`. New at every boot.
pub const RAM_HOST_KEY_DIR: &str = "/run/keel/ssh";

/// The file name of [`HOST_KEY_PATH`], as [`store::ensure_host_key`] takes it.
pub const HOST_KEY_NAME: &str = "ssh_host_ed25519_key";

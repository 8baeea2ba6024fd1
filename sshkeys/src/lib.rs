//! Entropy readiness, ED25519 host keys in OpenSSH format, and their fingerprints.
//!
//! Decisions are pure; whether the kernel CRNG is ready is an input, not a blocking call.
#![forbid(unsafe_code)]

//! The stable harness: runs every fuzz target's checks without libFuzzer, so they work
//! on the stable toolchain (`cargo test --no-default-features` in sshkeys/fuzz).
//!
//! It replays the committed seeds, the local corpus libFuzzer grew (if any) and runs a
//! bounded random mutation of the seeds (`FUZZ_ITERS` inputs per target, default 3000,
//! from `FUZZ_SEED`). It must stay deterministic for a given seed, so a failure can be
//! replayed. Crash inputs under artifacts/ are not replayed here: they are reports, and
//! live on as regression tests next to the code they broke.

use sshkeys_fuzz::TARGETS;

include!("../../../supervisor/fuzz/replay_harness.rs");

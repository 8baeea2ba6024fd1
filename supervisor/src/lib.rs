//! The service supervisor: appliance config, service model, dependency graph, the pure
//! state machine, restart policy, log rings and the control protocol.
//!
//! Architecture invariant: this crate does no IO, makes no system calls and never reads
//! the clock. Time, child exits and commands come in as events; spawns, signals and
//! timers go out as actions. init/ is the only crate that carries them out.
#![forbid(unsafe_code)]

pub mod config;
pub mod core;
pub mod event;
pub mod graph;
pub mod log;
pub mod proto;
pub mod restart;
pub mod state;
pub mod timeline;
pub mod types;

pub use types::{Mono, Pid, PowerKind, Sig, SvcId, WaitStatus};

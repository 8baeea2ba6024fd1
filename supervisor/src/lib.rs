//! The service supervisor: the pure state machine over the services of the appliance
//! config (the `appliance` crate: model, validation, dependency graph), restart policy,
//! log rings and the control protocol.
//!
//! Architecture invariant: this crate does no IO, makes no system calls and never reads
//! the clock. Time, child exits and commands come in as events; spawns, signals and
//! timers go out as actions. init/ is the only crate that carries them out.
#![forbid(unsafe_code)]

pub mod core;
pub mod event;
pub mod log;
pub mod proto;
pub mod restart;
pub mod state;
pub mod timeline;
pub mod types;

pub use types::{Mono, Pid, PowerKind, Sig, SvcId, WaitStatus};

//! keel's PID 1 and its multi-call applets.
//!
//! The binary is `src/main.rs`; this library holds everything so that tests and xtask can
//! reach the pure parts (mount plan, console discovery, modules.dep resolution, the
//! lifecycle state machine).
//!
//! Architecture invariant: only `sys/` talks to the kernel with `unsafe`, and every block
//! there carries a `// SAFETY:` comment. Every other module is `#![forbid(unsafe_code)]`.
//! Only `sys/reap.rs` calls `waitpid`. Once PID 1 has started, keel never exits.
#![deny(unsafe_code)]

pub mod applets;
pub mod boot;
pub mod consoles;
pub mod exit;
pub mod lifecycle;
pub mod log;
pub mod modules;
pub mod mountplan;
pub mod pid1;
pub mod run;
#[allow(unsafe_code)]
pub mod sys;

//! keel's PID 1 and its multi-call applets.
//!
//! The binary is `src/main.rs`; this library holds everything so that tests and xtask can
//! reach the pure parts. Code map, in boot order:
//! - `main.rs` / `pid1.rs`: PID 1 when `getpid() == 1` (panic hook, catch_unwind, never
//!   exits), otherwise `applets/` by argv[0] (`keel check`, `keel supervise`, `keel
//!   notify`, `keelctl`, `poweroff`/`reboot`/`halt`, `dhcp-hook`); exit codes in `exit.rs`.
//! - `boot.rs`: the boot sequence behind `trait Sys` (recording fake in its tests), using
//!   the pure `mountplan.rs`, `consoles.rs` and `modules.rs` (modules.dep resolver).
//! - `run/`: the poll loop (signalfd, control socket, log pipes, notify sockets,
//!   readiness probes) driving two pure cores: `supervisor::core` (the services, the
//!   console shell among them) and `lifecycle.rs` (the emergency shell and the shutdown
//!   sequence around the supervisor), with one room per concern. The same loop is
//!   `keel supervise` on a host (`run::Host`).
//! - `log.rs`: the non-blocking console and /dev/kmsg log.
//! - `sys/`: the OS seam (signals, spawn, the one reaper, mounts, modules, power, lo).
//!
//! Architecture invariant: only `sys/` talks to the kernel with `unsafe`, and every block
//! there carries a `// SAFETY:` comment. Every other module is `#![forbid(unsafe_code)]`.
//! Only `sys/reap.rs` calls `waitpid`. Once PID 1 has started, keel never exits.
#![deny(unsafe_code)]

pub mod applets;
pub mod boot;
pub mod consoles;
pub mod exit;
pub mod groups;
pub mod lifecycle;
pub mod log;
pub mod modules;
pub mod mountplan;
pub mod pid1;
pub mod run;
#[allow(unsafe_code)]
pub mod sys;

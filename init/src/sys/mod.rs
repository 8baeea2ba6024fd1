//! The OS seam: every system call keel makes goes through here.
//!
//! This is the only module allowed to contain `unsafe`; each block carries a `// SAFETY:`
//! comment. Policy does not live here: these functions do what they are told and report
//! errors as `Errno`, and the callers decide what an error means. Nothing here may block
//! PID 1 for long (no sleeps, no blocking reads of ttys).

pub mod clock;
pub mod console;
pub mod fs;
pub mod kmod;
pub mod linux;
pub mod net;
pub mod power;
pub mod reap;
pub mod signals;
pub mod spawn;

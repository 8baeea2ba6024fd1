//! Kernel command line and `ip=` parsing, and applying a network plan over netlink.
//!
//! The parsers take `&str` and never touch the filesystem; reading /proc/cmdline is
//! the caller's job (init/).
#![forbid(unsafe_code)]

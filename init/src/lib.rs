//! keel's PID 1 and its multi-call applets. The binary is `src/main.rs`; this library
//! holds everything so that tests and xtask can reach the pure parts (modules.dep
//! resolution, mount plan, console discovery).

//! keel's binary: PID 1 when the kernel starts it, otherwise the applet named by argv[0]
//! (`keel`, `poweroff`, `reboot`, `halt`, `keelctl`, `dhcp-hook`).
//!
//! PID 1 is decided by `getpid() == 1`, before anything else, whatever argv[0] says: an
//! init must never exit because of its name. Only applets return an exit code.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    if std::process::id() == 1 {
        keel::pid1::main();
    }
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    keel::applets::dispatch(&args).into()
}

//! `keelctl`: the control client. The control protocol is the supervisor issue's; until it
//! lands this applet only says so.
#![forbid(unsafe_code)]

use crate::exit::Exit;

/// Runs `keelctl`.
pub fn main(_args: &[String]) -> Exit {
    eprintln!("keelctl: not implemented yet (the control socket comes with the supervisor)");
    Exit::Permanent
}

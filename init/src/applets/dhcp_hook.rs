//! `dhcp-hook`: the script dhclient runs (`-sf /sbin/dhcp-hook`). The network issue
//! builds it; until then it only says so.
#![forbid(unsafe_code)]

use crate::exit::Exit;

/// Runs `dhcp-hook`.
pub fn main(_args: &[String]) -> Exit {
    eprintln!("dhcp-hook: not implemented yet (the network issue builds it)");
    Exit::Permanent
}

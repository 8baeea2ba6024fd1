//! Kernel command line and `ip=` parsing, the network plan, and applying it over netlink.
//!
//! The parsers (`cmdline`, `ip`, `plan`, and the DHCP hook mapping in `dhcp`) take `&str` and
//! never touch the filesystem or panic on input; reading /proc/cmdline, writing
//! /etc/resolv.conf and setting the host name are the caller's job (init/). [`links`] turns a
//! plan into link operations through the [`links::Links`] trait; only `netlink` (socket and
//! framing), `rtnl` (rtnetlink: the real `Links`) and `nft` (nf_tables over nfnetlink, the
//! firewall) talk to the kernel, with no `unsafe` code.
//! [`client`] builds the argv of the DHCP client the `network` service execs.
//! [`firewall`] renders the `[firewall]` config to an nftables ruleset as text and runs nothing.
#![forbid(unsafe_code)]

pub mod client;
pub mod cmdline;
pub mod dhcp;
pub mod firewall;
pub mod ip;
pub mod links;
pub mod netlink;
pub mod nft;
pub mod plan;
pub mod rtnl;

pub use cmdline::{Cmdline, Param, Route, Warning};
pub use ip::{Cidr, IpConfig, IpError, Mac, Method};
pub use plan::{Interface, Plan, Selector};

//! `dhcp-hook`: the script of the DHCP client that the `network` service runs: ISC
//! dhclient's `-sf /sbin/dhcp-hook` (the event in `$reason`) or busybox udhcpc's
//! `-s /sbin/dhcp-hook` (the event in `$1`).
//!
//! It maps the call with `netcfg::dhcp::hook` (pure), carries out the ops over netlink,
//! writes /etc/resolv.conf, adds the command line's `rd.route=`s for the leased link, and
//! when a lease is bound sends `READY=1` to `NOTIFY_SOCKET`, which the `network` service
//! handed to the client (dhclient `-e`, udhcpc's inherited environment). It must not start
//! anything or wait for long: the client waits for it.
//!
//! The lease's host name is not applied: the host name comes from the kernel command line
//! or, without one, from the appliance config (set at boot), as systemd-networkd keeps a
//! static host name over a DHCP one. Exit status: 0, or 111 when the address could not be
//! configured (the client sees the bind fail) or 100 when the call
//! cannot be understood.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use netcfg::dhcp::{self, Lease};
use netcfg::links::{self as netlink, LinkOp};
use netcfg::rtnl::Netlink;

use crate::applets::network::{RESOLV_CONF, fatal, read_cmdline, send_ready, write_atomic};
use crate::exit::Exit;

/// The hook's environment as a map (non-UTF-8 parts lossily converted).
fn env_map() -> BTreeMap<String, String> {
    std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect()
}

/// The event's name for the log: dhclient's `reason` or udhcpc's first argument.
fn event<'a>(env: &'a BTreeMap<String, String>, arg1: Option<&'a str>) -> &'a str {
    env.get("reason")
        .map(String::as_str)
        .filter(|r| !r.is_empty())
        .or(arg1)
        .unwrap_or("?")
}

/// What the supervisor's status line says about a bound lease: the addresses added.
pub fn bound_status(p: &dhcp::HookPlan) -> String {
    let addrs: Vec<String> = p
        .ops
        .iter()
        .filter_map(|op| match op {
            LinkOp::AddAddr(_, a) => Some(a.to_string()),
            _ => None,
        })
        .collect();
    if addrs.is_empty() {
        format!("{} lease bound", p.interface)
    } else {
        format!("{} {} (dhcp)", p.interface, addrs.join(" "))
    }
}

/// Runs `dhcp-hook`; `args` are the arguments after argv[0].
pub fn main(args: &[String]) -> Exit {
    let env = env_map();
    let arg1 = args.first().map(String::as_str);
    let routes = match read_cmdline() {
        Ok(text) => netcfg::plan::plan(&text).routes,
        Err(e) => {
            eprintln!("dhcp-hook: {e}; rd.route= routes are not added");
            Vec::new()
        }
    };
    let plan = match dhcp::hook(&env, arg1, &routes) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("dhcp-hook: {} event: {e}", event(&env, arg1));
            return Exit::Permanent;
        }
    };
    if plan.ops.is_empty() && plan.lease == Lease::Unchanged {
        return Exit::Ok;
    }
    println!("dhcp-hook: {} on {}", event(&env, arg1), plan.interface);
    for op in &plan.ops {
        println!("dhcp-hook: {op}");
    }
    let mut broken = false;
    if !plan.ops.is_empty() {
        match Netlink::open() {
            Ok(mut nl) => {
                for e in netlink::execute(&mut nl, &plan.ops) {
                    eprintln!("dhcp-hook: cannot {e}");
                    broken |= fatal(&e.op);
                }
            }
            Err(e) => {
                eprintln!("dhcp-hook: cannot open a netlink socket: {e}");
                return Exit::Temporary;
            }
        }
    }
    if let Some(text) = &plan.resolv_conf {
        match write_atomic(RESOLV_CONF, text) {
            Ok(()) => println!("dhcp-hook: wrote {RESOLV_CONF}"),
            Err(e) => eprintln!("dhcp-hook: {e}"),
        }
    }
    if let Some(h) = &plan.hostname {
        println!(
            "dhcp-hook: the lease names the host {h:?}; kept the command line's or the appliance config's"
        );
    }
    if broken {
        eprintln!(
            "dhcp-hook: the lease on {} could not be configured",
            plan.interface
        );
        return Exit::Temporary;
    }
    match plan.lease {
        Lease::Bound => {
            let status = bound_status(&plan);
            match send_ready(&status) {
                Ok(true) => println!("dhcp-hook: ready: {status}"),
                Ok(false) => println!("dhcp-hook: {status} (no NOTIFY_SOCKET, nobody to tell)"),
                Err(e) => eprintln!("dhcp-hook: {e}"),
            }
        }
        Lease::Lost => eprintln!(
            "dhcp-hook: no lease on {} ({}); the client keeps asking",
            plan.interface,
            event(&env, arg1)
        ),
        Lease::Unchanged => {}
    }
    Exit::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn status_lists_the_leased_addresses() {
        let e = env(&[
            ("reason", "BOUND"),
            ("interface", "eth0"),
            ("new_ip_address", "10.0.2.15"),
            ("new_subnet_mask", "255.255.255.0"),
            ("new_routers", "10.0.2.2"),
        ]);
        let p = dhcp::hook(&e, None, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.lease, Lease::Bound);
        assert_eq!(bound_status(&p), "eth0 10.0.2.15/24 (dhcp)");
        assert_eq!(event(&e, None), "BOUND");
        assert_eq!(event(&env(&[]), Some("bound")), "bound");
        assert_eq!(event(&env(&[]), None), "?");
    }
}

//! A DHCP client's hook call mapped to link operations: ISC dhclient's `-sf` script
//! environment and busybox udhcpc's `-s` script convention, as one pure function.
//!
//! This module only reads the values it is given: the caller (keel's `dhcp-hook` applet)
//! collects the environment and argv, runs the ops with `netlink::execute`, writes
//! resolv.conf, sets the host name and tells the supervisor whether the network is ready.
//! It must not read the environment itself, so tests can feed it any lease.
//!
//! # dhclient (`reason` is set)
//! - `PREINIT`, `PREINIT6`: bring the link up.
//! - `BOUND`, `RENEW`, `REBIND`, `REBOOT`, `TIMEOUT`: drop the old address and default route
//!   when they changed, set the MTU (`new_interface_mtu`, ignored below 576 as ISC's
//!   dhclient-script does), bring the link up, add `new_ip_address`/`new_subnet_mask`, the
//!   default route via the first of `new_routers`, and the command line's `rd.route=`s for
//!   this link; resolv.conf from `new_domain_name_servers` and `new_domain_search` (or
//!   `new_domain_name`); the host name from `new_host_name`. The network is ready.
//!   Classless static routes (`new_rfc3442_classless_static_routes`, RFC 3442) are added,
//!   and then the Router option is ignored, as the RFC says; old ones that went are deleted.
//! - `EXPIRE`, `FAIL`, `RELEASE`, `STOP`: delete the default route via `old_routers` and
//!   `old_ip_address`. The network is lost.
//! - `BOUND6`, `RENEW6`, `REBIND6`, `REBOOT6`: add `new_ip6_address`/`new_ip6_prefixlen`
//!   (dropping a different `old_ip6_address`); resolv.conf from `new_dhcp6_name_servers`.
//! - `EXPIRE6`, `RELEASE6`, `STOP6`: delete `old_ip6_address`.
//! - `MEDIUM`, `ARPCHECK`, `ARPSEND`, `DEPREF6`: nothing to do.
//!
//! # udhcpc (`$1` is the event, no `reason`)
//! - `deconfig`: bring the link up and flush its IPv4 addresses (routes go with them).
//! - `bound`: flush, then add `ip`/`mask` (a prefix length; `subnet`, a dotted mask, when
//!   `mask` is missing), MTU, the default route via the first of `router`, `rd.route=`s;
//!   resolv.conf from `dns` and `search` (or `domain`); host name from `hostname`.
//! - `renew`: the same without the flush (adds replace what is there).
//! - Classless static routes (`staticroutes`, pairs of `net/prefix router`) replace `router`.
//! - `leasefail`: nothing to do; the network is lost. `nak`: nothing (a deconfig follows).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use crate::cmdline::Route;
use crate::cmdline::hostname_error;
use crate::ip::{self, Cidr, MTU_MAX};
use crate::links::{Family, LinkOp, default_route, resolv_conf};

/// The smallest lease MTU applied, as in ISC dhclient-script (smaller values are bogus).
pub const LEASE_MTU_MIN: u32 = 576;

/// What a hook call means for the network as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lease {
    /// An address is configured: the network is ready.
    Bound,
    /// The address is gone or never came: the network is not ready.
    Lost,
    /// Nothing changed that the supervisor needs to know.
    Unchanged,
}

/// The result of one hook call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookPlan {
    pub interface: String,
    pub ops: Vec<LinkOp>,
    /// The content of /etc/resolv.conf, when the lease names servers.
    pub resolv_conf: Option<String>,
    pub hostname: Option<String>,
    pub lease: Lease,
}

/// Why a hook call could not be understood: names the variable, its value and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookError {
    pub var: String,
    pub value: String,
    pub reason: String,
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=\"{}\": {}", self.var, self.value, self.reason)
    }
}

impl std::error::Error for HookError {}

fn err(var: &str, value: &str, reason: impl Into<String>) -> HookError {
    HookError {
        var: var.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

struct Env<'a>(&'a BTreeMap<String, String>);

impl Env<'_> {
    /// A variable, `None` when unset or empty.
    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn v4(&self, k: &str) -> Result<Option<Ipv4Addr>, HookError> {
        self.get(k)
            .map(|v| {
                v.parse::<Ipv4Addr>()
                    .map_err(|_| err(k, v, "not an IPv4 address"))
            })
            .transpose()
    }

    /// A space-separated list of addresses; bad entries are errors.
    fn list(&self, k: &str) -> Result<Vec<IpAddr>, HookError> {
        self.get(k)
            .unwrap_or_default()
            .split_ascii_whitespace()
            .map(|v| ip::parse_addr(v).ok_or_else(|| err(k, v, "not an IP address")))
            .collect()
    }

    fn words(&self, k: &str) -> Vec<String> {
        self.get(k)
            .unwrap_or_default()
            .split_ascii_whitespace()
            .map(str::to_string)
            .collect()
    }

    fn mtu(&self, k: &str) -> Result<Option<u32>, HookError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => match v.parse::<u32>() {
                Ok(m) if m < LEASE_MTU_MIN => Ok(None),
                Ok(m) if m <= MTU_MAX => Ok(Some(m)),
                _ => Err(err(
                    k,
                    v,
                    format!("not an MTU between {LEASE_MTU_MIN} and {MTU_MAX}"),
                )),
            },
        }
    }

    fn hostname(&self, k: &str) -> Option<String> {
        self.get(k)
            .filter(|h| hostname_error(h).is_none())
            .map(str::to_string)
    }
}

/// An IPv4 address with its prefix from a dotted mask or, when absent, the address class.
fn v4_cidr(addr: Ipv4Addr, mask: Option<(&str, &str)>) -> Result<Cidr, HookError> {
    let prefix = match mask {
        Some((var, m)) => match m.parse::<u8>() {
            Ok(p) if p <= 32 => p,
            _ => m
                .parse::<Ipv4Addr>()
                .ok()
                .and_then(ip::mask_to_prefix)
                .ok_or_else(|| err(var, m, "not a netmask nor a prefix length"))?,
        },
        None => match addr.octets()[0] {
            0..=127 => 8,
            128..=191 => 16,
            _ => 24,
        },
    };
    Ok(Cidr {
        addr: IpAddr::V4(addr),
        prefix,
    })
}

/// Maps one hook call to a plan. `env` is the hook's whole environment, `arg1` its first
/// argument (udhcpc's event), `routes` the command line's `rd.route=`s, added for this link
/// once it has a lease (those naming another device are left out).
pub fn hook(
    env: &BTreeMap<String, String>,
    arg1: Option<&str>,
    routes: &[Route],
) -> Result<HookPlan, HookError> {
    let e = Env(env);
    let iface = e.get("interface").ok_or_else(|| {
        err(
            "interface",
            "",
            "missing: run this as dhclient's -sf or udhcpc's -s script",
        )
    })?;
    // The name goes into netlink requests, the log and the supervisor's status line.
    if let Some(why) = ip::ifname_error(iface) {
        return Err(err("interface", iface, why));
    }
    let mut p = HookPlan {
        interface: iface.to_string(),
        ops: Vec::new(),
        resolv_conf: None,
        hostname: None,
        lease: Lease::Unchanged,
    };
    let extra = |p: &mut HookPlan| {
        for r in routes
            .iter()
            .filter(|r| r.dev.as_deref().is_none_or(|d| d == iface))
        {
            let mut r = r.clone();
            r.dev = Some(iface.to_string());
            p.ops.push(LinkOp::AddRoute(r));
        }
    };
    if let Some(reason) = e.get("reason") {
        dhclient(&e, reason, &mut p, extra)?;
    } else {
        let event = arg1.ok_or_else(|| {
            err(
                "reason",
                "",
                "missing, and no udhcpc event in the first argument",
            )
        })?;
        udhcpc(&e, event, &mut p, extra)?;
    }
    Ok(p)
}

fn dhclient(
    e: &Env<'_>,
    reason: &str,
    p: &mut HookPlan,
    extra: impl Fn(&mut HookPlan),
) -> Result<(), HookError> {
    let iface = p.interface.clone();
    let old = match e.v4("old_ip_address")? {
        Some(a) => Some(v4_cidr(
            a,
            e.get("old_subnet_mask").map(|m| ("old_subnet_mask", m)),
        )?),
        None => None,
    };
    let old_router = e.list("old_routers")?.into_iter().find(IpAddr::is_ipv4);
    match reason {
        "PREINIT" | "PREINIT6" => p.ops.push(LinkOp::Up(iface)),
        "BOUND" | "RENEW" | "REBIND" | "REBOOT" | "TIMEOUT" => {
            let addr = e
                .v4("new_ip_address")?
                .ok_or_else(|| err("new_ip_address", "", format!("missing in a {reason} call")))?;
            let new = v4_cidr(
                addr,
                e.get("new_subnet_mask").map(|m| ("new_subnet_mask", m)),
            )?;
            let classless = classless_dhclient(e, "new_rfc3442_classless_static_routes", &iface)?;
            let old_classless =
                classless_dhclient(e, "old_rfc3442_classless_static_routes", &iface)?;
            // RFC 3442: with classless static routes, the Router option is ignored.
            let router = match classless {
                Some(_) => None,
                None => e.list("new_routers")?.into_iter().find(IpAddr::is_ipv4),
            };
            for r in old_classless.iter().flatten() {
                if !classless.iter().flatten().any(|n| n == r) {
                    p.ops.push(LinkOp::DelRoute(r.clone()));
                }
            }
            if let Some(old_router) = old_router
                && (Some(old_router) != router || old != Some(new))
            {
                p.ops
                    .push(LinkOp::DelRoute(default_route(old_router, Some(&iface))));
            }
            if let Some(old) = old.filter(|o| *o != new) {
                p.ops.push(LinkOp::DelAddr(iface.clone(), old));
            }
            if let Some(m) = e.mtu("new_interface_mtu")? {
                p.ops.push(LinkOp::Mtu(iface.clone(), m));
            }
            p.ops.push(LinkOp::Up(iface.clone()));
            p.ops.push(LinkOp::AddAddr(iface.clone(), new));
            if let Some(r) = router {
                p.ops.push(LinkOp::AddRoute(default_route(r, Some(&iface))));
            }
            p.ops
                .extend(classless.into_iter().flatten().map(LinkOp::AddRoute));
            extra(p);
            let dns = e.list("new_domain_name_servers")?;
            let mut search = e.words("new_domain_search");
            if search.is_empty() {
                search = e.words("new_domain_name");
            }
            if !dns.is_empty() {
                p.resolv_conf = Some(resolv_conf(
                    &dns,
                    &search,
                    &format!("a DHCP lease on {iface}"),
                ));
            }
            p.hostname = e.hostname("new_host_name");
            p.lease = Lease::Bound;
        }
        "EXPIRE" | "FAIL" | "RELEASE" | "STOP" => {
            let old_classless =
                classless_dhclient(e, "old_rfc3442_classless_static_routes", &iface)?;
            p.ops
                .extend(old_classless.into_iter().flatten().map(LinkOp::DelRoute));
            if let Some(r) = old_router {
                p.ops.push(LinkOp::DelRoute(default_route(r, Some(&iface))));
            }
            if let Some(old) = old {
                p.ops.push(LinkOp::DelAddr(iface, old));
            }
            p.lease = Lease::Lost;
        }
        "BOUND6" | "RENEW6" | "REBIND6" | "REBOOT6" => {
            let new = v6(e, "new_ip6_address", "new_ip6_prefixlen")?
                .ok_or_else(|| err("new_ip6_address", "", format!("missing in a {reason} call")))?;
            if let Some(old) = v6(e, "old_ip6_address", "old_ip6_prefixlen")?.filter(|o| *o != new)
            {
                p.ops.push(LinkOp::DelAddr(iface.clone(), old));
            }
            p.ops.push(LinkOp::Up(iface.clone()));
            p.ops.push(LinkOp::AddAddr(iface.clone(), new));
            let dns = e.list("new_dhcp6_name_servers")?;
            if !dns.is_empty() {
                let search = e.words("new_dhcp6_domain_search");
                p.resolv_conf = Some(resolv_conf(
                    &dns,
                    &search,
                    &format!("a DHCPv6 lease on {iface}"),
                ));
            }
            p.lease = Lease::Bound;
        }
        "EXPIRE6" | "RELEASE6" | "STOP6" => {
            if let Some(old) = v6(e, "old_ip6_address", "old_ip6_prefixlen")? {
                p.ops.push(LinkOp::DelAddr(iface, old));
            }
            p.lease = Lease::Lost;
        }
        "MEDIUM" | "ARPCHECK" | "ARPSEND" | "DEPREF6" => {}
        other => {
            return Err(err(
                "reason",
                other,
                "not a dhclient reason keel knows (PREINIT, BOUND, RENEW, REBIND, REBOOT, EXPIRE, FAIL, RELEASE, STOP, TIMEOUT and their 6 forms)",
            ));
        }
    }
    Ok(())
}

fn v6(e: &Env<'_>, addr_var: &str, len_var: &str) -> Result<Option<Cidr>, HookError> {
    let Some(a) = e.get(addr_var) else {
        return Ok(None);
    };
    let addr = a
        .parse::<std::net::Ipv6Addr>()
        .map_err(|_| err(addr_var, a, "not an IPv6 address"))?;
    let prefix = match e.get(len_var) {
        None => 128,
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= 128)
            .ok_or_else(|| err(len_var, l, "not a prefix length between 0 and 128"))?,
    };
    Ok(Some(Cidr {
        addr: IpAddr::V6(addr),
        prefix,
    }))
}

fn udhcpc(
    e: &Env<'_>,
    event: &str,
    p: &mut HookPlan,
    extra: impl Fn(&mut HookPlan),
) -> Result<(), HookError> {
    let iface = p.interface.clone();
    match event {
        "deconfig" => {
            p.ops.push(LinkOp::Up(iface.clone()));
            p.ops.push(LinkOp::FlushAddrs(iface, Family::V4));
            p.lease = Lease::Lost;
        }
        "bound" | "renew" => {
            let addr = e
                .v4("ip")?
                .ok_or_else(|| err("ip", "", format!("missing in a {event} call")))?;
            let mask = e
                .get("mask")
                .map(|m| ("mask", m))
                .or(e.get("subnet").map(|m| ("subnet", m)));
            let new = v4_cidr(addr, mask)?;
            if event == "bound" {
                p.ops.push(LinkOp::FlushAddrs(iface.clone(), Family::V4));
            }
            if let Some(m) = e.mtu("mtu")? {
                p.ops.push(LinkOp::Mtu(iface.clone(), m));
            }
            p.ops.push(LinkOp::Up(iface.clone()));
            p.ops.push(LinkOp::AddAddr(iface.clone(), new));
            let classless = classless_udhcpc(e, "staticroutes", &iface)?;
            if classless.is_none()
                && let Some(r) = e.list("router")?.into_iter().find(IpAddr::is_ipv4)
            {
                p.ops.push(LinkOp::AddRoute(default_route(r, Some(&iface))));
            }
            p.ops
                .extend(classless.into_iter().flatten().map(LinkOp::AddRoute));
            extra(p);
            let dns = e.list("dns")?;
            let mut search = e.words("search");
            if search.is_empty() {
                search = e.words("domain");
            }
            if !dns.is_empty() {
                p.resolv_conf = Some(resolv_conf(
                    &dns,
                    &search,
                    &format!("a DHCP lease on {iface}"),
                ));
            }
            p.hostname = e.hostname("hostname");
            p.lease = Lease::Bound;
        }
        "leasefail" => p.lease = Lease::Lost,
        "nak" => {}
        other => {
            return Err(err(
                "$1",
                other,
                "not a udhcpc event (deconfig, bound, renew, leasefail, nak)",
            ));
        }
    }
    Ok(())
}

/// dhclient's option 121 (RFC 3442): space-separated decimal bytes, each route being the
/// prefix length, the significant octets of the destination, then the four of the router
/// (0.0.0.0 for a route on the link). `None` when the variable is unset.
fn classless_dhclient(
    e: &Env<'_>,
    var: &str,
    iface: &str,
) -> Result<Option<Vec<Route>>, HookError> {
    let Some(text) = e.get(var) else {
        return Ok(None);
    };
    let bytes: Vec<u8> = text
        .split_ascii_whitespace()
        .map(|b| {
            b.parse::<u8>()
                .map_err(|_| err(var, text, format!("\"{b}\" is not a byte")))
        })
        .collect::<Result<_, _>>()?;
    let mut routes = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = bytes[at];
        if len > 32 {
            return Err(err(var, text, format!("prefix length {len} is over 32")));
        }
        let n = usize::from(len).div_ceil(8);
        let Some(chunk) = bytes.get(at + 1..at + 1 + n + 4) else {
            return Err(err(
                var,
                text,
                "truncated: a route needs its destination and router",
            ));
        };
        let mut dst = [0u8; 4];
        dst[..n].copy_from_slice(&chunk[..n]);
        let router = Ipv4Addr::new(chunk[n], chunk[n + 1], chunk[n + 2], chunk[n + 3]);
        routes.push(classless_route(dst.into(), len, router, iface));
        at += 1 + n + 4;
    }
    Ok(Some(routes))
}

/// udhcpc's option 121: `staticroutes`, pairs of `net/prefix router`.
fn classless_udhcpc(e: &Env<'_>, var: &str, iface: &str) -> Result<Option<Vec<Route>>, HookError> {
    let Some(text) = e.get(var) else {
        return Ok(None);
    };
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    if words.len() % 2 != 0 {
        return Err(err(var, text, "expected pairs of <net>/<prefix> <router>"));
    }
    let mut routes = Vec::new();
    for pair in words.chunks(2) {
        let net = Cidr::parse(pair[0])
            .filter(|c| c.addr.is_ipv4())
            .ok_or_else(|| err(var, text, format!("\"{}\" is not an IPv4 network", pair[0])))?;
        let router = pair[1]
            .parse::<Ipv4Addr>()
            .map_err(|_| err(var, text, format!("\"{}\" is not an IPv4 router", pair[1])))?;
        let IpAddr::V4(dst) = net.addr else { continue };
        routes.push(classless_route(dst, net.prefix, router, iface));
    }
    Ok(Some(routes))
}

fn classless_route(dst: Ipv4Addr, prefix: u8, router: Ipv4Addr, iface: &str) -> Route {
    let to = Cidr {
        addr: IpAddr::V4(dst),
        prefix,
    }
    .network();
    let via = (!router.is_unspecified()).then_some(IpAddr::V4(router));
    Route {
        to,
        via,
        dev: Some(iface.to_string()),
    }
}

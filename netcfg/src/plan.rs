//! The network plan: what the whole command line asks of the network, as data, with a JSON
//! form for `keel cmdline --json` and for tests.
//!
//! This module is pure: it turns a parsed [`Cmdline`] into a [`Plan`] and never touches the
//! system. Applying a plan is `netlink.rs`'s job.
//!
//! # Rules
//!
//! - Each `ip=` names its interface by device name, by MAC, or not at all; values for the same
//!   interface merge as the kernel merges several `ip=`: a later value overwrites the fields it
//!   sets, and a lone `off`/`none` switches that interface off. An IPv6 client address is a
//!   field of its own (the kernel has none), so `ip=<v4>...:eth0:none ip=[<v6>]...:eth0:none`
//!   gives eth0 both. Values for different interfaces are different interfaces (dracut).
//! - No `ip=` that parses means DHCP on the first ethernet interface. An interface that names
//!   neither a device nor a MAC is "the first ethernet interface": [`Selector::FirstEthernet`],
//!   `"name":null,"mac":null` in JSON. The applier picks the first link, in ifindex order,
//!   that is not loopback and has an ethernet (6-byte) hardware address.
//! - `ifname=<name>:<mac>` gives the named interface its MAC, so the applier finds the link by
//!   MAC and renames it; a binding no `ip=` uses appears as an interface with method `off`,
//!   which is renamed and otherwise left alone.
//! - `hostname=` wins over the hostname field of `ip=`; the last one wins.
//! - Name servers: every `nameserver=` first, then the dns0/dns1 fields, duplicates dropped.
//! - A gateway only matters for a static interface; for DHCP the lease decides, and the plan
//!   warns that the gateway field was ignored.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::cmdline::{self, Cmdline, Route};
use crate::ip::{Autoconf, Cidr, IpConfig, Mac, Method};

/// How the applier finds the link of an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// The link with this MAC (then renamed to the interface's name, if it has one).
    Mac(Mac),
    /// The link with this name.
    Name(String),
    /// The first non-loopback link with an ethernet address, in ifindex order.
    FirstEthernet,
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Mac(m) => write!(f, "the link with MAC {m}"),
            Selector::Name(n) => write!(f, "link {n}"),
            Selector::FirstEthernet => f.write_str("the first ethernet link"),
        }
    }
}

/// One interface of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// The interface name; `None` with no MAC means the first ethernet interface.
    pub name: Option<String>,
    pub mac: Option<Mac>,
    pub method: Method,
    /// Static addresses, always with a prefix length.
    pub addresses: Vec<Cidr>,
    pub gateway: Option<Ipv4Addr>,
    pub gateway6: Option<Ipv6Addr>,
    pub mtu: Option<u32>,
}

impl Interface {
    /// DHCP on the first ethernet interface: the plan when the command line has no `ip=`.
    pub fn default_dhcp() -> Interface {
        Interface {
            name: None,
            mac: None,
            method: Method::Dhcp,
            addresses: Vec::new(),
            gateway: None,
            gateway6: None,
            mtu: None,
        }
    }

    /// How the applier finds this interface's link.
    pub fn selector(&self) -> Selector {
        match (&self.mac, &self.name) {
            (Some(m), _) => Selector::Mac(*m),
            (None, Some(n)) => Selector::Name(n.clone()),
            (None, None) => Selector::FirstEthernet,
        }
    }
}

/// The network plan of a command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub interfaces: Vec<Interface>,
    pub hostname: Option<String>,
    pub nameservers: Vec<IpAddr>,
    pub ntp: Vec<IpAddr>,
    pub routes: Vec<Route>,
    /// One line per ignored argument or field: which, and why.
    pub warnings: Vec<String>,
}

/// The plan of a command line's text: [`cmdline::parse`] then [`from_cmdline`].
pub fn plan(text: &str) -> Plan {
    let (c, warnings) = cmdline::parse(text);
    from_cmdline(&c, warnings.iter().map(ToString::to_string).collect())
}

/// Which interface an `ip=` value is about.
#[derive(PartialEq, Eq)]
enum Target {
    Device(String),
    Mac(Mac),
    First,
}

fn target(cfg: &IpConfig) -> Target {
    match (&cfg.device, &cfg.mac) {
        (Some(d), _) => Target::Device(d.clone()),
        (None, Some(m)) => Target::Mac(*m),
        (None, None) => Target::First,
    }
}

/// The `ip=` values for one interface, merged. The kernel has one client address field,
/// for IPv4; an IPv6 client address (dracut) is a field of its own, so an IPv4 and an IPv6
/// `ip=` for the same interface give it both addresses.
struct Merged {
    target: Target,
    cfg: IpConfig,
    v4: Option<Cidr>,
    v6: Option<Cidr>,
}

impl Merged {
    fn new(target: Target, cfg: &IpConfig) -> Merged {
        let mut m = Merged {
            target,
            cfg: IpConfig::default(),
            v4: None,
            v6: None,
        };
        m.merge(cfg);
        m
    }

    /// Merges a later `ip=` for the same interface, as the kernel does: the later value
    /// overwrites the fields it sets, and a lone `off`/`none` switches the interface off.
    fn merge(&mut self, new: &IpConfig) {
        let old = &mut self.cfg;
        if new.lone {
            if new.autoconf == Some(Autoconf::Off) {
                *old = IpConfig {
                    device: old.device.take(),
                    mac: old.mac,
                    ..new.clone()
                };
                self.v4 = None;
                self.v6 = None;
            } else {
                old.autoconf = new.autoconf;
            }
            return;
        }
        macro_rules! take {
            ($($f:ident),*) => { $( if new.$f.is_some() { old.$f = new.$f.clone(); } )* };
        }
        take!(
            client, server, gateway, gateway6, hostname, domain, device, autoconf, ntp, mtu, mac
        );
        if !new.dns.is_empty() {
            old.dns = new.dns.clone();
        }
        old.lone = false;
        match new.client {
            Some(c) if c.addr.is_ipv4() => self.v4 = Some(c),
            Some(c) => self.v6 = Some(c),
            None => {}
        }
    }
}

/// Builds the plan from a parsed command line; `warnings` are the command line's own.
pub fn from_cmdline(c: &Cmdline, mut warnings: Vec<String>) -> Plan {
    let mut merged: Vec<Merged> = Vec::new();
    for (_, cfg) in &c.ip {
        let t = target(cfg);
        match merged.iter_mut().find(|m| m.target == t) {
            Some(m) => m.merge(cfg),
            None => merged.push(Merged::new(t, cfg)),
        }
    }

    let mut hostname = None;
    let mut dns = Vec::new();
    let mut ntp = Vec::new();
    let mut interfaces = Vec::new();
    for m in &merged {
        let cfg = &m.cfg;
        let method = cfg.method();
        let mac = cfg.mac.or_else(|| {
            let name = cfg.device.as_deref()?;
            c.ifnames
                .iter()
                .rev()
                .find(|b| b.name == name)
                .map(|b| b.mac)
        });
        let mut iface = Interface {
            name: cfg.device.clone(),
            mac,
            method,
            addresses: m.v4.into_iter().chain(m.v6).collect(),
            gateway: None,
            gateway6: None,
            mtu: cfg.mtu,
        };
        if method == Method::Static {
            iface.gateway = cfg.gateway;
            iface.gateway6 = cfg.gateway6;
        } else if let Some(g) = cfg.gateway.map(IpAddr::V4).or(cfg.gateway6.map(IpAddr::V6)) {
            let who = cfg
                .device
                .as_deref()
                .unwrap_or("the first ethernet interface");
            warnings.push(format!(
                "ip= for {who}: field gateway \"{g}\" ignored: the interface uses {}, which brings its own",
                method.as_str()
            ));
        }
        if cfg.hostname.is_some() {
            hostname.clone_from(&cfg.hostname);
        }
        dns.extend(cfg.dns.iter().copied());
        ntp.extend(cfg.ntp.map(IpAddr::V4));
        interfaces.push(iface);
    }
    if interfaces.is_empty() {
        interfaces.push(Interface::default_dhcp());
    }
    for b in &c.ifnames {
        let used = interfaces
            .iter()
            .any(|i| i.name.as_deref() == Some(b.name.as_str()) || i.mac == Some(b.mac));
        if !used {
            interfaces.push(Interface {
                name: Some(b.name.clone()),
                mac: Some(b.mac),
                method: Method::Off,
                ..Interface::default_dhcp()
            });
        }
    }
    if c.hostname.is_some() {
        hostname.clone_from(&c.hostname);
    }
    let mut nameservers: Vec<IpAddr> = Vec::new();
    for a in c.nameservers.iter().chain(dns.iter()) {
        if !nameservers.contains(a) {
            nameservers.push(*a);
        }
    }
    ntp.dedup();
    Plan {
        interfaces,
        hostname,
        nameservers,
        ntp,
        routes: c.routes.clone(),
        warnings,
    }
}

/// Appends `s` to `out` as a JSON string.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_opt(out: &mut String, v: Option<String>) {
    match v {
        Some(s) => json_str(out, &s),
        None => out.push_str("null"),
    }
}

fn json_list<T>(out: &mut String, items: &[T], mut each: impl FnMut(&mut String, &T)) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(out, item);
    }
    out.push(']');
}

impl Plan {
    /// The plan as one JSON object, in the shape of issue 4, with `null` for unknown values.
    pub fn to_json(&self) -> String {
        let mut o = String::with_capacity(256);
        o.push_str("{\"interfaces\":");
        json_list(&mut o, &self.interfaces, |o, i| {
            o.push_str("{\"name\":");
            json_opt(o, i.name.clone());
            o.push_str(",\"mac\":");
            json_opt(o, i.mac.map(|m| m.to_string()));
            o.push_str(",\"method\":");
            json_str(o, i.method.as_str());
            o.push_str(",\"addresses\":");
            json_list(o, &i.addresses, |o, a| json_str(o, &a.to_string()));
            o.push_str(",\"gateway\":");
            json_opt(o, i.gateway.map(|g| g.to_string()));
            o.push_str(",\"gateway6\":");
            json_opt(o, i.gateway6.map(|g| g.to_string()));
            o.push_str(",\"mtu\":");
            match i.mtu {
                Some(m) => o.push_str(&m.to_string()),
                None => o.push_str("null"),
            }
            o.push('}');
        });
        o.push_str(",\"hostname\":");
        json_opt(&mut o, self.hostname.clone());
        o.push_str(",\"nameservers\":");
        json_list(&mut o, &self.nameservers, |o, a| {
            json_str(o, &a.to_string())
        });
        o.push_str(",\"ntp\":");
        json_list(&mut o, &self.ntp, |o, a| json_str(o, &a.to_string()));
        o.push_str(",\"routes\":");
        json_list(&mut o, &self.routes, |o, r| {
            o.push_str("{\"to\":");
            json_str(o, &r.to.to_string());
            o.push_str(",\"via\":");
            json_opt(o, r.via.map(|v| v.to_string()));
            o.push_str(",\"dev\":");
            json_opt(o, r.dev.clone());
            o.push('}');
        });
        o.push_str(",\"warnings\":");
        json_list(&mut o, &self.warnings, |o, w| json_str(o, w));
        o.push('}');
        o
    }
}

/// A readable summary, one line per item, for `keel cmdline` without `--json`.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for i in &self.interfaces {
            let name = i.name.as_deref().unwrap_or("(first ethernet)");
            write!(f, "interface {name}: {}", i.method.as_str())?;
            if let Some(m) = i.mac {
                write!(f, " mac {m}")?;
            }
            for a in &i.addresses {
                write!(f, " {a}")?;
            }
            if let Some(g) = i.gateway {
                write!(f, " gateway {g}")?;
            }
            if let Some(g) = i.gateway6 {
                write!(f, " gateway6 {g}")?;
            }
            if let Some(m) = i.mtu {
                write!(f, " mtu {m}")?;
            }
            writeln!(f)?;
        }
        if let Some(h) = &self.hostname {
            writeln!(f, "hostname {h}")?;
        }
        for n in &self.nameservers {
            writeln!(f, "nameserver {n}")?;
        }
        for n in &self.ntp {
            writeln!(f, "ntp {n}")?;
        }
        for r in &self.routes {
            write!(f, "route {}", r.to)?;
            if let Some(v) = r.via {
                write!(f, " via {v}")?;
            }
            if let Some(d) = &r.dev {
                write!(f, " dev {d}")?;
            }
            writeln!(f)?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

//! Applying a network plan or a DHCP lease to the kernel, through the [`Links`] trait.
//!
//! The work is split so that almost all of it is pure and testable without a kernel:
//! - [`LinkWait`] finds the plan's links, and tells the caller when to look again; the caller
//!   drives time (it passes `now` in milliseconds, this module never reads a clock or sleeps);
//! - [`plan_ops`] turns a plan plus the links found into a list of [`LinkOp`]s, and
//!   `dhcp::hook` turns a DHCP client's hook environment into the same ops;
//! - [`execute`] carries out ops through any [`Links`]: the real [`crate::rtnl::Netlink`] socket, or the
//!   recording [`fake::FakeLinks`] in tests;
//! - [`resolv_conf`] makes the text of /etc/resolv.conf; the caller writes the file.
//!
//! This module must not spawn processes, write files or block without a bound: a netlink
//! reply that does not come within [`REPLY_TIMEOUT_SECS`] is an error.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::cmdline::Route;
use crate::ip::{Cidr, Mac, Method};
use crate::plan::{Plan, Selector};

pub use crate::netlink::{NlError, REPLY_TIMEOUT_SECS};

/// One link as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    /// The hardware address, when it is a 6-byte ethernet address.
    pub mac: Option<Mac>,
    pub loopback: bool,
    /// True for ARPHRD_ETHER links (virtio-net, xen-netfront, veth, e1000...).
    pub ether: bool,
    pub up: bool,
    pub mtu: u32,
}

/// A route as the kernel takes it: devices by index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    pub to: Cidr,
    pub via: Option<IpAddr>,
    pub oif: Option<u32>,
    /// The gateway is on the link even though no address of the link covers it.
    pub onlink: bool,
}

/// What keel needs from rtnetlink. Add calls replace what is there, so applying the same
/// thing twice is not an error; delete calls of something already gone are not either.
pub trait Links {
    /// Every link, in ifindex order.
    fn links(&mut self) -> Result<Vec<LinkInfo>, NlError>;
    fn set_up(&mut self, index: u32) -> Result<(), NlError>;
    fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<(), NlError>;
    /// Renames a link; the kernel refuses (EBUSY) while it is up.
    fn set_name(&mut self, index: u32, name: &str) -> Result<(), NlError>;
    fn add_addr(&mut self, index: u32, addr: Cidr) -> Result<(), NlError>;
    fn del_addr(&mut self, index: u32, addr: Cidr) -> Result<(), NlError>;
    /// The addresses of one link, of both families.
    fn addrs(&mut self, index: u32) -> Result<Vec<Cidr>, NlError>;
    fn add_route(&mut self, route: &RouteSpec) -> Result<(), NlError>;
    fn del_route(&mut self, route: &RouteSpec) -> Result<(), NlError>;
}

/// An address family, for flushing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// One step of applying a plan or a lease, naming links by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkOp {
    Rename {
        from: String,
        to: String,
    },
    Up(String),
    Mtu(String, u32),
    AddAddr(String, Cidr),
    DelAddr(String, Cidr),
    /// Deletes every address of the family from the link (udhcpc's deconfig).
    FlushAddrs(String, Family),
    AddRoute(Route),
    DelRoute(Route),
}

impl fmt::Display for LinkOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let route = |f: &mut fmt::Formatter<'_>, verb: &str, r: &Route| {
            write!(f, "{verb} route {}", r.to)?;
            if let Some(v) = r.via {
                write!(f, " via {v}")?;
            }
            if let Some(d) = &r.dev {
                write!(f, " dev {d}")?;
            }
            Ok(())
        };
        match self {
            LinkOp::Rename { from, to } => write!(f, "rename {from} to {to}"),
            LinkOp::Up(n) => write!(f, "set {n} up"),
            LinkOp::Mtu(n, m) => write!(f, "set mtu {m} on {n}"),
            LinkOp::AddAddr(n, a) => write!(f, "add address {a} to {n}"),
            LinkOp::DelAddr(n, a) => write!(f, "delete address {a} from {n}"),
            LinkOp::FlushAddrs(n, Family::V4) => write!(f, "flush IPv4 addresses of {n}"),
            LinkOp::FlushAddrs(n, Family::V6) => write!(f, "flush IPv6 addresses of {n}"),
            LinkOp::AddRoute(r) => route(f, "add", r),
            LinkOp::DelRoute(r) => route(f, "delete", r),
        }
    }
}

/// An op that failed, and why.
#[derive(Debug)]
pub struct OpError {
    pub op: LinkOp,
    pub error: NlError,
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.error)
    }
}

impl std::error::Error for OpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The default route of a family.
pub fn default_route(via: IpAddr, dev: Option<&str>) -> Route {
    let to = match via {
        IpAddr::V4(_) => Cidr {
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            prefix: 0,
        },
        IpAddr::V6(_) => Cidr {
            addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            prefix: 0,
        },
    };
    Route {
        to,
        via: Some(via),
        dev: dev.map(str::to_string),
    }
}

fn link_local(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// Carries out `ops` in order. A failed op does not stop the others (a route that cannot
/// be added must not cost the address); every failure is returned, naming the op.
pub fn execute<L: Links>(l: &mut L, ops: &[LinkOp]) -> Vec<OpError> {
    let mut errors = Vec::new();
    let mut links = match l.links() {
        Ok(links) => links,
        Err(error) => {
            return ops
                .iter()
                .map(|op| OpError {
                    op: op.clone(),
                    error: error.clone(),
                })
                .collect();
        }
    };
    for op in ops {
        if let Err(error) = execute_one(l, &mut links, op) {
            errors.push(OpError {
                op: op.clone(),
                error,
            });
        }
    }
    errors
}

fn index_of(links: &[LinkInfo], name: &str) -> Result<u32, NlError> {
    links
        .iter()
        .find(|k| k.name == name)
        .map(|k| k.index)
        .ok_or_else(|| NlError::NoLink(name.to_string()))
}

fn route_spec<L: Links>(l: &mut L, links: &[LinkInfo], r: &Route) -> Result<RouteSpec, NlError> {
    let oif = r.dev.as_deref().map(|d| index_of(links, d)).transpose()?;
    let mut onlink = false;
    if let (Some(via), Some(oif)) = (r.via, oif)
        && !link_local(via)
    {
        onlink = !l.addrs(oif)?.iter().any(|a| a.contains(via));
    }
    Ok(RouteSpec {
        to: r.to.network(),
        via: r.via,
        oif,
        onlink,
    })
}

fn execute_one<L: Links>(l: &mut L, links: &mut [LinkInfo], op: &LinkOp) -> Result<(), NlError> {
    match op {
        LinkOp::Rename { from, to } => {
            let i = index_of(links, from)?;
            l.set_name(i, to)?;
            if let Some(k) = links.iter_mut().find(|k| k.index == i) {
                k.name.clone_from(to);
            }
            Ok(())
        }
        LinkOp::Up(n) => l.set_up(index_of(links, n)?),
        LinkOp::Mtu(n, m) => l.set_mtu(index_of(links, n)?, *m),
        LinkOp::AddAddr(n, a) => l.add_addr(index_of(links, n)?, *a),
        LinkOp::DelAddr(n, a) => gone_ok(l.del_addr(index_of(links, n)?, *a)),
        LinkOp::FlushAddrs(n, fam) => {
            let i = index_of(links, n)?;
            for a in l.addrs(i)? {
                if a.addr.is_ipv4() == (*fam == Family::V4) {
                    gone_ok(l.del_addr(i, a))?;
                }
            }
            Ok(())
        }
        LinkOp::AddRoute(r) => {
            let spec = route_spec(l, links, r)?;
            l.add_route(&spec)
        }
        LinkOp::DelRoute(r) => {
            let spec = route_spec(l, links, r)?;
            gone_ok(l.del_route(&spec))
        }
    }
}

/// A delete of something already gone is what the caller wanted.
fn gone_ok(r: Result<(), NlError>) -> Result<(), NlError> {
    match r {
        Err(e) if e.is_gone() => Ok(()),
        other => other,
    }
}

/// Finds the link an interface selector means. `taken` are links that other interfaces of
/// the plan name explicitly, which the first-ethernet rule skips.
pub fn find_link<'a>(links: &'a [LinkInfo], sel: &Selector, taken: &[u32]) -> Option<&'a LinkInfo> {
    match sel {
        Selector::Mac(m) => links.iter().find(|k| k.mac == Some(*m)),
        Selector::Name(n) => links.iter().find(|k| &k.name == n),
        Selector::FirstEthernet => {
            let mut ether: Vec<&LinkInfo> = links
                .iter()
                .filter(|k| !k.loopback && k.ether && k.mac.is_some() && !taken.contains(&k.index))
                .collect();
            ether.sort_by_key(|k| k.index);
            ether.first().copied()
        }
    }
}

/// Where waiting for the plan's links stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitState {
    /// Every interface of the plan has its link (index-aligned with `plan.interfaces`;
    /// `None` only for `off` interfaces whose link is absent, which nobody waits for).
    Ready(Vec<Option<LinkInfo>>),
    /// Some links are missing: look again at `retry_at` (or on a netlink link event).
    Waiting {
        missing: Vec<Selector>,
        retry_at: u64,
    },
    /// The bound passed: apply what was found, and report what was not.
    TimedOut {
        found: Vec<Option<LinkInfo>>,
        missing: Vec<Selector>,
    },
}

/// Waiting for the plan's links with a bound. Time is the caller's: milliseconds on any
/// monotonic clock, the same one for `new` and `poll`.
#[derive(Clone, Copy, Debug)]
pub struct LinkWait {
    pub deadline: u64,
    pub interval: u64,
}

/// How long keel waits for network links by default: virtio-net and xen-netfront appear
/// well within a second of module load under TCG; 10 s leaves room for slow hosts.
pub const LINK_WAIT_MS: u64 = 10_000;
/// How often to look again while waiting.
pub const LINK_POLL_MS: u64 = 100;

impl LinkWait {
    pub fn new(now: u64, bound_ms: u64) -> LinkWait {
        LinkWait {
            deadline: now.saturating_add(bound_ms),
            interval: LINK_POLL_MS,
        }
    }

    /// Looks once. Never sleeps.
    pub fn poll<L: Links>(&self, l: &mut L, plan: &Plan, now: u64) -> Result<WaitState, NlError> {
        let links = l.links()?;
        Ok(self.check(&links, plan, now))
    }

    /// The pure part of [`LinkWait::poll`]: decides from a list of links.
    pub fn check(&self, links: &[LinkInfo], plan: &Plan, now: u64) -> WaitState {
        let found = resolve(links, plan);
        let missing: Vec<Selector> = plan
            .interfaces
            .iter()
            .zip(&found)
            .filter(|(i, f)| f.is_none() && i.method != Method::Off)
            .map(|(i, _)| i.selector())
            .collect();
        if missing.is_empty() {
            WaitState::Ready(found)
        } else if now >= self.deadline {
            WaitState::TimedOut { found, missing }
        } else {
            WaitState::Waiting {
                missing,
                retry_at: now.saturating_add(self.interval).min(self.deadline),
            }
        }
    }
}

/// The link of each interface of the plan, index-aligned with `plan.interfaces`.
pub fn resolve(links: &[LinkInfo], plan: &Plan) -> Vec<Option<LinkInfo>> {
    let mut taken: Vec<u32> = Vec::new();
    for i in &plan.interfaces {
        let sel = i.selector();
        if sel != Selector::FirstEthernet
            && let Some(k) = find_link(links, &sel, &[])
        {
            taken.push(k.index);
        }
    }
    plan.interfaces
        .iter()
        .map(|i| {
            let sel = i.selector();
            let k = find_link(links, &sel, &taken).cloned();
            if sel == Selector::FirstEthernet
                && let Some(k) = &k
            {
                taken.push(k.index);
            }
            k
        })
        .collect()
}

/// What applying a plan leaves for the caller to do.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Applied {
    /// The ops to carry out with [`execute`].
    pub ops: Vec<LinkOp>,
    /// Links (by their final name) that need a DHCP client, with the method (dhcp or dhcp6).
    pub dhcp: Vec<(String, Method)>,
    /// The content of /etc/resolv.conf, when the plan names servers.
    pub resolv_conf: Option<String>,
}

/// Turns a plan and its links (from [`LinkWait`]) into ops. The loopback link is brought up
/// first; interfaces without a link are skipped (the wait already reported them). Routes
/// through a DHCP link (named by `dev`, or with a gateway no static address covers) are left
/// to the DHCP hook, which adds them once the lease is bound.
pub fn plan_ops(plan: &Plan, links: &[LinkInfo], found: &[Option<LinkInfo>]) -> Applied {
    let mut out = Applied::default();
    for lo in links.iter().filter(|k| k.loopback) {
        out.ops.push(LinkOp::Up(lo.name.clone()));
    }
    for (iface, link) in plan.interfaces.iter().zip(found) {
        let Some(link) = link else { continue };
        let mut name = link.name.clone();
        if let Some(want) = &iface.name
            && *want != link.name
        {
            out.ops.push(LinkOp::Rename {
                from: link.name.clone(),
                to: want.clone(),
            });
            name.clone_from(want);
        }
        if iface.method == Method::Off {
            continue;
        }
        if let Some(m) = iface.mtu {
            out.ops.push(LinkOp::Mtu(name.clone(), m));
        }
        out.ops.push(LinkOp::Up(name.clone()));
        match iface.method {
            Method::Static => {
                for a in &iface.addresses {
                    out.ops.push(LinkOp::AddAddr(name.clone(), *a));
                }
                if let Some(g) = iface.gateway {
                    out.ops
                        .push(LinkOp::AddRoute(default_route(IpAddr::V4(g), Some(&name))));
                }
                if let Some(g) = iface.gateway6 {
                    out.ops
                        .push(LinkOp::AddRoute(default_route(IpAddr::V6(g), Some(&name))));
                }
            }
            Method::Dhcp | Method::Dhcp6 => out.dhcp.push((name.clone(), iface.method)),
            Method::Auto6 | Method::Off => {}
        }
    }
    // A route through a DHCP link can only be added once the lease is there: the hook adds
    // those (dhcp::hook's `routes`). The rest are added now.
    let dhcp_names: Vec<&str> = out.dhcp.iter().map(|(n, _)| n.as_str()).collect();
    let static_addrs: Vec<Cidr> = plan
        .interfaces
        .iter()
        .filter(|i| i.method == Method::Static)
        .flat_map(|i| i.addresses.iter().copied())
        .collect();
    for r in &plan.routes {
        let later = match (&r.dev, r.via) {
            (Some(d), _) => dhcp_names.contains(&d.as_str()),
            (None, Some(via)) => {
                !dhcp_names.is_empty() && !static_addrs.iter().any(|a| a.contains(via))
            }
            (None, None) => false,
        };
        if !later {
            out.ops.push(LinkOp::AddRoute(r.clone()));
        }
    }
    if !plan.nameservers.is_empty() {
        out.resolv_conf = Some(resolv_conf(
            &plan.nameservers,
            &[],
            "the kernel command line",
        ));
    }
    out
}

/// The text of /etc/resolv.conf. `source` says where the servers came from, for the
/// comment at the top. Only the first three servers are read by musl and glibc (MAXNS), so
/// the rest are written as comments rather than dropped silently. A server named twice is
/// written once, where it first appears: a repeat would take one of the three places
/// (found by the `dhcp_hook` fuzz target: a lease listing 10.0.2.3 three times).
pub fn resolv_conf(nameservers: &[IpAddr], search: &[String], source: &str) -> String {
    let mut unique: Vec<&IpAddr> = Vec::with_capacity(nameservers.len());
    for n in nameservers {
        if !unique.contains(&n) {
            unique.push(n);
        }
    }
    let mut s = format!("# written by keel from {source}\n");
    let search: Vec<&str> = search
        .iter()
        .map(String::as_str)
        .filter(|d| valid_domain(d))
        .collect();
    if !search.is_empty() {
        s.push_str(&format!("search {}\n", search.join(" ")));
    }
    for (i, n) in unique.iter().enumerate() {
        let hash = if i < 3 {
            ""
        } else {
            "# (only three are used) "
        };
        s.push_str(&format!("{hash}nameserver {n}\n"));
    }
    s
}

/// A search domain that cannot break the file: no spaces, no control characters.
fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'#' && b != b';')
}

/// A recording fake of [`Links`] for tests: it keeps links, addresses and routes in memory,
/// behaves like the kernel for the cases keel relies on, and logs every call.
pub mod fake {
    use super::{Cidr, LinkInfo, Links, NlError, RouteSpec};

    #[derive(Clone, Debug, Default)]
    pub struct FakeLinks {
        pub links: Vec<LinkInfo>,
        pub addrs: Vec<(u32, Cidr)>,
        pub routes: Vec<RouteSpec>,
        /// Every call, e.g. `add_addr 2 10.0.0.2/24`.
        pub calls: Vec<String>,
    }

    impl FakeLinks {
        /// A fake with `lo` (index 1) and one ethernet link per name, from index 2 up, with
        /// MACs `52:54:00:00:00:<index>`.
        pub fn with_ether(names: &[&str]) -> FakeLinks {
            let mut links = vec![LinkInfo {
                index: 1,
                name: "lo".into(),
                mac: None,
                loopback: true,
                ether: false,
                up: false,
                mtu: 65536,
            }];
            for (i, n) in names.iter().enumerate() {
                let index = i as u32 + 2;
                links.push(LinkInfo {
                    index,
                    name: (*n).to_string(),
                    mac: Some(crate::ip::Mac([0x52, 0x54, 0, 0, 0, index as u8])),
                    loopback: false,
                    ether: true,
                    up: false,
                    mtu: 1500,
                });
            }
            FakeLinks {
                links,
                ..FakeLinks::default()
            }
        }

        fn link(&mut self, index: u32) -> Result<&mut LinkInfo, NlError> {
            self.links
                .iter_mut()
                .find(|k| k.index == index)
                .ok_or(NlError::Kernel(19))
        }
    }

    impl Links for FakeLinks {
        fn links(&mut self) -> Result<Vec<LinkInfo>, NlError> {
            Ok(self.links.clone())
        }
        fn set_up(&mut self, index: u32) -> Result<(), NlError> {
            self.calls.push(format!("set_up {index}"));
            self.link(index)?.up = true;
            Ok(())
        }
        fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<(), NlError> {
            self.calls.push(format!("set_mtu {index} {mtu}"));
            self.link(index)?.mtu = mtu;
            Ok(())
        }
        fn set_name(&mut self, index: u32, name: &str) -> Result<(), NlError> {
            self.calls.push(format!("set_name {index} {name}"));
            let link = self.link(index)?;
            if link.up {
                return Err(NlError::Kernel(16));
            }
            link.name = name.to_string();
            Ok(())
        }
        fn add_addr(&mut self, index: u32, addr: Cidr) -> Result<(), NlError> {
            self.calls.push(format!("add_addr {index} {addr}"));
            self.link(index)?;
            self.addrs
                .retain(|(i, a)| !(*i == index && a.addr == addr.addr));
            self.addrs.push((index, addr));
            Ok(())
        }
        fn del_addr(&mut self, index: u32, addr: Cidr) -> Result<(), NlError> {
            self.calls.push(format!("del_addr {index} {addr}"));
            let before = self.addrs.len();
            self.addrs.retain(|(i, a)| !(*i == index && *a == addr));
            if before == self.addrs.len() {
                return Err(NlError::Kernel(99));
            }
            // The kernel drops routes through a link that has no address of the family left.
            let v4 = addr.addr.is_ipv4();
            if !self
                .addrs
                .iter()
                .any(|(i, a)| *i == index && a.addr.is_ipv4() == v4)
            {
                self.routes
                    .retain(|r| !(r.oif == Some(index) && r.to.addr.is_ipv4() == v4));
            }
            Ok(())
        }
        fn addrs(&mut self, index: u32) -> Result<Vec<Cidr>, NlError> {
            self.calls.push(format!("addrs {index}"));
            Ok(self
                .addrs
                .iter()
                .filter(|(i, _)| *i == index)
                .map(|(_, a)| *a)
                .collect())
        }
        fn add_route(&mut self, route: &RouteSpec) -> Result<(), NlError> {
            let mut call = format!("add_route {}", route.to);
            if let Some(v) = route.via {
                call.push_str(&format!(" via {v}"));
            }
            if let Some(o) = route.oif {
                call.push_str(&format!(" oif {o}"));
            }
            if route.onlink {
                call.push_str(" onlink");
            }
            self.calls.push(call);
            if let Some(via) = route.via
                && !route.onlink
                && !self
                    .addrs
                    .iter()
                    .any(|(i, a)| route.oif.is_none_or(|o| o == *i) && a.contains(via))
            {
                // ENETUNREACH: no address covers the gateway.
                return Err(NlError::Kernel(101));
            }
            self.routes.retain(|r| r.to != route.to);
            self.routes.push(route.clone());
            Ok(())
        }
        fn del_route(&mut self, route: &RouteSpec) -> Result<(), NlError> {
            self.calls.push(format!("del_route {}", route.to));
            let before = self.routes.len();
            self.routes.retain(|r| {
                !(r.to == route.to
                    && route.via.is_none_or(|v| r.via == Some(v))
                    && route.oif.is_none_or(|o| r.oif == Some(o)))
            });
            if before == self.routes.len() {
                return Err(NlError::Kernel(3));
            }
            Ok(())
        }
    }
}

//! The `[firewall]` table of the appliance config: the model and its validation.
//!
//! ```toml
//! [firewall]
//! forward = "reject"          # "reject" (the default) or "drop": what happens to forwarded packets
//! ping = true                 # answer ICMP/ICMPv6 echo requests from anywhere (default true)
//! allow = [                   # replaces the default list, which is only the ssh rule below
//!   { protocol = "tcp", port = 2222, comment = "ssh" },
//!   { protocol = "tcp", port = "8000-8080", source = "10.0.0.0/8" },
//!   { protocol = "udp", port = 161, source = "fd00::/8", comment = "snmp" },
//!   { protocol = "icmp", source = "192.0.2.0/24", comment = "ping from the admin network" },
//! ]
//! ```
//!
//! What is always allowed whatever the config says (replies, loopback, the ICMP errors and
//! the ICMPv6 neighbour discovery IPv6 needs, DHCPv6 replies) is fixed in the renderer,
//! `netcfg::firewall`, and documented in `docs/firewall.md`. This module only turns the TOML
//! into [`Firewall`] and reports every mistake with its place; it renders nothing.

use super::{DeValue, Val, Validator, entries};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The port of keel's sshd, allowed by the default firewall.
pub const SSH_PORT: u16 = 2222;

/// The longest `comment` of an allow rule, in bytes; nft caps a rule comment at 128 and
/// the renderer prefixes it with the rule's number.
pub const COMMENT_MAX: usize = 100;

/// `[firewall]`: the input filter keel applies before any network service starts.
///
/// Input is always dropped unless allowed, output is always accepted; only forwarding's
/// verdict and the allow list are configurable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firewall {
    /// What happens to packets routed through the machine.
    pub forward: Forward,
    /// Whether echo requests (ping, IPv4 and IPv6) from anywhere are answered.
    pub ping: bool,
    /// Traffic accepted on top of the fixed rules, in the order of the file.
    pub allow: Vec<Allow>,
}

impl Default for Firewall {
    /// OpenKaOS's policy: everything in is dropped except replies, loopback, ICMP and new
    /// TCP connections to ssh on 2222; forwarding is rejected; output is open.
    fn default() -> Self {
        Firewall {
            forward: Forward::Reject,
            ping: true,
            allow: vec![Allow {
                protocol: Protocol::Tcp,
                ports: Some(PortRange::single(SSH_PORT)),
                source: None,
                comment: Some("ssh".to_string()),
            }],
        }
    }
}

/// `forward`: the verdict for forwarded packets (no forward rule can accept them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// Silently discarded.
    Drop,
    /// Discarded with an ICMP "administratively prohibited" (TCP: a reset is not sent).
    Reject,
}

/// `protocol` of an allow rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
    /// Echo requests (ping), IPv4 and IPv6; for the other ICMP types see the renderer.
    Icmp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        }
    }
}

/// A destination port or an inclusive range of ports, `first <= last`, never 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn single(port: u16) -> PortRange {
        PortRange {
            first: port,
            last: port,
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// A source network: an address with no bits set beyond its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// One `allow` rule: new traffic it matches is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    pub protocol: Protocol,
    /// Destination ports; `Some` for TCP and UDP, `None` for ICMP.
    pub ports: Option<PortRange>,
    /// Only from this network; an IPv4 source makes the rule IPv4-only, and IPv6 likewise.
    pub source: Option<Cidr>,
    /// Printable ASCII without `"` or `\`, at most [`COMMENT_MAX`] bytes.
    pub comment: Option<String>,
}

const FIREWALL_FIELDS: &[&str] = &["forward", "ping", "allow"];
const ALLOW_FIELDS: &[&str] = &["protocol", "port", "source", "comment"];

/// Parses `"80"` or `"8000-8080"`; the error says what is wrong, for the message.
pub fn parse_ports(s: &str) -> Result<PortRange, String> {
    let one = |p: &str| -> Result<u16, String> {
        let p = p.trim();
        match p.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
            Ok(_) => Err(format!("port {p} is out of range; ports are 1 to 65535")),
            Err(_) => Err(format!("\"{p}\" is not a port number")),
        }
    };
    match s.split_once('-') {
        None => one(s).map(PortRange::single),
        Some((a, b)) => {
            let (first, last) = (one(a)?, one(b)?);
            if first > last {
                Err(format!(
                    "the range {first}-{last} is reversed; write \"{last}-{first}\""
                ))
            } else {
                Ok(PortRange { first, last })
            }
        }
    }
}

/// Parses `"10.0.0.0/8"`, `"fd00::/8"` or a lone address (a /32 or /128).
pub fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let (addr_text, prefix_text) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = addr_text.parse().map_err(|_| {
        format!("\"{addr_text}\" is not an IPv4 or IPv6 address; write e.g. \"192.0.2.0/24\" or \"2001:db8::/32\"")
    })?;
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix_text {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => {
                return Err(format!(
                    "the prefix length \"/{p}\" is not a number from 0 to {max}"
                ));
            }
        },
    };
    let masked = mask(addr, prefix);
    if masked != addr {
        return Err(format!(
            "{s} has bits set beyond the /{prefix} prefix; write the network, \"{masked}/{prefix}\", or the single address \"{addr}\""
        ));
    }
    Ok(Cidr { addr, prefix })
}

/// `addr` with every bit after the first `prefix` cleared.
fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// Whether a rule comment can go into nft's double-quoted string as it is.
fn comment_ok(c: &str) -> bool {
    c.len() <= COMMENT_MAX
        && c.bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
}

impl Validator {
    pub(super) fn firewall(&mut self, t: &super::DeTable<'_>, out: &mut Firewall) {
        for (key, v) in entries(t) {
            match key.get_ref().as_ref() {
                "forward" => {
                    let words = [("reject", Forward::Reject), ("drop", Forward::Drop)];
                    if let Some(f) = self.word(v, "forward", &words) {
                        out.forward = f;
                    }
                }
                "ping" => {
                    if let Some(b) = self.boolean(v, "ping") {
                        out.ping = b;
                    }
                }
                "allow" => {
                    if let Some(rules) = self.allow_list(v) {
                        out.allow = rules;
                    }
                }
                _ => self.unknown(key, "[firewall]", FIREWALL_FIELDS),
            }
        }
    }

    /// The `allow` array; `None` when any rule is bad, so a half-read list never applies.
    fn allow_list(&mut self, v: &Val<'_>) -> Option<Vec<Allow>> {
        let Some(items) = v.get_ref().as_array() else {
            let found = super::type_name(v.get_ref());
            self.err(v.span().start, format!("`firewall.allow` must be an array of rules like [{{ protocol = \"tcp\", port = 2222 }}] or [[firewall.allow]] tables, found {found}"));
            return None;
        };
        let mut rules: Vec<Allow> = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let n = i + 1;
            match self.allow_rule(n, item) {
                Some(rule) => {
                    if let Some(j) = rules.iter().position(|r| same_match(r, &rule)) {
                        self.err(item.span().start, format!("allow rule {n} matches the same traffic as allow rule {} above; remove one", j + 1));
                        ok = false;
                    }
                    rules.push(rule);
                }
                None => ok = false,
            }
        }
        ok.then_some(rules)
    }

    fn allow_rule(&mut self, n: usize, item: &Val<'_>) -> Option<Allow> {
        let what = format!("allow rule {n}");
        let at = item.span().start;
        let Some(t) = item.get_ref().as_table() else {
            let found = super::type_name(item.get_ref());
            self.err(at, format!("{what} must be a table like {{ protocol = \"tcp\", port = 2222 }}, found {found}"));
            return None;
        };
        let mut protocol: Option<(Protocol, usize)> = None;
        let mut protocol_seen = false;
        let mut ports: Option<(PortRange, usize)> = None;
        let mut port_seen = false;
        let mut source = None;
        let mut comment = None;
        let mut ok = true;
        // A misspelt field is most likely the missing one: say only that it is unknown.
        let mut unknown_seen = false;
        for (key, v) in entries(t) {
            let vat = v.span().start;
            match key.get_ref().as_ref() {
                "protocol" => {
                    protocol_seen = true;
                    let words = [
                        ("tcp", Protocol::Tcp),
                        ("udp", Protocol::Udp),
                        ("icmp", Protocol::Icmp),
                    ];
                    match self.word(v, "protocol", &words) {
                        Some(p) => protocol = Some((p, vat)),
                        None => ok = false,
                    }
                }
                "port" => {
                    port_seen = true;
                    match self.port(v, &what) {
                        Some(p) => ports = Some((p, vat)),
                        None => ok = false,
                    }
                }
                "source" => match self.string(v, "source") {
                    Some(s) => match parse_cidr(s.trim()) {
                        Ok(c) => source = Some(c),
                        Err(e) => {
                            self.err(vat, format!("`source` of {what}: {e}"));
                            ok = false;
                        }
                    },
                    None => ok = false,
                },
                "comment" => match self.string(v, "comment") {
                    Some(c) if comment_ok(&c) => comment = Some(c),
                    Some(_) => {
                        self.err(vat, format!("`comment` of {what} must be at most {COMMENT_MAX} printable ASCII characters without '\"' or '\\' (it becomes an nftables rule comment)"));
                        ok = false;
                    }
                    None => ok = false,
                },
                _ => {
                    self.unknown(key, &what, ALLOW_FIELDS);
                    unknown_seen = true;
                    ok = false;
                }
            }
        }
        let Some((protocol, _)) = protocol else {
            if !protocol_seen && !unknown_seen {
                self.err(at, format!("{what} has no `protocol`; add protocol = \"tcp\", \"udp\" or \"icmp\" (ping)"));
            }
            return None;
        };
        match (protocol, ports) {
            (Protocol::Icmp, Some((_, pat))) => {
                self.err(pat, format!("{what} is for icmp, which has no ports; remove `port` (an icmp rule allows ping)"));
                None
            }
            (Protocol::Tcp | Protocol::Udp, None) => {
                if !port_seen && !unknown_seen {
                    let p = protocol.as_str();
                    self.err(at, format!("{what} ({p}) has no `port`; add port = 80 or a range like port = \"8000-8080\" (\"1-65535\" for every port)"));
                }
                None
            }
            (_, ports) if ok => Some(Allow {
                protocol,
                ports: ports.map(|(p, _)| p),
                source,
                comment,
            }),
            _ => None,
        }
    }

    /// `port`: an integer, or a string with a port or a range.
    fn port(&mut self, v: &Val<'_>, what: &str) -> Option<PortRange> {
        let at = v.span().start;
        let parsed = match v.get_ref() {
            DeValue::Integer(_) => match super::integer(v.get_ref()) {
                Some(n) if (1..=65535).contains(&n) => Ok(PortRange::single(n as u16)),
                Some(n) => Err(format!("port {n} is out of range; ports are 1 to 65535")),
                None => Err("the port is not a number".to_string()),
            },
            DeValue::String(s) => parse_ports(s),
            other => {
                let found = super::type_name(other);
                Err(format!(
                    "found {found}; write a number like 80 or a range like \"8000-8080\""
                ))
            }
        };
        match parsed {
            Ok(p) => Some(p),
            Err(e) => {
                self.err(at, format!("`port` of {what}: {e}"));
                None
            }
        }
    }
}

/// Whether two rules accept exactly the same packets (the comment does not count).
fn same_match(a: &Allow, b: &Allow) -> bool {
    a.protocol == b.protocol && a.ports == b.ports && a.source == b.source
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_ranges() {
        assert_eq!(parse_ports("80"), Ok(PortRange::single(80)));
        assert_eq!(
            parse_ports("8000-8080"),
            Ok(PortRange {
                first: 8000,
                last: 8080
            })
        );
        assert_eq!(
            parse_ports(" 1 - 65535 "),
            Ok(PortRange {
                first: 1,
                last: 65535
            })
        );
        assert!(parse_ports("0").is_err());
        assert!(parse_ports("65536").is_err());
        assert!(parse_ports("9-8").unwrap_err().contains("\"8-9\""));
        assert!(parse_ports("http").is_err());
        assert!(parse_ports("1-2-3").is_err());
        assert!(parse_ports("").is_err());
    }

    #[test]
    fn cidrs() {
        let c = parse_cidr("10.0.0.0/8").unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert!(c.is_ipv4());
        assert_eq!(parse_cidr("192.0.2.7").unwrap().to_string(), "192.0.2.7/32");
        assert_eq!(parse_cidr("fd00::/8").unwrap().to_string(), "fd00::/8");
        assert_eq!(
            parse_cidr("2001:db8::1").unwrap().to_string(),
            "2001:db8::1/128"
        );
        assert_eq!(parse_cidr("0.0.0.0/0").unwrap().prefix, 0);
        assert_eq!(parse_cidr("::/0").unwrap().prefix, 0);
        let e = parse_cidr("10.0.0.1/8").unwrap_err();
        assert!(e.contains("\"10.0.0.0/8\""), "{e}");
        assert!(
            parse_cidr("fd00::1/8")
                .unwrap_err()
                .contains("\"fd00::/8\"")
        );
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("fd00::/129").is_err());
        assert!(parse_cidr("10.0.0/8").is_err());
        assert!(parse_cidr("example.com").is_err());
        assert!(parse_cidr("10.0.0.0/").is_err());
    }

    #[test]
    fn comments_must_fit_an_nft_string() {
        assert!(comment_ok("ssh from the admin network"));
        assert!(!comment_ok("say \"hi\""));
        assert!(!comment_ok("back\\slash"));
        assert!(!comment_ok("new\nline"));
        assert!(!comment_ok("caf\u{e9}"));
        assert!(!comment_ok(&"x".repeat(COMMENT_MAX + 1)));
        assert!(comment_ok(&"x".repeat(COMMENT_MAX)));
    }
}

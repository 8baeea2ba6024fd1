//! One `ip=` (or `nfsaddrs=`) value parsed into an [`IpConfig`], in the kernel's grammar and
//! in the dracut forms that users bring from other distributions.
//!
//! This module only parses text: it never reads files, never touches the network and never
//! panics on input. A value that cannot be understood is an [`IpError`] that names the field,
//! the value and what is wrong; the caller warns and ignores that one argument.
//!
//! # Grammar
//!
//! The kernel's form (Documentation/admin-guide/nfs/nfsroot.rst, net/ipv4/ipconfig.c):
//! `<client>:<server>:<gw>:<netmask>:<hostname>:<device>:<autoconf>:<dns0>:<dns1>:<ntp0>`.
//! Fields are positional, an empty field or `0.0.0.0` is unset and fields past the tenth are
//! ignored. A whole value of `off` or `none` (or an empty value) turns autoconfiguration off;
//! a whole value of `on`, `any`, `bootp`, `rarp`, `both` or anything that starts with `dhcp`
//! asks for DHCP on the first ethernet interface.
//!
//! The dracut forms: `<iface>:<dhcp|on|any|dhcp6|auto6|either6|off|none>[:<mtu>][:<mac>]`,
//! the positional form with an IPv6 address in brackets (`[2001:db8::2]`), a prefix length in
//! the netmask field (`24`, `64`), and `<mtu>` then `<mac>` after the autoconf field.
//!
//! # Where the kernel and dracut disagree (keel follows the kernel)
//!
//! - A missing netmask comes from the address class (A: /8, B: /16, C: /24), as the kernel
//!   does; systemd and dracut use /32 there. A class D or E address without a netmask is an
//!   error, as in the kernel. An IPv6 address without a prefix length gets /64.
//! - A whole value that starts with `dhcp` is DHCP (IPv4), so `ip=dhcp6` means DHCPv4 as it
//!   does for the kernel; write `ip=<iface>:dhcp6` for DHCPv6.
//! - When a client address is given the interface is static, whatever the autoconf field
//!   says (the kernel only autoconfigures when it has no address).
//! - The eighth and ninth fields are the kernel's `dns0` and `dns1`. Only a value that
//!   cannot be an address takes dracut's meaning there: a plain number in the eighth field is
//!   an MTU, and a MAC address at the end of the value is the interface's MAC.
//! - The hostname field is split at its first dot as the kernel does: the part before is the
//!   host name, the rest is the NIS domain name.
//!
//! keel is stricter than the kernel in one way: a field the kernel would silently misread
//! (an address that is not an address, an unknown autoconf word, a device name longer than
//! 15 bytes, a host name longer than 64 bytes) is an error, so the console says what is wrong.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;
/// The longest host name the kernel accepts (__NEW_UTS_LEN).
pub const HOSTNAME_MAX: usize = 64;
/// The smallest MTU that IPv4 allows (RFC 791).
pub const MTU_MIN: u32 = 68;
/// The largest MTU keel accepts (the kernel's IP_MAX_MTU).
pub const MTU_MAX: u32 = 65535;

/// An address with its prefix length, as `10.0.0.2/24` or `2001:db8::2/64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Builds a CIDR, or `None` when the prefix is too long for the address family.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// Parses `addr/prefix`, with an optional pair of brackets around an IPv6 address.
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = text.split_once('/')?;
        let addr = parse_addr(addr)?;
        let prefix = prefix.parse::<u8>().ok()?;
        Cidr::new(addr, prefix)
    }

    /// True when `other` lies inside this network.
    pub fn contains(&self, other: IpAddr) -> bool {
        match (self.addr, other) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = prefix_mask_v4(self.prefix);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = match self.prefix {
                    0 => 0,
                    p => u128::MAX << (128 - u32::from(p.min(128))),
                };
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }

    /// The network address itself: this address with the host bits cleared.
    pub fn network(&self) -> Cidr {
        let addr = match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & prefix_mask_v4(self.prefix))),
            IpAddr::V6(a) => {
                let mask = match self.prefix {
                    0 => 0,
                    p => u128::MAX << (128 - u32::from(p.min(128))),
                };
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        Cidr {
            addr,
            prefix: self.prefix,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The IPv4 netmask of a prefix length, as a host-order number.
pub fn prefix_mask_v4(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

/// The prefix length of a dotted IPv4 netmask, or `None` when its one bits are not contiguous.
pub fn mask_to_prefix(mask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(mask);
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

/// An ethernet hardware address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Parses `52:54:00:12:34:56` (also with `-` between the bytes), in either case.
    pub fn parse(text: &str) -> Option<Mac> {
        let sep = if text.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut parts = text.split(sep);
        for byte in &mut out {
            let part = parts.next()?;
            if part.len() != 2 {
                return None;
            }
            *byte = u8::from_str_radix(part, 16).ok()?;
        }
        parts.next().is_none().then_some(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// How an interface gets its addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Method {
    /// The addresses come from the command line.
    Static,
    /// A DHCPv4 client runs on the interface.
    #[default]
    Dhcp,
    /// A DHCPv6 client runs on the interface.
    Dhcp6,
    /// The kernel's own IPv6 stateless autoconfiguration (router advertisements); dracut's
    /// `either6` maps here too, because keel has no fallback from SLAAC to DHCPv6.
    Auto6,
    /// Nothing is configured; the link is left alone (an `ifname=` rename still happens).
    Off,
}

impl Method {
    /// The name used in the JSON plan and in the docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Static => "static",
            Method::Dhcp => "dhcp",
            Method::Dhcp6 => "dhcp6",
            Method::Auto6 => "auto6",
            Method::Off => "off",
        }
    }
}

/// What the autoconf field (or a lone `ip=` word) asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Autoconf {
    /// `off` or `none`.
    Off,
    /// `on`, `any`, `dhcp*`, `bootp`, `rarp`, `both`: keel runs DHCP for all of them.
    Dhcp,
    /// dracut's `dhcp6`.
    Dhcp6,
    /// dracut's `auto6` and `either6`.
    Auto6,
}

impl Autoconf {
    /// Reads one autoconf word as the kernel's `ic_proto_name` does, plus dracut's IPv6 words.
    /// `whole` is true for a lone `ip=` value, where any word starting with `dhcp` is DHCP.
    pub fn parse(word: &str, whole: bool) -> Option<Autoconf> {
        match word {
            "off" | "none" => Some(Autoconf::Off),
            "on" | "any" | "bootp" | "rarp" | "both" | "dhcp" => Some(Autoconf::Dhcp),
            "auto6" | "either6" => Some(Autoconf::Auto6),
            "dhcp6" if !whole => Some(Autoconf::Dhcp6),
            w if w.starts_with("dhcp,") || (whole && w.starts_with("dhcp")) => Some(Autoconf::Dhcp),
            _ => None,
        }
    }
}

/// One parsed `ip=` value. `None` means the field was empty or unset.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct IpConfig {
    /// The client address with its prefix length (from the netmask field or the class).
    pub client: Option<Cidr>,
    /// The NFS server; keel records it and does not use it.
    pub server: Option<IpAddr>,
    /// The IPv4 default gateway.
    pub gateway: Option<Ipv4Addr>,
    /// The IPv6 default gateway (dracut's bracketed gateway).
    pub gateway6: Option<Ipv6Addr>,
    /// The host name: the hostname field up to its first dot.
    pub hostname: Option<String>,
    /// The NIS domain name: the hostname field after its first dot.
    pub domain: Option<String>,
    /// The interface name, at most 15 bytes.
    pub device: Option<String>,
    /// The autoconf field; `None` when empty (the kernel's default, `any`).
    pub autoconf: Option<Autoconf>,
    /// The kernel's dns0 and dns1.
    pub dns: Vec<IpAddr>,
    /// The kernel's ntp0.
    pub ntp: Option<Ipv4Addr>,
    /// dracut's MTU.
    pub mtu: Option<u32>,
    /// dracut's MAC address: the interface is found by this address.
    pub mac: Option<Mac>,
    /// True when the value was a lone autoconf word (`ip=dhcp`, `ip=off`).
    pub lone: bool,
}

impl IpConfig {
    /// The method this value asks for, by the kernel's rule: an address means static,
    /// otherwise the autoconf field decides, and an empty one means DHCP (`any`).
    pub fn method(&self) -> Method {
        if self.client.is_some() {
            return Method::Static;
        }
        match self.autoconf {
            None | Some(Autoconf::Dhcp) => Method::Dhcp,
            Some(Autoconf::Dhcp6) => Method::Dhcp6,
            Some(Autoconf::Auto6) => Method::Auto6,
            Some(Autoconf::Off) => Method::Off,
        }
    }
}

/// Why one `ip=` value was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpError {
    /// The field's name, e.g. `netmask` (or `value` for the whole value).
    pub field: &'static str,
    /// The text of the field as written.
    pub value: String,
    /// What is wrong with it, lowercase.
    pub reason: String,
}

impl IpError {
    fn new(field: &'static str, value: &str, reason: impl Into<String>) -> IpError {
        IpError {
            field,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for IpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "field {} \"{}\": {}",
            self.field, self.value, self.reason
        )
    }
}

impl std::error::Error for IpError {}

/// Parses an address, IPv4 or IPv6 with optional brackets.
pub fn parse_addr(text: &str) -> Option<IpAddr> {
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    text.parse::<IpAddr>().ok()
}

/// Splits a value at colons, keeping bracketed IPv6 addresses whole.
fn split_fields(value: &str) -> Result<Vec<&str>, IpError> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut depth = false;
    for (i, c) in value.char_indices() {
        match c {
            '[' if !depth => depth = true,
            ']' if depth => depth = false,
            ':' if !depth => {
                fields.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth {
        return Err(IpError::new(
            "value",
            value,
            "unclosed \"[\" around an IPv6 address",
        ));
    }
    fields.push(&value[start..]);
    Ok(fields)
}

/// Takes a MAC address off the end of the value (its own colons would split it into six
/// fields), so `eth0:dhcp::52:54:00:12:34:56` becomes `eth0:dhcp:` plus the MAC.
fn take_trailing_mac(value: &str) -> (&str, Option<Mac>) {
    // A MAC is 17 bytes, preceded by the colon that ends the field before it.
    if value.len() > 18 && value.is_char_boundary(value.len() - 17) {
        let (head, tail) = value.split_at(value.len() - 17);
        if let (Some(mac), Some(head)) = (Mac::parse(tail), head.strip_suffix(':')) {
            return (head, Some(mac));
        }
    }
    (value, None)
}

/// An unset address: empty or all zeros (the kernel's ANY).
fn addr_field(field: &'static str, text: &str) -> Result<Option<IpAddr>, IpError> {
    if text.is_empty() {
        return Ok(None);
    }
    match parse_addr(text) {
        Some(a) if a.is_unspecified() => Ok(None),
        Some(a) => Ok(Some(a)),
        None if text.contains(':') && !text.starts_with('[') => Err(IpError::new(
            field,
            text,
            "an IPv6 address must be written in brackets, e.g. [2001:db8::2]",
        )),
        None => Err(IpError::new(field, text, "not an IP address")),
    }
}

fn mtu_field(text: &str) -> Result<Option<u32>, IpError> {
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<u32>() {
        Ok(m) if (MTU_MIN..=MTU_MAX).contains(&m) => Ok(Some(m)),
        _ => Err(IpError::new(
            "mtu",
            text,
            format!("not an MTU between {MTU_MIN} and {MTU_MAX}"),
        )),
    }
}

/// Why the kernel would refuse `name` as an interface name (its `dev_valid_name()`: 1 to
/// 15 bytes, not `.` or `..`, no `/`, `:` or whitespace), plus NUL and control characters,
/// which it would cut or print raw; `None` for a good name.
pub fn ifname_error(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("empty; interface names are 1 to 15 bytes".to_string())
    } else if name.len() > IFNAME_MAX {
        Some(format!("interface names are at most {IFNAME_MAX} bytes"))
    } else if name == "." || name == ".." {
        Some("not a valid interface name (. and .. are refused)".to_string())
    } else if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b.is_ascii_control())
    {
        Some("not a valid interface name (no /, :, spaces or control characters)".to_string())
    } else {
        None
    }
}

fn device_field(text: &str) -> Result<Option<String>, IpError> {
    if text.is_empty() {
        return Ok(None);
    }
    match ifname_error(text) {
        Some(e) => Err(IpError::new("device", text, e)),
        None => Ok(Some(text.to_string())),
    }
}

/// The netmask from the address class, as the kernel's `ic_defaults` does.
fn class_prefix(addr: Ipv4Addr) -> Option<u8> {
    match addr.octets()[0] {
        0..=127 => Some(8),
        128..=191 => Some(16),
        192..=223 => Some(24),
        _ => None,
    }
}

/// Parses one `ip=` (or `nfsaddrs=`) value.
pub fn parse(value: &str) -> Result<IpConfig, IpError> {
    // The kernel first tries the whole value as an autoconf word.
    if value.is_empty() {
        return Ok(IpConfig {
            autoconf: Some(Autoconf::Off),
            lone: true,
            ..IpConfig::default()
        });
    }
    if let Some(a) = Autoconf::parse(value, true) {
        return Ok(IpConfig {
            autoconf: Some(a),
            lone: true,
            ..IpConfig::default()
        });
    }
    let (rest, mac) = take_trailing_mac(value);
    let fields = split_fields(rest)?;
    let first = fields[0];
    let addressish = first.is_empty() || parse_addr(first).is_some() || first.contains(['.', '[']);
    if !addressish {
        if fields.len() == 1 {
            return Err(IpError::new(
                "value",
                value,
                "not an autoconf word (off, none, on, any, dhcp, bootp, rarp, both) nor a list of fields",
            ));
        }
        let hex = |f: &str| f.len() <= 4 && f.bytes().all(|b| b.is_ascii_hexdigit());
        if hex(first) && hex(fields[1]) {
            // No method word is hex, so this is an IPv6 address written without brackets.
            return Err(IpError::new(
                "client",
                value,
                "an IPv6 address must be written in brackets, e.g. [2001:db8::2]",
            ));
        }
        return parse_dracut_iface(&fields, mac);
    }
    parse_positional(&fields, mac)
}

/// dracut's `<iface>:<method>[:<mtu>][:<mac>]`.
fn parse_dracut_iface(fields: &[&str], mac: Option<Mac>) -> Result<IpConfig, IpError> {
    let device = device_field(fields[0])?;
    let word = fields.get(1).copied().unwrap_or_default();
    let autoconf = Autoconf::parse(word, false).ok_or_else(|| {
        IpError::new(
            "autoconf",
            word,
            "expected dhcp, on, any, dhcp6, auto6, either6, off or none after the interface name",
        )
    })?;
    let mtu = mtu_field(fields.get(2).copied().unwrap_or_default())?;
    if let Some(extra) = fields.get(3).filter(|f| !f.is_empty()) {
        return Err(IpError::new(
            "mac",
            extra,
            "not a MAC address like 52:54:00:12:34:56",
        ));
    }
    if fields.len() > 4 {
        return Err(IpError::new(
            "value",
            &fields[4..].join(":"),
            "too many fields for <iface>:<method>[:<mtu>][:<mac>]",
        ));
    }
    Ok(IpConfig {
        device,
        autoconf: Some(autoconf),
        mtu,
        mac,
        ..IpConfig::default()
    })
}

/// The kernel's ten positional fields, with dracut's brackets, prefix lengths, MTU and MAC.
fn parse_positional(fields: &[&str], mac: Option<Mac>) -> Result<IpConfig, IpError> {
    let get = |i: usize| fields.get(i).copied().unwrap_or_default();
    let mut cfg = IpConfig {
        mac,
        ..IpConfig::default()
    };

    let client = addr_field("client", get(0))?;
    cfg.server = addr_field("server", get(1))?;
    match addr_field("gateway", get(2))? {
        Some(IpAddr::V4(g)) => cfg.gateway = Some(g),
        Some(IpAddr::V6(g)) => cfg.gateway6 = Some(g),
        None => {}
    }
    let mask = get(3);
    if let Some(addr) = client {
        cfg.client = Some(client_cidr(addr, mask)?);
    } else if !mask.is_empty() && mask != "0.0.0.0" && netmask_prefix(mask, false).is_none() {
        return Err(IpError::new(
            "netmask",
            mask,
            "not a netmask like 255.255.255.0 nor a prefix length",
        ));
    }
    let host = get(4);
    if !host.is_empty() {
        let (name, domain) = match host.split_once('.') {
            Some((n, d)) => (n, Some(d)),
            None => (host, None),
        };
        if name.len() > HOSTNAME_MAX {
            return Err(IpError::new(
                "hostname",
                host,
                format!("host names are at most {HOSTNAME_MAX} bytes"),
            ));
        }
        if !name.is_empty() {
            cfg.hostname = Some(name.to_string());
        }
        cfg.domain = domain.filter(|d| !d.is_empty()).map(str::to_string);
    }
    cfg.device = device_field(get(5))?;
    let auto = get(6);
    if !auto.is_empty() {
        cfg.autoconf = Some(Autoconf::parse(auto, false).ok_or_else(|| {
            IpError::new(
                "autoconf",
                auto,
                "expected off, none, on, any, dhcp, bootp, rarp, both, dhcp6, auto6 or either6",
            )
        })?);
    }
    let dns0 = get(7);
    if !dns0.is_empty() && dns0.bytes().all(|b| b.is_ascii_digit()) {
        // A plain number cannot be an address: it is dracut's MTU.
        cfg.mtu = mtu_field(dns0)?;
    } else if let Some(a) = addr_field("dns0", dns0)? {
        cfg.dns.push(a);
    }
    if let Some(a) = addr_field("dns1", get(8))? {
        cfg.dns.push(a);
    }
    match addr_field("ntp0", get(9))? {
        Some(IpAddr::V4(a)) => cfg.ntp = Some(a),
        Some(IpAddr::V6(a)) => {
            return Err(IpError::new(
                "ntp0",
                &a.to_string(),
                "the kernel's ntp0 is IPv4 only",
            ));
        }
        None => {}
    }
    Ok(cfg)
}

/// The prefix length of a netmask field: a dotted IPv4 mask or a plain prefix length.
fn netmask_prefix(mask: &str, v6: bool) -> Option<u8> {
    let max = if v6 { 128 } else { 32 };
    if let Ok(p) = mask.parse::<u8>() {
        return (p <= max).then_some(p);
    }
    if v6 {
        return None;
    }
    mask.parse::<Ipv4Addr>().ok().and_then(mask_to_prefix)
}

fn client_cidr(addr: IpAddr, mask: &str) -> Result<Cidr, IpError> {
    let v6 = addr.is_ipv6();
    let prefix = if mask.is_empty() || mask == "0.0.0.0" {
        match addr {
            IpAddr::V4(a) => class_prefix(a).ok_or_else(|| {
                IpError::new(
                    "netmask",
                    mask,
                    format!("{a} has no address class to guess a netmask from; give one"),
                )
            })?,
            IpAddr::V6(_) => 64,
        }
    } else {
        netmask_prefix(mask, v6).ok_or_else(|| {
            let what = if v6 {
                "not a prefix length between 0 and 128 for an IPv6 address"
            } else {
                "not a netmask like 255.255.255.0 nor a prefix length between 0 and 32"
            };
            IpError::new("netmask", mask, what)
        })?
    };
    Cidr::new(addr, prefix)
        .ok_or_else(|| IpError::new("netmask", mask, "prefix length too long for the address"))
}

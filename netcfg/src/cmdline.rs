//! The kernel command line (the text of /proc/cmdline) split into arguments with the kernel's
//! own quoting rule, and the arguments keel cares about parsed into [`Cmdline`].
//!
//! This module only parses text: it never reads /proc/cmdline itself (init/ does) and it never
//! fails or panics on input. A bad argument becomes a [`Warning`] that names the argument, the
//! field and why, the argument is ignored and the rest goes on.
//!
//! # Splitting
//!
//! [`split`] follows `next_arg()` in the kernel's lib/cmdline.c exactly:
//! - arguments are separated by unquoted whitespace (space, tab, newline, \v, \f, \r);
//! - a double quote anywhere toggles quoting, so spaces inside quotes stay in the argument;
//! - the key ends at the first `=` (quoted or not);
//! - the kernel removes only three quotes: one that opens the whole argument, one that opens
//!   the value, and one that ends the argument. So `a="b c"` is `a` = `b c`, `"a=b c"` is `a` =
//!   `b c`, but `"a b"=c` is the key `a b"` with the value `c`, and `a=x"y z"` keeps its quotes
//!   (`x"y z"`), exactly as the kernel sees them.
//!
//! Everything after a lone `--` is for init, not for the kernel: it lands in
//! [`Cmdline::init_args`] and is never read as network configuration.
//!
//! # Emergency words
//!
//! A bare `emergency` (or the `keel.emergency` switch) asks for the emergency shell before
//! anything starts; a bare `rescue` or `single` asks for rescue mode. keel accepts these three
//! words, before or after `--`, and no SysV runlevel digits (`1`, `S`), which are too easy to
//! pass by accident.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use crate::client::DhcpClient;
use crate::ip::{self, Cidr, IpConfig, Mac};

/// The kernel's `ip=` (one per interface in the dracut forms).
pub const IP: &str = "ip";
/// The kernel's old name for `ip=`.
pub const NFSADDRS: &str = "nfsaddrs";
/// dracut's `nameserver=<ip>`, one per server.
pub const NAMESERVER: &str = "nameserver";
/// dracut's `rd.route=<net>/<prefix>:<gw>[:<iface>]`.
pub const RD_ROUTE: &str = "rd.route";
/// dracut's `ifname=<name>:<mac>`: give the interface with this MAC this name.
pub const IFNAME: &str = "ifname";
/// dracut's `hostname=<name>`; it wins over the hostname field of `ip=`.
pub const HOSTNAME: &str = "hostname";
/// The prefix of keel's own switches.
pub const KEEL_PREFIX: &str = "keel.";
/// `keel.debug[=0|1]`: log debug lines on the console.
pub const KEEL_DEBUG: &str = "keel.debug";
/// `keel.state=<device>`: where the persistent state lives.
pub const KEEL_STATE: &str = "keel.state";
/// `keel.emergency[=0|1]`: drop to the emergency shell before starting anything.
pub const KEEL_EMERGENCY: &str = "keel.emergency";
/// `keel.emergency_timeout=<seconds>`: how long the emergency shell waits before a reboot.
pub const KEEL_EMERGENCY_TIMEOUT: &str = "keel.emergency_timeout";
/// `keel.dhcp=dhclient|udhcpc`: the DHCP client the `network` service runs.
pub const KEEL_DHCP: &str = "keel.dhcp";
/// `keel.test_panic`: PID 1 panics once after boot, to test that a panic ends in the
/// emergency shell (a test hook; see init/src/boot.rs).
pub const KEEL_TEST_PANIC: &str = "keel.test_panic";
/// The keel switches this version knows; others are kept and warned about.
pub const KEEL_KNOWN: [&str; 6] = [
    KEEL_DEBUG,
    KEEL_STATE,
    KEEL_EMERGENCY,
    KEEL_EMERGENCY_TIMEOUT,
    KEEL_DHCP,
    KEEL_TEST_PANIC,
];
/// A bare word that asks for the emergency shell.
pub const WORD_EMERGENCY: &str = "emergency";
/// Bare words that ask for rescue mode.
pub const WORDS_RESCUE: [&str; 2] = ["rescue", "single"];

/// One argument as the kernel splits it: `key` or `key=value`, quotes removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    pub key: String,
    pub value: Option<String>,
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={}", self.key, v),
            None => f.write_str(&self.key),
        }
    }
}

/// A problem with one argument: the argument is ignored and the rest goes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The argument as written (after quote removal), e.g. `ip=10.0.0.300`.
    pub arg: String,
    /// Which field and why, lowercase.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.arg, self.message)
    }
}

/// What the command line asks of the boot as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BootMode {
    #[default]
    Normal,
    /// `rescue` or `single`.
    Rescue,
    /// `emergency` or `keel.emergency`; it wins over rescue.
    Emergency,
}

/// An `ifname=<name>:<mac>` binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfName {
    pub name: String,
    pub mac: Mac,
}

/// The parsed command line.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Cmdline {
    /// Every argument before `--`, in order, duplicates kept.
    pub params: Vec<Param>,
    /// The arguments after `--`, which the kernel hands to init.
    pub init_args: Vec<String>,
    /// Every `ip=` and `nfsaddrs=` that parsed, in order, with its text.
    pub ip: Vec<(String, IpConfig)>,
    /// `nameserver=` values, in order.
    pub nameservers: Vec<IpAddr>,
    /// `rd.route=` values, in order.
    pub routes: Vec<Route>,
    /// `ifname=` bindings, in order.
    pub ifnames: Vec<IfName>,
    /// The last `hostname=`.
    pub hostname: Option<String>,
    /// Every `keel.*` switch, the last one winning, with `-` in the name read as `_` as the
    /// kernel does for its own parameters; a switch without `=` has no value.
    pub keel: BTreeMap<String, Option<String>>,
    /// `keel.debug`.
    pub debug: bool,
    /// `keel.state`.
    pub state: Option<String>,
    /// `keel.emergency_timeout`, in seconds.
    pub emergency_timeout: Option<u32>,
    /// `keel.dhcp`: the DHCP client, when the command line names one.
    pub dhcp_client: Option<DhcpClient>,
    /// Emergency or rescue words and switches.
    pub mode: BootMode,
    /// `keel.test_panic`.
    pub test_panic: bool,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Splits command-line text into arguments exactly as the kernel's `next_arg()` does.
pub fn split(text: &str) -> Vec<Param> {
    let b = text.as_bytes();
    let slice =
        |from: usize, to: usize| text.get(from..to.max(from)).unwrap_or_default().to_string();
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        while pos < b.len() && is_space(b[pos]) {
            pos += 1;
        }
        if pos >= b.len() {
            return out;
        }
        let mut start = pos;
        let mut in_quote = false;
        let mut quoted = false;
        if b[start] == b'"' {
            start += 1;
            in_quote = true;
            quoted = true;
        }
        let mut i = start;
        let mut equals = None;
        while i < b.len() {
            if is_space(b[i]) && !in_quote {
                break;
            }
            // The kernel keeps "no equals" as offset 0, so an `=` that opens the word is text.
            if equals.is_none() && b[i] == b'=' && i > start {
                equals = Some(i);
            }
            if b[i] == b'"' {
                in_quote = !in_quote;
            }
            i += 1;
        }
        let ends_in_quote = i > start && b[i - 1] == b'"';
        let param = match equals {
            None => {
                let end = if quoted && ends_in_quote { i - 1 } else { i };
                Param {
                    key: slice(start, end),
                    value: None,
                }
            }
            Some(eq) => {
                let mut value_start = eq + 1;
                let mut end = i;
                if value_start < i && b[value_start] == b'"' {
                    value_start += 1;
                    if ends_in_quote {
                        end = i - 1;
                    }
                }
                if quoted && ends_in_quote {
                    end = i - 1;
                }
                Param {
                    key: slice(start, eq),
                    value: Some(slice(value_start, end)),
                }
            }
        };
        out.push(param);
        pos = i;
    }
}

fn warn(warnings: &mut Vec<Warning>, p: &Param, message: impl Into<String>) {
    warnings.push(Warning {
        arg: p.to_string(),
        message: message.into(),
    });
}

fn switch_bool(value: Option<&str>) -> Option<bool> {
    match value {
        None | Some("1" | "yes" | "true" | "on" | "") => Some(true),
        Some("0" | "no" | "false" | "off") => Some(false),
        Some(_) => None,
    }
}

/// A route from `rd.route=`: to a network, via a gateway, optionally out of a named device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub to: Cidr,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
}

/// Parses `rd.route=<net>/<prefix>:<gw>[:<iface>]`, IPv6 parts in brackets.
pub fn parse_route(value: &str) -> Result<Route, String> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut bracket = false;
    for (i, c) in value.char_indices() {
        match c {
            '[' => bracket = true,
            ']' => bracket = false,
            ':' if !bracket => {
                fields.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    fields.push(&value[start..]);
    if fields.len() > 3 {
        return Err(format!(
            "too many fields \"{}\"; expected <net>/<prefix>:<gateway>[:<interface>] with IPv6 in brackets",
            fields[3..].join(":")
        ));
    }
    let net = fields[0];
    let inner = net
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(net);
    let to = parse_net(inner).ok_or_else(|| {
        format!("field net \"{net}\": not a network like 10.1.0.0/16 or [2001:db8::/32]")
    })?;
    let gw = fields.get(1).copied().unwrap_or_default();
    let via = if gw.is_empty() {
        None
    } else {
        let a = ip::parse_addr(gw)
            .ok_or_else(|| format!("field gateway \"{gw}\": not an IP address"))?;
        if a.is_ipv4() != to.addr.is_ipv4() {
            return Err(format!(
                "field gateway \"{gw}\": not the same address family as {to}"
            ));
        }
        Some(a)
    };
    let dev = fields.get(2).copied().unwrap_or_default();
    if let Some(why) = (!dev.is_empty()).then(|| ip::ifname_error(dev)).flatten() {
        return Err(format!("field interface \"{dev}\": {why}"));
    }
    if via.is_none() && dev.is_empty() {
        return Err("a route needs a gateway or an interface".to_string());
    }
    Ok(Route {
        to: to.network(),
        via,
        dev: (!dev.is_empty()).then(|| dev.to_string()),
    })
}

/// A network: `addr/prefix` or `addr/dotted-netmask`.
fn parse_net(text: &str) -> Option<Cidr> {
    let (addr, mask) = text.split_once('/')?;
    let addr = ip::parse_addr(addr)?;
    let prefix = match mask.parse::<u8>() {
        Ok(p) => p,
        Err(_) if addr.is_ipv4() => ip::mask_to_prefix(mask.parse().ok()?)?,
        Err(_) => return None,
    };
    Cidr::new(addr, prefix)
}

/// The text of the command line's bytes (/proc/cmdline is bytes, not UTF-8): what is not
/// UTF-8 becomes U+FFFD, so an argument with a stray byte is only a bad argument (a warning
/// from [`parse`], or ignored) and the rest of the line keeps its meaning. PID 1 and every
/// applet read the command line with this rule.
pub fn decode(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Parses the whole command line. It cannot fail: bad arguments become warnings.
pub fn parse(text: &str) -> (Cmdline, Vec<Warning>) {
    let mut c = Cmdline::default();
    let mut w = Vec::new();
    let mut after_dashes = false;
    for p in split(text) {
        if after_dashes {
            bare_word(&mut c, &p);
            c.init_args.push(p.to_string());
            continue;
        }
        if p.key == "--" && p.value.is_none() {
            after_dashes = true;
            continue;
        }
        parse_param(&mut c, &mut w, &p);
        c.params.push(p);
    }
    (c, w)
}

fn bare_word(c: &mut Cmdline, p: &Param) {
    if p.value.is_some() {
        return;
    }
    if p.key == WORD_EMERGENCY {
        c.mode = BootMode::Emergency;
    } else if WORDS_RESCUE.contains(&p.key.as_str()) && c.mode == BootMode::Normal {
        c.mode = BootMode::Rescue;
    }
}

fn parse_param(c: &mut Cmdline, w: &mut Vec<Warning>, p: &Param) {
    let key = p.key.as_str();
    let Some(value) = p.value.as_deref() else {
        if key.starts_with(KEEL_PREFIX) {
            keel_switch(c, w, p);
        } else if matches!(
            key,
            IP | NFSADDRS | NAMESERVER | RD_ROUTE | IFNAME | HOSTNAME
        ) {
            warn(w, p, format!("{key} needs a value ({key}=...)"));
        } else {
            bare_word(c, p);
        }
        return;
    };
    match key {
        IP | NFSADDRS => match ip::parse(value) {
            Ok(cfg) => c.ip.push((value.to_string(), cfg)),
            Err(e) => warn(w, p, e.to_string()),
        },
        NAMESERVER => match ip::parse_addr(value) {
            Some(a) if !a.is_unspecified() => c.nameservers.push(a),
            _ => warn(
                w,
                p,
                format!("field nameserver \"{value}\": not an IP address"),
            ),
        },
        RD_ROUTE => match parse_route(value) {
            Ok(r) => c.routes.push(r),
            Err(e) => warn(w, p, e),
        },
        IFNAME => match value.split_once(':') {
            Some((name, mac)) if ip::ifname_error(name).is_none() => match Mac::parse(mac) {
                Some(mac) => c.ifnames.push(IfName {
                    name: name.to_string(),
                    mac,
                }),
                None => warn(
                    w,
                    p,
                    format!("field mac \"{mac}\": not a MAC address like 52:54:00:12:34:56"),
                ),
            },
            Some((name, _)) => warn(
                w,
                p,
                format!(
                    "field name \"{name}\": {}",
                    ip::ifname_error(name).unwrap_or_default()
                ),
            ),
            None => warn(w, p, "expected ifname=<name>:<mac>"),
        },
        HOSTNAME => match hostname_error(value) {
            None => c.hostname = Some(value.to_string()),
            Some(e) => warn(w, p, format!("field hostname \"{value}\": {e}")),
        },
        k if k.starts_with(KEEL_PREFIX) => keel_switch(c, w, p),
        _ => {}
    }
}

/// Why a host name cannot be set, or `None` when it is fine.
pub fn hostname_error(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("empty")
    } else if name.len() > ip::HOSTNAME_MAX {
        Some("host names are at most 64 bytes")
    } else if name
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'/')
    {
        Some("contains a space, a control character or a slash")
    } else {
        None
    }
}

fn keel_switch(c: &mut Cmdline, w: &mut Vec<Warning>, p: &Param) {
    let name = p.key.replace('-', "_");
    let value = p.value.as_deref();
    match name.as_str() {
        KEEL_DEBUG => match switch_bool(value) {
            Some(b) => c.debug = b,
            None => return warn(w, p, "expected keel.debug, keel.debug=1 or keel.debug=0"),
        },
        KEEL_EMERGENCY => match switch_bool(value) {
            Some(true) => c.mode = BootMode::Emergency,
            Some(false) => {}
            None => {
                return warn(
                    w,
                    p,
                    "expected keel.emergency, keel.emergency=1 or keel.emergency=0",
                );
            }
        },
        KEEL_TEST_PANIC => match switch_bool(value) {
            Some(b) => c.test_panic = b,
            None => return warn(w, p, "expected keel.test_panic or keel.test_panic=0"),
        },
        KEEL_STATE => match value {
            Some(v) if !v.is_empty() => c.state = Some(v.to_string()),
            _ => return warn(w, p, "expected keel.state=<device or path>"),
        },
        KEEL_DHCP => match value.and_then(DhcpClient::parse) {
            Some(d) => c.dhcp_client = Some(d),
            None => {
                return warn(
                    w,
                    p,
                    format!(
                        "expected keel.dhcp={}",
                        DhcpClient::NAMES.join(" or keel.dhcp=")
                    ),
                );
            }
        },
        KEEL_EMERGENCY_TIMEOUT => match value.map(str::parse::<u32>) {
            Some(Ok(n)) => c.emergency_timeout = Some(n),
            _ => {
                return warn(
                    w,
                    p,
                    "expected keel.emergency_timeout=<seconds>, a whole number",
                );
            }
        },
        _ => warn(
            w,
            p,
            format!(
                "unknown keel switch (known: {}); kept but unused",
                KEEL_KNOWN.join(", ")
            ),
        ),
    }
    c.keel.insert(name, p.value.clone());
}

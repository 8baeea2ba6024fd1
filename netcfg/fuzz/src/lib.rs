//! The checks behind netcfg's fuzz targets (and those of its `metadata` crate), one function per target, each taking arbitrary
//! bytes and panicking only when netcfg breaks a promise: the command line, `ip=`, the DHCP
//! hook and the netlink readers never panic on input, and what they accept keeps the rules
//! the rest of keel relies on (valid interface names, bounded output, refusals never read as
//! success).
//!
//! The libFuzzer binaries in `fuzz_targets/` call these; so do the stable tests in `tests/`,
//! which replay the seeds and corpus and run a bounded random mutation. This crate must not
//! do IO, and must not weaken a check to make a finding go away.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::net::IpAddr;

use netcfg::cmdline;
use netcfg::cmdline::Route;
use netcfg::dhcp;
use netcfg::ip::{self, IpConfig, MTU_MAX, MTU_MIN};
use netcfg::links::LinkOp;
use netcfg::netlink::{HDR_LEN, MAX_ERRNO, NLMSG_DONE, NLMSG_ERROR, NlError, messages};
use netcfg::nft::Acks;
use netcfg::plan;
use netcfg::rtnl::{absorb_reply, parse_addr, parse_link};

/// One target's check: panics on a finding.
pub type Check = fn(&[u8]);

/// The targets by name, for the replay tests and the docs.
pub const TARGETS: &[(&str, Check)] = &[
    ("cmdline", cmdline),
    ("dhcp_hook", dhcp_hook),
    ("rtnetlink", rtnetlink),
    ("nfnetlink_acks", nfnetlink_acks),
    ("metadata", metadata),
];

fn assert_ifname(name: &str, what: &str) {
    assert!(
        ip::ifname_error(name).is_none(),
        "{what}: interface name {name:?} accepted: {:?}",
        ip::ifname_error(name)
    );
}

fn check_route(r: &Route, what: &str) {
    if let Some(d) = &r.dev {
        assert_ifname(d, what);
    }
    assert_eq!(r.to, r.to.network(), "{what}: route {r:?} has host bits");
    if let Some(v) = r.via {
        assert_eq!(
            v.is_ipv4(),
            r.to.addr.is_ipv4(),
            "{what}: {r:?} mixes families"
        );
    }
}

/// The command line (bytes as lossy UTF-8, as init reads /proc/cmdline) through `split`,
/// `cmdline::parse` and `plan::plan`, and each `ip=` value through `ip::parse`:
/// - no panic, and the same answer twice;
/// - every argument is accounted for (params, init args, the `--`), every warning names one;
/// - splitting `a + " " + b` gives the arguments of `a` then those of `b` when `a` has an
///   even number of quotes (the kernel's `next_arg()` has no other state);
/// - what is accepted is valid: interface names, MTUs, host names, routes;
/// - a static `ip=` re-written in the kernel's positional form parses to the same client,
///   gateway and device.
pub fn cmdline(data: &[u8]) {
    let text = cmdline::decode(data);
    let params = cmdline::split(&text);
    let (c, w) = cmdline::parse(&text);
    assert_eq!(
        cmdline::parse(&text),
        (c.clone(), w.clone()),
        "not deterministic"
    );
    let dashes = usize::from(params.len() != c.params.len());
    assert_eq!(
        c.params.len() + c.init_args.len() + dashes,
        params.len(),
        "arguments lost or made up"
    );
    for warn in &w {
        assert!(
            c.params.iter().any(|p| p.to_string() == warn.arg),
            "warning {warn} names no argument"
        );
        assert!(!warn.message.is_empty(), "warning without a message");
    }
    // The split has no state across whitespace outside quotes.
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let (a, b) = text.split_at(cut);
    if a.matches('"').count() % 2 == 0 {
        let mut both = cmdline::split(a);
        both.extend(cmdline::split(b));
        assert_eq!(
            cmdline::split(&format!("{a} {b}")),
            both,
            "split({a:?} + \" \" + {b:?}) differs from its halves"
        );
    }
    for (value, cfg) in &c.ip {
        assert_eq!(
            ip::parse(value).as_ref(),
            Ok(cfg),
            "ip={value} parsed twice differently"
        );
        check_ip(value, cfg);
    }
    for r in &c.routes {
        check_route(r, "rd.route");
    }
    for n in &c.ifnames {
        assert_ifname(&n.name, "ifname=");
    }
    if let Some(h) = &c.hostname {
        assert_eq!(cmdline::hostname_error(h), None, "hostname={h:?} accepted");
    }
    for a in &c.nameservers {
        assert!(!a.is_unspecified(), "nameserver={a} accepted");
    }
    // Each argument's value on its own, as ip= (most of the fuzzed text is not ip= at all).
    for p in &params {
        if let Some(v) = &p.value
            && let Ok(cfg) = ip::parse(v)
        {
            check_ip(v, &cfg);
        }
    }
    let _ = plan::plan(&text).to_string();
}

fn check_ip(value: &str, cfg: &IpConfig) {
    let what = format!("ip={value}");
    if let Some(d) = &cfg.device {
        assert_ifname(d, &what);
    }
    if let Some(m) = cfg.mtu {
        assert!((MTU_MIN..=MTU_MAX).contains(&m), "{what}: mtu {m} accepted");
    }
    if let Some(h) = &cfg.hostname {
        assert!(h.len() <= ip::HOSTNAME_MAX, "{what}: host name too long");
        assert!(!h.contains('.'), "{what}: host name {h:?} keeps its domain");
    }
    assert!(cfg.dns.len() <= 2, "{what}: more than dns0 and dns1");
    let _ = cfg.method();
    // Round trip through the kernel's positional form.
    let Some(client) = cfg.client else { return };
    let addr = match client.addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    let server = match cfg.server {
        Some(IpAddr::V6(s)) => format!("[{s}]"),
        Some(s) => s.to_string(),
        None => String::new(),
    };
    let gw = cfg.gateway.map(|g| g.to_string()).unwrap_or_default();
    let dev = cfg.device.clone().unwrap_or_default();
    let again = format!("{addr}:{server}:{gw}:{}::{dev}", client.prefix);
    let parsed =
        ip::parse(&again).unwrap_or_else(|e| panic!("{what} re-written as ip={again}: {e}"));
    assert_eq!(parsed.client, cfg.client, "{what} vs ip={again}: client");
    assert_eq!(parsed.gateway, cfg.gateway, "{what} vs ip={again}: gateway");
    assert_eq!(parsed.device, cfg.device, "{what} vs ip={again}: device");
}

/// Decodes the fuzz input as a hook call: one `NAME=VALUE` per line; `$1=EVENT` is the first
/// argument (udhcpc's event); `rd.route=...` lines are the command line's routes.
fn hook_call(data: &[u8]) -> (BTreeMap<String, String>, Option<String>, Vec<Route>) {
    let text = String::from_utf8_lossy(data);
    let mut env = BTreeMap::new();
    let mut arg1 = None;
    let mut routes = Vec::new();
    for line in text.split('\n') {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "$1" => arg1 = Some(v.to_string()),
            "rd.route" => routes.extend(cmdline::parse_route(v)),
            _ => {
                env.insert(k.to_string(), v.to_string());
            }
        }
    }
    (env, arg1, routes)
}

/// A DHCP hook call (dhclient's environment or udhcpc's, see [`hook_call`]) through
/// `dhcp::hook`: no panic, the same answer twice, and a plan that is safe to carry out:
/// - the interface is the one named, and a name the kernel would take;
/// - every op is on that interface, every route valid, every MTU in range;
/// - resolv.conf has only its own lines (no control characters, no injected keyword);
/// - the host name passes `hostname_error`;
/// - the number of ops is bounded by the input.
pub fn dhcp_hook(data: &[u8]) {
    let (env, arg1, routes) = hook_call(data);
    let got = dhcp::hook(&env, arg1.as_deref(), &routes);
    assert_eq!(
        got,
        dhcp::hook(&env, arg1.as_deref(), &routes),
        "not deterministic"
    );
    let p = match got {
        Ok(p) => p,
        Err(e) => {
            assert!(
                !e.reason.is_empty() && !e.var.is_empty(),
                "error says nothing: {e:?}"
            );
            return;
        }
    };
    assert_eq!(
        env.get("interface"),
        Some(&p.interface),
        "plan for another interface"
    );
    assert_ifname(&p.interface, "interface=");
    let iface = p.interface.as_str();
    for op in &p.ops {
        let what = format!("op {op}");
        match op {
            LinkOp::Rename { .. } => panic!("a hook renamed a link: {op}"),
            LinkOp::Up(n)
            | LinkOp::AddAddr(n, _)
            | LinkOp::DelAddr(n, _)
            | LinkOp::FlushAddrs(n, _) => {
                assert_eq!(n, iface, "{what}")
            }
            LinkOp::Mtu(n, m) => {
                assert_eq!(n, iface, "{what}");
                assert!((dhcp::LEASE_MTU_MIN..=MTU_MAX).contains(m), "{what}");
            }
            LinkOp::AddRoute(r) | LinkOp::DelRoute(r) => {
                assert_eq!(r.dev.as_deref(), Some(iface), "{what}");
                check_route(r, &what);
            }
        }
        let _ = op.to_string();
    }
    assert!(
        p.ops.len() <= 8 + routes.len() + data.len() / 4,
        "{} ops from {} bytes",
        p.ops.len(),
        data.len()
    );
    if let Some(text) = &p.resolv_conf {
        // Each server is one line of at most 36 bytes of its own ("# (only three are
        // used) nameserver " and the newline) beside an address no longer than its
        // spelling in the input, which takes at least 3 bytes with its separator: at most
        // 13 times the input, plus the header with the interface's name.
        assert!(
            text.len() <= 64 + 16 * data.len(),
            "resolv.conf grew: {text:?}"
        );
        // No server twice: a repeat would take one of the three places the resolver reads.
        let mut servers: Vec<&str> = text
            .lines()
            .filter_map(|l| {
                l.trim_start_matches("# (only three are used) ")
                    .strip_prefix("nameserver ")
            })
            .collect();
        let all = servers.len();
        servers.sort_unstable();
        servers.dedup();
        assert_eq!(servers.len(), all, "a nameserver written twice: {text:?}");
        for line in text.lines() {
            assert!(
                line.starts_with("# ")
                    || line.starts_with("search ")
                    || line.starts_with("nameserver "),
                "resolv.conf line {line:?}"
            );
            assert!(
                !line.bytes().any(|b| b.is_ascii_control()),
                "resolv.conf line {line:?}"
            );
        }
    }
    if let Some(h) = &p.hostname {
        assert_eq!(cmdline::hostname_error(h), None, "host name {h:?}");
    }
}

/// Reads a big-endian-free u32 from the front of `data` (short inputs read as zeros).
fn take_u32(data: &mut &[u8]) -> u32 {
    let mut b = [0u8; 4];
    let n = data.len().min(4);
    b[..n].copy_from_slice(&data[..n]);
    *data = &data[n..];
    u32::from_ne_bytes(b)
}

fn rtattr(ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut a = ((4 + payload.len()) as u16).to_ne_bytes().to_vec();
    a.extend_from_slice(&ty.to_ne_bytes());
    a.extend_from_slice(payload);
    while !a.len().is_multiple_of(4) {
        a.push(0);
    }
    a
}

/// rtnetlink replies: the first byte picks a dump or an ACK wait, the next four the sequence
/// number, the rest is one received datagram:
/// - `messages` never panics, yields payloads inside the datagram and stops;
/// - `absorb_reply` never panics, collects exactly the payloads of the dump's own messages
///   up to its end, and a refusal carries an errno from 1 to 4095;
/// - `parse_link`/`parse_addr` never panic on any payload;
/// - a link message built from the input (index, flags, a valid name, MTU, MAC) parses back
///   to the same values.
pub fn rtnetlink(data: &[u8]) {
    let mut rest = data;
    let dump = rest.first().is_some_and(|b| b & 1 == 1);
    rest = rest.get(1..).unwrap_or_default();
    let seq = take_u32(&mut rest);
    let rx = rest;
    let mut count = 0;
    let mut own = Vec::new();
    let mut ended = false;
    for m in messages(rx) {
        count += 1;
        assert!(
            count <= rx.len() / HDR_LEN + 1,
            "more messages than bytes allow"
        );
        let Ok((ty, mseq, payload)) = m else { break };
        assert!(
            payload.len() + HDR_LEN <= rx.len(),
            "payload past the datagram"
        );
        let _ = parse_link(payload);
        if let Some((_, cidr)) = parse_addr(payload) {
            assert!(usize::from(cidr.prefix) <= if cidr.addr.is_ipv4() { 32 } else { 128 });
        }
        if mseq == seq && !ended {
            match ty {
                NLMSG_DONE => ended = true,
                // An ACK ends a request, not a dump; a refusal ends both.
                NLMSG_ERROR if !dump || payload.get(..4) != Some(&[0; 4][..]) => ended = true,
                NLMSG_ERROR => {}
                _ if dump => own.push(payload.to_vec()),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    match absorb_reply(rx, seq, dump, &mut out) {
        Ok(done) => {
            assert_eq!(done, ended, "reply end misread");
            assert_eq!(out, own, "dump collected the wrong payloads");
        }
        Err(NlError::Kernel(e)) => {
            assert!((1..=MAX_ERRNO).contains(&e), "errno {e} from a reply");
            assert_eq!(out, own, "dump collected the wrong payloads");
        }
        Err(NlError::Protocol(m)) => assert!(!m.is_empty()),
        Err(e) => panic!("a pure reader returned {e:?}"),
    }
    // Round trip of a link message.
    let mut rest = data;
    let index = take_u32(&mut rest);
    let flags = take_u32(&mut rest);
    let mtu = take_u32(&mut rest);
    let mac: Option<[u8; 6]> = rest.get(..6).and_then(|m| m.try_into().ok());
    let name: String = String::from_utf8_lossy(rest.get(6..).unwrap_or_default())
        .chars()
        .take(15)
        .collect();
    if ip::ifname_error(&name).is_none() {
        let mut p = vec![0u8; 16];
        p[2..4].copy_from_slice(&1u16.to_ne_bytes());
        p[4..8].copy_from_slice(&index.to_ne_bytes());
        p[8..12].copy_from_slice(&flags.to_ne_bytes());
        p.extend(rtattr(3, format!("{name}\0").as_bytes()));
        p.extend(rtattr(4, &mtu.to_ne_bytes()));
        if let Some(m) = mac {
            p.extend(rtattr(1, &m));
        }
        let l = parse_link(&p).unwrap_or_else(|| panic!("link message not read: {p:?}"));
        assert_eq!(
            (
                l.index,
                l.name.as_str(),
                l.mtu,
                l.mac.map(|m| m.0),
                l.up,
                l.ether
            ),
            (index, name.as_str(), mtu, mac, flags & 1 != 0, true),
            "link message read back differently"
        );
    }
}

/// nfnetlink batch ACKs: the first byte is the number of messages in the batch (sequence
/// numbers 2..), the rest a run of datagrams, each behind a 2-byte length:
/// - `Acks::absorb` never panics;
/// - a message counts as accepted only when its NLMSG_ERROR carries a 4-byte zero code:
///   anything else is a refusal with an errno from 1 to 4095, or an error;
/// - a datagram gives the same answers as its messages sent one per datagram;
/// - `result` is `Ok` exactly when nothing was refused.
pub fn nfnetlink_acks(data: &[u8]) {
    let n = usize::from(data.first().copied().unwrap_or(0) % 64);
    let mut rest = data.get(1..).unwrap_or_default();
    let mut acks = Acks::new(1, n);
    let mut split = Acks::new(1, n);
    let mut failed = false;
    while !rest.is_empty() && !failed {
        let len = usize::from(u16::from_ne_bytes([rest[0], *rest.get(1).unwrap_or(&0)]));
        rest = rest.get(2..).unwrap_or_default();
        let (dgram, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        let before: Vec<bool> = acks.answered.clone();
        let refused_before = acks.refused.len();
        let got = acks.absorb(dgram);
        // The same messages, one datagram each.
        let mut one_by_one = Ok(());
        for m in messages(dgram) {
            let Ok((ty, seq, payload)) = m else {
                one_by_one = Err(());
                break;
            };
            let mut d = vec![0u8; HDR_LEN];
            d[0..4].copy_from_slice(&((HDR_LEN + payload.len()) as u32).to_ne_bytes());
            d[4..6].copy_from_slice(&ty.to_ne_bytes());
            d[8..12].copy_from_slice(&seq.to_ne_bytes());
            d.extend_from_slice(payload);
            if split.absorb(&d).is_err() {
                one_by_one = Err(());
                break;
            }
            // Independent reading of what this message says.
            if ty == NLMSG_ERROR
                && seq >= 2
                && ((seq - 2) as usize) < n
                && acks.batch_refused.is_none()
                && got.is_ok()
            {
                let i = (seq - 2) as usize;
                let zero = payload.get(..4) == Some(&[0; 4][..]);
                assert!(acks.answered[i], "message {i} answered but not counted");
                if !zero {
                    assert!(
                        acks.refused[refused_before..].iter().any(|(j, _)| *j == i),
                        "message {i} refused with {:?} but counted as loaded",
                        payload.get(..4)
                    );
                }
            }
        }
        match got {
            Ok(()) => {
                if acks.batch_refused.is_none() {
                    assert_eq!(one_by_one, Ok(()), "split answers differ");
                    assert_eq!(split.answered, acks.answered, "split answers differ");
                    assert_eq!(split.refused, acks.refused, "split refusals differ");
                }
            }
            Err(e) => {
                assert!(matches!(e, NlError::Protocol(_)), "{e:?}");
                failed = true;
            }
        }
        for (i, e) in &acks.refused {
            assert!(*i < n && (1..=MAX_ERRNO).contains(e), "refusal ({i}, {e})");
        }
        if let Some(e) = acks.batch_refused {
            assert!((0..=MAX_ERRNO).contains(&e), "batch refusal {e}");
        }
        assert!(
            before.iter().zip(&acks.answered).all(|(b, a)| !b || *a),
            "answer undone"
        );
        if acks.complete() && acks.batch_refused.is_some() {
            break;
        }
        split = acks.clone();
    }
    let batch = netcfg::nft::delete_batch();
    if acks.complete() {
        let ok = acks.refused.is_empty() && acks.batch_refused.is_none();
        // `result` names messages of `batch`; it must not index past it.
        assert_eq!(
            acks.result(&batch).is_ok(),
            ok,
            "result disagrees with the answers"
        );
    }
}

/// A [`metadata::Found`] keeps its promises: keys pass `check_line`, trimmed, without
/// duplicates; the host name passes `hostname_error`; and its keys merge into any
/// authorized_keys text idempotently.
fn check_found(f: &metadata::Found, what: &str) {
    for (i, k) in f.keys.iter().enumerate() {
        assert_eq!(
            metadata::keys::check_line(k),
            Ok(()),
            "{what}: key {k:?} accepted"
        );
        assert_eq!(k.trim(), k, "{what}: key {k:?} not trimmed");
        assert!(!f.keys[..i].contains(k), "{what}: key {k:?} twice");
    }
    if let Some(h) = &f.hostname {
        assert_eq!(
            metadata::hostname_error(h),
            None,
            "{what}: host name {h:?} accepted"
        );
    }
    for w in &f.warnings {
        assert!(!w.is_empty() && !w.contains('\n'), "{what}: warning {w:?}");
    }
}

/// `existing` with the platform's `keys` merged in, checked: idempotent, the block holds
/// exactly the valid keys in order, a text without a block is kept as its start, and
/// removing the block again gives what removing it from `existing` gives.
fn check_merge(existing: &str, keys: &[String]) {
    use metadata::keys::{BEGIN, END, check_line, merge};
    let m = merge(existing, "fuzz", keys);
    assert_eq!(merge(&m, "fuzz", keys), m, "merge not idempotent");
    let valid: Vec<&str> = keys
        .iter()
        .filter(|k| check_line(k).is_ok())
        .map(String::as_str)
        .collect();
    let lines: Vec<&str> = m.lines().collect();
    let begins: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with(BEGIN))
        .collect();
    if valid.is_empty() {
        assert!(begins.is_empty(), "a block without keys");
    } else {
        assert_eq!(begins.len(), 1, "not one block");
        let b = begins[0];
        assert_eq!(lines[b], format!("{BEGIN}fuzz)"));
        assert_eq!(
            lines[b + 1..b + 1 + valid.len()],
            valid[..],
            "the block's keys"
        );
        assert_eq!(lines[b + 1 + valid.len()], END, "the block's end");
    }
    if !existing.lines().any(|l| l.starts_with(BEGIN)) {
        assert!(m.starts_with(existing), "lines outside the block changed");
    }
    let removed = merge(existing, "fuzz", &[]);
    assert_eq!(
        merge(&m, "fuzz", &[]).trim_end_matches('\n'),
        removed.trim_end_matches('\n'),
        "lines outside the block changed"
    );
}

/// Splits at the first NUL: (before, after it if there was one).
fn split0(b: &[u8]) -> (&[u8], Option<&[u8]>) {
    match b.iter().position(|&c| c == 0) {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    }
}

/// The `metadata` crate's parsers (issue 18); the first byte picks one, the rest is its
/// input (two documents split at the first NUL):
/// 0 NoCloud meta-data and user-data, 1 Linode's /v1/ssh-keys and /v1/instance, 2 an HTTP
/// response, 3 a token, 4 authorized_keys text and key lines for `merge`, 5 key lines and
/// host names. No panic, the same answer twice, and what is accepted is valid (keys pass
/// `check_line`, host names `hostname_error`, bodies no longer than the input, tokens
/// printable), and merging what was found is idempotent and keeps the other lines.
pub fn metadata(data: &[u8]) {
    use metadata::{http, keys, linode, nocloud};
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (a, b) = split0(rest);
    match mode % 6 {
        0 => {
            let f = nocloud::parse(a, b);
            assert_eq!(f, nocloud::parse(a, b), "not deterministic");
            check_found(&f, "nocloud");
            check_merge(&String::from_utf8_lossy(a), &f.keys);
        }
        1 => {
            let f = linode::parse(a, b);
            assert_eq!(f, linode::parse(a, b), "not deterministic");
            check_found(&f, "linode");
            match linode::parse_ssh_keys(a) {
                Ok(k) => assert_eq!(k, f.keys, "parse_ssh_keys and parse disagree"),
                Err(e) => assert!(f.keys.is_empty() && f.warnings.contains(&e), "{e}"),
            }
            match linode::read(a, b) {
                Ok(r) => assert_eq!(r, f, "read and parse disagree"),
                Err(e) => assert!(f.keys.is_empty() && f.warnings.first() == Some(&e), "{e}"),
            }
            if let Some(b) = b
                && let Ok(Some(h)) = linode::parse_instance(b)
            {
                assert_eq!(metadata::hostname_error(&h), None, "label {h:?} accepted");
                assert_eq!(f.hostname.as_ref(), Some(&h));
            }
            check_merge("", &f.keys);
        }
        2 => {
            let r = http::parse_response(rest);
            assert_eq!(r, http::parse_response(rest), "not deterministic");
            match r {
                Ok(r) => {
                    assert!((200..600).contains(&r.status), "status {}", r.status);
                    assert!(r.body.len() <= rest.len(), "a body longer than the input");
                }
                Err(e) => assert!(!e.is_empty()),
            }
        }
        3 => {
            if let Ok(t) = linode::parse_token(rest) {
                assert!((1..=linode::TOKEN_MAX).contains(&t.len()), "token length");
                assert!(t.bytes().all(|c| (0x20..0x7f).contains(&c)), "token {t:?}");
                assert_eq!(t.trim(), t, "token not trimmed");
                let req = linode::get_request(linode::HOST, "/v1/instance", &t);
                let text = String::from_utf8(req).expect("a request is ASCII");
                assert_eq!(text.matches("\r\n").count(), 6, "header injected: {text:?}");
            }
        }
        4 => {
            let existing = String::from_utf8_lossy(a);
            let keys: Vec<String> = b
                .map(|b| {
                    String::from_utf8_lossy(b)
                        .split('\n')
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            check_merge(&existing, &keys);
        }
        _ => {
            for line in String::from_utf8_lossy(rest).split('\n') {
                if keys::check_line(line).is_ok() {
                    assert!(line.len() <= keys::LINE_MAX && !line.chars().any(char::is_control));
                    assert!(
                        keys::TYPES
                            .iter()
                            .any(|t| line.starts_with(&format!("{t} "))),
                        "{line:?} accepted"
                    );
                }
                if metadata::hostname_error(line).is_none() {
                    assert!(
                        (1..=64).contains(&line.len())
                            && line
                                .bytes()
                                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.'),
                        "host name {line:?} accepted"
                    );
                }
            }
        }
    }
}

//! The `[firewall]` config loaded into the kernel as keel's `inet keel` table over nfnetlink,
//! in one batch transaction, with no `nft` binary: the same table `firewall::render` writes as
//! text (the host tests load both and compare `nft list table inet keel`).
//!
//! [`encode`] is pure: it turns a [`Firewall`] into a batch of nf_tables messages, each tagged
//! with the config rule it came from. [`load`] sends the batch on a NETLINK_NETFILTER socket
//! and reads one answer per message. The batch replaces keel's table only, like the text's
//! `table ...; delete table ...; table ... { }` idiom: NEWTABLE (a no-op if it exists),
//! DELTABLE, then NEWTABLE, chains, anonymous sets and rules. The kernel commits all of it or
//! nothing, so a refused batch leaves the previous table (or, at boot, none) in place.
//!
//! Attribute numbers and expression layouts are the kernel's
//! include/uapi/linux/netfilter/nf_tables.h and nfnetlink.h (Linux 6.1); the expressions are
//! the ones `nft --debug=netlink` shows nftables 1.0.6 emitting for the rendered text (meta,
//! payload, bitwise, cmp, ct, lookup of an anonymous set, immediate verdicts, counter,
//! reject). Netlink integers are host order; nf_tables attribute integers are big-endian.

use std::fmt;
use std::net::IpAddr;

use appliance::{Allow, Cidr, Firewall, Forward, PortRange, Protocol};
use nix::sys::socket::SockProtocol;

use crate::firewall::{ICMP_TYPES, ICMPV6_TYPES, rule_comment};
use crate::netlink::{
    Msg, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLMSG_ERROR, NlError, Socket, messages, nlmsgerr,
};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_NEWSET: u16 = 9;
const NFT_MSG_NEWSETELEM: u16 = 12;

const NFPROTO_INET: u8 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;

const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFTA_SET_DESC: u16 = 9;
const NFTA_SET_DESC_SIZE: u16 = 1;
const NFTA_SET_ID: u16 = 10;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_SET_ELEM_LIST_SET_ID: u16 = 4;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFT_SET_ANONYMOUS: u32 = 0x1;
const NFT_SET_CONSTANT: u32 = 0x2;
/// nftables' datatype numbers for the set key (src/datatype.h: TYPE_ICMP_TYPE, TYPE_ICMP6_TYPE),
/// which `nft list` uses to print the elements by name.
const TYPE_ICMP_TYPE: u32 = 14;
const TYPE_ICMP6_TYPE: u32 = 29;

const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
const NF_INET_LOCAL_IN: u32 = 1;
const NF_INET_FORWARD: u32 = 2;
const NF_INET_LOCAL_OUT: u32 = 3;

const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;
const NFT_META_IIF: u32 = 4;
const NFT_META_NFPROTO: u32 = 15;
const NFT_META_L4PROTO: u32 = 16;
const NFT_CT_STATE: u32 = 0;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
const NFT_CMP_LTE: u32 = 3;
const NFT_CMP_GTE: u32 = 5;
const NFT_REJECT_ICMPX_UNREACH: u32 = 2;
const NFT_REJECT_ICMPX_ADMIN_PROHIBITED: u8 = 3;
/// ct state bits (NF_CT_STATE_INVALID_BIT, NF_CT_STATE_BIT(ESTABLISHED/RELATED)).
const CT_INVALID: u32 = 1;
const CT_ESTABLISHED_RELATED: u32 = 2 | 4;
/// The loopback device is ifindex 1 in every network namespace (LOOPBACK_IFINDEX).
const LOOPBACK_IFINDEX: u32 = 1;
/// The first rule-comment TLV of nftables' rule userdata (NFTNL_UDATA_RULE_COMMENT).
const UDATA_RULE_COMMENT: u8 = 0;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;

const TABLE_NAME: &str = "keel";
const ANON_SET: &str = "__set%d";

/// One nf_tables expression; every one that reads or writes a register uses register 1.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expr {
    Meta(u32),
    Ct(u32),
    Payload { base: u32, offset: u32, len: u32 },
    Bitwise { mask: Vec<u8> },
    Cmp(u32, Vec<u8>),
    Lookup(u32),
    Verdict(u32),
    Counter,
    Reject,
}

/// One message of the batch and what it is, for the error message.
#[derive(Clone, Debug)]
pub struct Message {
    /// The netlink message, sequence number and length filled in by [`Batch::bytes`].
    pub body: Vec<u8>,
    /// `table inet keel`, `chain input`, `[firewall] allow 2: web` or `built-in rule "loopback"`.
    pub origin: String,
}

/// The messages that replace keel's table, in order, between a batch begin and end.
#[derive(Clone, Debug)]
pub struct Batch {
    pub messages: Vec<Message>,
}

fn be(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

fn z(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn msg(ty: u16, flags: u16, family: u8) -> Msg {
    let mut m = Msg::new((NFNL_SUBSYS_NFTABLES << 8) | ty, flags);
    m.bytes(&[family, 0, 0, 0]);
    m
}

fn data_value(m: &mut Msg, ty: u16, v: &[u8]) {
    m.nest(ty, |m| {
        m.attr(NFTA_DATA_VALUE, v);
    });
}

/// An expression's attributes, written inside its NFTA_EXPR_DATA nest.
type ExprData<'a> = Box<dyn Fn(&mut Msg) + 'a>;

fn expr(m: &mut Msg, e: &Expr) {
    let (name, data): (&str, ExprData<'_>) = match e {
        Expr::Meta(key) => (
            "meta",
            Box::new(move |m: &mut Msg| {
                m.attr(2, &be(*key)).attr(1, &be(NFT_REG_1));
            }),
        ),
        Expr::Ct(key) => (
            "ct",
            Box::new(move |m: &mut Msg| {
                m.attr(2, &be(*key)).attr(1, &be(NFT_REG_1));
            }),
        ),
        Expr::Payload { base, offset, len } => (
            "payload",
            Box::new(move |m: &mut Msg| {
                m.attr(1, &be(NFT_REG_1))
                    .attr(2, &be(*base))
                    .attr(3, &be(*offset))
                    .attr(4, &be(*len));
            }),
        ),
        Expr::Bitwise { mask } => (
            "bitwise",
            Box::new(move |m: &mut Msg| {
                m.attr(1, &be(NFT_REG_1))
                    .attr(2, &be(NFT_REG_1))
                    .attr(3, &be(mask.len() as u32));
                data_value(m, 4, mask);
                data_value(m, 5, &vec![0; mask.len()]);
            }),
        ),
        Expr::Cmp(op, v) => (
            "cmp",
            Box::new(move |m: &mut Msg| {
                m.attr(1, &be(NFT_REG_1)).attr(2, &be(*op));
                data_value(m, 3, v);
            }),
        ),
        Expr::Lookup(id) => (
            "lookup",
            Box::new(move |m: &mut Msg| {
                m.attr(2, &be(NFT_REG_1))
                    .attr(1, &z(ANON_SET))
                    .attr(4, &be(*id));
            }),
        ),
        Expr::Verdict(code) => (
            "immediate",
            Box::new(move |m: &mut Msg| {
                m.attr(1, &be(NFT_REG_VERDICT));
                m.nest(2, |m| {
                    m.nest(NFTA_DATA_VERDICT, |m| {
                        m.attr(NFTA_VERDICT_CODE, &be(*code));
                    });
                });
            }),
        ),
        Expr::Counter => ("counter", Box::new(|_: &mut Msg| {})),
        Expr::Reject => (
            "reject",
            Box::new(|m: &mut Msg| {
                m.attr(1, &be(NFT_REJECT_ICMPX_UNREACH))
                    .attr(2, &[NFT_REJECT_ICMPX_ADMIN_PROHIBITED]);
            }),
        ),
    };
    m.nest(NFTA_LIST_ELEM, |m| {
        m.attr(NFTA_EXPR_NAME, &z(name));
        m.nest(NFTA_EXPR_DATA, |m| data(m));
    });
}

/// Builds the batch; keeps the anonymous-set ids unique within it.
struct Builder {
    messages: Vec<Message>,
    next_set: u32,
}

impl Builder {
    fn push(&mut self, m: Msg, origin: String) {
        self.messages.push(Message {
            body: m.finish(0),
            origin,
        });
    }

    fn table(&mut self, ty: u16, flags: u16) {
        let mut m = msg(ty, flags | NLM_F_ACK, NFPROTO_INET);
        m.attr(NFTA_TABLE_NAME, &z(TABLE_NAME));
        if ty == NFT_MSG_NEWTABLE {
            m.attr(NFTA_TABLE_FLAGS, &be(0));
        }
        self.push(m, format!("table {}", crate::firewall::TABLE));
    }

    fn chain(&mut self, name: &str, hook: u32, policy: u32) {
        let mut m = msg(NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_ACK, NFPROTO_INET);
        m.attr(NFTA_CHAIN_TABLE, &z(TABLE_NAME))
            .attr(NFTA_CHAIN_NAME, &z(name))
            .attr(NFTA_CHAIN_TYPE, &z("filter"))
            .attr(NFTA_CHAIN_POLICY, &be(policy));
        m.nest(NFTA_CHAIN_HOOK, |m| {
            m.attr(NFTA_HOOK_HOOKNUM, &be(hook))
                .attr(NFTA_HOOK_PRIORITY, &be(0));
        });
        self.push(m, format!("chain {name}"));
    }

    /// An anonymous constant set of one-byte keys; returns its id for [`Expr::Lookup`].
    fn set(&mut self, key_type: u32, keys: &[u8], origin: &str) -> u32 {
        self.next_set += 1;
        let id = self.next_set;
        let mut m = msg(NFT_MSG_NEWSET, NLM_F_CREATE | NLM_F_ACK, NFPROTO_INET);
        m.attr(NFTA_SET_TABLE, &z(TABLE_NAME))
            .attr(NFTA_SET_NAME, &z(ANON_SET))
            .attr(NFTA_SET_FLAGS, &be(NFT_SET_ANONYMOUS | NFT_SET_CONSTANT))
            .attr(NFTA_SET_KEY_TYPE, &be(key_type))
            .attr(NFTA_SET_KEY_LEN, &be(1))
            .attr(NFTA_SET_ID, &be(id));
        m.nest(NFTA_SET_DESC, |m| {
            m.attr(NFTA_SET_DESC_SIZE, &be(keys.len() as u32));
        });
        self.push(m, origin.to_string());
        let mut m = msg(NFT_MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_ACK, NFPROTO_INET);
        m.attr(NFTA_SET_ELEM_LIST_TABLE, &z(TABLE_NAME))
            .attr(NFTA_SET_ELEM_LIST_SET, &z(ANON_SET))
            .attr(NFTA_SET_ELEM_LIST_SET_ID, &be(id));
        m.nest(NFTA_SET_ELEM_LIST_ELEMENTS, |m| {
            for (i, k) in keys.iter().enumerate() {
                m.nest(i as u16 + 1, |m| data_value(m, NFTA_SET_ELEM_KEY, &[*k]));
            }
        });
        self.push(m, origin.to_string());
        id
    }

    fn rule(&mut self, chain: &str, exprs: &[Expr], comment: &str, origin: String) {
        let mut m = msg(
            NFT_MSG_NEWRULE,
            NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK,
            NFPROTO_INET,
        );
        m.attr(NFTA_RULE_TABLE, &z(TABLE_NAME))
            .attr(NFTA_RULE_CHAIN, &z(chain));
        m.nest(NFTA_RULE_EXPRESSIONS, |m| {
            for e in exprs {
                expr(m, e);
            }
        });
        let mut ud = vec![UDATA_RULE_COMMENT, comment.len() as u8 + 1];
        ud.extend_from_slice(&z(comment));
        m.attr(NFTA_RULE_USERDATA, &ud);
        self.push(m, origin);
    }

    /// A rule of a fixed part of the table, named by its comment.
    fn builtin(&mut self, chain: &str, exprs: &[Expr], comment: &str) {
        self.rule(
            chain,
            exprs,
            comment,
            format!("built-in rule \"{comment}\""),
        );
    }
}

fn nfproto(p: u8) -> [Expr; 2] {
    [Expr::Meta(NFT_META_NFPROTO), Expr::Cmp(NFT_CMP_EQ, vec![p])]
}

fn l4proto(p: u8) -> [Expr; 2] {
    [Expr::Meta(NFT_META_L4PROTO), Expr::Cmp(NFT_CMP_EQ, vec![p])]
}

/// `icmp type` and `icmpv6 type`: the first byte of the transport header.
fn icmp_type() -> Expr {
    Expr::Payload {
        base: NFT_PAYLOAD_TRANSPORT_HEADER,
        offset: 0,
        len: 1,
    }
}

/// The family check and source match of `c`, as nft emits them: a prefix on a byte boundary
/// loads only its bytes; any other loads the whole address and masks it.
fn source(c: &Cidr) -> Vec<Expr> {
    let (proto, offset, bytes) = match c.addr {
        IpAddr::V4(a) => (NFPROTO_IPV4, 12, a.octets().to_vec()),
        IpAddr::V6(a) => (NFPROTO_IPV6, 8, a.octets().to_vec()),
    };
    let mut out = nfproto(proto).to_vec();
    let prefix = usize::from(c.prefix);
    if prefix % 8 == 0 && prefix > 0 {
        out.push(Expr::Payload {
            base: NFT_PAYLOAD_NETWORK_HEADER,
            offset,
            len: (prefix / 8) as u32,
        });
        out.push(Expr::Cmp(NFT_CMP_EQ, bytes[..prefix / 8].to_vec()));
    } else {
        out.push(Expr::Payload {
            base: NFT_PAYLOAD_NETWORK_HEADER,
            offset,
            len: bytes.len() as u32,
        });
        let mask: Vec<u8> = (0..bytes.len())
            .map(|i| {
                let bits = prefix.saturating_sub(i * 8).min(8);
                (0xff00u16 >> bits) as u8
            })
            .collect();
        let masked = bytes.iter().zip(&mask).map(|(b, m)| b & m).collect();
        out.push(Expr::Bitwise { mask });
        out.push(Expr::Cmp(NFT_CMP_EQ, masked));
    }
    out
}

fn dport(p: PortRange) -> Vec<Expr> {
    let mut out = vec![Expr::Payload {
        base: NFT_PAYLOAD_TRANSPORT_HEADER,
        offset: 2,
        len: 2,
    }];
    if p.first == p.last {
        out.push(Expr::Cmp(NFT_CMP_EQ, p.first.to_be_bytes().to_vec()));
    } else {
        out.push(Expr::Cmp(NFT_CMP_GTE, p.first.to_be_bytes().to_vec()));
        out.push(Expr::Cmp(NFT_CMP_LTE, p.last.to_be_bytes().to_vec()));
    }
    out
}

fn allow(b: &mut Builder, n: usize, rule: &Allow) {
    let comment = rule_comment(n, rule);
    let origin = format!("[firewall] {comment}");
    let from = rule.source.as_ref().map(source).unwrap_or_default();
    let accept = Expr::Verdict(NF_ACCEPT);
    match (rule.protocol, rule.ports) {
        (Protocol::Tcp | Protocol::Udp, Some(ports)) => {
            let proto = if rule.protocol == Protocol::Tcp {
                IPPROTO_TCP
            } else {
                IPPROTO_UDP
            };
            let mut e = from;
            e.extend(l4proto(proto));
            e.extend(dport(ports));
            e.push(accept);
            b.rule("input", &e, &comment, origin);
        }
        // As in the text renderer: validation gives TCP and UDP rules ports.
        (Protocol::Tcp | Protocol::Udp, None) => {}
        (Protocol::Icmp, _) => {
            for (v6, proto, nfp, echo) in [
                (false, IPPROTO_ICMP, NFPROTO_IPV4, 8u8),
                (true, IPPROTO_ICMPV6, NFPROTO_IPV6, 128u8),
            ] {
                let wanted = rule.source.as_ref().is_none_or(|c| c.is_ipv4() != v6);
                if !wanted {
                    continue;
                }
                let mut e = if rule.source.is_some() {
                    from.clone()
                } else {
                    nfproto(nfp).to_vec()
                };
                e.extend(l4proto(proto));
                e.push(icmp_type());
                e.push(Expr::Cmp(NFT_CMP_EQ, vec![echo]));
                e.push(accept.clone());
                b.rule("input", &e, &comment, origin.clone());
            }
        }
    }
}

/// The type numbers of the ICMP and ICMPv6 names the text renderer lists.
fn icmp_code(name: &str, v6: bool) -> u8 {
    match (v6, name) {
        (false, "destination-unreachable") => 3,
        (false, "time-exceeded") => 11,
        (false, "parameter-problem") => 12,
        (true, "destination-unreachable") => 1,
        (true, "packet-too-big") => 2,
        (true, "time-exceeded") => 3,
        (true, "parameter-problem") => 4,
        (true, "mld-listener-query") => 130,
        (true, "mld-listener-report") => 131,
        (true, "mld-listener-done") => 132,
        (true, "nd-router-advert") => 134,
        (true, "nd-neighbor-solicit") => 135,
        (true, "nd-neighbor-advert") => 136,
        (true, "mld2-listener-report") => 143,
        // The lists are constants of this crate; a test checks every name maps.
        _ => 0,
    }
}

/// The batch that replaces keel's table with the one `fw` describes. Pure and deterministic.
pub fn encode(fw: &Firewall) -> Batch {
    let mut b = Builder {
        messages: Vec::new(),
        next_set: 0,
    };
    b.table(NFT_MSG_NEWTABLE, NLM_F_CREATE);
    b.table(NFT_MSG_DELTABLE, 0);
    b.table(NFT_MSG_NEWTABLE, NLM_F_CREATE);
    b.chain("input", NF_INET_LOCAL_IN, NF_DROP);
    b.chain("forward", NF_INET_FORWARD, NF_DROP);
    b.chain("output", NF_INET_LOCAL_OUT, NF_ACCEPT);

    let ct = |bits: u32, op: u32, verdict: u32| {
        vec![
            Expr::Ct(NFT_CT_STATE),
            Expr::Bitwise {
                mask: bits.to_ne_bytes().to_vec(),
            },
            Expr::Cmp(op, 0u32.to_ne_bytes().to_vec()),
            Expr::Verdict(verdict),
        ]
    };
    let accept = Expr::Verdict(NF_ACCEPT);
    b.builtin(
        "input",
        &ct(CT_ESTABLISHED_RELATED, NFT_CMP_NEQ, NF_ACCEPT),
        "replies and related errors",
    );
    b.builtin("input", &ct(CT_INVALID, NFT_CMP_NEQ, NF_DROP), "invalid");
    b.builtin(
        "input",
        &[
            Expr::Meta(NFT_META_IIF),
            Expr::Cmp(NFT_CMP_EQ, LOOPBACK_IFINDEX.to_ne_bytes().to_vec()),
            accept.clone(),
        ],
        "loopback",
    );
    for (v6, types, key_type, proto, nfp, comment) in [
        (
            false,
            ICMP_TYPES,
            TYPE_ICMP_TYPE,
            IPPROTO_ICMP,
            NFPROTO_IPV4,
            "icmp errors",
        ),
        (
            true,
            ICMPV6_TYPES,
            TYPE_ICMP6_TYPE,
            IPPROTO_ICMPV6,
            NFPROTO_IPV6,
            "icmpv6 errors, neighbour discovery",
        ),
    ] {
        let keys: Vec<u8> = types.iter().map(|t| icmp_code(t, v6)).collect();
        let origin = format!("built-in rule \"{comment}\"");
        let id = b.set(key_type, &keys, &origin);
        let mut e = nfproto(nfp).to_vec();
        e.extend(l4proto(proto));
        e.push(icmp_type());
        e.push(Expr::Lookup(id));
        e.push(accept.clone());
        b.builtin("input", &e, comment);
    }
    if fw.ping {
        for (proto, nfp, echo) in [
            (IPPROTO_ICMP, NFPROTO_IPV4, 8u8),
            (IPPROTO_ICMPV6, NFPROTO_IPV6, 128u8),
        ] {
            let mut e = nfproto(nfp).to_vec();
            e.extend(l4proto(proto));
            e.push(icmp_type());
            e.push(Expr::Cmp(NFT_CMP_EQ, vec![echo]));
            e.push(accept.clone());
            b.builtin("input", &e, "ping");
        }
    }
    // ip6 saddr fe80::/10 udp sport 547 udp dport 546: nft merges the two port loads.
    let fe80 = Cidr {
        addr: IpAddr::V6(std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)),
        prefix: 10,
    };
    let mut e = source(&fe80);
    e.extend(l4proto(IPPROTO_UDP));
    e.push(Expr::Payload {
        base: NFT_PAYLOAD_TRANSPORT_HEADER,
        offset: 0,
        len: 4,
    });
    e.push(Expr::Cmp(NFT_CMP_EQ, vec![0x02, 0x23, 0x02, 0x22]));
    e.push(accept);
    b.builtin("input", &e, "dhcpv6 client");
    for (i, rule) in fw.allow.iter().enumerate() {
        allow(&mut b, i + 1, rule);
    }
    b.builtin("input", &[Expr::Counter], "dropped by policy");
    match fw.forward {
        Forward::Drop => b.builtin("forward", &[Expr::Counter], "dropped by policy"),
        Forward::Reject => b.builtin(
            "forward",
            &[Expr::Counter, Expr::Reject],
            "forward = reject",
        ),
    }
    Batch {
        messages: b.messages,
    }
}

impl Batch {
    /// The whole batch as sent: begin, the messages numbered from `first_seq + 1`, end.
    pub fn bytes(&self, first_seq: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let frame = |ty: u16| {
            let mut m = Msg::new(ty, 0);
            m.bytes(&[0, 0]).bytes(&NFNL_SUBSYS_NFTABLES.to_be_bytes());
            m
        };
        out.extend(frame(NFNL_MSG_BATCH_BEGIN).finish(first_seq));
        for (i, m) in self.messages.iter().enumerate() {
            let mut body = m.body.clone();
            let seq = first_seq + 1 + i as u32;
            body[8..12].copy_from_slice(&seq.to_ne_bytes());
            out.extend(body);
        }
        let end = first_seq + 1 + self.messages.len() as u32;
        out.extend(frame(NFNL_MSG_BATCH_END).finish(end));
        out
    }
}

/// Why the table was not loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The socket failed, or no answer came.
    Netlink(NlError),
    /// The kernel refused the batch: for each refused message, what it was and the errno.
    /// Nothing of the batch was applied.
    Refused(Vec<(String, i32)>),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Netlink(e) => write!(f, "{e}"),
            LoadError::Refused(v) => {
                let parts: Vec<String> = v
                    .iter()
                    .map(|(what, errno)| {
                        format!("the kernel refused {what}: {}", NlError::Kernel(*errno))
                    })
                    .collect();
                write!(f, "{}", parts.join("; "))
            }
        }
    }
}

/// Sends `batch` on a NETLINK_NETFILTER socket in the calling thread's network namespace and
/// waits for the kernel's answer to every message.
pub fn send(batch: &Batch) -> Result<(), LoadError> {
    let sock = Socket::open(SockProtocol::NetlinkNetFilter).map_err(LoadError::Netlink)?;
    let first = 1u32;
    sock.send(&batch.bytes(first)).map_err(LoadError::Netlink)?;
    let mut acks = Acks::new(first, batch.messages.len());
    let mut rx = vec![0u8; 1 << 16];
    while !acks.complete() {
        let len = sock.recv(&mut rx).map_err(LoadError::Netlink)?;
        acks.absorb(&rx[..len]).map_err(LoadError::Netlink)?;
    }
    acks.result(batch)
}

/// The kernel's answers to a batch sent with [`Batch::bytes`]`(first)`, gathered datagram by
/// datagram: which messages were answered and which refused (index, errno). Pure, for the
/// fuzz target `nfnetlink_acks`.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acks {
    first: u32,
    /// Per message: answered yet.
    pub answered: Vec<bool>,
    /// (message index, errno) of each refusal, in the order they came.
    pub refused: Vec<(usize, i32)>,
    /// The errno with which the kernel refused the batch as a whole (seq `first`).
    pub batch_refused: Option<i32>,
}

impl Acks {
    pub fn new(first: u32, messages: usize) -> Acks {
        Acks {
            first,
            answered: vec![false; messages],
            refused: Vec::new(),
            batch_refused: None,
        }
    }

    /// Nothing more to wait for: every message answered, or the batch refused.
    pub fn complete(&self) -> bool {
        self.batch_refused.is_some() || self.answered.iter().all(|a| *a)
    }

    /// Reads one received datagram. An unreadable message (truncated, or an NLMSG_ERROR
    /// whose code cannot be read) is an error: keel cannot tell whether it was a refusal.
    pub fn absorb(&mut self, rx: &[u8]) -> Result<(), NlError> {
        for m in messages(rx) {
            if self.batch_refused.is_some() {
                return Ok(());
            }
            let (ty, seq, payload) = m?;
            if ty != NLMSG_ERROR {
                continue;
            }
            let errno = nlmsgerr(payload)?;
            if seq == self.first {
                // The batch itself was refused (nf_tables missing, or out of memory).
                self.batch_refused = Some(errno);
                continue;
            }
            let Some(i) = seq
                .checked_sub(self.first.wrapping_add(1))
                .map(|i| i as usize)
                .filter(|i| *i < self.answered.len())
            else {
                continue;
            };
            self.answered[i] = true;
            if errno != 0 {
                self.refused.push((i, errno));
            }
        }
        Ok(())
    }

    /// What [`send`] returns once [`Acks::complete`].
    pub fn result(&self, batch: &Batch) -> Result<(), LoadError> {
        let mut refused: Vec<(String, i32)> = self
            .refused
            .iter()
            .map(|(i, e)| {
                let what = batch.messages.get(*i).map(|m| m.origin.clone());
                (what.unwrap_or_else(|| format!("message {i}")), *e)
            })
            .collect();
        if let Some(e) = self.batch_refused {
            refused.push(("the batch".to_string(), e));
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(LoadError::Refused(refused))
        }
    }
}

/// The batch that removes keel's table, if there is one, and touches nothing else.
pub fn delete_batch() -> Batch {
    let mut b = Builder {
        messages: Vec::new(),
        next_set: 0,
    };
    b.table(NFT_MSG_NEWTABLE, NLM_F_CREATE);
    b.table(NFT_MSG_DELTABLE, 0);
    Batch {
        messages: b.messages,
    }
}

/// Loads keel's table for `fw` in one transaction: all or nothing.
pub fn load(fw: &Firewall) -> Result<(), LoadError> {
    send(&encode(fw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_icmp_name_has_a_number() {
        for t in ICMP_TYPES {
            assert_ne!(icmp_code(t, false), 0, "{t}");
        }
        for t in ICMPV6_TYPES {
            assert_ne!(icmp_code(t, true), 0, "{t}");
        }
        assert_eq!(icmp_code("destination-unreachable", false), 3);
        assert_eq!(icmp_code("destination-unreachable", true), 1);
    }

    #[test]
    fn non_byte_prefixes_are_masked() {
        let c = Cidr {
            addr: "fe80::".parse().unwrap_or(IpAddr::from([0u8; 4])),
            prefix: 10,
        };
        let e = source(&c);
        assert!(e.contains(&Expr::Bitwise {
            mask: [&[0xff, 0xc0][..], &[0; 14]].concat()
        }));
    }

    fn nlmsg(ty: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = Msg::new(ty, 0);
        m.bytes(payload);
        m.finish(seq)
    }

    /// Seen while writing the fuzz target `nfnetlink_acks`: an NLMSG_ERROR too short to hold its code
    /// counted as the kernel's ACK, so a refused rule could pass for loaded.
    #[test]
    fn a_short_error_message_is_not_an_ack() {
        let mut acks = Acks::new(1, 1);
        let got = acks.absorb(&nlmsg(NLMSG_ERROR, 2, &[0xff, 0xff]));
        assert!(matches!(got, Err(NlError::Protocol(_))), "{got:?}");
        assert_eq!(acks.refused, vec![]);
    }

    #[test]
    fn acks_name_the_refused_message_and_the_batch() {
        let b = encode(&Firewall::default());
        let mut acks = Acks::new(1, b.messages.len());
        let mut rx = nlmsg(NLMSG_ERROR, 3, &(-22i32).to_ne_bytes());
        rx.extend(nlmsg(NLMSG_ERROR, 2, &0i32.to_ne_bytes()));
        assert_eq!(acks.absorb(&rx), Ok(()));
        assert_eq!(acks.refused, vec![(1, 22)]);
        assert!(acks.answered[0] && acks.answered[1]);
        assert_eq!(acks.complete(), b.messages.len() == 2);
        assert_eq!(
            acks.absorb(&nlmsg(NLMSG_ERROR, 1, &(-1i32).to_ne_bytes())),
            Ok(())
        );
        assert!(acks.complete());
        let Err(LoadError::Refused(r)) = acks.result(&b) else {
            panic!("refused batch loaded");
        };
        assert_eq!(r[0], (b.messages[1].origin.clone(), 22));
        assert_eq!(r[1], ("the batch".to_string(), 1));
    }

    #[test]
    fn batch_is_framed_and_numbered() {
        let b = encode(&Firewall::default());
        let bytes = b.bytes(1);
        let seqs: Vec<u32> = messages(&bytes)
            .filter_map(Result::ok)
            .map(|(_, s, _)| s)
            .collect();
        assert_eq!(seqs.len(), b.messages.len() + 2);
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
        assert!(
            b.messages
                .iter()
                .any(|m| m.origin == "[firewall] allow 1: ssh")
        );
    }
}

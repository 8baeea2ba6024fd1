//! `[firewall]` validation: the model each form of rule gives, and every error kind with its
//! line and column.

use appliance::{Allow, Cidr, Firewall, Forward, PortRange, Protocol};
use std::net::IpAddr;

mod common;
use common::{errors, one};

fn firewall(text: &str) -> Firewall {
    match appliance::parse(text, "t.toml") {
        Ok(c) => c.firewall,
        Err(d) => panic!("{d:#?}"),
    }
}

fn cidr(s: &str) -> Cidr {
    let (a, p) = s.split_once('/').unwrap();
    Cidr {
        addr: a.parse::<IpAddr>().unwrap(),
        prefix: p.parse().unwrap(),
    }
}

#[test]
fn no_firewall_table_gives_openkaos_default() {
    let f = firewall("");
    assert_eq!(f, Firewall::default());
    assert_eq!(f.forward, Forward::Reject);
    assert!(f.ping);
    assert_eq!(
        f.allow,
        [Allow {
            protocol: Protocol::Tcp,
            ports: Some(PortRange::single(2222)),
            source: None,
            comment: Some("ssh".into()),
        }]
    );
    // An empty table keeps every default too.
    assert_eq!(firewall("[firewall]\n"), Firewall::default());
}

#[test]
fn every_form_of_rule_parses() {
    let f = firewall(
        r#"
[firewall]
forward = "drop"
ping = false
allow = [
  { protocol = "tcp", port = 2222, comment = "ssh" },
  { protocol = "tcp", port = "8000-8080", source = "10.0.0.0/8" },
  { protocol = "udp", port = "161", source = "fd00::/8", comment = "snmp" },
  { protocol = "icmp", source = "192.0.2.7" },
  { protocol = "udp", port = "53-53" },
]
"#,
    );
    assert_eq!(f.forward, Forward::Drop);
    assert!(!f.ping);
    let want = [
        Allow {
            protocol: Protocol::Tcp,
            ports: Some(PortRange::single(2222)),
            source: None,
            comment: Some("ssh".into()),
        },
        Allow {
            protocol: Protocol::Tcp,
            ports: Some(PortRange {
                first: 8000,
                last: 8080,
            }),
            source: Some(cidr("10.0.0.0/8")),
            comment: None,
        },
        Allow {
            protocol: Protocol::Udp,
            ports: Some(PortRange::single(161)),
            source: Some(cidr("fd00::/8")),
            comment: Some("snmp".into()),
        },
        Allow {
            protocol: Protocol::Icmp,
            ports: None,
            source: Some(cidr("192.0.2.7/32")),
            comment: None,
        },
        Allow {
            protocol: Protocol::Udp,
            ports: Some(PortRange::single(53)),
            source: None,
            comment: None,
        },
    ];
    assert_eq!(f.allow, want);
}

#[test]
fn array_of_tables_form_and_empty_list() {
    let f = firewall(
        r#"
[[firewall.allow]]
protocol = "tcp"
port = 443

[[firewall.allow]]
protocol = "udp"
port = 51820
source = "2001:db8::/32"
"#,
    );
    assert_eq!(f.allow.len(), 2);
    assert_eq!(f.allow[1].source, Some(cidr("2001:db8::/32")));
    assert!(firewall("[firewall]\nallow = []\n").allow.is_empty());
}

#[test]
fn bad_port_is_placed_and_explained() {
    let head = "[firewall]\nallow = [\n";
    one(
        &format!("{head}  {{ protocol = \"tcp\", port = 0 }},\n]\n"),
        "3:30",
        "port 0 is out of range",
    );
    one(
        &format!("{head}  {{ protocol = \"tcp\", port = 70000 }},\n]\n"),
        "3:30",
        "ports are 1 to 65535",
    );
    one(
        &format!("{head}  {{ protocol = \"tcp\", port = \"http\" }},\n]\n"),
        "3:30",
        "\"http\" is not a port number",
    );
    one(
        &format!("{head}  {{ protocol = \"tcp\", port = 1.5 }},\n]\n"),
        "3:30",
        "found a float",
    );
}

#[test]
fn reversed_range_suggests_the_right_order() {
    one(
        "[firewall]\nallow = [{ protocol = \"udp\", port = \"9000-8000\" }]\n",
        "2:37",
        "reversed; write \"8000-9000\"",
    );
}

#[test]
fn bad_cidr_is_placed_and_explained() {
    one(
        "[[firewall.allow]]\nprotocol = \"tcp\"\nport = 22\nsource = \"10.0.0.0/33\"\n",
        "4:10",
        "not a number from 0 to 32",
    );
    one(
        "[[firewall.allow]]\nprotocol = \"tcp\"\nport = 22\nsource = \"10.1.2.3/8\"\n",
        "4:10",
        "write the network, \"10.0.0.0/8\"",
    );
    one(
        "[[firewall.allow]]\nprotocol = \"tcp\"\nport = 22\nsource = \"fd00::1/8\"\n",
        "4:10",
        "\"fd00::/8\"",
    );
    one(
        "[[firewall.allow]]\nprotocol = \"tcp\"\nport = 22\nsource = \"lan\"\n",
        "4:10",
        "\"lan\" is not an IPv4 or IPv6 address",
    );
    one(
        "[[firewall.allow]]\nprotocol = \"tcp\"\nport = 22\nsource = 10\n",
        "4:10",
        "`source` must be a string",
    );
}

#[test]
fn unknown_protocol_suggests_a_near_miss() {
    one(
        "[firewall]\nallow = [{ protocol = \"tpc\", port = 22 }]\n",
        "2:23",
        "did you mean \"tcp\"?",
    );
    one(
        "[firewall]\nallow = [{ protocol = \"sctp\", port = 22 }]\n",
        "2:23",
        "use one of \"tcp\", \"udp\", \"icmp\"",
    );
}

#[test]
fn unknown_fields_are_named_with_a_suggestion() {
    one(
        "[firewall]\nallow = [{ protocol = \"tcp\", ports = 22 }]\n",
        "2:30",
        "unknown field `ports` in allow rule 1; did you mean `port`?",
    );
    one(
        "[firewall]\nforwrd = \"drop\"\n",
        "2:1",
        "unknown field `forwrd` in [firewall]; did you mean `forward`?",
    );
    one(
        "[firewall]\ninput = \"accept\"\n",
        "2:1",
        "known fields: forward, ping, allow",
    );
}

#[test]
fn port_with_icmp_and_missing_fields() {
    one(
        "[firewall]\nallow = [{ protocol = \"icmp\", port = 8 }]\n",
        "2:38",
        "icmp, which has no ports; remove `port`",
    );
    one(
        "[firewall]\nallow = [{ protocol = \"tcp\" }]\n",
        "2:10",
        "allow rule 1 (tcp) has no `port`",
    );
    one(
        "[firewall]\nallow = [{ port = 22 }]\n",
        "2:10",
        "allow rule 1 has no `protocol`",
    );
    // The missing protocol is reported next to another mistake, not hidden by it...
    let e = errors("[firewall]\nallow = [{ port = 22, source = \"10.0.0.0/99\" }]\n");
    assert_eq!(e.len(), 2, "{e:#?}");
    // ...but a misspelt field is most likely the missing one, so it is reported alone.
    one(
        "[firewall]\nallow = [{ protocl = \"tcp\", port = 22 }]\n",
        "2:12",
        "did you mean `protocol`?",
    );
}

#[test]
fn forward_ping_and_allow_types() {
    one(
        "[firewall]\nforward = \"accept\"\n",
        "2:11",
        "use one of \"reject\", \"drop\"",
    );
    one(
        "[firewall]\nping = \"yes\"\n",
        "2:8",
        "`ping` must be true or false",
    );
    one(
        "[firewall]\nallow = 2222\n",
        "2:9",
        "`firewall.allow` must be an array",
    );
    one(
        "[firewall]\nallow = [2222]\n",
        "2:10",
        "allow rule 1 must be a table",
    );
    one("firewall = 1\n", "1:12", "firewall must be a table");
}

#[test]
fn bad_comment_and_duplicate_rule() {
    one(
        "[firewall]\nallow = [{ protocol = \"tcp\", port = 22, comment = \"a \\\"b\\\"\" }]\n",
        "2:51",
        "printable ASCII characters without",
    );
    one(
        "[firewall]\nallow = [\n { protocol = \"tcp\", port = 22 },\n { protocol = \"tcp\", port = \"22\", comment = \"again\" },\n]\n",
        "4:2",
        "allow rule 2 matches the same traffic as allow rule 1 above",
    );
}

#[test]
fn every_error_in_the_table_is_reported_at_once() {
    let e = errors(
        r#"[firewall]
forward = "maybe"
allow = [
  { protocol = "tcp", port = "2-1" },
  { protocol = "udp", port = 53, source = "300.0.0.0/8" },
  { protocol = "icmp", port = 1 },
]
"#,
    );
    let lines: Vec<&str> = e.iter().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(lines, ["2", "4", "5", "6"], "{e:#?}");
}

#[test]
fn a_bad_list_never_half_applies() {
    // One bad rule rejects the config: the firewall is never built from the good half.
    assert!(
        appliance::parse(
            "[firewall]\nallow = [{ protocol = \"tcp\", port = 80 }, { protocol = \"tcp\" }]\n",
            "t.toml"
        )
        .is_err()
    );
}

#[test]
fn shipped_config_spells_out_the_default_firewall() {
    // configs/appliance.toml writes the defaults out for people to edit; they must not drift.
    let text = include_str!("../../../configs/appliance.toml");
    assert_eq!(firewall(text), Firewall::default());
}

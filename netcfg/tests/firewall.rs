//! The firewall renderer: golden rulesets for configs covering IPv4, IPv6, ranges, sources,
//! ping and forwarding; `nft -c -f` accepting every one; the atomic replace of keel's table;
//! and an nft error traced back to the config rule it came from.
//!
//! The golden files are `tests/firewall/*.nft`; `UPDATE_GOLDEN=1 cargo test -p netcfg --test
//! firewall` rewrites them (review the diff). The `nft` tests need root (CI runs as root);
//! without it they say why on stderr and check only the text.
#![allow(clippy::disallowed_methods)] // A test harness, not PID 1: it may wait on `nft`.

mod fw;

use fw::{Ns, firewall};
use netcfg::firewall::{TABLE, blame, render};
use std::path::Path;

/// Every config the tests render, with the golden file it must match.
const CASES: &[(&str, &str)] = &[
    ("default", ""),
    (
        "full",
        r#"
[firewall]
allow = [
  { protocol = "tcp", port = 2222, comment = "ssh" },
  { protocol = "tcp", port = "8000-8080", source = "10.0.0.0/8", comment = "web from the lan" },
  { protocol = "udp", port = 161, source = "fd00::/8", comment = "snmp" },
  { protocol = "udp", port = "60000-61000", comment = "mosh" },
  { protocol = "tcp", port = 443, source = "192.0.2.7" },
  { protocol = "tcp", port = 443, source = "2001:db8::7" },
  { protocol = "icmp", source = "198.51.100.0/24", comment = "ping from monitoring" },
  { protocol = "icmp", source = "2001:db8:1::/48" },
  { protocol = "udp", port = "1-65535", source = "0.0.0.0/0", comment = "every udp port over ipv4" },
]
"#,
    ),
    (
        "locked",
        r#"
[firewall]
forward = "drop"
ping = false
allow = [{ protocol = "icmp" }]
"#,
    ),
    ("console-only", "[firewall]\nallow = []\nping = false\n"),
];

fn golden_path(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/firewall")
        .join(format!("{name}.nft"))
}

#[test]
fn rulesets_match_the_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut stale = Vec::new();
    for (name, toml) in CASES {
        let got = render(&firewall(toml));
        let path = golden_path(name);
        if update {
            std::fs::write(&path, &got).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
                path.display()
            )
        });
        if got != want {
            eprintln!(
                "--- {} (golden)\n{want}\n+++ rendered\n{got}",
                path.display()
            );
            stale.push(*name);
        }
    }
    assert!(
        stale.is_empty(),
        "rendering differs from the golden files for {stale:?}; if the change is meant, \
         rerun with UPDATE_GOLDEN=1 and review the diff"
    );
}

#[test]
fn rendering_is_deterministic() {
    for (_, toml) in CASES {
        let fw = firewall(toml);
        assert_eq!(render(&fw), render(&fw.clone()));
    }
}

#[test]
fn default_ruleset_has_the_openkaos_policy() {
    let r = render(&firewall(""));
    let input = section(&r, "chain input {");
    assert!(input.contains("policy drop;"), "{input}");
    assert!(input.contains("ct state established,related accept"));
    assert!(input.contains("ct state invalid drop"));
    assert!(input.contains("iif \"lo\" accept"));
    assert!(input.contains("icmp type echo-request accept"));
    assert!(input.contains("icmpv6 type echo-request accept"));
    for t in [
        "packet-too-big",
        "nd-neighbor-solicit",
        "nd-neighbor-advert",
        "nd-router-advert",
    ] {
        assert!(input.contains(t), "icmpv6 {t} missing: {input}");
    }
    assert!(input.contains("\t\ttcp dport 2222 accept comment \"allow 1: ssh\"\n"));
    // Replies come before anything else: the first rule after the hook is conntrack.
    let first_rule = input.lines().nth(2).unwrap_or_default();
    assert!(
        first_rule.contains("ct state established,related accept"),
        "{first_rule}"
    );
    let forward = section(&r, "chain forward {");
    assert!(forward.contains("policy drop;"));
    assert!(forward.contains("reject with icmpx admin-prohibited"));
    let output = section(&r, "chain output {");
    assert!(output.contains("policy accept;"));
    // The one transaction replaces only keel's table, and works when it does not exist yet.
    assert!(r.contains(&format!(
        "table {TABLE} {{}}\ndelete table {TABLE}\ntable {TABLE} {{\n"
    )));
    assert!(!r.contains("flush ruleset"));
}

#[test]
fn a_source_limits_a_rule_to_its_address_family() {
    let r = render(&firewall(
        r#"
[firewall]
allow = [
  { protocol = "tcp", port = 80, source = "10.1.0.0/16" },
  { protocol = "tcp", port = 81, source = "fd00:1::/64" },
  { protocol = "icmp", source = "10.2.0.0/16" },
  { protocol = "icmp", source = "fd00:2::1" },
  { protocol = "icmp" },
]
"#,
    ));
    assert!(r.contains("\t\tip saddr 10.1.0.0/16 tcp dport 80 accept comment \"allow 1\"\n"));
    assert!(r.contains("\t\tip6 saddr fd00:1::/64 tcp dport 81 accept comment \"allow 2\"\n"));
    assert!(
        r.contains("\t\tip saddr 10.2.0.0/16 icmp type echo-request accept comment \"allow 3\"\n")
    );
    assert!(!r.contains("icmpv6 type echo-request accept comment \"allow 3\""));
    assert!(
        r.contains("\t\tip6 saddr fd00:2::1 icmpv6 type echo-request accept comment \"allow 4\"\n")
    );
    assert!(!r.contains("icmp type echo-request accept comment \"allow 4\""));
    // Without a source, an icmp rule covers both families.
    assert!(r.contains("\t\ticmp type echo-request accept comment \"allow 5\"\n"));
    assert!(r.contains("\t\ticmpv6 type echo-request accept comment \"allow 5\"\n"));
}

#[test]
fn ping_off_and_forward_drop() {
    let r = render(&firewall("[firewall]\nping = false\nforward = \"drop\"\n"));
    assert!(!r.contains("echo-request"), "{r}");
    let forward = section(&r, "chain forward {");
    assert!(!forward.contains("reject"), "{forward}");
    assert!(forward.contains("policy drop;"));
}

#[test]
fn shipped_appliance_config_renders() {
    let toml = include_str!("../../configs/appliance.toml");
    let r = render(&firewall(toml));
    assert!(
        r.contains("tcp dport 2222 accept"),
        "ssh must stay reachable: {r}"
    );
}

/// The lines from `start` to the closing brace of that chain.
fn section<'a>(ruleset: &'a str, start: &str) -> &'a str {
    let from = ruleset
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in {ruleset}"));
    let rest = &ruleset[from..];
    let end = rest.find("\n\t}").map_or(rest.len(), |e| e + 3);
    &rest[..end]
}

#[test]
fn nft_check_accepts_every_rendered_ruleset() {
    if !fw::runnable() {
        return;
    }
    let ns = Ns::new("check");
    let mut shipped = vec![(
        "appliance.toml",
        include_str!("../../configs/appliance.toml"),
    )];
    shipped.extend_from_slice(CASES);
    for (name, toml) in shipped {
        let ruleset = render(&firewall(toml));
        let out = ns.nft_file(&ruleset, true);
        assert!(
            out.status.success(),
            "nft -c rejected the {name} ruleset: {}\n{ruleset}",
            fw::text(&out.stderr)
        );
    }
}

#[test]
fn loading_replaces_only_keels_table_and_a_failed_load_changes_nothing() {
    if !fw::runnable() {
        return;
    }
    let ns = Ns::new("replace");
    // Someone else's table must survive keel's loads.
    let other = "table inet other {\n\tchain c {\n\t\ttype filter hook input priority 10; policy accept;\n\t}\n}\n";
    let out = ns.nft_file(other, false);
    assert!(out.status.success(), "{}", fw::text(&out.stderr));

    // The first load creates the table (the delete must not fail on a missing table).
    let first = render(&firewall(""));
    let out = ns.nft_file(&first, false);
    assert!(
        out.status.success(),
        "first load: {}",
        fw::text(&out.stderr)
    );
    assert!(ns.list(&["inet", "keel"]).contains("tcp dport 2222 accept"));

    // A second load replaces the rules instead of adding to them.
    let second = render(&firewall(
        "[firewall]\nallow = [{ protocol = \"udp\", port = 5353, comment = \"mdns\" }]\n",
    ));
    let out = ns.nft_file(&second, false);
    assert!(
        out.status.success(),
        "second load: {}",
        fw::text(&out.stderr)
    );
    let listed = ns.list(&["inet", "keel"]);
    assert!(
        listed.contains("udp dport 5353 accept comment \"allow 1: mdns\""),
        "{listed}"
    );
    assert!(
        !listed.contains("dport 2222"),
        "old rules left behind: {listed}"
    );
    assert_eq!(listed.matches("chain input {").count(), 1, "{listed}");

    // A ruleset that fails half-way leaves the loaded one exactly as it was.
    let broken = second.replace("udp dport 5353", "udp dport 99999");
    let out = ns.nft_file(&broken, false);
    assert!(!out.status.success(), "nft accepted port 99999");
    assert_eq!(ns.list(&["inet", "keel"]), listed);
    assert!(ns.list(&["inet", "other"]).contains("chain c"));
}

#[test]
fn an_nft_error_is_traced_to_the_config_rule() {
    let ruleset = render(&firewall(
        r#"
[firewall]
allow = [
  { protocol = "tcp", port = 80, comment = "web" },
  { protocol = "tcp", port = 443, comment = "tls" },
]
"#,
    ));
    // A stand-in for what nft says, so the mapping is checked without root too.
    let line = ruleset
        .lines()
        .position(|l| l.contains("dport 443"))
        .map(|i| i + 1)
        .unwrap_or_default();
    let fake = format!(
        "/run/keel/firewall.nft:{line}:3-14: Error: Could not process rule: No such file or directory\n\t\ttcp dport 443 accept\n\t\t^^^^\n"
    );
    assert_eq!(blame(&ruleset, &fake), ["[firewall] allow 2: tls"]);
    let loopback = ruleset
        .lines()
        .position(|l| l.contains("iif \"lo\""))
        .map(|i| i + 1)
        .unwrap_or_default();
    let fake = format!("-:{loopback}:3-10: Error: Interface does not exist\n");
    assert_eq!(blame(&ruleset, &fake), ["built-in rule \"loopback\""]);
    assert!(blame(&ruleset, "nft: no such file\n").is_empty());

    if !fw::runnable() {
        return;
    }
    // The real thing: break the second rule and read nft's own message.
    let ns = Ns::new("blame");
    let broken = ruleset.replace("tcp dport 443", "tcp dport 99999");
    let out = ns.nft_file(&broken, true);
    assert!(!out.status.success());
    let stderr = fw::text(&out.stderr);
    assert_eq!(
        blame(&broken, &stderr),
        ["[firewall] allow 2: tls"],
        "nft said: {stderr}"
    );
}

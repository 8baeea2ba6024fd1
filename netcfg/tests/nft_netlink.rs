//! The firewall loaded over nfnetlink (`netcfg::nft`) against the text loaded by `nft -f`:
//! for each config, one fresh namespace gets the netlink batch and another the rendered text,
//! and `nft list table inet keel` (nft on the host only, as the oracle) must list the same.
//! Also: a reload replaces the table in place, and a batch the kernel refuses names the
//! config rule and leaves the previous table. Needs root, `ip` and `nft`; under CI=true a
//! missing one fails the test.
#![allow(clippy::disallowed_methods)] // A test harness, not PID 1: it may wait on `nft`.

mod fw;

use fw::{Ns, firewall};
use netcfg::firewall::render;
use netcfg::nft::{self, LoadError};

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
        "odd prefixes",
        r#"
[firewall]
allow = [
  { protocol = "tcp", port = 22, source = "172.16.0.0/12" },
  { protocol = "udp", port = "5000-5001", source = "10.1.2.128/25", comment = "v4 /25" },
  { protocol = "tcp", port = 80, source = "2001:db8:80::/41" },
  { protocol = "icmp", source = "::/0", comment = "any v6" },
  { protocol = "icmp", source = "203.0.113.9" },
  { protocol = "tcp", port = "1-65535", source = "2001:db8::1", comment = "all tcp from one v6 host" },
]
"#,
    ),
    (
        "locked",
        "[firewall]\nforward = \"drop\"\nping = false\nallow = [{ protocol = \"icmp\" }]\n",
    ),
    ("console-only", "[firewall]\nallow = []\nping = false\n"),
];

fn ready() -> bool {
    fw::runnable()
}

/// The listing without the handles and counter values that differ between loads.
fn normalise(s: &str) -> String {
    s.lines()
        .map(|l| l.trim_end())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn netlink_table_lists_the_same_as_the_text() {
    if !ready() {
        return;
    }
    for (name, toml) in CASES {
        let fwc = firewall(toml);
        let by_text = Ns::new("text");
        let out = by_text.nft_file(&render(&fwc), false);
        assert!(
            out.status.success(),
            "{name}: nft -f: {}",
            fw::text(&out.stderr)
        );
        let by_netlink = Ns::new("nl");
        by_netlink
            .run(|| nft::load(&fwc))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = normalise(&by_text.list(&["inet", "keel"]));
        let got = normalise(&by_netlink.list(&["inet", "keel"]));
        assert_eq!(got, want, "{name}: netlink table differs from the text's");
    }
}

#[test]
fn reload_replaces_the_table_and_leaves_others() {
    if !ready() {
        return;
    }
    let ns = Ns::new("reload");
    let out = ns.nft_file("table inet other {\n\tchain c {\n\t}\n}\n", false);
    assert!(out.status.success(), "{}", fw::text(&out.stderr));
    let a = firewall("[firewall]\nallow = [{ protocol = \"tcp\", port = 81 }]\n");
    let b = firewall("[firewall]\nallow = [{ protocol = \"tcp\", port = 82 }]\n");
    ns.run(|| nft::load(&a)).unwrap_or_else(|e| panic!("{e}"));
    ns.run(|| nft::load(&b)).unwrap_or_else(|e| panic!("{e}"));
    let list = ns.list(&["inet", "keel"]);
    assert!(list.contains("tcp dport 82 accept"), "{list}");
    assert!(!list.contains("dport 81"), "{list}");
    assert!(ns.list(&["inet", "other"]).contains("chain c"));
    ns.run(|| nft::send(&nft::delete_batch()))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = ns.exec("nft", &["list", "table", "inet", "keel"]);
    assert!(
        !out.status.success(),
        "the table is still there after delete"
    );
    assert!(ns.list(&["inet", "other"]).contains("chain c"));
    // Deleting when there is no table is not an error either.
    ns.run(|| nft::send(&nft::delete_batch()))
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_refused_batch_names_the_config_rule_and_changes_nothing() {
    if !ready() {
        return;
    }
    let ns = Ns::new("refused");
    let good = firewall("");
    ns.run(|| nft::load(&good))
        .unwrap_or_else(|e| panic!("{e}"));
    let before = ns.list(&["inet", "keel"]);
    let fwc = firewall(
        "[firewall]\nallow = [{ protocol = \"tcp\", port = 1 }, { protocol = \"udp\", port = 2, comment = \"two\" }]\n",
    );
    let mut batch = nft::encode(&fwc);
    // Test-only damage: rename the payload expression of allow 2 to one the kernel lacks.
    let m = batch
        .messages
        .iter_mut()
        .find(|m| m.origin == "[firewall] allow 2: two")
        .unwrap_or_else(|| panic!("no message for allow 2"));
    let at = m
        .body
        .windows(8)
        .position(|w| w == b"payload\0")
        .unwrap_or_else(|| panic!("no payload expression"));
    m.body[at..at + 8].copy_from_slice(b"paylo4d\0");
    let err = ns.run(|| nft::send(&batch));
    match &err {
        Err(LoadError::Refused(v)) => {
            assert_eq!(v.len(), 1, "{v:?}");
            assert_eq!(v[0].0, "[firewall] allow 2: two");
            assert_eq!(v[0].1, nix::errno::Errno::ENOENT as i32);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let text = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains("[firewall] allow 2: two"), "{text}");
    assert_eq!(
        ns.list(&["inet", "keel"]),
        before,
        "a refused batch changed the table"
    );
}

//! The real rtnetlink code against a real kernel, inside network namespaces of our own with
//! a veth pair: addresses, routes, MTU, link up, a rename, the resolv.conf text, and a DHCP
//! lease then an EXPIRE applied through the hook's code path. Results are read back with
//! `ip -j` (iproute2), not with our own code.
//!
//! These tests need root (CI runs as root). Without root, or without the `ip` tool, each
//! test says why on stderr and passes without checking anything. Every namespace is
//! deleted when its test ends, also when the test fails. Only documentation addresses
//! (192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32) are used, and only inside our namespaces.
#![allow(clippy::disallowed_methods)] // A test harness, not PID 1: it may wait on `ip`.

mod fw;

use std::collections::BTreeMap;

use netcfg::dhcp::{self, Lease};
use netcfg::links::{self as netlink, LinkWait, Links, WaitState};
use netcfg::plan;
use netcfg::rtnl::Netlink;
use serde_json::Value;

/// A network namespace (`fw::Ns`, deleted on drop) with a veth pair kv0 (ours to
/// configure) and kv1 (its peer, up).
struct Ns {
    ns: fw::Ns,
}

impl Ns {
    /// Creates the namespace, or says why the test cannot run and returns `None`.
    fn new() -> Option<Ns> {
        let why = if !nix::unistd::geteuid().is_root() {
            Some("network namespace tests need root")
        } else if std::process::Command::new("ip").arg("-V").output().is_err() {
            Some("the ip tool (iproute2) is not installed")
        } else {
            None
        };
        if !fw::prerequisite(why) {
            return None;
        }
        let ns = Ns {
            ns: fw::Ns::new("nc"),
        };
        ns.ip(&["link", "add", "kv0", "type", "veth", "peer", "name", "kv1"]);
        ns.ip(&["link", "set", "kv1", "up"]);
        Some(ns)
    }

    /// Runs `ip -n <ns> ARGS` and returns its stdout; fails the test if it fails.
    fn ip(&self, args: &[&str]) -> String {
        self.ns.ip(args)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        let out = self.ip(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j {args:?}: {e}: {out}"))
    }

    /// Runs `f` on a thread that has entered the namespace: a netlink socket opened there
    /// talks to the namespace's kernel tables. Only that thread changes namespace.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.ns.run(f)
    }

    /// The addresses of a link, as `addr/prefix` strings, link-local IPv6 left out.
    fn addrs(&self, dev: &str) -> Vec<String> {
        let v = self.json(&["addr", "show", "dev", dev]);
        let mut out = Vec::new();
        for info in v[0]["addr_info"].as_array().into_iter().flatten() {
            let local = info["local"].as_str().unwrap_or_default();
            if local.starts_with("fe80:") {
                continue;
            }
            out.push(format!("{local}/{}", info["prefixlen"]));
        }
        out
    }

    /// Routes of a family as `dst via gw dev` strings.
    fn routes(&self, family: &str) -> Vec<String> {
        let v = self.json(&[family, "route", "show", "table", "main"]);
        let mut out = Vec::new();
        for r in v.as_array().into_iter().flatten() {
            let dst = r["dst"].as_str().unwrap_or_default();
            if dst.starts_with("fe80:") || r["type"].as_str().is_some_and(|t| t != "unicast") {
                continue;
            }
            let mut s = dst.to_string();
            if let Some(g) = r["gateway"].as_str() {
                s.push_str(&format!(" via {g}"));
            }
            if let Some(d) = r["dev"].as_str() {
                s.push_str(&format!(" dev {d}"));
            }
            out.push(s);
        }
        out
    }

    fn link(&self, dev: &str) -> Value {
        self.json(&["link", "show", "dev", dev])[0].clone()
    }
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// Plans a command line and applies it in the namespace through the real netlink socket.
fn apply_cmdline(ns: &Ns, cmdline: &str) -> netlink::Applied {
    let p = plan::plan(cmdline);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    ns.run(|| {
        let mut nl = Netlink::open().unwrap_or_else(|e| panic!("{e}"));
        let mut once = || {
            let links = nl.links().unwrap_or_else(|e| panic!("{e}"));
            let w = LinkWait::new(0, 1000);
            let WaitState::Ready(found) = w.check(&links, &p, 0) else {
                panic!("links not found for {cmdline}: {links:?}")
            };
            let applied = netlink::plan_ops(&p, &links, &found);
            let errors = netlink::execute(&mut nl, &applied.ops);
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            assert!(errors.is_empty(), "{cmdline}: {}", errors.join("; "));
            applied
        };
        let applied = once();
        // Planning and applying the same command line again is not an error.
        let again = once();
        assert!(
            !again
                .ops
                .iter()
                .any(|o| matches!(o, netlink::LinkOp::Rename { .. }))
        );
        applied
    })
}

#[test]
fn static_plan_sets_addresses_routes_mtu_and_link_up() {
    let Some(ns) = Ns::new() else { return };
    let applied = apply_cmdline(
        &ns,
        "ip=192.0.2.2::192.0.2.1:255.255.255.0:nstest:kv0:none:1400 \
         ip=[2001:db8::2]::[2001:db8::1]:64::kv0:none \
         rd.route=198.51.100.0/24:192.0.2.254:kv0 nameserver=192.0.2.53",
    );
    assert_eq!(ns.addrs("kv0"), ["192.0.2.2/24", "2001:db8::2/64"]);
    let link = ns.link("kv0");
    assert_eq!(link["mtu"], 1400);
    assert!(
        link["flags"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f == "UP"),
        "{link}"
    );
    assert_eq!(ns.link("lo")["operstate"], "UNKNOWN");
    assert!(
        ns.link("lo")["flags"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f == "UP")
    );
    assert_eq!(
        ns.routes("-4"),
        [
            "default via 192.0.2.1 dev kv0",
            "192.0.2.0/24 dev kv0",
            "198.51.100.0/24 via 192.0.2.254 dev kv0"
        ]
    );
    let r6 = ns.routes("-6");
    assert!(
        r6.contains(&"default via 2001:db8::1 dev kv0".to_string()),
        "{r6:?}"
    );
    assert!(r6.contains(&"2001:db8::/64 dev kv0".to_string()), "{r6:?}");
    assert_eq!(
        applied.resolv_conf.as_deref(),
        Some("# written by keel from the kernel command line\nnameserver 192.0.2.53\n")
    );
}

#[test]
fn gateway_outside_the_subnet_is_added_onlink() {
    let Some(ns) = Ns::new() else { return };
    apply_cmdline(&ns, "ip=192.0.2.7::198.51.100.1:32::kv0:none");
    assert_eq!(ns.addrs("kv0"), ["192.0.2.7/32"]);
    let v = ns.json(&["-4", "route", "show", "default"]);
    assert_eq!(v[0]["gateway"], "198.51.100.1");
    assert!(
        v[0]["flags"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f == "onlink"),
        "{v}"
    );
}

#[test]
fn mac_selector_renames_the_link_and_default_plan_finds_first_ethernet() {
    let Some(ns) = Ns::new() else { return };
    let mac = ns.link("kv0")["address"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ns.ip(&["link", "set", "kv1", "down"]);
    ns.ip(&["link", "set", "kv1", "name", "zz1"]);
    let applied = apply_cmdline(&ns, &format!("ifname=lan0:{mac} ip=lan0:dhcp:1280"));
    assert_eq!(applied.dhcp, [("lan0".to_string(), netcfg::Method::Dhcp)]);
    assert_eq!(ns.link("lan0")["mtu"], 1280);
    // With no ip=, the first ethernet link in ifindex order gets DHCP.
    let p = plan::plan("");
    let first = ns.run(|| {
        let mut nl = Netlink::open().unwrap_or_else(|e| panic!("{e}"));
        let links = nl.links().unwrap_or_else(|e| panic!("{e}"));
        netlink::resolve(&links, &p)[0].clone().map(|l| l.name)
    });
    let mut ether: Vec<(u64, String)> = ns
        .json(&["link", "show"])
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["link_type"] == "ether")
        .map(|l| {
            (
                l["ifindex"].as_u64().unwrap_or(0),
                l["ifname"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    ether.sort();
    assert_eq!(first, ether.first().map(|(_, n)| n.clone()));
}

#[test]
fn dhclient_lease_then_expire_through_the_hook() {
    let Some(ns) = Ns::new() else { return };
    let bound = env(&[
        ("reason", "BOUND"),
        ("interface", "kv0"),
        ("new_ip_address", "192.0.2.15"),
        ("new_subnet_mask", "255.255.255.0"),
        ("new_routers", "192.0.2.2"),
        ("new_domain_name_servers", "192.0.2.3"),
        ("new_interface_mtu", "1450"),
    ]);
    let routes = plan::plan("rd.route=198.51.100.0/24:192.0.2.9").routes;
    let h = dhcp::hook(&bound, None, &routes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.lease, Lease::Bound);
    let run = |ops: Vec<netlink::LinkOp>| {
        ns.run(move || {
            let mut nl = Netlink::open().unwrap_or_else(|e| panic!("{e}"));
            let errors = netlink::execute(&mut nl, &ops);
            assert!(errors.is_empty(), "{errors:?}");
        })
    };
    run(h.ops.clone());
    assert_eq!(ns.addrs("kv0"), ["192.0.2.15/24"]);
    assert_eq!(ns.link("kv0")["mtu"], 1450);
    assert_eq!(
        ns.routes("-4"),
        [
            "default via 192.0.2.2 dev kv0",
            "192.0.2.0/24 dev kv0",
            "198.51.100.0/24 via 192.0.2.9 dev kv0"
        ]
    );
    // RENEW with the same lease changes nothing and is not an error.
    let mut renew = bound.clone();
    renew.insert("reason".into(), "RENEW".into());
    renew.insert("old_ip_address".into(), "192.0.2.15".into());
    renew.insert("old_subnet_mask".into(), "255.255.255.0".into());
    renew.insert("old_routers".into(), "192.0.2.2".into());
    run(dhcp::hook(&renew, None, &routes)
        .unwrap_or_else(|e| panic!("{e}"))
        .ops);
    assert_eq!(ns.addrs("kv0"), ["192.0.2.15/24"]);
    assert_eq!(ns.routes("-4").len(), 3);

    let expire = env(&[
        ("reason", "EXPIRE"),
        ("interface", "kv0"),
        ("old_ip_address", "192.0.2.15"),
        ("old_subnet_mask", "255.255.255.0"),
        ("old_routers", "192.0.2.2"),
    ]);
    let h = dhcp::hook(&expire, None, &routes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.lease, Lease::Lost);
    run(h.ops.clone());
    assert!(ns.addrs("kv0").is_empty(), "{:?}", ns.addrs("kv0"));
    assert!(ns.routes("-4").is_empty(), "{:?}", ns.routes("-4"));
    // The same EXPIRE again finds nothing to delete, which is not an error.
    run(h.ops);
}

#[test]
fn udhcpc_bound_then_deconfig_through_the_hook() {
    let Some(ns) = Ns::new() else { return };
    let bound = env(&[
        ("interface", "kv0"),
        ("ip", "192.0.2.20"),
        ("mask", "25"),
        ("router", "192.0.2.1"),
    ]);
    let h = dhcp::hook(&bound, Some("bound"), &[]).unwrap_or_else(|e| panic!("{e}"));
    let run = |ops: Vec<netlink::LinkOp>| {
        ns.run(move || {
            let mut nl = Netlink::open().unwrap_or_else(|e| panic!("{e}"));
            let errors = netlink::execute(&mut nl, &ops);
            assert!(errors.is_empty(), "{errors:?}");
        })
    };
    run(h.ops);
    assert_eq!(ns.addrs("kv0"), ["192.0.2.20/25"]);
    assert_eq!(
        ns.routes("-4"),
        ["default via 192.0.2.1 dev kv0", "192.0.2.0/25 dev kv0"]
    );
    let h = dhcp::hook(&env(&[("interface", "kv0")]), Some("deconfig"), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    run(h.ops);
    assert!(ns.addrs("kv0").is_empty());
    assert!(ns.routes("-4").is_empty(), "{:?}", ns.routes("-4"));
}

#[test]
fn kernel_errors_are_reported_with_the_op() {
    let Some(ns) = Ns::new() else { return };
    let msgs = ns.run(|| {
        let mut nl = Netlink::open().unwrap_or_else(|e| panic!("{e}"));
        let ops = [
            netlink::LinkOp::Up("kv0".into()),
            netlink::LinkOp::AddRoute(netcfg::Route {
                to: netcfg::Cidr::parse("198.51.100.0/24").unwrap_or_else(|| panic!("cidr")),
                via: None,
                dev: Some("nosuch0".into()),
            }),
            netlink::LinkOp::Mtu("kv0".into(), 70000),
        ];
        netlink::execute(&mut nl, &ops)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    });
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_eq!(
        msgs[0],
        "add route 198.51.100.0/24 dev nosuch0: no network link named nosuch0"
    );
    assert!(
        msgs[1].starts_with("set mtu 70000 on kv0: the kernel refused: EINVAL"),
        "{msgs:?}"
    );
}

#[test]
fn waiting_for_a_link_that_appears_later() {
    let Some(ns) = Ns::new() else { return };
    let p = plan::plan("ip=late0:dhcp");
    let w = LinkWait::new(0, 1_000);
    let poll = |now| {
        ns.run(|| {
            let mut nl = Netlink::open().unwrap_or_else(|e| panic!("{e}"));
            w.poll(&mut nl, &p, now).unwrap_or_else(|e| panic!("{e}"))
        })
    };
    assert!(
        matches!(poll(0), WaitState::Waiting { retry_at: 100, .. }),
        "{:?}",
        poll(0)
    );
    ns.ip(&[
        "link", "add", "late0", "type", "veth", "peer", "name", "late1",
    ]);
    match poll(100) {
        WaitState::Ready(found) => {
            assert_eq!(found[0].as_ref().map(|l| l.name.as_str()), Some("late0"));
        }
        other => panic!("{other:?}"),
    }
    let gone = plan::plan("ip=never0:dhcp");
    let timed_out = ns.run(|| {
        let mut nl = Netlink::open().unwrap_or_else(|e| panic!("{e}"));
        w.poll(&mut nl, &gone, 1_000)
            .unwrap_or_else(|e| panic!("{e}"))
    });
    assert!(
        matches!(timed_out, WaitState::TimedOut { .. }),
        "{timed_out:?}"
    );
}

//! Applying plans and DHCP hook calls through the recording fake of `Links`: which ops a
//! plan or a lease gives, what the fake kernel ends up with, and how waiting for links ends.

use std::collections::BTreeMap;

use netcfg::dhcp::{self, Lease};
use netcfg::links::fake::FakeLinks;
use netcfg::links::{self as netlink, LinkWait, WaitState, execute, plan_ops};
use netcfg::plan::{self, Selector};

/// A hook environment as name/value pairs.
type Vars = &'static [(&'static str, &'static str)];

fn ops_text(ops: &[netlink::LinkOp]) -> Vec<String> {
    ops.iter().map(ToString::to_string).collect()
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// Plans a command line against the fake's links and runs the ops; returns the op texts.
fn apply(fake: &mut FakeLinks, cmdline: &str) -> (Vec<String>, netlink::Applied) {
    let p = plan::plan(cmdline);
    let links = fake.links.clone();
    let w = LinkWait::new(0, 1000);
    let WaitState::Ready(found) = w.check(&links, &p, 0) else {
        panic!("links for {cmdline:?} not found")
    };
    let applied = plan_ops(&p, &links, &found);
    let errors = execute(fake, &applied.ops);
    assert!(errors.is_empty(), "{cmdline}: {errors:?}");
    (ops_text(&applied.ops), applied)
}

#[test]
fn static_plan_gives_ops_in_order_and_the_fake_holds_the_result() {
    let mut fake = FakeLinks::with_ether(&["eth0"]);
    let (ops, applied) = apply(
        &mut fake,
        "ip=10.0.2.15::10.0.2.2:255.255.255.0:keel:eth0:off:10.0.2.3 rd.route=10.9.0.0/16:10.0.2.1:eth0",
    );
    assert_eq!(
        ops,
        [
            "set lo up",
            "set eth0 up",
            "add address 10.0.2.15/24 to eth0",
            "add route 0.0.0.0/0 via 10.0.2.2 dev eth0",
            "add route 10.9.0.0/16 via 10.0.2.1 dev eth0",
        ]
    );
    assert!(applied.dhcp.is_empty());
    assert_eq!(
        applied.resolv_conf.as_deref(),
        Some("# written by keel from the kernel command line\nnameserver 10.0.2.3\n")
    );
    assert_eq!(fake.addrs.len(), 1);
    assert_eq!(fake.routes.len(), 2);
    assert!(fake.links.iter().all(|l| l.up));
}

#[test]
fn default_plan_takes_the_first_ethernet_link_and_asks_for_dhcp() {
    let mut fake = FakeLinks::with_ether(&["eth0", "eth1"]);
    let (ops, applied) = apply(&mut fake, "console=ttyS0");
    assert_eq!(ops, ["set lo up", "set eth0 up"]);
    assert_eq!(applied.dhcp, [("eth0".to_string(), netcfg::Method::Dhcp)]);
    assert_eq!(applied.resolv_conf, None);
}

#[test]
fn first_ethernet_skips_links_named_by_other_interfaces() {
    let mut fake = FakeLinks::with_ether(&["eth0", "eth1"]);
    let (ops, applied) = apply(&mut fake, "ip=eth0:off ip=10.0.0.2:::24");
    assert_eq!(
        ops,
        [
            "set lo up",
            "set eth1 up",
            "add address 10.0.0.2/24 to eth1"
        ]
    );
    assert!(applied.dhcp.is_empty());
}

#[test]
fn mac_selector_renames_sets_mtu_and_gateway_outside_the_subnet_is_onlink() {
    let mut fake = FakeLinks::with_ether(&["eth0", "eth1"]);
    let (ops, _) = apply(
        &mut fake,
        "ifname=wan:52:54:00:00:00:03 ip=203.0.113.7::198.51.100.1:32::wan:none:1400",
    );
    assert_eq!(
        ops,
        [
            "set lo up",
            "rename eth1 to wan",
            "set mtu 1400 on wan",
            "set wan up",
            "add address 203.0.113.7/32 to wan",
            "add route 0.0.0.0/0 via 198.51.100.1 dev wan",
        ]
    );
    assert!(
        fake.calls.contains(&"set_name 3 wan".to_string()),
        "{:?}",
        fake.calls
    );
    assert!(
        fake.calls
            .contains(&"add_route 0.0.0.0/0 via 198.51.100.1 oif 3 onlink".to_string()),
        "{:?}",
        fake.calls
    );
}

#[test]
fn ipv6_static_and_dhcp6_and_auto6() {
    let mut fake = FakeLinks::with_ether(&["eth0", "eth1", "eth2"]);
    let (ops, applied) = apply(
        &mut fake,
        "ip=[2001:db8::2]::[2001:db8::1]:64::eth0:none ip=eth1:dhcp6 ip=eth2:auto6",
    );
    assert_eq!(
        ops,
        [
            "set lo up",
            "set eth0 up",
            "add address 2001:db8::2/64 to eth0",
            "add route ::/0 via 2001:db8::1 dev eth0",
            "set eth1 up",
            "set eth2 up",
        ]
    );
    assert_eq!(applied.dhcp, [("eth1".to_string(), netcfg::Method::Dhcp6)]);
}

#[test]
fn an_op_that_fails_does_not_stop_the_rest_and_names_itself() {
    let mut fake = FakeLinks::with_ether(&["eth0"]);
    let p = plan::plan("ip=10.0.0.2:::24::eth0:off rd.route=10.9.0.0/16:10.0.0.1:eth9");
    let links = fake.links.clone();
    let found = netlink::resolve(&links, &p);
    let applied = plan_ops(&p, &links, &found);
    let errors = execute(&mut fake, &applied.ops);
    let msgs: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        msgs,
        ["add route 10.9.0.0/16 via 10.0.0.1 dev eth9: no network link named eth9"]
    );
    assert_eq!(fake.addrs.len(), 1);
}

#[test]
fn waiting_for_links_is_driven_by_the_caller_and_bounded() {
    let p = plan::plan("ip=eth1:dhcp ifname=spare:52:54:00:aa:bb:cc");
    let w = LinkWait::new(1_000, 500);
    let mut fake = FakeLinks::with_ether(&["eth0"]);
    match w.poll(&mut fake, &p, 1_000) {
        Ok(WaitState::Waiting { missing, retry_at }) => {
            // The off interface (ifname= alone) is not waited for.
            assert_eq!(missing, [Selector::Name("eth1".into())]);
            assert_eq!(retry_at, 1_100);
        }
        other => panic!("{other:?}"),
    }
    match w.check(&fake.links, &p, 1_450) {
        WaitState::Waiting { retry_at, .. } => assert_eq!(retry_at, 1_500),
        other => panic!("{other:?}"),
    }
    match w.check(&fake.links, &p, 1_500) {
        WaitState::TimedOut { found, missing } => {
            assert_eq!(found, [None, None]);
            assert_eq!(missing, [Selector::Name("eth1".into())]);
        }
        other => panic!("{other:?}"),
    }
    let fake = FakeLinks::with_ether(&["eth0", "eth1"]);
    match w.check(&fake.links, &p, 1_200) {
        WaitState::Ready(found) => {
            assert_eq!(found[0].as_ref().map(|l| l.index), Some(3));
        }
        other => panic!("{other:?}"),
    }
    // No ethernet link at all: the default plan waits, then times out.
    let mut only_lo = FakeLinks::with_ether(&[]);
    let d = plan::plan("");
    assert!(matches!(
        w.poll(&mut only_lo, &d, 1_000),
        Ok(WaitState::Waiting { .. })
    ));
    assert!(matches!(
        w.poll(&mut only_lo, &d, 9_999),
        Ok(WaitState::TimedOut { .. })
    ));
}

#[test]
fn dhclient_bound_renew_with_new_address_then_expire() {
    let mut fake = FakeLinks::with_ether(&["eth0"]);
    let bound = env(&[
        ("reason", "BOUND"),
        ("interface", "eth0"),
        ("new_ip_address", "10.0.2.15"),
        ("new_subnet_mask", "255.255.255.0"),
        ("new_routers", "10.0.2.2 10.0.2.4"),
        ("new_domain_name_servers", "10.0.2.3"),
        ("new_domain_name", "example.test"),
        ("new_interface_mtu", "1400"),
        ("new_host_name", "leased"),
    ]);
    let routes =
        plan::plan("rd.route=10.9.0.0/16:10.0.2.1 rd.route=10.8.0.0/16:10.0.2.1:eth7").routes;
    let h = dhcp::hook(&bound, None, &routes).map_err(|e| e.to_string());
    let h = h.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ops_text(&h.ops),
        [
            "set mtu 1400 on eth0",
            "set eth0 up",
            "add address 10.0.2.15/24 to eth0",
            "add route 0.0.0.0/0 via 10.0.2.2 dev eth0",
            "add route 10.9.0.0/16 via 10.0.2.1 dev eth0",
        ]
    );
    assert_eq!(h.lease, Lease::Bound);
    assert_eq!(h.hostname.as_deref(), Some("leased"));
    assert_eq!(
        h.resolv_conf.as_deref(),
        Some(
            "# written by keel from a DHCP lease on eth0\nsearch example.test\nnameserver 10.0.2.3\n"
        )
    );
    assert!(execute(&mut fake, &h.ops).is_empty());

    let renew = env(&[
        ("reason", "RENEW"),
        ("interface", "eth0"),
        ("old_ip_address", "10.0.2.15"),
        ("old_subnet_mask", "255.255.255.0"),
        ("old_routers", "10.0.2.2"),
        ("new_ip_address", "10.0.2.16"),
        ("new_subnet_mask", "255.255.255.0"),
        ("new_routers", "10.0.2.2"),
    ]);
    let h = dhcp::hook(&renew, None, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ops_text(&h.ops),
        [
            "delete route 0.0.0.0/0 via 10.0.2.2 dev eth0",
            "delete address 10.0.2.15/24 from eth0",
            "set eth0 up",
            "add address 10.0.2.16/24 to eth0",
            "add route 0.0.0.0/0 via 10.0.2.2 dev eth0",
        ]
    );
    assert!(execute(&mut fake, &h.ops).is_empty());
    assert_eq!(
        fake.addrs
            .iter()
            .map(|(_, a)| a.to_string())
            .collect::<Vec<_>>(),
        ["10.0.2.16/24"]
    );

    let same = env(&[
        ("reason", "RENEW"),
        ("interface", "eth0"),
        ("old_ip_address", "10.0.2.16"),
        ("old_subnet_mask", "255.255.255.0"),
        ("old_routers", "10.0.2.2"),
        ("new_ip_address", "10.0.2.16"),
        ("new_subnet_mask", "255.255.255.0"),
        ("new_routers", "10.0.2.2"),
    ]);
    let h = dhcp::hook(&same, None, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !ops_text(&h.ops).iter().any(|o| o.starts_with("delete")),
        "{:?}",
        h.ops
    );

    let expire = env(&[
        ("reason", "EXPIRE"),
        ("interface", "eth0"),
        ("old_ip_address", "10.0.2.16"),
        ("old_subnet_mask", "255.255.255.0"),
        ("old_routers", "10.0.2.2"),
    ]);
    let h = dhcp::hook(&expire, None, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ops_text(&h.ops),
        [
            "delete route 0.0.0.0/0 via 10.0.2.2 dev eth0",
            "delete address 10.0.2.16/24 from eth0"
        ]
    );
    assert_eq!(h.lease, Lease::Lost);
    assert!(execute(&mut fake, &h.ops).is_empty());
    assert!(fake.addrs.is_empty() && fake.routes.is_empty());
    // Applying the same EXPIRE again finds nothing to delete, which is fine.
    assert!(execute(&mut fake, &h.ops).is_empty());
}

#[test]
fn dhclient_other_reasons() {
    let rows: &[(Vars, &[&str], Lease)] = &[
        (
            &[("reason", "PREINIT"), ("interface", "eth0")],
            &["set eth0 up"],
            Lease::Unchanged,
        ),
        (
            &[("reason", "FAIL"), ("interface", "eth0")],
            &[],
            Lease::Lost,
        ),
        (
            &[
                ("reason", "RELEASE"),
                ("interface", "eth0"),
                ("old_ip_address", "10.1.2.3"),
            ],
            &["delete address 10.1.2.3/8 from eth0"],
            Lease::Lost,
        ),
        (
            &[
                ("reason", "STOP"),
                ("interface", "eth0"),
                ("old_ip_address", "192.168.1.3"),
                ("old_subnet_mask", "255.255.255.128"),
            ],
            &["delete address 192.168.1.3/25 from eth0"],
            Lease::Lost,
        ),
        (
            &[("reason", "ARPCHECK"), ("interface", "eth0")],
            &[],
            Lease::Unchanged,
        ),
        (
            &[("reason", "MEDIUM"), ("interface", "eth0")],
            &[],
            Lease::Unchanged,
        ),
        (
            &[
                ("reason", "BOUND"),
                ("interface", "eth0"),
                ("new_ip_address", "10.0.0.5"),
                ("new_subnet_mask", "255.255.255.0"),
                ("new_interface_mtu", "400"),
            ],
            &["set eth0 up", "add address 10.0.0.5/24 to eth0"],
            Lease::Bound,
        ),
        (
            &[
                ("reason", "BOUND6"),
                ("interface", "eth0"),
                ("new_ip6_address", "2001:db8::5"),
                ("new_ip6_prefixlen", "128"),
            ],
            &["set eth0 up", "add address 2001:db8::5/128 to eth0"],
            Lease::Bound,
        ),
        (
            &[
                ("reason", "RENEW6"),
                ("interface", "eth0"),
                ("old_ip6_address", "2001:db8::4"),
                ("new_ip6_address", "2001:db8::5"),
                ("new_ip6_prefixlen", "64"),
            ],
            &[
                "delete address 2001:db8::4/128 from eth0",
                "set eth0 up",
                "add address 2001:db8::5/64 to eth0",
            ],
            Lease::Bound,
        ),
        (
            &[
                ("reason", "EXPIRE6"),
                ("interface", "eth0"),
                ("old_ip6_address", "2001:db8::5"),
                ("old_ip6_prefixlen", "64"),
            ],
            &["delete address 2001:db8::5/64 from eth0"],
            Lease::Lost,
        ),
    ];
    for (vars, want, lease) in rows {
        let h = dhcp::hook(&env(vars), None, &[]).unwrap_or_else(|e| panic!("{vars:?}: {e}"));
        assert_eq!(ops_text(&h.ops), *want, "{vars:?}");
        assert_eq!(h.lease, *lease, "{vars:?}");
    }
}

#[test]
fn udhcpc_events() {
    let bound = env(&[
        ("interface", "eth0"),
        ("ip", "10.0.2.15"),
        ("mask", "24"),
        ("subnet", "255.255.0.0"),
        ("router", "10.0.2.2"),
        ("dns", "10.0.2.3 10.0.2.4"),
        ("domain", "lan"),
        ("mtu", "1500"),
        ("hostname", "bb"),
    ]);
    let h = dhcp::hook(&bound, Some("bound"), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ops_text(&h.ops),
        [
            "flush IPv4 addresses of eth0",
            "set mtu 1500 on eth0",
            "set eth0 up",
            "add address 10.0.2.15/24 to eth0",
            "add route 0.0.0.0/0 via 10.0.2.2 dev eth0",
        ]
    );
    assert_eq!(h.lease, Lease::Bound);
    assert_eq!(h.hostname.as_deref(), Some("bb"));
    assert_eq!(
        h.resolv_conf.as_deref(),
        Some(
            "# written by keel from a DHCP lease on eth0\nsearch lan\nnameserver 10.0.2.3\nnameserver 10.0.2.4\n"
        )
    );
    let mut fake = FakeLinks::with_ether(&["eth0"]);
    assert!(execute(&mut fake, &h.ops).is_empty());

    let renew = env(&[
        ("interface", "eth0"),
        ("ip", "10.0.2.15"),
        ("subnet", "255.255.255.0"),
    ]);
    let h = dhcp::hook(&renew, Some("renew"), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ops_text(&h.ops),
        ["set eth0 up", "add address 10.0.2.15/24 to eth0"]
    );

    let h = dhcp::hook(&env(&[("interface", "eth0")]), Some("deconfig"), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ops_text(&h.ops),
        ["set eth0 up", "flush IPv4 addresses of eth0"]
    );
    assert_eq!(h.lease, Lease::Lost);
    assert!(execute(&mut fake, &h.ops).is_empty());
    assert!(fake.addrs.is_empty() && fake.routes.is_empty(), "{fake:?}");

    for (ev, lease) in [("leasefail", Lease::Lost), ("nak", Lease::Unchanged)] {
        let h = dhcp::hook(&env(&[("interface", "eth0")]), Some(ev), &[])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(h.ops.is_empty());
        assert_eq!(h.lease, lease);
    }
}

#[test]
fn hook_errors_name_the_variable_and_value() {
    let rows: &[(Vars, Option<&str>, &str)] = &[
        (&[("reason", "BOUND")], None, "interface=\"\": missing"),
        (
            &[("reason", "BOUND"), ("interface", "eth0")],
            None,
            "new_ip_address=\"\": missing in a BOUND call",
        ),
        (
            &[
                ("reason", "BOUND"),
                ("interface", "eth0"),
                ("new_ip_address", "10.0.0.300"),
            ],
            None,
            "new_ip_address=\"10.0.0.300\": not an IPv4 address",
        ),
        (
            &[
                ("reason", "BOUND"),
                ("interface", "eth0"),
                ("new_ip_address", "10.0.0.3"),
                ("new_subnet_mask", "255.0.255.0"),
            ],
            None,
            "new_subnet_mask=\"255.0.255.0\": not a netmask",
        ),
        (
            &[
                ("reason", "BOUND"),
                ("interface", "eth0"),
                ("new_ip_address", "10.0.0.3"),
                ("new_routers", "x"),
            ],
            None,
            "new_routers=\"x\": not an IP address",
        ),
        (
            &[
                ("reason", "BOUND"),
                ("interface", "eth0"),
                ("new_ip_address", "10.0.0.3"),
                ("new_interface_mtu", "99999"),
            ],
            None,
            "new_interface_mtu=\"99999\": not an MTU",
        ),
        (
            &[("reason", "DANCE"), ("interface", "eth0")],
            None,
            "reason=\"DANCE\": not a dhclient reason",
        ),
        (&[("interface", "eth0")], None, "reason=\"\": missing"),
        (
            &[("interface", "eth0")],
            Some("party"),
            "$1=\"party\": not a udhcpc event",
        ),
        (
            &[("interface", "a/b")],
            Some("bound"),
            "interface=\"a/b\": not a valid interface name",
        ),
        (
            &[("interface", "eth0")],
            Some("bound"),
            "ip=\"\": missing in a bound call",
        ),
        (
            &[
                ("reason", "BOUND6"),
                ("interface", "eth0"),
                ("new_ip6_address", "2001:db8::1"),
                ("new_ip6_prefixlen", "200"),
            ],
            None,
            "new_ip6_prefixlen=\"200\": not a prefix length",
        ),
    ];
    for (vars, arg, want) in rows {
        match dhcp::hook(&env(vars), *arg, &[]) {
            Ok(h) => panic!("{vars:?}: expected an error, got {h:?}"),
            Err(e) => assert!(e.to_string().starts_with(want), "{vars:?}: {e}"),
        }
    }
}

#[test]
fn resolv_conf_text() {
    use std::net::IpAddr;
    let ns: Vec<IpAddr> = ["1.1.1.1", "2606:4700::1111", "9.9.9.9", "8.8.8.8"]
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    let search = [
        "a.test".to_string(),
        "bad;x".to_string(),
        "b.test".to_string(),
    ];
    assert_eq!(
        netlink::resolv_conf(&ns, &search, "test"),
        "# written by keel from test\nsearch a.test b.test\nnameserver 1.1.1.1\nnameserver 2606:4700::1111\nnameserver 9.9.9.9\n# (only three are used) nameserver 8.8.8.8\n"
    );
    assert_eq!(
        netlink::resolv_conf(&[], &[], "x"),
        "# written by keel from x\n"
    );
    // A server named twice takes one place, where it first appears (a fuzz finding: the
    // repeat took one of the three places the resolver reads).
    let twice: Vec<IpAddr> = [
        "10.0.2.3", "1.1.1.2", "10.0.2.3", "1.0.2.3", "1.1.1.2", "9.9.9.9",
    ]
    .iter()
    .filter_map(|a| a.parse().ok())
    .collect();
    assert_eq!(
        netlink::resolv_conf(&twice, &[], "a DHCP lease on eth0"),
        "# written by keel from a DHCP lease on eth0\nnameserver 10.0.2.3\nnameserver 1.1.1.2\nnameserver 1.0.2.3\n# (only three are used) nameserver 9.9.9.9\n"
    );
}

#[test]
fn routes_through_a_dhcp_link_wait_for_the_lease() {
    let mut fake = FakeLinks::with_ether(&["eth0", "eth1"]);
    let (ops, applied) = apply(
        &mut fake,
        "ip=eth0:dhcp ip=10.1.0.2:::16::eth1:none rd.route=10.9.0.0/16:10.0.2.1:eth0 \
         rd.route=10.8.0.0/16:10.1.0.1 rd.route=10.7.0.0/16:10.0.2.1",
    );
    assert_eq!(
        ops,
        [
            "set lo up",
            "set eth0 up",
            "set eth1 up",
            "add address 10.1.0.2/16 to eth1",
            "add route 10.8.0.0/16 via 10.1.0.1",
        ]
    );
    assert_eq!(applied.dhcp, [("eth0".to_string(), netcfg::Method::Dhcp)]);
    // The hook adds the ones left, for its own link.
    let p = plan::plan(
        "rd.route=10.9.0.0/16:10.0.2.1:eth0 rd.route=10.7.0.0/16:10.0.2.1 rd.route=10.6.0.0/16:10.0.2.1:eth1",
    );
    let bound = env(&[
        ("reason", "BOUND"),
        ("interface", "eth0"),
        ("new_ip_address", "10.0.2.15"),
        ("new_subnet_mask", "255.255.255.0"),
    ]);
    let h = dhcp::hook(&bound, None, &p.routes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ops_text(&h.ops),
        [
            "set eth0 up",
            "add address 10.0.2.15/24 to eth0",
            "add route 10.9.0.0/16 via 10.0.2.1 dev eth0",
            "add route 10.7.0.0/16 via 10.0.2.1 dev eth0",
        ]
    );
}

#[test]
fn classless_static_routes_replace_the_router_option() {
    let bound = env(&[
        ("reason", "BOUND"),
        ("interface", "eth0"),
        ("new_ip_address", "10.0.2.15"),
        ("new_subnet_mask", "255.255.255.0"),
        ("new_routers", "10.0.2.2"),
        // 0.0.0.0/0 via 10.0.2.1, 10.20.0.0/16 via 10.0.2.9, 192.0.2.128/25 on the link.
        (
            "new_rfc3442_classless_static_routes",
            "0 10 0 2 1 16 10 20 10 0 2 9 25 192 0 2 128 0 0 0 0",
        ),
    ]);
    let h = dhcp::hook(&bound, None, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ops_text(&h.ops),
        [
            "set eth0 up",
            "add address 10.0.2.15/24 to eth0",
            "add route 0.0.0.0/0 via 10.0.2.1 dev eth0",
            "add route 10.20.0.0/16 via 10.0.2.9 dev eth0",
            "add route 192.0.2.128/25 dev eth0",
        ]
    );
    let mut fake = FakeLinks::with_ether(&["eth0"]);
    assert!(execute(&mut fake, &h.ops).is_empty());
    assert_eq!(fake.routes.len(), 3);

    let renew = env(&[
        ("reason", "RENEW"),
        ("interface", "eth0"),
        ("old_ip_address", "10.0.2.15"),
        ("old_subnet_mask", "255.255.255.0"),
        (
            "old_rfc3442_classless_static_routes",
            "0 10 0 2 1 16 10 20 10 0 2 9",
        ),
        ("new_ip_address", "10.0.2.15"),
        ("new_subnet_mask", "255.255.255.0"),
        ("new_rfc3442_classless_static_routes", "0 10 0 2 1"),
    ]);
    let h = dhcp::hook(&renew, None, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ops_text(&h.ops)[0],
        "delete route 10.20.0.0/16 via 10.0.2.9 dev eth0"
    );

    let udhcpc = env(&[
        ("interface", "eth0"),
        ("ip", "10.0.2.15"),
        ("mask", "24"),
        ("router", "10.0.2.2"),
        ("staticroutes", "10.30.0.0/16 10.0.2.7 0.0.0.0/0 10.0.2.1"),
    ]);
    let h = dhcp::hook(&udhcpc, Some("renew"), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ops_text(&h.ops)[2..],
        [
            "add route 10.30.0.0/16 via 10.0.2.7 dev eth0",
            "add route 0.0.0.0/0 via 10.0.2.1 dev eth0"
        ]
    );
    for (var, value, want) in [
        (
            "new_rfc3442_classless_static_routes",
            "33 1 2 3 4 5 6 7 8",
            "prefix length 33 is over 32",
        ),
        (
            "new_rfc3442_classless_static_routes",
            "24 10 0",
            "truncated",
        ),
        (
            "new_rfc3442_classless_static_routes",
            "24 x",
            "\"x\" is not a byte",
        ),
    ] {
        let mut v = env(&[
            ("reason", "BOUND"),
            ("interface", "eth0"),
            ("new_ip_address", "10.0.2.15"),
        ]);
        v.insert(var.into(), value.into());
        let e = dhcp::hook(&v, None, &[])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains(want), "{value}: {e}");
    }
    let bad = env(&[
        ("interface", "eth0"),
        ("ip", "10.0.2.15"),
        ("staticroutes", "10.30.0.0/16"),
    ]);
    let e = dhcp::hook(&bad, Some("bound"), &[])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("expected pairs"), "{e}");
}

/// Seen while writing the fuzz target `dhcp_hook`: the hook took any `interface` up to 15
/// bytes without a `/`, so `.`, `..`, names with spaces, `:`, newlines or other control
/// characters went into netlink requests, the console log and the supervisor's status.
#[test]
fn the_hook_refuses_interface_names_the_kernel_would() {
    for bad in [
        ".",
        "..",
        "eth0\nREADY=1",
        "a b",
        "eth0:1",
        "e\tx",
        "e\u{1b}[2J",
    ] {
        match dhcp::hook(&env(&[("interface", bad)]), Some("deconfig"), &[]) {
            Ok(h) => panic!("interface={bad:?} accepted: {h:?}"),
            Err(e) => assert!(
                e.to_string().contains("not a valid interface name"),
                "{bad:?}: {e}"
            ),
        }
    }
    assert!(dhcp::hook(&env(&[("interface", "eth0.100")]), Some("deconfig"), &[]).is_ok());
}

//! Table-driven vectors for the command-line splitter, the `ip=` grammar (kernel and dracut
//! forms, every field and every error) and the network plan with its JSON.
//!
//! Each table row is an input and the expected result written out by hand; the helpers
//! below are the only code that calls the API.

use netcfg::cmdline::{self, BootMode};
use netcfg::ip::{self, IpConfig};
use netcfg::plan;

/// Renders a parsed `ip=` value as `field=value` words, unset fields left out.
fn describe(c: &IpConfig) -> String {
    let mut w = Vec::new();
    if let Some(a) = c.client {
        w.push(format!("client={a}"));
    }
    if let Some(a) = c.server {
        w.push(format!("server={a}"));
    }
    if let Some(a) = c.gateway {
        w.push(format!("gw={a}"));
    }
    if let Some(a) = c.gateway6 {
        w.push(format!("gw6={a}"));
    }
    if let Some(a) = &c.hostname {
        w.push(format!("host={a}"));
    }
    if let Some(a) = &c.domain {
        w.push(format!("domain={a}"));
    }
    if let Some(a) = &c.device {
        w.push(format!("dev={a}"));
    }
    if let Some(a) = c.autoconf {
        w.push(format!("auto={a:?}"));
    }
    for d in &c.dns {
        w.push(format!("dns={d}"));
    }
    if let Some(a) = c.ntp {
        w.push(format!("ntp={a}"));
    }
    if let Some(a) = c.mtu {
        w.push(format!("mtu={a}"));
    }
    if let Some(a) = c.mac {
        w.push(format!("mac={a}"));
    }
    w.push(format!("method={}", c.method().as_str()));
    w.join(" ")
}

/// A command line and the (key, value) pairs it splits into.
type SplitRow = (
    &'static str,
    &'static [(&'static str, Option<&'static str>)],
);

/// A command line, then debug, state, emergency timeout, mode and the number of warnings.
type SwitchRow = (
    &'static str,
    bool,
    Option<&'static str>,
    Option<u32>,
    BootMode,
    usize,
);

#[test]
fn split_vectors() {
    let rows: &[SplitRow] = &[
        ("", &[]),
        ("   \n", &[]),
        ("ro quiet", &[("ro", None), ("quiet", None)]),
        (
            "console=ttyS0,115200n8\n",
            &[("console", Some("ttyS0,115200n8"))],
        ),
        ("a=b=c", &[("a", Some("b=c"))]),
        ("a=", &[("a", Some(""))]),
        ("=a", &[("=a", None)]),
        ("a=\"b c\" d", &[("a", Some("b c")), ("d", None)]),
        ("\"a=b c\"", &[("a", Some("b c"))]),
        // The kernel keeps the closing quote of a quoted key (lib/cmdline.c).
        ("\"a b\"=c", &[("a b\"", Some("c"))]),
        ("a=x\"y z\"", &[("a", Some("x\"y z\""))]),
        (
            "\"quoted word\" next",
            &[("quoted word", None), ("next", None)],
        ),
        (
            "a\tb\x0bc\x0cd\re",
            &[
                ("a", None),
                ("b", None),
                ("c", None),
                ("d", None),
                ("e", None),
            ],
        ),
        (
            "ip=dhcp ip=eth1:dhcp",
            &[("ip", Some("dhcp")), ("ip", Some("eth1:dhcp"))],
        ),
        ("a=\"unterminated b", &[("a", Some("unterminated b"))]),
        ("\"", &[("", None)]),
        ("x=\"\"", &[("x", Some(""))]),
        (
            "-- init arg",
            &[("--", None), ("init", None), ("arg", None)],
        ),
    ];
    for (text, want) in rows {
        let got: Vec<(String, Option<String>)> = cmdline::split(text)
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect();
        let want: Vec<(String, Option<String>)> = want
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.map(str::to_string)))
            .collect();
        assert_eq!(got, want, "split({text:?})");
    }
}

#[test]
fn ip_ok_vectors() {
    let rows: &[(&str, &str)] = &[
        // nfsroot.rst: the lone autoconf forms.
        ("dhcp", "auto=Dhcp method=dhcp"),
        ("off", "auto=Off method=off"),
        ("none", "auto=Off method=off"),
        ("on", "auto=Dhcp method=dhcp"),
        ("any", "auto=Dhcp method=dhcp"),
        ("bootp", "auto=Dhcp method=dhcp"),
        ("rarp", "auto=Dhcp method=dhcp"),
        ("both", "auto=Dhcp method=dhcp"),
        ("", "auto=Off method=off"),
        // nfsroot.rst: "ip=dhcp,client-id-type,client-id-value".
        ("dhcp,1,00:11:22:33:44:55", "auto=Dhcp method=dhcp"),
        // Anything starting with dhcp is the kernel's DHCP, even dhcp6 (kernel wins).
        ("dhcp6", "auto=Dhcp method=dhcp"),
        ("dhcpfoo", "auto=Dhcp method=dhcp"),
        // nfsroot.rst: the ten positional fields.
        (
            "10.0.0.2:10.0.0.9:10.0.0.1:255.255.255.0:keel:eth0:off:10.0.0.53:10.0.0.54:10.0.0.123",
            "client=10.0.0.2/24 server=10.0.0.9 gw=10.0.0.1 host=keel dev=eth0 auto=Off dns=10.0.0.53 dns=10.0.0.54 ntp=10.0.0.123 method=static",
        ),
        // Issue 4's static example.
        (
            "10.0.2.15::10.0.2.2:255.255.255.0:keel:eth0:off",
            "client=10.0.2.15/24 gw=10.0.2.2 host=keel dev=eth0 auto=Off method=static",
        ),
        // Fields past the tenth are ignored.
        (
            "10.0.0.2:::::::::1.2.3.4:junk:more",
            "client=10.0.0.2/8 ntp=1.2.3.4 method=static",
        ),
        // Netmask from the class.
        ("10.1.2.3", "client=10.1.2.3/8 method=static"),
        ("10.1.2.3::", "client=10.1.2.3/8 method=static"),
        ("172.16.0.5::", "client=172.16.0.5/16 method=static"),
        ("192.168.1.5::", "client=192.168.1.5/24 method=static"),
        ("10.1.2.3:::0.0.0.0", "client=10.1.2.3/8 method=static"),
        // 0.0.0.0 is unset.
        (
            "0.0.0.0:0.0.0.0:0.0.0.0:0.0.0.0::eth0:",
            "dev=eth0 method=dhcp",
        ),
        // Empty autoconf means the kernel's default, any.
        (":::::eth0:", "dev=eth0 method=dhcp"),
        (":::::eth0:off", "dev=eth0 auto=Off method=off"),
        (":::::eth0:dhcp", "dev=eth0 auto=Dhcp method=dhcp"),
        (":::::eth0:bootp", "dev=eth0 auto=Dhcp method=dhcp"),
        // An address wins over the autoconf field (kernel).
        (
            "10.0.0.2:::255.0.0.0::eth0:dhcp",
            "client=10.0.0.2/8 dev=eth0 auto=Dhcp method=static",
        ),
        // The hostname splits at the first dot.
        (
            "::::host.example.com::",
            "host=host domain=example.com method=dhcp",
        ),
        ("::::.example.com::", "domain=example.com method=dhcp"),
        // A prefix length in the netmask field (dracut).
        (
            "10.0.0.2::10.0.0.1:24:keel:eth0:none",
            "client=10.0.0.2/24 gw=10.0.0.1 host=keel dev=eth0 auto=Off method=static",
        ),
        (
            "10.0.0.2:::32::eth0:none",
            "client=10.0.0.2/32 dev=eth0 auto=Off method=static",
        ),
        (
            "10.0.0.2:::255.255.255.252",
            "client=10.0.0.2/30 method=static",
        ),
        // IPv6 in brackets (dracut).
        (
            "[2001:db8::2]::[2001:db8::1]:64::eth0:none",
            "client=2001:db8::2/64 gw6=2001:db8::1 dev=eth0 auto=Off method=static",
        ),
        (
            "[2001:db8::2]:::::eth0:none",
            "client=2001:db8::2/64 dev=eth0 auto=Off method=static",
        ),
        (
            "[2001:db8::2]:::48::eth0:none",
            "client=2001:db8::2/48 dev=eth0 auto=Off method=static",
        ),
        // dracut's <iface>:<method>[:<mtu>][:<mac>].
        ("eth0:dhcp", "dev=eth0 auto=Dhcp method=dhcp"),
        ("eth0:on", "dev=eth0 auto=Dhcp method=dhcp"),
        ("eth0:any", "dev=eth0 auto=Dhcp method=dhcp"),
        ("eth0:dhcp6", "dev=eth0 auto=Dhcp6 method=dhcp6"),
        ("eth0:auto6", "dev=eth0 auto=Auto6 method=auto6"),
        ("eth0:either6", "dev=eth0 auto=Auto6 method=auto6"),
        ("eth0:off", "dev=eth0 auto=Off method=off"),
        ("eth0:none", "dev=eth0 auto=Off method=off"),
        ("eth0:dhcp:9000", "dev=eth0 auto=Dhcp mtu=9000 method=dhcp"),
        (
            "eth0:dhcp:1500:52:54:00:12:34:56",
            "dev=eth0 auto=Dhcp mtu=1500 mac=52:54:00:12:34:56 method=dhcp",
        ),
        (
            "eth0:dhcp::52:54:00:AB:cd:EF",
            "dev=eth0 auto=Dhcp mac=52:54:00:ab:cd:ef method=dhcp",
        ),
        ("enp0s3:dhcp", "dev=enp0s3 auto=Dhcp method=dhcp"),
        // dracut's MTU and MAC after the autoconf field of the static form.
        (
            "10.0.0.2::10.0.0.1:24::eth0:none:1400",
            "client=10.0.0.2/24 gw=10.0.0.1 dev=eth0 auto=Off mtu=1400 method=static",
        ),
        (
            "10.0.0.2::10.0.0.1:24::eth0:none:1400:52:54:00:12:34:56",
            "client=10.0.0.2/24 gw=10.0.0.1 dev=eth0 auto=Off mtu=1400 mac=52:54:00:12:34:56 method=static",
        ),
        // dns fields in brackets (dracut) and plain.
        (
            "10.0.0.2:::24:::off:[2001:db8::53]:9.9.9.9",
            "client=10.0.0.2/24 auto=Off dns=2001:db8::53 dns=9.9.9.9 method=static",
        ),
        // A 15-byte device name is the longest allowed.
        (":::::abcdefghijklmno:", "dev=abcdefghijklmno method=dhcp"),
    ];
    for (value, want) in rows {
        match ip::parse(value) {
            Ok(c) => assert_eq!(describe(&c), *want, "ip={value}"),
            Err(e) => panic!("ip={value}: unexpected error {e}"),
        }
    }
}

#[test]
fn ip_error_vectors() {
    // Each row: the value, the field the error must name, and a word of the reason.
    let rows: &[(&str, &str, &str)] = &[
        ("10.0.0.300", "client", "not an IP address"),
        ("10.0.0.2:bad", "server", "not an IP address"),
        ("10.0.0.2::gw", "gateway", "not an IP address"),
        ("10.0.0.2:::255.0.255.0", "netmask", "netmask"),
        ("10.0.0.2:::33", "netmask", "netmask"),
        ("10.0.0.2:::nope", "netmask", "netmask"),
        ("[2001:db8::2]:::129", "netmask", "prefix length"),
        ("[2001:db8::2]:::255.255.255.0", "netmask", "prefix length"),
        ("224.0.0.5", "netmask", "address class"),
        ("240.0.0.5::", "netmask", "address class"),
        (":::::abcdefghijklmnop:", "device", "15 bytes"),
        (":::::a/b:", "device", "not a valid interface name"),
        (":::::eth0:magic", "autoconf", "expected"),
        ("10.0.0.2:::::::dns", "dns0", "not an IP address"),
        ("10.0.0.2::::::::dns", "dns1", "not an IP address"),
        ("10.0.0.2:::::::::ntp", "ntp0", "not an IP address"),
        ("10.0.0.2:::::::::[2001:db8::1]", "ntp0", "IPv4 only"),
        ("2001:db8::2:::64", "client", "brackets"),
        ("[2001:db8::2::64", "value", "unclosed"),
        ("eth0:magic", "autoconf", "expected"),
        ("eth0:dhcp:12", "mtu", "between 68 and 65535"),
        ("eth0:dhcp:70000", "mtu", "between 68 and 65535"),
        ("eth0:dhcp:1500:zz", "mac", "MAC"),
        ("eth0", "value", "autoconf word"),
        ("10.0.0.2:::::eth0:none:12", "mtu", "between"),
        ("abcdefghijklmnopq:dhcp", "device", "15 bytes"),
        (&"x".repeat(70), "value", "autoconf word"),
    ];
    for (value, field, reason) in rows {
        match ip::parse(value) {
            Ok(c) => panic!(
                "ip={value}: expected an error in {field}, got {}",
                describe(&c)
            ),
            Err(e) => {
                assert_eq!(e.field, *field, "ip={value}: {e}");
                assert!(
                    e.to_string().contains(reason),
                    "ip={value}: {e} lacks {reason:?}"
                );
            }
        }
    }
    let long_host = format!("10.0.0.2::::{}", "h".repeat(65));
    let e = ip::parse(&long_host).err().map(|e| e.field);
    assert_eq!(e, Some("hostname"));
    let ok_host = format!("10.0.0.2::::{}", "h".repeat(64));
    assert!(ip::parse(&ok_host).is_ok());
}

/// Each row: a command line and the plan's readable summary, warnings included.
#[test]
fn plan_vectors() {
    let rows: &[(&str, &str)] = &[
        // No ip= at all: DHCP on the first ethernet interface (Linode).
        ("console=ttyS0 quiet", "interface (first ethernet): dhcp\n"),
        ("", "interface (first ethernet): dhcp\n"),
        ("ip=dhcp", "interface (first ethernet): dhcp\n"),
        ("nfsaddrs=dhcp", "interface (first ethernet): dhcp\n"),
        ("ip=off", "interface (first ethernet): off\n"),
        // Issue 4's static example.
        (
            "ip=10.0.2.15::10.0.2.2:255.255.255.0:keel:eth0:off",
            "interface eth0: static 10.0.2.15/24 gateway 10.0.2.2\nhostname keel\n",
        ),
        (
            "ip=10.0.0.2:10.0.0.9:10.0.0.1:255.255.255.0:node.lan:eth0:off:10.0.0.53:10.0.0.54:10.0.0.123",
            "interface eth0: static 10.0.0.2/24 gateway 10.0.0.1\nhostname node\nnameserver 10.0.0.53\nnameserver 10.0.0.54\nntp 10.0.0.123\n",
        ),
        // A bad ip= is ignored with a warning, and the default applies.
        (
            "ip=10.0.0.300",
            "interface (first ethernet): dhcp\nwarning: ip=10.0.0.300: field client \"10.0.0.300\": not an IP address\n",
        ),
        (
            "ip=10.0.0.300 ip=eth1:dhcp",
            "interface eth1: dhcp\nwarning: ip=10.0.0.300: field client \"10.0.0.300\": not an IP address\n",
        ),
        // Several interfaces (dracut).
        (
            "ip=eth0:dhcp ip=10.1.0.2::10.1.0.1:16::eth1:none",
            "interface eth0: dhcp\ninterface eth1: static 10.1.0.2/16 gateway 10.1.0.1\n",
        ),
        // Same interface: a later ip= overwrites the fields it sets (kernel).
        (
            "ip=10.0.0.2:::24::eth0:off ip=:::::eth0::10.0.0.53",
            "interface eth0: static 10.0.0.2/24\nnameserver 10.0.0.53\n",
        ),
        (
            "ip=10.0.0.2:::24 ip=10.0.0.3",
            "interface (first ethernet): static 10.0.0.3/8\n",
        ),
        (
            "ip=10.0.0.2:::24 ip=off",
            "interface (first ethernet): off\n",
        ),
        (
            "ip=10.0.0.2:::24 ip=dhcp",
            "interface (first ethernet): static 10.0.0.2/24\n",
        ),
        ("ip=eth0:dhcp ip=eth0:dhcp6", "interface eth0: dhcp6\n"),
        // IPv6 static with a gateway.
        (
            "ip=[2001:db8::2]::[2001:db8::1]:64:v6host:eth0:none",
            "interface eth0: static 2001:db8::2/64 gateway6 2001:db8::1\nhostname v6host\n",
        ),
        // Dual stack on one interface by two ip=: IPv6 is a field of its own.
        (
            "ip=10.0.0.2::10.0.0.1:24::eth0:none ip=[2001:db8::2]::[2001:db8::1]:64::eth0:none",
            "interface eth0: static 10.0.0.2/24 2001:db8::2/64 gateway 10.0.0.1 gateway6 2001:db8::1\n",
        ),
        // Two IPv4 addresses for one interface: the later wins (kernel).
        (
            "ip=10.0.0.2:::24::eth0:none ip=10.0.0.3:::24::eth0:none",
            "interface eth0: static 10.0.0.3/24\n",
        ),
        // MTU and MAC.
        ("ip=eth0:dhcp:9000", "interface eth0: dhcp mtu 9000\n"),
        (
            "ip=eth0:dhcp::52:54:00:12:34:56",
            "interface eth0: dhcp mac 52:54:00:12:34:56\n",
        ),
        // ifname= binds a MAC to the name used by ip=.
        (
            "ifname=lan0:52:54:00:12:34:56 ip=lan0:dhcp",
            "interface lan0: dhcp mac 52:54:00:12:34:56\n",
        ),
        // ifname= alone: renamed, otherwise left alone, and the default DHCP still applies.
        (
            "ifname=lan0:52:54:00:12:34:56",
            "interface (first ethernet): dhcp\ninterface lan0: off mac 52:54:00:12:34:56\n",
        ),
        (
            "ifname=lan0:zz",
            "interface (first ethernet): dhcp\nwarning: ifname=lan0:zz: field mac \"zz\": not a MAC address like 52:54:00:12:34:56\n",
        ),
        (
            "ifname=eth0",
            "interface (first ethernet): dhcp\nwarning: ifname=eth0: expected ifname=<name>:<mac>\n",
        ),
        // nameserver=, hostname=, rd.route=.
        (
            "nameserver=1.1.1.1 nameserver=[2606:4700::1111] ip=10.0.0.2:::24:::off:10.0.0.53:1.1.1.1",
            "interface (first ethernet): static 10.0.0.2/24\nnameserver 1.1.1.1\nnameserver 2606:4700::1111\nnameserver 10.0.0.53\n",
        ),
        (
            "nameserver=bogus",
            "interface (first ethernet): dhcp\nwarning: nameserver=bogus: field nameserver \"bogus\": not an IP address\n",
        ),
        (
            "hostname=box ip=::::other::",
            "interface (first ethernet): dhcp\nhostname box\n",
        ),
        (
            "hostname=\"a b\"",
            "interface (first ethernet): dhcp\nwarning: hostname=a b: field hostname \"a b\": contains a space, a control character or a slash\n",
        ),
        (
            "rd.route=10.9.0.0/16:10.0.0.1 rd.route=10.8.0.5/24:10.0.0.1:eth0",
            "interface (first ethernet): dhcp\nroute 10.9.0.0/16 via 10.0.0.1\nroute 10.8.0.0/24 via 10.0.0.1 dev eth0\n",
        ),
        (
            "rd.route=[2001:db8:3::/48]:[2001:db8::1]:ens10",
            "interface (first ethernet): dhcp\nroute 2001:db8:3::/48 via 2001:db8::1 dev ens10\n",
        ),
        (
            "rd.route=10.9.0.0/255.255.0.0:10.0.0.1",
            "interface (first ethernet): dhcp\nroute 10.9.0.0/16 via 10.0.0.1\n",
        ),
        (
            "rd.route=10.9.0.0/16::eth0",
            "interface (first ethernet): dhcp\nroute 10.9.0.0/16 dev eth0\n",
        ),
        (
            "rd.route=10.9.0.0:10.0.0.1",
            "interface (first ethernet): dhcp\nwarning: rd.route=10.9.0.0:10.0.0.1: field net \"10.9.0.0\": not a network like 10.1.0.0/16 or [2001:db8::/32]\n",
        ),
        (
            "rd.route=10.9.0.0/16:[2001:db8::1]",
            "interface (first ethernet): dhcp\nwarning: rd.route=10.9.0.0/16:[2001:db8::1]: field gateway \"[2001:db8::1]\": not the same address family as 10.9.0.0/16\n",
        ),
        (
            "rd.route=10.9.0.0/16",
            "interface (first ethernet): dhcp\nwarning: rd.route=10.9.0.0/16: a route needs a gateway or an interface\n",
        ),
        // A gateway on a DHCP interface is ignored with a warning.
        (
            "ip=::10.0.0.1::::dhcp",
            "interface (first ethernet): dhcp\nwarning: ip= for the first ethernet interface: field gateway \"10.0.0.1\" ignored: the interface uses dhcp, which brings its own\n",
        ),
        // A key without a value.
        (
            "ip",
            "interface (first ethernet): dhcp\nwarning: ip: ip needs a value (ip=...)\n",
        ),
        // ip= after -- is init's argument, not the kernel's.
        ("ip=eth1:dhcp -- ip=off", "interface eth1: dhcp\n"),
        // A quoted value.
        (
            "ip=\"10.0.0.2::10.0.0.1:24:keel:eth0:off\"",
            "interface eth0: static 10.0.0.2/24 gateway 10.0.0.1\nhostname keel\n",
        ),
    ];
    for (text, want) in rows {
        assert_eq!(plan::plan(text).to_string(), *want, "cmdline {text:?}");
    }
}

#[test]
fn json_vectors() {
    let rows: &[(&str, &str)] = &[
        (
            "",
            r#"{"interfaces":[{"name":null,"mac":null,"method":"dhcp","addresses":[],"gateway":null,"gateway6":null,"mtu":null}],"hostname":null,"nameservers":[],"ntp":[],"routes":[],"warnings":[]}"#,
        ),
        (
            "ip=10.0.2.15::10.0.2.2:255.255.255.0:keel:eth0:off",
            r#"{"interfaces":[{"name":"eth0","mac":null,"method":"static","addresses":["10.0.2.15/24"],"gateway":"10.0.2.2","gateway6":null,"mtu":null}],"hostname":"keel","nameservers":[],"ntp":[],"routes":[],"warnings":[]}"#,
        ),
        (
            "ip=[2001:db8::2]::[2001:db8::1]:64::eth0:none:1400:52:54:00:12:34:56 rd.route=10.9.0.0/16:10.0.0.1:eth0 ip=\"bad\"",
            r#"{"interfaces":[{"name":"eth0","mac":"52:54:00:12:34:56","method":"static","addresses":["2001:db8::2/64"],"gateway":null,"gateway6":"2001:db8::1","mtu":1400}],"hostname":null,"nameservers":[],"ntp":[],"routes":[{"to":"10.9.0.0/16","via":"10.0.0.1","dev":"eth0"}],"warnings":["ip=bad: field value \"bad\": not an autoconf word (off, none, on, any, dhcp, bootp, rarp, both) nor a list of fields"]}"#,
        ),
    ];
    for (text, want) in rows {
        assert_eq!(plan::plan(text).to_json(), *want, "cmdline {text:?}");
    }
}

/// Every plan vector's JSON is valid JSON with the issue's keys, checked by a real parser.
#[test]
fn json_is_valid_for_odd_input() {
    for text in [
        "hostname=\"tab\there\"",
        "ip=::::q\"uote::",
        "keel.x=\u{1}",
        "ip=10.0.0.2:::24:\u{7}::",
        "ip=[2001:db8::2]::[2001:db8::1]:64::eth0:none ip=eth1:dhcp rd.route=10.0.0.0/8:10.0.0.1",
    ] {
        let json = plan::plan(text).to_json();
        let v: serde_json::Value =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
        for key in [
            "interfaces",
            "hostname",
            "nameservers",
            "ntp",
            "routes",
            "warnings",
        ] {
            assert!(v.get(key).is_some(), "{json} lacks {key}");
        }
        for i in v["interfaces"].as_array().into_iter().flatten() {
            for key in [
                "name",
                "mac",
                "method",
                "addresses",
                "gateway",
                "gateway6",
                "mtu",
            ] {
                assert!(i.get(key).is_some(), "{json} interface lacks {key}");
            }
        }
    }
}

#[test]
fn keel_switch_vectors() {
    let rows: &[SwitchRow] = &[
        ("", false, None, None, BootMode::Normal, 0),
        ("keel.debug", true, None, None, BootMode::Normal, 0),
        ("keel.debug=1", true, None, None, BootMode::Normal, 0),
        (
            "keel.debug keel.debug=0",
            false,
            None,
            None,
            BootMode::Normal,
            0,
        ),
        ("keel.debug=maybe", false, None, None, BootMode::Normal, 1),
        (
            "keel.state=/dev/vda",
            false,
            Some("/dev/vda"),
            None,
            BootMode::Normal,
            0,
        ),
        ("keel.state=", false, None, None, BootMode::Normal, 1),
        (
            "keel.emergency_timeout=30",
            false,
            None,
            Some(30),
            BootMode::Normal,
            0,
        ),
        (
            "keel.emergency-timeout=45",
            false,
            None,
            Some(45),
            BootMode::Normal,
            0,
        ),
        (
            "keel.emergency_timeout=soon",
            false,
            None,
            None,
            BootMode::Normal,
            1,
        ),
        ("keel.emergency", false, None, None, BootMode::Emergency, 0),
        ("keel.emergency=0", false, None, None, BootMode::Normal, 0),
        ("emergency", false, None, None, BootMode::Emergency, 0),
        ("rescue", false, None, None, BootMode::Rescue, 0),
        ("single", false, None, None, BootMode::Rescue, 0),
        (
            "rescue emergency",
            false,
            None,
            None,
            BootMode::Emergency,
            0,
        ),
        (
            "emergency rescue",
            false,
            None,
            None,
            BootMode::Emergency,
            0,
        ),
        ("-- single", false, None, None, BootMode::Rescue, 0),
        ("S 1", false, None, None, BootMode::Normal, 0),
        ("emergency=1", false, None, None, BootMode::Normal, 0),
        ("keel.frobnicate=3", false, None, None, BootMode::Normal, 1),
    ];
    for (text, debug, state, timeout, mode, nwarn) in rows {
        let (c, w) = cmdline::parse(text);
        assert_eq!(c.debug, *debug, "{text}: debug");
        assert_eq!(c.state.as_deref(), *state, "{text}: state");
        assert_eq!(c.emergency_timeout, *timeout, "{text}: timeout");
        assert_eq!(c.mode, *mode, "{text}: mode");
        assert_eq!(w.len(), *nwarn, "{text}: warnings {w:?}");
    }
    let (c, w) = cmdline::parse("keel.frobnicate=3 keel.debug keel.state=a keel.state=b");
    assert_eq!(c.keel.get("keel.frobnicate"), Some(&Some("3".to_string())));
    assert_eq!(c.keel.get("keel.debug"), Some(&None));
    assert_eq!(c.keel.get("keel.state"), Some(&Some("b".to_string())));
    assert!(
        w[0].to_string()
            .starts_with("keel.frobnicate=3: unknown keel switch"),
        "{w:?}"
    );
}

#[test]
fn cmdline_keeps_every_occurrence_and_init_args() {
    let (c, w) = cmdline::parse("ip=eth0:dhcp nfsaddrs=eth1:dhcp ip=eth2:off -- --foo ip=x");
    assert!(w.is_empty(), "{w:?}");
    let devs: Vec<_> =
        c.ip.iter()
            .map(|(_, cfg)| cfg.device.clone().unwrap_or_default())
            .collect();
    assert_eq!(devs, ["eth0", "eth1", "eth2"]);
    assert_eq!(c.init_args, ["--foo", "ip=x"]);
    assert_eq!(c.params.len(), 3);
}

#[test]
fn a_command_line_that_is_not_utf8_keeps_its_good_arguments() {
    // /proc/cmdline is bytes: a stray one costs only the argument it is in.
    let text = cmdline::decode(b"console=ttyS0 ip=eth0:dhcp keel.x=\xfe\xff keel.debug");
    let (c, _) = cmdline::parse(&text);
    assert_eq!(c.ip.len(), 1, "{c:?}");
    assert!(c.debug);
    // The bad bytes are replaced, so the argument that holds them is only a warning.
    let p = plan::plan(&text);
    assert_eq!(p.interfaces.len(), 1, "{p:?}");
    assert!(
        p.warnings
            .iter()
            .any(|w| w.starts_with("keel.x=\u{fffd}\u{fffd}: unknown keel switch")),
        "{:?}",
        p.warnings
    );
}

/// Fuzz-style check: no input makes the whole-command-line parser panic.
#[test]
fn never_panics_on_odd_bytes() {
    let pieces = [
        "ip=",
        ":",
        "[",
        "]",
        "\"",
        "=",
        " ",
        "dhcp",
        "eth0",
        "10.0.0.2",
        "/",
        "::",
        "ü",
        "\u{0}",
        "255.255.255.0",
        "52:54:00:12:34:56",
        "rd.route=",
        "ifname=",
        "keel.",
        "-",
        "--",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..20_000 {
        let mut s = String::new();
        for _ in 0..(seed % 12) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            s.push_str(pieces[(seed % pieces.len() as u64) as usize]);
        }
        let p = plan::plan(&s);
        assert!(!p.interfaces.is_empty(), "{s:?}");
        let _ = p.to_json();
        let _ = ip::parse(&s);
    }
}

/// Seen while writing the fuzz target `cmdline`: `ifname=` and the interface of
/// `rd.route=` were checked for length only, so `ifname=..:<mac>` or a route on `a/b`
/// passed into the plan.
#[test]
fn ifname_and_route_interfaces_must_be_interface_names() {
    for arg in [
        "ifname=..:52:54:00:12:34:56",
        "ifname=a/b:52:54:00:12:34:56",
        "ifname=a\u{7}:52:54:00:12:34:56",
        "rd.route=10.1.0.0/16:10.0.0.1:a/b",
        "rd.route=10.1.0.0/16::.",
    ] {
        let (c, w) = cmdline::parse(arg);
        assert!(c.ifnames.is_empty() && c.routes.is_empty(), "{arg}: {c:?}");
        assert_eq!(w.len(), 1, "{arg}: {w:?}");
        assert!(
            w[0].message.contains("not a valid interface name"),
            "{arg}: {w:?}"
        );
    }
    let (c, w) = cmdline::parse("ifname=lan0:52:54:00:12:34:56 rd.route=10.1.0.0/16::lan0");
    assert_eq!(
        (c.ifnames.len(), c.routes.len(), w.len()),
        (1, 1, 0),
        "{w:?}"
    );
}

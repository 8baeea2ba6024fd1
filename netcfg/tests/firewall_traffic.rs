//! The rendered firewall against real traffic: a server namespace loads the ruleset with
//! `nft -f`, a client namespace connects to it over a veth pair, and each test checks what
//! gets through: allowed ports connect over IPv4 and IPv6, other ports time out (dropped,
//! not refused), ping answers, and a rule with a source admits only that source and only its
//! address family.
//!
//! Addresses: server 10.99.0.1/24 and fd99::1/64, client 10.99.0.2, 10.99.0.3, fd99::2 and
//! fd99::3, all inside namespaces this test made. Needs root (CI runs as root); without it
//! each test says why on stderr and passes without checking anything. Ping uses busybox.
#![allow(clippy::disallowed_methods)] // A test harness, not PID 1: it may wait on `ip`.

mod fw;

use fw::{Ns, firewall};
use netcfg::firewall::render;
use netcfg::nft;
use nix::sys::socket::{
    self, AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6, SockaddrLike, sockopt,
};
use nix::sys::time::TimeVal;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// How long a connection attempt may take before it counts as dropped. Over a veth pair
/// an accepted connection takes well under a millisecond.
const TIMEOUT: Duration = Duration::from_millis(1000);

const S4: &str = "10.99.0.1";
const S6: &str = "fd99::1";

/// A server and a client namespace joined by a veth pair, both deleted on drop.
struct Pair {
    server: Ns,
    client: Ns,
}

impl Pair {
    fn new() -> Option<Pair> {
        if !fw::runnable() {
            return None;
        }
        let server = Ns::new("s");
        let client = Ns::new("c");
        server.ip(&[
            "link",
            "add",
            "fws",
            "type",
            "veth",
            "peer",
            "name",
            "fwc",
            "netns",
            &client.name,
        ]);
        server.ip(&["addr", "add", "10.99.0.1/24", "dev", "fws"]);
        server.ip(&["addr", "add", "fd99::1/64", "dev", "fws", "nodad"]);
        server.ip(&["link", "set", "fws", "up"]);
        for a in ["10.99.0.2/24", "10.99.0.3/24"] {
            client.ip(&["addr", "add", a, "dev", "fwc"]);
        }
        for a in ["fd99::2/64", "fd99::3/64"] {
            client.ip(&["addr", "add", a, "dev", "fwc", "nodad"]);
        }
        client.ip(&["link", "set", "fwc", "up"]);
        // The kernel turns a veth's carrier on through its deferred link watch (up to a
        // second later), and drops packets until then: a first SYN lost there would look
        // like a firewall drop. Wait until both ends say UP.
        for (ns, dev) in [(&server, "fws"), (&client, "fwc")] {
            let mut tries = 0;
            while !ns.ip(&["-br", "link", "show", "dev", dev]).contains(" UP ") {
                tries += 1;
                assert!(tries < 100, "{dev} in {} did not come up in 5 s", ns.name);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let pair = Pair { server, client };
        // Then prove the path works from every client address (and resolve the neighbours)
        // with a connect to a closed port, which is refused as long as no firewall is loaded.
        for (from, to) in [
            ("10.99.0.2", S4),
            ("10.99.0.3", S4),
            ("fd99::2", S6),
            ("fd99::3", S6),
        ] {
            let mut tries = 0;
            while !matches!(pair.tcp(from, to, 1), Outcome::Failed(ref e) if e.contains("ECONNREFUSED"))
            {
                tries += 1;
                assert!(tries < 5, "no path from {from} to {to} without a firewall");
            }
        }
        Some(pair)
    }

    /// Loads the table of a config into the server namespace over nfnetlink, as
    /// `keel firewall --apply` does (`netcfg::nft`; nft_netlink.rs checks it lists the same
    /// as the text `render` gives).
    fn apply(&self, toml: &str) {
        let fw = firewall(toml);
        if let Err(e) = self.server.run(|| nft::load(&fw)) {
            panic!(
                "loading the table over netlink failed: {e}\n{}",
                render(&fw)
            );
        }
    }

    /// TCP listeners in the server namespace on every address, IPv4 and IPv6.
    fn listen_tcp(&self, ports: &[u16]) -> Vec<TcpListener> {
        self.server.run(|| {
            let mut all = Vec::new();
            for &p in ports {
                for a in [S4, S6] {
                    let addr = SocketAddr::new(parse(a), p);
                    all.push(
                        TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}")),
                    );
                }
            }
            all
        })
    }

    /// Connects from the client namespace, from `from`, and says what happened.
    fn tcp(&self, from: &str, to: &str, port: u16) -> Outcome {
        self.client
            .run(|| connect(parse(from), SocketAddr::new(parse(to), port)))
    }

    /// Whether one UDP datagram from the client reaches a socket in the server.
    fn udp_arrives(&self, from: &str, to: &str, port: u16) -> bool {
        let to = SocketAddr::new(parse(to), port);
        let server = self.server.run(|| {
            let s = UdpSocket::bind(to).unwrap_or_else(|e| panic!("bind udp {to}: {e}"));
            s.set_read_timeout(Some(TIMEOUT))
                .unwrap_or_else(|e| panic!("{e}"));
            s
        });
        self.client.run(|| {
            let c = UdpSocket::bind(SocketAddr::new(parse(from), 0))
                .unwrap_or_else(|e| panic!("bind udp {from}: {e}"));
            c.send_to(b"keel", to)
                .unwrap_or_else(|e| panic!("send to {to}: {e}"));
        });
        let mut buf = [0u8; 16];
        matches!(server.recv_from(&mut buf), Ok((4, _)))
    }

    /// Whether the server answers one ping from `from` (busybox ping).
    fn ping(&self, from: &str, to: &str) -> bool {
        let family = if to.contains(':') { "-6" } else { "-4" };
        let out = self.client.exec(
            "busybox",
            &["ping", family, "-c", "1", "-W", "1", "-I", from, to],
        );
        out.status.success()
    }
}

fn parse(a: &str) -> IpAddr {
    a.parse().unwrap_or_else(|e| panic!("{a}: {e}"))
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Connected,
    /// No answer within [`TIMEOUT`]: the SYN was dropped.
    TimedOut,
    /// Anything else, with the error, e.g. a refusal.
    Failed(String),
}

use Outcome::{Connected, TimedOut};

/// A blocking TCP connect from a chosen source address, bounded by [`TIMEOUT`] through
/// SO_SNDTIMEO (Linux applies it to connect and reports EINPROGRESS when it expires).
fn connect(from: IpAddr, to: SocketAddr) -> Outcome {
    let family = if to.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket::socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .unwrap_or_else(|e| panic!("socket: {e}"));
    let tv = TimeVal::new(TIMEOUT.as_secs() as i64, TIMEOUT.subsec_micros().into());
    socket::setsockopt(&fd, sockopt::SendTimeout, &tv).unwrap_or_else(|e| panic!("{e}"));
    let (src, dst): (Box<dyn SockaddrLike>, Box<dyn SockaddrLike>) = match (from, to) {
        (IpAddr::V4(f), SocketAddr::V4(t)) => (
            Box::new(SockaddrIn::from(std::net::SocketAddrV4::new(f, 0))),
            Box::new(SockaddrIn::from(t)),
        ),
        (IpAddr::V6(f), SocketAddr::V6(t)) => (
            Box::new(SockaddrIn6::from(std::net::SocketAddrV6::new(f, 0, 0, 0))),
            Box::new(SockaddrIn6::from(t)),
        ),
        _ => panic!("{from} and {to} are of different families"),
    };
    socket::bind(fd.as_raw_fd(), &*src).unwrap_or_else(|e| panic!("bind {from}: {e}"));
    match socket::connect(fd.as_raw_fd(), &*dst) {
        Ok(()) => Connected,
        Err(nix::errno::Errno::EINPROGRESS | nix::errno::Errno::ETIMEDOUT) => TimedOut,
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

#[test]
fn without_a_firewall_everything_connects() {
    // The control for the tests below: every listener is reachable before nft runs, so a
    // time-out later is the firewall's doing.
    let Some(p) = Pair::new() else { return };
    let _l = p.listen_tcp(&[2222, 2223]);
    assert_eq!(p.tcp("10.99.0.2", S4, 2223), Connected);
    assert_eq!(p.tcp("fd99::2", S6, 2223), Connected);
    assert_eq!(
        p.tcp("10.99.0.2", S4, 2224),
        Outcome::Failed("ECONNREFUSED: Connection refused".into())
    );
}

#[test]
fn default_ruleset_admits_ssh_and_ping_and_drops_the_rest() {
    let Some(p) = Pair::new() else { return };
    let _l = p.listen_tcp(&[2222, 2223, 80]);
    p.apply("");
    assert_eq!(p.tcp("10.99.0.2", S4, 2222), Connected);
    assert_eq!(p.tcp("fd99::2", S6, 2222), Connected);
    assert_eq!(p.tcp("10.99.0.2", S4, 2223), TimedOut);
    assert_eq!(p.tcp("fd99::2", S6, 80), TimedOut);
    // A closed port is dropped too, not refused: a scan learns nothing.
    assert_eq!(p.tcp("10.99.0.2", S4, 9), TimedOut);
    assert!(!p.udp_arrives("10.99.0.2", S4, 2222));
    if which_busybox() {
        assert!(p.ping("10.99.0.2", S4), "no IPv4 ping answer");
        // IPv6 ping also needs neighbour discovery through the firewall.
        assert!(p.ping("fd99::2", S6), "no IPv6 ping answer");
    }
}

#[test]
fn ranges_and_udp_rules() {
    let Some(p) = Pair::new() else { return };
    let _l = p.listen_tcp(&[9000, 9002, 9003]);
    p.apply(
        r#"
[firewall]
allow = [
  { protocol = "tcp", port = "9000-9002" },
  { protocol = "udp", port = 5353 },
]
"#,
    );
    assert_eq!(p.tcp("10.99.0.2", S4, 9000), Connected);
    assert_eq!(p.tcp("fd99::2", S6, 9002), Connected);
    assert_eq!(p.tcp("10.99.0.2", S4, 9003), TimedOut);
    // The default ssh rule is gone: an allow list replaces it.
    assert_eq!(p.tcp("10.99.0.2", S4, 2222), TimedOut);
    assert!(p.udp_arrives("10.99.0.2", S4, 5353));
    assert!(p.udp_arrives("fd99::2", S6, 5353));
    assert!(!p.udp_arrives("10.99.0.2", S4, 5354));
}

#[test]
fn a_source_admits_only_that_source_and_family() {
    let Some(p) = Pair::new() else { return };
    let _l = p.listen_tcp(&[8081, 8082, 8083]);
    p.apply(
        r#"
[firewall]
ping = false
allow = [
  { protocol = "tcp", port = 8081, source = "10.99.0.2" },
  { protocol = "tcp", port = 8082, source = "fd99::2/128" },
  { protocol = "tcp", port = 8083, source = "10.99.0.0/24" },
  { protocol = "icmp", source = "10.99.0.2/32" },
]
"#,
    );
    assert_eq!(p.tcp("10.99.0.2", S4, 8081), Connected);
    assert_eq!(p.tcp("10.99.0.3", S4, 8081), TimedOut);
    assert_eq!(
        p.tcp("fd99::2", S6, 8081),
        TimedOut,
        "an IPv4 source rule admitted IPv6"
    );
    assert_eq!(p.tcp("fd99::2", S6, 8082), Connected);
    assert_eq!(p.tcp("fd99::3", S6, 8082), TimedOut);
    assert_eq!(
        p.tcp("10.99.0.2", S4, 8082),
        TimedOut,
        "an IPv6 source rule admitted IPv4"
    );
    assert_eq!(p.tcp("10.99.0.3", S4, 8083), Connected);
    if which_busybox() {
        assert!(
            p.ping("10.99.0.2", S4),
            "the icmp rule's source got no answer"
        );
        assert!(
            !p.ping("10.99.0.3", S4),
            "ping = false, yet another source got an answer"
        );
        assert!(
            !p.ping("fd99::2", S6),
            "an IPv4 icmp rule answered IPv6 ping"
        );
    }
}

#[test]
fn replies_to_the_servers_own_connections_get_back_in() {
    // Output is open and replies are accepted: the server can reach a listener in the
    // client although nothing allows the client's port in.
    let Some(p) = Pair::new() else { return };
    let listener = p.client.run(|| {
        TcpListener::bind(SocketAddr::new(parse("10.99.0.2"), 7000))
            .unwrap_or_else(|e| panic!("bind: {e}"))
    });
    p.apply("");
    let got = p
        .server
        .run(|| connect(parse(S4), SocketAddr::new(parse("10.99.0.2"), 7000)));
    assert_eq!(got, Connected);
    drop(listener);
}

fn which_busybox() -> bool {
    let found = std::process::Command::new("busybox")
        .arg("true")
        .output()
        .is_ok_and(|o| o.status.success());
    fw::prerequisite((!found).then_some("busybox (busybox-static) for the ping checks"))
}

//! `keel network`: the `network` service. It configures the network the kernel command line
//! asks for, tells the supervisor when it is ready, and then stays up as the service's
//! process, so that what `needs` the network stops when it goes.
//!
//! - Static `ip=` (or `ip=off`): wait for the links (bounded, [`LINK_WAIT_MS`]), then over
//!   netlink rename, MTU, up, addresses, default routes and `rd.route=`s; /etc/resolv.conf
//!   and the host name; `READY=1` on `NOTIFY_SOCKET`; then block in pause(2) until the
//!   supervisor stops it (no polling: there is nothing left to watch).
//! - DHCP (no `ip=`, or `ip=dhcp`...): the same for what is static, then exec the DHCP client
//!   in the foreground (`netcfg::client`), so the service's process IS the client; its
//!   script, keel's `dhcp-hook`, applies the lease and sends `READY=1`. When the client dies
//!   the supervisor restarts the network and, after it, everything that needs it.
//!
//! The client is ISC dhclient unless `keel.dhcp=udhcpc` (command line, wins) or
//! `--dhcp=udhcpc` (the service's `exec` in the appliance config) says otherwise. The host
//! name of the command line (`hostname=`, or the field of `ip=`) replaces the config's,
//! which PID 1 set at boot. This applet must not be PID 1: it sleeps and execs.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt as _;
use std::path::Path;

use netcfg::client::{self, DhcpClient, NOTIFY_SOCKET};
use netcfg::links::{self as netlink, LINK_WAIT_MS, LinkOp, LinkWait, Links, WaitState};
use netcfg::rtnl::Netlink;
use netcfg::{Method, Plan, cmdline};

use crate::exit::Exit;
use crate::sys::clock;

/// Where the kernel command line is read from.
pub const PROC_CMDLINE: &str = "/proc/cmdline";
/// The resolver config written from `nameserver=` and the `ip=` dns fields.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

const HELP: &str = "\
usage: keel network [--dhcp=dhclient|udhcpc] [--link-wait=SECONDS]
configures the network from the kernel command line (see `keel cmdline`): static ip= over
netlink, then stays up; DHCP by exec'ing the client with /sbin/dhcp-hook as its script.
keel.dhcp= on the command line wins over --dhcp. Run as the `network` service (ready = \"notify\").
";

/// The applet's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opts {
    pub dhcp: Option<DhcpClient>,
    pub link_wait_ms: u64,
    pub help: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            dhcp: None,
            link_wait_ms: LINK_WAIT_MS,
            help: false,
        }
    }
}

/// Parses the options; an unknown one or a bad value is an error naming it.
pub fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts::default();
    for a in args {
        match a.split_once('=') {
            Some(("--dhcp", v)) => {
                o.dhcp = Some(DhcpClient::parse(v).ok_or_else(|| {
                    format!(
                        "--dhcp={v}: unknown DHCP client (known: {})",
                        DhcpClient::NAMES.join(", ")
                    )
                })?);
            }
            Some(("--link-wait", v)) => match v.parse::<u64>() {
                Ok(s) if s <= 3600 => o.link_wait_ms = s * 1000,
                _ => {
                    return Err(format!(
                        "--link-wait={v}: expected whole seconds, 0 to 3600"
                    ));
                }
            },
            _ if a == "-h" || a == "--help" => o.help = true,
            _ => {
                return Err(format!(
                    "unknown option {a:?} (known: --dhcp=, --link-wait=)"
                ));
            }
        }
    }
    Ok(o)
}

/// The client to run: the command line's `keel.dhcp=` wins over the config's `--dhcp=`.
pub fn choose_client(cmdline: Option<DhcpClient>, opt: Option<DhcpClient>) -> DhcpClient {
    cmdline.or(opt).unwrap_or_default()
}

/// Names a file to read instead of /proc/cmdline (for tests; PID 1 never reads it).
pub const CMDLINE_ENV: &str = "KEEL_PROC_CMDLINE";

/// Reads the kernel command line: the one reader of every applet (`network`, `dhcp-hook`,
/// `cmdline`), with PID 1's rule: bytes that are not UTF-8 become U+FFFD
/// ([`netcfg::cmdline::decode`]), so a stray byte costs one argument a warning, never the
/// network (a strict read exited 111 and kept sshd down).
pub fn read_cmdline() -> Result<String, String> {
    let path = std::env::var(CMDLINE_ENV).unwrap_or_else(|_| PROC_CMDLINE.to_string());
    std::fs::read(&path)
        .map(|b| cmdline::decode(&b))
        .map_err(|e| format!("cannot read {path}: {e} (is /proc mounted?)"))
}

/// Writes `text` to `path` through a temporary file and a rename, so a reader never sees
/// half a file.
pub fn write_atomic(path: &str, text: &str) -> Result<(), String> {
    let tmp = format!("{path}.keel-tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {path}: {e}")
    })
}

/// Sends `READY=1` (and a status line) to the supervisor's `NOTIFY_SOCKET`, if there is
/// one. Returns whether it was sent; without the variable (run by hand) there is nobody to
/// tell, which is not an error.
pub fn send_ready(status: &str) -> Result<bool, String> {
    match std::env::var_os(NOTIFY_SOCKET) {
        Some(path) => send_ready_to(Path::new(&path), status).map(|()| true),
        None => Ok(false),
    }
}

/// Sends `READY=1` and `STATUS=status` in one datagram to the socket at `path`.
pub fn send_ready_to(path: &Path, status: &str) -> Result<(), String> {
    let msg = format!("READY=1\nSTATUS={status}");
    let sock = UnixDatagram::unbound().map_err(|e| format!("cannot make a socket: {e}"))?;
    sock.send_to(msg.as_bytes(), path).map_err(|e| {
        format!(
            "cannot send READY=1 to {NOTIFY_SOCKET}={}: {e}",
            path.display()
        )
    })?;
    Ok(())
}

/// Sets the host name, saying so.
pub fn set_hostname(name: &str, source: &str) {
    match nix::unistd::sethostname(name) {
        Ok(()) => println!("hostname {name} (from {source})"),
        Err(e) => eprintln!("cannot set hostname {name:?} from {source}: {e}"),
    }
}

/// Whether a failed op leaves the network unusable: a missing address or a link that is
/// down is, a route that cannot be added is a warning (the addresses still work).
pub fn fatal(op: &LinkOp) -> bool {
    !matches!(op, LinkOp::AddRoute(_) | LinkOp::DelRoute(_))
}

/// Waits for the plan's links, at most `bound_ms`. Returns the link of each interface
/// (index-aligned with `plan.interfaces`) and the ones that never came.
fn wait_links<L: Links>(
    nl: &mut L,
    plan: &Plan,
    bound_ms: u64,
) -> Result<(Vec<Option<netlink::LinkInfo>>, Vec<String>), String> {
    let wait = LinkWait::new(clock::now().0, bound_ms);
    let mut said = false;
    loop {
        let now = clock::now().0;
        match wait.poll(nl, plan, now) {
            Err(e) => return Err(format!("cannot list links: {e}")),
            Ok(WaitState::Ready(found)) => return Ok((found, Vec::new())),
            Ok(WaitState::TimedOut { found, missing }) => {
                let missing = missing.iter().map(ToString::to_string).collect();
                return Ok((found, missing));
            }
            Ok(WaitState::Waiting { missing, retry_at }) => {
                if !said {
                    let m: Vec<String> = missing.iter().map(ToString::to_string).collect();
                    println!("waiting up to {} s for {}", bound_ms / 1000, m.join(", "));
                    said = true;
                }
                // An applet, not PID 1: a bounded wait between two looks at the links.
                #[allow(clippy::disallowed_methods)]
                std::thread::sleep(std::time::Duration::from_millis(
                    retry_at.saturating_sub(now).max(1),
                ));
            }
        }
    }
}

/// A one-line summary of what is configured, for the log and the supervisor's status.
fn summary(plan: &Plan, found: &[Option<netlink::LinkInfo>]) -> String {
    let mut parts = Vec::new();
    for (i, link) in plan.interfaces.iter().zip(found) {
        let Some(link) = link else { continue };
        let name = i.name.as_deref().unwrap_or(&link.name);
        let addrs: Vec<String> = i.addresses.iter().map(ToString::to_string).collect();
        if addrs.is_empty() {
            parts.push(format!("{name} {}", i.method.as_str()));
        } else {
            parts.push(format!("{name} {}", addrs.join(" ")));
        }
    }
    if parts.is_empty() {
        "no interface configured".to_string()
    } else {
        parts.join(", ")
    }
}

/// Runs `keel network`.
pub fn main(args: &[String]) -> Exit {
    let opts = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprint!("keel network: {e}\n{HELP}");
            return Exit::Permanent;
        }
    };
    if opts.help {
        print!("{HELP}");
        return Exit::Ok;
    }
    let text = match read_cmdline() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return Exit::Temporary;
        }
    };
    let (c, warnings) = cmdline::parse(&text);
    let plan = netcfg::plan::from_cmdline(&c, warnings.iter().map(ToString::to_string).collect());
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    let client = choose_client(c.dhcp_client, opts.dhcp);
    let mut nl = match Netlink::open() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("cannot open a netlink socket: {e}");
            return Exit::Temporary;
        }
    };
    let (found, missing) = match wait_links(&mut nl, &plan, opts.link_wait_ms) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return Exit::Temporary;
        }
    };
    for m in &missing {
        eprintln!(
            "{m} did not appear within {} s; it is left unconfigured",
            opts.link_wait_ms / 1000
        );
    }
    let wanted = plan
        .interfaces
        .iter()
        .filter(|i| i.method != Method::Off)
        .count();
    if wanted > 0 && missing.len() == wanted {
        eprintln!(
            "no network link to configure (ip link shows what the kernel has); trying again later"
        );
        return Exit::Temporary;
    }
    let links = match nl.links() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot list links: {e}");
            return Exit::Temporary;
        }
    };
    let applied = netlink::plan_ops(&plan, &links, &found);
    for op in &applied.ops {
        println!("{op}");
    }
    let errors = netlink::execute(&mut nl, &applied.ops);
    let mut broken = false;
    for e in &errors {
        eprintln!("cannot {e}");
        broken |= fatal(&e.op);
    }
    if let Some(text) = &applied.resolv_conf {
        match write_atomic(RESOLV_CONF, text) {
            Ok(()) => println!("wrote {RESOLV_CONF}"),
            Err(e) => eprintln!("{e}"),
        }
    }
    if let Some(h) = &plan.hostname {
        set_hostname(h, "the kernel command line");
    }
    if broken {
        eprintln!("the network is not usable; trying again later");
        return Exit::Temporary;
    }
    let notify = std::env::var(NOTIFY_SOCKET).ok();
    if let Some(cmd) = client::command(client, &applied.dhcp, notify.as_deref()) {
        for w in &cmd.warnings {
            eprintln!("warning: {w}");
        }
        if let Err(e) = std::fs::create_dir_all(client::LEASE_DIR) {
            eprintln!("cannot create {}: {e}", client::LEASE_DIR);
        }
        println!(
            "{} on {}: {}",
            client,
            cmd.interfaces.join(", "),
            cmd.argv.join(" ")
        );
        let _ = std::io::stdout().flush();
        let (prog, rest) = match cmd.argv.split_first() {
            Some(p) => p,
            None => return Exit::Permanent,
        };
        let e = std::process::Command::new(prog).args(rest).exec();
        eprintln!("cannot run {prog}: {e}");
        return Exit::for_exec_errno(e.raw_os_error().unwrap_or(libc::ENOENT));
    }
    let status = summary(&plan, &found);
    match send_ready(&status) {
        Ok(true) => println!("ready: {status}"),
        Ok(false) => println!("configured: {status} (no {NOTIFY_SOCKET}, nobody to tell)"),
        Err(e) => {
            eprintln!("{e}");
            return Exit::Temporary;
        }
    }
    let _ = std::io::stdout().flush();
    // The node stays up for as long as the network is wanted; the supervisor's stop signal
    // ends it. pause(2) returns only for a caught signal, and none is caught here.
    loop {
        nix::unistd::pause();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::applets::args;

    #[test]
    fn options() {
        assert_eq!(parse(&args(&[])), Ok(Opts::default()));
        let o = parse(&args(&["--dhcp=udhcpc", "--link-wait=3"])).unwrap_or_default();
        assert_eq!(o.dhcp, Some(DhcpClient::Udhcpc));
        assert_eq!(o.link_wait_ms, 3000);
        assert!(parse(&args(&["--dhcp=dhcpcd"])).is_err_and(|e| e.contains("dhcpcd")));
        assert!(parse(&args(&["--link-wait=soon"])).is_err_and(|e| e.contains("soon")));
        assert!(parse(&args(&["-x"])).is_err_and(|e| e.contains("\"-x\"")));
    }

    #[test]
    fn the_command_line_wins_over_the_config() {
        use DhcpClient::*;
        assert_eq!(choose_client(None, None), Dhclient);
        assert_eq!(choose_client(None, Some(Udhcpc)), Udhcpc);
        assert_eq!(choose_client(Some(Dhclient), Some(Udhcpc)), Dhclient);
        assert_eq!(choose_client(Some(Udhcpc), None), Udhcpc);
    }

    #[test]
    fn only_route_failures_leave_the_network_usable() {
        let r = netlink::default_route(
            "10.0.2.2".parse().unwrap_or(std::net::IpAddr::from([0; 4])),
            None,
        );
        assert!(!fatal(&LinkOp::AddRoute(r.clone())));
        assert!(!fatal(&LinkOp::DelRoute(r)));
        assert!(fatal(&LinkOp::Up("eth0".into())));
        let a = netcfg::Cidr::parse("10.0.2.15/24").unwrap_or_else(|| panic!("cidr"));
        assert!(fatal(&LinkOp::AddAddr("eth0".into(), a)));
    }

    #[test]
    fn summary_names_interfaces_and_addresses() {
        let plan = netcfg::plan::plan("ip=10.0.2.15::10.0.2.2:255.255.255.0:keel:eth0:off");
        let mut fake = netlink::fake::FakeLinks::with_ether(&["eth0"]);
        let links = fake.links().unwrap_or_default();
        let found = netlink::resolve(&links, &plan);
        assert_eq!(summary(&plan, &found), "eth0 10.0.2.15/24");
        assert_eq!(summary(&plan, &[None]), "no interface configured");
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = std::env::temp_dir().join(format!("keel-net-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("resolv.conf");
        let p = path.to_string_lossy().into_owned();
        assert_eq!(write_atomic(&p, "nameserver 10.0.2.3\n"), Ok(()));
        assert_eq!(write_atomic(&p, "nameserver 1.1.1.1\n"), Ok(()));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap_or_default(),
            "nameserver 1.1.1.1\n"
        );
        assert!(!dir.join("resolv.conf.keel-tmp").exists());
        assert!(
            write_atomic("/nonexistent-dir/x", "y")
                .is_err_and(|e| e.contains("/nonexistent-dir/x"))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ready_goes_to_the_notify_socket() {
        let dir = std::env::temp_dir().join(format!("keel-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap_or_else(|e| panic!("bind: {e}"));
        assert_eq!(send_ready_to(&path, "eth0 10.0.2.15/24"), Ok(()));
        let mut buf = [0u8; 128];
        let n = server.recv(&mut buf).unwrap_or(0);
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=eth0 10.0.2.15/24");
        drop(server);
        let _ = std::fs::remove_file(&path);
        let e = send_ready_to(&path, "x").err().unwrap_or_default();
        assert!(e.contains("NOTIFY_SOCKET=") && e.contains("sock"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

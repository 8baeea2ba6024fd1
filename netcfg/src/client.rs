//! Which DHCP client keel's `network` service becomes, and the command line it runs.
//!
//! keel does not speak DHCP itself: for the interfaces of a plan that use DHCP, the `network`
//! service execs ISC dhclient (the default) or busybox udhcpc in the foreground, with keel's
//! `dhcp-hook` as the client's script, so the supervised process IS the DHCP client and its
//! death is the network's. This module only decides the argv; it runs nothing and reads no
//! file or environment (the caller passes the notify socket).
//!
//! # How the hook finds the supervisor
//! The hook tells the supervisor the network is ready by sending `READY=1` to
//! `NOTIFY_SOCKET`. ISC dhclient does not pass its own environment to its script: it builds
//! the script's environment from the lease, `PATH`, and the `-e VAR=value` options of its
//! command line (client/dhclient.c, `script_go`). So the socket is handed over with
//! `-e NOTIFY_SOCKET=...`. busybox udhcpc runs its script with its own environment plus the
//! lease, so there the variable is inherited as it is.
//!
//! # Choosing
//! - dhclient: every DHCPv4 interface in one process (`-4`); when the plan has no DHCPv4
//!   interface, its DHCPv6 ones (`-6`). One process cannot do both families: DHCPv6
//!   interfaces next to DHCPv4 ones are warned about and left unconfigured.
//! - udhcpc: one interface, IPv4 only; more DHCPv4 interfaces are warned about. For DHCPv6
//!   keel uses dhclient `-6` whatever was chosen, since udhcpc has no DHCPv6.

use std::fmt;

use crate::ip::Method;

/// ISC dhclient, as Debian installs it.
pub const DHCLIENT: &str = "/sbin/dhclient";
/// busybox's udhcpc applet link (busybox --list-full puts it in /sbin).
pub const UDHCPC: &str = "/sbin/udhcpc";
/// keel's hook for both clients (a link to /init).
pub const HOOK: &str = "/sbin/dhcp-hook";
/// dhclient's config in the image (`configs/etc/dhcp/dhclient.conf`).
pub const DHCLIENT_CONF: &str = "/etc/dhcp/dhclient.conf";
/// Where dhclient keeps its leases; it must exist before dhclient starts.
pub const LEASE_DIR: &str = "/var/lib/dhcp";
/// The variable a service with `ready = "notify"` gets, naming the supervisor's socket.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// The DHCP client keel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DhcpClient {
    #[default]
    Dhclient,
    Udhcpc,
}

impl DhcpClient {
    /// The names accepted by `keel.dhcp=` and `keel network --dhcp=`.
    pub const NAMES: [&'static str; 2] = ["dhclient", "udhcpc"];

    pub fn parse(name: &str) -> Option<DhcpClient> {
        match name {
            "dhclient" => Some(DhcpClient::Dhclient),
            "udhcpc" => Some(DhcpClient::Udhcpc),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DhcpClient::Dhclient => "dhclient",
            DhcpClient::Udhcpc => "udhcpc",
        }
    }
}

impl fmt::Display for DhcpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The client to exec: its argv, and what of the plan it leaves out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCmd {
    pub argv: Vec<String>,
    /// The interfaces it serves.
    pub interfaces: Vec<String>,
    /// One line per interface left unconfigured, and why.
    pub warnings: Vec<String>,
}

/// The command line of the DHCP client for `dhcp`, the links needing DHCP with their method
/// (`netlink::Applied::dhcp`), or `None` when no interface uses DHCP. `notify_socket` is the
/// service's `NOTIFY_SOCKET`, handed to the hook.
pub fn command(
    client: DhcpClient,
    dhcp: &[(String, Method)],
    notify_socket: Option<&str>,
) -> Option<ClientCmd> {
    let of = |m: Method| -> Vec<String> {
        dhcp.iter()
            .filter(|(_, x)| *x == m)
            .map(|(n, _)| n.clone())
            .collect()
    };
    let (v4, v6) = (of(Method::Dhcp), of(Method::Dhcp6));
    let mut warnings = Vec::new();
    if !v4.is_empty() {
        for n in &v6 {
            warnings.push(format!(
                "{n}: dhcp6 left unconfigured: one DHCP client process serves one address \
                 family, and DHCPv4 runs on {}",
                v4.join(", ")
            ));
        }
        match client {
            DhcpClient::Dhclient => Some(dhclient(false, v4, notify_socket, warnings)),
            DhcpClient::Udhcpc => {
                let mut v4 = v4.into_iter();
                let first = v4.next()?;
                for n in v4 {
                    warnings.push(format!(
                        "{n}: dhcp left unconfigured: udhcpc serves one interface, and runs on \
                         {first}; use keel.dhcp=dhclient for several"
                    ));
                }
                Some(udhcpc(first, warnings))
            }
        }
    } else if !v6.is_empty() {
        if client == DhcpClient::Udhcpc {
            warnings.push("udhcpc has no DHCPv6: running dhclient -6 instead".to_string());
        }
        Some(dhclient(true, v6, notify_socket, warnings))
    } else {
        None
    }
}

fn dhclient(
    v6: bool,
    interfaces: Vec<String>,
    notify_socket: Option<&str>,
    warnings: Vec<String>,
) -> ClientCmd {
    let leases = if v6 {
        "dhclient6.leases"
    } else {
        "dhclient.leases"
    };
    let mut argv: Vec<String> = [
        DHCLIENT,
        // In the foreground, so the supervised process is the client itself.
        "-d",
        if v6 { "-6" } else { "-4" },
        // No pid file: the supervisor knows the pid, and /run may hold a stale one.
        "--no-pid",
        "-sf",
        HOOK,
        "-cf",
        DHCLIENT_CONF,
        "-lf",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    argv.push(format!("{LEASE_DIR}/{leases}"));
    if let Some(s) = notify_socket {
        argv.push("-e".to_string());
        argv.push(format!("{NOTIFY_SOCKET}={s}"));
    }
    argv.extend(interfaces.iter().cloned());
    ClientCmd {
        argv,
        interfaces,
        warnings,
    }
}

fn udhcpc(iface: String, warnings: Vec<String>) -> ClientCmd {
    let argv = [
        UDHCPC,
        "-f",
        "-i",
        &iface,
        "-s",
        HOOK,
        // Classless static routes (RFC 3442) are not asked for unless named.
        "-O",
        "staticroutes",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    ClientCmd {
        argv,
        interfaces: vec![iface],
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dhcp(list: &[(&str, Method)]) -> Vec<(String, Method)> {
        list.iter().map(|(n, m)| ((*n).to_string(), *m)).collect()
    }

    #[test]
    fn no_dhcp_interface_means_no_client() {
        assert_eq!(command(DhcpClient::Dhclient, &[], Some("/s")), None);
        assert_eq!(command(DhcpClient::Udhcpc, &[], None), None);
    }

    #[test]
    fn dhclient_runs_in_the_foreground_with_keel_as_hook_and_the_socket_passed_with_e() {
        let c = command(
            DhcpClient::Dhclient,
            &dhcp(&[("eth0", Method::Dhcp)]),
            Some("/run/keel/notify/network"),
        )
        .unwrap_or_else(|| panic!("no command"));
        assert_eq!(
            c.argv.join(" "),
            "/sbin/dhclient -d -4 --no-pid -sf /sbin/dhcp-hook -cf /etc/dhcp/dhclient.conf \
             -lf /var/lib/dhcp/dhclient.leases -e NOTIFY_SOCKET=/run/keel/notify/network eth0"
        );
        assert!(c.warnings.is_empty());
        let c = command(DhcpClient::Dhclient, &dhcp(&[("eth0", Method::Dhcp)]), None)
            .unwrap_or_else(|| panic!("no command"));
        assert!(!c.argv.iter().any(|a| a == "-e"), "{:?}", c.argv);
    }

    #[test]
    fn dhclient_serves_every_v4_interface_and_warns_about_v6_beside_them() {
        let c = command(
            DhcpClient::Dhclient,
            &dhcp(&[
                ("eth0", Method::Dhcp),
                ("eth1", Method::Dhcp6),
                ("eth2", Method::Dhcp),
            ]),
            None,
        )
        .unwrap_or_else(|| panic!("no command"));
        assert_eq!(c.interfaces, ["eth0", "eth2"]);
        assert!(c.argv.ends_with(&["eth0".to_string(), "eth2".to_string()]));
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].starts_with("eth1: dhcp6 left unconfigured"));
    }

    #[test]
    fn dhcp6_alone_runs_dhclient_dash_6_even_when_udhcpc_was_chosen() {
        for client in [DhcpClient::Dhclient, DhcpClient::Udhcpc] {
            let c = command(client, &dhcp(&[("eth0", Method::Dhcp6)]), Some("/s"))
                .unwrap_or_else(|| panic!("no command"));
            assert_eq!(c.argv[0], DHCLIENT);
            assert_eq!(c.argv[2], "-6");
            assert!(
                c.argv
                    .contains(&"/var/lib/dhcp/dhclient6.leases".to_string())
            );
            assert_eq!(c.warnings.len(), usize::from(client == DhcpClient::Udhcpc));
        }
    }

    #[test]
    fn udhcpc_serves_one_interface() {
        let c = command(
            DhcpClient::Udhcpc,
            &dhcp(&[("eth0", Method::Dhcp), ("eth1", Method::Dhcp)]),
            Some("/s"),
        )
        .unwrap_or_else(|| panic!("no command"));
        assert_eq!(
            c.argv.join(" "),
            "/sbin/udhcpc -f -i eth0 -s /sbin/dhcp-hook -O staticroutes"
        );
        assert_eq!(c.interfaces, ["eth0"]);
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].contains("eth1"), "{:?}", c.warnings);
    }

    #[test]
    fn keel_dhcp_on_the_command_line() {
        let (c, w) = crate::cmdline::parse("keel.dhcp=udhcpc");
        assert_eq!((c.dhcp_client, w.len()), (Some(DhcpClient::Udhcpc), 0));
        let (c, w) = crate::cmdline::parse("keel.dhcp=udhcpc keel.dhcp=dhclient");
        assert_eq!((c.dhcp_client, w.len()), (Some(DhcpClient::Dhclient), 0));
        let (c, w) = crate::cmdline::parse("keel.dhcp=dhcpcd");
        assert_eq!(c.dhcp_client, None);
        assert_eq!(
            w.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["keel.dhcp=dhcpcd: expected keel.dhcp=dhclient or keel.dhcp=udhcpc"]
        );
        let (c, w) = crate::cmdline::parse("");
        assert_eq!((c.dhcp_client, w.len()), (None, 0));
    }

    #[test]
    fn client_names() {
        for n in DhcpClient::NAMES {
            assert_eq!(DhcpClient::parse(n).map(DhcpClient::as_str), Some(n));
        }
        assert_eq!(DhcpClient::parse("dhcpcd"), None);
        assert_eq!(DhcpClient::default(), DhcpClient::Dhclient);
    }
}

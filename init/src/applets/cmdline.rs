//! `keel cmdline [--json] ['ARGS...']`: prints the network plan a kernel command line gives,
//! without touching anything, so a command line can be checked before it is booted.
//!
//! The arguments are joined with spaces and read as one command line (quote it once, or
//! pass the words separately); with none, /proc/cmdline is read. Bad arguments are printed
//! as warnings and the exit status is still 0, as the boot would go on with the rest.
#![forbid(unsafe_code)]

use netcfg::{Method, cmdline, plan};

use crate::applets::network::read_cmdline;
use crate::exit::Exit;

const HELP: &str = "\
usage: keel cmdline [--json] ['ARGS...']
prints the network plan of a kernel command line (ip=, nameserver=, rd.route=, ifname=,
hostname=, keel.dhcp=); without ARGS, of /proc/cmdline. Warnings are printed; exit 0.
";

/// The text `keel cmdline` prints for the command line `text`.
pub fn render(text: &str, json: bool) -> String {
    let (c, warnings) = cmdline::parse(text);
    let p = plan::from_cmdline(&c, warnings.iter().map(ToString::to_string).collect());
    if json {
        return format!("{}\n", p.to_json());
    }
    let mut out = p.to_string();
    if p.interfaces
        .iter()
        .any(|i| matches!(i.method, Method::Dhcp | Method::Dhcp6))
    {
        let client = c.dhcp_client.unwrap_or_default();
        out.push_str(&format!("dhcp client {client}\n"));
    }
    out
}

/// Runs `keel cmdline`.
pub fn main(args: &[String]) -> Exit {
    let mut json = false;
    let mut words: Vec<&str> = Vec::new();
    for a in args {
        match a.as_str() {
            "--json" => json = true,
            "-h" | "--help" => {
                print!("{HELP}");
                return Exit::Ok;
            }
            w => words.push(w),
        }
    }
    let text = if words.is_empty() {
        match read_cmdline() {
            Ok(t) => t,
            Err(e) => {
                eprintln!("keel cmdline: {e}; pass the command line as arguments instead");
                return Exit::Temporary;
            }
        }
    } else {
        words.join(" ")
    };
    print!("{}", render(&text, json));
    Exit::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_plan_in_text() {
        let out = render(
            "console=ttyS0 ip=10.0.2.15::10.0.2.2:255.255.255.0:keel:eth0:off nameserver=10.0.2.3",
            false,
        );
        assert_eq!(
            out,
            "interface eth0: static 10.0.2.15/24 gateway 10.0.2.2\nhostname keel\nnameserver 10.0.2.3\n"
        );
    }

    #[test]
    fn no_ip_is_dhcp_on_the_first_ethernet_with_the_client_named() {
        assert_eq!(
            render("console=ttyS0 keel.dhcp=udhcpc", false),
            "interface (first ethernet): dhcp\ndhcp client udhcpc\n"
        );
        assert_eq!(
            render("", false),
            "interface (first ethernet): dhcp\ndhcp client dhclient\n"
        );
    }

    #[test]
    fn warnings_are_printed_and_json_is_one_object() {
        let out = render("ip=10.0.0.300", false);
        assert!(out.contains("warning: ip=10.0.0.300"), "{out}");
        let out = render("ip=10.0.0.300", true);
        assert!(
            out.starts_with("{\"interfaces\":[") && out.ends_with("}\n"),
            "{out}"
        );
        assert!(out.contains("\"warnings\":[\"ip=10.0.0.300"), "{out}");
    }
}

//! Renders the `[firewall]` config to one nftables ruleset, applied atomically with `nft -f`.
//!
//! The text replaces keel's own table, `inet keel`, in one transaction and touches no other
//! table: it first declares the table (a no-op when it exists, so the next line cannot
//! fail on a first boot), deletes it, and then defines it whole. `nft -f` commits all three
//! or nothing, so a machine never runs with half a ruleset, and a ruleset that fails to load
//! leaves the previous one (or, at boot, none) in place; the caller must then keep what needs
//! the firewall stopped. Tables that someone else added with `nft` are left alone, which
//! `flush ruleset` would not do.
//!
//! This module only builds text: it runs nothing, reads no file and cannot fail. Every value
//! it prints was validated by `appliance::firewall`, so the output is deterministic
//! and always a valid ruleset (the tests check each with `nft -c -f`). See
//! `docs/firewall.md` for the rules and why each built-in one is there.

use appliance::{Allow, Cidr, Firewall, Forward, Protocol};
use std::fmt::Write as _;

/// The family and name of keel's table: `nft list table inet keel` shows it.
pub const TABLE: &str = "inet keel";

/// ICMP (IPv4) types accepted from anywhere: the errors TCP and path MTU discovery need.
/// Echo requests are added when `ping` is on; redirects and the rest stay dropped.
pub const ICMP_TYPES: &[&str] = &[
    "destination-unreachable",
    "time-exceeded",
    "parameter-problem",
];

/// ICMPv6 types accepted from anywhere (RFC 4890, section 4.4.1, for a host): the errors,
/// including packet-too-big without which IPv6 path MTU discovery breaks, router and
/// neighbour discovery without which IPv6 does not work at all, and multicast listener
/// discovery. The kernel itself drops neighbour discovery whose hop limit is not 255.
pub const ICMPV6_TYPES: &[&str] = &[
    "destination-unreachable",
    "packet-too-big",
    "time-exceeded",
    "parameter-problem",
    "nd-router-advert",
    "nd-neighbor-solicit",
    "nd-neighbor-advert",
    "mld-listener-query",
    "mld-listener-report",
    "mld-listener-done",
    "mld2-listener-report",
];

/// The nftables ruleset for `fw`, ready for `nft -f`. Deterministic: the same config gives
/// the same bytes.
pub fn render(fw: &Firewall) -> String {
    let mut out = String::with_capacity(1024 + 96 * fw.allow.len());
    out.push_str(
        "# keel's firewall, rendered from [firewall] in the appliance config.\n\
         # One transaction: declaring the table first makes the delete work on a first load.\n",
    );
    let _ = writeln!(out, "table {TABLE} {{}}");
    let _ = writeln!(out, "delete table {TABLE}");
    let _ = writeln!(out, "table {TABLE} {{");

    out.push_str("\tchain input {\n");
    out.push_str("\t\ttype filter hook input priority 0; policy drop;\n");
    out.push_str(
        "\t\tct state established,related accept comment \"replies and related errors\"\n",
    );
    out.push_str("\t\tct state invalid drop comment \"invalid\"\n");
    out.push_str("\t\tiif \"lo\" accept comment \"loopback\"\n");
    let _ = writeln!(
        out,
        "\t\ticmp type {{ {} }} accept comment \"icmp errors\"",
        ICMP_TYPES.join(", ")
    );
    let _ = writeln!(
        out,
        "\t\ticmpv6 type {{ {} }} accept comment \"icmpv6 errors, neighbour discovery\"",
        ICMPV6_TYPES.join(", ")
    );
    if fw.ping {
        out.push_str("\t\ticmp type echo-request accept comment \"ping\"\n");
        out.push_str("\t\ticmpv6 type echo-request accept comment \"ping\"\n");
    }
    // DHCPv6 answers come from a link-local server or relay to the client's link-local
    // address, not from where the multicast solicit went, so conntrack does not see a reply.
    out.push_str(
        "\t\tip6 saddr fe80::/10 udp sport 547 udp dport 546 accept comment \"dhcpv6 client\"\n",
    );
    for (i, rule) in fw.allow.iter().enumerate() {
        allow(&mut out, i + 1, rule);
    }
    out.push_str("\t\tcounter comment \"dropped by policy\"\n");
    out.push_str("\t}\n\n");

    out.push_str("\tchain forward {\n");
    out.push_str("\t\ttype filter hook forward priority 0; policy drop;\n");
    match fw.forward {
        Forward::Drop => out.push_str("\t\tcounter comment \"dropped by policy\"\n"),
        Forward::Reject => out.push_str(
            "\t\tcounter reject with icmpx admin-prohibited comment \"forward = reject\"\n",
        ),
    }
    out.push_str("\t}\n\n");

    out.push_str("\tchain output {\n");
    out.push_str("\t\ttype filter hook output priority 0; policy accept;\n");
    out.push_str("\t}\n");
    out.push_str("}\n");
    out
}

/// The comment that ties a rendered rule to the config: `allow N` (counting from 1 in the
/// order of the file), then the rule's own comment.
pub fn rule_comment(n: usize, rule: &Allow) -> String {
    match &rule.comment {
        Some(c) => format!("allow {n}: {c}"),
        None => format!("allow {n}"),
    }
}

/// The match on the source address, which also limits the rule to one address family.
fn source(c: &Cidr) -> String {
    let family = if c.is_ipv4() { "ip" } else { "ip6" };
    let max = if c.is_ipv4() { 32 } else { 128 };
    if c.prefix == max {
        format!("{family} saddr {} ", c.addr)
    } else {
        format!("{family} saddr {c} ")
    }
}

fn allow(out: &mut String, n: usize, rule: &Allow) {
    let from = rule.source.as_ref().map(source).unwrap_or_default();
    let comment = rule_comment(n, rule);
    match (rule.protocol, rule.ports) {
        (Protocol::Tcp | Protocol::Udp, Some(ports)) => {
            let proto = rule.protocol.as_str();
            let _ = writeln!(
                out,
                "\t\t{from}{proto} dport {ports} accept comment \"{comment}\""
            );
        }
        // Validation gives TCP and UDP rules ports; without any the rule would allow every
        // port, so it is left out rather than guessed.
        (Protocol::Tcp | Protocol::Udp, None) => {}
        (Protocol::Icmp, _) => {
            let v4 = rule.source.as_ref().is_none_or(Cidr::is_ipv4);
            let v6 = rule.source.as_ref().is_none_or(|c| !c.is_ipv4());
            if v4 {
                let _ = writeln!(
                    out,
                    "\t\t{from}icmp type echo-request accept comment \"{comment}\""
                );
            }
            if v6 {
                let _ = writeln!(
                    out,
                    "\t\t{from}icmpv6 type echo-request accept comment \"{comment}\""
                );
            }
        }
    }
}

/// Finds which part of the config the line of an `nft` error came from.
///
/// `nft` reports errors as `FILE:LINE:COLUMNS: Error: ...`. Given the ruleset it was fed and
/// its stderr, this returns, for each distinct line it names, the rule's comment, e.g.
/// `allow 2: web` (the config rule), or `built-in rule "loopback"`, so the console can say
/// which rule to fix. Lines that name nothing known are skipped.
pub fn blame(ruleset: &str, nft_stderr: &str) -> Vec<String> {
    let lines: Vec<&str> = ruleset.lines().collect();
    let mut found: Vec<String> = Vec::new();
    for err in nft_stderr.lines() {
        let Some(n) = error_line(err) else { continue };
        let Some(text) = n.checked_sub(1).and_then(|i| lines.get(i)) else {
            continue;
        };
        let what = match comment_of(text) {
            Some(c) if c.starts_with("allow ") => format!("[firewall] {c}"),
            Some(c) => format!("built-in rule \"{c}\""),
            None => format!("line {n}: {}", text.trim()),
        };
        if !found.contains(&what) {
            found.push(what);
        }
    }
    found
}

/// The line number in `PATH:LINE:COLS: Error: ...`, the form nft uses for its messages.
fn error_line(err: &str) -> Option<usize> {
    let (head, _) = err.split_once(": Error:")?;
    let mut parts = head.rsplitn(3, ':');
    let _cols = parts.next()?;
    parts.next()?.parse().ok()
}

/// The text of the `comment "..."` at the end of a rendered rule.
fn comment_of(line: &str) -> Option<&str> {
    let (_, rest) = line.rsplit_once("comment \"")?;
    rest.strip_suffix('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_are_read_from_nft_messages() {
        assert_eq!(
            error_line("/run/keel/firewall.nft:14:3-20: Error: Could not process rule"),
            Some(14)
        );
        assert_eq!(error_line("-:2:1-5: Error: syntax error"), Some(2));
        assert_eq!(error_line("\t\ttcp dport 2222 accept"), None);
        assert_eq!(error_line("          ^^^^"), None);
    }

    #[test]
    fn comments_are_read_back() {
        assert_eq!(
            comment_of("\t\ttcp dport 1 accept comment \"allow 1: ssh\""),
            Some("allow 1: ssh")
        );
        assert_eq!(comment_of("\t}"), None);
    }
}

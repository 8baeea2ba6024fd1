//! `keel` when it is not PID 1: `keel check FILE`, `keel --version`, `keel --help`.
//!
//! `keel check` validates an appliance config without booting: every diagnostic is
//! printed as `file:line:col: message`, and the exit code says whether it is usable.
#![forbid(unsafe_code)]

use crate::boot::VERSION;
use crate::exit::Exit;

const HELP: &str = "\
usage: keel check FILE   validate an appliance config (exit 0 ok, 1 errors found)
       keel cmdline [--json] ['ARGS...']   the network plan of a kernel command line
       keel network [--dhcp=dhclient|udhcpc]   configure the network (the network service)
       keel firewall --print|--apply [CONFIG]  show or load the [firewall] ruleset
       keel supervise --config FILE [--socket PATH]   run a config's services on a host
       keel ctl [--socket PATH] COMMAND   the control client (keelctl; keel ctl --help)
       keel notify READY=1 [STATUS=...]   sd_notify for scripts of ready = \"notify\" services
       keel --version
       keel --help
keel is PID 1 when the kernel starts it as /init; as poweroff, reboot or halt it asks PID 1
to stop the machine. Exit codes: 0 ok, 1 check failed, 100 permanent error (usage, not
permitted), 111 temporary error (a system call failed).
";

/// Checks the config text; returns the lines to print and whether it is valid. Warnings
/// (`file:line:col: warning: ...`) come before the `ok` line and do not make it invalid.
pub fn check_text(text: &str, path: &str) -> (Vec<String>, bool) {
    match supervisor::config::parse(text, path) {
        Ok(cfg) => {
            let mut lines = warnings(&cfg, text, path);
            lines.push(format!("{path}: ok"));
            (lines, true)
        }
        Err(diags) => (diags.iter().map(ToString::to_string).collect(), false),
    }
}

/// Checks config bytes: text that is not UTF-8 is an error at the first bad byte.
pub fn check_bytes(bytes: &[u8], path: &str) -> (Vec<String>, bool) {
    match std::str::from_utf8(bytes) {
        Ok(text) => check_text(text, path),
        Err(e) => {
            let good = bytes.get(..e.valid_up_to()).unwrap_or_default();
            let line = 1 + good.iter().filter(|&&b| b == b'\n').count();
            let start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let col = 1 + String::from_utf8_lossy(&good[start..]).chars().count();
            let byte = bytes.get(e.valid_up_to()).copied().unwrap_or(0);
            (
                vec![format!(
                    "{path}:{line}:{col}: the config is not UTF-8 text (byte 0x{byte:02x} at offset {}); save it as UTF-8",
                    e.valid_up_to()
                )],
                false,
            )
        }
    }
}

/// The warnings of a valid config: a service that opens a port (`ready = "tcp:PORT"`)
/// before the firewall is loaded. The firewall service is the one that runs
/// `keel firewall --apply` (or is named `firewall`); a service that does not need it, even
/// through others, may start with its port open to everyone.
fn warnings(cfg: &supervisor::config::ApplianceConfig, text: &str, path: &str) -> Vec<String> {
    use supervisor::config::Ready;
    let (graph, _) = supervisor::graph::Graph::build(&cfg.services);
    let is_firewall = |s: &supervisor::config::ServiceConfig| {
        s.name == "firewall"
            || (s.exec.first().is_some_and(|p| p.ends_with("/keel"))
                && s.exec.get(1).is_some_and(|a| a == "firewall"))
    };
    let firewalls: Vec<usize> = (0..cfg.services.len())
        .filter(|&i| is_firewall(&cfg.services[i]))
        .collect();
    let mut out = Vec::new();
    for (i, s) in cfg.services.iter().enumerate() {
        let Ready::Tcp(port) = s.ready else { continue };
        if is_firewall(s) {
            continue;
        }
        let needs = graph.requirements(supervisor::SvcId(i));
        if firewalls
            .iter()
            .any(|f| needs.contains(&supervisor::SvcId(*f)))
        {
            continue;
        }
        let hint = match firewalls.first() {
            Some(&f) => format!(
                "add \"{}\" to its needs so the port opens behind the firewall",
                cfg.services[f].name
            ),
            None => "no service loads the firewall (`keel firewall --apply`); add one and need it"
                .into(),
        };
        let (line, col) = ready_position(text, &s.name);
        out.push(format!(
            "{path}:{line}:{col}: warning: [services.{}] has ready = \"tcp:{port}\" but does not need the firewall; {hint}",
            s.name
        ));
    }
    out
}

/// Where `ready` of `[services.NAME]` is written (the table header if not found).
fn ready_position(text: &str, name: &str) -> (usize, usize) {
    let headers = [
        format!("[services.{name}]"),
        format!("[services.\"{name}\"]"),
    ];
    let mut header = None;
    for (n, l) in text.lines().enumerate() {
        let t = l.trim();
        if headers.iter().any(|h| t.starts_with(h.as_str())) {
            header = Some(n + 1);
        } else if header.is_some() && t.starts_with('[') {
            break;
        } else if header.is_some() && t.starts_with("ready") {
            let col = 1 + l.len() - l.trim_start().len();
            return (n + 1, col);
        }
    }
    (header.unwrap_or(1), 1)
}

fn check(path: &str) -> Exit {
    let bytes = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("keel check: cannot read {path}: {e}");
            return if e.kind() == std::io::ErrorKind::NotFound {
                Exit::Permanent
            } else {
                Exit::Temporary
            };
        }
    };
    let (lines, ok) = check_bytes(&bytes, path);
    for l in lines {
        if ok && !l.contains(": warning: ") {
            println!("{l}");
        } else {
            eprintln!("{l}");
        }
    }
    if ok { Exit::Ok } else { Exit::Failed }
}

/// Runs `keel` with `args` (without argv[0]).
pub fn main(args: &[String]) -> Exit {
    let rest = args.get(1..).unwrap_or(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["--version" | "-V"] => {
            println!("keel {VERSION}");
            Exit::Ok
        }
        ["--help" | "-h"] => {
            print!("{HELP}");
            Exit::Ok
        }
        ["check", path] => check(path),
        ["cmdline", ..] => super::cmdline::main(rest),
        ["network", ..] => super::network::main(rest),
        ["firewall", ..] => super::firewall::main(rest),
        ["check", ..] => {
            eprintln!("keel check: expected exactly one FILE\n{HELP}");
            Exit::Permanent
        }
        [] => {
            eprintln!(
                "keel: not PID 1 (pid {}), so nothing to boot\n{HELP}",
                std::process::id()
            );
            Exit::Permanent
        }
        [other, ..] => {
            eprintln!("keel: unknown command {other:?}\n{HELP}");
            Exit::Permanent
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_reports_file_line_col() {
        let (lines, ok) = check_text("[system]\nhostnme = \"x\"\n", "a.toml");
        assert!(!ok);
        assert!(lines[0].starts_with("a.toml:2:1: "), "{lines:?}");
        let (lines, ok) = check_text("[system]\nhostname = \"x\"\n", "a.toml");
        assert!(ok);
        assert_eq!(lines, ["a.toml: ok"]);
    }

    #[test]
    fn a_config_that_is_not_utf8_is_an_error_at_its_first_bad_byte() {
        let (lines, ok) = check_bytes(b"[system]\nhostname = \"k\xffl\"\n", "a.toml");
        assert!(!ok);
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with("a.toml:2:14: the config is not UTF-8 text (byte 0xff"),
            "{lines:?}"
        );
    }

    #[test]
    fn a_tcp_service_that_does_not_need_the_firewall_is_a_warning() {
        let text = "\
[services.firewall]
exec = [\"/sbin/keel\", \"firewall\", \"--apply\"]
kind = \"oneshot\"

[services.net]
exec = [\"/bin/true\"]
needs = [\"firewall\"]

[services.web]
exec = [\"/bin/web\"]
ready = \"tcp:8080\"

[services.safe]
exec = [\"/bin/safe\"]
needs = [\"net\"]
ready = \"tcp:8081\"
";
        let (lines, ok) = check_text(text, "a.toml");
        assert!(ok, "{lines:?}");
        assert_eq!(
            lines,
            [
                "a.toml:11:1: warning: [services.web] has ready = \"tcp:8080\" but does not need the firewall; add \"firewall\" to its needs so the port opens behind the firewall",
                "a.toml: ok",
            ]
        );
    }

    #[test]
    fn shipped_config_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/appliance.toml");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        assert!(!text.is_empty(), "cannot read {path}");
        let (lines, ok) = check_text(&text, path);
        assert!(ok, "{lines:?}");
        // And it has nothing to warn about.
        assert_eq!(lines.len(), 1, "{lines:?}");
    }
}

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

/// Checks the config text; returns the lines to print and whether it is valid.
pub fn check_text(text: &str, path: &str) -> (Vec<String>, bool) {
    match supervisor::config::parse(text, path) {
        Ok(_) => (vec![format!("{path}: ok")], true),
        Err(diags) => (diags.iter().map(ToString::to_string).collect(), false),
    }
}

fn check(path: &str) -> Exit {
    let text = match std::fs::read_to_string(path) {
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
    let (lines, ok) = check_text(&text, path);
    for l in lines {
        if ok {
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
    fn shipped_config_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/appliance.toml");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        assert!(!text.is_empty(), "cannot read {path}");
        let (lines, ok) = check_text(&text, path);
        assert!(ok, "{lines:?}");
    }
}

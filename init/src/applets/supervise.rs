//! `keel supervise --config FILE [--socket PATH]`: keel's supervisor as an ordinary
//! process, for hosts, tests and benchmarks.
//!
//! The same loop as PID 1 (`run/`, `Host::Supervise`) with none of the machine: no mounts,
//! no consoles, no emergency shell, no reboot. keel becomes a child subreaper so orphans
//! of its services are re-parented to it and reaped. Logs go to stderr. SIGTERM, SIGINT
//! and SIGHUP (or `keelctl poweroff|reboot`) stop every service in reverse dependency
//! order; the orphans they left get SIGTERM, then SIGKILL after 2 s; then it exits 0.
#![forbid(unsafe_code)]

use crate::exit::Exit;
use crate::run::{CONTROL_PATH, Driver};

const USAGE: &str = "\
usage: keel supervise --config FILE [--socket PATH] [--no-cgroups]
runs the services of an appliance config under keel's supervisor, as an ordinary process
  --config FILE   the appliance config ([services.*] tables; see docs/services.md)
  --socket PATH   the control socket for keelctl --socket PATH [/run/keel/control];
                  notify sockets go to notify/ next to it
  --no-cgroups    no service groups even as root: a stop signals the main process only
SIGTERM or SIGINT stops every service in reverse dependency order; processes the
services left behind get SIGTERM (SIGKILL after 2 s); then keel exits 0.
";

/// How long orphans left by services get between SIGTERM and SIGKILL when keel exits.
const ORPHAN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Parsed options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opts {
    pub config: String,
    pub socket: String,
    /// Put services in cgroups when the host allows it (`--no-cgroups` turns it off).
    pub cgroups: bool,
}

/// Parses the options; every mistake names the option.
pub fn parse(args: &[String]) -> Result<Opts, String> {
    let mut config = None;
    let mut socket = None;
    let mut cgroups = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--no-cgroups" {
            cgroups = false;
            continue;
        }
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let slot = match key {
            "--config" | "-c" => &mut config,
            "--socket" | "-s" => &mut socket,
            other => return Err(format!("unknown option {other:?}")),
        };
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .ok_or_else(|| format!("{key} needs a value"))?,
        };
        *slot = Some(value);
    }
    Ok(Opts {
        config: config.ok_or("--config FILE is required")?,
        socket: socket.unwrap_or_else(|| CONTROL_PATH.to_string()),
        cgroups,
    })
}

/// Runs the applet.
pub fn main(args: &[String]) -> Exit {
    let opts = match super::options("keel supervise", args, USAGE, parse) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let text = match std::fs::read_to_string(&opts.config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("keel supervise: cannot read {}: {e}", opts.config);
            return Exit::Permanent;
        }
    };
    let mut cfg = match appliance::parse(&text, &opts.config) {
        Ok(c) => c,
        Err(diags) => {
            for d in diags {
                eprintln!("{d}");
            }
            eprintln!(
                "keel supervise: {} is not a valid config; `keel check {}` shows the same",
                opts.config, opts.config
            );
            return Exit::Permanent;
        }
    };
    // A host has no consoles of keel's: per-console services (getty) do not run here.
    cfg.expand_consoles(&[]);
    if let Err(e) = crate::sys::become_subreaper() {
        eprintln!(
            "keel supervise: cannot become a child subreaper: {e}; orphans of services will not be reaped by keel"
        );
    }
    let mut driver = match Driver::supervise(&cfg, &opts.socket, opts.cgroups) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("keel supervise: {e}");
            return Exit::Temporary;
        }
    };
    while !driver.finished() {
        driver.step();
    }
    driver.end_orphans(ORPHAN_GRACE);
    driver.cleanup();
    Exit::Ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::applets::args;

    #[test]
    fn options() {
        assert_eq!(
            parse(&args(&["--config", "a.toml"])),
            Ok(Opts {
                config: "a.toml".into(),
                socket: CONTROL_PATH.into(),
                cgroups: true,
            })
        );
        assert_eq!(
            parse(&args(&["--socket=/tmp/s", "-c", "b.toml", "--no-cgroups"])),
            Ok(Opts {
                config: "b.toml".into(),
                socket: "/tmp/s".into(),
                cgroups: false,
            })
        );
        assert!(parse(&args(&[])).unwrap_err().contains("--config"));
        assert!(
            parse(&args(&["--config"]))
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(parse(&args(&["--x"])).unwrap_err().contains("\"--x\""));
    }
}

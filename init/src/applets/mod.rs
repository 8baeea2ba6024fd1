//! keel's multi-call applets: the program named by the basename of argv[0].
//!
//! Each applet is a small program in s6's sense: it parses its arguments, does one thing,
//! and returns an `Exit`. PID 1 is not an applet (see `pid1.rs`); `dispatch` is only
//! reached when keel is not PID 1, or under a name that is not init's.
#![forbid(unsafe_code)]

pub mod cmdline;
pub mod dhcp_hook;
pub mod emergency_wait;
pub mod entropy;
pub mod firewall;
pub mod getty;
pub mod hostkeys;
pub mod json;
pub mod keel;
pub mod keelctl;
pub mod metadata;
pub mod network;
pub mod notify;
pub mod power;
pub mod sshd;
pub mod state;
pub mod supervise;

use crate::exit::Exit;
use crate::sys::fs;
use crate::{consoles, log};

/// Moves the log of a oneshot applet that boots with the machine (entropy, state, host
/// keys, metadata) to every active console and /dev/kmsg, as PID 1's log.
pub fn log_to_consoles() {
    let active = fs::read_to_string(consoles::ACTIVE_PATH).unwrap_or_default();
    log::use_consoles_waiting(&consoles::parse_active(&active).all);
}

/// The start of an applet with options: `-h`/`--help` prints `usage` and ends with
/// `Exit::Ok`; an option `parse` refuses is named on stderr, after `who:`, with the usage,
/// and ends with `Exit::Permanent`. Otherwise the options.
pub fn options<T>(
    who: &str,
    args: &[String],
    usage: &str,
    parse: impl FnOnce(&[String]) -> Result<T, String>,
) -> Result<T, Exit> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{usage}");
        return Err(Exit::Ok);
    }
    parse(args).map_err(|e| {
        eprint!("{who}: {e}\n{usage}");
        Exit::Permanent
    })
}

/// `&["a", "b"]` as owned arguments, for the applets' tests.
#[cfg(test)]
pub fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// For a unit test whose prerequisite is missing: under CI=true the test fails (a test
/// that cannot run must not count as passed); elsewhere it says so and the caller returns.
#[cfg(test)]
pub fn not_run(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true and this test cannot run: {why}"
    );
    eprintln!("NOT RUN: {why} (under CI=true this test fails)");
}

/// What argv[0] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applet {
    /// `init` or `keel`: PID 1 when pid is 1, otherwise the `keel` tool.
    Keel,
    Power(supervisor::PowerKind),
    Keelctl,
    DhcpHook,
}

/// Picks the applet from argv[0]'s basename; unknown names are `keel`.
pub fn applet_for(argv0: &str) -> Applet {
    use supervisor::PowerKind;
    let base = argv0.rsplit('/').next().unwrap_or(argv0);
    match base {
        "poweroff" => Applet::Power(PowerKind::PowerOff),
        "reboot" => Applet::Power(PowerKind::Reboot),
        "halt" => Applet::Power(PowerKind::Halt),
        "keelctl" => Applet::Keelctl,
        "dhcp-hook" => Applet::DhcpHook,
        _ => Applet::Keel,
    }
}

/// Runs the applet for `args` (args[0] is argv[0]) when keel is not PID 1.
pub fn dispatch(args: &[String]) -> Exit {
    let argv0 = args.first().map_or("keel", String::as_str);
    let rest = args.get(1..).unwrap_or(&[]);
    match applet_for(argv0) {
        Applet::Keel => supervisor_subcommand(rest)
            .or_else(|| ssh_subcommand(rest))
            .unwrap_or_else(|| keel::main(rest)),
        Applet::Power(kind) => power::main(argv0, kind, rest),
        Applet::Keelctl => keelctl::main(rest),
        Applet::DhcpHook => dhcp_hook::main(rest),
    }
}

/// `keel supervise|ctl|notify ...`: the supervisor on a host, its client and sd_notify.
fn supervisor_subcommand(args: &[String]) -> Option<Exit> {
    let (cmd, rest) = args.split_first()?;
    Some(match cmd.as_str() {
        "supervise" => supervise::main(rest),
        "ctl" => keelctl::main(rest),
        "notify" => notify::main(rest),
        _ => return None,
    })
}

/// `keel state|entropy|hostkeys|sshd|getty ...`: the ssh and login services' programs.
fn ssh_subcommand(args: &[String]) -> Option<Exit> {
    let (cmd, rest) = args.split_first()?;
    Some(match cmd.as_str() {
        "state" => state::main(rest),
        "entropy" => entropy::main(rest),
        "hostkeys" => hostkeys::main(rest),
        "metadata" => metadata::main(rest),
        "sshd" => sshd::main(rest),
        "getty" => getty::main(rest),
        "emergency-wait" => emergency_wait::main(rest),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use supervisor::PowerKind;

    #[test]
    fn dispatch_by_basename() {
        assert_eq!(applet_for("/init"), Applet::Keel);
        assert_eq!(applet_for("/sbin/keel"), Applet::Keel);
        assert_eq!(applet_for("keel"), Applet::Keel);
        assert_eq!(
            applet_for("/sbin/poweroff"),
            Applet::Power(PowerKind::PowerOff)
        );
        assert_eq!(applet_for("reboot"), Applet::Power(PowerKind::Reboot));
        assert_eq!(applet_for("/sbin/halt"), Applet::Power(PowerKind::Halt));
        assert_eq!(applet_for("/sbin/keelctl"), Applet::Keelctl);
        assert_eq!(applet_for("/sbin/dhcp-hook"), Applet::DhcpHook);
        assert_eq!(applet_for("something-else"), Applet::Keel);
    }
}

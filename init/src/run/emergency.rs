//! The emergency room: the shells keel puts on the console (the spawn of a console,
//! gate or emergency shell) and the summary lines printed before the emergency shell.
//! Everything here but `spawn_shell` and `summary` (which reads the core) is a pure
//! function.
#![forbid(unsafe_code)]

use super::host::Host;
use crate::consoles::term_for;
use crate::lifecycle::{self, Cause, ShellKind};
use crate::log::Level;
use crate::sys::spawn::{self, SpawnSpec};
use supervisor::core::Supervisor;

/// The shell keel starts on the console for an emergency (busybox ash).
pub const SHELL: &str = "/bin/sh";
/// How many of the failed service's last log lines the emergency summary shows.
pub const SUMMARY_LINES: usize = 10;
/// busybox sulogin, which asks for root's password before the emergency shell.
pub const SULOGIN: &str = "/sbin/sulogin";
/// Where root's password hash is looked for.
pub const SHADOW: &str = "/etc/shadow";

/// The spawn of a console or emergency shell on `tty` (a /dev path): its own session with
/// the tty as controlling terminal, so job control works.
pub fn shell_spec(kind: ShellKind, tty: &str) -> SpawnSpec {
    shell_spec_with(kind, tty, false)
}

/// As `shell_spec`; with `password`, the emergency shell is busybox sulogin, which asks
/// for root's password and then runs `$SUSHELL` as a login shell.
pub fn shell_spec_with(kind: ShellKind, tty: &str, password: bool) -> SpawnSpec {
    let name = tty.strip_prefix("/dev/").unwrap_or(tty);
    let mut env = vec![
        "HOME=/root".to_string(),
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        format!("TERM={}", term_for(name)),
        format!("SHELL={SHELL}"),
        "USER=root".to_string(),
        "LOGNAME=root".to_string(),
    ];
    if kind != ShellKind::Console {
        env.push("KEEL_EMERGENCY=1".to_string());
        // The prompt says where the person is, so nobody takes it for a normal boot.
        env.push("PS1=(keel emergency) \\w # ".to_string());
    }
    let argv = match kind {
        ShellKind::Gate { secs } => vec![
            "/init".to_string(),
            "emergency-wait".to_string(),
            secs.to_string(),
        ],
        ShellKind::Emergency if password => {
            env.push(format!("SUSHELL={SHELL}"));
            vec![SULOGIN.to_string()]
        }
        ShellKind::Emergency | ShellKind::Console => vec![SHELL.to_string(), "-l".to_string()],
    };
    SpawnSpec {
        tty: Some(tty.to_string()),
        ..SpawnSpec::new(argv, env)
    }
}

/// What the person at the emergency shell is told about root's password.
pub fn password_note(password: bool) -> &'static str {
    if password {
        "root has a password: give it to sulogin for the emergency shell (Ctrl-D leaves it)"
    } else {
        "no root password is set: the emergency shell opens without one"
    }
}

/// Carries out `SpawnShell`: the shell of `kind` on `tty` (behind sulogin when root has a
/// password); the event says whether it started.
pub fn spawn_shell(kind: ShellKind, tty: &str, host: Host) -> lifecycle::Event {
    let password = kind == ShellKind::Emergency
        && crate::sys::fs::read_to_string(SHADOW).is_ok_and(|t| lifecycle::root_has_password(&t));
    if kind == ShellKind::Emergency {
        host.log(Level::Info, password_note(password));
    }
    match spawn::spawn(&shell_spec_with(kind, tty, password)) {
        Ok(pid) => lifecycle::Event::Spawned { pid },
        Err(e) => lifecycle::Event::SpawnFailed {
            error: e.to_string(),
        },
    }
}

/// The emergency summary: the failed service's last log lines (`tail`: its name and at
/// most [`SUMMARY_LINES`] lines, when the cause is a service the supervisor knows), and
/// what happens when the shell exits.
pub fn summary_lines(cause: &Cause, tail: Option<(&str, &[String])>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((name, tail)) = tail {
        if tail.is_empty() {
            out.push(format!("{name} wrote nothing to its log"));
        } else {
            out.push(format!("the last {} lines of {name}'s log:", tail.len()));
            out.extend(tail.iter().map(|line| format!("  {name}| {line}")));
        }
    }
    let after = match cause {
        Cause::Requested => "when the shell exits, the boot goes on",
        Cause::Config => {
            "fix the config in the shell: when it exits, keel reads it again and goes on if it is valid, else reboots"
        }
        Cause::Service(_) => {
            "when the shell exits, keel starts the service again (and reboots if it gives up again without a shell)"
        }
        Cause::Panic => "when the shell exits, the console comes back and keel goes on",
        Cause::Boot => "when the shell exits, the machine reboots",
    };
    out.push(after.to_string());
    out
}

/// The summary for `cause`, with the failed service's log tail from `sup`.
pub fn summary(cause: &Cause, sup: Option<&Supervisor>) -> Vec<String> {
    let tail = match (cause, sup) {
        (Cause::Service(name), Some(sup)) => sup
            .find(name)
            .map(|svc| (name.as_str(), sup.log_tail(svc, SUMMARY_LINES))),
        _ => None,
    };
    summary_lines(cause, tail.as_ref().map(|(n, t)| (*n, t.as_slice())))
}

/// How keel goes on when the emergency shell exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// No services ran (the config did not load): read it again and start them.
    Reload,
    /// Start these again: the console services stopped for the shell, and the given-up
    /// service (a manual start forgets its failures).
    Start(Vec<String>),
}

/// How to go on after the emergency shell for `cause`, with `running` services whose
/// `tty_holders` gave up the console; Err says why keel cannot.
pub fn resume(cause: &Cause, running: bool, tty_holders: Vec<String>) -> Result<Resume, String> {
    match cause {
        Cause::Boot => Err("the boot failed in a step keel cannot redo".into()),
        Cause::Requested | Cause::Config if !running => Ok(Resume::Reload),
        Cause::Requested | Cause::Config | Cause::Panic | Cause::Service(_) => {
            let mut names = tty_holders;
            if let Cause::Service(n) = cause {
                names.push(n.clone());
            }
            Ok(Resume::Start(names))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_has_its_own_session_on_the_tty() {
        let s = shell_spec(ShellKind::Console, "/dev/ttyS0");
        assert_eq!(s.argv, ["/bin/sh", "-l"]);
        assert!(s.setsid);
        assert_eq!(s.tty.as_deref(), Some("/dev/ttyS0"));
        assert!(s.env.contains(&"TERM=vt100".to_string()));
        assert!(!s.env.iter().any(|e| e.starts_with("KEEL_EMERGENCY")));
        let e = shell_spec(ShellKind::Emergency, "/dev/tty0");
        assert!(e.env.contains(&"TERM=linux".to_string()));
        assert!(e.env.contains(&"KEEL_EMERGENCY=1".to_string()));
        assert!(e.env.iter().any(|v| v.starts_with("PS1=(keel emergency)")));
        assert!(!s.env.iter().any(|v| v.starts_with("PS1=")));
    }

    #[test]
    fn the_emergency_shell_is_behind_sulogin_with_a_password_and_the_gate_waits() {
        let e = shell_spec_with(ShellKind::Emergency, "/dev/ttyS0", true);
        assert_eq!(e.argv, [SULOGIN]);
        assert!(e.env.contains(&format!("SUSHELL={SHELL}")));
        let g = shell_spec_with(ShellKind::Gate { secs: 30 }, "/dev/ttyS0", true);
        assert_eq!(g.argv, ["/init", "emergency-wait", "30"]);
        assert!(g.env.contains(&"KEEL_EMERGENCY=1".to_string()));
        assert!(password_note(true).contains("sulogin"));
        assert!(password_note(false).contains("without one"));
    }

    #[test]
    fn the_summary_shows_the_service_tail_then_what_comes_next() {
        let tail = ["bind: in use".to_string(), "exiting".to_string()];
        let lines = summary_lines(&Cause::Service("web".into()), Some(("web", &tail)));
        assert_eq!(
            lines,
            [
                "the last 2 lines of web's log:",
                "  web| bind: in use",
                "  web| exiting",
                "when the shell exits, keel starts the service again (and reboots if it gives up again without a shell)",
            ]
        );
        let lines = summary_lines(&Cause::Service("web".into()), Some(("web", &[])));
        assert_eq!(lines[0], "web wrote nothing to its log");
        assert_eq!(
            summary_lines(&Cause::Boot, None),
            ["when the shell exits, the machine reboots"]
        );
        assert_eq!(summary_lines(&Cause::Config, None).len(), 1);
    }

    #[test]
    fn going_on_starts_the_console_services_and_the_given_up_one() {
        let held = vec!["console".to_string(), "getty@ttyS0".to_string()];
        let names = |v: &[&str]| Ok(Resume::Start(v.iter().map(|s| s.to_string()).collect()));
        assert_eq!(
            resume(&Cause::Service("web".into()), true, held.clone()),
            names(&["console", "getty@ttyS0", "web"])
        );
        assert_eq!(
            resume(&Cause::Panic, true, held.clone()),
            Ok(Resume::Start(held.clone()))
        );
        assert_eq!(
            resume(&Cause::Config, true, held.clone()),
            Ok(Resume::Start(held.clone()))
        );
    }

    #[test]
    fn going_on_without_services_reads_the_config_again_unless_the_boot_failed() {
        assert_eq!(
            resume(&Cause::Config, false, Vec::new()),
            Ok(Resume::Reload)
        );
        assert_eq!(
            resume(&Cause::Requested, false, Vec::new()),
            Ok(Resume::Reload)
        );
        assert!(
            resume(&Cause::Boot, true, Vec::new())
                .unwrap_err()
                .contains("cannot redo")
        );
    }
}

//! `poweroff`, `reboot`, `halt`: ask PID 1 to stop the machine, or with `-f` do it now.
//!
//! The request is a signal to PID 1 (busybox's convention: SIGUSR2 poweroff, SIGTERM
//! reboot, SIGUSR1 halt), so the same commands work under busybox init too. `-f` skips
//! PID 1: sync (unless `-n`) and reboot(2) at once, as busybox does. This applet must not
//! be used by PID 1 itself.
#![forbid(unsafe_code)]

use crate::exit::Exit;
use crate::sys::power;
use supervisor::PowerKind;

/// Parsed options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Opts {
    pub force: bool,
    pub no_sync: bool,
    pub help: bool,
}

/// Parses the options; unknown ones are an error naming the option.
pub fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts::default();
    for a in args {
        match a.as_str() {
            "-h" | "--help" => o.help = true,
            "-f" | "--force" => o.force = true,
            "-n" | "--no-sync" => o.no_sync = true,
            // -d DELAY is busybox's; keel has no use for a delay and refuses it clearly.
            other => return Err(format!("unknown option {other:?} (known: -f, -n, -h)")),
        }
    }
    Ok(o)
}

fn usage(name: &str, kind: PowerKind) -> String {
    format!(
        "usage: {name} [-f] [-n]\n\
         asks PID 1 (keel) to stop the machine and {}: it stops every process, syncs and calls reboot(2)\n\
         \x20 -f  do it now, without PID 1 (sync and reboot(2) at once)\n\
         \x20 -n  with -f, do not sync\n",
        match kind {
            PowerKind::PowerOff => "power off",
            PowerKind::Reboot => "reboot",
            PowerKind::Halt => "halt",
        }
    )
}

/// Runs the applet.
pub fn main(argv0: &str, kind: PowerKind, args: &[String]) -> Exit {
    let name = argv0.rsplit('/').next().unwrap_or(argv0);
    let opts = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{name}: {e}");
            eprint!("{}", usage(name, kind));
            return Exit::Permanent;
        }
    };
    if opts.help {
        print!("{}", usage(name, kind));
        return Exit::Ok;
    }
    let uid = nix::unistd::geteuid();
    if !uid.is_root() {
        eprintln!("{name}: must be run as root (running as uid {uid})");
        return Exit::Permanent;
    }
    if opts.force {
        let e = power::finish(kind, !opts.no_sync);
        eprintln!("{name}: reboot(2) failed: {e}");
        return Exit::Temporary;
    }
    let sig = power::request_signal(kind);
    match power::kill_one(1, sig) {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("{name}: cannot send {sig} to PID 1: {e}; try {name} -f");
            Exit::Temporary
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::applets::args;

    #[test]
    fn options() {
        assert_eq!(parse(&args(&[])), Ok(Opts::default()));
        assert_eq!(
            parse(&args(&["-f", "-n"])),
            Ok(Opts {
                force: true,
                no_sync: true,
                help: false
            })
        );
        assert!(parse(&args(&["-d", "3"])).unwrap_err().contains("\"-d\""));
    }

    #[test]
    fn request_signals_follow_busybox() {
        use nix::sys::signal::Signal;
        assert_eq!(power::request_signal(PowerKind::PowerOff), Signal::SIGUSR2);
        assert_eq!(power::request_signal(PowerKind::Reboot), Signal::SIGTERM);
        assert_eq!(power::request_signal(PowerKind::Halt), Signal::SIGUSR1);
    }
}

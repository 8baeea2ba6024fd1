//! `keel getty TTY`: the console login, one instance per active console (`getty@ttyS0`,
//! `getty@hvc0`; see `appliance::ApplianceConfig::expand_consoles`).
//!
//! It decides one thing and execs busybox getty: when root has a password in /etc/shadow
//! (which is the state disk's copy when there is one, see `state.rs`), the console gets a
//! login prompt (`getty -L 0 TTY TERM`, then busybox login). When root has none (the
//! image default `*`, locked, or empty), nobody could log in, so the console gets a login
//! shell without login instead (`/bin/sh -l` with the tty as controlling terminal and
//! stdio, as PID 1's console shell was), and says so. Not through getty: getty flushes
//! the tty's input while it sets the line up, which would eat what was typed after the
//! marker. Baud rate 0
//! keeps what the kernel's console= set (115200 on KVM, 19200 on older Linode plans).
//! The service restarts it when the session ends. It must not touch /etc/shadow.
#![forbid(unsafe_code)]

use crate::consoles::term_for;
use crate::exit::Exit;
use crate::log;
use std::os::unix::process::CommandExt;

/// busybox getty in the image.
pub const GETTY: &str = "/sbin/getty";

/// The file that says whether root has a password.
pub const SHADOW: &str = "/etc/shadow";

/// Whether root's entry in `shadow` (the text of /etc/shadow) holds a usable password
/// hash: not missing, not empty, not locked (`*` or `!...`).
pub fn root_has_password(shadow: &str) -> bool {
    shadow
        .lines()
        .filter_map(|l| l.strip_prefix("root:"))
        .filter_map(|rest| rest.split(':').next())
        .next_back()
        .is_some_and(|hash| !hash.is_empty() && !hash.starts_with(['*', '!']))
}

/// The shell a console gets when root has no password.
pub const SHELL: &str = "/bin/sh";

/// The getty command line for `tty` (a name under /dev).
pub fn getty_argv(tty: &str) -> Vec<String> {
    let mut argv = vec![GETTY.to_string()];
    argv.extend(["-L", "0", tty, term_for(tty)].map(String::from));
    argv
}

/// Runs `keel getty TTY`.
pub fn main(args: &[String]) -> Exit {
    let [tty] = args else {
        eprintln!("usage: keel getty TTY (a console name under /dev, e.g. ttyS0)");
        return Exit::Permanent;
    };
    if tty.is_empty() || tty.contains('/') || tty.contains("..") {
        eprintln!("keel getty: {tty:?} is not a tty name under /dev (e.g. ttyS0 or hvc0)");
        return Exit::Permanent;
    }
    log::use_consoles_waiting(std::slice::from_ref(tty));
    let shadow = crate::sys::fs::read_to_string(SHADOW).unwrap_or_default();
    let password = root_has_password(&shadow);
    if password {
        log::info(&format!("login prompt on /dev/{tty}"));
    } else {
        log::info(&format!(
            "console shell on /dev/{tty} without login: root has no password (set one with \
             passwd, or build the image with --root-password, to get a login prompt here)"
        ));
    }
    let argv = if password {
        getty_argv(tty)
    } else {
        if let Err(e) = crate::sys::console::take_tty_as_stdio(&format!("/dev/{tty}")) {
            log::info(&format!("cannot make /dev/{tty} the shell's terminal: {e}"));
            return Exit::Temporary;
        }
        vec![SHELL.to_string(), "-l".to_string()]
    };
    let err = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .env("TERM", term_for(tty))
        .env("HOME", "/root")
        .env("USER", "root")
        .env("LOGNAME", "root")
        .env("SHELL", "/bin/sh")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .exec();
    log::info(&format!("cannot run {} for /dev/{tty}: {err}", argv[0]));
    Exit::for_exec_errno(err.raw_os_error().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_real_hash_is_a_password() {
        let hash = "$6$salt1234$bYg1RYF4f6qbqCluBhee6M8j";
        assert!(root_has_password(&format!(
            "root:{hash}::0:99999:7:::\nsshd:*::::::\n"
        )));
        assert!(!root_has_password("root:*::0:99999:7:::\n"));
        assert!(!root_has_password("root:!$6$x$y::0:99999:7:::\n"));
        assert!(!root_has_password("root:::0:99999:7:::\n"));
        assert!(!root_has_password("sshd:$6$x$y::::::\n"));
        assert!(!root_has_password(""));
        // Another user with a password does not count, and "rooter" is not root.
        assert!(!root_has_password("rooter:$6$x$y:::\nroot:*:::\n"));
    }

    #[test]
    fn getty_argv_per_console_term() {
        assert_eq!(
            getty_argv("ttyS0"),
            ["/sbin/getty", "-L", "0", "ttyS0", "vt100"]
        );
        assert_eq!(
            getty_argv("tty1"),
            ["/sbin/getty", "-L", "0", "tty1", "linux"]
        );
    }
}

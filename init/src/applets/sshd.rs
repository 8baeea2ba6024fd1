//! `keel sshd`: the `sshd` longrun's program. Execs OpenSSH's sshd in the foreground with
//! /etc/ssh/sshd_config and the `[ssh]` choices of the appliance config on top.
//!
//! sshd_config allows keys only; `[ssh] password_login = true` adds
//! `-o PasswordAuthentication=yes -o PermitRootLogin=yes` (options on the command line win
//! over the file). A config that cannot be read or parsed keeps keys only and says so. It
//! execs, so sshd keeps the pid the supervisor knows; it must not fork.
#![forbid(unsafe_code)]

use crate::exit::Exit;
use std::os::unix::process::CommandExt;

/// OpenSSH's server in the image.
pub const SSHD: &str = "/usr/sbin/sshd";

/// keel's sshd config (source `configs/sshd_config`).
pub const SSHD_CONFIG: &str = "/etc/ssh/sshd_config";

/// sshd's command line: foreground, log to stderr, keel's config, the password choice.
pub fn sshd_argv(password_login: bool) -> Vec<String> {
    let (password, root) = if password_login {
        ("yes", "yes")
    } else {
        ("no", "prohibit-password")
    };
    vec![
        SSHD.to_string(),
        "-D".to_string(),
        "-e".to_string(),
        "-f".to_string(),
        SSHD_CONFIG.to_string(),
        "-o".to_string(),
        format!("PasswordAuthentication={password}"),
        "-o".to_string(),
        format!("PermitRootLogin={root}"),
    ]
}

/// `-h KEY` for the host key `keel hostkeys` made in RAM, when it made one (the state disk
/// could not take a key); sshd also tries the HostKey of its config and needs only one.
pub fn ram_key_args(ram_key_exists: bool) -> Vec<String> {
    if ram_key_exists {
        vec![
            "-h".to_string(),
            format!("{}/{}", sshkeys::RAM_HOST_KEY_DIR, sshkeys::HOST_KEY_NAME),
        ]
    } else {
        Vec::new()
    }
}

/// Runs `keel sshd`.
pub fn main(args: &[String]) -> Exit {
    if !args.is_empty() {
        eprintln!("usage: keel sshd (execs {SSHD} with {SSHD_CONFIG} and [ssh] of the config)");
        return Exit::Permanent;
    }
    let path = appliance::DEFAULT_PATH;
    let password_login = match std::fs::read_to_string(path) {
        Ok(text) => match appliance::parse(&text, path) {
            Ok(cfg) => cfg.ssh.password_login,
            Err(diags) => {
                let first = diags.first().map(ToString::to_string).unwrap_or_default();
                eprintln!("keel sshd: {first}; keeping key-only login");
                false
            }
        },
        Err(e) => {
            eprintln!("keel sshd: cannot read {path}: {e}; keeping key-only login");
            false
        }
    };
    if password_login {
        eprintln!("keel sshd: password login is on ([ssh] password_login = true in {path})");
    }
    let mut argv = sshd_argv(password_login);
    let ram_key = std::path::Path::new(sshkeys::RAM_HOST_KEY_DIR).join(sshkeys::HOST_KEY_NAME);
    argv.extend(ram_key_args(ram_key.exists()));
    let err = std::process::Command::new(&argv[0]).args(&argv[1..]).exec();
    eprintln!("keel sshd: cannot run {SSHD}: {err}");
    Exit::for_exec_errno(err.raw_os_error().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_in_ram_is_handed_to_sshd() {
        assert!(ram_key_args(false).is_empty());
        assert_eq!(
            ram_key_args(true),
            ["-h", "/run/keel/ssh/ssh_host_ed25519_key"]
        );
    }

    #[test]
    fn keys_only_unless_asked() {
        let a = sshd_argv(false).join(" ");
        assert_eq!(
            a,
            "/usr/sbin/sshd -D -e -f /etc/ssh/sshd_config -o PasswordAuthentication=no \
             -o PermitRootLogin=prohibit-password"
        );
        let a = sshd_argv(true).join(" ");
        assert!(
            a.ends_with("-o PasswordAuthentication=yes -o PermitRootLogin=yes"),
            "{a}"
        );
    }
}

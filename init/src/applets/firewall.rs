//! `keel firewall --print [CONFIG]` and `keel firewall --apply [CONFIG]`: the nftables
//! ruleset of the appliance config's `[firewall]`, shown or loaded.
//!
//! `--apply` is the `firewall` oneshot: it renders the ruleset (`netcfg::firewall`) and feeds
//! it to `nft -f -` on stdin, one atomic transaction that replaces only keel's table. It is
//! fail-closed: a config that does not parse, an `nft` that is missing or that rejects the
//! ruleset ends it non-zero, so the supervisor keeps everything that `needs` the firewall
//! stopped; the console says why, with nft's message and the config rule it came from.
//! CONFIG defaults to /etc/keel/appliance.toml. This applet must not be PID 1: it waits for
//! its own child, nft.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::process::{Command, Stdio};

use netcfg::firewall;
use supervisor::config::{self, Firewall};

use crate::exit::Exit;

/// nftables' command-line tool, as Debian installs it (and the image packs it).
pub const NFT: &str = "/usr/sbin/nft";

const HELP: &str = "\
usage: keel firewall --print [CONFIG]   print the nftables ruleset [firewall] gives
       keel firewall --apply [CONFIG]   load it with `nft -f -` (the firewall service)
CONFIG defaults to /etc/keel/appliance.toml. Exit codes: 0 loaded, 1 nft rejected the
ruleset, 100 the config is unusable, 126/127 nft cannot be run.
";

/// Reads and parses the appliance config, printing its diagnostics.
fn load(path: &str) -> Result<Firewall, Exit> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("keel firewall: cannot read {path}: {e}; nothing is loaded");
        Exit::Permanent
    })?;
    match config::parse(&text, path) {
        Ok(cfg) => Ok(cfg.firewall),
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            eprintln!(
                "keel firewall: {path} has errors (`keel check {path}` lists them); nothing is loaded"
            );
            Err(Exit::Permanent)
        }
    }
}

/// What to tell the person when nft rejected `ruleset` with `stderr`: nft's own lines,
/// then which config rule each error points at.
pub fn explain_failure(ruleset: &str, stderr: &str, path: &str) -> Vec<String> {
    let mut out: Vec<String> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("nft: {l}"))
        .collect();
    for what in firewall::blame(ruleset, stderr) {
        out.push(format!("the error is in {what} (from {path})"));
    }
    out
}

/// Runs nft on `ruleset`; on failure returns the exit code and the lines to print.
fn apply(ruleset: &str, path: &str) -> Result<(), (Exit, Vec<String>)> {
    let mut child = Command::new(NFT)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            let code = Exit::for_exec_errno(e.raw_os_error().unwrap_or(libc::ENOENT));
            (
                code,
                vec![format!(
                    "cannot run {NFT}: {e}; the firewall is not loaded and what needs it stays stopped"
                )],
            )
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A write error means nft exited early; its status and stderr say why.
        let _ = stdin.write_all(ruleset.as_bytes());
    }
    // This applet is an ordinary child of PID 1 and nft is its own child: waiting for it
    // here cannot steal an exit status from PID 1's reaper.
    #[allow(clippy::disallowed_methods)]
    let out = child
        .wait_with_output()
        .map_err(|e| (Exit::Temporary, vec![format!("cannot wait for {NFT}: {e}")]))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut lines = explain_failure(ruleset, &stderr, path);
    lines.push(format!(
        "{NFT} -f - failed ({}); the firewall is not loaded and what needs it stays stopped \
         (`keel firewall --print` shows the ruleset)",
        out.status
    ));
    Err((Exit::Failed, lines))
}

/// Runs `keel firewall`.
pub fn main(args: &[String]) -> Exit {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (mode, path) = match args.as_slice() {
        ["-h" | "--help"] => {
            print!("{HELP}");
            return Exit::Ok;
        }
        [m @ ("--print" | "--apply")] => (*m, config::DEFAULT_PATH),
        [m @ ("--print" | "--apply"), p] => (*m, *p),
        _ => {
            eprint!("keel firewall: expected --print or --apply, and at most one CONFIG\n{HELP}");
            return Exit::Permanent;
        }
    };
    let fw = match load(path) {
        Ok(fw) => fw,
        Err(code) => return code,
    };
    let ruleset = firewall::render(&fw);
    if mode == "--print" {
        print!("{ruleset}");
        return Exit::Ok;
    }
    match apply(&ruleset, path) {
        Ok(()) => {
            println!(
                "loaded table {} from {path}: input dropped unless allowed, {} allow rule{}, forward {}",
                firewall::TABLE,
                fw.allow.len(),
                if fw.allow.len() == 1 { "" } else { "s" },
                match fw.forward {
                    config::Forward::Drop => "dropped",
                    config::Forward::Reject => "rejected",
                }
            );
            Exit::Ok
        }
        Err((code, lines)) => {
            for l in lines {
                eprintln!("{l}");
            }
            code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_nft_and_the_config_rule() {
        let text = "[firewall]\nallow = [{ protocol = \"tcp\", port = 80, comment = \"web\" }]\n";
        let cfg = config::parse(text, "a.toml").unwrap_or_default();
        let ruleset = firewall::render(&cfg.firewall);
        let n = ruleset
            .lines()
            .position(|l| l.contains("allow 1: web"))
            .map_or(0, |i| i + 1);
        assert!(n > 0, "{ruleset}");
        let stderr = format!(
            "/dev/stdin:{n}:3-20: Error: Could not process rule: No such file or directory\n\
             \t\ttcp dport 80 accept comment \"allow 1: web\"\n\t\t^^^^^^^^^^\n"
        );
        let lines = explain_failure(&ruleset, &stderr, "/etc/keel/appliance.toml");
        assert!(lines[0].starts_with("nft: /dev/stdin:"), "{lines:?}");
        assert_eq!(
            lines.last().map(String::as_str),
            Some("the error is in [firewall] allow 1: web (from /etc/keel/appliance.toml)")
        );
    }

    #[test]
    fn usage_errors_are_permanent() {
        assert_eq!(main(&[]), Exit::Permanent);
        assert_eq!(main(&["--frobnicate".to_string()]), Exit::Permanent);
        assert_eq!(
            main(&[
                "--print".to_string(),
                "/nonexistent/appliance.toml".to_string()
            ]),
            Exit::Permanent
        );
    }

    #[test]
    fn print_renders_the_shipped_config() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/appliance.toml");
        assert_eq!(main(&["--print".to_string(), path.to_string()]), Exit::Ok);
    }
}

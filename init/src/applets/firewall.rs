//! `keel firewall --print [CONFIG]` and `keel firewall --apply [CONFIG]`: the nftables
//! ruleset of the appliance config's `[firewall]`, shown or loaded.
//!
//! `--apply` is the `firewall` oneshot: it loads keel's table over nfnetlink itself
//! (`netcfg::nft`), one batch transaction that replaces only `inet keel`; the image has no
//! `nft`. It is fail-closed: a config that does not parse or a batch the kernel refuses ends
//! it non-zero, so the supervisor keeps everything that `needs` the firewall stopped; the
//! console says why, with the kernel's errno and the config rule it came from. `--print`
//! shows the same table as nft text (`netcfg::firewall`), for reading or for `nft -f`.
//! `--delete` removes keel's table (and nothing else), for debugging and the VM tests.
//! CONFIG defaults to /etc/keel/appliance.toml.
#![forbid(unsafe_code)]

use appliance::Firewall;
use netcfg::{firewall, nft};

use crate::exit::Exit;

const HELP: &str = "\
usage: keel firewall --print [CONFIG]   print the nftables ruleset [firewall] gives
       keel firewall --apply [CONFIG]   load it over netlink (the firewall service)
       keel firewall --delete           remove keel's table: everything is let in
CONFIG defaults to /etc/keel/appliance.toml. Exit codes: 0 loaded, 1 the kernel refused
the table, 111 no answer from the kernel, 100 the config is unusable.
";
/// Reads and parses the appliance config, printing its diagnostics.
fn load(path: &str) -> Result<Firewall, Exit> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("keel firewall: cannot read {path}: {e}; nothing is loaded");
        Exit::Permanent
    })?;
    match appliance::parse(&text, path) {
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

/// What to tell the person when loading failed: what was refused, in which config rule.
pub fn explain_failure(err: &nft::LoadError, path: &str) -> Vec<String> {
    let mut out = match err {
        nft::LoadError::Refused(v) => v
            .iter()
            .map(|(what, errno)| {
                format!(
                    "the kernel refused {what} (from {path}): {}",
                    netcfg::netlink::NlError::Kernel(*errno)
                )
            })
            .collect(),
        nft::LoadError::Netlink(e) => vec![format!("cannot load the firewall: {e}")],
    };
    out.push(format!(
        "the firewall is not loaded and what needs it stays stopped \
         (`keel firewall --print {path}` shows the ruleset)"
    ));
    out
}

/// Runs `keel firewall`.
pub fn main(args: &[String]) -> Exit {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (mode, path) = match args.as_slice() {
        ["-h" | "--help"] => {
            print!("{HELP}");
            return Exit::Ok;
        }
        ["--delete"] => {
            return match nft::send(&nft::delete_batch()) {
                Ok(()) => {
                    println!("deleted table {}: nothing is filtered now", firewall::TABLE);
                    Exit::Ok
                }
                Err(e) => {
                    eprintln!(
                        "keel firewall: cannot delete table {}: {e}",
                        firewall::TABLE
                    );
                    Exit::Failed
                }
            };
        }
        [m @ ("--print" | "--apply")] => (*m, appliance::DEFAULT_PATH),
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
    if mode == "--print" {
        print!("{}", firewall::render(&fw));
        return Exit::Ok;
    }
    match nft::load(&fw) {
        Ok(()) => {
            println!(
                "loaded table {} from {path}: input dropped unless allowed, {} allow rule{}, forward {}",
                firewall::TABLE,
                fw.allow.len(),
                if fw.allow.len() == 1 { "" } else { "s" },
                match fw.forward {
                    appliance::Forward::Drop => "dropped",
                    appliance::Forward::Reject => "rejected",
                }
            );
            Exit::Ok
        }
        Err(e) => {
            for l in explain_failure(&e, path) {
                eprintln!("{l}");
            }
            match e {
                nft::LoadError::Refused(_) => Exit::Failed,
                nft::LoadError::Netlink(_) => Exit::Temporary,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_the_config_rule() {
        let err = nft::LoadError::Refused(vec![("[firewall] allow 1: web".into(), 2)]);
        let lines = explain_failure(&err, "/etc/keel/appliance.toml");
        assert!(
            lines[0].starts_with(
                "the kernel refused [firewall] allow 1: web (from /etc/keel/appliance.toml): "
            ),
            "{lines:?}"
        );
        assert!(lines[0].contains("ENOENT"), "{lines:?}");
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

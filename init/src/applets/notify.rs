//! `keel notify READY=1 [STATUS=...]`: sd_notify for shell scripts.
//!
//! Sends its arguments, one assignment per line, as one datagram to `$NOTIFY_SOCKET`
//! (which keel sets for services with `ready = "notify"`). Must not do anything else.
#![forbid(unsafe_code)]

use crate::exit::Exit;

const USAGE: &str = "\
usage: keel notify READY=1 [STATUS=TEXT] ...
sends the assignments to $NOTIFY_SOCKET, as sd_notify(3) does; keel sets it for services
with ready = \"notify\"
";

/// The datagram for these arguments, or why there is none.
pub fn message(args: &[String]) -> Result<String, String> {
    if args.is_empty() {
        return Err("nothing to send; try keel notify READY=1".into());
    }
    if let Some(bad) = args.iter().find(|a| !a.contains('=') || a.contains('\n')) {
        return Err(format!("{bad:?} is not a KEY=VALUE assignment"));
    }
    Ok(args.join("\n"))
}

/// Runs the applet.
pub fn main(args: &[String]) -> Exit {
    let msg = match super::options("keel notify", args, USAGE, message) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        eprintln!(
            "keel notify: NOTIFY_SOCKET is not set; run this from a service with ready = \"notify\""
        );
        return Exit::Permanent;
    };
    let path = path.to_string_lossy().into_owned();
    if path.starts_with('@') {
        eprintln!("keel notify: abstract sockets ({path}) are not supported; keel uses paths");
        return Exit::Permanent;
    }
    match crate::sys::notify::send(&path, &msg) {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("keel notify: cannot send to {path}: {e}");
            Exit::Temporary
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_become_one_datagram() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            message(&a(&["READY=1", "STATUS=up and running"])),
            Ok("READY=1\nSTATUS=up and running".into())
        );
        assert!(message(&a(&[])).is_err());
        assert!(message(&a(&["READY"])).unwrap_err().contains("\"READY\""));
    }
}

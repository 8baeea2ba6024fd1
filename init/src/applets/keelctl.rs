//! `keelctl` (or `keel ctl`): the control client of keel's supervisor.
//!
//! Speaks the line protocol of `supervisor::proto` on the control socket
//! (`/run/keel/control`, or `--socket PATH` for `keel supervise`): `status`, `start`,
//! `stop`, `restart`, `logs NAME [-n N] [-f]`, `poweroff`, `reboot`. It holds no state and
//! decides nothing; errors say what to do. Exit codes: 0 ok, 1 keel answered with an error,
//! 100 bad usage, 111 keel could not be reached.
#![forbid(unsafe_code)]

use crate::exit::Exit;
use crate::run::CONTROL_PATH;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use supervisor::proto::{Request, Response, SvcStatus};
use supervisor::{Mono, WaitStatus};

const USAGE: &str = "\
usage: keelctl [--socket PATH] COMMAND
  status                  every service: state, pid, ready since, restarts, last exit, why
  start NAME              start NAME (and what it needs)
  stop NAME               stop NAME (and what needs it)
  restart NAME            stop NAME and what needs it, then start them again in order
  logs NAME [-n N] [-f]   the last N lines NAME wrote (all kept by default); -f follows
  poweroff | reboot       stop every service in order, then the machine
  --socket PATH           keel's control socket [/run/keel/control]
exit codes: 0 ok, 1 keel refused, 100 bad usage, 111 keel could not be reached
";

/// What to do: the socket and the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opts {
    pub socket: String,
    pub request: Request,
}

/// Parses the arguments (without argv[0]); errors name the mistake.
pub fn parse(args: &[String]) -> Result<Opts, String> {
    let mut socket = CONTROL_PATH.to_string();
    let mut rest: Vec<&str> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--socket" {
            socket = it.next().ok_or("--socket needs a PATH")?.clone();
        } else if let Some(p) = a.strip_prefix("--socket=") {
            socket = p.to_string();
        } else {
            rest.push(a);
        }
    }
    let (cmd, args) = rest.split_first().ok_or("no command given")?;
    let name = |args: &[&str]| -> Result<String, String> {
        match args {
            [n] => Ok((*n).to_string()),
            [] => Err(format!("{cmd} needs a service NAME")),
            _ => Err(format!("{cmd} takes one NAME")),
        }
    };
    let none = |args: &[&str]| -> Result<(), String> {
        match args {
            [] => Ok(()),
            _ => Err(format!("{cmd} takes no arguments")),
        }
    };
    let request = match *cmd {
        "status" => none(args).map(|()| Request::Status)?,
        "poweroff" => none(args).map(|()| Request::PowerOff)?,
        "reboot" => none(args).map(|()| Request::Reboot)?,
        "start" => Request::Start(name(args)?),
        "stop" => Request::Stop(name(args)?),
        "restart" => Request::Restart(name(args)?),
        "logs" => {
            let mut n = None;
            let mut follow = false;
            let mut svc = None;
            let mut it = args.iter();
            while let Some(a) = it.next() {
                match *a {
                    "-f" | "--follow" => follow = true,
                    "-n" | "--lines" => {
                        let v = it.next().ok_or("-n needs a number of lines")?;
                        n = Some(
                            v.parse::<u32>()
                                .map_err(|_| format!("-n needs a number of lines, not {v:?}"))?,
                        );
                    }
                    s if s.starts_with('-') => return Err(format!("logs: unknown option {s:?}")),
                    s if svc.is_none() => svc = Some(s.to_string()),
                    _ => return Err("logs takes one NAME".into()),
                }
            }
            Request::Logs {
                name: svc.ok_or("logs needs a service NAME")?,
                lines: n,
                follow,
            }
        }
        other => return Err(format!("unknown command {other:?}")),
    };
    Ok(Opts { socket, request })
}

fn exit_words(e: Option<WaitStatus>) -> String {
    match e {
        None => "-".into(),
        Some(WaitStatus::Exited(c)) => format!("exit {c}"),
        Some(s @ WaitStatus::Signaled(_)) => s.to_string().replace("killed by ", ""),
    }
}

fn since_words(since: Option<Mono>, now: Mono) -> String {
    let Some(t) = since else {
        return "-".into();
    };
    let ago = now.0.saturating_sub(t.0) / 1000;
    let ago = match ago {
        0..60 => format!("{ago}s"),
        60..3600 => format!("{}m{}s", ago / 60, ago % 60),
        _ => format!("{}h{}m", ago / 3600, ago % 3600 / 60),
    };
    format!("{ago} ago")
}

/// The status table, one row per service, columns padded; `now` is CLOCK_MONOTONIC.
pub fn table(rows: &[SvcStatus], now: Mono) -> String {
    let head = [
        "NAME",
        "STATE",
        "PID",
        "READY",
        "RESTARTS",
        "LAST EXIT",
        "WHY",
    ];
    let mut cells: Vec<[String; 7]> = vec![head.map(String::from)];
    for r in rows {
        cells.push([
            r.name.clone(),
            r.state.clone(),
            r.pid.map_or("-".into(), |p| p.to_string()),
            since_words(r.ready_since, now),
            r.restarts.to_string(),
            exit_words(r.last_exit),
            r.why.clone(),
        ]);
    }
    let mut width = [0usize; 7];
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in &cells {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn connect(socket: &str) -> Result<UnixStream, String> {
    UnixStream::connect(socket).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "cannot reach keel at {socket}: no such socket; is keel running? (keel supervise takes --socket PATH; pass the same to keelctl)"
        ),
        std::io::ErrorKind::ConnectionRefused => format!(
            "cannot reach keel at {socket}: connection refused; is keel running? the socket may be left over"
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "cannot reach keel at {socket}: permission denied; keelctl needs root"
        ),
        _ => format!("cannot reach keel at {socket}: {e}"),
    })
}

/// Runs `keelctl`.
pub fn main(args: &[String]) -> Exit {
    let opts = match super::options("keelctl", args, USAGE, parse) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let mut stream = match connect(&opts.socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("keelctl: {e}");
            return Exit::Temporary;
        }
    };
    if let Err(e) = stream.write_all(opts.request.encode().as_bytes()) {
        eprintln!("keelctl: cannot send to {}: {e}", opts.socket);
        return Exit::Temporary;
    }
    let follow = matches!(opts.request, Request::Logs { follow: true, .. });
    let mut buf = String::new();
    let mut raw = [0u8; 8192];
    let mut pending: Vec<u8> = Vec::new();
    let mut answered = false;
    loop {
        // Decode what is complete before reading more.
        loop {
            match Response::decode(&buf) {
                Ok(Some((resp, used))) => {
                    buf.drain(..used);
                    let code = show(resp);
                    answered = true;
                    if code != Exit::Ok {
                        return code;
                    }
                    if !follow {
                        return Exit::Ok;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("keelctl: keel sent something this keelctl cannot read: {e}");
                    return Exit::Temporary;
                }
            }
        }
        let n = match stream.read(&mut raw) {
            Ok(0) => {
                if answered {
                    return Exit::Ok;
                }
                eprintln!("keelctl: keel closed the connection without answering");
                return Exit::Temporary;
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("keelctl: cannot read from {}: {e}", opts.socket);
                return Exit::Temporary;
            }
        };
        pending.extend_from_slice(&raw[..n]);
        // Only whole UTF-8 sequences go to the decoder.
        let valid = match std::str::from_utf8(&pending) {
            Ok(s) => s.len(),
            Err(e) => e.valid_up_to(),
        };
        buf.push_str(&String::from_utf8_lossy(&pending[..valid]));
        pending.drain(..valid);
    }
}

fn show(resp: Response) -> Exit {
    let mut out = std::io::stdout().lock();
    let r = match resp {
        Response::Ok(t) => writeln!(out, "{t}"),
        Response::Err(t) => {
            eprintln!("keelctl: {t}");
            return Exit::Failed;
        }
        Response::Status(rows) => {
            let now = Mono(crate::sys::clock::now().0);
            write!(out, "{}", table(&rows, now))
        }
        Response::Logs { dropped, lines } => {
            let mut r = Ok(());
            if dropped > 0 {
                r = writeln!(
                    out,
                    "({dropped} older lines were dropped: the log ring is full)"
                );
            }
            for l in lines {
                r = r.and_then(|()| writeln!(out, "{l}"));
            }
            r
        }
        Response::Line(l) => writeln!(out, "{l}"),
    };
    let r = r.and_then(|()| out.flush());
    match r {
        Ok(()) => Exit::Ok,
        // A closed stdout (keelctl logs -f | head) ends keelctl quietly.
        Err(_) => Exit::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::applets::args;

    #[test]
    fn commands_parse() {
        let o = parse(&args(&["status"]));
        assert_eq!(
            o.map(|o| (o.socket, o.request)),
            Ok((CONTROL_PATH.into(), Request::Status))
        );
        let o = parse(&args(&[
            "--socket", "/tmp/x", "logs", "web", "-n", "5", "-f",
        ]));
        assert_eq!(
            o,
            Ok(Opts {
                socket: "/tmp/x".into(),
                request: Request::Logs {
                    name: "web".into(),
                    lines: Some(5),
                    follow: true
                }
            })
        );
        assert_eq!(
            parse(&args(&["restart", "a"])).map(|o| o.request),
            Ok(Request::Restart("a".into()))
        );
        assert!(parse(&args(&[])).unwrap_err().contains("no command"));
        assert!(
            parse(&args(&["stop"]))
                .unwrap_err()
                .contains("needs a service NAME")
        );
        assert!(
            parse(&args(&["status", "x"]))
                .unwrap_err()
                .contains("no arguments")
        );
        assert!(
            parse(&args(&["logs", "a", "-n", "x"]))
                .unwrap_err()
                .contains("\"x\"")
        );
        assert!(parse(&args(&["frob"])).unwrap_err().contains("\"frob\""));
    }

    #[test]
    fn status_table_has_every_column() {
        let rows = vec![
            SvcStatus {
                name: "network".into(),
                state: "up".into(),
                pid: Some(42),
                ready_since: Some(Mono(1_000)),
                restarts: 2,
                last_exit: Some(WaitStatus::Signaled(supervisor::Sig::KILL)),
                why: String::new(),
            },
            SvcStatus {
                name: "sshd".into(),
                state: "waiting".into(),
                pid: None,
                ready_since: None,
                restarts: 0,
                last_exit: None,
                why: "waiting for network, which failed".into(),
            },
        ];
        let t = table(&rows, Mono(126_000));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "NAME     STATE    PID  READY     RESTARTS  LAST EXIT  WHY"
        );
        assert_eq!(
            lines[1],
            "network  up       42   2m5s ago  2         SIGKILL"
        );
        assert_eq!(
            lines[2],
            "sshd     waiting  -    -         0         -          waiting for network, which failed"
        );
    }
}

//! `keelctl` (or `keel ctl`): the control client of keel's supervisor.
//!
//! Speaks the line protocol of `supervisor::proto` on the control socket
//! (`/run/keel/control`, or `--socket PATH` for `keel supervise`). It holds no state and
//! decides nothing: the table, the JSON and the critical chain are drawn from what keel
//! answers. Exit codes: 0 ok, 1 keel answered with an error (or a wait failed), 3 `is-up`
//! found a service that is not up, 100 bad usage, 111 keel could not be reached or did not
//! answer in time. A closed stdout (`keelctl logs -f | head`) ends keelctl quietly with 0.
#![forbid(unsafe_code)]

mod conn;
mod draw;
mod timeline;

pub use draw::{logs_json, status_json, table};
pub use timeline::{KernelSource, boot_json, boot_text, kernel_init_time, kernel_time};

use super::json::Json;
use crate::exit::Exit;
use crate::run::CONTROL_PATH;
use conn::{Conn, Failure, ask};
use std::io::{ErrorKind, Write};
use std::time::Duration;
use supervisor::Mono;
use supervisor::proto::{PROTOCOL_VERSION, Request, Response, SvcStatus};
use timeline::read_kmsg;

const USAGE: &str = "\
usage: keelctl [--socket PATH] [--json] [--timeout DURATION] COMMAND [ARGS]
  status [NAME...]         the services (all, or these): state, pid, ready for, restarts,
                           last exit, why; one NAME alone also shows its last log lines
  is-up [-v] NAME...       exit 0 when every NAME is up, 3 otherwise (silent unless -v)
  wait NAME... [--timeout DURATION]
                           block until every NAME is up; fail with the reason when one
                           cannot come up, or after DURATION
  start NAME               start NAME (and what it needs)
  stop NAME                stop NAME (and what needs it)
  restart NAME             stop NAME and what needs it, then start them again in order
  logs NAME [-n N] [-f]    the last N lines NAME wrote (all kept by default); -f follows
  boot [NAME]              where the boot went: kernel, each service's start and ready
                           time, and the critical chain to NAME (default sshd, or the
                           service that was ready last)
  poweroff | reboot        stop every service in order, then the machine
options:
  --socket PATH            keel's control socket [/run/keel/control]
  --json                   status, logs and boot print one JSON document (logs -f: one
                           JSON object per line)
  --timeout DURATION       give up on an answer after DURATION [10s; wait: none]
  --version                keelctl's and the protocol's version
  -h, --help               this text; COMMAND -h for that command
exit codes: 0 ok, 1 keel refused or a wait failed, 3 not up (is-up), 100 bad usage,
111 keel could not be reached or did not answer
";

/// How long keelctl waits for an answer unless told (a `wait` waits as long as asked).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How many log lines `keelctl status NAME` shows under the row.
pub const STATUS_LOG_LINES: u32 = 10;

/// One command's usage, for `keelctl COMMAND -h`.
fn command_usage(cmd: &str) -> Option<&'static str> {
    Some(match cmd {
        "status" => {
            "usage: keelctl [--json] status [NAME...]\n  the services (all, or these); one NAME alone also shows its last log lines\n  columns: NAME STATE PID READY RESTARTS LAST-EXIT WHY (no spaces before WHY)\n"
        }
        "is-up" => {
            "usage: keelctl is-up [-v] NAME...\n  exit 0 when every NAME is up (a finished oneshot counts), 3 otherwise; -v prints each\n"
        }
        "wait" => {
            "usage: keelctl wait NAME... [--timeout DURATION]\n  block until every NAME is up; exit 1 with the reason when one cannot come up\n  without a request (gave up, stopped, shutting down) or when DURATION passes\n"
        }
        "start" => "usage: keelctl start NAME\n  start NAME and what it needs\n",
        "stop" => "usage: keelctl stop NAME\n  stop NAME and what needs it\n",
        "restart" => {
            "usage: keelctl restart NAME\n  stop NAME and what needs it, then start them again in order\n"
        }
        "logs" => {
            "usage: keelctl [--json] logs NAME [-n N] [-f]\n  the last N lines NAME wrote (all kept by default); -f follows\n"
        }
        "boot" => {
            "usage: keelctl [--json] boot [NAME]\n  kernel time to /init, each service's start, ready and end, what held it back,\n  and the critical chain to NAME (default sshd, or the service ready last)\n"
        }
        "poweroff" => "usage: keelctl poweroff\n  stop every service in order, then power off\n",
        "reboot" => "usage: keelctl reboot\n  stop every service in order, then reboot\n",
        _ => return None,
    })
}

/// What keelctl does with the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// Send the request and show the answer.
    Plain(Request),
    /// `status NAME...`: with one name, its last log lines too.
    Status(Vec<String>),
    IsUp {
        names: Vec<String>,
        verbose: bool,
    },
    Wait(Vec<String>),
    Boot(Option<String>),
}

/// What to do: the socket, the output form, the time limit and the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opts {
    pub socket: String,
    pub json: bool,
    /// None: as long as it takes.
    pub timeout: Option<Duration>,
    pub cmd: Cmd,
}

fn duration(v: &str) -> Result<Duration, String> {
    appliance::parse_duration(v)
        .ok_or_else(|| format!("--timeout needs a duration such as 30s or 500ms, not {v:?}"))
}

/// Parses the arguments (without argv[0]); errors name the mistake.
pub fn parse(args: &[String]) -> Result<Opts, String> {
    let mut socket = CONTROL_PATH.to_string();
    let mut json = false;
    let mut timeout = None;
    let mut rest: Vec<&str> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--socket" => socket = it.next().ok_or("--socket needs a PATH")?.clone(),
            "--json" => json = true,
            "--timeout" => {
                timeout = Some(duration(it.next().ok_or("--timeout needs a DURATION")?)?)
            }
            _ => {
                if let Some(p) = a.strip_prefix("--socket=") {
                    socket = p.to_string();
                } else if let Some(t) = a.strip_prefix("--timeout=") {
                    timeout = Some(duration(t)?);
                } else {
                    rest.push(a);
                }
            }
        }
    }
    let (cmd, args) = rest.split_first().ok_or("no command given")?;
    let name = |args: &[&str]| -> Result<String, String> {
        match args {
            [n] if !n.starts_with('-') => Ok((*n).to_string()),
            [n] => Err(format!("{cmd}: unknown option {n:?}")),
            [] => Err(format!("{cmd} needs a service NAME")),
            _ => Err(format!("{cmd} takes one NAME")),
        }
    };
    let names = |args: &[&str], at_least: usize| -> Result<Vec<String>, String> {
        if let Some(o) = args.iter().find(|a| a.starts_with('-')) {
            return Err(format!("{cmd}: unknown option {o:?}"));
        }
        if args.len() < at_least {
            return Err(format!("{cmd} needs a service NAME"));
        }
        Ok(args.iter().map(|a| (*a).to_string()).collect())
    };
    let none = |args: &[&str]| -> Result<(), String> {
        match args {
            [] => Ok(()),
            _ => Err(format!("{cmd} takes no arguments")),
        }
    };
    let cmd = match *cmd {
        "status" => Cmd::Status(names(args, 0)?),
        "is-up" => {
            let verbose = args.iter().any(|a| *a == "-v" || *a == "--verbose");
            let rest: Vec<&str> = args
                .iter()
                .copied()
                .filter(|a| *a != "-v" && *a != "--verbose")
                .collect();
            Cmd::IsUp {
                names: names(&rest, 1)?,
                verbose,
            }
        }
        "wait" => Cmd::Wait(names(args, 1)?),
        "boot" => match args {
            [] => Cmd::Boot(None),
            _ => Cmd::Boot(Some(name(args)?)),
        },
        "poweroff" => none(args).map(|()| Cmd::Plain(Request::PowerOff))?,
        "reboot" => none(args).map(|()| Cmd::Plain(Request::Reboot))?,
        "start" => Cmd::Plain(Request::Start(name(args)?)),
        "stop" => Cmd::Plain(Request::Stop(name(args)?)),
        "restart" => Cmd::Plain(Request::Restart(name(args)?)),
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
            Cmd::Plain(Request::Logs {
                name: svc.ok_or("logs needs a service NAME")?,
                lines: n,
                follow,
            })
        }
        other => {
            return Err(format!(
                "unknown command {other:?}; commands: status, is-up, wait, start, stop, restart, logs, boot, poweroff, reboot"
            ));
        }
    };
    // A wait waits as long as it is told; everything else gives up after the default.
    let timeout = match (&cmd, timeout) {
        (_, Some(t)) => Some(t),
        (Cmd::Wait(_), None) | (Cmd::Plain(Request::Logs { follow: true, .. }), None) => None,
        _ => Some(DEFAULT_TIMEOUT),
    };
    Ok(Opts {
        socket,
        json,
        timeout,
        cmd,
    })
}

fn fail(f: Failure, what: &str) -> Exit {
    match f {
        Failure::Unreachable(m) => eprintln!("keelctl: {m}"),
        Failure::TimedOut(t) => eprintln!(
            "keelctl: keel did not answer {what} within {t:?}; it may be busy or stuck (keelctl --timeout DURATION waits longer)"
        ),
    }
    Exit::Temporary
}

/// Writes `text` to stdout. A closed pipe is not an error: the reader had enough.
fn emit(text: &str) -> Result<(), Exit> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Err(Exit::Ok),
        Err(e) => {
            eprintln!("keelctl: cannot write to stdout: {e}");
            Err(Exit::Temporary)
        }
    }
}

fn now() -> Mono {
    crate::sys::clock::now()
}

/// Runs `keelctl`.
pub fn main(args: &[String]) -> Exit {
    if args.iter().any(|a| a == "--version") {
        return match emit(&format!(
            "keelctl {} (protocol keel/{PROTOCOL_VERSION})\n",
            env!("CARGO_PKG_VERSION")
        )) {
            Ok(()) | Err(Exit::Ok) => Exit::Ok,
            Err(e) => e,
        };
    }
    if args.iter().any(|a| a == "-h" || a == "--help")
        && let Some(u) = args.iter().find_map(|a| command_usage(a))
    {
        let _ = emit(u);
        return Exit::Ok;
    }
    let opts = match super::options("keelctl", args, USAGE, parse) {
        Ok(o) => o,
        Err(code) => return code,
    };
    match run(&opts) {
        Ok(code) | Err(code) => code,
    }
}

fn run(opts: &Opts) -> Result<Exit, Exit> {
    match &opts.cmd {
        Cmd::Plain(req) => plain(opts, req),
        Cmd::Status(names) => status(opts, names),
        Cmd::IsUp { names, verbose } => is_up_cmd(opts, names, *verbose),
        Cmd::Wait(names) => wait(opts, names),
        Cmd::Boot(target) => boot(opts, target.as_deref()),
    }
}

fn refused(t: &str) -> Exit {
    eprintln!("keelctl: {t}");
    Exit::Failed
}

fn plain(opts: &Opts, req: &Request) -> Result<Exit, Exit> {
    let mut c = Conn::open(&opts.socket, req, opts.timeout).map_err(|f| fail(f, "the request"))?;
    let logs_name = match req {
        Request::Logs { name, .. } => name.as_str(),
        _ => "",
    };
    loop {
        let resp = match c.next(opts.timeout) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(Exit::Ok),
            Err(f) => return Err(fail(f, "the request")),
        };
        match resp {
            Response::Ok(t) => {
                emit(&format!("{t}\n"))?;
                return Ok(Exit::Ok);
            }
            Response::Err(t) => return Err(refused(&t)),
            Response::Logs { dropped, lines } => {
                if opts.json {
                    emit(&format!("{}\n", logs_json(logs_name, dropped, &lines)))?;
                } else {
                    let mut s = String::new();
                    if dropped > 0 {
                        s.push_str(&format!(
                            "({dropped} older lines were dropped: the log ring is full)\n"
                        ));
                    }
                    for l in &lines {
                        s.push_str(l);
                        s.push('\n');
                    }
                    emit(&s)?;
                }
                if !matches!(req, Request::Logs { follow: true, .. }) {
                    return Ok(Exit::Ok);
                }
            }
            Response::Line(l) => {
                if opts.json {
                    let j = Json::Obj(vec![
                        ("service", Json::str(logs_name)),
                        ("line", Json::str(&l)),
                    ]);
                    emit(&format!("{j}\n"))?;
                } else {
                    emit(&format!("{l}\n"))?;
                }
            }
            Response::Status(_) | Response::Boot(_) => {
                eprintln!("keelctl: keel answered with something else than was asked");
                return Err(Exit::Temporary);
            }
        }
    }
}

fn rows_of(opts: &Opts, names: &[String]) -> Result<Vec<SvcStatus>, Exit> {
    match ask(opts, &Request::Status(names.to_vec())) {
        Ok(Response::Status(rows)) => Ok(rows),
        Ok(Response::Err(t)) => Err(refused(&t)),
        Ok(_) => {
            eprintln!("keelctl: keel answered status with something else");
            Err(Exit::Temporary)
        }
        Err(f) => Err(fail(f, "status")),
    }
}

fn status(opts: &Opts, names: &[String]) -> Result<Exit, Exit> {
    let rows = rows_of(opts, names)?;
    let now = now();
    let tail = match names {
        [one] => match ask(
            opts,
            &Request::Logs {
                name: one.clone(),
                lines: Some(STATUS_LOG_LINES),
                follow: false,
            },
        ) {
            Ok(Response::Logs { dropped, lines }) => Some((one, dropped, lines)),
            _ => None,
        },
        _ => None,
    };
    let dog = std::fs::read_to_string(crate::run::WATCHDOG_STATE)
        .ok()
        .map(|l| l.trim().to_string());
    if opts.json {
        let mut j = status_json(&rows, now);
        if let (Json::Obj(fields), Some((n, dropped, lines))) = (&mut j, &tail) {
            fields.push(("logs", logs_json(n, *dropped, lines)));
        }
        if let Json::Obj(fields) = &mut j {
            fields.push(("watchdog", dog.as_deref().map_or(Json::Null, Json::str)));
        }
        emit(&format!("{j}\n"))?;
        return Ok(Exit::Ok);
    }
    let mut s = table(&rows, now);
    if let Some(d) = &dog {
        s.push_str(&format!("\nwatchdog: {d}\n"));
    }
    if let [row] = rows.as_slice()
        && !row.procs.is_empty()
    {
        s.push_str(&format!("\nprocesses in the group of {}:\n", row.name));
        for p in &row.procs {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .trim()
                        .to_string()
                })
                .unwrap_or_default();
            s.push_str(&format!("  {p:>7}  {cmd}\n"));
        }
    }
    if let Some((n, _, lines)) = tail {
        s.push_str(&format!(
            "\nlast {} lines of {n} (keelctl logs {n}):\n",
            lines.len()
        ));
        for l in lines {
            s.push_str("  ");
            s.push_str(&l);
            s.push('\n');
        }
    }
    emit(&s)?;
    Ok(Exit::Ok)
}

fn is_up_cmd(opts: &Opts, names: &[String], verbose: bool) -> Result<Exit, Exit> {
    let rows = rows_of(opts, names)?;
    if verbose {
        let s: String = rows
            .iter()
            .map(|r| {
                format!(
                    "{} {}\n",
                    r.name,
                    if r.state.is_up() {
                        "up"
                    } else {
                        r.state.as_str()
                    }
                )
            })
            .collect();
        emit(&s)?;
    }
    Ok(if rows.iter().all(|r| r.state.is_up()) {
        Exit::Ok
    } else {
        Exit::NotUp
    })
}

fn wait(opts: &Opts, names: &[String]) -> Result<Exit, Exit> {
    match ask(opts, &Request::Wait(names.to_vec())) {
        Ok(Response::Ok(t)) => {
            emit(&format!("{t}\n"))?;
            Ok(Exit::Ok)
        }
        Ok(Response::Err(t)) => Err(refused(&t)),
        Ok(_) => {
            eprintln!("keelctl: keel answered wait with something else");
            Err(Exit::Temporary)
        }
        Err(Failure::TimedOut(t)) => {
            // Say what each one that is not up is doing.
            let short = Opts {
                timeout: Some(DEFAULT_TIMEOUT),
                ..opts.clone()
            };
            let why: Vec<String> = rows_of(&short, names)
                .unwrap_or_default()
                .into_iter()
                .filter(|r| !r.state.is_up())
                .map(|r| {
                    if r.why.is_empty() {
                        format!("{} is {}", r.name, r.state)
                    } else {
                        format!("{} is {} ({})", r.name, r.state, r.why)
                    }
                })
                .collect();
            eprintln!("keelctl: gave up waiting after {t:?}: {}", why.join("; "));
            Err(Exit::Failed)
        }
        Err(f) => Err(fail(f, "wait")),
    }
}

fn boot(opts: &Opts, target: Option<&str>) -> Result<Exit, Exit> {
    let report = match ask(opts, &Request::Boot) {
        Ok(Response::Boot(b)) => b,
        Ok(Response::Err(t)) => return Err(refused(&t)),
        Ok(_) => {
            eprintln!("keelctl: keel answered boot with something else");
            return Err(Exit::Temporary);
        }
        Err(f) => return Err(fail(f, "boot")),
    };
    if let Some(t) = target
        && !report.rows.iter().any(|r| r.name == t)
    {
        return Err(refused(&format!("no service named {t}")));
    }
    let kmsg = if report.init_at.is_some() {
        read_kmsg()
    } else {
        String::new()
    };
    let kernel = kernel_time(&report, &kmsg);
    if opts.json {
        emit(&format!("{}\n", boot_json(&report, kernel, target)))?;
    } else {
        emit(&boot_text(&report, kernel, target))?;
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::applets::args;
    use supervisor::WaitStatus;
    use supervisor::proto::SvcState;
    use supervisor::timeline::{BootReport, BootRow};

    fn cmd(a: &[&str]) -> Result<Cmd, String> {
        parse(&args(a)).map(|o| o.cmd)
    }

    #[test]
    fn commands_parse() {
        let o = parse(&args(&["status"])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (o.socket.as_str(), o.json, o.timeout, o.cmd),
            (
                CONTROL_PATH,
                false,
                Some(DEFAULT_TIMEOUT),
                Cmd::Status(vec![])
            )
        );
        let o = parse(&args(&[
            "--socket", "/tmp/x", "--json", "logs", "web", "-n", "5", "-f",
        ]));
        assert_eq!(
            o,
            Ok(Opts {
                socket: "/tmp/x".into(),
                json: true,
                timeout: None,
                cmd: Cmd::Plain(Request::Logs {
                    name: "web".into(),
                    lines: Some(5),
                    follow: true
                })
            })
        );
        assert_eq!(
            cmd(&["status", "a", "b"]),
            Ok(Cmd::Status(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            cmd(&["is-up", "-v", "a"]),
            Ok(Cmd::IsUp {
                names: vec!["a".into()],
                verbose: true
            })
        );
        let w = parse(&args(&["wait", "a", "--timeout", "90s"]));
        assert!(
            matches!(
                w,
                Ok(Opts {
                    cmd: Cmd::Wait(_),
                    ..
                })
            ),
            "{w:?}"
        );
        assert_eq!(
            parse(&args(&["wait", "a"])).map(|o| o.timeout),
            Ok(None),
            "a wait waits as long as it takes unless told"
        );
        assert_eq!(cmd(&["boot"]), Ok(Cmd::Boot(None)));
        assert_eq!(cmd(&["boot", "sshd"]), Ok(Cmd::Boot(Some("sshd".into()))));
        assert_eq!(
            cmd(&["restart", "a"]),
            Ok(Cmd::Plain(Request::Restart("a".into())))
        );
    }

    #[test]
    fn bad_usage_names_the_mistake() {
        let err = |a: &[&str]| parse(&args(a)).err().unwrap_or_default();
        assert!(err(&[]).contains("no command"));
        assert!(err(&["stop"]).contains("needs a service NAME"));
        assert!(err(&["is-up"]).contains("needs a service NAME"));
        assert!(err(&["wait"]).contains("needs a service NAME"));
        assert!(err(&["reboot", "x"]).contains("no arguments"));
        assert!(err(&["logs", "a", "-n", "x"]).contains("\"x\""));
        assert!(err(&["frob"]).contains("\"frob\""));
        assert!(err(&["status", "-x"]).contains("unknown option \"-x\""));
        assert!(err(&["--timeout", "soon", "status"]).contains("\"soon\""));
    }

    #[test]
    fn every_command_has_its_own_help() {
        for c in [
            "status", "is-up", "wait", "start", "stop", "restart", "logs", "boot", "poweroff",
            "reboot",
        ] {
            let u = command_usage(c).unwrap_or_default();
            assert!(u.starts_with("usage: keelctl"), "{c}");
            assert!(u.contains(c), "{c}");
            assert!(USAGE.contains(c), "{c} missing from the usage");
        }
    }

    fn rows() -> Vec<SvcStatus> {
        vec![
            SvcStatus {
                name: "network".into(),
                state: SvcState::Up,
                pid: Some(42),
                ready_since: Some(Mono(1_000)),
                restarts: 2,
                last_exit: Some(WaitStatus::Signaled(supervisor::Sig::KILL)),
                why: String::new(),
                memory: Some(12_900_000),
                pids: Some(3),
                procs: vec![42, 43],
            },
            SvcStatus {
                name: "sshd".into(),
                state: SvcState::Waiting,
                pid: None,
                ready_since: None,
                restarts: 0,
                last_exit: Some(WaitStatus::Exited(0)),
                why: "waiting for network, which failed".into(),
                memory: None,
                pids: None,
                procs: Vec::new(),
            },
        ]
    }

    #[test]
    fn status_table_has_every_column_and_awk_can_read_it() {
        let t = table(&rows(), Mono(126_000));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "NAME     STATE    PID  MEM    PIDS  READY  RESTARTS  LAST-EXIT  WHY"
        );
        assert_eq!(
            lines[1],
            "network  up       42   12.3M  3     2m5s   2         SIGKILL"
        );
        assert_eq!(
            lines[2],
            "sshd     waiting  -    -      -     -      0         exit:0     waiting for network, which failed"
        );
        // Every cell before WHY is one awk field.
        for l in &lines {
            assert!(l.split_whitespace().count() >= 8, "{l}");
        }
        assert_eq!(lines[2].split_whitespace().nth(7), Some("exit:0"));
    }

    #[test]
    fn status_json_has_stable_fields() {
        let j = status_json(&rows(), Mono(126_000)).to_string();
        assert_eq!(
            j,
            concat!(
                r#"{"now_ms":126000,"services":["#,
                r#"{"name":"network","state":"up","up":true,"pid":42,"ready_since_ms":1000,"restarts":2,"last_exit":{"kind":"signal","signal":9,"name":"SIGKILL"},"why":"","memory_bytes":12900000,"pids":3,"processes":[42,43]},"#,
                r#"{"name":"sshd","state":"waiting","up":false,"pid":null,"ready_since_ms":null,"restarts":0,"last_exit":{"kind":"exit","code":0},"why":"waiting for network, which failed","memory_bytes":null,"pids":null,"processes":[]}]}"#
            )
        );
    }

    #[test]
    fn the_kernel_time_comes_from_its_own_log() {
        let kmsg = "6,1,0,-;Linux version 6.1\n6,300,1320456,-;Run /init as init process\n4,301,1400000,-;keel: mounting\n";
        assert_eq!(kernel_init_time(kmsg), Some(Mono(1320)));
        assert_eq!(kernel_init_time("6,1,0,-;Run /sbin/init as init\n"), None);
        // keel's clock mark says CLOCK_MONOTONIC read 1.390000 when the kernel stamped
        // 1.400100: the kernel's clock is 10.1 ms ahead, so /init ran at 1310 ms on keel's.
        let marked = format!(
            "{kmsg}7,302,1400100,-;keel: {}1.390000\n",
            crate::log::CLOCK_MARK
        );
        assert_eq!(kernel_init_time(&marked), Some(Mono(1310)));
        // Behind by 30 ms: /init at 1350 ms on keel's clock.
        let behind = format!(
            "{kmsg}7,302,1400000,-;keel: {}1.430000\n",
            crate::log::CLOCK_MARK
        );
        assert_eq!(kernel_init_time(&behind), Some(Mono(1350)));
        let mut r = BootReport {
            init_at: Some(Mono(1325)),
            ..BootReport::default()
        };
        assert_eq!(
            kernel_time(&r, kmsg),
            Some((Mono(1320), KernelSource::KernelLog))
        );
        assert_eq!(kernel_time(&r, ""), Some((Mono(1325), KernelSource::Keel)));
        assert_eq!(
            kernel_time(&r, &behind),
            Some((Mono(1325), KernelSource::KernelLog)),
            "the kernel ran /init before keel's first clock reading"
        );
        r.init_at = None;
        assert_eq!(
            kernel_time(&r, kmsg),
            None,
            "not PID 1: the host's kernel is not ours"
        );
    }

    #[test]
    fn boot_text_and_json_show_the_chain() {
        let row = |name: &str, s: u64, r: u64, needs: &[&str]| BootRow {
            name: name.into(),
            oneshot: false,
            started: Some(Mono(s)),
            ready: Some(Mono(r)),
            finished: None,
            needs: needs.iter().map(|n| n.to_string()).collect(),
            after: vec![],
        };
        let r = BootReport {
            init_at: Some(Mono(1000)),
            up_at: Some(Mono(1700)),
            rows: vec![
                row("firewall", 1010, 1022, &[]),
                row("sshd", 1030, 1700, &["firewall"]),
            ],
        };
        let k = Some((Mono(990), KernelSource::KernelLog));
        let t = boot_text(&r, k, None);
        assert!(
            t.contains("kernel  0.99 s  to /init (from the kernel's log)"),
            "{t}"
        );
        assert!(t.contains("keel    0.71 s"), "{t}");
        assert!(t.contains("critical chain to sshd:"), "{t}");
        assert!(
            t.contains("sshd      1.030    1.700  -         670ms  firewall"),
            "{t}"
        );
        let j = boot_json(&r, k, None).to_string();
        assert!(
            j.starts_with(
                r#"{"kernel_ms":990,"kernel_source":"kernel-log","init_ms":1000,"up_ms":1700,"#
            ),
            "{j}"
        );
        assert!(j.contains(r#""target":"sshd","critical_chain":[{"name":"firewall","started_ms":1010,"ready_ms":1022,"took_ms":12},{"name":"sshd","#), "{j}");
    }
}

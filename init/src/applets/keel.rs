//! `keel` when it is not PID 1: `keel check FILE`, `keel --version`, `keel --help`.
//!
//! `keel check` validates an appliance config without booting: every diagnostic is
//! printed as `file:line:col: message`, and the exit code says whether it is usable.
//! `-v` adds what it read in another spelling, `--graph` the boot graph in start order
//! and `--dot` the same graph for Graphviz. `cargo xtask image` prints the same report.
#![forbid(unsafe_code)]

use crate::boot::VERSION;
use crate::exit::Exit;
use appliance::graph::Graph;
use appliance::{Kind, ServiceConfig};
use supervisor::SvcId;

const HELP: &str = "\
usage: keel check [-v] [--graph|--dot] FILE   validate an appliance config (exit 0 ok,
                   1 errors found); -v: say what was read in another spelling; --graph: the
                   services in start order with what they need; --dot: that as Graphviz
       keel cmdline [--json] ['ARGS...']   the network plan of a kernel command line
       keel network [--dhcp=dhclient|udhcpc]   configure the network (the network service)
       keel firewall --print|--apply [CONFIG]  show or load the [firewall] ruleset
       keel supervise --config FILE [--socket PATH]   run a config's services on a host
       keel ctl [--socket PATH] COMMAND   the control client (keelctl; keel ctl --help)
       keel notify READY=1 [STATUS=...]   sd_notify for scripts of ready = \"notify\" services
       keel --version
       keel --help
keel is PID 1 when the kernel starts it as /init; as poweroff, reboot or halt it asks PID 1
to stop the machine. Exit codes: 0 ok, 1 check failed, 100 permanent error (usage, not
permitted), 111 temporary error (a system call failed).
";

/// What `keel check` shows besides the diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckOpts {
    /// Also the notes: values read in another spelling (`restart = "no"`, `1m30s`).
    pub verbose: bool,
    /// Also the boot graph, as text or as Graphviz.
    pub graph: Option<GraphStyle>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphStyle {
    Text,
    Dot,
}

/// Checks the config text; returns the lines to print and whether it is valid. Warnings
/// (`file:line:col: warning: ...`) come before the `ok` line and do not make it invalid.
pub fn check_text(text: &str, path: &str) -> (Vec<String>, bool) {
    check_report(text, path, CheckOpts::default())
}

/// The whole `keel check` report: on success `PATH: ok`, the notes with `-v` and the graph
/// when asked; on failure every diagnostic as `file:line:col: message`.
pub fn check_report(text: &str, path: &str, opts: CheckOpts) -> (Vec<String>, bool) {
    match appliance::parse_noted(text, path) {
        Ok((config, notes)) => {
            let mut lines = Vec::new();
            if opts.verbose {
                lines.extend(notes.iter().map(|n| {
                    let at = match (n.line, n.column) {
                        (Some(l), Some(c)) => format!("{l}:{c}:"),
                        _ => String::new(),
                    };
                    format!("{}:{at} note: {}", n.path, n.message)
                }));
            }
            lines.extend(warnings(&config, text, path));
            match opts.graph {
                Some(GraphStyle::Dot) => lines.extend(graph_dot(&config.services)),
                Some(GraphStyle::Text) => {
                    lines.push(format!("{path}: ok"));
                    lines.extend(graph_text(&config.services));
                }
                None => lines.push(format!("{path}: ok")),
            }
            (lines, true)
        }
        Err(diags) => (diags.iter().map(ToString::to_string).collect(), false),
    }
}

/// The wave of each service: 1 for those that need nothing, else one more than the
/// latest of what it needs or comes after. Services of one wave start side by side.
fn waves(graph: &Graph) -> Vec<usize> {
    let mut wave = vec![1; graph.len()];
    for &s in &graph.order {
        let w = graph.needs[s.0]
            .iter()
            .chain(&graph.after[s.0])
            .map(|d| wave[d.0] + 1)
            .max()
            .unwrap_or(1);
        wave[s.0] = w;
    }
    wave
}

/// The boot graph as `keel check --graph` prints it: one line per service, by wave (the
/// services of one wave start in parallel) and then file order, with its kind and edges.
pub fn graph_text(services: &[ServiceConfig]) -> Vec<String> {
    let (graph, _) = Graph::build(services);
    let wave = waves(&graph);
    let width = services
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = vec![format!(
        "boot graph: {} services in start order; the services of one wave start in parallel",
        services.len()
    )];
    out.push(format!("  WAVE  {:width$}  KIND     NEEDS / AFTER", "NAME"));
    let names = |ids: &[SvcId]| -> String {
        ids.iter()
            .map(|d| services[d.0].name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut order = graph.order.clone();
    order.sort_by_key(|s| (wave[s.0], graph.rank[s.0]));
    for &s in &order {
        let svc = &services[s.0];
        let kind = match svc.kind {
            Kind::Oneshot => "oneshot",
            Kind::Longrun => "longrun",
        };
        let mut edges = Vec::new();
        if !graph.needs[s.0].is_empty() {
            edges.push(format!("needs {}", names(&graph.needs[s.0])));
        }
        if !graph.after[s.0].is_empty() {
            edges.push(format!("after {}", names(&graph.after[s.0])));
        }
        if svc.per_console() {
            edges.push("one per console".to_string());
        }
        let edges = if edges.is_empty() {
            "-".to_string()
        } else {
            edges.join("; ")
        };
        out.push(format!(
            "  {:>4}  {:width$}  {kind:7}  {edges}",
            wave[s.0], svc.name
        ));
    }
    out
}

/// The boot graph for Graphviz: an edge from each service to what it needs (solid) or
/// comes after (dashed), ranked by wave. `keel check --dot FILE | dot -Tsvg > boot.svg`.
pub fn graph_dot(services: &[ServiceConfig]) -> Vec<String> {
    let (graph, _) = Graph::build(services);
    let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = vec![
        "digraph keel {".to_string(),
        "  rankdir=LR;".to_string(),
        "  node [shape=box];".to_string(),
    ];
    for &s in &graph.order {
        let svc = &services[s.0];
        let shape = if svc.kind == Kind::Oneshot {
            " [style=rounded]"
        } else {
            ""
        };
        out.push(format!("  {}{shape};", q(&svc.name)));
        for d in &graph.needs[s.0] {
            out.push(format!("  {} -> {};", q(&svc.name), q(&services[d.0].name)));
        }
        for d in &graph.after[s.0] {
            out.push(format!(
                "  {} -> {} [style=dashed];",
                q(&svc.name),
                q(&services[d.0].name)
            ));
        }
    }
    out.push("}".to_string());
    out
}

/// Checks config bytes: text that is not UTF-8 is an error at the first bad byte.
pub fn check_bytes(bytes: &[u8], path: &str, opts: CheckOpts) -> (Vec<String>, bool) {
    match std::str::from_utf8(bytes) {
        Ok(text) => check_report(text, path, opts),
        Err(e) => {
            let good = bytes.get(..e.valid_up_to()).unwrap_or_default();
            let line = 1 + good.iter().filter(|&&b| b == b'\n').count();
            let start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let col = 1 + String::from_utf8_lossy(&good[start..]).chars().count();
            let byte = bytes.get(e.valid_up_to()).copied().unwrap_or(0);
            (
                vec![format!(
                    "{path}:{line}:{col}: the config is not UTF-8 text (byte 0x{byte:02x} at offset {}); save it as UTF-8",
                    e.valid_up_to()
                )],
                false,
            )
        }
    }
}

/// The warnings of a valid config: a service that opens a port (`ready = "tcp:PORT"`)
/// before the firewall is loaded. The firewall service is the one that runs
/// `keel firewall --apply` (or is named `firewall`); a service that does not need it, even
/// through others, may start with its port open to everyone.
fn warnings(cfg: &appliance::ApplianceConfig, text: &str, path: &str) -> Vec<String> {
    use appliance::Ready;
    let (graph, _) = appliance::graph::Graph::build(&cfg.services);
    let is_firewall = |s: &appliance::ServiceConfig| {
        s.name == "firewall"
            || (s.exec.first().is_some_and(|p| p.ends_with("/keel"))
                && s.exec.get(1).is_some_and(|a| a == "firewall"))
    };
    let firewalls: Vec<usize> = (0..cfg.services.len())
        .filter(|&i| is_firewall(&cfg.services[i]))
        .collect();
    let mut out = Vec::new();
    for (i, s) in cfg.services.iter().enumerate() {
        let Ready::Tcp(port) = s.ready else { continue };
        if is_firewall(s) {
            continue;
        }
        let needs = graph.requirements(supervisor::SvcId(i));
        if firewalls
            .iter()
            .any(|f| needs.contains(&supervisor::SvcId(*f)))
        {
            continue;
        }
        let hint = match firewalls.first() {
            Some(&f) => format!(
                "add \"{}\" to its needs so the port opens behind the firewall",
                cfg.services[f].name
            ),
            None => "no service loads the firewall (`keel firewall --apply`); add one and need it"
                .into(),
        };
        let (line, col) = ready_position(text, &s.name);
        out.push(format!(
            "{path}:{line}:{col}: warning: [services.{}] has ready = \"tcp:{port}\" but does not need the firewall; {hint}",
            s.name
        ));
    }
    out
}

/// Where `ready` of `[services.NAME]` is written (the table header if not found).
fn ready_position(text: &str, name: &str) -> (usize, usize) {
    let headers = [
        format!("[services.{name}]"),
        format!("[services.\"{name}\"]"),
    ];
    let mut header = None;
    for (n, l) in text.lines().enumerate() {
        let t = l.trim();
        if headers.iter().any(|h| t.starts_with(h.as_str())) {
            header = Some(n + 1);
        } else if header.is_some() && t.starts_with('[') {
            break;
        } else if header.is_some() && t.starts_with("ready") {
            let col = 1 + l.len() - l.trim_start().len();
            return (n + 1, col);
        }
    }
    (header.unwrap_or(1), 1)
}

fn check(path: &str, opts: CheckOpts) -> Exit {
    let bytes = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("keel check: cannot read {path}: {e}");
            return if e.kind() == std::io::ErrorKind::NotFound {
                Exit::Permanent
            } else {
                Exit::Temporary
            };
        }
    };
    let (lines, ok) = check_bytes(&bytes, path, opts);
    for l in lines {
        if ok && !l.contains(": warning: ") {
            println!("{l}");
        } else {
            eprintln!("{l}");
        }
    }
    if ok { Exit::Ok } else { Exit::Failed }
}

/// `keel check [-v] [--graph|--dot] FILE`.
fn check_main(args: &[&str]) -> Exit {
    let mut opts = CheckOpts::default();
    let mut file = None;
    for &a in args {
        match a {
            "-v" | "--verbose" => opts.verbose = true,
            "--graph" => opts.graph = Some(GraphStyle::Text),
            "--dot" => opts.graph = Some(GraphStyle::Dot),
            "-h" | "--help" => {
                print!("{HELP}");
                return Exit::Ok;
            }
            f if !f.starts_with('-') && file.is_none() => file = Some(f),
            other => {
                eprintln!(
                    "keel check: unexpected argument {other:?}; expected [-v] [--graph|--dot] FILE\n{HELP}"
                );
                return Exit::Permanent;
            }
        }
    }
    match file {
        Some(f) => check(f, opts),
        None => {
            eprintln!("keel check: expected a FILE to check\n{HELP}");
            Exit::Permanent
        }
    }
}

/// Runs `keel` with `args` (without argv[0]).
pub fn main(args: &[String]) -> Exit {
    let rest = args.get(1..).unwrap_or(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["--version" | "-V"] => {
            println!("keel {VERSION}");
            Exit::Ok
        }
        ["--help" | "-h"] => {
            print!("{HELP}");
            Exit::Ok
        }
        ["check", rest @ ..] => check_main(rest),
        ["cmdline", ..] => super::cmdline::main(rest),
        ["network", ..] => super::network::main(rest),
        ["firewall", ..] => super::firewall::main(rest),
        [] => {
            eprintln!(
                "keel: not PID 1 (pid {}), so nothing to boot\n{HELP}",
                std::process::id()
            );
            Exit::Permanent
        }
        [other, ..] => {
            eprintln!("keel: unknown command {other:?}\n{HELP}");
            Exit::Permanent
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_reports_file_line_col() {
        let (lines, ok) = check_text("[system]\nhostnme = \"x\"\n", "a.toml");
        assert!(!ok);
        assert!(lines[0].starts_with("a.toml:2:1: "), "{lines:?}");
        let (lines, ok) = check_text("[system]\nhostname = \"x\"\n", "a.toml");
        assert!(ok);
        assert_eq!(lines, ["a.toml: ok"]);
    }

    #[test]
    fn check_verbose_notes_and_graph() {
        let text = "[services.a]\nexec = [\"/a\"]\nkind = \"oneshot\"\nrestart = \"no\"\n\
                    [services.b]\nexec = [\"/b\"]\nneeds = [\"a\"]\n\
                    [services.c]\nexec = [\"/c\"]\nafter = [\"b\"]\nstop_timeout = \"1m30s\"\n\
                    [services.d]\nexec = [\"/d\"]\n";
        let opts = CheckOpts {
            verbose: true,
            graph: Some(GraphStyle::Text),
        };
        let (lines, ok) = check_report(text, "t.toml", opts);
        assert!(ok, "{lines:?}");
        assert_eq!(
            lines[0],
            "t.toml:4:11: note: [services.a]: `restart` = \"no\" read as \"never\""
        );
        assert_eq!(
            lines[1],
            "t.toml:11:16: note: `stop_timeout` = \"1m30s\" read as 90s"
        );
        assert_eq!(lines[2], "t.toml: ok");
        let rows: Vec<Vec<&str>> = lines[5..]
            .iter()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows[0], ["1", "a", "oneshot", "-"]);
        assert_eq!(rows[1], ["1", "d", "longrun", "-"]);
        assert_eq!(rows[2], ["2", "b", "longrun", "needs", "a"]);
        assert_eq!(rows[3], ["3", "c", "longrun", "after", "b"]);
        // Without -v, no notes.
        let (lines, _) = check_report(text, "t.toml", CheckOpts::default());
        assert_eq!(lines, ["t.toml: ok"]);
        let (dot, ok) = check_report(
            text,
            "t.toml",
            CheckOpts {
                verbose: false,
                graph: Some(GraphStyle::Dot),
            },
        );
        assert!(ok);
        assert_eq!(dot.first().map(String::as_str), Some("digraph keel {"));
        assert!(dot.contains(&"  \"b\" -> \"a\";".to_string()), "{dot:?}");
        assert!(
            dot.contains(&"  \"c\" -> \"b\" [style=dashed];".to_string()),
            "{dot:?}"
        );
        assert_eq!(dot.last().map(String::as_str), Some("}"));
    }

    #[test]
    fn a_config_that_is_not_utf8_is_an_error_at_its_first_bad_byte() {
        let (lines, ok) = check_bytes(
            b"[system]\nhostname = \"k\xffl\"\n",
            "a.toml",
            CheckOpts::default(),
        );
        assert!(!ok);
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with("a.toml:2:14: the config is not UTF-8 text (byte 0xff"),
            "{lines:?}"
        );
    }

    #[test]
    fn a_tcp_service_that_does_not_need_the_firewall_is_a_warning() {
        let text = "\
[services.firewall]
exec = [\"/sbin/keel\", \"firewall\", \"--apply\"]
kind = \"oneshot\"

[services.net]
exec = [\"/bin/true\"]
needs = [\"firewall\"]

[services.web]
exec = [\"/bin/web\"]
ready = \"tcp:8080\"

[services.safe]
exec = [\"/bin/safe\"]
needs = [\"net\"]
ready = \"tcp:8081\"
";
        let (lines, ok) = check_text(text, "a.toml");
        assert!(ok, "{lines:?}");
        assert_eq!(
            lines,
            [
                "a.toml:11:1: warning: [services.web] has ready = \"tcp:8080\" but does not need the firewall; add \"firewall\" to its needs so the port opens behind the firewall",
                "a.toml: ok",
            ]
        );
    }

    #[test]
    fn shipped_config_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/appliance.toml");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        assert!(!text.is_empty(), "cannot read {path}");
        let (lines, ok) = check_text(&text, path);
        assert!(ok, "{lines:?}");
        // And it has nothing to warn about.
        assert_eq!(lines.len(), 1, "{lines:?}");
    }
}

//! `keel` when it is not PID 1: `keel check FILE`, `keel --version`, `keel --help`.
//!
//! `keel check` validates an appliance config without booting: every diagnostic is
//! printed as `file:line:col: message`, and the exit code says whether it is usable.
//! `-v` adds what it read in another spelling, `--graph` the boot graph in start order
//! and `--dot` the same graph for Graphviz. `cargo xtask image` prints the same report.
#![forbid(unsafe_code)]

use crate::boot::VERSION;
use crate::exit::Exit;
use supervisor::SvcId;
use supervisor::config::{Kind, ServiceConfig};
use supervisor::graph::Graph;

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

/// Checks the config text; returns the lines to print and whether it is valid.
pub fn check_text(text: &str, path: &str) -> (Vec<String>, bool) {
    check_report(text, path, CheckOpts::default())
}

/// The whole `keel check` report: on success `PATH: ok`, the notes with `-v` and the graph
/// when asked; on failure every diagnostic as `file:line:col: message`.
pub fn check_report(text: &str, path: &str, opts: CheckOpts) -> (Vec<String>, bool) {
    match supervisor::config::parse_noted(text, path) {
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

fn check(path: &str, opts: CheckOpts) -> Exit {
    let text = match std::fs::read_to_string(path) {
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
    let (lines, ok) = check_report(&text, path, opts);
    for l in lines {
        if ok {
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
    fn shipped_config_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/appliance.toml");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        assert!(!text.is_empty(), "cannot read {path}");
        let (lines, ok) = check_text(&text, path);
        assert!(ok, "{lines:?}");
    }
}

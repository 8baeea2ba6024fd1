//! The checks behind the supervisor's fuzz targets, one function per target, each taking
//! arbitrary bytes and panicking only when the supervisor breaks a promise: the config
//! parser and the protocol decoders never panic and keep their documented invariants, and
//! the core never panics on any event sequence and always finishes a shutdown.
//!
//! The libFuzzer binaries in `fuzz_targets/` call these; so do the stable tests in
//! `tests/`, which replay the seeds and corpus and run a bounded random mutation. This
//! crate must not do IO beyond what its tests read, and must not weaken a check to make a
//! finding go away: a failure here is a report for the supervisor's owner.
#![forbid(unsafe_code)]

mod core_events;

pub use core_events::core;

use supervisor::Mono;
use supervisor::core::Supervisor;
use supervisor::event::Event;
use appliance::graph::Graph;
use supervisor::proto::{MAX_REQUEST, Request, Response};

/// One target's check: panics on a finding.
pub type Check = fn(&[u8]);

/// The targets by name, for the replay tests and the docs.
pub const TARGETS: &[(&str, Check)] = &[
    ("config", config),
    ("proto_request", proto_request),
    ("proto_response", proto_response),
    ("core", core),
];

/// The display path every fuzzed config is parsed under.
const PATH: &str = "fuzz.toml";

/// Arbitrary bytes (as lossy UTF-8) through `appliance::parse`: it must not panic, every
/// diagnostic is placed inside the text and they come in file order, and a config that
/// parses builds a graph with no errors and a `Supervisor` that takes a first step.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match appliance::parse(&text, PATH) {
        Err(diags) => check_diagnostics(&text, &diags),
        Ok(cfg) => check_config(&cfg),
    }
}

fn check_diagnostics(text: &str, diags: &[appliance::Diagnostic]) {
    assert!(!diags.is_empty(), "parse failed with no diagnostic");
    let lines = text.matches('\n').count() + 1;
    let mut prev = (0, 0);
    for d in diags {
        assert_eq!(d.path, PATH, "diagnostic names the wrong file: {d:?}");
        assert!(!d.message.trim().is_empty(), "diagnostic without a message");
        if let Some(l) = d.line {
            assert!(l >= 1, "line 0 in {d:?}");
            assert!(l <= lines, "line {l} past the end ({lines} lines) in {d:?}");
        }
        if let Some(c) = d.column {
            assert!(c >= 1, "column 0 in {d:?}");
            assert!(d.line.is_some(), "a column without a line in {d:?}");
        }
        let at = (d.line.unwrap_or(0), d.column.unwrap_or(0));
        assert!(
            at >= prev,
            "diagnostics out of file order: {at:?} after {prev:?}"
        );
        prev = at;
        // Display is what PID 1 and `keel check` print.
        assert!(d.to_string().starts_with(PATH));
    }
}

fn check_config(cfg: &appliance::ApplianceConfig) {
    let names: Vec<&str> = cfg.services.iter().map(|s| s.name.as_str()).collect();
    for (i, s) in cfg.services.iter().enumerate() {
        assert!(
            !names[..i].contains(&s.name.as_str()),
            "service {:?} accepted twice",
            s.name
        );
        assert!(
            s.exec.first().is_some_and(|p| p.starts_with('/')),
            "service {:?} accepted with exec {:?}",
            s.name,
            s.exec
        );
        assert!(
            s.env.windows(2).all(|w| w[0].0 <= w[1].0),
            "env of {:?} is not sorted by name",
            s.name
        );
        for dep in s.needs.iter().chain(&s.after) {
            assert!(
                names.contains(&dep.as_str()),
                "{:?} accepted with unknown dependency {dep:?}",
                s.name
            );
        }
    }
    assert!(
        cfg.services.iter().filter(|s| s.console).count() <= 1,
        "more than one console service accepted"
    );
    let (graph, errors) = Graph::build(&cfg.services);
    assert!(
        errors.is_empty(),
        "a config that parsed has graph errors: {errors:?}"
    );
    check_graph(&graph, cfg.services.len());
    let mut sup = Supervisor::with_seed(cfg, 1);
    let mut out = Vec::new();
    sup.handle(Event::Deadline, Mono(0), &mut out);
    assert_eq!(sup.status().len(), cfg.services.len());
    assert_eq!(sup.graph(), &graph);
}

/// The order is a permutation, `rank` inverts it, and every edge points backwards in it.
fn check_graph(g: &Graph, n: usize) {
    assert_eq!(g.order.len(), n, "order misses services");
    let mut seen = vec![false; n];
    for (pos, s) in g.order.iter().enumerate() {
        assert!(s.0 < n && !seen[s.0], "order is not a permutation");
        seen[s.0] = true;
        assert_eq!(g.rank[s.0], pos, "rank does not invert order");
    }
    for i in 0..n {
        for d in g.needs[i].iter().chain(&g.after[i]) {
            assert!(
                g.rank[d.0] < g.rank[i],
                "{i} is ordered before its dependency {}",
                d.0
            );
        }
    }
}

/// Arbitrary bytes through `Request::decode`: no panic, and whatever decodes re-encodes
/// to a request that fits the limit and decodes to the same value.
pub fn proto_request(data: &[u8]) {
    let Ok(req) = Request::decode(data) else {
        return;
    };
    let text = req.encode();
    assert!(
        text.len() <= MAX_REQUEST,
        "{req:?} encodes to {} bytes, over the limit",
        text.len()
    );
    assert!(
        text.len() <= data.len(),
        "the canonical form is longer than the input"
    );
    assert_eq!(
        Request::decode(text.as_bytes()),
        Ok(req),
        "re-encoded as {text:?}"
    );
}

/// Arbitrary bytes (as lossy UTF-8) through `Response::decode`: no panic; a decoded
/// response used only bytes it was given, decodes the same from just those bytes, and
/// its encoding decodes to the same value while every shorter prefix asks for more.
pub fn proto_response(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(Some((resp, used))) = Response::decode(&text) else {
        return;
    };
    assert!(
        used > 0 && used <= text.len(),
        "used {used} of {} bytes",
        text.len()
    );
    assert!(text.is_char_boundary(used), "used ends inside a character");
    assert_eq!(
        Response::decode(&text[..used]),
        Ok(Some((resp.clone(), used))),
        "the same bytes alone decode differently"
    );
    let enc = resp.encode();
    assert_eq!(
        Response::decode(&enc),
        Ok(Some((resp.clone(), enc.len()))),
        "re-encoded as {enc:?}"
    );
    // A reader that gets the response in pieces must wait, not misread; check a bounded
    // sample of cut points so large responses stay cheap.
    let step = (enc.len() / 64).max(1);
    for cut in (0..enc.len()).step_by(step).chain([enc.len() - 1]) {
        if !enc.is_char_boundary(cut) {
            continue;
        }
        assert_eq!(
            Response::decode(&enc[..cut]),
            Ok(None),
            "the first {cut} bytes of {enc:?} decode as a whole response"
        );
    }
}

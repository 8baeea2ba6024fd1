//! The bench's report: the machine it ran on, the table for people and the JSON for
//! tools (written by hand: keys and numbers only).

use super::figure::{Figure, Series, Unit};
use super::stats::{self, Summary};
use super::{Opts, loadavg};
use std::fmt::Write as _;
use std::path::Path;

pub(super) struct Machine {
    pub(super) cpu: String,
    pub(super) cpus: usize,
    pub(super) mem_total_kb: u64,
    pub(super) host_kernel: String,
    pub(super) guest_kernel: String,
    pub(super) qemu: String,
    pub(super) load_before: String,
    pub(super) load_after: String,
    pub(super) duration_secs: f64,
    pub(super) runs: usize,
    pub(super) idle_secs: u64,
    pub(super) guest_cpus: u32,
}

impl Machine {
    pub(super) fn probe(
        load_before: String,
        duration_secs: f64,
        opts: &Opts,
        kernel: &Path,
    ) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_default();
        let cpus = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let cmd = |prog: &str, arg: &str| {
            std::process::Command::new(prog)
                .arg(arg)
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_string()
                })
                .unwrap_or_default()
        };
        Machine {
            cpu,
            cpus,
            mem_total_kb: stats::proc_field(&meminfo, "MemTotal").unwrap_or(0),
            host_kernel: cmd("uname", "-r"),
            guest_kernel: kernel.display().to_string(),
            qemu: cmd(
                &keel_tests::qemu::qemu_binary().display().to_string(),
                "--version",
            ),
            load_before,
            load_after: loadavg(),
            duration_secs,
            runs: opts.runs,
            idle_secs: opts.idle,
            guest_cpus: opts.cpus,
        }
    }
}

pub(super) fn cell(s: &Series, unit: Unit) -> String {
    match Summary::of(&s.samples) {
        Some(sum) if sum.n == 1 => unit.show(sum.median),
        Some(sum) => format!(
            "{} [{}-{}] n={}",
            unit.show(sum.median),
            unit.show(sum.min),
            unit.show(sum.max),
            sum.n
        ),
        None => "-".into(),
    }
}

/// The terminal table (also the one in docs/performance.md).
pub(super) fn render_table(figures: &[Figure], m: &Machine, notes: &[String]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<50} {:>5}  {:<30} {:<30} {:<22} target",
        "figure", "unit", "keel", "baseline / others", "keel/other"
    );
    for f in figures {
        let keel = f
            .series
            .first()
            .map(|s| cell(s, f.unit))
            .unwrap_or_default();
        let others: Vec<String> = f.series[1..]
            .iter()
            .map(|s| {
                if f.series.len() > 2 {
                    format!("{} {}", s.who, cell(s, f.unit))
                } else {
                    cell(s, f.unit)
                }
            })
            .collect();
        let ratios: Vec<String> = f
            .ratios()
            .iter()
            .map(|(who, r)| match (r, f.series.len() > 2) {
                (Some(r), true) => format!("{who} {r:.3}"),
                (Some(r), false) => format!("{r:.3}"),
                (None, _) => "-".into(),
            })
            .collect();
        let target = match f.target {
            Some(tg) => {
                let mark = match f.pass() {
                    Some(true) => "PASS",
                    Some(false) => "FAIL",
                    None => "n/a",
                };
                format!("{} {mark}", tg.text(f.unit))
            }
            None => String::new(),
        };
        let others = if others.is_empty() {
            "-".into()
        } else {
            others.join("; ")
        };
        let ratios = if ratios.is_empty() {
            "-".into()
        } else {
            ratios.join("; ")
        };
        let _ = writeln!(
            t,
            "{:<50} {:>5}  {:<30} {:<30} {:<22} {}",
            f.label,
            f.unit.as_str(),
            keel,
            others,
            ratios,
            target
        );
    }
    let _ = writeln!(t, "\nmissing figures:");
    let mut any = false;
    for f in figures {
        for s in &f.series {
            if let Some(note) = &s.note {
                any = true;
                let _ = writeln!(t, "  {} / {}: {note}", f.label, s.who);
            }
        }
    }
    if !any {
        let _ = writeln!(t, "  none");
    }
    let _ = writeln!(
        t,
        "\nmachine: {} ({} cpus, {} MiB), host kernel {}, {}; guest kernel {}; \
         {} guest cpu(s); {} runs, {} s idle window; load average {} before, {} after; \
         took {:.0} s",
        m.cpu,
        m.cpus,
        m.mem_total_kb / 1024,
        m.host_kernel,
        m.qemu,
        m.guest_kernel,
        m.guest_cpus,
        m.runs,
        m.idle_secs,
        m.load_before,
        m.load_after,
        m.duration_secs
    );
    if !notes.is_empty() {
        let _ = writeln!(t, "\nnotes:");
        for n in notes {
            let first = n.lines().next().unwrap_or_default();
            let _ = writeln!(t, "  {first}");
        }
    }
    t
}

/// A JSON string literal.
pub(super) fn js(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number, or null for a value that is not finite.
pub(super) fn jn(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x}"),
        _ => "null".into(),
    }
}

/// bench.json: the machine, then every figure with its series, ratios and target.
pub(super) fn render_json(figures: &[Figure], m: &Machine, notes: &[String]) -> String {
    let mut j = String::from("{\n");
    let _ = writeln!(
        j,
        "  \"machine\": {{\"cpu\": {}, \"cpus\": {}, \"mem_total_kb\": {}, \"host_kernel\": {}, \
         \"guest_kernel\": {}, \"qemu\": {}, \"accel\": \"tcg\", \"load_before\": {}, \
         \"load_after\": {}, \"duration_secs\": {:.1}, \"runs\": {}, \"idle_secs\": {}, \
         \"guest_cpus\": {}}},",
        js(&m.cpu),
        m.cpus,
        m.mem_total_kb,
        js(&m.host_kernel),
        js(&m.guest_kernel),
        js(&m.qemu),
        js(&m.load_before),
        js(&m.load_after),
        m.duration_secs,
        m.runs,
        m.idle_secs,
        m.guest_cpus
    );
    j.push_str("  \"figures\": [\n");
    for (i, f) in figures.iter().enumerate() {
        let _ = write!(
            j,
            "    {{\"key\": {}, \"label\": {}, \"unit\": {}, \"series\": {{",
            js(f.key),
            js(f.label),
            js(f.unit.as_str())
        );
        for (k, s) in f.series.iter().enumerate() {
            let sum = Summary::of(&s.samples);
            let samples: Vec<String> = s.samples.iter().map(|v| jn(Some(*v))).collect();
            let _ = write!(
                j,
                "{}{}: {{\"median\": {}, \"min\": {}, \"max\": {}, \"spread\": {}, \"n\": {}, \"samples\": [{}], \"note\": {}}}",
                if k > 0 { ", " } else { "" },
                js(s.who),
                jn(sum.map(|s| s.median)),
                jn(sum.map(|s| s.min)),
                jn(sum.map(|s| s.max)),
                jn(sum.map(|s| s.spread())),
                s.samples.len(),
                samples.join(", "),
                s.note.as_deref().map_or_else(|| "null".into(), js)
            );
        }
        j.push_str("}, \"ratio_keel_over\": {");
        let ratios: Vec<String> = f
            .ratios()
            .iter()
            .map(|(who, r)| format!("{}: {}", js(who), jn(*r)))
            .collect();
        j.push_str(&ratios.join(", "));
        j.push_str("}, \"target\": ");
        match f.target {
            Some(t) => {
                let pass = f.pass().map_or_else(|| "null".into(), |p| p.to_string());
                let _ = write!(j, "{{\"text\": {}, \"pass\": {pass}}}", js(&t.text(f.unit)));
            }
            None => j.push_str("null"),
        }
        j.push('}');
        j.push_str(if i + 1 < figures.len() { ",\n" } else { "\n" });
    }
    j.push_str("  ],\n  \"notes\": [");
    let n: Vec<String> = notes.iter().map(|s| js(s)).collect();
    j.push_str(&n.join(", "));
    j.push_str("]\n}\n");
    j
}

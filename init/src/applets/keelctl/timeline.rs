//! What `keelctl boot` prints: the boot timeline and critical chain as text or JSON, with
//! the kernel's own start read from /dev/kmsg when keel's report lacks it.
#![forbid(unsafe_code)]

use super::draw::align;
use crate::applets::json::Json;
use std::io::Read;
use supervisor::Mono;
use supervisor::timeline::{BootReport, secs};

/// The kernel's log records (`PRI,SEQ,USEC,FLAGS;TEXT`): each record's stamp in µs and text.
fn kmsg_records(kmsg: &str) -> impl Iterator<Item = (u64, &str)> {
    kmsg.lines().filter_map(|rec| {
        let (head, text) = rec.split_once(';')?;
        let usec: u64 = head.split(',').nth(2)?.parse().ok()?;
        Some((usec, text))
    })
}

/// When the kernel ran /init, on the kernel's log clock: the stamp of `Run /init as init
/// process`, in µs.
fn kernel_init_usec(kmsg: &str) -> Option<u64> {
    kmsg_records(kmsg).find_map(|(usec, text)| {
        (text.starts_with("Run ") && text.ends_with(" as init process")).then_some(usec)
    })
}

/// How far the kernel's log clock is ahead of keel's (µs, either sign), from keel's first
/// clock mark (`log::mark_clock`) after the kernel ran /init.
fn kmsg_clock_offset(kmsg: &str) -> Option<i64> {
    kmsg_records(kmsg).find_map(|(usec, text)| {
        let (secs, micros) = text
            .strip_prefix("keel: ")?
            .strip_prefix(crate::log::CLOCK_MARK)?
            .split_once('.')?;
        let (secs, micros): (i64, i64) = (secs.parse().ok()?, micros.parse().ok()?);
        let kernel = i64::try_from(usec).ok()?;
        Some(kernel - (secs * 1_000_000 + micros))
    })
}

/// When the kernel ran /init, on keel's clock (ms): the kernel's `Run /init` stamp moved by
/// the offset of keel's clock mark. Without a mark (a kernel log that dropped keel's
/// records) the stamp is taken as it is.
pub fn kernel_init_time(kmsg: &str) -> Option<Mono> {
    let run = i64::try_from(kernel_init_usec(kmsg)?).ok()?;
    let on_keel = run - kmsg_clock_offset(kmsg).unwrap_or(0);
    Some(Mono(u64::try_from(on_keel.max(0)).ok()? / 1000))
}

/// Reads the kernel's log records there are, without blocking (root only; empty on error).
pub(super) fn read_kmsg() -> String {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(mut f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
    else {
        return String::new();
    };
    let mut out = String::new();
    let mut buf = vec![0u8; 8192];
    // One record per read; EAGAIN at the end, EPIPE when a record was overwritten.
    for _ in 0..100_000 {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.push_str(&String::from_utf8_lossy(&buf[..n]));
                if !out.ends_with('\n') {
                    out.push('\n');
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    out
}

/// Where the kernel's part of the boot came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelSource {
    /// The kernel's own log (`Run /init as init process`).
    KernelLog,
    /// keel's first clock reading as PID 1.
    Keel,
}

/// The time to /init: the kernel's log when keel is PID 1 and it has the line, else keel's.
pub fn kernel_time(report: &BootReport, kmsg: &str) -> Option<(Mono, KernelSource)> {
    report.init_at?;
    match kernel_init_time(kmsg) {
        // Two clocks read apart can still put the kernel's /init after keel's first step.
        Some(k) => Some((k.min(report.init_at?), KernelSource::KernelLog)),
        None => report.init_at.map(|k| (k, KernelSource::Keel)),
    }
}

fn ms(m: Option<Mono>) -> String {
    m.map_or("-".into(), |m| format!("{m}"))
}

/// `keelctl boot`: the kernel's part, a row per service in start order, the chain.
pub fn boot_text(
    r: &BootReport,
    kernel: Option<(Mono, KernelSource)>,
    target: Option<&str>,
) -> String {
    let mut out = String::new();
    match kernel {
        Some((k, src)) => {
            let from = match src {
                KernelSource::KernelLog => "from the kernel's log",
                KernelSource::Keel => "keel's first clock reading",
            };
            out.push_str(&format!("kernel  {}  to /init ({from})\n", secs(k.0)));
            if let Some(up) = r.up_at {
                out.push_str(&format!(
                    "keel    {}  from /init to the last service ready\n",
                    secs(up.0.saturating_sub(k.0))
                ));
            }
        }
        None => out.push_str("kernel  -  (keel is not PID 1)\n"),
    }
    match r.up_at {
        Some(up) => out.push_str(&format!("up      {}  since boot\n", secs(up.0))),
        None => out.push_str("up      -  the boot is not complete (keelctl status says why)\n"),
    }
    let mut rows: Vec<_> = r.rows.iter().collect();
    rows.sort_by_key(|x| (x.started.is_none(), x.started, x.name.clone()));
    let mut cells: Vec<[String; 6]> = vec![
        [
            "SERVICE",
            "STARTED",
            "READY",
            "FINISHED",
            "TOOK",
            "HELD-BACK-BY",
        ]
        .map(String::from),
    ];
    for x in rows {
        let took = match (x.started, x.ready.or(x.finished)) {
            (Some(s), Some(e)) => format!("{}ms", e.0.saturating_sub(s.0)),
            _ => "-".into(),
        };
        cells.push([
            x.name.clone(),
            ms(x.started),
            ms(x.ready),
            ms(x.finished),
            took,
            r.held_back_by(&x.name).unwrap_or("-").to_string(),
        ]);
    }
    out.push('\n');
    out.push_str(&align(&cells));
    let target = target.or(r.default_target());
    if let Some(t) = target {
        let chain = r.critical_chain(t);
        out.push_str(&format!("\ncritical chain to {t}:\n"));
        if chain.is_empty() {
            out.push_str(&format!("  {t} has not been ready\n"));
        }
        let mut cells: Vec<[String; 3]> = Vec::new();
        for l in &chain {
            cells.push([
                format!("  {}", l.name),
                format!("@{}", l.started),
                format!("+{} ms", l.took_ms()),
            ]);
        }
        out.push_str(&align(&cells));
    }
    out
}

/// `keelctl boot --json` (docs/services.md lists the fields).
pub fn boot_json(
    r: &BootReport,
    kernel: Option<(Mono, KernelSource)>,
    target: Option<&str>,
) -> Json {
    let target = target.or(r.default_target());
    let chain = target.map(|t| r.critical_chain(t)).unwrap_or_default();
    Json::Obj(vec![
        ("kernel_ms", Json::opt_u64(kernel.map(|(k, _)| k.0))),
        (
            "kernel_source",
            match kernel {
                Some((_, KernelSource::KernelLog)) => Json::str("kernel-log"),
                Some((_, KernelSource::Keel)) => Json::str("keel"),
                None => Json::Null,
            },
        ),
        ("init_ms", Json::opt_u64(r.init_at.map(|m| m.0))),
        ("up_ms", Json::opt_u64(r.up_at.map(|m| m.0))),
        (
            "services",
            Json::Arr(
                r.rows
                    .iter()
                    .map(|x| {
                        Json::Obj(vec![
                            ("name", Json::str(&x.name)),
                            ("oneshot", Json::Bool(x.oneshot)),
                            ("started_ms", Json::opt_u64(x.started.map(|m| m.0))),
                            ("ready_ms", Json::opt_u64(x.ready.map(|m| m.0))),
                            ("finished_ms", Json::opt_u64(x.finished.map(|m| m.0))),
                            ("needs", Json::strs(&x.needs)),
                            ("after", Json::strs(&x.after)),
                            (
                                "held_back_by",
                                r.held_back_by(&x.name).map_or(Json::Null, Json::str),
                            ),
                        ])
                    })
                    .collect(),
            ),
        ),
        ("target", target.map_or(Json::Null, Json::str)),
        (
            "critical_chain",
            Json::Arr(
                chain
                    .iter()
                    .map(|l| {
                        Json::Obj(vec![
                            ("name", Json::str(&l.name)),
                            ("started_ms", Json::opt_u64(Some(l.started.0))),
                            ("ready_ms", Json::opt_u64(Some(l.ready.0))),
                            ("took_ms", Json::opt_u64(Some(l.took_ms()))),
                        ])
                    })
                    .collect(),
            ),
        ),
    ])
}

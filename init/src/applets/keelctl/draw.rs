//! What `keelctl status` and `keelctl logs` print: the status table and the JSON of
//! status rows and of a log, drawn from what keel answered.
#![forbid(unsafe_code)]

use crate::applets::json::Json;
use supervisor::proto::SvcStatus;
use supervisor::{Mono, WaitStatus};

fn exit_cell(e: Option<WaitStatus>) -> String {
    match e {
        None => "-".into(),
        Some(WaitStatus::Exited(c)) => format!("exit:{c}"),
        Some(s @ WaitStatus::Signaled(_)) => s.to_string().replace("killed by ", ""),
    }
}

/// How long ago, without spaces: `5s`, `2m5s`, `3h4m`.
fn ago(since: Option<Mono>, now: Mono) -> String {
    let Some(t) = since else {
        return "-".into();
    };
    let ago = now.0.saturating_sub(t.0) / 1000;
    match ago {
        0..60 => format!("{ago}s"),
        60..3600 => format!("{}m{}s", ago / 60, ago % 60),
        _ => format!("{}h{}m", ago / 3600, ago % 3600 / 60),
    }
}

/// Pads every column but the last; rows end without trailing blanks.
pub(super) fn align<const N: usize>(cells: &[[String; N]]) -> String {
    let mut width = [0usize; N];
    for row in cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in cells {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i + 1 == N {
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

/// The status table, one row per service; `now` is CLOCK_MONOTONIC. No cell before WHY
/// holds a space, so `awk '{print $2}'` reads the state; WHY is never cut.
pub fn table(rows: &[SvcStatus], now: Mono) -> String {
    let head = [
        "NAME",
        "STATE",
        "PID",
        "MEM",
        "PIDS",
        "READY",
        "RESTARTS",
        "LAST-EXIT",
        "WHY",
    ];
    let mut cells: Vec<[String; 9]> = vec![head.map(String::from)];
    for r in rows {
        cells.push([
            r.name.clone(),
            r.state.to_string(),
            r.pid.map_or("-".into(), |p| p.to_string()),
            r.memory.map_or("-".into(), mem_cell),
            r.pids.map_or("-".into(), |p| p.to_string()),
            ago(r.ready_since, now),
            r.restarts.to_string(),
            exit_cell(r.last_exit),
            r.why.clone(),
        ]);
    }
    align(&cells)
}

/// memory.current as `keelctl status` shows it: `812K`, `12.3M`, `1.5G`.
fn mem_cell(b: u64) -> String {
    let (k, m, g) = (1u64 << 10, 1u64 << 20, 1u64 << 30);
    if b >= g {
        format!("{:.1}G", b as f64 / g as f64)
    } else if b >= m {
        format!("{:.1}M", b as f64 / m as f64)
    } else {
        format!("{}K", b.div_ceil(k))
    }
}

fn exit_json(e: Option<WaitStatus>) -> Json {
    match e {
        None => Json::Null,
        Some(WaitStatus::Exited(c)) => Json::Obj(vec![
            ("kind", Json::str("exit")),
            ("code", Json::Int(i64::from(c))),
        ]),
        Some(WaitStatus::Signaled(s)) => Json::Obj(vec![
            ("kind", Json::str("signal")),
            ("signal", Json::Int(i64::from(s.0))),
            ("name", Json::str(s.to_string())),
        ]),
    }
}

/// `keelctl status --json`: `{"now_ms":N,"services":[{...}]}` (docs/services.md).
pub fn status_json(rows: &[SvcStatus], now: Mono) -> Json {
    Json::Obj(vec![
        ("now_ms", Json::opt_u64(Some(now.0))),
        (
            "services",
            Json::Arr(
                rows.iter()
                    .map(|r| {
                        Json::Obj(vec![
                            ("name", Json::str(&r.name)),
                            ("state", Json::str(r.state.as_str())),
                            ("up", Json::Bool(r.state.is_up())),
                            ("pid", Json::opt(r.pid)),
                            ("ready_since_ms", Json::opt_u64(r.ready_since.map(|m| m.0))),
                            ("restarts", Json::Int(i64::from(r.restarts))),
                            ("last_exit", exit_json(r.last_exit)),
                            ("why", Json::str(&r.why)),
                            ("memory_bytes", Json::opt_u64(r.memory)),
                            ("pids", Json::opt_u64(r.pids)),
                            (
                                "processes",
                                Json::Arr(
                                    r.procs.iter().map(|p| Json::Int(i64::from(*p))).collect(),
                                ),
                            ),
                        ])
                    })
                    .collect(),
            ),
        ),
    ])
}

/// `keelctl logs --json`: `{"service":NAME,"dropped":N,"lines":[...]}`.
pub fn logs_json(name: &str, dropped: u64, lines: &[String]) -> Json {
    Json::Obj(vec![
        ("service", Json::str(name)),
        ("dropped", Json::opt_u64(Some(dropped))),
        ("lines", Json::strs(lines)),
    ])
}

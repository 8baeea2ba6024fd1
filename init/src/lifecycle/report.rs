//! The shutdown report: one console line for each service in the order it ended, saying
//! how it stopped, and one for how long each shutdown phase took. Pure: the rows come
//! from `Supervisor::shutdown_report`, the phase times from `Lifecycle::phase_times`.
#![forbid(unsafe_code)]

use supervisor::core::StopRow;
use supervisor::state::StopHow;
use supervisor::{PowerKind, WaitStatus};

/// How long each shutdown phase took, in milliseconds (None: the phase did not run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PhaseTimes {
    pub services_ms: Option<u64>,
    pub term_ms: Option<u64>,
    pub kill_ms: Option<u64>,
}

/// Milliseconds as seconds with three decimals ("1.300 s").
fn secs(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

/// The shutdown report, one console line each: a header, each service in the order it
/// ended with how it stopped, and how long each phase took. `rows` come from
/// `Supervisor::shutdown_report`; `finish_ms` is the sync and unmount time.
pub fn render(kind: PowerKind, rows: &[StopRow], times: PhaseTimes, finish_ms: u64) -> Vec<String> {
    let mut out = vec![format!("shutdown report ({}):", kind.verb())];
    for r in rows {
        let took = r
            .took
            .map(|d| secs(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)));
        let how = match (r.how, &took) {
            (None, _) => "still running: the shutdown went on without it".to_string(),
            (Some(StopHow::AlreadyDown), _) => "already down".to_string(),
            (Some(StopHow::Exited(st)), Some(t)) => match st {
                WaitStatus::Signaled(sig) if sig == r.stop_signal => {
                    format!("stopped by its stop signal {sig} in {t}")
                }
                WaitStatus::Exited(0) => format!("clean exit after {} in {t}", r.stop_signal),
                other => format!("exited ({other}) after {} in {t}", r.stop_signal),
            },
            (Some(StopHow::Exited(st)), None) => format!("exited by itself ({st})"),
            (Some(StopHow::Killed(_)), t) => format!(
                "SIGKILL after its stop_timeout of {} (gone after {})",
                secs(u64::try_from(r.stop_timeout.as_millis()).unwrap_or(u64::MAX)),
                t.as_deref().unwrap_or("?")
            ),
            (Some(StopHow::Abandoned), _) => {
                "survived SIGKILL: the shutdown went on without it".to_string()
            }
        };
        out.push(format!("  {}: {how}", r.name));
    }
    let phase = |ms: Option<u64>| ms.map_or_else(|| "not needed".to_string(), secs);
    out.push(format!(
        "shutdown phases: services {}, TERM-all {}, KILL-all {}, sync and unmount {}",
        phase(times.services_ms),
        phase(times.term_ms),
        phase(times.kill_ms),
        secs(finish_ms)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use supervisor::Sig;

    #[test]
    fn each_service_says_how_it_stopped_then_the_phases() {
        let row = |name: &str, how: Option<StopHow>, took: Option<u64>| StopRow {
            name: name.into(),
            stop_signal: Sig::TERM,
            stop_timeout: Duration::from_secs(2),
            how,
            took: took.map(Duration::from_millis),
            at: None,
        };
        let rows = [
            row(
                "web",
                Some(StopHow::Exited(WaitStatus::Signaled(Sig::TERM))),
                Some(120),
            ),
            row("db", Some(StopHow::Exited(WaitStatus::Exited(0))), Some(5)),
            row(
                "hog",
                Some(StopHow::Killed(WaitStatus::Signaled(Sig::KILL))),
                Some(2001),
            ),
            row("off", Some(StopHow::AlreadyDown), None),
            row("ghost", Some(StopHow::Abandoned), Some(7000)),
            row("late", None, None),
        ];
        let t = PhaseTimes {
            services_ms: Some(1500),
            term_ms: Some(3000),
            kill_ms: Some(20),
        };
        let lines = render(PowerKind::PowerOff, &rows, t, 7);
        assert_eq!(
            lines,
            [
                "shutdown report (powering off):",
                "  web: stopped by its stop signal SIGTERM in 0.120 s",
                "  db: clean exit after SIGTERM in 0.005 s",
                "  hog: SIGKILL after its stop_timeout of 2.000 s (gone after 2.001 s)",
                "  off: already down",
                "  ghost: survived SIGKILL: the shutdown went on without it",
                "  late: still running: the shutdown went on without it",
                "shutdown phases: services 1.500 s, TERM-all 3.000 s, KILL-all 0.020 s, sync and unmount 0.007 s",
            ]
        );
    }

    #[test]
    fn a_phase_that_did_not_run_is_not_needed() {
        let t = PhaseTimes {
            services_ms: Some(10),
            term_ms: Some(20),
            kill_ms: None,
        };
        let lines = render(PowerKind::Halt, &[], t, 0);
        assert_eq!(lines[0], "shutdown report (halting):");
        assert!(
            lines[1].contains("TERM-all 0.020 s, KILL-all not needed"),
            "{lines:?}"
        );
    }
}

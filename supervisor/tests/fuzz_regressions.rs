//! Findings of the fuzz targets in supervisor/fuzz/, each as a plain test that replays
//! the smallest case by hand. A finding not yet fixed is `#[ignore]`d with the reason, so
//! it documents the bug without turning everyone's CI red; whoever fixes it removes the
//! `ignore` (`cargo test -p supervisor --test fuzz_regressions -- --ignored` runs them).

use supervisor::config;
use supervisor::core::Supervisor;
use supervisor::event::{Action, ConnId, Event};
use supervisor::proto::Request;
use supervisor::{Mono, Pid, Sig, SvcId, WaitStatus};

fn kills(out: &[Action]) -> Vec<(Pid, Sig)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Kill { pid, sig } => Some((*pid, *sig)),
            _ => None,
        })
        .collect()
}

/// supervisor/fuzz/artifacts/core/kill-after-reap: a service stopped with SIGTERM exits
/// at its stop timeout, and the driver reports the exit in the same wake-up as the
/// deadline. `handle` fires due timers before it applies the event, so it sends SIGKILL
/// to the pid the driver has just reaped, which the kernel may already have given to
/// another process (`Action::Kill` promises a child the core "has not seen exit").
#[test]
fn an_exit_reported_at_the_stop_timeout_is_not_killed_again() {
    let cfg = match config::parse(
        "[services.a]\nexec = [\"/bin/a\"]\nstop_timeout = \"5s\"\n",
        "t.toml",
    ) {
        Ok(c) => c,
        Err(d) => panic!("{d:?}"),
    };
    let mut sup = Supervisor::new(&cfg);
    let mut out = Vec::new();
    sup.handle(Event::Deadline, Mono(0), &mut out);
    sup.handle(
        Event::Spawned {
            svc: SvcId(0),
            pid: Pid(100),
        },
        Mono(0),
        &mut out,
    );
    out.clear();
    sup.handle(
        Event::Control(ConnId(1), Request::Stop("a".into())),
        Mono(1000),
        &mut out,
    );
    assert_eq!(kills(&out), [(Pid(100), Sig::TERM)]);
    assert_eq!(sup.next_deadline(), Some(Mono(6000)));
    out.clear();
    sup.handle(
        Event::Exited {
            pid: Pid(100),
            status: WaitStatus::Signaled(Sig::TERM),
        },
        Mono(6000),
        &mut out,
    );
    assert_eq!(kills(&out), [], "a reaped pid was signalled: {out:?}");
    assert_eq!(sup.next_deadline(), None);
}

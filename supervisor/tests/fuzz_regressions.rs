//! Findings of the fuzz targets in supervisor/fuzz/, each as a plain test that replays
//! the smallest case by hand. A finding not yet fixed is `#[ignore]`d with the reason, so
//! it documents the bug without turning everyone's CI red; whoever fixes it removes the
//! `ignore` (`cargo test -p supervisor --test fuzz_regressions -- --ignored` runs them).

use supervisor::core::Supervisor;
use supervisor::event::{Action, ConnId, Event};
use supervisor::proto::Request;
use supervisor::{Mono, Pid, Sig, SvcId, WaitStatus};

fn kills(out: &[Action]) -> Vec<(Pid, Sig)> {
    out.iter().filter_map(Action::signals_pid).collect()
}

/// supervisor/fuzz/artifacts/core/kill-after-reap: a service stopped with SIGTERM exits
/// at its stop timeout, and the driver reports the exit in the same wake-up as the
/// deadline. `handle` fires due timers before it applies the event, so it sends SIGKILL
/// to the pid the driver has just reaped, which the kernel may already have given to
/// another process (`Action::Kill` promises a child the core "has not seen exit").
#[test]
fn an_exit_reported_at_the_stop_timeout_is_not_killed_again() {
    let cfg = match appliance::parse(
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
    // Its group ends with it (the driver reports that first).
    sup.handle(Event::GroupEmpty(SvcId(0)), Mono(6000), &mut out);
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

/// supervisor/fuzz/artifacts/core/cycle-respawn-loop: a config built in code (the parser
/// refuses cycles) whose `needs` form a cycle, s1 -> s5 -> s4 -> s1, plus an unknown name.
/// The core started s1, found in the same step that it could not stay up, killed it and
/// started it again on the exit: an endless spawn/kill loop at one instant. The graph now
/// drops the edge that closes a cycle, so each service starts once and stays up.
#[test]
fn a_cycle_in_a_hand_built_config_does_not_loop() {
    let mut cfg = appliance::ApplianceConfig::default();
    for (name, needs) in [
        ("s1", &["s5"][..]),
        ("s4", &["s1", "nowhere"][..]),
        ("s5", &["s4"][..]),
    ] {
        let mut s = appliance::ServiceConfig::new(name, &["/bin/sleep", "1000"]);
        s.needs = needs.iter().map(|n| n.to_string()).collect();
        cfg.services.push(s);
    }
    let mut sup = Supervisor::new(&cfg);
    let mut out = Vec::new();
    sup.handle(Event::Deadline, Mono(0), &mut out);
    let (mut spawns, mut next_pid) = (0, 100);
    // The driver's part: every spawn succeeds, every kill ends its process, all at once.
    for _ in 0..1000 {
        let batch = std::mem::take(&mut out);
        if batch.is_empty() {
            break;
        }
        for a in batch {
            match a {
                Action::Spawn(svc, _) => {
                    spawns += 1;
                    next_pid += 1;
                    sup.handle(
                        Event::Spawned {
                            svc,
                            pid: Pid(next_pid),
                        },
                        Mono(0),
                        &mut out,
                    );
                }
                a if a.signals_pid().is_some() => {
                    panic!("{a:?} although nothing failed");
                }
                _ => {}
            }
        }
    }
    assert!(out.is_empty(), "still acting after 1000 rounds: {out:?}");
    assert_eq!(spawns, 3, "each service starts exactly once");
    for i in 0..3 {
        let st = sup.state(SvcId(i)).expect("service");
        assert!(format!("{:?}", st.phase).starts_with("Up"), "{i}: {st:?}");
    }
}

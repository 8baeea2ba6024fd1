//! Property tests of the supervisor core: random acyclic configs and random event
//! sequences, with the invariants checked after every step.

mod common;

use appliance::{ApplianceConfig, Leftovers, Ready, Restart, ServiceConfig};
use common::Sim;
use proptest::prelude::{Strategy, any, prop_oneof, proptest};
use std::time::Duration;
use supervisor::event::{Action, Event};
use supervisor::state::Phase;
use supervisor::{PowerKind, Sig, SvcId, WaitStatus};

#[derive(Debug, Clone)]
enum Op {
    Exit(usize, i32),
    ExitKilled(usize),
    Ready(usize),
    Advance(u64),
    Start(usize),
    Stop(usize),
    Restart(usize),
    FailSpawn(usize),
    Output(usize),
    /// The service's main process will leave others of its group running.
    Linger(usize),
    /// The rest of a group ends.
    Empty(usize),
    Shutdown,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<usize>(), 0i32..3).prop_map(|(i, c)| Op::Exit(i, c)),
        3 => any::<usize>().prop_map(Op::ExitKilled),
        3 => any::<usize>().prop_map(Op::Ready),
        4 => (0u64..40_000).prop_map(Op::Advance),
        1 => any::<usize>().prop_map(Op::Start),
        1 => any::<usize>().prop_map(Op::Stop),
        1 => any::<usize>().prop_map(Op::Restart),
        1 => any::<usize>().prop_map(Op::FailSpawn),
        1 => any::<usize>().prop_map(Op::Output),
        2 => any::<usize>().prop_map(Op::Linger),
        2 => any::<usize>().prop_map(Op::Empty),
        1 => proptest::strategy::Just(Op::Shutdown),
    ]
}

/// Per service: oneshot?, ready kind, restart mode, needs mask, after mask (lower indices
/// only, so the graph is acyclic).
fn config() -> impl Strategy<Value = ApplianceConfig> {
    proptest::collection::vec(
        (
            any::<bool>(),
            0u8..3,
            0u8..3,
            any::<u8>(),
            any::<u8>(),
            0u64..3000,
        ),
        2..7,
    )
    .prop_map(|specs| {
        let mut services = Vec::new();
        for (i, (oneshot, ready, restart, needs, after, stop_ms)) in specs.into_iter().enumerate() {
            let name = format!("s{i}");
            let mut s = if oneshot {
                ServiceConfig::oneshot(&name, &["/x"])
            } else {
                ServiceConfig::new(&name, &["/x"])
            };
            if !oneshot {
                s.ready = match ready {
                    0 => Ready::Started,
                    1 => Ready::Notify,
                    _ => Ready::Tcp(80),
                };
            }
            s.restart = match (restart, oneshot) {
                (0, false) => Restart::Always,
                (0, true) | (1, _) => Restart::OnFailure,
                _ => Restart::Never,
            };
            s.crash_loop.limit = 3;
            s.stop_timeout = Duration::from_millis(stop_ms);
            // Bit 7 of `after` (edges use bits 0-5): leftovers are released.
            if after & 0x80 != 0 {
                s.leftovers = Leftovers::Release;
            }
            // Half of them time out while starting, some within one step's advance.
            s.start_timeout = (stop_ms % 2 == 0).then(|| Duration::from_millis(stop_ms * 10 + 1));
            for j in 0..i {
                if needs & (1 << j) != 0 {
                    s.needs.push(format!("s{j}"));
                } else if after & (1 << j) != 0 {
                    s.after.push(format!("s{j}"));
                }
            }
            services.push(s);
        }
        ApplianceConfig {
            services,
            ..ApplianceConfig::default()
        }
    })
}

/// Checks the invariants over the actions of the last step and the state after it.
fn check_step(sim: &Sim, from: usize, live_before: &[supervisor::Pid], spawned_before: usize) {
    let g = sim.sup.graph();
    for (_, a) in &sim.actions[from..] {
        match a {
            Action::Spawn(s, _) => {
                // Forward order: everything it needs is up when it is spawned.
                for n in &g.needs[s.0] {
                    let p = sim.sup.state(*n).map(|x| x.phase);
                    assert!(
                        matches!(p, Some(Phase::Up { .. })),
                        "s{} spawned while its need s{} is {p:?}",
                        s.0,
                        n.0
                    );
                }
                // No dependent is left over from before when it starts again.
                for d in &g.needed_by[s.0] {
                    assert!(
                        !sim.live.values().any(|v| v == d)
                            || sim.spawned_this_step_after(from, *d, *s),
                        "s{} spawned while its dependent s{} still runs",
                        s.0,
                        d.0
                    );
                }
            }
            Action::Kill { .. } | Action::SignalGroup { .. } | Action::KillGroup { .. } => {
                let Some((pid, sig)) = a.signals_pid() else {
                    continue;
                };
                let (pid, sig) = (&pid, &sig);
                // Only children it spawned and has not seen exit.
                // (A child spawned in this step may also be killed and reaped in it: a
                // start_timeout inside one long `advance`.)
                assert!(
                    live_before.contains(pid)
                        || sim.live.contains_key(pid)
                        || sim.spawned[spawned_before..].contains(pid),
                    "killed pid {pid}, which is not a live child"
                );
                let Some(owner) = sim.live.get(pid).copied() else {
                    continue;
                };
                if *sig != Sig::KILL {
                    // Reverse order: everything that needs it is already gone.
                    for d in &g.needed_by[owner.0] {
                        assert!(
                            !sim.live.values().any(|v| v == d),
                            "s{} stopped while its dependent s{} still runs",
                            owner.0,
                            d.0
                        );
                    }
                }
            }
            Action::Reply(..)
            | Action::Log(_)
            | Action::Emergency { .. }
            | Action::ReleaseGroup { .. }
            | Action::Halt(_) => {}
        }
    }
    for i in 0..g.len() {
        let Some(st) = sim.sup.state(SvcId(i)) else {
            continue;
        };
        if let Some(pid) = st.phase.pid() {
            assert_eq!(
                sim.live.get(&pid),
                Some(&SvcId(i)),
                "s{i} holds pid {pid}, which is not its live child"
            );
        }
        if let Phase::Delayed { until } = st.phase {
            let cap = sim
                .sup
                .config(SvcId(i))
                .map(|c| c.backoff.cap)
                .unwrap_or_default();
            assert!(until.since(sim.now) <= cap, "s{i} delayed beyond its cap");
        }
    }
    if let Some(t) = sim.sup.next_deadline() {
        assert!(t >= sim.now, "deadline {t} is in the past at {}", sim.now);
    }
}

trait StepHelpers {
    fn spawned_this_step_after(&self, from: usize, d: SvcId, s: SvcId) -> bool;
}

impl StepHelpers for Sim {
    /// True if `d`'s live process was spawned after `s` in this step (then it needs `s`
    /// fresh, which is fine).
    fn spawned_this_step_after(&self, from: usize, d: SvcId, s: SvcId) -> bool {
        let acts = &self.actions[from..];
        let ps = acts
            .iter()
            .position(|(_, a)| matches!(a, Action::Spawn(x, _) if *x == s));
        let pd = acts
            .iter()
            .rposition(|(_, a)| matches!(a, Action::Spawn(x, _) if *x == d));
        matches!((ps, pd), (Some(a), Some(b)) if b > a)
    }
}

fn run(cfg: &ApplianceConfig, ops: &[Op]) {
    let mut sim = Sim::new(cfg);
    sim.sigkill_is_lethal = true;
    let n = cfg.services.len();
    let killed = |sim: &Sim| -> Vec<supervisor::Pid> {
        let mut k: Vec<_> = sim
            .actions
            .iter()
            .filter_map(|(_, a)| {
                a.signals_pid()
                    .map(|(p, _)| p)
                    .filter(|p| sim.live.contains_key(p))
            })
            .collect();
        k.dedup();
        k
    };
    let step = |sim: &mut Sim, f: &mut dyn FnMut(&mut Sim)| {
        let from = sim.actions.len();
        let live: Vec<_> = sim.live.keys().copied().collect();
        let spawned = sim.spawned.len();
        f(sim);
        check_step(sim, from, &live, spawned);
    };
    step(&mut sim, &mut |s| s.event(Event::Deadline));
    for op in ops {
        let name = |i: usize| format!("s{}", i % n);
        match op.clone() {
            Op::Exit(i, code) => {
                let live: Vec<_> = sim.live.keys().copied().collect();
                if let Some(&pid) = live.get(i % live.len().max(1)) {
                    step(&mut sim, &mut |s| s.exit(pid, WaitStatus::Exited(code)));
                }
            }
            Op::ExitKilled(i) => {
                let k = killed(&sim);
                if let Some(&pid) = k.get(i % k.len().max(1)) {
                    step(&mut sim, &mut |s| {
                        s.exit(pid, WaitStatus::Signaled(Sig::TERM))
                    });
                }
            }
            Op::Ready(i) => step(&mut sim, &mut |s| s.line(&format!("ready {}", name(i)))),
            Op::Advance(ms) => step(&mut sim, &mut |s| s.advance(Duration::from_millis(ms))),
            Op::Start(i) => step(&mut sim, &mut |s| s.line(&format!("start {}", name(i)))),
            Op::Stop(i) => step(&mut sim, &mut |s| s.line(&format!("stop {}", name(i)))),
            Op::Restart(i) => step(&mut sim, &mut |s| s.line(&format!("restart {}", name(i)))),
            Op::FailSpawn(i) => sim.line(&format!("failspawn {} errno=13", name(i))),
            Op::Output(i) => step(&mut sim, &mut |s| {
                s.line(&format!("output {} some output", name(i)))
            }),
            Op::Linger(i) => sim.line(&format!("linger {}", name(i))),
            Op::Empty(i) => {
                let busy = sim.busy_groups.clone();
                if let Some(s) = busy.get(i % busy.len().max(1)) {
                    let n = format!("empty {}", sim.name(*s));
                    step(&mut sim, &mut |x| x.line(&n));
                }
            }
            Op::Shutdown => step(&mut sim, &mut |s| {
                s.event(Event::Shutdown(PowerKind::PowerOff))
            }),
        }
    }
    // Let everything settle: killed processes die, time passes, readiness arrives; half
    // of the lingering groups end by themselves, the rest wait for their group kill.
    for round in 0..50 {
        if round % 2 == 0 {
            for s in sim.busy_groups.clone() {
                let n = format!("empty {}", sim.name(s));
                step(&mut sim, &mut |x| x.line(&n));
            }
        }
        for pid in killed(&sim) {
            step(&mut sim, &mut |s| {
                s.exit(pid, WaitStatus::Signaled(Sig::TERM))
            });
        }
        for i in 0..n {
            step(&mut sim, &mut |s| s.line(&format!("ready s{i}")));
        }
        // Oneshots finish.
        let oneshots: Vec<_> = sim
            .live
            .iter()
            .filter(|(_, s)| sim.sup.config(**s).is_some_and(|c| c.ready == Ready::Exit))
            .map(|(p, _)| *p)
            .collect();
        for pid in oneshots {
            step(&mut sim, &mut |s| s.exit(pid, WaitStatus::Exited(0)));
        }
        step(&mut sim, &mut |s| s.advance(Duration::from_secs(600)));
    }
    // At rest, nothing runs while something it needs is not up.
    let g = sim.sup.graph();
    for (pid, s) in &sim.live {
        for need in &g.needs[s.0] {
            let p = sim.sup.state(*need).map(|x| x.phase);
            assert!(
                matches!(p, Some(Phase::Up { .. })),
                "at rest s{} (pid {pid}) runs while its need s{} is {p:?}",
                s.0,
                need.0
            );
        }
    }
    // A shutdown ends with one halt and no process left.
    let halts = sim
        .actions
        .iter()
        .filter(|(_, a)| matches!(a, Action::Halt(_)))
        .count();
    assert!(halts <= 1, "{halts} halts");
    // At rest, a service that counts as stopped has nothing of its group left.
    for s in &sim.busy_groups {
        let st = sim.sup.state(*s).map(|x| x.is_quiet());
        assert_eq!(st, Some(false), "s{} is quiet while its group runs", s.0);
    }
    if ops.iter().any(|o| matches!(o, Op::Shutdown)) {
        assert_eq!(halts, 1, "shutdown never completed: {:?}", sim.sup.status());
        assert!(sim.busy_groups.is_empty(), "groups left after shutdown");
        assert!(
            sim.live.is_empty(),
            "processes left after shutdown: {:?}",
            sim.live
        );
    }
    // Every reaped pid was spawned, and reaped once.
    let mut reaped = sim.reaped.clone();
    reaped.sort();
    let before = reaped.len();
    reaped.dedup();
    assert_eq!(before, reaped.len(), "a pid was reaped twice");
    assert!(reaped.iter().all(|p| sim.spawned.contains(p)));
}

proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 512, ..Default::default() })]

    #[test]
    fn invariants_hold_for_random_event_sequences(cfg in config(), ops in proptest::collection::vec(op(), 0..60)) {
        run(&cfg, &ops);
    }
}

//! Scenario tests of the supervisor core: a config, a script of events, and the exact
//! trace of actions that must come out (dinit's tests.cc and proctests.cc, as data).

mod common;

use common::{Sim, parse_config};
use supervisor::event::Action;
use supervisor::{Pid, Sig, SvcId};

/// Runs `script` (one command per line) against `config` and compares the trace
/// (`TIME ACTION` lines; the initial boot step is the first event) with `expected`.
fn check(config: &str, script: &str, expected: &str) {
    let cfg = parse_config(config);
    let mut sim = Sim::new(&cfg);
    sim.event(supervisor::event::Event::Deadline);
    for line in script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        sim.line(line);
    }
    let got = sim.trace.join("\n");
    let want: Vec<&str> = expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let want = want.join("\n");
    if got != want {
        panic!("trace differs\n--- expected\n{want}\n--- got\n{got}\n");
    }
}

/// net <- dhcp <- sshd, no jitter so delays are exact.
const CHAIN: &str = r#"
[services.net]
exec = ["/net"]
ready = "notify"
backoff = { jitter = 0 }
[services.dhcp]
exec = ["/dhcp"]
needs = ["net"]
backoff = { jitter = 0 }
[services.sshd]
exec = ["/sshd"]
needs = ["dhcp"]
stop_timeout = "2s"
backoff = { jitter = 0 }
"#;

/// A oneshot and two independent branches joined by `app`.
const DIAMOND: &str = r#"
[services.keys]
exec = ["/keys"]
kind = "oneshot"
restart = "on-failure"
backoff = { jitter = 0 }
[services.net]
exec = ["/net"]
backoff = { jitter = 0 }
[services.app]
exec = ["/app"]
needs = ["keys", "net"]
backoff = { jitter = 0 }
[services.log]
exec = ["/log"]
after = ["app"]
"#;

#[test]
fn chain_starts_in_order_and_stops_in_reverse() {
    check(
        CHAIN,
        "
        ready net
        status sshd
        stop net
        status dhcp
        exit sshd signal=15
        exit dhcp signal=15
        exit net signal=15
        status sshd
        start sshd
        ready net
        ",
        "
        0.000 spawn net pid=100
        0.000 spawn dhcp pid=101
        0.000 spawn sshd pid=102
        0.000 status sshd: up
        0.000 reply ok stopping net
        0.000 kill sshd pid=102 SIGTERM
        0.000 status dhcp: up
        0.000 kill dhcp pid=101 SIGTERM
        0.000 kill net pid=100 SIGTERM
        0.000 status sshd: down (stopped because it needs net, which was stopped by request)
        0.000 reply ok starting sshd
        0.000 spawn net pid=103
        0.000 spawn dhcp pid=104
        0.000 spawn sshd pid=105
        ",
    );
}

#[test]
fn restart_after_the_backoff_delay() {
    check(
        CHAIN,
        "
        ready net
        exit sshd code=1
        status sshd
        advance 199ms
        advance 1ms
        exit sshd code=1
        advance 400ms
        status sshd
        ",
        "
        0.000 spawn net pid=100
        0.000 spawn dhcp pid=101
        0.000 spawn sshd pid=102
        0.000 status sshd: restarting (exit code 1; restarting in 200ms)
        0.200 spawn sshd pid=103
        0.600 spawn sshd pid=104
        0.600 status sshd: up
        ",
    );
}

#[test]
fn restart_storm_ends_in_give_up_and_dependents_stay_down() {
    check(
        CHAIN,
        "
        ready net
        exit net code=1
        exit sshd signal=15
        exit dhcp signal=15
        advance 200ms
        exit net code=1
        advance 400ms
        exit net code=1
        advance 800ms
        exit net code=1
        advance 1600ms
        exit net code=1
        status net
        status dhcp
        advance 5m
        ready net
        status sshd
        ",
        "
        0.000 spawn net pid=100
        0.000 spawn dhcp pid=101
        0.000 spawn sshd pid=102
        0.000 kill sshd pid=102 SIGTERM
        0.000 kill dhcp pid=101 SIGTERM
        0.200 spawn net pid=103
        0.600 spawn net pid=104
        1.400 spawn net pid=105
        3.000 spawn net pid=106
        3.000 status net: gave-up (exit code 1; gave up after 5 failures within 60s; retrying in 300s)
        3.000 status dhcp: waiting (waiting for net, which gave up)
        303.000 spawn net pid=107
        303.000 spawn dhcp pid=108
        303.000 spawn sshd pid=109
        303.000 status sshd: up
        ",
    );
}

#[test]
fn dependents_restart_in_order_after_a_crash() {
    check(
        CHAIN,
        "
        ready net
        exit net signal=9
        advance 1s
        exit sshd signal=15
        exit dhcp signal=15
        advance 1s
        ready net
        ",
        "
        0.000 spawn net pid=100
        0.000 spawn dhcp pid=101
        0.000 spawn sshd pid=102
        0.000 kill sshd pid=102 SIGTERM
        1.000 kill dhcp pid=101 SIGTERM
        1.000 spawn net pid=103
        2.000 spawn dhcp pid=104
        2.000 spawn sshd pid=105
        ",
    );
}

#[test]
fn stop_timeout_escalates_to_sigkill() {
    check(
        CHAIN,
        "
        ready net
        exit dhcp code=3
        advance 2s
        exit sshd signal=9
        advance 200ms
        ",
        "
        0.000 spawn net pid=100
        0.000 spawn dhcp pid=101
        0.000 spawn sshd pid=102
        0.000 kill sshd pid=102 SIGTERM
        2.000 kill sshd pid=102 SIGKILL
        2.000 spawn dhcp pid=103
        2.000 spawn sshd pid=104
        ",
    );
}

#[test]
fn stop_during_start() {
    check(
        CHAIN,
        "
        stop net
        status net
        exit net signal=15
        status sshd
        ",
        "
        0.000 spawn net pid=100
        0.000 reply ok stopping net
        0.000 kill net pid=100 SIGTERM
        0.000 status net: stopping (stopped by request)
        0.000 status sshd: down (stopped because it needs net, which was stopped by request)
        ",
    );
}

#[test]
fn crash_during_cascade() {
    check(
        CHAIN,
        "
        ready net
        exit net code=1
        exit dhcp code=1
        status dhcp
        exit sshd signal=15
        advance 200ms
        ready net
        status dhcp
        ",
        "
        0.000 spawn net pid=100
        0.000 spawn dhcp pid=101
        0.000 spawn sshd pid=102
        0.000 kill sshd pid=102 SIGTERM
        0.000 status dhcp: waiting (waiting for net, which failed)
        0.200 spawn net pid=103
        0.200 spawn dhcp pid=104
        0.200 spawn sshd pid=105
        0.200 status dhcp: up
        ",
    );
}

#[test]
fn shutdown_stops_in_reverse_order_then_halts() {
    check(
        DIAMOND,
        "
        exit keys code=0
        status app
        shutdown reboot
        exit log signal=15
        exit app signal=15
        exit net signal=15
        ",
        "
        0.000 spawn keys pid=100
        0.000 spawn net pid=101
        0.000 spawn app pid=102
        0.000 spawn log pid=103
        0.000 status app: up
        0.000 kill log pid=103 SIGTERM
        0.000 kill app pid=102 SIGTERM
        0.000 kill net pid=101 SIGTERM
        0.000 halt reboot
        ",
    );
}

#[test]
fn oneshot_failure_is_retried_and_app_waits() {
    check(
        DIAMOND,
        "
        exit keys code=1
        status app
        advance 200ms
        exit keys code=0
        ",
        "
        0.000 spawn keys pid=100
        0.000 spawn net pid=101
        0.000 status app: waiting (waiting for keys, which failed)
        0.200 spawn keys pid=102
        0.200 spawn app pid=103
        0.200 spawn log pid=104
        ",
    );
}

#[test]
fn manual_restart_of_a_dependency_brings_dependents_back() {
    check(
        CHAIN,
        "
        ready net
        restart net
        exit sshd signal=15
        exit dhcp signal=15
        exit net signal=15
        ready net
        ",
        "
        0.000 spawn net pid=100
        0.000 spawn dhcp pid=101
        0.000 spawn sshd pid=102
        0.000 reply ok restarting net
        0.000 kill sshd pid=102 SIGTERM
        0.000 kill dhcp pid=101 SIGTERM
        0.000 kill net pid=100 SIGTERM
        0.000 spawn net pid=103
        0.000 spawn dhcp pid=104
        0.000 spawn sshd pid=105
        ",
    );
}

#[test]
fn spawn_failure_is_a_failure_with_backoff() {
    check(
        CHAIN,
        "
        ready net
        exit net code=1
        failspawn net errno=2
        status net
        exit sshd signal=15
        exit dhcp signal=15
        advance 200ms
        status net
        advance 400ms
        ready net
        ",
        "
        0.000 spawn net pid=100
        0.000 spawn dhcp pid=101
        0.000 spawn sshd pid=102
        0.000 kill sshd pid=102 SIGTERM
        0.000 status net: restarting (exit code 1; restarting in 200ms)
        0.000 kill dhcp pid=101 SIGTERM
        0.200 spawn net failed errno=2
        0.200 status net: restarting (spawn failed with errno 2; restarting in 400ms)
        0.600 spawn net pid=103
        0.600 spawn dhcp pid=104
        0.600 spawn sshd pid=105
        ",
    );
}

#[test]
fn unknown_names_and_bad_requests_get_errors() {
    check(
        CHAIN,
        "
        start nett
        logs sshd 5
        output sshd hello world
        logs sshd 5
        shutdown halt
        start net
        exit net signal=15
        ",
        r#"
        0.000 spawn net pid=100
        0.000 reply err no service named nett; did you mean net?
        0.000 reply logs dropped=0 []
        0.000 reply logs dropped=0 ["hello world"]
        0.000 kill net pid=100 SIGTERM
        0.000 reply err keel is shutting down
        0.000 halt halt
        "#,
    );
}

#[test]
fn unkillable_process_is_waited_for_but_not_at_shutdown() {
    check(
        "[services.s0]\nexec=[\"/x\"]\n[services.s1]\nexec=[\"/x\"]\nneeds=[\"s0\"]\nstop_timeout=\"1s\"\n",
        "
        stop s0
        advance 10s
        status s1
        shutdown poweroff
        advance 5s
        exit s0 signal=15
        ",
        "
        0.000 spawn s0 pid=100
        0.000 spawn s1 pid=101
        0.000 reply ok stopping s0
        0.000 kill s1 pid=101 SIGTERM
        1.000 kill s1 pid=101 SIGKILL
        10.000 status s1: stopping (stopped because it needs s0, which was stopped by request)
        15.000 kill s0 pid=100 SIGTERM
        15.000 halt poweroff
        ",
    );
}

/// The shutdown report: in the order they ended, how each service stopped and how long
/// it took from its stop signal.
#[test]
fn shutdown_report_says_how_each_service_stopped() {
    use std::time::Duration;
    use supervisor::state::StopHow;
    use supervisor::{Sig, WaitStatus};
    let cfg = parse_config(
        r#"
[services.net]
exec = ["/net"]
[services.app]
exec = ["/app"]
needs = ["net"]
stop_timeout = "2s"
[services.stubborn]
exec = ["/stubborn"]
needs = ["net"]
stop_timeout = "1s"
[services.once]
exec = ["/once"]
kind = "oneshot"
[services.off]
exec = ["/off"]
restart = "never"
"#,
    );
    let mut sim = Sim::new(&cfg);
    sim.event(supervisor::event::Event::Deadline);
    sim.line("exit once code=0");
    sim.line("exit off code=3");
    assert!(
        sim.sup.shutdown_report().is_empty(),
        "no report before shutdown"
    );
    sim.line("advance 10ms");
    sim.line("shutdown poweroff");
    sim.line("advance 300ms");
    sim.line("exit app signal=15");
    // stubborn ignores SIGTERM: SIGKILL after its 1 s stop_timeout.
    sim.line("advance 1s");
    sim.line("exit stubborn signal=9");
    sim.line("advance 50ms");
    sim.line("exit net code=0");
    let rows = sim.sup.shutdown_report();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["once", "off", "app", "stubborn", "net"]);
    assert_eq!(rows[0].how, Some(StopHow::AlreadyDown));
    assert_eq!(rows[1].how, Some(StopHow::AlreadyDown));
    assert_eq!(rows[1].took, None);
    assert_eq!(
        rows[2].how,
        Some(StopHow::Exited(WaitStatus::Signaled(Sig::TERM)))
    );
    assert_eq!(rows[2].took, Some(Duration::from_millis(300)));
    assert_eq!(
        rows[3].how,
        Some(StopHow::Killed(WaitStatus::Signaled(Sig::KILL)))
    );
    assert_eq!(rows[3].took, Some(Duration::from_millis(1300)));
    assert_eq!(rows[3].stop_timeout, Duration::from_secs(1));
    assert_eq!(rows[4].how, Some(StopHow::Exited(WaitStatus::Exited(0))));
    assert_eq!(rows[4].took, Some(Duration::from_millis(50)));
}

/// A service that survives SIGKILL is given up on during shutdown, and the report says so;
/// the log tail of a service is its last lines.
#[test]
fn shutdown_report_names_a_process_that_survived_sigkill() {
    use supervisor::state::StopHow;
    let cfg = parse_config(
        r#"
[services.zombie]
exec = ["/z"]
stop_timeout = "1s"
"#,
    );
    let mut sim = Sim::new(&cfg);
    sim.event(supervisor::event::Event::Deadline);
    for i in 0..15 {
        sim.line(&format!("output zombie line {i}"));
    }
    let z = sim.id("zombie");
    assert_eq!(
        sim.sup.log_tail(z, 2),
        ["line 13".to_string(), "line 14".to_string()]
    );
    sim.line("shutdown halt");
    sim.line("advance 10s");
    let rows = sim.sup.shutdown_report();
    assert_eq!(rows[0].how, Some(StopHow::Abandoned));
    assert!(
        sim.trace.iter().any(|l| l.contains("halt")),
        "{:?}",
        sim.trace
    );
}

#[test]
fn wait_answers_when_ready_or_when_it_never_can_be() {
    check(
        CHAIN,
        "
        wait sshd net
        ready net
        wait sshd
        stop dhcp
        wait sshd
        ",
        "
        0.000 spawn net pid=100
        0.000 spawn dhcp pid=101
        0.000 spawn sshd pid=102
        0.000 reply ok sshd, net ready
        0.000 reply ok sshd ready
        0.000 reply ok stopping dhcp
        0.000 kill sshd pid=102 SIGTERM
        0.000 reply err sshd cannot become ready without a start request (stopping: stopped because it needs dhcp, which was stopped by request)
        ",
    );
}

#[test]
fn the_boot_timeline_has_the_critical_chain_and_ends_once() {
    check(
        DIAMOND,
        "
        advance 30ms
        exit keys code=0
        boot
        logs-on
        advance 10ms
        exit app code=1
        ",
        "
        0.000 spawn keys pid=100
        0.000 spawn net pid=101
        0.030 spawn app pid=102
        0.030 spawn log pid=103
        0.030 boot up=0.030 chain=keys@0.000+30ms,app@0.030+0ms,log@0.030+0ms
        0.040 log keel: app exited (exit code 1)
        0.040 log keel: restarting app in 200ms
        ",
    );
}

/// A notify service that never says READY=1, a hung oneshot, and what needs them.
const HANGS: &str = r#"
[services.web]
exec = ["/web"]
ready = "notify"
start_timeout = "30s"
stop_timeout = "2s"
backoff = { initial = "1s", jitter = 0 }
[services.app]
exec = ["/app"]
needs = ["web"]
[services.prep]
exec = ["/prep"]
kind = "oneshot"
start_timeout = "1m"
[services.job]
exec = ["/job"]
needs = ["prep"]
[services.slow]
exec = ["/slow"]
ready = "notify"
start_timeout = "0"
"#;

#[test]
fn a_start_that_takes_too_long_is_a_failure() {
    check(
        HANGS,
        "
        advance 12s
        status web
        status prep
        status slow
        advance 18s
        exit web signal=15
        status web
        status app
        advance 1s
        ready web
        status app
        advance 30s
        exit prep signal=15
        status prep
        status job
        advance 1h
        status slow
        ",
        "
        0.000 spawn web pid=100
        0.000 spawn prep pid=101
        0.000 spawn slow pid=102
        12.000 status web: starting (waiting for READY=1 for 12s of start_timeout 30s)
        12.000 status prep: running (running for 12s of start_timeout 60s)
        12.000 status slow: starting (waiting for READY=1 for 12s)
        30.000 kill web pid=100 SIGTERM
        30.000 status web: restarting (did not become ready within 30s (start_timeout) and was stopped (killed by SIGTERM); restarting in 1s)
        30.000 status app: waiting (waiting for web, which failed)
        31.000 spawn web pid=103
        31.000 spawn app pid=104
        31.000 status app: up
        60.000 kill prep pid=101 SIGTERM
        61.000 status prep: down (did not finish within 60s (start_timeout) and was stopped (killed by SIGTERM); restart = \"never\", so it stays down)
        61.000 status job: waiting (waiting for prep, which is stopped)
        3661.000 status slow: starting (waiting for READY=1 for 3661s)
        ",
    );
}

/// A shell that backgrounded children: its stop signal goes to the whole group, and the
/// service is stopped, and may start again, only once the last of them is gone.
#[test]
fn a_stop_waits_for_the_whole_group() {
    check(
        CHAIN,
        "
        ready net
        linger sshd
        stop sshd
        exit sshd signal=15
        status sshd
        start sshd
        status sshd
        empty sshd
        status sshd
        ",
        "
        0.000 spawn net pid=100
        0.000 spawn dhcp pid=101
        0.000 spawn sshd pid=102
        0.000 reply ok stopping sshd
        0.000 kill sshd pid=102 SIGTERM
        0.000 status sshd: stopping (its main process exited; waiting for the rest of its group to end)
        0.000 reply ok starting sshd
        0.000 status sshd: stopping (its main process exited; waiting for the rest of its group to end)
        0.000 spawn sshd pid=103
        0.000 status sshd: up
        ",
    );
}

/// The main process crashes and leaves children: they get the stop signal, cgroup.kill
/// after stop_timeout, and the restart waits for the group to be empty, past the backoff.
#[test]
fn a_crash_that_leaves_children_restarts_only_when_they_are_gone() {
    check(
        CHAIN,
        "
        logs-on
        ready net
        linger sshd
        exit sshd code=1
        advance 200ms
        status sshd
        advance 2s
        empty sshd
        ",
        "
        0.000 spawn net pid=100
        0.000 log keel: net is ready
        0.000 log keel: starting dhcp
        0.000 spawn dhcp pid=101
        0.000 log keel: starting sshd
        0.000 spawn sshd pid=102
        0.000 log keel: up in 0.00 s; critical chain: net 0 ms → dhcp 0 ms → sshd 0 ms
        0.000 log keel: sshd's main process exited; stopping the rest of its group
        0.000 signal group sshd SIGTERM
        0.000 log keel: sshd exited (exit code 1)
        0.000 log keel: restarting sshd in 200ms
        0.200 status sshd: stopping (its main process exited; waiting for the rest of its group to end)
        2.000 log keel: processes of sshd outlived it by 2s (stop_timeout); killing its group
        2.000 kill group sshd
        2.200 log keel: the last process of sshd is gone
        2.200 log keel: starting sshd
        2.200 spawn sshd pid=103
        ",
    );
}

/// What a service needs is stopped only after the dependent's whole group is gone, and a
/// shutdown halts only when every group is empty.
#[test]
fn needs_and_shutdown_wait_for_groups() {
    check(
        CHAIN,
        "
        ready net
        linger dhcp
        shutdown poweroff
        exit sshd signal=15
        exit dhcp signal=15
        status net
        advance 1s
        empty dhcp
        exit net signal=15
        ",
        "
        0.000 spawn net pid=100
        0.000 spawn dhcp pid=101
        0.000 spawn sshd pid=102
        0.000 kill sshd pid=102 SIGTERM
        0.000 kill dhcp pid=101 SIGTERM
        0.000 status net: up
        1.000 kill net pid=100 SIGTERM
        1.000 halt poweroff
        ",
    );
}

/// A finished oneshot that left a daemon running: the daemon belongs to the service and
/// is stopped with it.
#[test]
fn a_finished_oneshot_s_leftovers_are_stopped_with_it() {
    check(
        r#"
[services.daemonize]
exec = ["/d"]
kind = "oneshot"
"#,
        "
        linger daemonize
        exit daemonize code=0
        status daemonize
        stop daemonize
        status daemonize
        empty daemonize
        status daemonize
        ",
        "
        0.000 spawn daemonize pid=100
        0.000 status daemonize: done
        0.000 reply ok stopping daemonize
        0.000 signal group daemonize SIGTERM
        0.000 status daemonize: stopping (its main process exited; waiting for the rest of its group to end)
        0.000 status daemonize: down (stopped by request)
        ",
    );
}

/// The OOM killer is named as such in the status and the log, and the restart policy
/// applies as to any crash.
#[test]
fn an_oom_kill_is_reported_and_restarted() {
    check(
        r#"
[services.hog]
exec = ["/hog"]
backoff = { jitter = 0 }
"#,
        "
        logs-on
        oom hog limit=33554432
        exit hog signal=9
        status hog
        advance 200ms
        status hog
        ",
        "
        0.000 spawn hog pid=100
        0.000 log keel: hog: killed by the OOM killer at memory.max 32M
        0.000 log keel: hog exited (killed by the OOM killer at memory.max 32M)
        0.000 log keel: restarting hog in 200ms
        0.000 status hog: restarting (killed by the OOM killer at memory.max 32M; restarting in 200ms)
        0.200 log keel: starting hog
        0.200 spawn hog pid=101
        0.200 status hog: up
        ",
    );
}

/// sshd's `leftovers = "release"`: a stop signals the main process only, and what it left
/// (login sessions) is moved out of its group, so a restart neither waits for nor kills
/// them.
const RELEASING: &str = r#"
[services.net]
exec = ["/net"]
ready = "notify"
backoff = { jitter = 0 }
[services.sshd]
exec = ["/sshd"]
needs = ["net"]
stop_timeout = "2s"
leftovers = "release"
backoff = { jitter = 0 }
"#;

/// Runs `script` on `config` and returns the trace and every action.
fn run(config: &str, script: &str) -> (String, Vec<Action>) {
    let cfg = parse_config(config);
    let mut sim = Sim::new(&cfg);
    sim.event(supervisor::event::Event::Deadline);
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        sim.line(line);
    }
    let actions = sim.actions.iter().map(|(_, a)| a.clone()).collect();
    (sim.trace.join("\n"), actions)
}

fn signals_group(actions: &[Action]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::SignalGroup { .. } | Action::KillGroup { .. }))
}

#[test]
fn a_restart_with_released_leftovers_does_not_wait_for_or_signal_them() {
    let (trace, actions) = run(
        RELEASING,
        "ready net
         linger sshd
         restart sshd
         exit sshd signal=15
         status sshd",
    );
    assert!(!signals_group(&actions), "{actions:?}");
    assert!(actions.contains(&Action::Kill {
        pid: Pid(101),
        sig: Sig::TERM
    }));
    assert!(actions.contains(&Action::ReleaseGroup { svc: SvcId(1) }));
    let want = "0.000 spawn net pid=100
0.000 spawn sshd pid=101
0.000 reply ok restarting sshd
0.000 kill sshd pid=101 SIGTERM
0.000 release group sshd
0.000 spawn sshd pid=102
0.000 status sshd: up";
    assert_eq!(trace, want);
}

#[test]
fn a_crash_with_released_leftovers_restarts_after_the_backoff_alone() {
    let (trace, actions) = run(
        RELEASING,
        "ready net
         linger sshd
         exit sshd code=1
         advance 200ms
         status sshd",
    );
    assert!(!signals_group(&actions), "{actions:?}");
    let want = "0.000 spawn net pid=100
0.000 spawn sshd pid=101
0.000 release group sshd
0.200 spawn sshd pid=102
0.200 status sshd: up";
    assert_eq!(trace, want);
}

#[test]
fn a_main_process_that_ignores_its_stop_signal_is_killed_alone() {
    let (trace, actions) = run(
        RELEASING,
        "ready net
         linger sshd
         stop sshd
         advance 2s
         exit sshd signal=9
         status sshd",
    );
    assert!(!signals_group(&actions), "{actions:?}");
    let want = "0.000 spawn net pid=100
0.000 spawn sshd pid=101
0.000 reply ok stopping sshd
0.000 kill sshd pid=101 SIGTERM
2.000 kill sshd pid=101 SIGKILL
2.000 release group sshd
2.000 status sshd: down (stopped by request)";
    assert_eq!(trace, want);
}

#[test]
fn the_shipped_appliance_config_builds_a_core() {
    // Its validation is appliance's test; here: the core takes what the parser gives.
    let cfg = parse_config(include_str!("../../configs/appliance.toml"));
    let _ = supervisor::core::Supervisor::new(&cfg);
}

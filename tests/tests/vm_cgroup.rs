//! VM tests for issue 14: every service in its own cgroup, limits, OOM, the watchdog.
//!
//! The shipped appliance config (sshd, the console shell) plus test services, overlaid on
//! /etc/keel/appliance.toml:
//! - `bg` backgrounds children (one in its own session): a stop leaves none of them;
//! - `leaky` leaves a child behind at every crash: 20 restarts leave no orphans and keel's
//!   open files (/proc/1/fd) do not grow;
//! - `hog` allocates past its memory_max: OOM-killed, said so, restarted; sshd answers and
//!   PID 1's RSS stays put;
//! - `bomb` forks without end: it stops at pids_max and ssh still works;
//! - sshd's login sessions outlive `keelctl restart sshd` (`leftovers = "release"`);
//! - with QEMU's i6300esb and `-action watchdog=reset -no-reboot`: idle for 3x the
//!   timeout, no reset; a service in `[watchdog] needs` giving up ends QEMU within
//!   timeout + 10 s; poweroff never triggers a reset.
//!
//! They boot target/keel/bzImage and run only with KEEL_VM_TESTS=1; logs are in
//! target/keel/vm-logs/<test>.log.
#![allow(clippy::disallowed_methods)] // A VM test: it waits with a clock.

use anyhow::{Context, Result, bail, ensure};
use keel_tests::{BOOT_TIMEOUT, BootOpts, CMD_TIMEOUT, EXIT_TIMEOUT, Vm, vm_tests_enabled};
use std::path::Path;
use std::time::{Duration, Instant};

const SERVICES: &str = r#"
[services.bg]
exec = ["/bin/sh", "-c", "sleep 1001 & setsid sleep 1002 & exec sleep 1003"]

[services.leaky]
exec = ["/bin/sh", "-c", "sleep 1004 & echo started; exit 1"]
stop_timeout = "500ms"
backoff = { initial = "100ms", factor = 1, cap = "100ms", jitter = 0 }
crash_loop = { limit = 1000, within = "1s" }
"#;

const HOG: &str = r#"
[services.hog]
# dd's 64 MiB buffer, filled from /dev/zero, is more than its 32 MiB.
exec = ["/bin/sh", "-c", "echo allocating; dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 1000"]
memory_max = "32M"
backoff = { initial = "2s", factor = 1, cap = "2s", jitter = 0 }
crash_loop = { limit = 1000, within = "1s" }

[services.bomb]
exec = ["/bin/sh", "-c", "while :; do sleep 1000 & done"]
pids_max = 32
cpu_weight = 10
"#;

/// The shipped config with `extra` appended.
fn config(extra: &str) -> Result<String> {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/appliance.toml");
    let shipped = std::fs::read_to_string(&shipped).context("reading configs/appliance.toml")?;
    Ok(format!("{shipped}\n{extra}"))
}

fn boot(name: &str, extra: &str) -> Result<Vm> {
    let opts = BootOpts::new(name)
        .overlay("/etc/keel/appliance.toml", config(extra)?)
        .authorize_test_key()?;
    let vm = Vm::boot(opts)?;
    vm.wait_ssh(BOOT_TIMEOUT)?;
    Ok(vm)
}

/// Polls a console command until `f` accepts its output, at most BOOT_TIMEOUT.
fn poll<T>(vm: &mut Vm, what: &str, cmd: &str, f: impl Fn(&str) -> Option<T>) -> Result<T> {
    let start = Instant::now();
    loop {
        let out = vm.run(cmd, CMD_TIMEOUT)?;
        if let Some(v) = f(&out) {
            return Ok(v);
        }
        if start.elapsed() > BOOT_TIMEOUT {
            bail!("timed out waiting for {what}; last output of {cmd:?}:\n{out}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The last line of `out` that parses as a number.
fn number(out: &str) -> Option<u64> {
    out.lines().rev().find_map(|l| l.trim().parse().ok())
}

/// Live (not zombie) processes whose command line is `sleep N` for this `n`, in the guest.
/// The command line is read with `tr`, not matched by grep across its NUL bytes: keel's
/// busybox is built on musl, whose regex stops at a NUL (busybox's EXTRA_COMPAT, which
/// handles them, needs glibc's re_search).
fn sleeps(vm: &mut Vm, n: u32) -> Result<Vec<u32>> {
    let cmd = format!(
        "for p in $(pidof sleep); do [ \"$(tr '\\0' ' ' < /proc/$p/cmdline 2>/dev/null)\" = 'sleep {n} ' ] && ! grep -q '^State:.Z' /proc/$p/status 2>/dev/null && echo PID $p; done; true"
    );
    let out = vm.run(&cmd, CMD_TIMEOUT)?;
    Ok(out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("PID ")?.parse().ok())
        .collect())
}

#[test]
fn a_stop_and_crash_restarts_leave_no_process_and_no_open_pipe() -> Result<()> {
    let name = "a_stop_and_crash_restarts_leave_no_process_and_no_open_pipe";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let mut vm = boot(name, SERVICES)?;
    // bg: three sleeps, one in its own session, all in keel/bg.
    let start = Instant::now();
    let pids = loop {
        let p: Vec<u32> = [1001, 1002, 1003]
            .into_iter()
            .map(|n| sleeps(&mut vm, n))
            .collect::<Result<Vec<_>>>()?
            .concat();
        if p.len() == 3 {
            break p;
        }
        ensure!(
            start.elapsed() < BOOT_TIMEOUT,
            "bg's sleeps never ran: {p:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let procs = vm.run("cat /sys/fs/cgroup/keel/bg/cgroup.procs", CMD_TIMEOUT)?;
    for p in &pids {
        ensure!(
            procs.lines().any(|l| l.trim() == p.to_string()),
            "pid {p} is not in keel/bg:\n{procs}"
        );
    }
    let status = vm.run("keelctl status bg", CMD_TIMEOUT)?;
    ensure!(status.contains("processes in the group of bg:"), "{status}");
    vm.run("keelctl stop bg", CMD_TIMEOUT)?;
    vm.wait_services("bg down", &["bg"], |r| r[0].0 == "down")?;
    let left = vm.run(
        "cat /sys/fs/cgroup/keel/bg/cgroup.procs; echo end",
        CMD_TIMEOUT,
    )?;
    ensure!(
        left.trim() == "end",
        "keel/bg still holds processes:\n{left}"
    );
    for n in [1001, 1002, 1003] {
        let s = sleeps(&mut vm, n)?;
        ensure!(
            s.is_empty(),
            "sleep {n} outlived its stopped service: {s:?}"
        );
    }
    // leaky: 20 crash-restarts, each leaving a child behind.
    let restarts = |vm: &mut Vm, n: u64| {
        poll(
            vm,
            &format!("{n} restarts of leaky"),
            "keelctl --json status leaky",
            |out| {
                let start = out.find('{')?;
                let v: serde_json::Value = serde_json::from_str(out[start..].trim()).ok()?;
                let r = v["services"][0]["restarts"].as_u64()?;
                (r >= n).then_some(r)
            },
        )
    };
    let fds = |vm: &mut Vm| -> Result<u64> {
        number(&vm.run("ls /proc/1/fd | wc -l", CMD_TIMEOUT)?).context("no fd count")
    };
    restarts(&mut vm, 3)?;
    let early = fds(&mut vm)?;
    restarts(&mut vm, 23)?;
    let late = fds(&mut vm)?;
    ensure!(
        late <= early + 2,
        "keel's open files grew from {early} to {late} over 20 restarts"
    );
    let orphans = sleeps(&mut vm, 1004)?;
    ensure!(
        orphans.len() <= 1,
        "children of old leaky instances still run: {orphans:?}"
    );
    let log = vm.keel_log()?;
    ensure!(
        log.contains("keel: leaky's main process exited; stopping the rest of its group"),
        "{log}"
    );
    vm.assert_no_kernel_panic()
}

/// sshd's `leftovers = "release"`: `keelctl restart sshd` (and so a crash) leaves an open
/// ssh session running, moved to keel/released.scope, and the new sshd's group holds only
/// itself.
#[test]
fn an_ssh_session_outlives_a_restart_of_sshd() -> Result<()> {
    let name = "an_ssh_session_outlives_a_restart_of_sshd";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let mut vm = boot(name, "")?;
    let before =
        vm.wait_services("sshd up", &["sshd"], |r| r[0].0 == "up" && r[0].1.is_some())?[0].1;
    // A session that waits for a line on its stdin, so the test decides when it ends.
    let key = keel_tests::ssh::test_key()?;
    let mut session = std::process::Command::new("ssh")
        .args(keel_tests::ssh::ssh_args(vm.ssh_port(), &key))
        .arg("--")
        .arg("echo begun; read line; echo survived $line")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot run ssh: apt-get install openssh-client")?;
    let mut stdout = session.stdout.take().context("no ssh stdout")?;
    let mut first = [0u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut first).context("the session printed nothing")?;
    ensure!(&first == b"begun\n", "the session began with {first:?}");
    let during = vm.run("cat /sys/fs/cgroup/keel/sshd/cgroup.procs", CMD_TIMEOUT)?;
    ensure!(
        during
            .lines()
            .filter(|l| l.trim().parse::<u32>().is_ok())
            .count()
            >= 2,
        "the session is not in keel/sshd:\n{during}"
    );
    vm.run("keelctl restart sshd", CMD_TIMEOUT)?;
    let after = vm.wait_services("a new sshd up", &["sshd"], |r| {
        r[0].0 == "up" && r[0].1.is_some() && r[0].1 != before
    })?[0]
        .1
        .context("no pid")?;
    let group = vm.run("cat /sys/fs/cgroup/keel/sshd/cgroup.procs", CMD_TIMEOUT)?;
    let group: Vec<&str> = group
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    ensure!(
        group == [after.to_string()],
        "keel/sshd holds more than the new sshd (pid {after}): {group:?}"
    );
    let released = vm.run(
        "cat /sys/fs/cgroup/keel/released.scope/cgroup.procs",
        CMD_TIMEOUT,
    )?;
    ensure!(
        released.lines().any(|l| l.trim().parse::<u32>().is_ok()),
        "nothing in keel/released.scope:\n{released}"
    );
    // The session still answers, and ends as it was asked to.
    {
        let mut stdin = session.stdin.take().context("no ssh stdin")?;
        std::io::Write::write_all(&mut stdin, b"ok\n")?;
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest)?;
    let status = session.wait()?;
    let mut err = String::new();
    if let Some(mut e) = session.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    ensure!(
        status.success() && rest.trim() == "survived ok",
        "the session did not survive the restart ({status}): {rest:?} {err}"
    );
    vm.wait_ssh(BOOT_TIMEOUT)?;
    let log = vm.keel_log()?;
    ensure!(
        log.contains("released to /sys/fs/cgroup/keel/released.scope"),
        "{log}"
    );
    vm.assert_no_kernel_panic()
}

#[test]
fn a_memory_hog_is_oom_killed_and_a_fork_bomb_stops_at_pids_max() -> Result<()> {
    let name = "a_memory_hog_is_oom_killed_and_a_fork_bomb_stops_at_pids_max";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let mut vm = boot(name, HOG)?;
    let rss = |vm: &mut Vm| -> Result<u64> {
        let out = vm.run("awk '/^VmRSS/ {print $2}' /proc/1/status", CMD_TIMEOUT)?;
        number(&out).context("no VmRSS for PID 1")
    };
    let before = rss(&mut vm)?;
    let line = "keel: hog: killed by the OOM killer at memory.max 32M";
    let start = Instant::now();
    loop {
        let log = vm.keel_log()?;
        // Killed, then started again: twice each means a restart after an OOM kill.
        if log.matches(line).count() >= 2 && log.matches("keel: starting hog").count() >= 2 {
            ensure!(
                log.contains("keel: hog exited (killed by the OOM killer at memory.max 32M)"),
                "{log}"
            );
            break;
        }
        ensure!(
            start.elapsed() < BOOT_TIMEOUT,
            "hog was not OOM-killed and restarted; keel's log:\n{log}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let st = vm.run("keelctl status hog", CMD_TIMEOUT)?;
    ensure!(
        st.contains("killed by the OOM killer") || st.contains(" up "),
        "keelctl status hog: {st}"
    );
    ensure!(
        vm.ssh("echo ssh-ok")?.trim() == "ssh-ok",
        "sshd stopped answering"
    );
    let oom_max = vm.run(
        "cat /sys/fs/cgroup/keel/hog/memory.max /sys/fs/cgroup/keel/hog/memory.oom.group",
        CMD_TIMEOUT,
    )?;
    ensure!(oom_max.contains("33554432"), "{oom_max}");
    // The fork bomb hits pids.max (pids.events counts each refused fork; busybox sh may
    // end on the refusal and be restarted, so the count, not pids.current, is the proof);
    // ssh still works beside it.
    let limit = vm.run("cat /sys/fs/cgroup/keel/bomb/pids.max", CMD_TIMEOUT)?;
    ensure!(number(&limit) == Some(32), "pids.max of bomb: {limit}");
    poll(
        &mut vm,
        "the fork bomb at pids_max",
        "cat /sys/fs/cgroup/keel/bomb/pids.events",
        |out| {
            out.lines()
                .find_map(|l| l.trim().strip_prefix("max ")?.parse::<u64>().ok())
                .filter(|n| *n > 0)
        },
    )?;
    ensure!(
        vm.ssh("echo ssh-ok")?.trim() == "ssh-ok",
        "ssh failed beside the fork bomb"
    );
    let table = vm.run("keelctl status hog sshd", CMD_TIMEOUT)?;
    ensure!(
        table.lines().filter(|l| l.starts_with("sshd ")).any(|l| l
            .split_whitespace()
            .nth(3)
            .is_some_and(|m| m.ends_with('K') || m.ends_with('M'))),
        "MEM of sshd is not shown:\n{table}"
    );
    let after = rss(&mut vm)?;
    ensure!(
        after <= before + 1024,
        "PID 1's RSS grew from {before} kB to {after} kB"
    );
    vm.assert_no_kernel_panic()
}

const WATCHDOG: &str = r#"
[watchdog]
timeout = "10s"
needs = ["fragile"]

[services.fragile]
# Runs until /run/fail exists; then every start fails and it gives up.
exec = ["/bin/sh", "-c", "test -e /run/fail && exit 1; exec sleep 1000"]
backoff = { initial = "100ms", factor = 1, cap = "100ms", jitter = 0 }
crash_loop = { limit = 3, within = "60s" }
"#;

fn boot_with_watchdog(name: &str) -> Result<Vm> {
    let opts = BootOpts::new(name)
        .overlay("/etc/keel/appliance.toml", config(WATCHDOG)?)
        .qemu_args(["-device", "i6300esb", "-action", "watchdog=reset"]);
    let mut vm = Vm::boot(opts)?;
    vm.wait_for(
        "keel: watchdog armed /dev/watchdog timeout 10s",
        BOOT_TIMEOUT,
    )?;
    vm.wait_for("keel: console shell on /dev/ttyS0", BOOT_TIMEOUT)?;
    Ok(vm)
}

#[test]
fn the_watchdog_holds_while_healthy_and_resets_when_a_needed_service_gives_up() -> Result<()> {
    let name = "the_watchdog_holds_while_healthy_and_resets_when_a_needed_service_gives_up";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let mut vm = boot_with_watchdog(name)?;
    // Idle for 3x the timeout: keel pets, nothing resets (-no-reboot would end QEMU).
    std::thread::sleep(Duration::from_secs(30));
    let st = vm.run("keelctl status fragile", CMD_TIMEOUT)?;
    ensure!(st.contains("watchdog: armed /dev/watchdog"), "{st}");
    vm.send_line("touch /run/fail; keelctl restart fragile")?;
    vm.wait_for(
        "keel: watchdog: not petting /dev/watchdog any more: fragile gave up",
        BOOT_TIMEOUT,
    )?;
    let gave_up = Instant::now();
    vm.wait_exit(Duration::from_secs(10 + 10))?;
    let took = gave_up.elapsed();
    let text = vm.console_text();
    ensure!(
        !text.contains("reboot: Power down") && !text.contains("reboot: Restarting"),
        "the guest stopped by itself, not by the watchdog"
    );
    ensure!(took <= Duration::from_secs(20), "reset after {took:?}");
    Ok(())
}

#[test]
fn poweroff_with_an_armed_watchdog_is_a_clean_power_down() -> Result<()> {
    let name = "poweroff_with_an_armed_watchdog_is_a_clean_power_down";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let mut vm = boot_with_watchdog(name)?;
    vm.send_line("keelctl poweroff")?;
    vm.wait_for("keel: watchdog /dev/watchdog disarmed", EXIT_TIMEOUT)?;
    vm.wait_clean_exit(EXIT_TIMEOUT)?;
    let text = vm.console_text();
    ensure!(
        text.contains("reboot: Power down"),
        "QEMU ended without the kernel's power down"
    );
    vm.assert_no_kernel_panic()
}

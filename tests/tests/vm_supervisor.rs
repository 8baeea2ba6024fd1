//! VM tests for issue 3: keel's supervisor as PID 1. A test appliance config (overlaid on
//! /etc/keel/appliance.toml) runs a chain `a` <- `b` and the console shell as a service;
//! `kill -9` of a's pid must show b stopped in `keelctl status`, then both running again
//! with new pids, and keel's log (dmesg) must show the cascade in order. `keelctl poweroff`
//! must stop the services in reverse order and end QEMU.
//!
//! They boot target/keel/bzImage (KEEL_VM_KERNEL=modular: the Debian kernel and
//! target/keel/initramfs.cpio.gz; `cargo xtask test` builds both) and run only with
//! KEEL_VM_TESTS=1; logs are in target/keel/vm-logs/<test>.log.

use anyhow::{Context, Result, ensure};
use keel_tests::{
    BOOT_TIMEOUT, BootOpts, CMD_TIMEOUT, EXIT_TIMEOUT, Vm, in_order, vm_tests_enabled,
};

/// The chain, and a console shell so the test can type. `a` waits 3 s before it comes
/// back, so the state in between is there to see.
const CONFIG: &str = r#"
[system]
hostname = "cascade"

[services.a]
exec = ["/bin/sleep", "1000"]
backoff = { initial = "3s", factor = 1, cap = "3s", jitter = 0 }

[services.b]
exec = ["/bin/sleep", "1000"]
needs = ["a"]

[services.console]
exec = ["/bin/sh", "-l"]
console = true
backoff = { initial = "100ms", factor = 1, cap = "100ms" }
crash_loop = { limit = 1000, within = "1s" }
stop_signal = "HUP"
"#;

fn boot(name: &str) -> Result<Vm> {
    let mut vm = Vm::boot(BootOpts::new(name).overlay("/etc/keel/appliance.toml", CONFIG))?;
    vm.wait_for("keel: console shell on /dev/ttyS0", BOOT_TIMEOUT)?;
    Ok(vm)
}

#[test]
fn kill_9_of_a_dependency_restarts_the_chain_in_order() -> Result<()> {
    if !vm_tests_enabled("kill_9_of_a_dependency_restarts_the_chain_in_order") {
        return Ok(());
    }
    let mut vm = boot("kill_9_of_a_dependency_restarts_the_chain_in_order")?;
    let up = |r: &[(String, Option<i32>)]| r.iter().all(|(s, p)| s == "up" && p.is_some());
    let first = vm.wait_services("a and b up", &["a", "b"], up)?;
    let (old_a, old_b) = (first[0].1.unwrap_or(0), first[1].1.unwrap_or(0));
    vm.run(&format!("kill -9 {old_a}"), CMD_TIMEOUT)?;
    // a serves its 3 s backoff; b was stopped for it and waits.
    let between = vm.wait_services("b stopped while a restarts", &["a", "b"], |r| {
        r[0].0 == "restarting" && r[1].0 == "waiting" && r[1].1.is_none()
    })?;
    ensure!(between[0].1.is_none(), "a still has a pid: {between:?}");
    let again = vm.wait_services("both up again", &["a", "b"], up)?;
    let (new_a, new_b) = (again[0].1.unwrap_or(0), again[1].1.unwrap_or(0));
    ensure!(
        new_a != old_a && new_b != old_b,
        "pids did not change: a {old_a} -> {new_a}, b {old_b} -> {new_b}"
    );
    // The cascade in order, from keel's complete log (the console may drop a line).
    let log = vm.keel_log()?;
    let kill = "keel: a exited (killed by SIGKILL)";
    let from = log
        .rfind(kill)
        .with_context(|| format!("keel never logged {kill:?}:\n{log}"))?;
    in_order(
        &log[from..],
        &[
            kill,
            "keel: stopping b (it needs a, which failed)",
            "keel: b stopped",
            "keel: starting a",
            "keel: starting b",
        ],
    )?;
    vm.assert_no_kernel_panic()
}

#[test]
fn keelctl_poweroff_stops_services_in_reverse_order() -> Result<()> {
    if !vm_tests_enabled("keelctl_poweroff_stops_services_in_reverse_order") {
        return Ok(());
    }
    let mut vm = boot("keelctl_poweroff_stops_services_in_reverse_order")?;
    vm.wait_services("a and b up", &["a", "b"], |r| {
        r.iter().all(|(s, _)| s == "up")
    })?;
    vm.send_line("keelctl poweroff")?;
    vm.wait_for("keel: powering off", EXIT_TIMEOUT)?;
    vm.wait_for("keel: stopping b", EXIT_TIMEOUT)?;
    vm.wait_for("keel: b stopped", EXIT_TIMEOUT)?;
    vm.wait_for("keel: stopping a", EXIT_TIMEOUT)?;
    vm.wait_for("keel: every service is stopped", EXIT_TIMEOUT)?;
    vm.wait_clean_exit(EXIT_TIMEOUT)?;
    vm.assert_no_kernel_panic()
}

#[test]
fn a_panic_in_keel_hands_the_console_from_the_service_to_the_emergency_shell() -> Result<()> {
    let name = "a_panic_in_keel_hands_the_console_from_the_service_to_the_emergency_shell";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let opts = BootOpts::new(name)
        .overlay("/etc/keel/appliance.toml", CONFIG)
        .append("keel.test_panic");
    let mut vm = Vm::boot(opts)?;
    vm.wait_for("keel: console shell on /dev/ttyS0", BOOT_TIMEOUT)?;
    vm.wait_for("keel: EMERGENCY: keel panicked", BOOT_TIMEOUT)?;
    // The console service is stopped first (a second shell must never share the tty).
    vm.wait_for("keel: stopping console", BOOT_TIMEOUT)?;
    vm.wait_for("keel: console stopped", BOOT_TIMEOUT)?;
    vm.wait_for("keel: emergency shell on /dev/ttyS0", BOOT_TIMEOUT)?;
    let out = vm.run("echo $((6*7)) $KEEL_EMERGENCY", CMD_TIMEOUT)?;
    ensure!(
        out.lines().any(|l| l.trim() == "42 1"),
        "the emergency shell printed {out:?}"
    );
    // The other services keep running under the supervisor, and the console stays down.
    let rows = vm.wait_services("a and b up", &["a", "b", "console"], |r| {
        r[0].0 == "up" && r[1].0 == "up"
    })?;
    ensure!(
        rows[2].0 == "down",
        "the console service came back: {rows:?}"
    );
    vm.assert_no_kernel_panic()
}

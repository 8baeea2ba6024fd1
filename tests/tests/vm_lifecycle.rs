//! VM tests for issue 7: orderly shutdown, the power button and the emergency shell.
//! `poweroff` over ssh and on the console, and QEMU's `system_powerdown` (the ACPI power
//! button, seen by keel through evdev), make QEMU exit by itself with the services stopped
//! in reverse order and a shutdown report; a service that ignores SIGTERM is killed after
//! its stop_timeout and the report says so; `keel.emergency` gives a shell with job
//! control; a service that gives up with on_give_up = "emergency" brings the summary with
//! its last log lines, the shell, and when the shell exits the service is started again.
//! With a root password the emergency shell is behind sulogin, which refuses a wrong one;
//! with `keel.emergency_timeout` nobody pressing Enter reboots the machine.
//!
//! They boot target/keel/bzImage (KEEL_VM_KERNEL=modular: the Debian kernel and
//! target/keel/initramfs.cpio.gz; `cargo xtask test` builds both) and run only with
//! KEEL_VM_TESTS=1; logs are in target/keel/vm-logs/<test>.log. No timing is asserted.

use anyhow::{Result, ensure};
use keel_tests::{
    BOOT_TIMEOUT, BootOpts, CMD_TIMEOUT, EXIT_TIMEOUT, Vm, in_order, vm_tests_enabled,
};

/// A chain `a` <- `b`, a service that ignores SIGTERM, and the console shell.
const CONFIG: &str = r#"
[system]
hostname = "lifecycle"

# The power button on a modular kernel (built in on the single image).
[modules]
load = ["evdev", "button"]

[services.a]
exec = ["/bin/sleep", "1000"]

[services.b]
exec = ["/bin/sleep", "1000"]
needs = ["a"]

[services.stubborn]
exec = ["/bin/sh", "-c", "trap '' TERM; while :; do sleep 1; done"]
stop_timeout = "1s"

[services.console]
exec = ["/bin/sh", "-l"]
console = true
stop_signal = "HUP"
"#;

/// A service that fails at once, every time, and drops to the emergency shell.
const GIVE_UP: &str = r#"
[system]
hostname = "giveup"

[services.flaky]
exec = ["/bin/sh", "-c", "echo flaky says hello; echo flaky cannot find its data; exit 3"]
backoff = { initial = "100ms", factor = 1, cap = "100ms", jitter = 0 }
crash_loop = { limit = 2, within = "60s" }
on_give_up = "emergency"

[services.console]
exec = ["/bin/sh", "-l"]
console = true
stop_signal = "HUP"
"#;

/// Boots with `keel.emergency` added to `opts` and waits for keel to say so.
fn boot_emergency(opts: BootOpts) -> Result<Vm> {
    let mut vm = Vm::boot(opts.append("keel.emergency"))?;
    vm.wait_for("keel: EMERGENCY: emergency shell requested", BOOT_TIMEOUT)?;
    Ok(vm)
}

fn boot_chain(name: &str) -> Result<Vm> {
    let mut vm = Vm::boot(BootOpts::new(name).overlay("/etc/keel/appliance.toml", CONFIG))?;
    vm.wait_for("keel: console shell on /dev/ttyS0", BOOT_TIMEOUT)?;
    // b and stubborn start in either order: wait until the console shows both.
    let out = vm.run(
        r#"until [ "$(keelctl status | awk '($1=="b" || $1=="stubborn") && $2=="up"' | wc -l)" = 2 ]; do sleep 0.2; done; echo BOTH-UP"#,
        BOOT_TIMEOUT,
    )?;
    ensure!(
        out.contains("BOTH-UP"),
        "b and stubborn are not up: {out:?}"
    );
    Ok(vm)
}

/// Waits for the shutdown report and for QEMU to exit by itself; returns the console
/// from `mark` on.
fn powered_off(vm: &mut Vm, mark: usize) -> Result<String> {
    vm.wait_for("keel: shutdown report (powering off):", EXIT_TIMEOUT)?;
    vm.wait_clean_exit(EXIT_TIMEOUT)?;
    Ok(vm
        .console_text()
        .get(mark..)
        .unwrap_or_default()
        .to_string())
}

/// Waits for QEMU to exit by itself, then checks the order and the report.
fn check_poweroff(mut vm: Vm, mark: usize) -> Result<()> {
    let tail = powered_off(&mut vm, mark)?;
    let tail = tail.as_str();
    in_order(
        tail,
        &[
            "keel: powering off",
            "keel: stopping b",
            "keel: b stopped",
            "keel: stopping a",
            "keel: every service is stopped",
            "keel: shutdown report (powering off):",
            "keel:   b: stopped by its stop signal SIGTERM",
            "keel: shutdown phases: services ",
        ],
    )?;
    ensure!(
        tail.contains("keel:   stubborn: SIGKILL after its stop_timeout of 1.000 s"),
        "the report does not say stubborn was killed:\n{tail}"
    );
    ensure!(
        tail.contains("keel: stubborn (pid ")
            && tail.contains("did not stop in time; sending SIGKILL"),
        "no SIGKILL note for stubborn:\n{tail}"
    );
    vm.assert_no_kernel_panic()
}

#[test]
fn poweroff_on_the_console_stops_in_reverse_order_and_kills_what_ignores_sigterm() -> Result<()> {
    let name = "poweroff_on_the_console_stops_in_reverse_order_and_kills_what_ignores_sigterm";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let mut vm = boot_chain(name)?;
    let mark = vm.console_text().len();
    vm.send_line("poweroff")?;
    check_poweroff(vm, mark)
}

#[test]
fn the_acpi_power_button_powers_off_in_order() -> Result<()> {
    let name = "the_acpi_power_button_powers_off_in_order";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let mut vm = boot_chain(name)?;
    let text = vm.console_text();
    ensure!(
        !text.contains("no power button found"),
        "keel found no power button:\n{text}"
    );
    let mark = text.len();
    vm.monitor("system_powerdown")?;
    vm.wait_for("keel: power button pressed", EXIT_TIMEOUT)?;
    check_poweroff(vm, mark)
}

#[test]
fn poweroff_over_ssh_ends_qemu_with_a_report() -> Result<()> {
    let name = "poweroff_over_ssh_ends_qemu_with_a_report";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let mut vm = Vm::boot(BootOpts::new(name).authorize_test_key()?)?;
    vm.wait_ssh(BOOT_TIMEOUT)?;
    let mark = vm.console_text().len();
    // The connection may end before ssh sees poweroff's status: only the console counts.
    let _ = vm.ssh_output("/sbin/poweroff");
    let tail = powered_off(&mut vm, mark)?;
    let tail = tail.as_str();
    // sshd and the network both need the firewall: they stop before it.
    for svc in ["sshd", "network"] {
        in_order(
            tail,
            &[
                "keel: powering off",
                &format!("keel: stopping {svc}"),
                "keel: firewall is down",
                "keel: every service is stopped",
            ],
        )?;
    }
    in_order(
        tail,
        &[
            "keel: powering off",
            "keel: stopping sshd",
            "keel: sshd stopped",
            "keel: every service is stopped",
            "keel: shutdown report (powering off):",
            "keel:   sshd: ",
            "keel: shutdown phases: ",
        ],
    )?;
    vm.assert_no_kernel_panic()
}

#[test]
fn keel_emergency_gives_a_shell_with_job_control() -> Result<()> {
    let name = "keel_emergency_gives_a_shell_with_job_control";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let mut vm = boot_emergency(BootOpts::new(name))?;
    vm.wait_for(
        "no root password is set: the emergency shell opens without one",
        BOOT_TIMEOUT,
    )?;
    vm.wait_for("keel: emergency shell on /dev/ttyS0", BOOT_TIMEOUT)?;
    // The harness joins commands with `;`, which cannot follow `&`: type it as a line.
    vm.send_line("sleep 100 &")?;
    let out = vm.run("jobs", CMD_TIMEOUT)?;
    ensure!(
        out.lines()
            .any(|l| l.contains("Running") && l.contains("sleep 100")),
        "jobs printed {out:?}"
    );
    vm.assert_no_kernel_panic()
}

#[test]
fn a_service_that_gives_up_brings_its_summary_and_the_shell() -> Result<()> {
    let name = "a_service_that_gives_up_brings_its_summary_and_the_shell";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let mut vm = Vm::boot(BootOpts::new(name).overlay("/etc/keel/appliance.toml", GIVE_UP))?;
    vm.wait_for("keel: EMERGENCY: service flaky", BOOT_TIMEOUT)?;
    vm.wait_for("keel: emergency shell on /dev/ttyS0", BOOT_TIMEOUT)?;
    let text = vm.console_text();
    in_order(
        &text,
        &[
            "keel: EMERGENCY: service flaky",
            "'s log:",
            "keel:   flaky| flaky says hello",
            "keel:   flaky| flaky cannot find its data",
            "keel: when the shell exits, keel starts the service again",
            "keel: emergency shell on /dev/ttyS0",
        ],
    )?;
    let out = vm.run("echo $((6*7)) $KEEL_EMERGENCY", CMD_TIMEOUT)?;
    ensure!(
        out.lines().any(|l| l.trim() == "42 1"),
        "the emergency shell printed {out:?}"
    );
    // Leaving the shell goes on: flaky is started again (and here gives up again).
    let mark = vm.console_text().len();
    vm.send_line("exit")?;
    vm.wait_for(
        "keel: the cause is gone: leaving the emergency shell",
        BOOT_TIMEOUT,
    )?;
    vm.wait_for("keel: starting flaky", BOOT_TIMEOUT)?;
    let text = vm.console_text();
    ensure!(
        text.get(mark..)
            .unwrap_or_default()
            .contains("keel: starting flaky"),
        "flaky was not started again"
    );
    vm.assert_no_kernel_panic()
}

#[test]
fn with_a_root_password_the_emergency_shell_asks_for_it() -> Result<()> {
    let name = "with_a_root_password_the_emergency_shell_asks_for_it";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let mut vm = boot_emergency(
        BootOpts::new(name).overlay("/etc/shadow", keel_tests::shadow_with_test_password()),
    )?;
    vm.wait_for(
        "root has a password: give it to sulogin for the emergency shell",
        BOOT_TIMEOUT,
    )?;
    // busybox sulogin: "Give root password for system maintenance".
    vm.wait_for("root password", BOOT_TIMEOUT)?;
    vm.send_line("not-the-password")?;
    vm.wait_for("Login incorrect", CMD_TIMEOUT)?;
    vm.wait_for("root password", CMD_TIMEOUT)?;
    ensure!(
        !vm.console_text().contains("(keel emergency)"),
        "a shell prompt appeared before the right password"
    );
    vm.send_line(keel_tests::TEST_PASSWORD)?;
    vm.wait_for("(keel emergency)", CMD_TIMEOUT)?;
    let out = vm.run("echo $((6*7)) $KEEL_EMERGENCY; id -un", CMD_TIMEOUT)?;
    ensure!(out == "42 1\nroot\n", "the emergency shell printed {out:?}");
    vm.assert_no_kernel_panic()
}

#[test]
fn nobody_at_the_emergency_shell_reboots_after_the_timeout() -> Result<()> {
    let name = "nobody_at_the_emergency_shell_reboots_after_the_timeout";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let mut vm = boot_emergency(BootOpts::new(name).append("keel.emergency_timeout=3"))?;
    vm.wait_for(
        "press Enter on /dev/ttyS0 within 3 s for the emergency shell, or the machine reboots",
        BOOT_TIMEOUT,
    )?;
    vm.wait_for(
        "nobody took the emergency shell within 3 s (keel.emergency_timeout)",
        BOOT_TIMEOUT,
    )?;
    // QEMU runs with -no-reboot: the guest's reboot ends it.
    vm.wait_for("keel: rebooting", EXIT_TIMEOUT)?;
    vm.wait_clean_exit(EXIT_TIMEOUT)?;
    ensure!(
        !vm.console_text().contains("(keel emergency)"),
        "a shell was opened although nobody pressed Enter"
    );
    vm.assert_no_kernel_panic()
}

#[test]
fn enter_within_the_timeout_opens_the_emergency_shell() -> Result<()> {
    let name = "enter_within_the_timeout_opens_the_emergency_shell";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let mut vm = boot_emergency(BootOpts::new(name).append("keel.emergency_timeout=60"))?;
    vm.wait_for("within 60 s for the emergency shell", BOOT_TIMEOUT)?;
    vm.send_line("")?;
    vm.wait_for("keel: emergency shell on /dev/ttyS0", CMD_TIMEOUT)?;
    let out = vm.run("echo $((6*7)) $KEEL_EMERGENCY", CMD_TIMEOUT)?;
    ensure!(out == "42 1\n", "the emergency shell printed {out:?}");
    vm.assert_no_kernel_panic()
}

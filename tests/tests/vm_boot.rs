//! VM tests for issue 2: the image boots keel as PID 1 to a console shell, powers off on
//! request, and a broken appliance config reaches the emergency shell, never a kernel
//! panic. They boot `target/keel/initramfs.cpio.gz` (build it with `cargo xtask image`)
//! and run only with KEEL_VM_TESTS=1; logs are in target/keel/vm-logs/<test>.log.

use anyhow::{Result, ensure};
use keel_tests::{
    BOOT_TIMEOUT, BootOpts, CMD_TIMEOUT, EXIT_TIMEOUT, Pattern, Vm, vm_tests_enabled,
};

/// keel's first line, `keel: keel <version> starting as PID 1`.
fn starting() -> Result<Pattern> {
    Pattern::regex(r"keel: keel \S+ starting as PID 1")
}

const CONSOLE_SHELL: &str = "keel: console shell on /dev/ttyS0";

/// Boots the image and waits for keel's start and its console shell.
fn boot_to_shell(name: &str) -> Result<Vm> {
    let mut vm = Vm::boot(BootOpts::new(name))?;
    vm.wait_for(starting()?, BOOT_TIMEOUT)?;
    vm.wait_for(CONSOLE_SHELL, BOOT_TIMEOUT)?;
    Ok(vm)
}

#[test]
fn boots_to_a_console_shell() -> Result<()> {
    if !vm_tests_enabled("boots_to_a_console_shell") {
        return Ok(());
    }
    let mut vm = boot_to_shell("boots_to_a_console_shell")?;
    let out = vm.run("echo $((6*7))", CMD_TIMEOUT)?;
    ensure!(out.trim() == "42", "the shell printed {out:?}, not 42");
    vm.assert_no_kernel_panic()
}

#[test]
fn keel_is_pid_1() -> Result<()> {
    if !vm_tests_enabled("keel_is_pid_1") {
        return Ok(());
    }
    let mut vm = boot_to_shell("keel_is_pid_1")?;
    // The kernel names PID 1 after the file it ran (/init), unless keel renames itself.
    let comm = vm.run("cat /proc/1/comm", CMD_TIMEOUT)?;
    ensure!(
        matches!(comm.trim(), "init" | "keel"),
        "/proc/1/comm is {comm:?}"
    );
    let exe = vm.run("readlink /proc/1/exe", CMD_TIMEOUT)?;
    ensure!(exe.trim() == "/init", "PID 1 runs {exe:?}, not /init");
    let keel = vm.run("readlink -f /sbin/keel", CMD_TIMEOUT)?;
    ensure!(
        keel.trim() == "/init",
        "/sbin/keel resolves to {keel:?}, not /init"
    );
    // The running binary is keel (it holds keel's own start message), not a shell script.
    let own = vm.run("grep -c 'starting as PID 1' /proc/1/exe", CMD_TIMEOUT)?;
    ensure!(
        own.trim() != "0",
        "/proc/1/exe does not look like keel: {own:?}"
    );
    let ppid = vm.run("grep PPid /proc/1/status", CMD_TIMEOUT)?;
    ensure!(
        ppid.split_whitespace().eq(["PPid:", "0"]),
        "PID 1 status says {ppid:?}"
    );
    vm.assert_no_kernel_panic()
}

#[test]
fn poweroff_on_the_console_ends_qemu() -> Result<()> {
    if !vm_tests_enabled("poweroff_on_the_console_ends_qemu") {
        return Ok(());
    }
    let mut vm = boot_to_shell("poweroff_on_the_console_ends_qemu")?;
    vm.send_line("poweroff")?;
    vm.wait_for("keel: powering off", EXIT_TIMEOUT)?;
    let status = vm.wait_exit(EXIT_TIMEOUT)?;
    ensure!(status.success(), "qemu exited with {status}");
    // panic=-1 and -no-reboot would end QEMU on a panic too: make sure it was a poweroff.
    vm.assert_no_kernel_panic()
}

#[test]
fn broken_config_reaches_the_emergency_shell() -> Result<()> {
    if !vm_tests_enabled("broken_config_reaches_the_emergency_shell") {
        return Ok(());
    }
    let broken = include_str!("../vm/broken_config/appliance.toml");
    let opts = BootOpts::new("broken_config_reaches_the_emergency_shell")
        .overlay("/etc/keel/appliance.toml", broken);
    let mut vm = Vm::boot(opts)?;
    vm.wait_for(starting()?, BOOT_TIMEOUT)?;
    let emergency = vm.wait_for("keel: EMERGENCY:", BOOT_TIMEOUT)?;
    vm.wait_for(
        Pattern::regex(r"keel: emergency shell on /dev/\w+")?,
        BOOT_TIMEOUT,
    )?;
    // The summary may span lines: check from the EMERGENCY line to the shell's.
    let text = vm.console_text();
    let from = text.find(&emergency).unwrap_or(0);
    let to = text.find("keel: emergency shell on").unwrap_or(text.len());
    let summary = text.get(from..to.max(from)).unwrap_or(&emergency);
    ensure!(
        summary.contains("/etc/keel/appliance.toml"),
        "the emergency message does not name the file: {summary}"
    );
    ensure!(
        summary.contains("hostnme"),
        "the emergency message does not name the field: {summary}"
    );
    let out = vm.run("echo $((6*7))", CMD_TIMEOUT)?;
    ensure!(
        out.trim() == "42",
        "the emergency shell printed {out:?}, not 42"
    );
    vm.assert_no_kernel_panic()
}

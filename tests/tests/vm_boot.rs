//! VM tests for issue 2: the image boots keel as PID 1 to a console shell, powers off on
//! request, and a broken appliance config reaches the emergency shell, never a kernel
//! panic; a second console (hvc0) gets the log and a getty of its own. They boot
//! target/keel/bzImage (`cargo xtask kernel`; KEEL_VM_KERNEL=modular: the Debian kernel
//! with target/keel/initramfs.cpio.gz) and run only with KEEL_VM_TESTS=1; logs are in
//! target/keel/vm-logs/<test>.log.

use anyhow::{Result, bail, ensure};
use keel_tests::{
    BOOT_TIMEOUT, BootOpts, CMD_TIMEOUT, EXIT_TIMEOUT, Pattern, Scratch, Vm, vm_tests_enabled,
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
    vm.wait_clean_exit(EXIT_TIMEOUT)?;
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

/// A second console, hvc0 (a virtio console: the name Xen's console has), named last on
/// the command line so it is /dev/console: keel finds both in
/// /sys/class/tty/console/active, logs to both, and runs a getty on each.
#[test]
#[allow(clippy::disallowed_methods)] // A test, not PID 1: it polls a file QEMU writes.
fn a_second_console_gets_the_log_and_its_own_getty() -> Result<()> {
    let name = "a_second_console_gets_the_log_and_its_own_getty";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let scratch = Scratch::new("vm-hvc")?;
    let hvc = scratch.0.join("hvc0.log");
    // On the modular kernel virtio_console is a module: hvc0 becomes a console only once
    // keel has loaded it, and keel must pick it up then.
    let mut vm = Vm::boot(
        BootOpts::new(name)
            .qemu_args([
                "-device".to_string(),
                "virtio-serial-pci".to_string(),
                "-chardev".to_string(),
                format!("file,id=hvc,path={}", hvc.display()),
                "-device".to_string(),
                "virtconsole,chardev=hvc".to_string(),
            ])
            .append("console=hvc0"),
    )?;
    // At once on the single image, after the modules on the modular kernel.
    vm.wait_for(
        Pattern::regex(
            r"keel: consoles( after loading modules)?: ttyS0 hvc0 \(shell on /dev/hvc0\)",
        )?,
        BOOT_TIMEOUT,
    )?;
    vm.wait_for(CONSOLE_SHELL, BOOT_TIMEOUT)?;
    // Both gettys are services of their own, up.
    for svc in ["getty@ttyS0", "getty@hvc0"] {
        match vm.service_row(svc)? {
            Some((state, Some(_))) if state == "up" => {}
            other => bail!("{svc} is not up with a pid: {other:?}"),
        }
    }
    // hvc0 got keel's log and a shell of its own. Each getty says what it opens on its own
    // console only, so read the file QEMU writes hvc0 to until that line is there.
    let deadline = std::time::Instant::now() + CMD_TIMEOUT;
    let text = loop {
        let text = String::from_utf8_lossy(&std::fs::read(&hvc)?).into_owned();
        if text.contains("keel: console shell on /dev/hvc0") || std::time::Instant::now() > deadline
        {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    for want in [
        ": ttyS0 hvc0 (shell on /dev/hvc0)",
        "keel: starting firewall",
        "keel: console shell on /dev/hvc0",
    ] {
        ensure!(
            text.contains(want),
            "hvc0 never showed {want:?}; it showed:\n{text}"
        );
    }
    vm.assert_no_kernel_panic()
}

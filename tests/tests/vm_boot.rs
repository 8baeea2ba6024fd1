//! VM tests for issue 2: the image boots keel as PID 1 to a console shell, powers off on
//! request, and a broken appliance config reaches the emergency shell, never a kernel
//! panic; a second console (hvc0) gets the log and a getty of its own. They boot
//! target/keel/bzImage (`cargo xtask kernel`; KEEL_VM_KERNEL=modular: the Debian kernel
//! with target/keel/initramfs.cpio.gz) and run only with KEEL_VM_TESTS=1; logs are in
//! target/keel/vm-logs/<test>.log.

use anyhow::{Context, Result, bail, ensure};
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

/// The kernel's `[ts.usec] Run /init as init process` time from dmesg, moved onto keel's
/// clock by keel's clock mark (`[ts.usec] keel: clock mark: CLOCK_MONOTONIC s.usec`): the
/// kernel stamps its log with local_clock, which runs apart from CLOCK_MONOTONIC. In ms.
fn kernel_run_init_ms(dmesg: &str) -> Result<u64> {
    let stamped = |l: &str| -> Option<(f64, String)> {
        let rest = l.trim_start().strip_prefix('[')?;
        let (ts, text) = rest.split_once(']')?;
        Some((ts.trim().parse().ok()?, text.trim().to_string()))
    };
    let run = dmesg
        .lines()
        .filter_map(stamped)
        .find(|(_, t)| t.contains("Run /init as init process"))
        .map(|(ts, _)| ts)
        .context("no `Run /init as init process` line in dmesg")?;
    let (printk, mono) = dmesg
        .lines()
        .filter_map(stamped)
        .find_map(|(ts, t)| {
            let mono: f64 = t
                .strip_prefix("keel: clock mark: CLOCK_MONOTONIC ")?
                .parse()
                .ok()?;
            Some((ts, mono))
        })
        .context("no `keel: clock mark: CLOCK_MONOTONIC` line in dmesg")?;
    Ok(((run - (printk - mono)) * 1000.0).round() as u64)
}

fn ms(v: &serde_json::Value, field: &str) -> Result<u64> {
    v[field]
        .as_u64()
        .with_context(|| format!("`{field}` is not a number of ms in {v}"))
}

#[test]
fn keelctl_boot_json_has_the_chain_to_sshd() -> Result<()> {
    let name = "keelctl_boot_json_has_the_chain_to_sshd";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let mut vm = Vm::boot(BootOpts::new(name).authorize_test_key()?)?;
    vm.wait_ssh(BOOT_TIMEOUT)?;
    let out = vm.ssh("keelctl wait sshd --timeout 60s >/dev/null && keelctl --json boot")?;
    let j: serde_json::Value = serde_json::from_str(out.trim())
        .with_context(|| format!("keelctl --json boot printed no JSON document: {out:?}"))?;
    ensure!(j["target"] == "sshd", "the target is not sshd: {j}");
    let chain = j["critical_chain"]
        .as_array()
        .context("no critical_chain array")?;
    let last = chain.last().context("the critical chain is empty")?;
    ensure!(
        last["name"] == "sshd",
        "the chain does not end at sshd: {j}"
    );
    // Each link starts once the one before it is ready, and took what its times say.
    let mut prev_ready = 0;
    for link in chain {
        let (start, ready) = (ms(link, "started_ms")?, ms(link, "ready_ms")?);
        ensure!(
            start >= prev_ready && ready >= start,
            "the chain runs backwards at {link}"
        );
        ensure!(
            ms(link, "took_ms")? == ready - start,
            "took_ms is not ready - started at {link}"
        );
        prev_ready = ready;
    }
    // The times add up with the kernel's own log: keel read the kernel's time to /init
    // from it, began after it, and was up once sshd was ready.
    let dmesg = vm.ssh("dmesg")?;
    let run_init = kernel_run_init_ms(&dmesg)?;
    ensure!(
        j["kernel_source"] == "kernel-log",
        "kernel time not from the kernel log: {j}"
    );
    let kernel = ms(&j, "kernel_ms")?;
    ensure!(
        kernel.abs_diff(run_init) <= 1,
        "kernel_ms {kernel} is not the kernel's Run /init at {run_init} ms on keel's clock"
    );
    let init = ms(&j, "init_ms")?;
    let up = ms(&j, "up_ms")?;
    ensure!(
        kernel <= init && init <= ms(&chain[0], "started_ms")? && prev_ready <= up,
        "the times do not add up: kernel {kernel}, init {init}, chain {chain:?}, up {up}"
    );
    // The console's one line says the same in seconds.
    let log = vm.keel_log()?;
    let line = log
        .lines()
        .find(|l| l.starts_with("keel: up in "))
        .context("no `keel: up in` line in keel's log")?;
    let up_s = format!("keel: up in {}.{:02} s", up / 1000, up % 1000 / 10);
    ensure!(
        line.starts_with(&up_s),
        "{line:?} does not start with {up_s:?}"
    );
    ensure!(
        line.contains("critical chain: ") && line.ends_with(" ms"),
        "{line}"
    );
    ensure!(
        line.contains("sshd "),
        "the console's chain does not reach sshd: {line}"
    );
    vm.assert_no_kernel_panic()
}

#[test]
fn the_ram_filesystems_are_bounded_as_configured() -> Result<()> {
    let name = "the_ram_filesystems_are_bounded_as_configured";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/appliance.toml");
    let shipped = std::fs::read_to_string(&shipped).context("reading configs/appliance.toml")?;
    let host = "hostname = \"keel\"";
    ensure!(shipped.contains(host), "the shipped config has no {host}");
    let config = shipped.replace(host, &format!("{host}\nrun_size = \"16M\""));
    let mut vm = Vm::boot(BootOpts::new(name).overlay("/etc/keel/appliance.toml", config))?;
    vm.wait_for(CONSOLE_SHELL, BOOT_TIMEOUT)?;
    let mem_kb: u64 = vm
        .run("awk '/^MemTotal:/ {print $2}' /proc/meminfo", CMD_TIMEOUT)?
        .trim()
        .parse()
        .context("MemTotal")?;
    // df -k: the size of each tmpfs in KiB.
    let size = |vm: &mut Vm, dir: &str| -> Result<u64> {
        let out = vm.run(
            &format!("df -k {dir} | awk 'NR==2 {{print $2}}'"),
            CMD_TIMEOUT,
        )?;
        out.trim()
            .parse()
            .with_context(|| format!("df -k {dir} printed {out:?}"))
    };
    ensure!(size(&mut vm, "/run")? == 16 * 1024, "/run is not 16M");
    for dir in ["/tmp", "/dev/shm"] {
        let kb = size(&mut vm, dir)?;
        // 25% of RAM, in whole pages.
        ensure!(
            kb.abs_diff(mem_kb / 4) <= 4,
            "{dir} is {kb} KiB, not a quarter of {mem_kb} KiB"
        );
    }
    let log = vm.keel_log()?;
    ensure!(log.contains("keel: /run: tmpfs of at most 16M"), "{log}");
    vm.assert_no_kernel_panic()
}

#[test]
fn ext4_is_loaded_only_for_a_state_disk() -> Result<()> {
    let name = "ext4_is_loaded_only_for_a_state_disk";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let modular = keel_tests::artefacts::Kind::from_env()? == keel_tests::artefacts::Kind::Modular;
    let lsmod =
        "if [ -e /proc/modules ]; then cut -d' ' -f1 /proc/modules | sort | tr '\\n' ' '; fi";
    if modular {
        // Without keel.state= nothing asks for ext4: the boot's [modules] list has none.
        let mut vm = boot_to_shell(&format!("{name}-none"))?;
        let loaded = vm.run(lsmod, CMD_TIMEOUT)?;
        ensure!(
            loaded.contains("virtio_net ") && !loaded.contains("ext4 "),
            "without a state disk ext4 was loaded, or the boot's modules were not: {loaded}"
        );
        vm.assert_no_kernel_panic()?;
    }
    // With one, the state service loads it (modular) or finds it built in, and mounts.
    let scratch = Scratch::new("vm-boot-ext4")?;
    let disk = keel_tests::disk::ext4_state_disk(&scratch.0)?;
    let label = keel_tests::disk::STATE_LABEL;
    let mut vm = Vm::boot(
        BootOpts::new(&format!("{name}-disk"))
            .drive(&disk)
            .append(&format!("keel.state=LABEL={label}")),
    )?;
    vm.wait_for("keel: state: mounted the state disk /dev/vda", BOOT_TIMEOUT)?;
    vm.wait_for(CONSOLE_SHELL, BOOT_TIMEOUT)?;
    let filesystems = vm.run("cat /proc/filesystems", CMD_TIMEOUT)?;
    ensure!(
        filesystems
            .lines()
            .any(|l| l.split_whitespace().last() == Some("ext4")),
        "ext4 is not a known filesystem after the state disk mounted: {filesystems}"
    );
    if modular {
        let loaded = vm.run(lsmod, CMD_TIMEOUT)?;
        ensure!(
            loaded.contains("ext4 ") && loaded.contains("jbd2 "),
            "the state disk mounted but ext4 and jbd2 are not loaded modules: {loaded}"
        );
        let log = vm.keel_log()?;
        ensure!(
            log.contains("(for the state disk, keel.state=)"),
            "the log does not say who loaded ext4:\n{log}"
        );
    }
    vm.assert_no_kernel_panic()
}

#[test]
fn a_clock_in_1970_is_set_to_the_build_time() -> Result<()> {
    let name = "a_clock_in_1970_is_set_to_the_build_time";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    // The emulated RTC starts at the epoch: the guest's wall clock reads 1970.
    let opts = BootOpts::new(name).qemu_args(["-rtc", "base=1970-01-01T00:00:00"]);
    let mut vm = Vm::boot(opts)?;
    vm.wait_for(
        Pattern::regex(
            r"keel: clock read 1970-01-01 \S+ UTC, set to the image's build time \d{4}-",
        )?,
        BOOT_TIMEOUT,
    )?;
    vm.wait_for("keel: console shell on /dev/ttyS0", BOOT_TIMEOUT)?;
    let out = vm.run(
        "echo T $(cat /etc/keel/build-epoch) $(date +%s)",
        CMD_TIMEOUT,
    )?;
    let nums: Vec<i64> = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("T "))
        .context("no T line")?
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    ensure!(nums.len() == 2, "the guest printed {out:?}");
    ensure!(
        nums[1] >= nums[0] && nums[0] > 1_000_000_000,
        "the guest's clock {} is before the build time {}",
        nums[1],
        nums[0]
    );
    vm.assert_no_kernel_panic()
}

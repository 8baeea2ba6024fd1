//! VM tests of the harness itself: they tell a harness bug apart from a keel bug. Two run
//! a guest whose whole initrd is busybox and a shell script (they need only the host's
//! Debian kernel and busybox-static); the ssh one needs the keel image for sshd. Run with
//! KEEL_VM_TESTS=1.

use anyhow::{Result, ensure};
use keel_tests::{
    BOOT_TIMEOUT, BootOpts, CMD_TIMEOUT, EXIT_TIMEOUT, Pattern, Vm, vm_tests_enabled,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

const BUSYBOX: &str = "/bin/busybox";

/// The Debian kernel the image's modules came from, else the newest /boot/vmlinuz-* (or
/// KEEL_KERNEL): the harness needs no image, and a busybox-only guest must not sit on the
/// single image's built-in initramfs.
fn host_kernel() -> Result<PathBuf> {
    if let Some(k) = std::env::var_os("KEEL_KERNEL") {
        return Ok(k.into());
    }
    if let Ok(k) = keel_tests::artefacts::kernel(keel_tests::artefacts::Kind::Modular) {
        if k.is_file() {
            return Ok(k);
        }
    }
    let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    kernels.sort();
    kernels
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no /boot/vmlinuz-*: apt-get install linux-image-amd64"))
}

/// A guest that is only busybox: /init mounts /proc and runs `tail` of the script.
fn busybox_guest(name: &str, tail: &str) -> Result<BootOpts> {
    let init = format!(
        "#!/bin/busybox sh\n\
         /bin/busybox mkdir -p /proc /sys /tmp\n\
         /bin/busybox mount -t proc proc /proc\n\
         /bin/busybox --install -s /bin\n\
         {tail}\n"
    );
    let opts = BootOpts::new(name)
        .kernel(host_kernel()?)
        .overlay_only()
        .overlay_host_file("/bin/busybox", Path::new(BUSYBOX), 0o755)?
        .overlay_char_dev("/dev/console", 5, 1, 0o600)
        .overlay_char_dev("/dev/null", 1, 3, 0o666)
        .overlay_exec("/init", init)
        .overlay("/etc/motd", "from the overlay\n")
        .append("quiet");
    Ok(opts)
}

#[test]
fn harness_drives_a_busybox_guest() -> Result<()> {
    if !vm_tests_enabled("harness_drives_a_busybox_guest") {
        return Ok(());
    }
    let opts = busybox_guest(
        "harness_drives_a_busybox_guest",
        "echo selftest: shell ready\nexec /bin/sh",
    )?;
    let mut vm = Vm::boot(opts)?;
    // The monitor answers while the guest boots.
    ensure!(
        vm.monitor("info status")?.contains("running"),
        "monitor: VM not running"
    );

    let line = vm.wait_for(Pattern::regex(r"selftest: \w+ ready")?, BOOT_TIMEOUT)?;
    ensure!(
        line.contains("selftest: shell ready"),
        "wait_for returned {line:?}"
    );

    // Output comes back without the echo of the typed line, exactly.
    ensure!(vm.run("echo $((6*7))", CMD_TIMEOUT)? == "42\n");
    ensure!(vm.run("cat /etc/motd", CMD_TIMEOUT)? == "from the overlay\n");
    ensure!(vm.run("printf 'a\\nb'", CMD_TIMEOUT)? == "a\nb");
    ensure!(vm.run_status("false", CMD_TIMEOUT)?.0 == 1);
    ensure!(vm.run_status("exit_code_127_please", CMD_TIMEOUT)?.0 == 127);
    let err = vm
        .run("ls /nonexistent", CMD_TIMEOUT)
        .unwrap_err()
        .to_string();
    ensure!(
        err.contains("exited with 1") && err.contains("/nonexistent"),
        "{err}"
    );

    // A prompt never ends its line: wait_for still returns it, after a short grace.
    let prompt = vm.wait_for("/ # ", CMD_TIMEOUT)?;
    ensure!(prompt.starts_with("/ # "), "prompt line {prompt:?}");

    // A timeout names what it waited for and shows the last console lines.
    let err = vm
        .wait_for("never printed", Duration::from_secs(2))
        .unwrap_err()
        .to_string();
    ensure!(
        err.contains("timed out") && err.contains("\"never printed\""),
        "{err}"
    );
    ensure!(err.contains("KEELEND_"), "no console lines in: {err}");

    // The console log file holds the transcript.
    let log = std::fs::read_to_string(vm.log_path())?;
    ensure!(
        log.contains("selftest: shell ready") && log.contains("-accel tcg"),
        "log: {log}"
    );

    vm.send_line("poweroff -f")?;
    vm.wait_clean_exit(EXIT_TIMEOUT)?;
    vm.assert_no_kernel_panic()
}

#[test]
fn harness_fails_fast_on_a_kernel_panic() -> Result<()> {
    if !vm_tests_enabled("harness_fails_fast_on_a_kernel_panic") {
        return Ok(());
    }
    // /init exits: the kernel panics ("Attempted to kill init"), and panic=-1 with
    // -no-reboot ends QEMU. The wait must fail saying so, long before its timeout.
    let opts = busybox_guest("harness_fails_fast_on_a_kernel_panic", "exit 3")?;
    let mut vm = Vm::boot(opts)?;
    let err = vm
        .wait_for("never printed", BOOT_TIMEOUT)
        .unwrap_err()
        .to_string();
    ensure!(
        err.contains("the kernel panicked") || err.contains("qemu exited"),
        "unexpected error: {err}"
    );
    ensure!(
        err.contains("Kernel panic"),
        "the panic is not in the error: {err}"
    );
    ensure!(
        vm.assert_no_kernel_panic().is_err(),
        "assert_no_kernel_panic missed it"
    );
    vm.wait_clean_exit(EXIT_TIMEOUT)?;
    Ok(())
}

#[test]
fn harness_runs_commands_over_ssh() -> Result<()> {
    if !vm_tests_enabled("harness_runs_commands_over_ssh") {
        return Ok(());
    }
    // The keel image with the test key authorized. Until keel brings up the network and
    // sshd itself, the console shell does it by hand (and skips what is already there).
    let opts = BootOpts::new("harness_runs_commands_over_ssh").authorize_test_key()?;
    let mut vm = Vm::boot(opts)?;
    vm.wait_for("keel: console shell on", BOOT_TIMEOUT)?;
    vm.run(
        "ip link set lo up; ip link set eth0 up; \
         ip -4 addr show dev eth0 | grep -q 'inet ' || ip addr add 10.0.2.15/24 dev eth0",
        CMD_TIMEOUT,
    )?;
    let key = "/var/lib/keel/ssh/ssh_host_ed25519_key";
    vm.run(
        &format!(
            "pidof sshd || {{ mkdir -p /var/lib/keel/ssh /run/sshd; \
             test -f {key} || /sbin/keel hostkeys; /usr/sbin/sshd; }}"
        ),
        CMD_TIMEOUT,
    )?;
    vm.wait_ssh(CMD_TIMEOUT)?;
    let out = vm.ssh("echo over ssh $((6*7)); cat /proc/1/comm")?;
    ensure!(out.starts_with("over ssh 42\n"), "ssh printed {out:?}");
    let err = vm.ssh("exit 3").unwrap_err().to_string();
    ensure!(err.contains("exit status: 3"), "{err}");
    vm.assert_no_kernel_panic()
}

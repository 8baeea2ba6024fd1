//! VM tests for issue 5: ssh on 2222 with the host key checked against what the console
//! printed, console login with a password, and the state disk that keeps the host key and
//! root's password across boots (and its absence, which gives a new key every boot).
//!
//! The test key is authorized by an overlay (`BootOpts::authorize_test_key`, the path
//! `cargo xtask image --ssh-key` writes) or from the state disk's
//! root/.ssh/authorized_keys; it is never baked into the image. The state disk is a small
//! ext4 image made with mkfs.ext4 (e2fsprogs). Run with KEEL_VM_TESTS=1 after
//! `cargo xtask image`; logs are in target/keel/vm-logs/<test>.log.
#![allow(clippy::disallowed_methods)] // A host test: it waits for ssh and mkfs.

use anyhow::{Context, Result, bail, ensure};
use keel_tests::{
    BOOT_TIMEOUT, BootOpts, CMD_TIMEOUT, EXIT_TIMEOUT, Pattern, Scratch, Vm, vm_tests_enabled,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use keel_tests::TEST_PASSWORD as PASSWORD;

use keel_tests::disk::{STATE_LABEL as LABEL, STATE_UUID as UUID};

/// What hostkeys printed on the console.
struct HostKeyLines {
    /// `ssh-ed25519 AAAA...` (without the comment).
    public: String,
    /// `SHA256:...`.
    fingerprint: String,
}

/// Waits for hostkeys' public key and fingerprint lines on the console.
fn read_host_key(vm: &mut Vm) -> Result<HostKeyLines> {
    let line = vm.wait_for(
        Pattern::regex(r"keel: hostkeys: public key: ssh-ed25519 \S+")?,
        BOOT_TIMEOUT,
    )?;
    let public = line
        .split("public key: ")
        .nth(1)
        .map(|rest| {
            rest.split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .context("no key after `public key:`")?;
    let line = vm.wait_for(
        Pattern::regex(r"keel: hostkeys: fingerprint: 256 SHA256:\S+")?,
        BOOT_TIMEOUT,
    )?;
    let fingerprint = line
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .context("no SHA256: word")?
        .to_string();
    Ok(HostKeyLines {
        public,
        fingerprint,
    })
}

/// A known_hosts file for the forwarded port holding `public`.
fn known_hosts(dir: &Path, port: u16, public: &str) -> Result<PathBuf> {
    let path = dir.join(format!("known_hosts-{port}"));
    std::fs::write(&path, format!("[127.0.0.1]:{port} {public}\n"))?;
    Ok(path)
}

/// What `ssh-keygen -lf` computes for the keys in `file`: their SHA256 fingerprints.
fn fingerprints_of(file: &Path) -> Result<Vec<String>> {
    let out = Command::new("ssh-keygen")
        .args(["-E", "sha256", "-lf"])
        .arg(file)
        .output()
        .context("cannot run ssh-keygen: apt-get install openssh-client")?;
    ensure!(
        out.status.success(),
        "ssh-keygen -lf failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with("SHA256:"))
        .map(String::from)
        .collect())
}

/// ssh as root with the test key, checking the host key against `known` only.
fn strict_ssh(port: u16, known: &Path, extra: &[&str], cmd: &str) -> Result<Output> {
    let key = keel_tests::ssh::test_key()?;
    let port = port.to_string();
    let known = format!("UserKnownHostsFile={}", known.display());
    Command::new("ssh")
        .args(["-p", &port, "-i"])
        .arg(&key)
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .args(["-o", &known, "-o", "GlobalKnownHostsFile=/dev/null"])
        .args(["-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"])
        .args(extra)
        .args(["root@127.0.0.1", "--", cmd])
        .stdin(Stdio::null())
        .output()
        .context("cannot run ssh: apt-get install openssh-client")
}

/// Retries `strict_ssh` until it succeeds (sshd may still be starting) or `timeout`.
fn ssh_until_ok(vm: &Vm, known: &Path, cmd: &str, timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let out = strict_ssh(vm.ssh_port(), known, &[], cmd)?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        // A host key mismatch is a failure at once, never something to wait out.
        if err.contains("verification failed") || Instant::now() >= deadline {
            bail!("ssh {cmd:?} with the console's host key failed: {err}");
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn state_disk(dir: &Path) -> Result<PathBuf> {
    keel_tests::disk::ext4_state_disk(dir)
}

/// Logs in as root on the serial console with `password`.
fn console_login(vm: &mut Vm, password: &str) -> Result<()> {
    vm.wait_for("login: ", BOOT_TIMEOUT)?;
    vm.send_line("root")?;
    vm.wait_for("Password: ", CMD_TIMEOUT)?;
    vm.send_line(password)?;
    Ok(())
}

/// Powers the guest off from the console shell and waits for QEMU to end.
fn power_off(vm: &mut Vm) -> Result<()> {
    vm.send_line("poweroff")?;
    vm.wait_for("keel: powering off", EXIT_TIMEOUT)?;
    vm.wait_clean_exit(EXIT_TIMEOUT)?;
    vm.assert_no_kernel_panic()
}

#[test]
fn ssh_checks_the_host_key_the_console_printed() -> Result<()> {
    let name = "ssh_checks_the_host_key_the_console_printed";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let scratch = Scratch::new("vm-ssh-strict")?;
    let mut vm = Vm::boot(BootOpts::new(name).authorize_test_key()?)?;
    let host = read_host_key(&mut vm)?;
    ensure!(
        vm.console_text().contains("the host key is in RAM"),
        "the console does not say the key is in RAM"
    );
    let known = known_hosts(&scratch.0, vm.ssh_port(), &host.public)?;
    // What ssh-keygen computes from the key read off the console is what the console said.
    ensure!(
        fingerprints_of(&known)? == [host.fingerprint.clone()],
        "ssh-keygen's fingerprint of {} differs from the console's {}",
        host.public,
        host.fingerprint
    );
    vm.wait_for("keel: sshd is ready", BOOT_TIMEOUT)?;
    let out = ssh_until_ok(
        &vm,
        &known,
        "echo over ssh $((6*7)); cut -d' ' -f1,2 /var/lib/keel/ssh/ssh_host_ed25519_key.pub",
        CMD_TIMEOUT,
    )?;
    ensure!(
        out == format!("over ssh 42\n{}\n", host.public),
        "ssh printed {out:?}"
    );

    // Another key in known_hosts: ssh must refuse the host, so the check above meant something.
    let client_pub = keel_tests::ssh::test_public_key()?;
    let other: String = client_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let wrong = scratch.0.join("known_hosts-wrong");
    std::fs::write(&wrong, format!("[127.0.0.1]:{} {other}\n", vm.ssh_port()))?;
    let out = strict_ssh(vm.ssh_port(), &wrong, &[], "true")?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("Host key verification failed"),
        "ssh accepted a host key that is not the console's: {err}"
    );

    // Keys only: password login is not even offered.
    let out = strict_ssh(
        vm.ssh_port(),
        &known,
        &[
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
        ],
        "true",
    )?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("Permission denied (publickey)"),
        "password login was not refused as keys-only: {err}"
    );
    vm.assert_no_kernel_panic()
}

#[test]
fn console_login_with_a_password() -> Result<()> {
    let name = "console_login_with_a_password";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let shadow = keel_tests::shadow_with_test_password();
    let mut vm = Vm::boot(BootOpts::new(name).overlay("/etc/shadow", shadow))?;
    vm.wait_for("keel: login prompt on /dev/ttyS0", BOOT_TIMEOUT)?;
    // A wrong password is refused and the prompt comes back.
    console_login(&mut vm, "not-the-password")?;
    vm.wait_for("Login incorrect", CMD_TIMEOUT)?;
    console_login(&mut vm, PASSWORD)?;
    let id = vm.run("id -un; tty", CMD_TIMEOUT)?;
    ensure!(id == "root\n/dev/ttyS0\n", "after login, id/tty say {id:?}");
    ensure!(
        !vm.console_text()
            .contains("console shell on /dev/ttyS0 without login"),
        "a shell without login was started although root has a password"
    );
    // Logging out gives a new login prompt (the service restarts getty).
    vm.send_line("exit")?;
    vm.wait_for("login: ", BOOT_TIMEOUT)?;
    vm.assert_no_kernel_panic()
}

#[test]
fn state_disk_keeps_host_key_password_and_keys() -> Result<()> {
    let name = "state_disk_keeps_host_key_password_and_keys";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let scratch = Scratch::new("vm-ssh-state")?;
    let disk = state_disk(&scratch.0)?;

    // Boot 1, found by label, no key in the image: root's key comes from the state disk.
    let opts = BootOpts::new(&format!("{name}-1"))
        .drive(&disk)
        .append(&format!("keel.state=LABEL={LABEL}"));
    let mut vm = Vm::boot(opts)?;
    vm.wait_for("keel: state: mounted the state disk /dev/vda", BOOT_TIMEOUT)?;
    let first = read_host_key(&mut vm)?;
    ensure!(
        vm.console_text()
            .contains("the host key is on the state disk /dev/vda (ext4)"),
        "the console does not say the key is on the state disk"
    );
    let known = known_hosts(&scratch.0, vm.ssh_port(), &first.public)?;
    vm.wait_for("keel: sshd is ready", BOOT_TIMEOUT)?;
    let out = ssh_until_ok(&vm, &known, "readlink /etc/shadow", CMD_TIMEOUT)?;
    ensure!(
        out == "/var/lib/keel/etc/shadow\n",
        "/etc/shadow is not the state disk's: {out:?}"
    );
    // passwd on the running machine writes through to the state disk.
    vm.run(
        &format!("printf '%s\\n%s\\n' {PASSWORD} {PASSWORD} | passwd root"),
        CMD_TIMEOUT,
    )?;
    let line = vm.run("grep '^root:' /var/lib/keel/etc/shadow", CMD_TIMEOUT)?;
    ensure!(
        line.starts_with("root:$") && !line.starts_with("root:*"),
        "passwd did not reach the state disk: {line:?}"
    );
    power_off(&mut vm)?;
    drop(vm);

    // Boot 2, found by uuid: the same host key, ssh trusts it, and the password is asked.
    let opts = BootOpts::new(&format!("{name}-2"))
        .drive(&disk)
        .append(&format!("keel.state=UUID={UUID}"));
    let mut vm = Vm::boot(opts)?;
    let second = read_host_key(&mut vm)?;
    ensure!(
        second.fingerprint == first.fingerprint && second.public == first.public,
        "the host key changed across boots with a state disk: {} then {}",
        first.fingerprint,
        second.fingerprint
    );
    ensure!(
        vm.console_text().contains("kept the existing host key"),
        "hostkeys did not say it kept the key"
    );
    console_login(&mut vm, PASSWORD)?;
    let who = vm.run("id -un", CMD_TIMEOUT)?;
    ensure!(who == "root\n", "console login after passwd: {who:?}");
    let known = known_hosts(&scratch.0, vm.ssh_port(), &first.public)?;
    // Asked of keel: the console login above has already read past sshd's ready line.
    vm.wait_services("sshd up", &["sshd"], |r| r[0].0 == "up")?;
    let out = ssh_until_ok(&vm, &known, "echo same host", CMD_TIMEOUT)?;
    ensure!(out == "same host\n", "ssh printed {out:?}");
    vm.assert_no_kernel_panic()
}

#[test]
fn without_a_state_disk_every_boot_has_a_new_key() -> Result<()> {
    let name = "without_a_state_disk_every_boot_has_a_new_key";
    if !vm_tests_enabled(name) {
        return Ok(());
    }
    let mut prints = Vec::new();
    for n in 1..=2 {
        let mut vm = Vm::boot(BootOpts::new(&format!("{name}-{n}")))?;
        let host = read_host_key(&mut vm)?;
        ensure!(
            vm.console_text()
                .contains("state: no keel.state= on the kernel command line"),
            "the console does not say state is in RAM"
        );
        prints.push(host.fingerprint);
        vm.assert_no_kernel_panic()?;
    }
    ensure!(
        prints[0] != prints[1],
        "two boots without a state disk showed the same host key {}",
        prints[0]
    );
    Ok(())
}

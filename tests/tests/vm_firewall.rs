//! VM tests for issue 6: the `firewall` oneshot. The shipped config loads `table inet keel`
//! before the network; port 2222 answers from the host while a listener on another forwarded
//! port does not, until keel's table is deleted (`keel firewall --delete`); keel loads it over
//! netlink and the image has no nft. A firewall that cannot be loaded fails the oneshot, names
//! the config file and line, keeps what needs the firewall (network, sshd) stopped, and the
//! console still works. (A batch the kernel refuses is tested in netcfg/tests/nft_netlink.rs.)
//!
//! They boot target/keel/bzImage (KEEL_VM_KERNEL=modular: the Debian kernel and
//! target/keel/initramfs.cpio.gz; `cargo xtask test` builds both) and run only with
//! KEEL_VM_TESTS=1; logs are in target/keel/vm-logs/<test>.log.
#![allow(clippy::disallowed_methods)] // A host test: it polls the guest and reads the clock.

use anyhow::{Context, Result, bail, ensure};
use keel_tests::{BOOT_TIMEOUT, BootOpts, CMD_TIMEOUT, Vm, vm_tests_enabled};
use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

const CONSOLE_SHELL: &str = "keel: console shell on /dev/ttyS0";
/// A port the firewall does not allow.
const CLOSED: u16 = 8080;
/// The port the shipped [firewall] allows.
const SSH: u16 = 2222;

/// What a TCP connection to the host's `port` reads within `wait` (slirp accepts on the
/// host side whatever the guest does, so "closed" shows as no data, not as a refusal).
fn banner(port: u16, wait: Duration) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(wait));
    let mut buf = [0u8; 256];
    let mut out = Vec::new();
    let start = Instant::now();
    while start.elapsed() < wait {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.contains(&b'\n') {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Polls until `port` answers with something containing `want`, or `limit` passes.
fn answers(port: u16, want: &str, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if banner(port, Duration::from_secs(3)).contains(want) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    false
}

#[test]
fn only_allowed_ports_answer() -> Result<()> {
    if !vm_tests_enabled("only_allowed_ports_answer") {
        return Ok(());
    }
    let mut vm = Vm::boot(BootOpts::new("only_allowed_ports_answer").forward(CLOSED))?;
    vm.wait_for(CONSOLE_SHELL, BOOT_TIMEOUT)?;
    // Asked of keel, not read off the console: those lines come before the shell's, in
    // an order a busy console does not keep, and a wait consumes what it passes.
    vm.wait_services(
        "the firewall loaded and the network up",
        &["firewall", "network"],
        |r| r[0].0 == "done" && r[1].0 == "up",
    )?;
    // keel loads the table over netlink itself: the image has no nft.
    let nft = vm.run("ls /usr/sbin/nft /sbin/nft 2>&1; echo end", CMD_TIMEOUT)?;
    ensure!(
        !nft.lines().any(|l| l.starts_with('/')),
        "the image has an nft binary:\n{nft}"
    );
    // Port 2222: sshd when the image has it, else a listener of our own.
    let ssh_want = if vm.service_row("sshd")?.is_some() {
        "SSH-2.0"
    } else {
        vm.run(
            &format!("nc -ll -p {SSH} -e /bin/echo open{SSH} >/dev/null 2>&1 & echo started"),
            CMD_TIMEOUT,
        )?;
        "open2222"
    };
    vm.run(
        &format!("nc -ll -p {CLOSED} -e /bin/echo open{CLOSED} >/dev/null 2>&1 & echo started"),
        CMD_TIMEOUT,
    )?;
    let listening = vm.run("netstat -ltn", CMD_TIMEOUT)?;
    ensure!(
        listening.contains(&format!(":{CLOSED} ")),
        "the guest listener on {CLOSED} did not start:\n{listening}"
    );
    ensure!(
        answers(vm.ssh_port(), ssh_want, Duration::from_secs(60)),
        "port {SSH} never answered {ssh_want:?} through the firewall"
    );
    let closed = vm
        .forwarded_port(CLOSED)
        .context("the harness did not forward 8080")?;
    let got = banner(closed, Duration::from_secs(8));
    ensure!(
        !got.contains("open8080"),
        "port {CLOSED} answered through the firewall: {got:?}"
    );
    // The listener was real: without keel's table it answers.
    let del = vm.run("/sbin/keel firewall --delete", CMD_TIMEOUT)?;
    ensure!(
        del.contains("deleted table inet keel"),
        "keel firewall --delete: {del}"
    );
    ensure!(
        answers(closed, "open8080", Duration::from_secs(30)),
        "port {CLOSED} did not answer even without the firewall: the test proves nothing"
    );
    vm.assert_no_kernel_panic()
}

/// A `[firewall]` the firewall service cannot load (port 70000), in a config of its own so
/// the supervisor still boots from the shipped one.
const BROKEN_FIREWALL: &str = "[firewall]\n\
    allow = [{ protocol = \"tcp\", port = 70000, comment = \"ssh\" }]\n";

#[test]
fn a_rejected_ruleset_keeps_dependents_down() -> Result<()> {
    if !vm_tests_enabled("a_rejected_ruleset_keeps_dependents_down") {
        return Ok(());
    }
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/appliance.toml");
    let shipped = std::fs::read_to_string(&shipped).context("reading configs/appliance.toml")?;
    let apply = r#"exec = ["/sbin/keel", "firewall", "--apply"]"#;
    ensure!(shipped.contains(apply), "the shipped config has no {apply}");
    let config = shipped.replace(
        apply,
        r#"exec = ["/sbin/keel", "firewall", "--apply", "/etc/keel/broken.toml"]"#,
    );
    let opts = BootOpts::new("a_rejected_ruleset_keeps_dependents_down")
        .overlay("/etc/keel/appliance.toml", config)
        .overlay("/etc/keel/broken.toml", BROKEN_FIREWALL);
    let mut vm = Vm::boot(opts)?;
    vm.wait_for(CONSOLE_SHELL, BOOT_TIMEOUT)?;
    // keel's log through the harness (dmesg), not the console: the firewall can fail
    // before the console shell starts, and the console may drop a line for a busy tty.
    let start = Instant::now();
    let log = loop {
        let log = vm.keel_log()?;
        if log.contains("keel: firewall exited") {
            break log;
        }
        ensure!(
            start.elapsed() < BOOT_TIMEOUT,
            "the firewall did not exit in {BOOT_TIMEOUT:?}; keel's log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let blame = log
        .lines()
        .find(|l| l.contains("broken.toml has errors"))
        .with_context(|| format!("keel's log does not say broken.toml has errors:\n{log}"))?;
    ensure!(
        blame.contains("nothing is loaded"),
        "the log does not say the firewall is not loaded: {blame:?}"
    );
    ensure!(
        log.contains("/etc/keel/broken.toml:2:"),
        "the config diagnostic does not name the file and line:\n{log}"
    );
    // Give the supervisor time to do anything wrong, then look.
    std::thread::sleep(Duration::from_secs(3));
    let fw = vm
        .service_row("firewall")?
        .context("no firewall row in keelctl status")?;
    ensure!(
        fw.0 != "done" && fw.0 != "up",
        "firewall is {fw:?} after nft failed"
    );
    for dependent in ["network", "sshd"] {
        if let Some((state, pid)) = vm.service_row(dependent)? {
            ensure!(
                pid.is_none() && state != "up" && state != "starting",
                "{dependent} is {state} (pid {pid:?}) without a firewall"
            );
        }
    }
    let clients = vm.run("pidof dhclient sshd; echo end", CMD_TIMEOUT)?;
    ensure!(
        clients.trim() == "end",
        "dhclient or sshd runs without a firewall: {clients:?}"
    );
    let addr = vm.run("ip addr show dev eth0", CMD_TIMEOUT)?;
    ensure!(
        !addr.contains("inet 10.0.2.15"),
        "eth0 was configured without a firewall:\n{addr}"
    );
    // The console still works.
    let out = vm.run("echo $((6*7))", CMD_TIMEOUT)?;
    if out.trim() != "42" {
        bail!("the console shell printed {out:?}, not 42");
    }
    vm.assert_no_kernel_panic()
}

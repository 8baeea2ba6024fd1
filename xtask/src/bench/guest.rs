//! The bench's guest side: boots one appliance under QEMU with the VM harness and measures
//! it from the host (time to the ssh banner on the forwarded port) and from its kernel log
//! (init exec to sshd ready, restarts), plus PID 1's memory and its context switches while
//! idle, read over ssh.
//!
//! It only measures and reports: it never asserts a timing and never changes the guest
//! beyond the kills it times. A figure it cannot get is `None` with a note saying why.

use super::stats::{self, LogLine};
use anyhow::{Context, Result, bail};
use keel_tests::{BOOT_TIMEOUT, BootOpts, Vm};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The kernel's own line at the exec of /init: the start of "init exec to sshd ready" for
/// both appliances, so neither is timed from a marker it prints late.
pub(crate) const INIT_EXEC: &str = "Run /init as init process";

/// The static `ip=` of the no-DHCP runs: the address QEMU's user network would lease.
pub(crate) const STATIC_IP: &str = "ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off";

/// Every boot of both appliances gets this: /dev/kmsg without its rate limit (10 lines per
/// 5 s per opener), so no marker is dropped from the kernel log.
const DEVKMSG: &str = "printk.devkmsg=on";

/// How long one banner probe waits for the first bytes.
const PROBE: Duration = Duration::from_secs(2);

/// The pause between two banner probes.
const PROBE_GAP: Duration = Duration::from_millis(50);

/// Finds sshd's listener (the sshd whose parent is PID 1), marks the kernel log, kills it.
const KILL_SSHD: &str = "for p in $(pidof sshd); do \
     grep -q '^PPid:[[:space:]]*1$' /proc/$p/status && l=$p; done; \
     [ -n \"$l\" ] || { echo 'no sshd listener under PID 1' >&2; exit 1; }; \
     echo \"bench: kill sshd $l\" > /dev/kmsg; kill -9 $l";

/// Marks the kernel log and kills the DHCP client.
const KILL_DHCLIENT: &str = "p=$(pidof dhclient); \
     [ -n \"$p\" ] || { echo 'no dhclient running' >&2; exit 1; }; \
     echo \"bench: kill dhclient $p\" > /dev/kmsg; kill -9 $p";

/// Which appliance a boot runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Init {
    Keel,
    Baseline,
    /// The lower bound: mounts, ip=, exec sshd (bench/baseline/floor.sh). Static ip= only.
    Floor,
}

impl Init {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Init::Keel => "keel",
            Init::Baseline => "baseline",
            Init::Floor => "floor",
        }
    }

    /// The console line that says the guest has its address. The banner is probed only
    /// after it: QEMU's user network keeps retrying a connection made while the guest had
    /// no address and delivers it once sshd listens, so probing earlier floods sshd past
    /// MaxStartups and delays the very banner being timed. Once the guest has an address,
    /// a probe before sshd listens is refused at once and leaves nothing behind.
    fn network_up(self) -> &'static str {
        match self {
            Init::Keel => "keel: network is ready",
            Init::Baseline => "bench-baseline: network up",
            Init::Floor => "bench-floor: network up",
        }
    }

    /// The kernel log line that says sshd listens.
    fn sshd_ready(self) -> &'static str {
        match self {
            Init::Keel => "keel: sshd is ready",
            Init::Baseline => "bench-baseline: sshd ready",
            // sshd itself, logging to /dev/kmsg at VERBOSE once its first socket listens.
            Init::Floor => "Server listening on",
        }
    }
}

/// What one boot is asked to do.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub init: Init,
    pub kernel: PathBuf,
    /// None: the kernel's built-in initramfs only (the single image).
    pub initrd: Option<PathBuf>,
    pub static_ip: bool,
    /// Virtual CPUs.
    pub cpus: u32,
    /// Measure memory and idle wakeups (seconds of idle; 0: skip).
    pub idle_secs: u64,
    /// Also kill sshd and dhclient and time the restarts (keel only).
    pub restarts: bool,
    /// Names the console log under target/keel/vm-logs/.
    pub name: String,
}

/// What one boot measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Boot {
    pub wall_to_banner: Option<f64>,
    pub init_to_sshd: Option<f64>,
    pub vmrss_kb: Option<u64>,
    pub private_kb: Option<u64>,
    pub idle_switches: Option<u64>,
    /// Kernel modules loaded (/proc/modules), to check both loaded the same set.
    pub modules: Option<u64>,
    pub sshd_restart_guest: Option<f64>,
    pub sshd_restart_banner: Option<f64>,
    pub cascade_guest: Option<f64>,
    pub cascade_banner: Option<f64>,
    /// Why a figure is missing, one line each.
    pub notes: Vec<String>,
}

/// Boots and measures; an error means the boot itself failed (no banner, no ssh).
pub(crate) fn measure(plan: &Plan) -> Result<Boot> {
    let mut opts = BootOpts::new(&plan.name).kernel(&plan.kernel);
    opts = match &plan.initrd {
        Some(initrd) => opts.initrd(initrd),
        // The test key's overlay is then the whole initrd, unpacked over the built-in one.
        None => opts.overlay_only(),
    };
    opts = opts.cpus(plan.cpus).append(DEVKMSG).authorize_test_key()?;
    if plan.static_ip {
        opts = opts.append(STATIC_IP);
    }
    let mut vm = Vm::boot(opts)?;
    let mut b = Boot::default();
    let port = vm.ssh_port();
    vm.wait_for(plan.init.network_up(), BOOT_TIMEOUT)?;
    let banner = wait_banner(port, BOOT_TIMEOUT).with_context(|| {
        format!(
            "{} never showed the ssh banner (log: {})",
            plan.name,
            vm.log_path().display()
        )
    })?;
    b.wall_to_banner = Some(banner.duration_since(vm.started()).as_secs_f64());
    vm.wait_ssh(Duration::from_secs(60))?;

    // A kernel without module support has no /proc/modules: nothing is loaded.
    b.modules = vm
        .ssh("if [ -e /proc/modules ]; then wc -l < /proc/modules; else echo 0; fi")
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let log = dmesg(&vm)?;
    // keel says where its boot went itself (keelctl --json boot, with the kernel's own
    // time of Run /init); the baseline has only its log lines.
    b.init_to_sshd = match plan.init {
        Init::Keel => match keel_init_to_sshd(&vm) {
            Ok(v) => Some(v),
            Err(e) => {
                b.notes
                    .push(format!("{}: keelctl --json boot: {e:#}", plan.name));
                None
            }
        },
        Init::Baseline | Init::Floor => stats::interval(&log, INIT_EXEC, plan.init.sshd_ready()),
    };
    if b.init_to_sshd.is_none() {
        b.notes.push(format!(
            "{}: the kernel log has no {INIT_EXEC:?} followed by {:?}",
            plan.name,
            plan.init.sshd_ready()
        ));
    }

    if plan.idle_secs > 0 {
        memory(&vm, &mut b)?;
        idle(&vm, plan.idle_secs, &mut b)?;
    }
    if plan.restarts {
        if let Err(e) = sshd_restart(&vm, port, &mut b) {
            b.notes
                .push(format!("{}: sshd restart not measured: {e:#}", plan.name));
        }
        if let Err(e) = cascade(&mut vm, port, &mut b) {
            b.notes.push(format!(
                "{}: dhclient cascade not measured: {e:#}",
                plan.name
            ));
        }
    }
    vm.assert_no_kernel_panic()?;
    Ok(b)
}

/// Seconds from the kernel's `Run /init` to sshd ready, as `keelctl --json boot` reports
/// them (the fields are documented in docs/services.md).
fn keel_init_to_sshd(vm: &Vm) -> Result<f64> {
    let out = vm.ssh("keelctl --json boot sshd")?;
    boot_json_init_to_sshd(&out)
}

/// The figure from `keelctl --json boot sshd`'s text: sshd's `ready_ms` − `kernel_ms`.
pub(crate) fn boot_json_init_to_sshd(text: &str) -> Result<f64> {
    let j: serde_json::Value =
        serde_json::from_str(text.trim()).with_context(|| format!("not JSON: {text:?}"))?;
    let kernel = j["kernel_ms"]
        .as_u64()
        .with_context(|| format!("no kernel_ms in {j}"))?;
    let sshd = j["services"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "sshd"))
        .with_context(|| format!("no sshd in the services of {j}"))?;
    let ready = sshd["ready_ms"]
        .as_u64()
        .with_context(|| format!("sshd has no ready_ms in {j}"))?;
    Ok(ready.saturating_sub(kernel) as f64 / 1000.0)
}

/// The guest's kernel log, parsed.
fn dmesg(vm: &Vm) -> Result<Vec<LogLine>> {
    Ok(stats::parse_dmesg(&vm.ssh("dmesg")?))
}

/// PID 1's VmRSS and private memory.
fn memory(vm: &Vm, b: &mut Boot) -> Result<()> {
    let out = vm.ssh("cat /proc/1/status; echo ----; cat /proc/1/smaps_rollup")?;
    let (status, rollup) = out.split_once("----").unwrap_or((&out, ""));
    b.vmrss_kb = stats::proc_field(status, "VmRSS");
    b.private_kb = stats::private_kb(rollup);
    if b.vmrss_kb.is_none() || b.private_kb.is_none() {
        b.notes.push(format!(
            "PID 1 memory not found in /proc/1/status and smaps_rollup:\n{out}"
        ));
    }
    Ok(())
}

/// PID 1's context switches over `secs` of idle, read in one ssh session so the login's
/// own log lines (which keel reads from sshd's pipe) fall outside the window.
fn idle(vm: &Vm, secs: u64, b: &mut Boot) -> Result<()> {
    let out = vm.ssh(&format!(
        "sleep 2; cat /proc/1/status; echo ----; sleep {secs}; cat /proc/1/status"
    ))?;
    let (before, after) = out.split_once("----").unwrap_or((&out, ""));
    match (
        stats::context_switches(before),
        stats::context_switches(after),
    ) {
        (Some(x), Some(y)) => b.idle_switches = Some(y.saturating_sub(x)),
        _ => b
            .notes
            .push(format!("no ctxt_switches in /proc/1/status:\n{out}")),
    }
    Ok(())
}

/// kill -9 of sshd's listener: guest time from the kill to keel's "sshd is ready", and
/// host time from the ssh command's return to the banner.
fn sshd_restart(vm: &Vm, port: u16, b: &mut Boot) -> Result<()> {
    vm.ssh(KILL_SSHD)?;
    let t0 = Instant::now();
    let banner = wait_banner(port, BOOT_TIMEOUT)?;
    b.sshd_restart_banner = Some(banner.duration_since(t0).as_secs_f64());
    vm.wait_ssh(Duration::from_secs(60))?;
    b.sshd_restart_guest = stats::interval(&dmesg(vm)?, "bench: kill sshd", "keel: sshd is ready");
    Ok(())
}

/// kill -9 of dhclient: keel restarts the network and then sshd, which needs it. The old
/// sshd answers until keel stops it, so the banner is probed only after the console says
/// the new one is ready.
fn cascade(vm: &mut Vm, port: u16, b: &mut Boot) -> Result<()> {
    // sshd does not need the network: it keeps running, and this session may stay.
    let _ = vm.ssh_output(KILL_DHCLIENT)?;
    let t0 = Instant::now();
    vm.wait_for("bench: kill dhclient", Duration::from_secs(30))?;
    // The banner answers throughout; the figure shows it was never away.
    let banner = wait_banner(port, BOOT_TIMEOUT)?;
    b.cascade_banner = Some(banner.duration_since(t0).as_secs_f64());
    vm.wait_ssh(Duration::from_secs(60))?;
    let ready = "keel: network is ready";
    let start = std::time::Instant::now();
    loop {
        let log = dmesg(vm)?;
        if let Some(v) = stats::interval(&log, "bench: kill dhclient", ready) {
            b.cascade_guest = Some(v);
            return Ok(());
        }
        if start.elapsed() > BOOT_TIMEOUT {
            bail!("no {ready:?} after the kill in the kernel log");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Probes 127.0.0.1:`port` until it answers with an SSH identification string; returns
/// when the banner arrived. QEMU's user network accepts on the host side before the guest
/// does, so a connection that closes or stays silent is retried.
pub(crate) fn wait_banner(port: u16, timeout: Duration) -> Result<Instant> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let start = Instant::now();
    loop {
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, PROBE) {
            let _ = s.set_read_timeout(Some(PROBE));
            let mut buf = [0u8; 8];
            let mut got = 0;
            while got < 4 {
                match s.read(&mut buf[got..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            if buf.starts_with(b"SSH-") {
                return Ok(Instant::now());
            }
        }
        if start.elapsed() >= timeout {
            bail!(
                "no ssh banner on 127.0.0.1:{port} after {}s",
                timeout.as_secs()
            );
        }
        std::thread::sleep(PROBE_GAP);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn init_to_sshd_from_keelctl_boot_json() {
        let j = r#"{"kernel_ms":2900,"init_ms":2905,"services":[{"name":"firewall","ready_ms":3000},{"name":"sshd","ready_ms":3480}]}"#;
        let v = super::boot_json_init_to_sshd(j).unwrap_or(-1.0);
        assert!((v - 0.58).abs() < 1e-9, "{v}");
        assert!(super::boot_json_init_to_sshd(r#"{"kernel_ms":1,"services":[]}"#).is_err());
        assert!(super::boot_json_init_to_sshd("keelctl: cannot reach keel").is_err());
    }
}

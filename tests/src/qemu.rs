//! The QEMU command line, in one place for the VM tests and `cargo xtask boot`.
//!
//! Building the arguments is pure and unit-tested; choosing a free port and probing KVM
//! are the only parts that touch the host. This module never starts a long-lived QEMU:
//! `vm.rs` (tests) and `xtask boot` (interactive) do.

use std::ffi::OsString;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The guest port sshd listens on; the host side is chosen per VM.
pub const GUEST_SSH_PORT: u16 = 2222;

/// Kernel arguments every boot gets: the serial console, and a panic reboots at once,
/// which `-no-reboot` turns into QEMU exiting (so a panic never hangs a test).
pub const BASE_CMDLINE: [&str; 2] = ["console=ttyS0,115200", "panic=-1"];

/// How QEMU runs the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Pure emulation: slow but works everywhere (the default).
    Tcg,
    /// Hardware virtualisation; only after `probe_kvm` proved a guest boots with it.
    Kvm,
}

impl Accel {
    fn as_str(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        }
    }
}

/// Where the serial console goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serial {
    /// Plain stdio, no escape character: for the harness, which reads and types on pipes.
    Stdio,
    /// stdio multiplexed with the monitor: for a person (Ctrl-A X quits, Ctrl-A C monitor).
    Interactive,
}

/// Everything that decides a QEMU command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub qemu: PathBuf,
    pub accel: Accel,
    pub memory_mb: u32,
    /// Virtual CPUs (`-smp`); under TCG more than one runs on as many host threads.
    pub cpus: u32,
    pub kernel: PathBuf,
    /// `None` once the kernel has the initramfs built in (the single-image kernel).
    pub initrd: Option<PathBuf>,
    /// Extra kernel arguments, after `BASE_CMDLINE`.
    pub append: Vec<String>,
    /// Host port on 127.0.0.1 forwarded to the guest's `GUEST_SSH_PORT`.
    pub ssh_port: u16,
    /// More TCP forwards, (host port on 127.0.0.1, guest port).
    pub forwards: Vec<(u16, u16)>,
    /// More options of the user-mode network (`net=...`, `guestfwd=...`), comma-joined.
    pub nic_options: Vec<String>,
    pub serial: Serial,
    /// A unix socket for the QEMU monitor (`system_powerdown`, `info status`, `quit`).
    pub monitor: Option<PathBuf>,
    /// Raw disk images attached as virtio-blk, in order (/dev/vda, /dev/vdb, ...).
    pub drives: Vec<PathBuf>,
    /// More QEMU arguments, before `-kernel` (devices such as a virtio console).
    pub extra: Vec<OsString>,
}

impl Spec {
    /// A spec with the defaults: TCG, 512 MiB, no initrd, harness serial, no monitor.
    pub fn new(kernel: PathBuf, ssh_port: u16) -> Self {
        Spec {
            qemu: qemu_binary(),
            accel: Accel::Tcg,
            memory_mb: 512,
            cpus: 1,
            kernel,
            initrd: None,
            append: Vec::new(),
            ssh_port,
            forwards: Vec::new(),
            nic_options: Vec::new(),
            serial: Serial::Stdio,
            monitor: None,
            drives: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// The kernel command line: `BASE_CMDLINE` then the extra arguments.
    pub fn cmdline(&self) -> String {
        let mut all: Vec<&str> = BASE_CMDLINE.to_vec();
        all.extend(self.append.iter().map(String::as_str));
        all.join(" ")
    }

    /// The arguments after the program name.
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |s: &str| a.push(s.into());
        push("-accel");
        push(self.accel.as_str());
        push("-m");
        push(&self.memory_mb.to_string());
        if self.cpus > 1 {
            push("-smp");
            push(&self.cpus.to_string());
        }
        push("-nographic");
        push("-no-reboot");
        push("-device");
        push("virtio-rng-pci");
        push("-nic");
        let mut nic = format!(
            "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{}-:{GUEST_SSH_PORT}",
            self.ssh_port
        );
        for (host, guest) in &self.forwards {
            nic.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
        }
        for o in &self.nic_options {
            nic.push(',');
            nic.push_str(o);
        }
        push(&nic);
        push("-serial");
        push(match self.serial {
            Serial::Stdio => "stdio",
            Serial::Interactive => "mon:stdio",
        });
        push("-append");
        push(&self.cmdline());
        if let Some(sock) = &self.monitor {
            a.push("-monitor".into());
            let mut m = OsString::from("unix:");
            m.push(sock);
            m.push(",server=on,wait=off");
            a.push(m);
        } else if self.serial == Serial::Stdio {
            // No monitor anywhere: -nographic would otherwise put one on stdio.
            a.push("-monitor".into());
            a.push("none".into());
        }
        for d in &self.drives {
            let mut arg = OsString::from("file=");
            arg.push(d);
            arg.push(",if=virtio,format=raw");
            a.push("-drive".into());
            a.push(arg);
        }
        a.extend(self.extra.iter().cloned());
        a.push("-kernel".into());
        a.push(self.kernel.clone().into_os_string());
        if let Some(initrd) = &self.initrd {
            a.push("-initrd".into());
            a.push(initrd.clone().into_os_string());
        }
        a
    }

    /// The command, ready to spawn (stdio is left to the caller).
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.qemu);
        c.args(self.args());
        c
    }

    /// The command line as a person would type it, for logs.
    pub fn shown(&self) -> String {
        let mut s = self.qemu.display().to_string();
        for a in self.args() {
            let a = a.to_string_lossy();
            if a.contains(' ') || a.is_empty() {
                s.push_str(&format!(" '{a}'"));
            } else {
                s.push(' ');
                s.push_str(&a);
            }
        }
        s
    }
}

/// The QEMU binary: `$KEEL_QEMU` or `qemu-system-x86_64` on PATH.
pub fn qemu_binary() -> PathBuf {
    std::env::var_os("KEEL_QEMU").map_or_else(|| PathBuf::from("qemu-system-x86_64"), PathBuf::from)
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it by binding
/// port 0). Another process may still take it before QEMU does: callers retry on a
/// hostfwd failure.
pub fn free_port() -> std::io::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

/// Is `port` on 127.0.0.1 free to bind right now?
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// Does the CPU advertise hardware virtualisation (vmx or svm) in `cpuinfo`?
pub fn cpu_has_virt(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
}

/// Boots `kernel` under KVM with no initrd and waits up to `limit` for the kernel to
/// start and give up on a root fs (then panic=-1 and -no-reboot end QEMU). A nonexistent
/// `rdinit=` makes a kernel with a built-in initramfs (the single image) give up the same
/// way instead of starting keel. `true` only if
/// that happened: a guest that hangs (seen: "Probing EDD" forever) proves nothing.
pub fn probe_kvm(kernel: &Path, limit: Duration) -> bool {
    let readable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    if !readable || !cpu_has_virt(&cpuinfo) {
        return false;
    }
    let Ok(port) = free_port() else { return false };
    let mut spec = Spec::new(kernel.to_path_buf(), port);
    spec.accel = Accel::Kvm;
    spec.memory_mb = 128;
    spec.append = vec!["rdinit=/keel-kvm-probe-has-no-init".to_string()];
    let dir = std::env::temp_dir().join(format!("keel-kvm-probe-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return false;
    }
    let log = dir.join("console.log");
    let Ok(file) = std::fs::File::create(&log) else {
        return false;
    };
    let Ok(mut child) = spec
        .command()
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let deadline = Instant::now() + limit;
    let exited = loop {
        match child.try_wait() {
            Ok(Some(_)) => break true,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            _ => break false,
        }
    };
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    exited && out.contains("Linux version") && out.contains("VFS:")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(spec: &Spec) -> Vec<String> {
        spec.args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn after<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn harness_command_line() {
        let mut spec = Spec::new("/boot/vmlinuz-6.1.0-56-amd64".into(), 40123);
        spec.initrd = Some("/tmp/x/initrd.img".into());
        spec.monitor = Some("/tmp/x/monitor.sock".into());
        spec.append = vec!["keel.debug".into(), "ip=dhcp".into()];
        let args = strings(&spec);
        assert_eq!(after(&args, "-accel"), ["tcg"]);
        assert_eq!(after(&args, "-m"), ["512"]);
        assert!(args.contains(&"-no-reboot".into()) && args.contains(&"-nographic".into()));
        assert_eq!(after(&args, "-device"), ["virtio-rng-pci"]);
        assert_eq!(
            after(&args, "-nic"),
            ["user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:40123-:2222"]
        );
        assert_eq!(after(&args, "-serial"), ["stdio"]);
        assert_eq!(
            after(&args, "-monitor"),
            ["unix:/tmp/x/monitor.sock,server=on,wait=off"]
        );
        assert_eq!(
            after(&args, "-append"),
            ["console=ttyS0,115200 panic=-1 keel.debug ip=dhcp"]
        );
        assert_eq!(after(&args, "-initrd"), ["/tmp/x/initrd.img"]);
        assert_eq!(after(&args, "-kernel"), ["/boot/vmlinuz-6.1.0-56-amd64"]);
    }

    #[test]
    fn interactive_and_single_image_command_line() {
        let mut spec = Spec::new("target/keel/bzImage".into(), 2222);
        spec.serial = Serial::Interactive;
        let args = strings(&spec);
        assert_eq!(after(&args, "-serial"), ["mon:stdio"]);
        assert!(
            after(&args, "-monitor").is_empty(),
            "the monitor stays on Ctrl-A C"
        );
        assert!(
            after(&args, "-initrd").is_empty(),
            "no initrd for a kernel with one built in"
        );
        assert!(
            spec.shown()
                .contains(" -append 'console=ttyS0,115200 panic=-1' ")
        );
    }

    #[test]
    fn harness_without_monitor_socket_has_no_monitor_on_stdio() {
        let args = strings(&Spec::new("k".into(), 1));
        assert_eq!(after(&args, "-monitor"), ["none"]);
    }

    #[test]
    fn free_port_is_bindable_and_not_zero() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        assert!(port_is_free(port));
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
        assert!(!port_is_free(port), "a held port must not look free");
        drop(held);
    }

    #[test]
    fn cpu_virt_flags() {
        assert!(cpu_has_virt("processor: 0\nflags\t\t: fpu vme vmx sse\n"));
        assert!(cpu_has_virt("flags\t\t: fpu svm\n"));
        assert!(!cpu_has_virt(
            "flags\t\t: fpu vme hypervisor\nvmx flags\t: ept\n"
        ));
    }
}

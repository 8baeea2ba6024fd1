//! A running QEMU guest that a test can expect on, type into, ssh to and power off.
//!
//! Two threads copy QEMU's stdout (the serial console) and stderr into a shared transcript
//! and the per-test log `target/keel/vm-logs/<test>.log`; every wait is on that
//! transcript with a deadline. Drop always kills QEMU and removes the work directory, so a
//! failed assertion never leaves a guest running. It must not assert timings: TCG speed
//! varies with the host's load.

use crate::artefacts::{self, Artefacts, Kind};
use crate::console::{self, KERNEL_PANIC, Pattern, Transcript};
use crate::monitor;
use crate::qemu::{self, Accel, Spec};
use anyhow::{Context, Result, anyhow, bail};
use newc::{self as cpio, Archive, Kind as Node};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How many console lines an error shows.
const ERROR_LINES: usize = 40;

/// How long `wait_for` waits for the rest of a matched line before returning it unfinished.
const LINE_GRACE: Duration = Duration::from_millis(500);

/// The longest a wait sleeps before checking its deadline and the line grace again.
const POLL: Duration = Duration::from_millis(100);

/// Which initrd the guest gets before the overlay.
#[derive(Debug, Clone)]
enum Base {
    /// The image's initrd for the kernel kind: none for the single image (its initramfs is
    /// built in), `initramfs.cpio.gz` for the modular kernel (or `KEEL_INITRD`).
    Image,
    /// A given file.
    File(PathBuf),
    /// Nothing: the overlay is the whole initrd (harness self-tests).
    None,
}

/// How to boot a VM: built with chained calls, then passed to `Vm::boot`.
#[derive(Debug, Clone)]
pub struct BootOpts {
    name: String,
    kernel: Option<PathBuf>,
    /// `None`: `KEEL_VM_KERNEL`, else the single image.
    kind: Option<Kind>,
    base: Base,
    append: Vec<String>,
    overlay: Archive,
    memory_mb: u32,
    cpus: u32,
    accel: Option<Accel>,
    /// Raw disk images for virtio-blk (`drive`).
    drives: Vec<PathBuf>,
    qemu_args: Vec<std::ffi::OsString>,
    /// Guest TCP ports forwarded from a free host port each, besides ssh's.
    forwards: Vec<u16>,
    /// More options of the user-mode network.
    nic_options: Vec<String>,
}

impl BootOpts {
    /// Defaults for test `name` (which also names the log file): the kernel kind that
    /// `KEEL_VM_KERNEL` names (default the single image `target/keel/bzImage`, no initrd),
    /// 512 MiB, TCG unless `KEEL_ACCEL` says otherwise.
    pub fn new(name: &str) -> Self {
        BootOpts {
            name: name.to_string(),
            kernel: None,
            kind: None,
            base: Base::Image,
            append: Vec::new(),
            overlay: Archive::new(),
            memory_mb: 512,
            cpus: 1,
            accel: None,
            drives: Vec::new(),
            qemu_args: Vec::new(),
            forwards: Vec::new(),
            nic_options: Vec::new(),
        }
    }

    /// Boots this kernel instead of the default.
    pub fn kernel(mut self, path: impl Into<PathBuf>) -> Self {
        self.kernel = Some(path.into());
        self
    }

    /// Boots the image with this kernel kind whatever `KEEL_VM_KERNEL` says: the single image,
    /// or the Debian kernel with `initramfs.cpio.gz` (`KEEL_KERNEL`/`KEEL_INITRD` still win).
    pub fn kind(mut self, kind: Kind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// Uses this initrd instead of the image's.
    pub fn initrd(mut self, path: impl Into<PathBuf>) -> Self {
        self.base = Base::File(path.into());
        self
    }

    /// Boots with the overlay as the whole initrd (no image): for testing the harness itself.
    pub fn overlay_only(mut self) -> Self {
        self.base = Base::None;
        self
    }

    /// Adds one kernel argument (after `console=ttyS0,115200 panic=-1`).
    pub fn append(mut self, arg: &str) -> Self {
        self.append.push(arg.to_string());
        self
    }

    /// Puts a 0644 file at `guest_path`, replacing the image's file of that name.
    pub fn overlay(mut self, guest_path: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.overlay
            .add(guest_path, Node::File(contents.into()), 0o644);
        self
    }

    /// Puts an executable (0755) file at `guest_path`.
    pub fn overlay_exec(mut self, guest_path: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.overlay
            .add(guest_path, Node::File(contents.into()), 0o755);
        self
    }

    /// Copies the host file `host` (e.g. /bin/busybox) to `guest_path` with `perm`.
    pub fn overlay_host_file(mut self, guest_path: &str, host: &Path, perm: u32) -> Result<Self> {
        let data =
            std::fs::read(host).with_context(|| format!("cannot read {}", host.display()))?;
        self.overlay.add(guest_path, Node::File(data), perm);
        Ok(self)
    }

    /// Adds a directory with `perm`.
    pub fn overlay_dir(mut self, guest_path: &str, perm: u32) -> Self {
        self.overlay.add(guest_path, Node::Dir, perm);
        self
    }

    /// Adds a symbolic link.
    pub fn overlay_symlink(mut self, guest_path: &str, target: &str) -> Self {
        self.overlay
            .add(guest_path, Node::Symlink(target.to_string()), 0o777);
        self
    }

    /// Adds a character device node.
    pub fn overlay_char_dev(mut self, guest_path: &str, major: u32, minor: u32, perm: u32) -> Self {
        self.overlay
            .add(guest_path, Node::CharDev { major, minor }, perm);
        self
    }

    /// Authorizes the harness's test key for root (`/root/.ssh/authorized_keys`), for `Vm::ssh`.
    pub fn authorize_test_key(self) -> Result<Self> {
        let key = crate::ssh::test_public_key()?;
        Ok(self
            .overlay_dir("/root", 0o700)
            .overlay_dir("/root/.ssh", 0o700)
            .overlay_file_mode("/root/.ssh/authorized_keys", key.into_bytes(), 0o600))
    }

    fn overlay_file_mode(mut self, guest_path: &str, contents: Vec<u8>, perm: u32) -> Self {
        self.overlay.add(guest_path, Node::File(contents), perm);
        self
    }

    /// Attaches a raw disk image as the next virtio-blk disk (/dev/vda, then /dev/vdb...).
    pub fn drive(mut self, image: impl Into<PathBuf>) -> Self {
        self.drives.push(image.into());
        self
    }

    /// Adds QEMU arguments (a device, a chardev...), placed before `-kernel`.
    pub fn qemu_args<S: Into<std::ffi::OsString>>(
        mut self,
        args: impl IntoIterator<Item = S>,
    ) -> Self {
        self.qemu_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds an option to QEMU's user-mode network (`-nic user,...`), such as
    /// `net=169.254.0.0/16` or `guestfwd=tcp:ADDR:PORT-cmd:COMMAND`.
    pub fn nic_option(mut self, option: &str) -> Self {
        self.nic_options.push(option.to_string());
        self
    }

    /// Guest memory in MiB.
    pub fn memory_mb(mut self, mb: u32) -> Self {
        self.memory_mb = mb;
        self
    }

    /// Virtual CPUs (default 1, what the smallest cloud guests have).
    pub fn cpus(mut self, n: u32) -> Self {
        self.cpus = n.max(1);
        self
    }

    /// Also forwards a free host port on 127.0.0.1 to the guest's TCP `guest_port`
    /// (`Vm::forwarded_port` says which).
    pub fn forward(mut self, guest_port: u16) -> Self {
        self.forwards.push(guest_port);
        self
    }

    /// Forces an accelerator (the default comes from `KEEL_ACCEL`, else TCG).
    pub fn accel(mut self, accel: Accel) -> Self {
        self.accel = Some(accel);
        self
    }
}

/// The accelerator from `KEEL_ACCEL`: `tcg` (default), `kvm`, or `auto` (KVM only if a
/// probe boots the kernel with it).
fn accel_from_env(kernel: &Path) -> Result<Accel> {
    match std::env::var("KEEL_ACCEL").as_deref() {
        Err(_) | Ok("" | "tcg") => Ok(Accel::Tcg),
        Ok("kvm") => Ok(Accel::Kvm),
        Ok("auto") if qemu::probe_kvm(kernel, Duration::from_secs(20)) => Ok(Accel::Kvm),
        Ok("auto") => Ok(Accel::Tcg),
        Ok(other) => bail!("KEEL_ACCEL={other:?} is not one of tcg, kvm, auto"),
    }
}

/// The console and QEMU's stderr, filled by the reader threads.
#[derive(Default)]
struct State {
    console: Transcript,
    stderr: Transcript,
    console_closed: bool,
    stderr_closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running guest. Dropping it kills QEMU; drop it on the thread that booted it.
pub struct Vm {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    shared: Arc<Shared>,
    log: Arc<Mutex<File>>,
    log_path: PathBuf,
    readers: Vec<JoinHandle<()>>,
    /// Byte offset in the console text up to which waits have consumed.
    cursor: usize,
    next_id: u32,
    ssh_port: u16,
    forwards: Vec<(u16, u16)>,
    monitor_path: PathBuf,
    work_dir: PathBuf,
    started: Instant,
    exit: Option<ExitStatus>,
}

/// A fresh private directory for one VM's sockets and initrd (short, for unix socket paths).
fn work_dir() -> Result<PathBuf> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("keel-vm-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// The base initrd followed by the overlay archive, 4-byte aligned as the kernel requires
/// for an uncompressed archive that follows a compressed one.
fn combine(base: &[u8], overlay: &Archive) -> Result<Vec<u8>> {
    let mut out = base.to_vec();
    cpio::pad4(&mut out);
    out.extend_from_slice(&overlay.to_bytes()?);
    Ok(out)
}

fn copy_stream(mut from: impl Read, shared: Arc<Shared>, log: Arc<Mutex<File>>, is_console: bool) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        {
            let mut f = log.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = f.write_all(&buf[..n]);
        }
        let mut st = shared.lock();
        if is_console {
            st.console.push(&buf[..n]);
        } else {
            st.stderr.push(&buf[..n]);
        }
        drop(st);
        shared.changed.notify_all();
    }
    let mut st = shared.lock();
    if is_console {
        st.console_closed = true;
    } else {
        st.stderr_closed = true;
    }
    drop(st);
    shared.changed.notify_all();
}

/// The QEMU command, run through `setpriv --pdeathsig KILL` when util-linux has it, so
/// QEMU dies with the test even when the test process is killed and Drop never runs. The
/// kernel sends that signal when the *thread* that spawned QEMU ends: a `Vm` must be
/// dropped on the thread that booted it (every test does).
fn guarded(spec: &Spec) -> std::process::Command {
    const SETPRIV: &str = "/usr/bin/setpriv";
    if !Path::new(SETPRIV).exists() {
        return spec.command();
    }
    let mut c = std::process::Command::new(SETPRIV);
    c.args(["--pdeathsig", "KILL", "--"])
        .arg(&spec.qemu)
        .args(spec.args());
    c
}

impl Vm {
    /// Starts QEMU and returns once its monitor answers (the guest is then booting).
    pub fn boot(opts: BootOpts) -> Result<Vm> {
        let kind = match opts.kind {
            Some(k) => k,
            None => Kind::from_env()?,
        };
        let kernel = match &opts.kernel {
            Some(k) => k.clone(),
            None => artefacts::kernel(kind)?,
        };
        // With the single image and no initrd, an overlay becomes the whole initrd and the
        // kernel unpacks it over the built-in initramfs, so later files replace the image's.
        let base = match &opts.base {
            Base::Image => artefacts::initrd(kind),
            Base::File(p) => Some(p.clone()),
            Base::None => None,
        };
        Artefacts {
            kernel: kernel.clone(),
            initrd: base.clone(),
        }
        .check()?;
        let accel = match opts.accel {
            Some(a) => a,
            None => accel_from_env(&kernel)?,
        };
        let work = work_dir()?;
        let initrd = if opts.overlay.is_empty() {
            base
        } else {
            let base_bytes = match &base {
                Some(p) => {
                    std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?
                }
                None => Vec::new(),
            };
            let file = work.join("initrd.img");
            std::fs::write(&file, combine(&base_bytes, &opts.overlay)?)
                .with_context(|| format!("cannot write {}", file.display()))?;
            Some(file)
        };
        let log_dir = artefacts::out_dir().join("vm-logs");
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("cannot create {}", log_dir.display()))?;
        let log_path = log_dir.join(format!("{}.log", opts.name));

        let mut last_err = anyhow!("qemu never started");
        for _attempt in 0..3 {
            let port = qemu::free_port().context("cannot find a free TCP port on 127.0.0.1")?;
            let mut spec = Spec::new(kernel.clone(), port);
            spec.accel = accel;
            spec.memory_mb = opts.memory_mb;
            spec.cpus = opts.cpus;
            spec.initrd = initrd.clone();
            spec.append = opts.append.clone();
            spec.drives = opts.drives.clone();
            spec.extra = opts.qemu_args.clone();
            spec.nic_options = opts.nic_options.clone();
            for &guest in &opts.forwards {
                let host = qemu::free_port().context("cannot find a free TCP port on 127.0.0.1")?;
                spec.forwards.push((host, guest));
            }
            spec.monitor = Some(work.join("monitor.sock"));
            let _ = std::fs::remove_file(work.join("monitor.sock"));
            let mut vm = Vm::spawn(&opts.name, &spec, &log_path, &work)?;
            match vm.wait_ready() {
                Ok(()) => return Ok(vm),
                Err(e) => {
                    let port_lost = vm.stderr_text().contains("host forwarding");
                    last_err = e;
                    if !port_lost {
                        break;
                    }
                    // Another process took the port between our probe and QEMU: try again.
                    vm.note(&format!("port {port} was taken; retrying with another"));
                    vm.keep_work_dir();
                }
            }
        }
        let _ = std::fs::remove_dir_all(&work);
        Err(last_err)
    }

    fn spawn(name: &str, spec: &Spec, log_path: &Path, work: &Path) -> Result<Vm> {
        let mut log = File::create(log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        writeln!(log, ">>> keel-tests: {}\n", spec.shown())?;
        let log = Arc::new(Mutex::new(log));
        let mut child = guarded(spec)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {}: apt-get install qemu-system-x86 (or set KEEL_QEMU)",
                    spec.qemu.display()
                )
            })?;
        let shared = Arc::new(Shared::default());
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            let (s, l) = (shared.clone(), log.clone());
            readers.push(std::thread::spawn(move || copy_stream(out, s, l, true)));
        }
        if let Some(err) = child.stderr.take() {
            let (s, l) = (shared.clone(), log.clone());
            readers.push(std::thread::spawn(move || copy_stream(err, s, l, false)));
        }
        Ok(Vm {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            shared,
            log,
            log_path: log_path.to_path_buf(),
            readers,
            cursor: 0,
            next_id: 1,
            ssh_port: spec.ssh_port,
            forwards: spec.forwards.clone(),
            monitor_path: spec.monitor.clone().unwrap_or_default(),
            work_dir: work.to_path_buf(),
            started: Instant::now(),
            exit: None,
        })
    }

    /// Waits until the monitor shows its prompt: QEMU has set up every device by then.
    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.exit = Some(status);
                self.join_readers();
                return Err(self.failure(&format!("qemu exited at start ({status})")));
            }
            if UnixStream::connect(&self.monitor_path).is_ok() {
                let reply = monitor::command(&self.monitor_path, "info status")?;
                if reply.contains("VM status") {
                    return Ok(());
                }
                return Err(self.failure(&format!("unexpected monitor reply {reply:?}")));
            }
            if Instant::now() >= deadline {
                return Err(self.failure("qemu's monitor socket never appeared"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Writes a harness note into the log, with the time since QEMU started.
    fn note(&self, what: &str) {
        let secs = self.started.elapsed().as_secs_f64();
        let mut f = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = writeln!(f, "\n>>> keel-tests +{secs:.1}s: {what}");
    }

    /// An error headed `what`, with the last console lines and QEMU's stderr.
    fn failure(&self, what: &str) -> anyhow::Error {
        let st = self.shared.lock();
        let mut msg = format!(
            "vm {}: {what}\n--- last {ERROR_LINES} console lines ---\n{}\n--- end of console (full log: {}) ---",
            self.name,
            console::last_lines(st.console.text(), ERROR_LINES),
            self.log_path.display()
        );
        let err = st.stderr.text().trim();
        if !err.is_empty() {
            msg.push_str(&format!("\nqemu stderr:\n{}", console::last_lines(err, 10)));
        }
        drop(st);
        self.note(what);
        anyhow!(msg)
    }

    /// Waits for `f` to find something in the console after the cursor; `f` returns its
    /// value and how many bytes of that text it consumed. Fails on timeout, when QEMU
    /// exits, and soon after a kernel panic.
    fn wait_until<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut(&str) -> Option<(T, usize)>,
    ) -> Result<T> {
        let start = Instant::now();
        let mut deadline = start + timeout;
        let mut panicked = false;
        let shared = self.shared.clone();
        let mut st = shared.lock();
        loop {
            let unseen = &st.console.text()[self.cursor..];
            if let Some((value, used)) = f(unseen) {
                self.cursor += used;
                drop(st);
                self.note(&format!(
                    "saw {what} after {:.1}s",
                    start.elapsed().as_secs_f64()
                ));
                return Ok(value);
            }
            if !panicked && unseen.contains(KERNEL_PANIC) {
                // Give the kernel a moment to print why, then fail.
                panicked = true;
                deadline = deadline.min(Instant::now() + Duration::from_secs(3));
            }
            let now = Instant::now();
            if st.console_closed || now >= deadline {
                let why = if panicked {
                    "the kernel panicked"
                } else if st.console_closed {
                    "qemu exited"
                } else {
                    "timed out"
                };
                drop(st);
                return Err(self.failure(&format!(
                    "{why} after {:.1}s waiting for {what}",
                    start.elapsed().as_secs_f64()
                )));
            }
            let wait = (deadline - now).min(POLL);
            st = shared
                .changed
                .wait_timeout(st, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits for `pattern` (a substring, or `Pattern::regex`) in console output not yet
    /// consumed by an earlier wait, and returns the whole line it is on. The line is
    /// awaited to its end (a console write may arrive in pieces), except for a prompt
    /// that stays unfinished for `LINE_GRACE`.
    pub fn wait_for(&mut self, pattern: impl Into<Pattern>, timeout: Duration) -> Result<String> {
        let pattern = pattern.into();
        let what = pattern.to_string();
        let mut found = None;
        let mut first_seen: Option<Instant> = None;
        self.wait_until(timeout, &what, |text| {
            let (s, e) = pattern.find(text)?;
            let complete = text[e..].contains('\n');
            let seen = *first_seen.get_or_insert_with(Instant::now);
            if !complete && seen.elapsed() < LINE_GRACE {
                return None;
            }
            found = Some(console::line_around(text, s, e).to_string());
            Some(((), e))
        })?;
        Ok(found.unwrap_or_default())
    }

    /// Types `line` and Enter on the serial console.
    pub fn send_line(&mut self, line: &str) -> Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("vm {}: console input is closed", self.name))?;
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .with_context(|| format!("vm {}: cannot type on the console", self.name))
    }

    /// Runs `cmd` in the console shell and returns its exit status and output (stdout and
    /// stderr, as the console showed them).
    pub fn run_status(&mut self, cmd: &str, timeout: Duration) -> Result<(i32, String)> {
        let id = self.next_id;
        self.next_id += 1;
        self.send_line(&console::wrap_command(cmd, id))?;
        self.wait_until(timeout, &format!("the output of {cmd:?}"), |text| {
            let (code, out, used) = console::extract_marked(text, id)?;
            Some(((code, out), used))
        })
    }

    /// The row of service `name` in `keelctl status`, typed on the console: its state and
    /// pid (`None` when keel has no such service).
    pub fn service_row(&mut self, name: &str) -> Result<Option<(String, Option<i32>)>> {
        // The kernel prints to the same console at any byte of a line (`ROW up 86[ 3.77]
        // IPv6: ...`, a CI failure), so a row that is not exactly `ROW STATE PID` is asked
        // for again rather than misread.
        let clean = regex_lite::Regex::new(r"^ROW ([a-z-]+) ([0-9]+|-)$")?;
        let mut last = String::new();
        for _ in 0..5 {
            let out = self.run(
                &format!("keelctl status | awk '$1==\"{name}\" {{print \"ROW\", $2, $3}}'"),
                crate::CMD_TIMEOUT,
            )?;
            let Some(line) = out
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| l.starts_with("ROW"))
            else {
                return Ok(None);
            };
            if let Some(c) = clean.captures(line) {
                return Ok(Some((c[1].to_string(), c[2].parse().ok())));
            }
            last = line.to_string();
        }
        bail!(
            "vm {}: the status row of {name} was garbled on the console 5 times; the last: {last:?}",
            self.name
        )
    }

    /// Polls `keelctl status` on the console until `cond` holds for the rows of `names`
    /// (each row (state, pid); an error when keel has no such service), at most
    /// `crate::BOOT_TIMEOUT`. Returns the rows that satisfied it.
    #[allow(clippy::disallowed_methods)] // The harness, not PID 1: it polls with a clock.
    pub fn wait_services(
        &mut self,
        what: &str,
        names: &[&str],
        cond: impl Fn(&[(String, Option<i32>)]) -> bool,
    ) -> Result<Vec<(String, Option<i32>)>> {
        let start = Instant::now();
        loop {
            let rows = names
                .iter()
                .map(|n| {
                    self.service_row(n)?
                        .with_context(|| format!("keelctl status has no row for {n}"))
                })
                .collect::<Result<Vec<_>>>()?;
            if cond(&rows) {
                return Ok(rows);
            }
            if start.elapsed() > crate::BOOT_TIMEOUT {
                bail!("timed out waiting for {what}; last rows {rows:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// keel's own log lines from the kernel's ring buffer (`dmesg` on the console), from
    /// `keel: ` on, one per line. Unlike the console, where PID 1 drops a line rather than
    /// wait for a busy tty, this is complete: keel turns the kernel's kmsg rate limit off.
    pub fn keel_log(&mut self) -> Result<String> {
        let out = self.run("dmesg", crate::CMD_TIMEOUT)?;
        Ok(out
            .lines()
            .filter_map(|l| l.find("keel: ").map(|i| format!("{}\n", &l[i..])))
            .collect())
    }

    /// Runs `cmd` in the console shell and returns what it printed; fails if it exits non-zero.
    pub fn run(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        let (code, out) = self.run_status(cmd, timeout)?;
        if code != 0 {
            bail!(
                "vm {}: {cmd:?} exited with {code}; it printed:\n{out}",
                self.name
            );
        }
        Ok(out)
    }

    /// Waits for QEMU to exit by itself (e.g. after a guest poweroff).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.exit = Some(status);
                self.join_readers();
                self.note(&format!("qemu exited by itself: {status}"));
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(self.failure(&format!(
                    "qemu still running {}s after it should have exited",
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for QEMU to exit by itself, and fails unless it exited with status 0 (a guest
    /// poweroff or reboot under -no-reboot).
    pub fn wait_clean_exit(&mut self, timeout: Duration) -> Result<()> {
        let status = self.wait_exit(timeout)?;
        if !status.success() {
            bail!("qemu exited with {status}");
        }
        Ok(())
    }

    /// Sends a command to the QEMU monitor (e.g. `system_powerdown`) and returns its reply.
    pub fn monitor(&self, cmd: &str) -> Result<String> {
        self.note(&format!("monitor: {cmd}"));
        monitor::command(&self.monitor_path, cmd)
            .with_context(|| format!("vm {}: monitor command {cmd:?}", self.name))
    }

    /// Runs `cmd` over ssh as root with the test key (see `BootOpts::authorize_test_key`).
    pub fn ssh_output(&self, cmd: &str) -> Result<std::process::Output> {
        let key = crate::ssh::test_key()?;
        std::process::Command::new("ssh")
            .args(crate::ssh::ssh_args(self.ssh_port, &key))
            .arg("--")
            .arg(cmd)
            .stdin(Stdio::null())
            .output()
            .context("cannot run ssh: apt-get install openssh-client")
    }

    /// Runs `cmd` over ssh and returns its stdout; fails with its stderr if it fails.
    pub fn ssh(&self, cmd: &str) -> Result<String> {
        let out = self.ssh_output(cmd)?;
        if !out.status.success() {
            bail!(
                "vm {}: ssh {cmd:?} failed ({}): {}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Retries `ssh true` until sshd lets the test key in, for up to `timeout`.
    pub fn wait_ssh(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.ssh_output("true")?;
            if out.status.success() {
                self.note("ssh works");
                return Ok(());
            }
            if Instant::now() >= deadline {
                let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
                return Err(self.failure(&format!(
                    "ssh to 127.0.0.1:{} still fails after {}s: {why}",
                    self.ssh_port,
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Everything the console printed so far.
    pub fn console_text(&self) -> String {
        self.shared.lock().console.text().to_string()
    }

    fn stderr_text(&self) -> String {
        self.shared.lock().stderr.text().to_string()
    }

    /// Fails if the console ever showed a kernel panic.
    pub fn assert_no_kernel_panic(&self) -> Result<()> {
        if self.console_text().contains(KERNEL_PANIC) {
            return Err(self.failure("the console shows a kernel panic"));
        }
        Ok(())
    }

    /// The host port forwarded to the guest's sshd (2222).
    pub fn ssh_port(&self) -> u16 {
        self.ssh_port
    }

    /// The host port forwarded to the guest's TCP `guest_port` (`BootOpts::forward`).
    pub fn forwarded_port(&self, guest_port: u16) -> Option<u16> {
        self.forwards
            .iter()
            .find(|(_, g)| *g == guest_port)
            .map(|(h, _)| *h)
    }

    /// When QEMU was started (for wall-clock figures such as the bench's time to the ssh
    /// banner; never for assertions).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The per-test console log.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    fn join_readers(&mut self) {
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }

    /// Stops QEMU without removing the shared work directory (used between retries).
    fn keep_work_dir(mut self) {
        self.work_dir = PathBuf::new();
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.stdin = None;
        if self.exit.is_none() {
            let _ = self.child.kill();
            if let Ok(status) = self.child.wait() {
                self.note(&format!("qemu killed by the harness ({status})"));
            }
        }
        self.join_readers();
        if !self.work_dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.work_dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_follows_the_base_aligned() {
        let mut a = Archive::new();
        a.add(
            "/etc/keel/appliance.toml",
            Node::File(b"[system]\n".to_vec()),
            0o644,
        );
        let base = b"\x1f\x8b\x08gzip-xy"; // 10 bytes, like a gzip member of odd length.
        let joined = combine(base, &a).expect("combine");
        assert_eq!(&joined[..10], base);
        assert_eq!(&joined[10..12], b"\0\0", "padding to a multiple of 4");
        assert_eq!(
            &joined[12..18],
            b"070701",
            "overlay archive starts 4-aligned"
        );
    }

    #[test]
    fn opts_build_an_overlay() {
        let o = BootOpts::new("t")
            .overlay("/etc/keel/appliance.toml", "x")
            .overlay_exec("/init", "#!/bin/sh\n")
            .overlay_char_dev("/dev/console", 5, 1, 0o600)
            .append("keel.debug");
        assert_eq!(
            o.overlay.paths(),
            [
                "dev",
                "dev/console",
                "etc",
                "etc/keel",
                "etc/keel/appliance.toml",
                "init"
            ]
        );
        assert_eq!(o.append, ["keel.debug"]);
    }
}

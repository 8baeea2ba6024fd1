//! The boot sequence of PID 1, from the first instruction to the point where the main
//! loop takes over.
//!
//! Every system call goes through the `Sys` trait, so the whole sequence runs in unit
//! tests against a recording fake (youki's `TestHelperSyscall`), and `sys::linux::LinuxSys`
//! is the real thing. The order is fixed and tested:
//!
//! 1. block every signal except the synchronous faults (before anything can fork);
//! 2. log `keel <version> starting as PID 1` (to /dev/console: nothing is mounted yet);
//! 3. the mount plan (`mountplan.rs`), with the tmpfs fallback when devtmpfs fails;
//! 4. the consoles from `/sys/class/tty/console/active` (their nodes made from sysfs when
//!    /dev lacks them), and the log moves to them and /dev/kmsg;
//! 5. the clock floor: a wall clock earlier than the image's build time
//!    (`/etc/keel/build-epoch`, SOURCE_DATE_EPOCH when the image was built) is set to it,
//!    so host keys and logs are never stamped 1970; then the appliance config (unreadable
//!    or invalid: emergency);
//! 6. kernel modules, on a modular kernel only (a required one failing: emergency), then
//!    the consoles again: one whose driver is a module (virtio_console's hvc0) is active
//!    only now, and the log and the per-console services move to the new list;
//! 7. the hostname, `lo` up, Ctrl-Alt-Del to SIGINT, /run/sshd and /var/lib/keel.
//!
//! A fatal error does not stop the sequence: steps that do not need what failed still run
//! (so the emergency shell has a working /dev, `lo` and a sane Ctrl-Alt-Del), and the first
//! fatal error is returned for the main loop to act on. This module never panics on
//! input and never exits.
#![forbid(unsafe_code)]

use crate::consoles::{self, Consoles};
use crate::lifecycle::{Cause, EmergencyOpts};
use crate::log::Level;
use crate::modules::{ModDb, normalize};
use crate::mountplan::{self, Mount, OnFail, Step};
use appliance::ApplianceConfig;
use nix::errno::Errno;

/// keel's version, as in the start marker.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Directories the services need, created after the mounts (mode applied exactly).
pub const STATE_DIRS: [(&str, u32); 2] = [("/run/sshd", 0o755), ("/var/lib/keel", 0o755)];

/// The system calls of the boot. Errors are plain errnos; the boot decides what they mean.
pub trait Sys {
    /// Blocks every signal but the synchronous faults.
    fn block_signals(&mut self) -> Result<(), Errno>;
    /// Writes one log line (see `log.rs`).
    fn log(&mut self, level: Level, msg: &str);
    /// Shows debug lines on the consoles too (`keel.debug`).
    fn set_verbose(&mut self, on: bool);
    /// Moves the log to these consoles (names under /dev) and /dev/kmsg.
    fn use_consoles(&mut self, names: &[String]);
    /// Reads a whole file.
    fn read_file(&mut self, path: &str) -> Result<String, Errno>;
    /// Writes to an existing file (a sysctl under /proc/sys).
    fn write_file(&mut self, path: &str, text: &str) -> Result<(), Errno>;
    /// Creates (or truncates) a regular file, mode 0644, and writes `text` to it.
    fn create_file(&mut self, path: &str, text: &str) -> Result<(), Errno>;
    /// Whether a path exists.
    fn exists(&mut self, path: &str) -> bool;
    /// Creates a directory (and parents) with exactly this mode, unless it exists.
    fn mkdir(&mut self, path: &str, mode: u32) -> Result<(), Errno>;
    /// mount(2).
    fn mount(&mut self, m: &Mount) -> Result<(), Errno>;
    /// mount(2) with MS_REMOUNT of the tmpfs at `target`, with new options `data`.
    fn remount_tmpfs(
        &mut self,
        target: &str,
        flags: mountplan::Flags,
        data: &str,
    ) -> Result<(), Errno>;
    /// Makes a character device node with exactly `mode`, unless the path exists.
    fn mknod(&mut self, path: &str, major: u64, minor: u64, mode: u32) -> Result<(), Errno>;
    /// Makes a symlink unless the link exists.
    fn symlink(&mut self, target: &str, link: &str) -> Result<(), Errno>;
    /// `uname -r`.
    fn kernel_release(&mut self) -> Result<String, Errno>;
    /// finit_module(2) on a file.
    fn load_module(&mut self, path: &str) -> Result<(), Errno>;
    /// sethostname(2).
    fn set_hostname(&mut self, name: &str) -> Result<(), Errno>;
    /// Brings `lo` up.
    fn loopback_up(&mut self) -> Result<(), Errno>;
    /// reboot(RB_DISABLE_CAD): Ctrl-Alt-Del sends SIGINT to PID 1.
    fn disable_cad(&mut self) -> Result<(), Errno>;
    /// The wall clock (CLOCK_REALTIME), seconds since 1970.
    fn realtime(&mut self) -> Result<i64, Errno>;
    /// clock_settime(CLOCK_REALTIME) to `secs` seconds since 1970.
    fn set_realtime(&mut self, secs: i64) -> Result<(), Errno>;
}

/// The image's build time, SOURCE_DATE_EPOCH as `cargo xtask image` ran (seconds since
/// 1970, one line): the earliest time this image can have booted.
pub const BUILD_EPOCH_PATH: &str = "/etc/keel/build-epoch";

/// The calendar date of `days` since 1970-01-01: (year, month 1-12, day 1-31), in the
/// proleptic Gregorian calendar (Howard Hinnant's days-to-civil algorithm). xtask's kernel
/// build stamp uses it too.
pub fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `secs` since 1970 as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(secs: i64) -> String {
    let (year, month, day) = civil(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The clock floor: when the wall clock reads earlier than the image's build time (a guest
/// with no RTC, or an RTC that was never set), sets it to the build time and says so. A
/// missing or unreadable build-epoch file only costs a debug line: the image is older than
/// the file, or was not built by `cargo xtask image`.
fn clock_floor<S: Sys>(sys: &mut S) {
    let text = match sys.read_file(BUILD_EPOCH_PATH) {
        Ok(t) => t,
        Err(e) => {
            sys.log(
                Level::Debug,
                &format!("no clock floor: cannot read {BUILD_EPOCH_PATH}: {e}"),
            );
            return;
        }
    };
    let Ok(epoch) = text.trim().parse::<i64>() else {
        sys.log(
            Level::Info,
            &format!(
                "no clock floor: {BUILD_EPOCH_PATH} holds {:?}, not a number of seconds; \
                 rebuild the image with cargo xtask image",
                text.trim()
            ),
        );
        return;
    };
    let now = match sys.realtime() {
        Ok(n) => n,
        Err(e) => {
            sys.log(Level::Info, &format!("cannot read the wall clock: {e}"));
            return;
        }
    };
    if now >= epoch {
        sys.log(Level::Debug, &format!("clock reads {}", utc(now)));
        return;
    }
    match sys.set_realtime(epoch) {
        Ok(()) => sys.log(
            Level::Info,
            &format!(
                "clock read {}, set to the image's build time {} ({BUILD_EPOCH_PATH}); \
                 the guest has no working real-time clock, docs/deploy.md says where its \
                 time comes from",
                utc(now),
                utc(epoch)
            ),
        ),
        Err(e) => sys.log(
            Level::Info,
            &format!(
                "clock reads {}, earlier than the image's build time {}, and cannot be set: \
                 {e}; keys and logs made now carry the wrong date",
                utc(now),
                utc(epoch)
            ),
        ),
    }
}

/// What the boot leaves for the main loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booted {
    pub consoles: Consoles,
    /// The appliance config, when it could be read and parsed.
    pub config: Option<ApplianceConfig>,
    /// The first fatal error, if any: the main loop starts the emergency shell.
    pub fatal: Option<String>,
    /// What kind of failure `fatal` is (`Cause::Boot` wins over the others, as it cannot
    /// be redone after the emergency shell).
    pub cause: Cause,
    /// `keel.emergency_timeout=SECONDS` from the kernel command line.
    pub emergency: EmergencyOpts,
    /// `keel.debug` was on the kernel command line.
    pub debug: bool,
    /// `keel.test_panic` was on the kernel command line (see `TEST_PANIC`).
    pub test_panic: bool,
}

/// Kernel command-line words that ask for the emergency shell instead of a normal boot
/// (netcfg::cmdline reads them: `rescue` and `single` are rescue mode, which keel serves
/// with the same emergency shell).
pub const EMERGENCY_WORDS: [&str; 4] = ["emergency", "rescue", "single", "keel.emergency"];

/// A test hook: with this word on the kernel command line, the main loop panics once
/// after the console shell started, so VM tests can check that a panic in PID 1 ends in
/// the emergency shell and not in a kernel panic.
pub const TEST_PANIC: &str = netcfg::cmdline::KEEL_TEST_PANIC;

/// Runs the boot sequence. Never fails: a fatal problem is reported in `Booted::fatal`.
pub fn boot<S: Sys>(sys: &mut S) -> Booted {
    let mut fatal: Option<String> = None;
    let mut cause = Cause::Boot;
    let mut fail = |fatal: &mut Option<String>, what: String, why: Cause| {
        if fatal.is_none() {
            *fatal = Some(what);
            cause = why;
        } else if why == Cause::Boot {
            cause = Cause::Boot;
        }
    };

    if let Err(e) = sys.block_signals() {
        // keel can still run; signals may then kill it or be lost, so say so loudly.
        sys.log(
            Level::Info,
            &format!("cannot block signals: {e}; power requests may be lost"),
        );
    }
    sys.log(Level::Info, &format!("keel {VERSION} starting as PID 1"));

    if let Some(what) = mount_all(sys) {
        fail(&mut fatal, what, Cause::Boot);
    }

    // One reading of the command line, by the parser every applet uses (netcfg's).
    let cmdline = sys.read_file("/proc/cmdline").unwrap_or_default();
    let (cmd, warnings) = netcfg::cmdline::parse(&cmdline);
    let debug = cmd.debug;
    let test_panic = cmd.test_panic;
    if debug {
        sys.set_verbose(true);
    }
    for w in &warnings {
        sys.log(Level::Info, &format!("kernel command line: {w}"));
    }
    if cmd.mode != netcfg::cmdline::BootMode::Normal {
        let word = cmd
            .params
            .iter()
            .map(|p| p.to_string())
            .find(|w| EMERGENCY_WORDS.iter().any(|e| w.starts_with(e)))
            .unwrap_or_else(|| "emergency".to_string());
        fail(
            &mut fatal,
            format!("emergency shell requested on the kernel command line ({word})"),
            Cause::Requested,
        );
    }
    let emergency = EmergencyOpts {
        timeout_secs: cmd.emergency_timeout,
    };
    // The kernel rate-limits writers of /dev/kmsg (10 records per 5 s) unless
    // printk.devkmsg says otherwise, so dmesg lost two thirds of keel's boot log. A choice
    // made on the command line stands (the kernel then refuses the write anyway).
    if !cmd.params.iter().any(|p| p.key == "printk.devkmsg") {
        if let Err(e) = sys.write_file(DEVKMSG_SYSCTL, "on\n") {
            sys.log(
                Level::Debug,
                &format!("cannot set {DEVKMSG_SYSCTL} to on: {e}; dmesg may miss lines"),
            );
        }
    }

    let mut consoles = read_consoles(sys);
    adopt_consoles(sys, &consoles, "consoles");
    clock_floor(sys);

    let config = match load_appliance(sys) {
        Ok(c) => Some(c),
        Err(what) => {
            fail(&mut fatal, what, Cause::Config);
            None
        }
    };

    if let Some(cfg) = &config {
        if let Some(what) = load_modules(sys, cfg) {
            fail(&mut fatal, what, Cause::Boot);
        }
        // A console whose driver is a module (virtio_console's hvc0 on a modular kernel)
        // becomes active only now.
        let now = read_consoles(sys);
        if now != consoles {
            adopt_consoles(sys, &now, "consoles after loading modules");
            consoles = now;
        }
        size_tmpfs(sys, &cfg.system);
        let name = &cfg.system.hostname;
        match sys.set_hostname(name) {
            Ok(()) => sys.log(Level::Info, &format!("hostname {name}")),
            Err(e) => sys.log(
                Level::Info,
                &format!(
                    "cannot set hostname {name:?} ([system].hostname in {}): {e}",
                    appliance::DEFAULT_PATH
                ),
            ),
        }
    }

    match sys.loopback_up() {
        Ok(()) => sys.log(Level::Debug, "lo is up"),
        Err(e) => sys.log(Level::Info, &format!("cannot bring up lo: {e}")),
    }
    if let Err(e) = sys.disable_cad() {
        sys.log(
            Level::Info,
            &format!("cannot disable ctrl-alt-del reboot: {e}; it will reboot at once"),
        );
    }
    for (dir, mode) in STATE_DIRS {
        if let Err(e) = sys.mkdir(dir, mode) {
            sys.log(Level::Info, &format!("cannot create {dir}: {e}"));
        }
    }
    // keelctl's socket, the notify sockets and sshd's privsep directory live in /run: a
    // /run that cannot take a file is a boot failure with its cause, not a missing socket
    // found later.
    if let Some(what) = probe_run(sys, config.as_ref()) {
        fail(&mut fatal, what, Cause::Boot);
    }

    let cause = if fatal.is_some() { cause } else { Cause::Boot };
    Booted {
        consoles,
        config,
        fatal,
        cause,
        emergency,
        debug,
        test_panic,
    }
}

/// Where keel writes its version at boot, to prove /run takes a file.
pub const RUN_PROBE: &str = "/run/keel/version";

/// Remounts each tmpfs whose size the config sets to other than the default.
fn size_tmpfs<S: Sys>(sys: &mut S, system: &appliance::System) {
    for (target, field) in mountplan::SIZED {
        let (size, default) = match field {
            "run_size" => (system.run_size, appliance::defaults::RUN_SIZE),
            "tmp_size" => (system.tmp_size, appliance::defaults::TMP_SIZE),
            _ => (system.shm_size, appliance::defaults::SHM_SIZE),
        };
        if size == default {
            continue;
        }
        let flags = mountplan::NOSUID | mountplan::NODEV;
        match sys.remount_tmpfs(target, flags, &format!("size={size}")) {
            Ok(()) => sys.log(Level::Info, &format!("{target}: tmpfs of at most {size}")),
            Err(e) => sys.log(
                Level::Info,
                &format!(
                    "cannot resize {target} to {size} ([system] {field} in {}): {e}; it stays at {default}",
                    appliance::DEFAULT_PATH
                ),
            ),
        }
    }
}

/// Makes /run/keel and writes keel's version there; the failure, in words, if /run is
/// full or not writable.
fn probe_run<S: Sys>(sys: &mut S, cfg: Option<&ApplianceConfig>) -> Option<String> {
    let made = sys.mkdir("/run/keel", 0o711);
    let wrote = made.and_then(|()| sys.create_file(RUN_PROBE, &format!("keel {VERSION}\n")));
    let e = wrote.err()?;
    let size = cfg.map_or(appliance::defaults::RUN_SIZE, |c| c.system.run_size);
    let hint = if e == Errno::ENOSPC {
        format!(
            "/run is full (its tmpfs is at most {size}); raise [system] run_size in {} or find what fills it",
            appliance::DEFAULT_PATH
        )
    } else {
        "keelctl and the services' notify sockets need a writable /run".to_string()
    };
    Some(format!("cannot write {RUN_PROBE}: {e}; {hint}"))
}

/// Turns the kernel's rate limit of /dev/kmsg writers off (`printk.devkmsg=on`).
pub const DEVKMSG_SYSCTL: &str = "/proc/sys/kernel/printk_devkmsg";

/// The active consoles from sysfs; `/dev/console` when they cannot be read.
fn read_consoles<S: Sys>(sys: &mut S) -> Consoles {
    match sys.read_file(consoles::ACTIVE_PATH) {
        Ok(text) => consoles::parse_active(&text),
        Err(e) => {
            sys.log(
                Level::Info,
                &format!(
                    "cannot read {}: {e}; using /dev/console",
                    consoles::ACTIVE_PATH
                ),
            );
            consoles::parse_active("")
        }
    }
}

/// Reads and checks /etc/keel/appliance.toml, at boot and when keel goes on after an
/// emergency shell: each diagnostic is logged (file:line:col), and Err is the line the
/// emergency summary shows.
pub fn load_appliance<S: Sys>(sys: &mut S) -> Result<appliance::ApplianceConfig, String> {
    let path = appliance::DEFAULT_PATH;
    let text = sys
        .read_file(path)
        .map_err(|e| format!("cannot read appliance config {path}: {e}"))?;
    appliance::parse(&text, path).map_err(|diags| {
        for d in &diags {
            sys.log(Level::Info, &format!("config error: {d}"));
        }
        let first = diags
            .first()
            .map_or_else(|| "no details".to_string(), ToString::to_string);
        format!("invalid appliance config: {first}")
    })
}

/// Makes sure each console has its node, moves the log to them, and says so.
fn adopt_consoles<S: Sys>(sys: &mut S, consoles: &Consoles, what: &str) {
    for name in &consoles.all {
        ensure_tty_node(sys, name);
    }
    sys.use_consoles(&consoles.all);
    sys.log(
        Level::Info,
        &format!(
            "{what}: {} (shell on /dev/{})",
            consoles.all.join(" "),
            consoles.primary()
        ),
    );
}

/// Carries out the mount plan. Returns what failed fatally, if anything.
fn mount_all<S: Sys>(sys: &mut S) -> Option<String> {
    // Before /proc is mounted this read fails, which means nothing is mounted yet.
    let mountinfo = sys.read_file("/proc/self/mountinfo").unwrap_or_default();
    let mut fatal = None;
    for step in mountplan::plan(&mountinfo) {
        if let Some(what) = run_step(sys, &step) {
            fatal.get_or_insert(what);
        }
    }
    fatal
}

fn run_step<S: Sys>(sys: &mut S, step: &Step) -> Option<String> {
    match *step {
        Step::Mkdir { path, mode } => {
            if let Err(e) = sys.mkdir(path, mode) {
                sys.log(Level::Info, &format!("cannot create {path}: {e}"));
            }
            None
        }
        Step::Mknod(node) => {
            if let Err(e) = sys.mknod(node.path, node.major, node.minor, node.mode) {
                sys.log(
                    Level::Info,
                    &format!("cannot create device node {}: {e}", node.path),
                );
            }
            None
        }
        Step::Symlink { target, link } => {
            if !sys.exists(link)
                && let Err(e) = sys.symlink(target, link)
            {
                sys.log(Level::Info, &format!("cannot link {link} to {target}: {e}"));
            }
            None
        }
        Step::Mount { mount, on_fail } => {
            // The directory under the mount is what shows if the mount fails: make it as
            // open as the filesystem would have been.
            let mode = if mount.data.contains("mode=1777") {
                0o1777
            } else {
                0o755
            };
            if let Err(e) = sys.mkdir(mount.target, mode) {
                sys.log(
                    Level::Debug,
                    &format!("cannot create mount point {}: {e}", mount.target),
                );
            }
            let e = match sys.mount(&mount) {
                Ok(()) => {
                    sys.log(
                        Level::Debug,
                        &format!("mounted {} on {}", mount.fstype, mount.target),
                    );
                    return None;
                }
                Err(e) => e,
            };
            let what = format!("cannot mount {} on {}: {e}", mount.fstype, mount.target);
            match on_fail {
                OnFail::Warn => {
                    sys.log(Level::Info, &what);
                    None
                }
                OnFail::Fatal => Some(what),
                OnFail::DevFallback => {
                    sys.log(
                        Level::Info,
                        &format!("{what}; using a tmpfs with basic device nodes"),
                    );
                    let mut fatal = None;
                    for s in mountplan::dev_fallback() {
                        if let Some(w) = run_step(sys, &s) {
                            fatal.get_or_insert(w);
                        }
                    }
                    fatal
                }
            }
        }
    }
}

/// Makes `/dev/<name>` from `/sys/class/tty/<name>/dev` when /dev lacks it (the tmpfs
/// fallback has no serial or hvc nodes).
fn ensure_tty_node<S: Sys>(sys: &mut S, name: &str) {
    let path = format!("/dev/{name}");
    if sys.exists(&path) {
        return;
    }
    let numbers = sys
        .read_file(&format!("/sys/class/tty/{name}/dev"))
        .ok()
        .and_then(|t| consoles::parse_dev_numbers(&t));
    let Some((major, minor)) = numbers else {
        sys.log(
            Level::Info,
            &format!("console {path} is missing and sysfs does not say its device number"),
        );
        return;
    };
    if let Err(e) = sys.mknod(&path, major, minor, 0o600) {
        sys.log(
            Level::Info,
            &format!("cannot create console node {path}: {e}"),
        );
    }
}

/// Loads the modules the config names, when the kernel is modular. Returns the fatal
/// problem, if a required module could not be loaded.
pub(crate) fn load_modules<S: Sys>(sys: &mut S, cfg: &ApplianceConfig) -> Option<String> {
    let origin = format!("[modules] in {}", appliance::DEFAULT_PATH);
    load_named(sys, &cfg.modules.load, &cfg.modules.required, &origin)
}

/// Loads `wanted` and `required` (with what modules.dep and the soft dependencies say
/// they need, skipping what /proc/modules lists) when the kernel is modular: at boot for
/// `[modules]`, and later for whoever asks (the `state` applet loads ext4 only when
/// `keel.state=` names a disk). `origin` says in the logs who asked. Returns the fatal
/// problem, if a required module could not be loaded.
pub(crate) fn load_named<S: Sys>(
    sys: &mut S,
    load: &[String],
    required: &[String],
    origin: &str,
) -> Option<String> {
    let mut wanted: Vec<String> = load.to_vec();
    for r in required {
        if !wanted.iter().any(|w| normalize(w) == normalize(r)) {
            wanted.push(r.clone());
        }
    }
    if wanted.is_empty() {
        return None;
    }
    let release = match sys.kernel_release() {
        Ok(r) => r,
        Err(e) => return Some(format!("cannot read the kernel release (uname): {e}")),
    };
    let dir = format!("/lib/modules/{release}");
    let dep_path = format!("{dir}/modules.dep");
    let dep = match sys.read_file(&dep_path) {
        Ok(text) => text,
        Err(_) => {
            sys.log(
                Level::Info,
                &format!(
                    "no {dep_path}: kernel {release} is not modular here, skipping module loading"
                ),
            );
            return None;
        }
    };
    let mut optional_file =
        |name: &str| sys.read_file(&format!("{dir}/{name}")).unwrap_or_default();
    let softdep = optional_file("modules.softdep");
    let alias = optional_file("modules.alias");
    let builtin = optional_file("modules.builtin");
    let db = ModDb::parse(&dep, &softdep, &alias, &builtin);
    let plan = db.plan(&wanted);

    let loaded: Vec<String> = sys
        .read_file("/proc/modules")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(normalize)
        .collect();

    let mut failed: Vec<String> = Vec::new();
    let mut count = 0usize;
    for m in &plan.load {
        if loaded.contains(&m.name) {
            continue;
        }
        let path = format!("{dir}/{}", m.path);
        match sys.load_module(&path) {
            Ok(()) | Err(Errno::EEXIST) => {
                count += 1;
                sys.log(Level::Debug, &format!("loaded module {}", m.name));
            }
            // An optional soft dependency that finds no hardware (crc32c_intel on a CPU
            // without SSE4.2 says ENODEV) is expected: that is only worth a debug line.
            Err(Errno::ENODEV) if m.optional => sys.log(
                Level::Debug,
                &format!(
                    "optional module {} has no device here (ENODEV), skipped",
                    m.name
                ),
            ),
            Err(e) => {
                let note = if m.optional {
                    " (optional soft dependency)"
                } else {
                    ""
                };
                sys.log(
                    Level::Info,
                    &format!("cannot load module {} from {path}: {e}{note}", m.name),
                );
                if !m.optional {
                    failed.push(m.name.clone());
                }
            }
        }
    }
    for name in &plan.missing {
        sys.log(
            Level::Info,
            &format!(
                "module {name} ({origin}) is not in {dep_path}, not built in, and no alias names it"
            ),
        );
    }
    if !plan.builtin.is_empty() {
        sys.log(
            Level::Debug,
            &format!("built into the kernel: {}", plan.builtin.join(" ")),
        );
    }
    sys.log(
        Level::Info,
        &format!("loaded {count} kernel modules ({origin})"),
    );

    for r in required {
        if plan.missing.iter().any(|m| normalize(m) == normalize(r)) {
            return Some(format!(
                "required module {r} not found for kernel {release}"
            ));
        }
        let needs = db.plan(std::slice::from_ref(r));
        if let Some(bad) = needs.load.iter().find(|m| failed.contains(&m.name)) {
            return Some(format!(
                "required module {r} did not load (module {} failed)",
                bad.name
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// A recording fake: files are a map, every call is a line in `calls`.
    #[derive(Default)]
    struct Fake {
        files: BTreeMap<String, String>,
        paths: BTreeSet<String>,
        fail_mounts: BTreeMap<&'static str, Errno>,
        fail_modules: BTreeMap<String, Errno>,
        fail_writes: BTreeMap<String, Errno>,
        /// What /sys/class/tty/console/active says once a module has loaded.
        active_after_modules: Option<String>,
        calls: Vec<String>,
        /// The wall clock, seconds since 1970.
        clock: i64,
    }

    impl Fake {
        fn new() -> Fake {
            let mut f = Fake::default();
            f.file(consoles::ACTIVE_PATH, "ttyS0\n");
            f.file("/proc/cmdline", "console=ttyS0 panic=-1\n");
            f.file(appliance::DEFAULT_PATH, "[system]\nhostname = \"box\"\n");
            f.paths.insert("/dev/ttyS0".into());
            f
        }

        fn file(&mut self, path: &str, text: &str) {
            self.files.insert(path.to_string(), text.to_string());
        }

        fn modular(&mut self, dep: &str, required: &[&str], load: &[&str]) {
            self.file("/lib/modules/6.1.0-test/modules.dep", dep);
            let quote = |v: &[&str]| {
                v.iter()
                    .map(|m| format!("\"{m}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            self.file(
                appliance::DEFAULT_PATH,
                &format!(
                    "[modules]\nload = [{}]\nrequired = [{}]\n",
                    quote(load),
                    quote(required)
                ),
            );
        }

        fn index(&self, prefix: &str) -> usize {
            self.calls
                .iter()
                .position(|c| c.starts_with(prefix))
                .unwrap_or_else(|| panic!("no call {prefix:?} in {:#?}", self.calls))
        }

        fn logs(&self) -> Vec<&str> {
            self.calls
                .iter()
                .filter_map(|c| c.strip_prefix("log "))
                .collect()
        }
    }

    impl Sys for Fake {
        fn block_signals(&mut self) -> Result<(), Errno> {
            self.calls.push("block_signals".into());
            Ok(())
        }
        fn log(&mut self, level: Level, msg: &str) {
            self.calls.push(format!(
                "log {}{msg}",
                if level == Level::Debug {
                    "(debug) "
                } else {
                    ""
                }
            ));
        }
        fn set_verbose(&mut self, on: bool) {
            self.calls.push(format!("set_verbose {on}"));
        }
        fn use_consoles(&mut self, names: &[String]) {
            self.calls.push(format!("use_consoles {}", names.join(" ")));
        }
        fn read_file(&mut self, path: &str) -> Result<String, Errno> {
            self.files.get(path).cloned().ok_or(Errno::ENOENT)
        }
        fn write_file(&mut self, path: &str, text: &str) -> Result<(), Errno> {
            self.calls
                .push(format!("write_file {path} {}", text.trim_end()));
            Ok(())
        }
        fn create_file(&mut self, path: &str, text: &str) -> Result<(), Errno> {
            self.calls
                .push(format!("create_file {path} {}", text.trim_end()));
            match self.fail_writes.get(path) {
                Some(e) => Err(*e),
                None => Ok(()),
            }
        }
        fn exists(&mut self, path: &str) -> bool {
            self.paths.contains(path) || self.files.contains_key(path)
        }
        fn mkdir(&mut self, path: &str, mode: u32) -> Result<(), Errno> {
            self.calls.push(format!("mkdir {path} {mode:o}"));
            Ok(())
        }
        fn remount_tmpfs(
            &mut self,
            target: &str,
            _flags: mountplan::Flags,
            data: &str,
        ) -> Result<(), Errno> {
            self.calls.push(format!("remount {target} {data}"));
            Ok(())
        }
        fn mount(&mut self, m: &Mount) -> Result<(), Errno> {
            self.calls.push(format!("mount {} {}", m.fstype, m.target));
            match self.fail_mounts.get(m.fstype) {
                Some(e) => Err(*e),
                None => Ok(()),
            }
        }
        fn mknod(&mut self, path: &str, major: u64, minor: u64, mode: u32) -> Result<(), Errno> {
            self.calls
                .push(format!("mknod {path} {major}:{minor} {mode:o}"));
            self.paths.insert(path.to_string());
            Ok(())
        }
        fn symlink(&mut self, target: &str, link: &str) -> Result<(), Errno> {
            self.calls.push(format!("symlink {link} -> {target}"));
            Ok(())
        }
        fn kernel_release(&mut self) -> Result<String, Errno> {
            Ok("6.1.0-test".into())
        }
        fn load_module(&mut self, path: &str) -> Result<(), Errno> {
            self.calls.push(format!("load_module {path}"));
            if let Some(active) = self.active_after_modules.take() {
                self.file(consoles::ACTIVE_PATH, &active);
            }
            let name = crate::modules::name_of_path(path);
            match self.fail_modules.get(&name) {
                Some(e) => Err(*e),
                None => Ok(()),
            }
        }
        fn set_hostname(&mut self, name: &str) -> Result<(), Errno> {
            self.calls.push(format!("set_hostname {name}"));
            Ok(())
        }
        fn loopback_up(&mut self) -> Result<(), Errno> {
            self.calls.push("loopback_up".into());
            Ok(())
        }
        fn realtime(&mut self) -> Result<i64, Errno> {
            self.calls.push("realtime".into());
            Ok(self.clock)
        }
        fn set_realtime(&mut self, secs: i64) -> Result<(), Errno> {
            self.calls.push(format!("set_realtime {secs}"));
            self.clock = secs;
            Ok(())
        }
        fn disable_cad(&mut self) -> Result<(), Errno> {
            self.calls.push("disable_cad".into());
            Ok(())
        }
    }

    #[test]
    fn utc_formats_the_calendar() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(7), "1970-01-01 00:00:07 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_400_000), "2026-12-04 16:00:00 UTC");
        assert_eq!(utc(4_107_542_399), "2100-02-28 23:59:59 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn a_clock_before_the_build_time_is_set_to_it() {
        let mut f = Fake::new();
        f.file(BUILD_EPOCH_PATH, "1796400000\n");
        f.clock = 7;
        let b = boot(&mut f);
        assert_eq!(b.fatal, None);
        assert_eq!(f.clock, 1_796_400_000);
        assert!(f.index("set_realtime 1796400000") > f.index("use_consoles"));
        assert!(
            f.logs().iter().any(|l| l.starts_with(
                "clock read 1970-01-01 00:00:07 UTC, set to the image's build time \
                 2026-12-04 16:00:00 UTC"
            )),
            "{:#?}",
            f.calls
        );
    }

    #[test]
    fn a_clock_after_the_build_time_is_left_alone() {
        for (epoch, why) in [
            (Some("1796400000\n"), "later clock"),
            (Some("soon\n"), "bad file"),
            (None, "no file"),
        ] {
            let mut f = Fake::new();
            if let Some(e) = epoch {
                f.file(BUILD_EPOCH_PATH, e);
            }
            f.clock = if why == "later clock" {
                1_796_400_001
            } else {
                7
            };
            let before = f.clock;
            assert_eq!(boot(&mut f).fatal, None, "{why}");
            assert_eq!(f.clock, before, "{why}");
            assert!(
                !f.calls.iter().any(|c| c.starts_with("set_realtime")),
                "{why}"
            );
        }
    }

    #[test]
    fn good_boot_runs_every_step_in_order() {
        let mut f = Fake::new();
        let b = boot(&mut f);
        assert_eq!(b.fatal, None);
        assert_eq!(b.consoles.primary(), "ttyS0");
        assert_eq!(
            b.config.as_ref().map(|c| c.system.hostname.as_str()),
            Some("box")
        );
        assert_eq!(f.calls[0], "block_signals", "signals must be blocked first");
        assert_eq!(f.calls[1], format!("log keel {VERSION} starting as PID 1"));
        let order = [
            "mount proc /proc",
            "mount sysfs /sys",
            "mount devtmpfs /dev",
            "mount devpts /dev/pts",
            "mount tmpfs /dev/shm",
            "mount tmpfs /run",
            "mount tmpfs /tmp",
            "write_file /proc/sys/kernel/printk_devkmsg on",
            "use_consoles ttyS0",
            "set_hostname box",
            "loopback_up",
            "disable_cad",
            "mkdir /run/sshd 755",
            "mkdir /var/lib/keel 755",
            "mkdir /run/keel 711",
            "create_file /run/keel/version keel",
        ];
        let idx: Vec<usize> = order.iter().map(|c| f.index(c)).collect();
        assert!(
            idx.windows(2).all(|w| w[0] < w[1]),
            "out of order: {:#?}",
            f.calls
        );
        assert!(
            !f.calls.iter().any(|c| c.starts_with("mknod")),
            "no fallback nodes on devtmpfs"
        );
        assert!(
            !f.calls.iter().any(|c| c.starts_with("load_module")),
            "no modules asked for"
        );
    }

    #[test]
    fn the_config_sizes_the_tmpfs_mounts() {
        let mut f = Fake::new();
        f.file(
            appliance::DEFAULT_PATH,
            "[system]\nrun_size = \"16M\"\nshm_size = \"25%\"\n",
        );
        let b = boot(&mut f);
        assert_eq!(b.fatal, None);
        let remounts: Vec<&String> = f
            .calls
            .iter()
            .filter(|c| c.starts_with("remount"))
            .collect();
        assert_eq!(
            remounts,
            ["remount /run size=16M"],
            "only what differs from the default"
        );
        assert!(f.index("mount tmpfs /run") < f.index("remount /run"));
        assert!(
            f.logs().contains(&"/run: tmpfs of at most 16M"),
            "{:#?}",
            f.calls
        );
    }

    #[test]
    fn a_full_run_is_a_boot_failure_that_says_so() {
        let mut f = Fake::new();
        f.fail_writes.insert(RUN_PROBE.into(), Errno::ENOSPC);
        let b = boot(&mut f);
        let fatal = b.fatal.unwrap_or_default();
        assert!(
            fatal.starts_with("cannot write /run/keel/version: ENOSPC")
                && fatal.contains("/run is full (its tmpfs is at most 10%); raise [system] run_size in /etc/keel/appliance.toml"),
            "{fatal}"
        );
        assert_eq!(b.cause, Cause::Boot);
    }

    #[test]
    fn non_modular_kernel_skips_module_loading() {
        let mut f = Fake::new();
        f.file(
            appliance::DEFAULT_PATH,
            "[modules]\nload = [\"virtio_net\"]\nrequired = [\"virtio_net\"]\n",
        );
        let b = boot(&mut f);
        assert_eq!(b.fatal, None, "a built-in kernel has what it needs");
        assert!(!f.calls.iter().any(|c| c.starts_with("load_module")));
        assert!(
            f.logs().contains(&"no /lib/modules/6.1.0-test/modules.dep: kernel 6.1.0-test is not modular here, skipping module loading"),
            "{:#?}",
            f.calls
        );
    }

    #[test]
    fn already_mounted_dev_is_left_alone() {
        let mut f = Fake::new();
        f.file(
            "/proc/self/mountinfo",
            "22 1 0:5 / /dev rw - devtmpfs devtmpfs rw\n",
        );
        boot(&mut f);
        assert!(
            !f.calls.iter().any(|c| c == "mount devtmpfs /dev"),
            "{:#?}",
            f.calls
        );
        f.index("mount devpts /dev/pts");
    }

    #[test]
    fn devtmpfs_failure_falls_back_to_tmpfs_and_nodes() {
        let mut f = Fake::new();
        f.paths.remove("/dev/ttyS0");
        f.file("/sys/class/tty/ttyS0/dev", "4:64\n");
        f.fail_mounts.insert("devtmpfs", Errno::ENODEV);
        let b = boot(&mut f);
        assert_eq!(b.fatal, None);
        let dev = f.index("mount devtmpfs /dev");
        let tmpfs = f.index("mount tmpfs /dev");
        let null = f.index("mknod /dev/null 1:3 666");
        let pts = f.index("mount devpts /dev/pts");
        assert!(dev < tmpfs && tmpfs < null && null < pts, "{:#?}", f.calls);
        f.index("mknod /dev/console 5:1 600");
        f.index("mknod /dev/ptmx 5:2 666");
        // The serial console's node comes from sysfs, before the log moves to it.
        assert!(f.index("mknod /dev/ttyS0 4:64 600") < f.index("use_consoles ttyS0"));
        assert!(
            f.logs()
                .iter()
                .any(|l| l.contains("cannot mount devtmpfs on /dev: ENODEV"))
        );
    }

    #[test]
    fn proc_failing_is_fatal_but_the_boot_goes_on() {
        let mut f = Fake::new();
        f.fail_mounts.insert("proc", Errno::EPERM);
        let b = boot(&mut f);
        assert_eq!(
            b.fatal.as_deref(),
            Some("cannot mount proc on /proc: EPERM: Operation not permitted")
        );
        f.index("loopback_up");
    }

    #[test]
    fn bad_config_is_an_emergency_naming_file_line_and_field() {
        let mut f = Fake::new();
        f.file(appliance::DEFAULT_PATH, "[system]\nhostnme = \"x\"\n");
        let b = boot(&mut f);
        let fatal = b.fatal.unwrap_or_default();
        assert!(
            fatal.starts_with("invalid appliance config: /etc/keel/appliance.toml:2:1: "),
            "{fatal}"
        );
        assert!(fatal.contains("hostnme"), "{fatal}");
        assert!(b.config.is_none());
        assert!(!f.calls.iter().any(|c| c.starts_with("set_hostname")));
        // What does not need the config still happens, for the emergency shell's sake.
        f.index("loopback_up");
        f.index("disable_cad");
    }

    #[test]
    fn missing_config_is_an_emergency() {
        let mut f = Fake::new();
        f.files.remove(appliance::DEFAULT_PATH);
        let b = boot(&mut f);
        assert_eq!(
            b.fatal.as_deref(),
            Some(
                "cannot read appliance config /etc/keel/appliance.toml: ENOENT: No such file or directory"
            )
        );
    }

    const DEP: &str = "\
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/input/evdev.ko:
";

    #[test]
    fn a_devkmsg_choice_on_the_command_line_is_left_alone() {
        let mut f = Fake::new();
        f.file("/proc/cmdline", "console=ttyS0 printk.devkmsg=ratelimit\n");
        boot(&mut f);
        assert!(
            !f.calls.iter().any(|c| c.contains("printk_devkmsg")),
            "{:#?}",
            f.calls
        );
    }

    #[test]
    fn a_console_that_a_module_brings_is_adopted_after_loading() {
        let mut f = Fake::new();
        f.modular(
            "kernel/drivers/char/virtio_console.ko:\n",
            &[],
            &["virtio_console"],
        );
        f.paths.insert("/dev/hvc0".into());
        f.active_after_modules = Some("ttyS0 hvc0\n".into());
        let b = boot(&mut f);
        assert_eq!(b.fatal, None);
        assert_eq!(b.consoles.all, ["ttyS0", "hvc0"]);
        assert_eq!(b.consoles.primary(), "hvc0");
        assert!(
            f.index("load_module") < f.index("use_consoles ttyS0 hvc0"),
            "{:#?}",
            f.calls
        );
        assert!(
            f.logs()
                .contains(&"consoles after loading modules: ttyS0 hvc0 (shell on /dev/hvc0)"),
            "{:#?}",
            f.calls
        );
        // Without a change, nothing is said twice.
        let mut g = Fake::new();
        boot(&mut g);
        assert_eq!(
            g.calls
                .iter()
                .filter(|c| c.starts_with("use_consoles"))
                .count(),
            1
        );
    }

    #[test]
    fn modules_load_dependencies_first_and_skip_loaded_ones() {
        let mut f = Fake::new();
        f.modular(DEP, &[], &["virtio-net", "evdev"]);
        f.file("/proc/modules", "evdev 28672 0 - Live 0x0000000000000000\n");
        f.fail_modules.insert("net_failover".into(), Errno::EEXIST);
        let b = boot(&mut f);
        assert_eq!(b.fatal, None);
        let loads: Vec<&String> = f
            .calls
            .iter()
            .filter(|c| c.starts_with("load_module"))
            .collect();
        assert_eq!(
            loads,
            [
                "load_module /lib/modules/6.1.0-test/kernel/net/core/failover.ko",
                "load_module /lib/modules/6.1.0-test/kernel/drivers/net/net_failover.ko",
                "load_module /lib/modules/6.1.0-test/kernel/drivers/net/virtio_net.ko",
            ]
        );
        assert!(
            f.logs()
                .contains(&"loaded 3 kernel modules ([modules] in /etc/keel/appliance.toml)"),
            "{:#?}",
            f.calls
        );
    }

    #[test]
    fn optional_missing_module_is_a_warning_only() {
        let mut f = Fake::new();
        f.modular(DEP, &[], &["virtio_net", "nosuchmod"]);
        let b = boot(&mut f);
        assert_eq!(b.fatal, None);
        assert!(f.logs().iter().any(|l| {
            l.starts_with("module nosuchmod ([modules] in /etc/keel/appliance.toml) is not in")
        }));
        f.index("set_hostname keel");
    }

    #[test]
    fn required_missing_module_is_an_emergency() {
        let mut f = Fake::new();
        f.modular(DEP, &["nosuchmod"], &["virtio_net"]);
        let b = boot(&mut f);
        assert_eq!(
            b.fatal.as_deref(),
            Some("required module nosuchmod not found for kernel 6.1.0-test")
        );
        // The other modules were still loaded.
        f.index("load_module /lib/modules/6.1.0-test/kernel/drivers/net/virtio_net.ko");
    }

    #[test]
    fn required_module_whose_dependency_fails_is_an_emergency() {
        let mut f = Fake::new();
        f.modular(DEP, &["virtio_net"], &[]);
        f.fail_modules.insert("failover".into(), Errno::ENOEXEC);
        let b = boot(&mut f);
        assert_eq!(
            b.fatal.as_deref(),
            Some("required module virtio_net did not load (module failover failed)")
        );
    }

    #[test]
    fn optional_module_that_fails_to_load_is_not_fatal() {
        let mut f = Fake::new();
        f.modular(DEP, &[], &["evdev"]);
        f.fail_modules.insert("evdev".into(), Errno::ENOEXEC);
        let b = boot(&mut f);
        assert_eq!(b.fatal, None);
        assert!(
            f.logs()
                .iter()
                .any(|l| l.starts_with("cannot load module evdev"))
        );
    }

    #[test]
    fn optional_soft_dependency_without_hardware_is_a_debug_line() {
        let dep = "\
kernel/lib/libcrc32c.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
kernel/crypto/crc32c_generic.ko:
";
        let mut f = Fake::new();
        f.modular(dep, &["libcrc32c"], &[]);
        f.file(
            "/lib/modules/6.1.0-test/modules.softdep",
            "softdep libcrc32c pre: crc32c\n",
        );
        f.file(
            "/lib/modules/6.1.0-test/modules.alias",
            "alias crc32c crc32c_intel\nalias crc32c crc32c_generic\n",
        );
        f.fail_modules.insert("crc32c_intel".into(), Errno::ENODEV);
        let b = boot(&mut f);
        assert_eq!(b.fatal, None, "{:#?}", f.calls);
        f.index("load_module /lib/modules/6.1.0-test/kernel/crypto/crc32c_generic.ko");
        f.index("load_module /lib/modules/6.1.0-test/kernel/lib/libcrc32c.ko");
        assert!(
            f.logs().contains(
                &"(debug) optional module crc32c_intel has no device here (ENODEV), skipped"
            ),
            "{:#?}",
            f.calls
        );
        assert!(!f.logs().iter().any(|l| l.starts_with("cannot load")));
    }

    #[test]
    fn consoles_fall_back_to_dev_console() {
        let mut f = Fake::new();
        f.files.remove(consoles::ACTIVE_PATH);
        let b = boot(&mut f);
        assert_eq!(b.consoles.primary_path(), "/dev/console");
        f.index("use_consoles console");
    }

    #[test]
    fn emergency_on_the_command_line() {
        for word in EMERGENCY_WORDS {
            let mut f = Fake::new();
            f.file("/proc/cmdline", &format!("console=ttyS0 {word}\n"));
            let b = boot(&mut f);
            assert_eq!(
                b.fatal,
                Some(format!(
                    "emergency shell requested on the kernel command line ({word})"
                ))
            );
            f.index("set_hostname box");
        }
        let mut f = Fake::new();
        f.file(
            "/proc/cmdline",
            "console=ttyS0 keel.emergency_timeout=5 rescued\n",
        );
        assert_eq!(boot(&mut f).fatal, None);
    }

    #[test]
    fn keel_debug_on_the_command_line() {
        let mut f = Fake::new();
        assert!(!boot(&mut f).debug);
        assert!(!f.calls.iter().any(|c| c.starts_with("set_verbose")));
        let mut f = Fake::new();
        f.file("/proc/cmdline", "console=ttyS0 keel.debug\n");
        assert!(boot(&mut f).debug);
        // Debug lines show on the consoles from the moment the command line is known.
        assert!(f.index("set_verbose true") < f.index("use_consoles ttyS0"));
        // The same parser as the applets: keel.debug=1 counts too, =0 does not.
        for (line, on) in [("keel.debug=1", true), ("keel.debug=0", false)] {
            let mut f = Fake::new();
            f.file("/proc/cmdline", &format!("console=ttyS0 {line}\n"));
            assert_eq!(boot(&mut f).debug, on, "{line}");
        }
        let mut f = Fake::new();
        f.file("/proc/cmdline", "console=ttyS0 keel.frobnicate\n");
        boot(&mut f);
        assert!(
            f.logs().iter().any(|l| l.starts_with("kernel command line: keel.frobnicate: unknown keel switch")),
            "{:#?}",
            f.calls
        );
    }
}

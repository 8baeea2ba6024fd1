//! The appliance config (`/etc/keel/appliance.toml`, source `configs/appliance.toml`):
//! `[system]` (hostname; `run_size`, `tmp_size`, `shm_size`: the tmpfs bounds, e.g.
//! `"16M"` or `"10%"`), `[modules]`, `[firewall]` (see [`firewall`]), `[ssh]` and one
//! `[services.NAME]` table per supervised service.
//!
//! Parsing takes the text and a display path and never reads files itself, so the same
//! code serves PID 1, `keel check` and the image build. It validates by hand over toml's
//! spanned tree instead of deriving serde, so that it reports every error at once, each
//! with its line, column and what to do. It must not panic on any input.
//!
//! # Services
//!
//! ```toml
//! [services.sshd]
//! exec = ["/usr/sbin/sshd", "-D", "-e"]    # argv; exec[0] is an absolute path
//! env = { LANG = "C" }                     # added to a minimal environment
//! user = "root"                            # name or number; group likewise
//! capabilities = ["CAP_NET_BIND_SERVICE"]  # kept; the rest dropped, with no_new_privs
//! kind = "longrun"                         # or "oneshot"
//! needs = ["network"]                      # start after these are ready, stop before them
//! after = ["clock"]                        # order only
//! ready = "tcp:2222"                       # "started" | "notify" | "tcp:PORT" | "exit"
//! restart = "always"                       # "always" | "on-failure" | "never" ("no", "yes", true, false too)
//! backoff = { initial = "200ms", factor = 2, cap = "30s", jitter = 0.1, reset_after = "60s" }
//! crash_loop = { limit = 5, within = "60s" }
//! on_give_up = "retry-slowly"              # "retry-slowly" | "reboot" | "emergency"
//! stop_signal = "TERM"
//! start_timeout = "90s"                    # not ready (oneshot: not done) by then: failed; "0": never
//! stop_timeout = "5s"                      # then SIGKILL
//! leftovers = "stop"                       # or "release": what outlives the main process
//! console = false                          # true: stdin/stdout/stderr are the console tty
//! ```
//!
//! A service whose `exec` contains [`CONSOLE_PLACEHOLDER`] (`{console}`) runs once per active
//! console: [`ApplianceConfig::expand_consoles`] turns `[services.getty]` with
//! `exec = ["/sbin/keel", "getty", "{console}"]` into `getty@ttyS0`, `getty@hvc0`, ... once
//! PID 1 knows the consoles. Such a service cannot be named in `needs`/`after` (its
//! instances only exist at boot) and cannot set `console = true`.
//!
//! Durations are strings with units (`"200ms"`, `"1.5s"`, `"1m30s"`, `"1h 5min"`) or numbers
//! of seconds. The defaults are in [`defaults`]. Other spellings accepted (systemd's and
//! dinit's restart words, compound durations) are returned as notes by [`parse_noted`].

#![forbid(unsafe_code)]

pub mod firewall;
pub mod graph;
pub mod limits;
pub mod signal;
pub mod watchdog;

pub use limits::Limits;
pub use watchdog::Watchdog;

pub use firewall::{Allow, Cidr, Firewall, Forward, PortRange, Protocol};

pub use graph::SvcId;
pub use signal::Sig;

use crate::graph::{Graph, GraphError};
use std::fmt;
use std::time::Duration;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Where the appliance config lives in the image.
pub const DEFAULT_PATH: &str = "/etc/keel/appliance.toml";

/// The defaults of every service field, in one place, with where each came from.
pub mod defaults {
    use std::time::Duration;

    /// First restart delay: dinit's 200 ms, short enough that a one-off crash is invisible.
    pub const BACKOFF_INITIAL: Duration = Duration::from_millis(200);
    /// Each consecutive failure doubles the delay (the usual exponential backoff).
    pub const BACKOFF_FACTOR_MILLI: u32 = 2000;
    /// The delay never grows beyond 30 s, so a service that recovers comes back soon.
    pub const BACKOFF_CAP: Duration = Duration::from_secs(30);
    /// Up to 10 % is added at random so services that fail together do not retry together.
    pub const BACKOFF_JITTER_MILLI: u32 = 100;
    /// A run of 60 s counts as healthy and resets the delay to `BACKOFF_INITIAL`.
    pub const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(60);
    /// Five failures within 60 s is a crash loop: keel gives up (dinit: 3 in 10 s, which
    /// trips too early on a slow appliance boot).
    pub const CRASH_LOOP_LIMIT: u32 = 5;
    pub const CRASH_LOOP_WITHIN: Duration = Duration::from_secs(60);
    /// A given-up service with `on_give_up = "retry-slowly"` is tried again after 5 min.
    pub const SLOW_RETRY: Duration = Duration::from_secs(300);
    /// SIGTERM, then SIGKILL after 5 s (systemd gives 90 s; an appliance must reboot fast).
    pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);
    /// /run holds sockets, pid files and small state: a tenth of RAM is plenty, and a
    /// runaway writer there cannot take the memory the services need (systemd: 20%).
    pub const RUN_SIZE: super::TmpfsSize = super::TmpfsSize::Percent(10);
    /// /tmp and /dev/shm: a quarter each (tmpfs alone allows half each, so together they
    /// could take all of RAM).
    pub const TMP_SIZE: super::TmpfsSize = super::TmpfsSize::Percent(25);
    pub const SHM_SIZE: super::TmpfsSize = super::TmpfsSize::Percent(25);
    /// How long a service may take to become ready (a oneshot: to finish) before it
    /// counts as failed: systemd's DefaultTimeoutStartSec, long enough for a slow disk.
    pub const START_TIMEOUT: Duration = Duration::from_secs(90);
}

/// The whole appliance config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplianceConfig {
    pub system: System,
    pub modules: Modules,
    pub firewall: Firewall,
    pub ssh: Ssh,
    pub cloud: Cloud,
    /// `[watchdog]`, when the config has one.
    pub watchdog: Option<Watchdog>,
    /// Services in the order of the file; a service's [`crate::SvcId`] is its index here.
    pub services: Vec<ServiceConfig>,
}

impl ApplianceConfig {
    /// Replaces each per-console service (one with `{console}` in its exec) by one instance
    /// per console in `consoles` (names under /dev, e.g. `ttyS0`), named `NAME@TTY`, with
    /// the placeholder replaced by the tty name. Instances take the template's place, in
    /// the order of `consoles`; other services keep their order. Call it once, before the
    /// supervisor is built: service ids are indexes into `services`.
    pub fn expand_consoles(&mut self, consoles: &[String]) {
        let services = std::mem::take(&mut self.services);
        for s in services {
            if !s.per_console() {
                self.services.push(s);
                continue;
            }
            for tty in consoles {
                let mut one = s.clone();
                one.name = format!("{}@{tty}", s.name);
                for arg in &mut one.exec {
                    *arg = arg.replace(CONSOLE_PLACEHOLDER, tty);
                }
                self.services.push(one);
            }
        }
    }
}

/// `[system]`: machine-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct System {
    /// Hostname set at boot unless the kernel command line names one.
    pub hostname: String,
    /// The bounds of the RAM filesystems: /run, /tmp and /dev/shm.
    pub run_size: TmpfsSize,
    pub tmp_size: TmpfsSize,
    pub shm_size: TmpfsSize,
}

impl Default for System {
    fn default() -> Self {
        System {
            hostname: "keel".to_string(),
            run_size: defaults::RUN_SIZE,
            tmp_size: defaults::TMP_SIZE,
            shm_size: defaults::SHM_SIZE,
        }
    }
}

/// How big a tmpfs may grow: bytes, or a share of RAM (tmpfs's own `size=` forms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TmpfsSize {
    Bytes(u64),
    /// 1 to 100.
    Percent(u8),
}

impl fmt::Display for TmpfsSize {
    /// As tmpfs's `size=` option takes it: `64M`, `10%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TmpfsSize::Percent(p) => write!(f, "{p}%"),
            TmpfsSize::Bytes(b) => {
                for (unit, n) in [("G", 1u64 << 30), ("M", 1 << 20), ("k", 1 << 10)] {
                    if b >= n && b % n == 0 {
                        return write!(f, "{}{unit}", b / n);
                    }
                }
                write!(f, "{b}")
            }
        }
    }
}

/// Parses `"64M"`, `"512k"`, `"1G"`, `"10%"`: a size with a unit, or a share of RAM.
/// Under 1 MiB is refused: such a /run cannot hold keel's sockets and sshd's pid file.
pub fn parse_tmpfs_size(s: &str) -> Option<TmpfsSize> {
    let s = s.trim();
    if let Some(p) = s.strip_suffix('%') {
        return p
            .parse::<u8>()
            .ok()
            .filter(|p| (1..=100).contains(p))
            .map(TmpfsSize::Percent);
    }
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mul: u64 = match unit {
        "k" | "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mul)
        .filter(|&b| b >= 1 << 20)
        .map(TmpfsSize::Bytes)
}

/// `[ssh]`: how sshd lets people in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ssh {
    /// Password login (root included) besides keys; off by default, so only keys work.
    pub password_login: bool,
}

/// `[cloud]`: where the `metadata` service looks for root's ssh keys and the hostname
/// (docs/deploy.md, "Platform keys and hostname").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloud {
    /// In the order given; each checks cheaply whether it applies.
    pub sources: Vec<CloudSource>,
    /// How long the sources may take in all; sshd then starts with the keys it has.
    pub timeout: Duration,
}

/// One place platform metadata comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudSource {
    /// A vfat or iso9660 volume labelled `cidata` (cloud-init's NoCloud).
    NoCloud,
    /// Linode's Metadata service at 169.254.169.254, on Linode guests only.
    Linode,
}

impl CloudSource {
    pub const ALL: [(&'static str, CloudSource); 2] = [
        ("nocloud", CloudSource::NoCloud),
        ("linode", CloudSource::Linode),
    ];

    pub fn name(self) -> &'static str {
        match self {
            CloudSource::NoCloud => "nocloud",
            CloudSource::Linode => "linode",
        }
    }
}

impl Default for Cloud {
    /// Both sources, 10 s: what the shipped config says.
    fn default() -> Self {
        Cloud {
            sources: vec![CloudSource::NoCloud, CloudSource::Linode],
            timeout: Duration::from_secs(10),
        }
    }
}

/// The word in `exec` that makes a service run once per console (see the module docs).
pub const CONSOLE_PLACEHOLDER: &str = "{console}";

/// `[modules]`: kernel modules to load at boot on a modular kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Modules {
    /// Module names (as in modules.dep, `-` and `_` alike); dependencies are added.
    pub load: Vec<String>,
    /// Modules whose failure to load stops the boot (emergency shell).
    pub required: Vec<String>,
    /// Modules the image packs but the boot does not load: the service that needs one
    /// loads it (the `state` service loads ext4 only for a state disk).
    pub on_demand: Vec<String>,
}

/// `kind`: a daemon that keeps running, or a task that runs once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Longrun,
    Oneshot,
}

/// `ready`: when a service counts as ready, so what needs it may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// As soon as it has been spawned.
    Started,
    /// When it sends `READY=1` on `NOTIFY_SOCKET` (the driver reports it).
    Notify,
    /// When something accepts a TCP connection on this local port (the driver probes).
    Tcp(u16),
    /// When it exits with code 0 (oneshots only).
    Exit,
}

/// `restart`: whether a service that exited is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    Always,
    OnFailure,
    Never,
}

/// `on_give_up`: what happens when a service is in a crash loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnGiveUp {
    /// Leave it (and what needs it) down, and try again every [`defaults::SLOW_RETRY`].
    RetrySlowly,
    /// Shut down in order and reboot.
    Reboot,
    /// Tell the driver to open the emergency shell; the service stays down.
    Emergency,
}

/// `leftovers`: what happens to the processes of a service's group that outlive its main
/// process (on a stop, a restart or a crash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leftovers {
    /// They are stopped with it: the stop signal goes to the whole group, `cgroup.kill`
    /// after `stop_timeout`. A stopped service's group is empty.
    Stop,
    /// Only the main process gets the stop signal (and SIGKILL after `stop_timeout`); what
    /// it leaves (sshd's login sessions) is moved out of its group into
    /// `keel/released.scope` and runs on until it ends or the machine shuts down. The group
    /// is empty once they are moved, so the service still counts as stopped only then.
    Release,
}

/// `backoff`: the delay before restarting a failed service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    /// Multiplier per consecutive failure, in thousandths (2000 = doubling).
    pub factor_milli: u32,
    pub cap: Duration,
    /// Random extra delay as a fraction of the delay, in thousandths (100 = up to 10 %).
    pub jitter_milli: u32,
    /// A run at least this long resets the delay to `initial`.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: defaults::BACKOFF_INITIAL,
            factor_milli: defaults::BACKOFF_FACTOR_MILLI,
            cap: defaults::BACKOFF_CAP,
            jitter_milli: defaults::BACKOFF_JITTER_MILLI,
            reset_after: defaults::BACKOFF_RESET_AFTER,
        }
    }
}

/// `crash_loop`: give up after `limit` failures within `within`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashLoop {
    pub limit: u32,
    pub within: Duration,
}

impl Default for CrashLoop {
    fn default() -> Self {
        CrashLoop {
            limit: defaults::CRASH_LOOP_LIMIT,
            within: defaults::CRASH_LOOP_WITHIN,
        }
    }
}

/// One `[services.NAME]` table, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    pub name: String,
    /// argv; never empty, `exec[0]` is an absolute path.
    pub exec: Vec<String>,
    /// Extra environment, sorted by name.
    pub env: Vec<(String, String)>,
    pub user: Option<String>,
    pub group: Option<String>,
    /// Capabilities kept (canonical `CAP_*` names); `None` keeps what root has.
    pub capabilities: Option<Vec<String>>,
    pub kind: Kind,
    pub needs: Vec<String>,
    pub after: Vec<String>,
    pub ready: Ready,
    pub restart: Restart,
    pub backoff: Backoff,
    pub crash_loop: CrashLoop,
    pub on_give_up: OnGiveUp,
    pub stop_signal: Sig,
    pub stop_timeout: Duration,
    /// Not ready (a oneshot: not finished) this long after its start is a failure;
    /// `None` (`start_timeout = "0"`) waits for ever.
    pub start_timeout: Option<Duration>,
    pub console: bool,
    pub leftovers: Leftovers,
    /// cgroup limits and process settings (limits.rs).
    pub limits: Limits,
}

impl graph::Node for ServiceConfig {
    fn name(&self) -> &str {
        &self.name
    }
    fn needs(&self) -> &[String] {
        &self.needs
    }
    fn after(&self) -> &[String] {
        &self.after
    }
}

impl ServiceConfig {
    /// A longrun service with every default, for tests and built-in services.
    pub fn new(name: &str, exec: &[&str]) -> ServiceConfig {
        ServiceConfig {
            name: name.to_string(),
            exec: exec.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            user: None,
            group: None,
            capabilities: None,
            kind: Kind::Longrun,
            needs: Vec::new(),
            after: Vec::new(),
            ready: Ready::Started,
            restart: Restart::Always,
            backoff: Backoff::default(),
            crash_loop: CrashLoop::default(),
            on_give_up: OnGiveUp::RetrySlowly,
            stop_signal: Sig::TERM,
            stop_timeout: defaults::STOP_TIMEOUT,
            start_timeout: Some(defaults::START_TIMEOUT),
            console: false,
            leftovers: Leftovers::Stop,
            limits: Limits::default(),
        }
    }

    /// Whether this service runs once per console (its exec holds `{console}`).
    pub fn per_console(&self) -> bool {
        self.exec.iter().any(|a| a.contains(CONSOLE_PLACEHOLDER))
    }

    /// A oneshot with every default (ready on exit 0, never restarted).
    pub fn oneshot(name: &str, exec: &[&str]) -> ServiceConfig {
        ServiceConfig {
            kind: Kind::Oneshot,
            ready: Ready::Exit,
            restart: Restart::Never,
            ..ServiceConfig::new(name, exec)
        }
    }
}

/// The Linux capabilities by number (capability.h, up to CAP_CHECKPOINT_RESTORE = 40).
pub const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// A config error with the place it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: String,
    /// 1-based line and column, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{}:{}: {}", self.path, l, c, self.message),
            (Some(l), None) => write!(f, "{}:{}: {}", self.path, l, self.message),
            _ => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// 1-based (line, column) of a byte offset in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Parses and validates the appliance config. `path` is only used in messages.
/// On error, every problem found is returned, in the order of the file.
pub fn parse(text: &str, path: &str) -> Result<ApplianceConfig, Vec<Diagnostic>> {
    parse_noted(text, path).map(|(config, _)| config)
}

/// [`parse`], and on success also the notes: each value written in another accepted
/// spelling (systemd's `restart = "no"`, a compound duration) with keel's own.
pub fn parse_noted(
    text: &str,
    path: &str,
) -> Result<(ApplianceConfig, Vec<Diagnostic>), Vec<Diagnostic>> {
    let (root, parse_errors) = DeTable::parse_recoverable(text);
    let mut v = Validator {
        errors: Vec::new(),
        notes: Vec::new(),
    };
    for e in &parse_errors {
        let at = e.span().map_or(0, |s| s.start);
        let msg = e.message().trim();
        let hint = if msg.starts_with("duplicate key") {
            "it is already defined above in the same table; merge the two or rename one"
        } else {
            "fix the TOML syntax here"
        };
        v.errors.push((at, format!("{msg}; {hint}")));
    }
    let config = v.root(root.get_ref());
    let place = |list: Vec<(usize, String)>| -> Vec<Diagnostic> {
        let mut list = list;
        list.sort_by_key(|(at, _)| *at);
        list.into_iter()
            .map(|(at, message)| {
                let (line, column) = line_col(text, at);
                Diagnostic {
                    path: path.to_string(),
                    line: Some(line),
                    column: Some(column),
                    message,
                }
            })
            .collect()
    };
    if v.errors.is_empty() {
        return Ok((config, place(v.notes)));
    }
    Err(place(v.errors))
}

type Val<'i> = Spanned<DeValue<'i>>;
type Key<'i> = Spanned<std::borrow::Cow<'i, str>>;

const SYSTEM_FIELDS: &[&str] = &["hostname", "run_size", "tmp_size", "shm_size"];
const MODULES_FIELDS: &[&str] = &["load", "required", "on_demand"];
const SSH_FIELDS: &[&str] = &["password_login"];
const CLOUD_FIELDS: &[&str] = &["sources", "timeout"];
const TOP_FIELDS: &[&str] = &[
    "system", "modules", "firewall", "ssh", "cloud", "watchdog", "services",
];
const SERVICE_FIELDS: &[&str] = &[
    "exec",
    "env",
    "user",
    "group",
    "capabilities",
    "kind",
    "needs",
    "after",
    "ready",
    "restart",
    "backoff",
    "crash_loop",
    "on_give_up",
    "stop_signal",
    "stop_timeout",
    "start_timeout",
    "console",
    "leftovers",
    "memory_max",
    "pids_max",
    "cpu_weight",
    "rlimits",
    "umask",
    "workdir",
];
const BACKOFF_FIELDS: &[&str] = &["initial", "factor", "cap", "jitter", "reset_after"];
const CRASH_LOOP_FIELDS: &[&str] = &["limit", "within"];

/// Where each dependency name of one service was written, for cross-service errors.
struct DepSpans {
    header: usize,
    needs: Vec<usize>,
    after: Vec<usize>,
    console: Option<usize>,
}

struct Validator {
    errors: Vec<(usize, String)>,
    /// What was accepted in another spelling than keel's own (`keel check -v` prints them).
    notes: Vec<(usize, String)>,
}

/// A table's entries in the order of the file (toml's map is sorted by key).
fn entries<'a, 'i>(t: &'a DeTable<'i>) -> Vec<(&'a Key<'i>, &'a Val<'i>)> {
    let mut e: Vec<_> = t.iter().collect();
    e.sort_by_key(|(k, _)| k.span().start);
    e
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn integer(v: &DeValue<'_>) -> Option<i64> {
    let i = v.as_integer()?;
    i64::from_str_radix(i.as_str(), i.radix()).ok()
}

fn float(v: &DeValue<'_>) -> Option<f64> {
    match v {
        DeValue::Float(f) => f.as_str().parse::<f64>().ok().filter(|x| x.is_finite()),
        DeValue::Integer(_) => integer(v).map(|i| i as f64),
        _ => None,
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest of `known` to `word`, if it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    known
        .into_iter()
        .map(|k| (distance(&w, &k.to_ascii_lowercase()), k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn did_you_mean(word: &str, known: &[&str]) -> String {
    match closest(word, known.iter().copied()) {
        Some(k) => format!("did you mean `{k}`?"),
        None => format!("known fields: {}", known.join(", ")),
    }
}

/// Parses a duration: a number with a unit (`"200ms"`, `"1.5s"`, `"2m"`, `"1h"`), several
/// of them in a row as systemd writes them (`"1m30s"`, `"1h 5min"`), or `"0"`. Units: `ms`,
/// `s`/`sec`, `m`/`min`, `h`/`hr`. A bare number other than 0 is refused (seconds or
/// milliseconds? the config says which by its unit).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s;
    let mut ms = 0.0f64;
    let mut parts = 0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (num, after) = rest.split_at(num_end);
        if num.is_empty() {
            return None;
        }
        let n: f64 = num.parse().ok()?;
        let after = after.trim_start();
        let unit_end = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let ms_per = match unit {
            "ms" => 1.0,
            "s" | "sec" => 1000.0,
            "m" | "min" => 60_000.0,
            "h" | "hr" => 3_600_000.0,
            _ => return None,
        };
        ms += n * ms_per;
        parts += 1;
        rest = after.trim_start();
    }
    (parts > 0 && (0.0..1e15).contains(&ms)).then(|| Duration::from_millis(ms.round() as u64))
}

/// A duration in one unit, as `keel check -v` shows what it read: `200ms`, `1.5s`, `90s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0".into(),
        1..=999 => format!("{ms}ms"),
        _ if ms % 1000 == 0 => format!("{}s", ms / 1000),
        _ => format!(
            "{}.{}s",
            ms / 1000,
            format!("{:03}", ms % 1000).trim_end_matches('0')
        ),
    }
}

/// True for a duration written as one number and one of keel's own units (`5s`, `1.5s`).
fn plain_duration(s: &str) -> bool {
    let units = s.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    units.len() < s.len() && matches!(units, "ms" | "s" | "m" | "h")
}

/// Service names appear in commands and the control protocol: keep them plain.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with(['-', '.'])
}

/// keel's own word for a restart policy.
pub fn restart_word(r: Restart) -> &'static str {
    match r {
        Restart::Always => "always",
        Restart::OnFailure => "on-failure",
        Restart::Never => "never",
    }
}

impl Validator {
    fn err(&mut self, at: usize, msg: impl Into<String>) {
        self.errors.push((at, msg.into()));
    }

    fn note(&mut self, at: usize, msg: impl Into<String>) {
        self.notes.push((at, msg.into()));
    }

    fn table<'a, 'i>(&mut self, v: &'a Val<'i>, what: &str) -> Option<&'a DeTable<'i>> {
        let t = v.get_ref().as_table();
        if t.is_none() {
            let found = type_name(v.get_ref());
            self.err(
                v.span().start,
                format!("{what} must be a table, found {found}; write it as [{what}]"),
            );
        }
        t
    }

    fn unknown(&mut self, key: &Key<'_>, section: &str, known: &[&str]) {
        let name = key.get_ref();
        let hint = did_you_mean(name, known);
        self.err(
            key.span().start,
            format!("unknown field `{name}` in {section}; {hint}"),
        );
    }

    fn string(&mut self, v: &Val<'_>, field: &str) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                let found = type_name(other);
                self.err(
                    v.span().start,
                    format!("`{field}` must be a string, found {found}; put it in quotes"),
                );
                None
            }
        }
    }

    /// A list of strings, each with where it was written.
    fn strings(&mut self, v: &Val<'_>, field: &str) -> Option<Vec<(String, usize)>> {
        let Some(items) = v.get_ref().as_array() else {
            let found = type_name(v.get_ref());
            self.err(
                v.span().start,
                format!("`{field}` must be an array of strings like [\"a\", \"b\"], found {found}"),
            );
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push((s.to_string(), item.span().start)),
                other => {
                    let found = type_name(other);
                    self.err(
                        item.span().start,
                        format!("`{field}` items must be strings, found {found}"),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn boolean(&mut self, v: &Val<'_>, field: &str) -> Option<bool> {
        let b = v.get_ref().as_bool();
        if b.is_none() {
            let found = type_name(v.get_ref());
            self.err(
                v.span().start,
                format!("`{field}` must be true or false, found {found}"),
            );
        }
        b
    }

    fn duration(&mut self, v: &Val<'_>, field: &str) -> Option<Duration> {
        let at = v.span().start;
        match v.get_ref() {
            DeValue::String(s) => {
                let d = parse_duration(s);
                match d {
                    None => self.err(at, format!("`{field}` = \"{s}\" is not a duration; write numbers with units: \"200ms\", \"1.5s\", \"1m30s\" or \"1h\"")),
                    Some(d) if !plain_duration(s) && s.trim() != "0" => {
                        self.note(at, format!("`{field}` = \"{s}\" read as {}", format_duration(d)));
                    }
                    Some(_) => {}
                }
                d
            }
            DeValue::Integer(_) | DeValue::Float(_) => match float(v.get_ref()) {
                Some(secs) if (0.0..1e12).contains(&secs) => {
                    Some(Duration::from_millis((secs * 1000.0).round() as u64))
                }
                _ => {
                    self.err(at, format!("`{field}` must be a non-negative number of seconds or a string like \"5s\""));
                    None
                }
            },
            other => {
                let found = type_name(other);
                self.err(at, format!("`{field}` must be a duration like \"200ms\", \"5s\" or a number of seconds, found {found}"));
                None
            }
        }
    }

    /// One of a fixed set of words.
    fn word<T: Copy>(&mut self, v: &Val<'_>, field: &str, allowed: &[(&str, T)]) -> Option<T> {
        let s = self.string(v, field)?;
        let found = allowed.iter().find(|(w, _)| *w == s).map(|&(_, t)| t);
        if found.is_none() {
            let names: Vec<String> = allowed.iter().map(|(w, _)| format!("\"{w}\"")).collect();
            let hint = match closest(&s, allowed.iter().map(|(w, _)| *w)) {
                Some(c) => format!(" (did you mean \"{c}\"?)"),
                None => String::new(),
            };
            self.err(
                v.span().start,
                format!(
                    "`{field}` = \"{s}\" is not allowed; use one of {}{hint}",
                    names.join(", ")
                ),
            );
        }
        found
    }

    fn root(&mut self, root: &DeTable<'_>) -> ApplianceConfig {
        let mut config = ApplianceConfig::default();
        let mut services: Vec<(ServiceConfig, DepSpans)> = Vec::new();
        let mut watchdog = None;
        for (key, value) in entries(root) {
            match key.get_ref().as_ref() {
                "system" => {
                    if let Some(t) = self.table(value, "system") {
                        self.system(t, &mut config.system);
                    }
                }
                "modules" => {
                    if let Some(t) = self.table(value, "modules") {
                        self.modules(t, &mut config.modules);
                    }
                }
                "firewall" => {
                    if let Some(t) = self.table(value, "firewall") {
                        self.firewall(t, &mut config.firewall);
                    }
                }
                "ssh" => {
                    if let Some(t) = self.table(value, "ssh") {
                        self.ssh(t, &mut config.ssh);
                    }
                }
                "cloud" => {
                    if let Some(t) = self.table(value, "cloud") {
                        self.cloud(t, &mut config.cloud);
                    }
                }
                "watchdog" => watchdog = self.watchdog(value),
                "services" => {
                    if let Some(t) = self.table(value, "services") {
                        for (name, svc) in entries(t) {
                            if let Some(s) = self.service(name, svc) {
                                services.push(s);
                            }
                        }
                    }
                }
                _ => self.unknown(key, "the config", TOP_FIELDS),
            }
        }
        self.cross_check(&services);
        if let Some((w, places)) = watchdog {
            let names: Vec<&str> = services.iter().map(|(s, _)| s.name.as_str()).collect();
            for (n, at) in w.needs.iter().zip(places) {
                if !names.contains(&n.as_str()) {
                    let hint = closest(n, names.iter().copied())
                        .map_or(String::new(), |c| format!("; did you mean {c}?"));
                    self.err(
                        at,
                        format!("`watchdog.needs` names \"{n}\", which is not a service{hint}"),
                    );
                }
            }
            config.watchdog = Some(w);
        }
        config.services = services.into_iter().map(|(s, _)| s).collect();
        config
    }

    fn system(&mut self, t: &DeTable<'_>, out: &mut System) {
        for (key, value) in entries(t) {
            match key.get_ref().as_ref() {
                "hostname" => {
                    if let Some(h) = self.string(value, "hostname") {
                        let ok = !h.is_empty()
                            && h.len() <= 64
                            && h.split('.').all(|l| {
                                !l.is_empty()
                                    && !l.starts_with('-')
                                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                            });
                        if ok {
                            out.hostname = h;
                        } else {
                            self.err(value.span().start, format!("hostname \"{h}\" is not valid; use 1-64 letters, digits, '-' and '.' (e.g. \"keel\")"));
                        }
                    }
                }
                field @ ("run_size" | "tmp_size" | "shm_size") => {
                    let Some(text) = self.string(value, field) else {
                        continue;
                    };
                    match parse_tmpfs_size(&text) {
                        Some(size) => match field {
                            "run_size" => out.run_size = size,
                            "tmp_size" => out.tmp_size = size,
                            _ => out.shm_size = size,
                        },
                        None => self.err(value.span().start, format!("`{field}` = \"{text}\" is not a tmpfs size; write a size of at least 1M (\"64M\", \"1G\") or a share of RAM (\"10%\")")),
                    }
                }
                _ => self.unknown(key, "[system]", SYSTEM_FIELDS),
            }
        }
    }

    fn ssh(&mut self, t: &DeTable<'_>, out: &mut Ssh) {
        for (key, value) in entries(t) {
            match key.get_ref().as_ref() {
                "password_login" => {
                    if let Some(b) = self.boolean(value, "password_login") {
                        out.password_login = b;
                    }
                }
                _ => self.unknown(key, "[ssh]", SSH_FIELDS),
            }
        }
    }

    fn cloud(&mut self, t: &DeTable<'_>, out: &mut Cloud) {
        for (key, value) in entries(t) {
            match key.get_ref().as_ref() {
                "sources" => {
                    let Some(names) = self.strings(value, "sources") else {
                        continue;
                    };
                    out.sources.clear();
                    for (n, at) in names {
                        match CloudSource::ALL.iter().find(|(w, _)| *w == n) {
                            Some(&(_, src)) if !out.sources.contains(&src) => {
                                out.sources.push(src)
                            }
                            Some(_) => self.err(at, format!("[cloud] `sources` names \"{n}\" twice; remove one")),
                            None => self.err(at, format!("[cloud] `sources` has \"{n}\", which is not a source; use \"nocloud\", \"linode\", or [] for none")),
                        }
                    }
                }
                "timeout" => {
                    if let Some(d) = self.duration(value, "timeout") {
                        out.timeout = d;
                    }
                }
                _ => self.unknown(key, "[cloud]", CLOUD_FIELDS),
            }
        }
    }

    fn modules(&mut self, t: &DeTable<'_>, out: &mut Modules) {
        for (key, value) in entries(t) {
            let field = key.get_ref().as_ref();
            let list = match field {
                "load" => &mut out.load,
                "required" => &mut out.required,
                "on_demand" => &mut out.on_demand,
                _ => {
                    self.unknown(key, "[modules]", MODULES_FIELDS);
                    continue;
                }
            };
            if let Some(names) = self.strings(value, field) {
                *list = names.into_iter().map(|(n, _)| n).collect();
            }
        }
    }

    fn service(
        &mut self,
        name_key: &Key<'_>,
        value: &Val<'_>,
    ) -> Option<(ServiceConfig, DepSpans)> {
        let name = name_key.get_ref().to_string();
        let header = name_key.span().start;
        let section = format!("[services.{name}]");
        if !valid_name(&name) {
            self.err(header, format!("service name \"{name}\" is not valid; use letters, digits, '-', '_' and '.' (at most 64)"));
        }
        let t = self.table(value, &format!("services.{name}"))?;
        let mut s = ServiceConfig::new(&name, &[]);
        let mut spans = DepSpans {
            header,
            needs: Vec::new(),
            after: Vec::new(),
            console: None,
        };
        let (mut exec_seen, mut kind_set, mut ready_at, mut restart_at) =
            (false, false, None, None);
        let (mut ready_set, mut restart_set) = (false, false);
        for (key, v) in entries(t) {
            let field = key.get_ref().as_ref();
            let at = v.span().start;
            match field {
                "exec" => {
                    exec_seen = true;
                    if let DeValue::String(cmd) = v.get_ref() {
                        let words: Vec<String> =
                            cmd.split_whitespace().map(|w| format!("\"{w}\"")).collect();
                        self.err(
                            at,
                            format!(
                                "`exec` must be an argv array, not a string; write exec = [{}]",
                                words.join(", ")
                            ),
                        );
                    } else if let Some(argv) = self.strings(v, "exec") {
                        // execve takes C strings: a NUL would cut the argument at spawn.
                        let nul = argv.iter().enumerate().find(|(_, (a, _))| a.contains('\0'));
                        match argv.first() {
                            _ if nul.is_some() => {
                                if let Some((i, (_, p))) = nul {
                                    self.err(*p, format!("`exec[{i}]` of {section} contains a NUL character (\\u0000), which no program argument can hold; remove it"));
                                }
                            }
                            None => self.err(at, format!("`exec` of {section} is empty; give the program and its arguments, e.g. [\"/bin/sh\"]")),
                            Some((prog, p)) if !prog.starts_with('/') => {
                                self.err(*p, format!("`exec[0]` = \"{prog}\" is not an absolute path; keel does not search PATH, write e.g. \"/bin/{prog}\""))
                            }
                            Some(_) => s.exec = argv.into_iter().map(|(a, _)| a).collect(),
                        }
                    }
                }
                "env" => {
                    let Some(et) = v.get_ref().as_table() else {
                        self.err(
                            at,
                            "`env` must be a table of strings, e.g. env = { LANG = \"C\" }",
                        );
                        continue;
                    };
                    for (k, ev) in entries(et) {
                        let kname = k.get_ref().to_string();
                        if kname.is_empty() || kname.contains('=') || kname.contains('\0') {
                            self.err(k.span().start, format!("environment variable name \"{kname}\" is not valid; it must be non-empty without '='"));
                        } else if let Some(val) = self.string(ev, &format!("env.{kname}")) {
                            if val.contains('\0') {
                                self.err(ev.span().start, format!("`env.{kname}` of {section} contains a NUL character (\\u0000), which no environment value can hold; remove it"));
                                continue;
                            }
                            s.env.push((kname, val));
                        }
                    }
                    s.env.sort();
                }
                "user" | "group" => {
                    let id = match v.get_ref() {
                        DeValue::Integer(_) => match integer(v.get_ref()) {
                            Some(n) if (0..=i64::from(u32::MAX - 1)).contains(&n) => {
                                Some(n.to_string())
                            }
                            _ => {
                                self.err(
                                    at,
                                    format!(
                                        "`{field}` must be a name or an id from 0 to 4294967294"
                                    ),
                                );
                                None
                            }
                        },
                        _ => self.string(v, field).filter(|u| {
                            let ok = !u.is_empty() && !u.contains([':', '\n', '\0']);
                            if !ok {
                                self.err(at, format!("`{field}` = \"{u}\" is not a valid name"));
                            }
                            ok
                        }),
                    };
                    if field == "user" {
                        s.user = id;
                    } else {
                        s.group = id;
                    }
                }
                "capabilities" => {
                    let Some(list) = self.strings(v, "capabilities") else {
                        continue;
                    };
                    let mut caps = Vec::new();
                    for (c, p) in list {
                        let upper = c.to_ascii_uppercase();
                        let canon = if upper.starts_with("CAP_") {
                            upper
                        } else {
                            format!("CAP_{upper}")
                        };
                        if !CAPABILITIES.contains(&canon.as_str()) {
                            let hint = match closest(&canon, CAPABILITIES.iter().copied()) {
                                Some(k) => format!("did you mean \"{k}\"?"),
                                None => "see capabilities(7) for the names".to_string(),
                            };
                            self.err(p, format!("unknown capability \"{c}\"; {hint}"));
                        } else if caps.contains(&canon) {
                            self.err(p, format!("capability \"{c}\" is listed twice; remove one"));
                        } else {
                            caps.push(canon);
                        }
                    }
                    s.capabilities = Some(caps);
                }
                "kind" => {
                    if let Some(k) = self.word(
                        v,
                        "kind",
                        &[("longrun", Kind::Longrun), ("oneshot", Kind::Oneshot)],
                    ) {
                        s.kind = k;
                        kind_set = true;
                    }
                }
                "needs" | "after" => {
                    let Some(list) = self.strings(v, field) else {
                        continue;
                    };
                    let mut names: Vec<String> = Vec::new();
                    let mut places = Vec::new();
                    for (dep, p) in list {
                        if dep == name {
                            self.err(
                                p,
                                format!("{section} lists itself in `{field}`; remove \"{dep}\""),
                            );
                        } else if names.contains(&dep) {
                            self.err(p, format!("\"{dep}\" is listed twice in `{field}` of {section}; remove one"));
                        } else {
                            names.push(dep);
                            places.push(p);
                        }
                    }
                    if field == "needs" {
                        s.needs = names;
                        spans.needs = places;
                    } else {
                        s.after = names;
                        spans.after = places;
                    }
                }
                "ready" => {
                    let Some(r) = self.string(v, "ready") else {
                        continue;
                    };
                    let parsed = match r.as_str() {
                        "started" => Some(Ready::Started),
                        "notify" => Some(Ready::Notify),
                        "exit" => Some(Ready::Exit),
                        _ => match r.strip_prefix("tcp:") {
                            Some(port) => match port.parse::<u16>() {
                                Ok(p) if p > 0 => Some(Ready::Tcp(p)),
                                _ => {
                                    self.err(at, format!("`ready` = \"{r}\": the port must be a number from 1 to 65535, e.g. \"tcp:22\""));
                                    continue;
                                }
                            },
                            None => None,
                        },
                    };
                    match parsed {
                        Some(p) => {
                            s.ready = p;
                            ready_set = true;
                            ready_at = Some(at);
                        }
                        None => self.err(at, format!("`ready` = \"{r}\" is not allowed; use one of \"started\", \"notify\", \"tcp:PORT\", \"exit\"")),
                    }
                }
                "restart" => {
                    let words = [
                        ("always", Restart::Always),
                        ("on-failure", Restart::OnFailure),
                        ("never", Restart::Never),
                    ];
                    // systemd's Restart=no and dinit's restart = yes/no/true/false mean the
                    // same as keel's words: accepted, and noted for `keel check -v`.
                    let alias = match v.get_ref() {
                        DeValue::Boolean(true) => Some(("true", Restart::Always)),
                        DeValue::Boolean(false) => Some(("false", Restart::Never)),
                        DeValue::String(w) if w.as_ref() == "yes" => {
                            Some(("\"yes\"", Restart::Always))
                        }
                        DeValue::String(w) if w.as_ref() == "no" => {
                            Some(("\"no\"", Restart::Never))
                        }
                        _ => None,
                    };
                    let r = match alias {
                        Some((written, r)) => {
                            let own = restart_word(r);
                            self.note(
                                at,
                                format!("{section}: `restart` = {written} read as \"{own}\""),
                            );
                            Some(r)
                        }
                        None => self.word(v, "restart", &words),
                    };
                    if let Some(r) = r {
                        s.restart = r;
                        restart_set = true;
                        restart_at = Some(at);
                    }
                }
                "backoff" => self.backoff(v, &section, &mut s.backoff),
                "crash_loop" => self.crash_loop(v, &section, &mut s.crash_loop),
                "on_give_up" => {
                    let words = [
                        ("retry-slowly", OnGiveUp::RetrySlowly),
                        ("reboot", OnGiveUp::Reboot),
                        ("emergency", OnGiveUp::Emergency),
                    ];
                    if let Some(g) = self.word(v, "on_give_up", &words) {
                        s.on_give_up = g;
                    }
                }
                "stop_signal" => {
                    let sig = match v.get_ref() {
                        DeValue::Integer(_) => integer(v.get_ref())
                            .and_then(|n| u8::try_from(n).ok())
                            .and_then(|n| Sig::parse(&n.to_string())),
                        _ => self.string(v, "stop_signal").and_then(|n| Sig::parse(&n)),
                    };
                    match sig {
                        Some(sig) => s.stop_signal = sig,
                        None if v.get_ref().is_str() || v.get_ref().is_integer() => {
                            let names: Vec<&str> = Sig::names().collect();
                            self.err(at, format!("`stop_signal` is not a signal; use a name like \"TERM\", \"SIGHUP\" or a number 1-64 (names: {})", names.join(" ")));
                        }
                        None => {}
                    }
                }
                "start_timeout" => {
                    if let Some(d) = self.duration(v, "start_timeout") {
                        s.start_timeout = (!d.is_zero()).then_some(d);
                    }
                }
                "stop_timeout" => {
                    if let Some(d) = self.duration(v, "stop_timeout") {
                        s.stop_timeout = d;
                    }
                }
                "console" => {
                    if let Some(b) = self.boolean(v, "console") {
                        s.console = b;
                        if b {
                            spans.console = Some(at);
                        }
                    }
                }
                "leftovers" => {
                    let words = [("stop", Leftovers::Stop), ("release", Leftovers::Release)];
                    if let Some(l) = self.word(v, "leftovers", &words) {
                        s.leftovers = l;
                    }
                }
                f if limits::FIELDS.contains(&f) => self.limit(f, v, &section, &mut s.limits),
                _ => self.unknown(key, &section, SERVICE_FIELDS),
            }
        }
        if !exec_seen {
            self.err(
                header,
                format!("{section} has no `exec`; add exec = [\"/path/to/program\", \"arg\"]"),
            );
        }
        // Kind-specific defaults and checks, once every field has been read.
        if s.kind == Kind::Oneshot {
            if !ready_set {
                s.ready = Ready::Exit;
            }
            if !restart_set {
                s.restart = Restart::Never;
            }
            if s.ready != Ready::Exit {
                self.err(ready_at.unwrap_or(header), format!("{section} is a oneshot, which is ready when it exits 0; remove `ready` or set it to \"exit\""));
            }
            if s.restart == Restart::Always {
                self.err(restart_at.unwrap_or(header), format!("{section} is a oneshot and cannot have restart = \"always\"; use \"on-failure\" or \"never\""));
            }
        } else if s.ready == Ready::Exit {
            let hint = if kind_set {
                ""
            } else {
                " or add kind = \"oneshot\""
            };
            self.err(ready_at.unwrap_or(header), format!("{section} is a longrun and cannot use ready = \"exit\"; use \"started\", \"notify\" or \"tcp:PORT\"{hint}"));
        }
        Some((s, spans))
    }

    fn backoff(&mut self, v: &Val<'_>, section: &str, b: &mut Backoff) {
        let Some(t) = self.table(v, &format!("{}.backoff", section.trim_matches(['[', ']'])))
        else {
            return;
        };
        let mut cap_at = None;
        for (key, v) in entries(t) {
            let at = v.span().start;
            match key.get_ref().as_ref() {
                "initial" => {
                    if let Some(d) = self.duration(v, "backoff.initial") {
                        if d < Duration::from_millis(10) {
                            self.err(at, "`backoff.initial` must be at least 10ms, or a crashing service would spin");
                        } else {
                            b.initial = d;
                        }
                    }
                }
                "cap" => {
                    if let Some(d) = self.duration(v, "backoff.cap") {
                        b.cap = d;
                        cap_at = Some(at);
                    }
                }
                "reset_after" => {
                    if let Some(d) = self.duration(v, "backoff.reset_after") {
                        b.reset_after = d;
                    }
                }
                "factor" => match float(v.get_ref()) {
                    Some(f) if (1.0..=100.0).contains(&f) => b.factor_milli = (f * 1000.0).round() as u32,
                    _ => self.err(at, "`backoff.factor` must be a number from 1 to 100 (1 keeps the delay constant, 2 doubles it)"),
                },
                "jitter" => match float(v.get_ref()) {
                    Some(f) if (0.0..=1.0).contains(&f) => b.jitter_milli = (f * 1000.0).round() as u32,
                    _ => self.err(at, "`backoff.jitter` must be a fraction from 0 to 1 (0.1 adds up to 10 % at random)"),
                },
                _ => self.unknown(key, &format!("the backoff of {section}"), BACKOFF_FIELDS),
            }
        }
        if b.cap < b.initial {
            let at = cap_at.unwrap_or(v.span().start);
            self.err(
                at,
                format!(
                    "`backoff.cap` ({:?}) is below `backoff.initial` ({:?}); raise the cap",
                    b.cap, b.initial
                ),
            );
        }
    }

    fn crash_loop(&mut self, v: &Val<'_>, section: &str, c: &mut CrashLoop) {
        let Some(t) = self.table(
            v,
            &format!("{}.crash_loop", section.trim_matches(['[', ']'])),
        ) else {
            return;
        };
        for (key, v) in entries(t) {
            let at = v.span().start;
            match key.get_ref().as_ref() {
                "limit" => match integer(v.get_ref()) {
                    Some(n) if (1..=1000).contains(&n) => c.limit = n as u32,
                    _ => self.err(at, "`crash_loop.limit` must be a whole number from 1 to 1000 (failures before giving up)"),
                },
                "within" => {
                    if let Some(d) = self.duration(v, "crash_loop.within") {
                        if d.is_zero() {
                            self.err(at, "`crash_loop.within` must be longer than 0");
                        } else {
                            c.within = d;
                        }
                    }
                }
                _ => self.unknown(key, &format!("the crash_loop of {section}"), CRASH_LOOP_FIELDS),
            }
        }
    }

    /// Checks that need every service: dependency names, cycles, one console owner,
    /// per-console services that nothing depends on.
    fn cross_check(&mut self, services: &[(ServiceConfig, DepSpans)]) {
        let names: Vec<&str> = services.iter().map(|(s, _)| s.name.as_str()).collect();
        // Sets, not scans per dependency: 30,000 chained services must check in linear time.
        let known: std::collections::HashSet<&str> = names.iter().copied().collect();
        let per_console: std::collections::HashSet<&str> = services
            .iter()
            .filter(|(d, _)| d.per_console())
            .map(|(d, _)| d.name.as_str())
            .collect();
        for (s, spans) in services {
            if s.per_console() && s.console {
                let at = spans.console.unwrap_or(spans.header);
                self.err(at, format!("[services.{}] runs once per console ({CONSOLE_PLACEHOLDER} in exec) and opens its own tty, so it cannot also set console = true; remove one", s.name));
            }
            for (field, deps, places) in [
                ("needs", &s.needs, &spans.needs),
                ("after", &s.after, &spans.after),
            ] {
                for (dep, &p) in deps.iter().zip(places.iter()) {
                    if per_console.contains(dep.as_str()) {
                        self.err(p, format!("[services.{}] {field} \"{dep}\", which runs once per console ({CONSOLE_PLACEHOLDER} in its exec) and so has no single instance to wait for; remove it", s.name));
                    }
                }
            }
            for (field, deps, places) in [
                ("needs", &s.needs, &spans.needs),
                ("after", &s.after, &spans.after),
            ] {
                for (dep, &p) in deps.iter().zip(places.iter()) {
                    if !known.contains(dep.as_str()) {
                        let hint = match closest(dep, names.iter().copied()) {
                            Some(c) => format!("did you mean \"{c}\"?"),
                            None => "define it as [services.".to_string() + dep + "] or remove it",
                        };
                        self.err(
                            p,
                            format!(
                                "[services.{}] {field} \"{dep}\", which is not a service; {hint}",
                                s.name
                            ),
                        );
                    }
                }
            }
        }
        let list: Vec<ServiceConfig> = services.iter().map(|(s, _)| s.clone()).collect();
        let (_, graph_errors) = Graph::build(&list);
        for e in graph_errors {
            let GraphError::Cycle(path) = e else { continue };
            let text: Vec<&str> = path.iter().map(|id| names[id.0]).collect();
            // Point at the entry that closes the cycle: the last service's edge to the first.
            let (Some(last), Some(first)) = (path.get(path.len().saturating_sub(2)), path.first())
            else {
                continue;
            };
            let (ls, lspans) = &services[last.0];
            let first_name = names[first.0];
            let at = ls
                .needs
                .iter()
                .position(|n| n == first_name)
                .and_then(|i| lspans.needs.get(i))
                .or_else(|| {
                    ls.after
                        .iter()
                        .position(|n| n == first_name)
                        .and_then(|i| lspans.after.get(i))
                })
                .copied()
                .unwrap_or(lspans.header);
            self.err(
                at,
                format!(
                    "dependency cycle: {}; remove one of these needs/after entries",
                    text.join(" -> ")
                ),
            );
        }
        let consoles: Vec<&(ServiceConfig, DepSpans)> =
            services.iter().filter(|(s, _)| s.console).collect();
        if consoles.len() > 1 {
            for (s, spans) in &consoles[1..] {
                let at = spans.console.unwrap_or(spans.header);
                let first = &consoles[0].0.name;
                self.err(at, format!("[services.{}] sets console = true but \"{first}\" already owns the console; only one service may", s.name));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_gives_defaults() {
        let c = parse("", "a.toml").unwrap();
        assert_eq!(c.system.hostname, "keel");
        assert!(c.modules.load.is_empty());
        assert!(c.services.is_empty());
    }

    #[test]
    fn unknown_field_names_line_and_column() {
        let e = parse("[system]\nhostnme = \"x\"\n", "a.toml").unwrap_err();
        assert_eq!(e[0].line, Some(2));
        assert_eq!(e[0].column, Some(1));
        assert!(e[0].message.contains("hostnme"), "{}", e[0]);
        assert!(
            e[0].message.contains("did you mean `hostname`?"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn ssh_password_login_is_off_unless_set() {
        assert!(!parse("", "a.toml").unwrap().ssh.password_login);
        let c = parse("[ssh]\npassword_login = true\n", "a.toml").unwrap();
        assert!(c.ssh.password_login);
        let e = parse("[ssh]\npassword_login = \"yes\"\n", "a.toml").unwrap_err();
        assert_eq!((e[0].line, e[0].column), (Some(2), Some(18)), "{}", e[0]);
        assert!(e[0].message.contains("true or false"), "{}", e[0]);
        let e = parse("[ssh]\npasword_login = true\n", "a.toml").unwrap_err();
        assert!(
            e[0].message.contains("did you mean `password_login`?"),
            "{}",
            e[0]
        );
    }

    const GETTY: &str = "[services.getty]\nexec = [\"/sbin/keel\", \"getty\", \"{console}\"]\n";

    #[test]
    fn per_console_services_expand_once_per_console() {
        let text = format!(
            "[services.a]\nexec = [\"/bin/a\"]\n{GETTY}[services.b]\nexec = [\"/bin/b\"]\n"
        );
        let mut c = parse(&text, "a.toml").unwrap();
        assert!(c.services[1].per_console() && !c.services[0].per_console());
        c.expand_consoles(&["tty0".to_string(), "ttyS0".to_string()]);
        let names: Vec<&str> = c.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "getty@tty0", "getty@ttyS0", "b"]);
        assert_eq!(c.services[2].exec, ["/sbin/keel", "getty", "ttyS0"]);
        assert!(!c.services[2].per_console());
        // With no console named, the template disappears rather than running with `{console}`.
        let mut c = parse(GETTY, "a.toml").unwrap();
        c.expand_consoles(&[]);
        assert!(c.services.is_empty());
    }

    #[test]
    fn nothing_may_depend_on_a_per_console_service() {
        let text = format!("{GETTY}[services.x]\nexec = [\"/bin/x\"]\nafter = [\"getty\"]\n");
        let e = parse(&text, "a.toml").unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].line, Some(5), "{}", e[0]);
        assert!(e[0].message.contains("once per console"), "{}", e[0]);
        let text = format!("{GETTY}console = true\n");
        let e = parse(&text, "a.toml").unwrap_err();
        assert_eq!(e[0].line, Some(3), "{}", e[0]);
        assert!(
            e[0].message.contains("cannot also set console = true"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("", 0), (1, 1));
    }

    #[test]
    fn durations_parse_with_units_or_as_seconds() {
        assert_eq!(parse_duration("200ms"), Some(Duration::from_millis(200)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration(""), None);
        // Compound forms, as systemd writes them.
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h 5min"), Some(Duration::from_secs(3900)));
        assert_eq!(
            parse_duration("2sec 500ms"),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(parse_duration("1m30"), None, "a number without its unit");
        assert_eq!(parse_duration("1m30x"), None);
        assert_eq!(parse_duration("ms"), None);
        assert_eq!(parse_duration(".s"), None);
    }

    #[test]
    fn tmpfs_sizes() {
        assert_eq!(parse_tmpfs_size("64M"), Some(TmpfsSize::Bytes(64 << 20)));
        assert_eq!(parse_tmpfs_size("1G"), Some(TmpfsSize::Bytes(1 << 30)));
        assert_eq!(parse_tmpfs_size("2048k"), Some(TmpfsSize::Bytes(2 << 20)));
        assert_eq!(parse_tmpfs_size("10%"), Some(TmpfsSize::Percent(10)));
        for bad in [
            "",
            "0%",
            "101%",
            "64",
            "64MB",
            "512k",
            "-1M",
            "1.5G",
            "99999999999999G",
        ] {
            assert_eq!(parse_tmpfs_size(bad), None, "{bad}");
        }
        for (size, text) in [
            (TmpfsSize::Bytes(64 << 20), "64M"),
            (TmpfsSize::Bytes(3 << 30), "3G"),
            (TmpfsSize::Percent(10), "10%"),
        ] {
            assert_eq!(size.to_string(), text);
            assert_eq!(parse_tmpfs_size(text), Some(size));
        }
        let e = parse("[system]\nrun_size = \"5 parsecs\"\n", "t.toml")
            .err()
            .unwrap_or_default();
        assert_eq!(e.len(), 1);
        assert!(
            e[0].to_string()
                .starts_with("t.toml:2:12: `run_size` = \"5 parsecs\" is not a tmpfs size"),
            "{e:?}"
        );
        let c = parse("[system]\ntmp_size = \"64M\"\n", "t.toml").map(|c| c.system);
        assert_eq!(
            c.map(|s| (s.tmp_size, s.run_size)),
            Ok((TmpfsSize::Bytes(64 << 20), defaults::RUN_SIZE))
        );
    }

    #[test]
    fn durations_are_shown_in_one_unit() {
        for (d, text) in [
            (0, "0"),
            (200, "200ms"),
            (1500, "1.5s"),
            (90_000, "90s"),
            (1250, "1.25s"),
        ] {
            assert_eq!(format_duration(Duration::from_millis(d)), text);
            assert_eq!(parse_duration(text), Some(Duration::from_millis(d)));
        }
        assert!(plain_duration("5s") && plain_duration("1.5s") && !plain_duration("1m30s"));
        assert!(!plain_duration("5sec") && !plain_duration("s"));
    }

    #[test]
    fn other_spellings_are_accepted_and_noted() {
        let text = "[services.a]\nexec = [\"/bin/a\"]\nrestart = \"no\"\nstop_timeout = \"1m30s\"\n\
                    [services.b]\nexec = [\"/bin/b\"]\nrestart = true\n\
                    [services.c]\nexec = [\"/bin/c\"]\nrestart = \"on-failure\"\nstop_timeout = \"5s\"\n";
        let (config, notes) = parse_noted(text, "t.toml").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(config.services[0].restart, Restart::Never);
        assert_eq!(config.services[0].stop_timeout, Duration::from_secs(90));
        assert_eq!(config.services[1].restart, Restart::Always);
        assert_eq!(config.services[2].restart, Restart::OnFailure);
        let notes: Vec<String> = notes.iter().map(ToString::to_string).collect();
        assert_eq!(
            notes,
            [
                "t.toml:3:11: [services.a]: `restart` = \"no\" read as \"never\"",
                "t.toml:4:16: `stop_timeout` = \"1m30s\" read as 90s",
                "t.toml:7:11: [services.b]: `restart` = true read as \"always\"",
            ]
        );
    }

    #[test]
    fn closest_suggests_only_near_misses() {
        assert_eq!(
            closest("restrat", SERVICE_FIELDS.iter().copied()),
            Some("restart")
        );
        assert_eq!(closest("zzzzzz", SERVICE_FIELDS.iter().copied()), None);
    }
}

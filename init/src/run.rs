//! The main loop: poll the signalfd, the control socket, the log pipes and the notify
//! sockets, and look at the TCP readiness probes when their time comes; turn what arrived
//! into events for the two pure cores (the supervisor and, in PID 1, the lifecycle); carry
//! out their actions.
//!
//! The driver has no policy: which service starts, stops or restarts when is
//! `supervisor::core`; the emergency shell and the end of the machine are `lifecycle.rs`.
//! It never sleeps and never waits for a child; its one poll timeout is the nearest of
//! both cores' deadlines (and the probes'). Errors become log lines; nothing here returns
//! an error or exits. The same loop runs as `keel supervise` (Mode::Supervise): no
//! lifecycle, no consoles, no reboot; a stop request ends the loop once every service is
//! stopped.
#![forbid(unsafe_code)]

use crate::boot::Booted;
use crate::consoles::term_for;
use crate::groups::Groups;

mod group_events;
mod watchdog;
use crate::lifecycle::{self, Cause, Lifecycle, ShellKind};
use crate::log::{self, Level};
use crate::sys::control::{self, Conn, Listener, Overflow};
use crate::sys::power::{self, PowerKind};
use crate::sys::spawn::{self, SpawnSpec};
use crate::sys::{caps, clock, input, notify, pipe, probe, reap, signals, users};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::SignalFd;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use supervisor::config::{ApplianceConfig, Ready};
use supervisor::core::Supervisor;
use supervisor::event::{Action as SupAction, ConnId, Event as SupEvent, Record};
use supervisor::proto::{MAX_REQUEST, Request, Response};
use supervisor::{Pid, Sig, SvcId, WaitStatus};

/// The shell keel starts on the console for an emergency (busybox ash).
pub const SHELL: &str = "/bin/sh";
/// keel's run-time directory: search-only for others (0711), so a service running as
/// another user can reach its own notify socket by name but nobody can list or enter
/// anything else; the control socket in it is 0600 and checked with SO_PEERCRED.
pub const RUN_DIR: &str = "/run/keel";
/// What the `[watchdog]` is doing, one line (`keelctl status` shows it).
pub const WATCHDOG_STATE: &str = "/run/keel/watchdog";
/// The control socket of PID 1.
pub const CONTROL_PATH: &str = "/run/keel/control";
/// The PATH every service starts with.
pub const BASE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// At most this many control connections at once; more get an error and are closed.
pub const MAX_CONNS: usize = 32;
/// At the cap, a connection idle this long that does not follow logs gives its slot to a
/// new one (told why), so idle clients cannot lock keelctl out.
pub const IDLE_EVICT_MS: u64 = 10_000;
/// With no descriptor left to accept (EMFILE, ENFILE) and no spare to free, the listener
/// is not polled for this long, so a waiting connection cannot make the loop spin.
pub const ACCEPT_BACKOFF_MS: u64 = 1_000;
/// Requests taken from one connection per round, so one client cannot starve the rest.
const REQUESTS_PER_ROUND: usize = 256;
/// How often a TCP readiness probe looks at the socket tables again.
pub const PROBE_INTERVAL_MS: u64 = 50;
/// How many of the failed service's last log lines the emergency summary shows.
pub const SUMMARY_LINES: usize = 10;
/// busybox sulogin, which asks for root's password before the emergency shell.
pub const SULOGIN: &str = "/sbin/sulogin";
/// Where root's password hash is looked for.
pub const SHADOW: &str = "/etc/shadow";
/// The connection id of keel's own requests (replies to it are dropped).
const INTERNAL: ConnId = ConnId(0);

/// What a signal to PID 1 asks for (busybox's convention, plus SIGPWR as sysvinit's
/// power-failure signal). SIGINT is Ctrl-Alt-Del once RB_DISABLE_CAD is set.
pub fn power_request(signo: i32) -> Option<PowerKind> {
    match signo {
        libc::SIGUSR1 => Some(PowerKind::Halt),
        libc::SIGUSR2 | libc::SIGPWR => Some(PowerKind::PowerOff),
        libc::SIGTERM | libc::SIGINT => Some(PowerKind::Reboot),
        _ => None,
    }
}

/// The spawn of a console or emergency shell on `tty` (a /dev path): its own session with
/// the tty as controlling terminal, so job control works.
pub fn shell_spec(kind: ShellKind, tty: &str) -> SpawnSpec {
    shell_spec_with(kind, tty, false)
}

/// As `shell_spec`; with `password`, the emergency shell is busybox sulogin, which asks
/// for root's password and then runs `$SUSHELL` as a login shell.
pub fn shell_spec_with(kind: ShellKind, tty: &str, password: bool) -> SpawnSpec {
    let name = tty.strip_prefix("/dev/").unwrap_or(tty);
    let mut env = vec![
        "HOME=/root".to_string(),
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        format!("TERM={}", term_for(name)),
        format!("SHELL={SHELL}"),
        "USER=root".to_string(),
        "LOGNAME=root".to_string(),
    ];
    if kind != ShellKind::Console {
        env.push("KEEL_EMERGENCY=1".to_string());
        // The prompt says where the person is, so nobody takes it for a normal boot.
        env.push("PS1=(keel emergency) \\w # ".to_string());
    }
    let argv = match kind {
        ShellKind::Gate { secs } => vec![
            "/init".to_string(),
            "emergency-wait".to_string(),
            secs.to_string(),
        ],
        ShellKind::Emergency if password => {
            env.push(format!("SUSHELL={SHELL}"));
            vec![SULOGIN.to_string()]
        }
        ShellKind::Emergency | ShellKind::Console => vec![SHELL.to_string(), "-l".to_string()],
    };
    SpawnSpec {
        tty: Some(tty.to_string()),
        ..SpawnSpec::new(argv, env)
    }
}

/// The environment of a service: a minimal base, then the service's own `env` (which
/// wins). `tty` is set for console services, `notify` when it reports readiness.
pub fn service_env(
    user_home: &str,
    tty: Option<&str>,
    notify: Option<&str>,
    own: &[(String, String)],
) -> Vec<String> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), BASE_PATH.into()),
        ("HOME".into(), user_home.into()),
    ];
    if let Some(t) = tty {
        let name = t.strip_prefix("/dev/").unwrap_or(t);
        env.push(("TERM".into(), term_for(name).into()));
        env.push(("SHELL".into(), SHELL.into()));
    }
    if let Some(n) = notify {
        env.push(("NOTIFY_SOCKET".into(), n.into()));
    }
    for (k, v) in own {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// How the loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The machine's init: consoles, emergency shell, reboot(2) at the end.
    Pid1,
    /// `keel supervise`: an ordinary process (a child subreaper) logging to stderr.
    Supervise,
}

/// One TCP readiness probe: look for a listener on `port` at `next_at`.
#[derive(Debug)]
struct Probe {
    port: u16,
    next_at: clock::Mono,
}

/// What the driver keeps per service, beside the supervisor's state.
#[derive(Debug)]
struct SvcIo {
    name: String,
    console: bool,
    /// It holds a console tty: a `console = true` service, or a per-console instance
    /// (`getty@ttyS0`). The emergency shell stops these before it takes the console.
    owns_tty: bool,
    ready: Ready,
    notify: Option<OwnedFd>,
    notify_path: Option<String>,
    probe: Option<Probe>,
}

/// A unit of work: an action of either core.
enum Work {
    Sup(SupAction),
    Lc(lifecycle::Action),
}

fn to_sup(m: clock::Mono) -> supervisor::Mono {
    supervisor::Mono(m.0)
}

fn wait_status(ended: reap::Ended) -> WaitStatus {
    match ended {
        reap::Ended::Exited(c) => WaitStatus::Exited(c),
        reap::Ended::Signaled(s, _) => WaitStatus::Signaled(Sig(u8::try_from(s).unwrap_or(0))),
    }
}

/// The loop's state.
pub struct Driver {
    mode: Mode,
    sfd: Option<SignalFd>,
    lc: Option<Lifecycle>,
    sup: Option<Supervisor>,
    tty: String,
    /// Every console (names under /dev), for per-console services.
    consoles: Vec<String>,
    io: Vec<SvcIo>,
    /// Live service processes.
    pids: HashMap<i32, SvcId>,
    /// Log pipes still open (a service's, or an earlier instance's kept by a descendant).
    pipes: Vec<(SvcId, OwnedFd)>,
    listener: Option<Listener>,
    /// Kept to free one descriptor when accept finds none (see `control::spare_fd`).
    spare: Option<OwnedFd>,
    /// The listener is not polled before this (out of descriptors).
    accept_paused_until: Option<clock::Mono>,
    conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    /// Set once reboot(2) has failed for every mode: keel then only reaps, forever.
    stuck: bool,
    /// `keel.test_panic`: panic once in the next round (a test hook, see `boot::TEST_PANIC`).
    test_panic: bool,
    /// Supervise mode: the loop is over (every service stopped after a stop request).
    finished: bool,
    /// The power buttons watched (PID 1 only).
    buttons: Vec<input::Button>,
    /// Each service's cgroup (groups.rs).
    groups: Groups,
    /// The armed `[watchdog]` (run/watchdog.rs).
    dog: Option<watchdog::Dog>,
    /// `keel supervise --no-cgroups` clears it.
    want_cgroups: bool,
}

impl Driver {
    /// PID 1's driver: the signalfd, the lifecycle from the boot's result, and the
    /// supervisor with the control socket when the boot left a config and no fatal error.
    pub fn new(booted: &Booted) -> Driver {
        if let Err(e) = signals::block_all() {
            log::info(&format!("cannot block signals: {e}"));
        }
        let tty = booted.consoles.primary_path();
        let mut d = Driver::bare(Mode::Pid1, tty.clone(), booted.test_panic);
        d.consoles = booted.consoles.all.clone();
        let fatal = booted.fatal.as_deref().map(|f| (f, booted.cause.clone()));
        let (lc, first) = Lifecycle::new(&tty, fatal, booted.emergency, clock::now());
        d.lc = Some(lc);
        let (buttons, notes) = input::open_power_buttons();
        for n in notes {
            d.log(Level::Info, &n);
        }
        if buttons.is_empty() {
            d.log(
                Level::Info,
                "no power button found (KEY_POWER): ACPI power-off requests will not be seen",
            );
        }
        for b in &buttons {
            d.log(Level::Debug, &format!("watching power button {}", b.path));
        }
        d.buttons = buttons;
        if let (Some(cfg), None) = (&booted.config, &booted.fatal) {
            if let Err(e) = crate::sys::fs::mkdir(RUN_DIR, 0o711) {
                d.log(Level::Info, &format!("cannot create {RUN_DIR}: {e}"));
            }
            d.start_supervisor(cfg, CONTROL_PATH, &format!("{RUN_DIR}/notify"));
        }
        d.run(first.into_iter().map(Work::Lc).collect());
        d.kick();
        d
    }

    /// `keel supervise`'s driver: services from `cfg`, control socket at `socket`, notify
    /// sockets in `notify/` next to it. Fails only when the control socket cannot be made.
    /// `cgroups`: put services in cgroups when the host allows it.
    pub fn supervise(cfg: &ApplianceConfig, socket: &str, cgroups: bool) -> Result<Driver, String> {
        if let Err(e) = signals::block_all() {
            return Err(format!("cannot block signals: {e}"));
        }
        let dir = std::path::Path::new(socket)
            .parent()
            .map_or_else(|| ".".to_string(), |p| p.display().to_string());
        let dir = if dir.is_empty() { ".".to_string() } else { dir };
        if let Err(e) = crate::sys::fs::mkdir(&dir, 0o711) {
            return Err(format!("cannot create {dir} for the control socket: {e}"));
        }
        let mut d = Driver::bare(Mode::Supervise, String::new(), false);
        d.want_cgroups = cgroups;
        if d.sfd.is_none() {
            return Err("cannot create a signalfd".into());
        }
        if !d.start_supervisor(cfg, socket, &format!("{dir}/notify")) {
            return Err(format!(
                "cannot listen on {socket}: is another keel running there? pick another --socket"
            ));
        }
        d.kick();
        Ok(d)
    }

    fn bare(mode: Mode, tty: String, test_panic: bool) -> Driver {
        match control::raise_nofile() {
            Ok((soft, hard)) if soft < hard => log::debug(&format!(
                "open files limit raised from {soft} to {hard} (services keep {soft})"
            )),
            Ok(_) => {}
            Err(e) => log::info(&format!("cannot raise the open files limit: {e}")),
        }
        let sfd = match signals::signal_fd() {
            Ok(fd) => Some(fd),
            Err(e) => {
                log::info(&format!(
                    "cannot create a signalfd: {e}; power requests by signal will be lost"
                ));
                None
            }
        };
        Driver {
            mode,
            sfd,
            lc: None,
            sup: None,
            tty,
            consoles: Vec::new(),
            io: Vec::new(),
            pids: HashMap::new(),
            pipes: Vec::new(),
            listener: None,
            spare: None,
            accept_paused_until: None,
            conns: BTreeMap::new(),
            next_conn: 1,
            stuck: false,
            test_panic,
            finished: false,
            buttons: Vec::new(),
            groups: Groups::none(),
            dog: None,
            want_cgroups: true,
        }
    }

    /// Sets up the supervisor, its notify sockets and the control socket. False when the
    /// control socket could not be made.
    fn start_supervisor(&mut self, cfg: &ApplianceConfig, socket: &str, notify_dir: &str) -> bool {
        let sup = Supervisor::with_seed(cfg, crate::sys::jitter_seed());
        self.start_groups(cfg);
        let needs_notify = cfg.services.iter().any(|s| s.ready == Ready::Notify);
        if needs_notify && let Err(e) = crate::sys::fs::mkdir(notify_dir, 0o711) {
            self.log(Level::Info, &format!("cannot create {notify_dir}: {e}"));
        }
        for s in &cfg.services {
            let mut io = SvcIo {
                name: s.name.clone(),
                console: s.console && self.mode == Mode::Pid1,
                owns_tty: (s.console && self.mode == Mode::Pid1)
                    || self
                        .consoles
                        .iter()
                        .any(|t| s.name.ends_with(&format!("@{t}"))),
                ready: s.ready,
                notify: None,
                notify_path: None,
                probe: None,
            };
            if s.console && self.mode == Mode::Supervise {
                self.log(
                    Level::Info,
                    &format!(
                        "{}: console = true has no console under keel supervise; its output goes to the log",
                        s.name
                    ),
                );
            }
            if s.ready == Ready::Notify {
                let path = format!("{notify_dir}/{}", s.name);
                let (uid, gid) = users::resolve(s.user.as_deref(), s.group.as_deref())
                    .map_or((0, 0), |c| (c.uid, c.gid));
                match notify::bind_at(&path, uid, gid) {
                    Ok(fd) => {
                        io.notify = Some(fd);
                        io.notify_path = Some(path);
                    }
                    Err(e) => self.log(
                        Level::Info,
                        &format!(
                            "cannot create notify socket {path} for {}: {e}; it will never be ready",
                            s.name
                        ),
                    ),
                }
            }
            self.io.push(io);
        }
        self.sup = Some(sup);
        self.start_watchdog(cfg);
        match Listener::bind(socket) {
            Ok(l) => {
                self.listener = Some(l);
                self.spare = control::spare_fd();
                true
            }
            Err(e) => {
                self.log(
                    Level::Info,
                    &format!("cannot listen on {socket}: {e}; keelctl will not work"),
                );
                false
            }
        }
    }

    /// The first step of the supervisor: it starts what has no dependencies.
    /// When /init started, for the supervisor's boot timeline.
    pub fn set_init_time(&mut self, at: clock::Mono) {
        if let Some(sup) = &mut self.sup {
            sup.set_init_time(to_sup(at));
        }
    }

    fn kick(&mut self) {
        self.sup_event(SupEvent::Deadline);
    }

    /// True once `keel supervise` has stopped every service after a stop request.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// `keel supervise`, after every service stopped: the processes its services left
    /// behind (orphans re-parented to keel, the subreaper) get SIGTERM, SIGKILL after
    /// `grace`, and are reaped, so keel exits leaving nothing of its services running and
    /// no zombie. PID 1 does the same at shutdown with kill(-1) (the lifecycle's KillAll).
    pub fn end_orphans(&mut self, grace: std::time::Duration) {
        let left = reap::children();
        if left.is_empty() {
            return;
        }
        self.log(
            Level::Info,
            &format!(
                "{} process(es) left behind by services ({}): sending SIGTERM, SIGKILL after {} s",
                left.len(),
                left.iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                grace.as_secs_f32()
            ),
        );
        for &pid in &left {
            let _ = power::kill_one(pid, nix::sys::signal::Signal::SIGTERM);
        }
        let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        let mut deadline = clock::now().plus_ms(grace_ms);
        let mut killed = false;
        loop {
            reap::drain();
            let still = reap::children();
            if still.is_empty() {
                return;
            }
            let now = clock::now();
            if now >= deadline {
                if killed {
                    // SIGKILL cannot be refused; what is left is in the kernel's hands.
                    self.log(Level::Info, "processes survived SIGKILL; exiting anyway");
                    return;
                }
                self.log(
                    Level::Info,
                    &format!("{} process(es) ignored SIGTERM: SIGKILL", still.len()),
                );
                for pid in still {
                    let _ = power::kill_one(pid, nix::sys::signal::Signal::SIGKILL);
                }
                killed = true;
                deadline = now.plus_ms(grace_ms);
                continue;
            }
            // Sleep until a child ends (SIGCHLD on the signalfd) or the deadline.
            let wait = u16::try_from(deadline.since(now).min(1000)).unwrap_or(1000);
            match &self.sfd {
                Some(sfd) => {
                    let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
                    let _ = poll(&mut fds, PollTimeout::from(wait));
                    let _ = signals::read_pending(sfd);
                }
                None => {
                    let _ = poll(&mut [], PollTimeout::from(wait.min(20)));
                }
            }
        }
    }

    /// Removes the sockets `keel supervise` made (PID 1's live in a tmpfs).
    pub fn cleanup(&mut self) {
        if let Some(l) = self.listener.take() {
            let _ = std::fs::remove_file(&l.path);
        }
        self.groups.cleanup();
        for io in &mut self.io {
            io.notify = None;
            if let Some(p) = io.notify_path.take() {
                let _ = std::fs::remove_file(p);
            }
        }
    }

    /// Drops to the emergency shell (after a panic in keel).
    pub fn emergency(&mut self, what: &str) {
        self.lc_event(lifecycle::Event::Emergency(what.to_string(), Cause::Panic));
    }

    fn log(&self, level: Level, msg: &str) {
        match self.mode {
            Mode::Pid1 => log::log(level, msg),
            Mode::Supervise => {
                if level == Level::Info || std::env::var_os("KEEL_DEBUG").is_some() {
                    use std::io::Write;
                    let (secs, micros) = clock::since_boot();
                    // The same lines as PID 1's log: escaped, cut to fit a kmsg record.
                    let text: String = log::lines(msg)
                        .iter()
                        .map(|l| log::console_line(secs, micros, l))
                        .collect();
                    // A closed stderr must not end the loop (eprint! would panic).
                    let _ = std::io::stderr().write_all(text.as_bytes());
                }
            }
        }
    }

    fn sup_event(&mut self, ev: SupEvent) {
        let Some(sup) = &mut self.sup else { return };
        let mut out = Vec::new();
        sup.handle(ev, to_sup(clock::now()), &mut out);
        self.run(out.into_iter().map(Work::Sup).collect());
    }

    fn lc_event(&mut self, ev: lifecycle::Event) {
        let Some(lc) = &mut self.lc else { return };
        let out = lc.handle(ev, clock::now());
        self.run(out.into_iter().map(Work::Lc).collect());
    }

    /// Carries out actions, and the actions that follow from them, in order.
    fn run(&mut self, work: VecDeque<Work>) {
        let mut queue = work;
        while let Some(w) = queue.pop_front() {
            let follow = match w {
                Work::Sup(a) => self.do_sup(a),
                Work::Lc(a) => self.do_lc(a),
            };
            queue.extend(follow);
        }
    }

    fn sup_handle(&mut self, ev: SupEvent) -> Vec<Work> {
        let Some(sup) = &mut self.sup else {
            return Vec::new();
        };
        let mut out = Vec::new();
        sup.handle(ev, to_sup(clock::now()), &mut out);
        out.into_iter().map(Work::Sup).collect()
    }

    fn lc_handle(&mut self, ev: lifecycle::Event) -> Vec<Work> {
        let Some(lc) = &mut self.lc else {
            return Vec::new();
        };
        lc.handle(ev, clock::now())
            .into_iter()
            .map(Work::Lc)
            .collect()
    }

    fn do_sup(&mut self, a: SupAction) -> Vec<Work> {
        match a {
            SupAction::Spawn(svc, spec) => {
                let ev = self.spawn_service(svc, &spec);
                self.sup_handle(ev)
            }
            SupAction::Kill { pid, sig } => {
                if let Err(e) = crate::sys::kill(pid.0, sig.0) {
                    self.log(Level::Debug, &format!("kill {pid} {sig}: {e}"));
                }
                Vec::new()
            }
            SupAction::SignalGroup { svc, pid, sig } => {
                if let Err(e) = self.groups.signal(svc, pid, sig) {
                    self.log(Level::Debug, &e);
                }
                Vec::new()
            }
            SupAction::KillGroup { svc, pid } => {
                if let Err(e) = self.groups.kill(svc, pid) {
                    self.log(Level::Info, &e);
                }
                Vec::new()
            }
            SupAction::ReleaseGroup { svc } => {
                // The group's emptiness comes as for any watched group (cgroup.events).
                self.release_group(svc);
                Vec::new()
            }
            SupAction::Reply(conn, mut resp) => {
                if let Response::Status(rows) = &mut resp {
                    self.fill_usage(rows);
                }
                if conn != INTERNAL
                    && let Some(c) = self.conns.get_mut(&conn.0)
                {
                    c.queue(resp.encode().as_bytes());
                }
                Vec::new()
            }
            SupAction::Log(Record::Note(text)) => {
                self.log(Level::Info, &text);
                Vec::new()
            }
            SupAction::Log(Record::Output { name, line, .. }) => {
                self.log(Level::Info, &format!("{name}: {line}"));
                Vec::new()
            }
            SupAction::Emergency { svc, why } => match self.mode {
                Mode::Pid1 => {
                    let name = self
                        .sup
                        .as_ref()
                        .and_then(|s| s.config(svc))
                        .map(|c| c.name.clone());
                    let cause = name.map_or(Cause::Panic, Cause::Service);
                    self.lc_handle(lifecycle::Event::Emergency(why, cause))
                }
                Mode::Supervise => {
                    self.log(
                        Level::Info,
                        &format!("EMERGENCY: {why} (keel supervise has no emergency shell)"),
                    );
                    Vec::new()
                }
            },
            SupAction::Halt(kind) => match self.mode {
                Mode::Pid1 => {
                    let mut w = Vec::new();
                    if self
                        .lc
                        .as_ref()
                        .is_some_and(|l| l.shutting_down().is_none())
                    {
                        // The supervisor decided to stop by itself (on_give_up = "reboot").
                        w.extend(self.lc_handle(lifecycle::Event::Power(power_kind(kind))));
                    }
                    w.extend(self.lc_handle(lifecycle::Event::ServicesStopped));
                    w
                }
                Mode::Supervise => {
                    self.finished = true;
                    Vec::new()
                }
            },
        }
    }

    fn do_lc(&mut self, a: lifecycle::Action) -> Vec<Work> {
        use lifecycle::Action;
        match a {
            Action::Log(level, msg) => {
                self.log(level, &msg);
                Vec::new()
            }
            Action::Summary(cause) => {
                self.summary(&cause);
                Vec::new()
            }
            Action::Resume(cause) => {
                let ev = match self.resume(&cause) {
                    Ok(()) => lifecycle::Event::Resumed,
                    Err(why) => lifecycle::Event::ResumeFailed(why),
                };
                let mut w = self.lc_handle(ev);
                if self.lc.as_ref().is_some_and(|l| !l.in_emergency()) {
                    w.extend(self.sup_handle(SupEvent::Deadline));
                }
                w
            }
            Action::SpawnShell(kind) => {
                let password = kind == ShellKind::Emergency
                    && crate::sys::fs::read_to_string(SHADOW)
                        .is_ok_and(|t| lifecycle::root_has_password(&t));
                if kind == ShellKind::Emergency {
                    self.log(
                        Level::Info,
                        if password {
                            "root has a password: give it to sulogin for the emergency shell (Ctrl-D leaves it)"
                        } else {
                            "no root password is set: the emergency shell opens without one"
                        },
                    );
                }
                let ev = match spawn::spawn(&shell_spec_with(kind, &self.tty, password)) {
                    Ok(pid) => lifecycle::Event::Spawned { pid },
                    Err(e) => lifecycle::Event::SpawnFailed {
                        error: e.to_string(),
                    },
                };
                self.lc_handle(ev)
            }
            Action::ReleaseConsole => {
                let names: Vec<String> = self
                    .io
                    .iter()
                    .filter(|io| io.owns_tty)
                    .map(|io| io.name.clone())
                    .collect();
                let mut w = Vec::new();
                for n in names {
                    w.extend(self.sup_handle(SupEvent::Control(INTERNAL, Request::Stop(n))));
                }
                w
            }
            Action::StopServices(kind) => {
                if self.sup.is_some() {
                    self.sup_handle(SupEvent::Shutdown(sup_kind(kind)))
                } else {
                    self.lc_handle(lifecycle::Event::ServicesStopped)
                }
            }
            Action::Kill { pid, sig } => {
                if let Err(e) = power::kill_one(pid, sig) {
                    self.log(Level::Debug, &format!("kill {pid} {sig}: {e}"));
                }
                Vec::new()
            }
            Action::KillAll(sig) => match power::kill_all(sig) {
                Err(Errno::ESRCH) => self.lc_handle(lifecycle::Event::NoChildren),
                Err(e) => {
                    self.log(
                        Level::Info,
                        &format!("cannot send {sig} to all processes: {e}"),
                    );
                    Vec::new()
                }
                Ok(()) => Vec::new(),
            },
            Action::Finish(kind) => {
                self.finish(kind);
                Vec::new()
            }
        }
    }

    /// Carries out `Action::Spawn`; returns the event to report at once.
    fn spawn_service(&mut self, svc: SvcId, spec: &supervisor::event::SpawnSpec) -> SupEvent {
        let Some(io) = self.io.get(svc.0) else {
            return SupEvent::SpawnFailed {
                svc,
                errno: libc::EINVAL,
            };
        };
        let fail = |d: &Driver, why: String, errno: i32| {
            d.log(Level::Info, &format!("cannot start {}: {why}", spec.name));
            SupEvent::SpawnFailed { svc, errno }
        };
        let creds = if spec.user.is_some() || spec.group.is_some() {
            match users::resolve(spec.user.as_deref(), spec.group.as_deref()) {
                Ok(c) => Some(c),
                Err(e) => return fail(self, e, libc::EINVAL),
            }
        } else {
            None
        };
        let caps = match &spec.capabilities {
            None => None,
            Some(names) => match caps::mask(names) {
                Ok(m) => Some(m),
                Err(n) => {
                    return fail(self, format!("unknown capability {n:?}"), libc::EINVAL);
                }
            },
        };
        let home = if creds.as_ref().is_none_or(|c| c.uid == 0) {
            "/root"
        } else {
            "/"
        };
        let tty = io.console.then(|| self.tty.clone());
        let env = service_env(home, tty.as_deref(), io.notify_path.as_deref(), &spec.env);
        let (read_end, write_end) = if io.console {
            (None, None)
        } else {
            match pipe::new() {
                Ok((r, w)) => (Some(r), Some(w)),
                Err(e) => return fail(self, format!("cannot make its log pipe: {e}"), e as i32),
            }
        };
        let ready = io.ready;
        let procs = match self.groups.prepare(svc) {
            Ok(fd) => fd,
            Err(why) => return fail(self, why, libc::EPERM),
        };
        let limits = self.groups.limits(svc).cloned().unwrap_or_default();
        let sys_spec = SpawnSpec {
            tty,
            output: write_end.as_ref().map(AsRawFd::as_raw_fd),
            creds,
            caps,
            cgroup: procs.as_ref().map(AsRawFd::as_raw_fd),
            rlimits: crate::groups::rlimits(&limits),
            umask: limits.umask,
            cwd: limits.workdir.clone().unwrap_or_else(|| "/".to_string()),
            ..SpawnSpec::new(spec.argv.clone(), env)
        };
        let result = spawn::spawn(&sys_spec);
        // The child has its copies; keel's write end must go, or EOF never comes.
        drop(write_end);
        drop(procs);
        match result {
            Ok(pid) => {
                if sys_spec.tty.is_some() {
                    // The marker tests and people wait for (the contract's wording).
                    self.log(
                        Level::Info,
                        &format!(
                            "console shell on {} (service {}, pid {pid})",
                            self.tty, spec.name
                        ),
                    );
                }
                self.pids.insert(pid, svc);
                self.groups.spawned(svc);
                if let Some(r) = read_end {
                    self.pipes.push((svc, r));
                }
                if let Some(io) = self.io.get_mut(svc.0) {
                    io.probe = match ready {
                        Ready::Tcp(port) => Some(Probe {
                            port,
                            next_at: clock::now(),
                        }),
                        Ready::Started | Ready::Notify | Ready::Exit => None,
                    };
                }
                SupEvent::Spawned { svc, pid: Pid(pid) }
            }
            Err(e) => fail(self, format!("fork failed: {e}"), e as i32),
        }
    }

    fn finish(&mut self, kind: PowerKind) {
        let began = clock::now();
        self.log(Level::Debug, "syncing filesystems");
        power::sync();
        self.release_state_disk();
        power::sync();
        let finish_ms = clock::now().since(began);
        let rows = self
            .sup
            .as_ref()
            .map(Supervisor::shutdown_report)
            .unwrap_or_default();
        let times = self
            .lc
            .as_ref()
            .map(Lifecycle::phase_times)
            .unwrap_or_default();
        for line in lifecycle::render_report(kind, &rows, times, finish_ms) {
            self.log(Level::Info, &line);
        }
        self.disarm_watchdog();
        let e = power::finish(kind, false);
        self.log(
            Level::Info,
            &format!("reboot(2) for {} failed: {e}", kind.verb()),
        );
        if kind != PowerKind::Reboot {
            let e = power::finish(PowerKind::Reboot, false);
            self.log(Level::Info, &format!("reboot(2) failed again: {e}"));
        }
        self.log(
            Level::Info,
            "EMERGENCY: the kernel refused to stop the machine; keel keeps running and reaping",
        );
        self.stuck = true;
    }

    /// Unmounts the state disk, or remounts it read-only when something still holds it.
    fn release_state_disk(&self) {
        let dir = crate::applets::state::STATE_DIR;
        let info = crate::sys::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let Some((source, _)) = crate::applets::state::mounted_at(&info, dir) else {
            self.log(Level::Debug, &format!("no state disk on {dir}"));
            return;
        };
        match power::release_mount(dir) {
            Ok(power::Released::Unmounted) => {
                self.log(
                    Level::Info,
                    &format!("unmounted the state disk {source} from {dir}"),
                );
            }
            Ok(power::Released::RemountedReadOnly) => self.log(
                Level::Info,
                &format!("the state disk {source} on {dir} is busy: remounted read-only"),
            ),
            Err(e) => self.log(
                Level::Info,
                &format!(
                    "cannot unmount or remount read-only the state disk {source} on {dir}: {e}"
                ),
            ),
        }
    }

    /// The emergency summary on every console: the failed service's last log lines, and
    /// what happens when the shell exits.
    fn summary(&self, cause: &Cause) {
        if let (Cause::Service(name), Some(sup)) = (cause, &self.sup)
            && let Some(svc) = sup.find(name)
        {
            let tail = sup.log_tail(svc, SUMMARY_LINES);
            if tail.is_empty() {
                self.log(Level::Info, &format!("{name} wrote nothing to its log"));
            } else {
                self.log(
                    Level::Info,
                    &format!("the last {} lines of {name}'s log:", tail.len()),
                );
                for line in tail {
                    self.log(Level::Info, &format!("  {name}| {line}"));
                }
            }
        }
        let after = match cause {
            Cause::Requested => "when the shell exits, the boot goes on",
            Cause::Config => {
                "fix the config in the shell: when it exits, keel reads it again and goes on if it is valid, else reboots"
            }
            Cause::Service(_) => {
                "when the shell exits, keel starts the service again (and reboots if it gives up again without a shell)"
            }
            Cause::Panic => "when the shell exits, the console comes back and keel goes on",
            Cause::Boot => "when the shell exits, the machine reboots",
        };
        self.log(Level::Info, after);
    }

    /// Goes on after the emergency shell exited: Err says why it cannot.
    fn resume(&mut self, cause: &Cause) -> Result<(), String> {
        match cause {
            Cause::Boot => Err("the boot failed in a step keel cannot redo".into()),
            Cause::Requested | Cause::Config if self.sup.is_none() => {
                let mut cfg = crate::boot::load_appliance(&mut crate::sys::linux::LinuxSys)?;
                cfg.expand_consoles(&self.consoles);
                if let Some(what) =
                    crate::boot::load_modules(&mut crate::sys::linux::LinuxSys, &cfg)
                {
                    return Err(what);
                }
                if let Err(e) = crate::sys::fs::mkdir(RUN_DIR, 0o711) {
                    self.log(Level::Info, &format!("cannot create {RUN_DIR}: {e}"));
                }
                self.start_supervisor(&cfg, CONTROL_PATH, &format!("{RUN_DIR}/notify"));
                Ok(())
            }
            Cause::Requested | Cause::Config | Cause::Panic | Cause::Service(_) => {
                // The console services were stopped for the shell: start them again, and
                // the given-up service (a manual start forgets its failures).
                let mut names: Vec<String> = self
                    .io
                    .iter()
                    .filter(|io| io.owns_tty)
                    .map(|io| io.name.clone())
                    .collect();
                if let Cause::Service(n) = cause {
                    names.push(n.clone());
                }
                for n in names {
                    let w = self.sup_handle(SupEvent::Control(INTERNAL, Request::Start(n)));
                    self.run(w.into());
                }
                Ok(())
            }
        }
    }

    fn next_deadline(&self) -> Option<clock::Mono> {
        let lc = self.lc.as_ref().and_then(Lifecycle::next_deadline);
        let sup = self
            .sup
            .as_ref()
            .and_then(Supervisor::next_deadline)
            .map(|m| clock::Mono(m.0));
        let probes = self
            .io
            .iter()
            .filter_map(|io| io.probe.as_ref())
            .map(|p| p.next_at)
            .min();
        [
            lc,
            sup,
            probes,
            self.accept_paused_until,
            self.watchdog_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// A connection has a request waiting in keel's buffer that it may take now (the poll
    /// must not wait: no new byte will come to wake it).
    fn requests_waiting(&self) -> bool {
        self.conns
            .values()
            .any(|c| c.takes_requests() && c.has_line())
    }

    /// Runs one round of the loop: wait for something to happen or the next deadline,
    /// then handle everything that is due. Never blocks past the nearest deadline.
    pub fn step(&mut self) {
        if self.test_panic {
            self.test_panic = false;
            panic!(
                "deliberate panic requested by {} on the kernel command line",
                crate::boot::TEST_PANIC
            );
        }
        let now = clock::now();
        if self.accept_paused_until.is_some_and(|at| now >= at) {
            self.accept_paused_until = None;
        }
        let timeout = match (self.stuck, self.next_deadline()) {
            _ if self.requests_waiting() => PollTimeout::ZERO,
            (true, _) | (false, None) => PollTimeout::NONE,
            (false, Some(at)) => {
                let ms = at.since(now).min(i32::MAX as u64);
                PollTimeout::try_from(ms as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let ready = self.poll_all(timeout);

        let signals = match &self.sfd {
            Some(sfd) if ready.signal => signals::read_pending(sfd),
            _ => Vec::new(),
        };
        for signo in signals {
            self.on_signal(signo);
        }
        self.read_buttons(&ready.buttons);
        for i in ready.pipes.into_iter().rev() {
            self.read_pipe(i);
        }
        self.reap();
        for svc in ready.groups {
            self.check_group(svc);
        }
        for svc in ready.notify {
            self.read_notify(svc);
        }
        self.run_probes();
        let mut pump: Vec<u64> = ready.conns;
        pump.extend(
            self.conns
                .iter()
                .filter(|(_, c)| c.takes_requests() && c.has_line())
                .map(|(id, _)| *id),
        );
        pump.sort_unstable();
        pump.dedup();
        for id in pump {
            self.read_conn(id);
        }
        if ready.listener {
            // Connections that just closed make room first.
            self.flush_conns();
            self.accept();
        }
        // Timers: both cores fire what is due at `now`.
        self.sup_event(SupEvent::Deadline);
        self.lc_event(lifecycle::Event::Tick);
        self.check_console_released();
        self.flush_conns();
        self.pet_watchdog();
    }

    fn poll_all(&self, timeout: PollTimeout) -> Woken {
        let mut fds: Vec<PollFd> = Vec::new();
        let mut what: Vec<Source> = Vec::new();
        if let Some(sfd) = &self.sfd {
            fds.push(PollFd::new(sfd.as_fd(), PollFlags::POLLIN));
            what.push(Source::Signal);
        }
        if let (Some(l), None) = (&self.listener, self.accept_paused_until) {
            fds.push(PollFd::new(l.fd.as_fd(), PollFlags::POLLIN));
            what.push(Source::Listener);
        }
        for (id, c) in &self.conns {
            let mut flags = PollFlags::empty();
            if c.wants_read() {
                flags |= PollFlags::POLLIN;
            }
            if c.wants_write() {
                flags |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(c.fd.as_fd(), flags));
            what.push(Source::Conn(*id));
        }
        for (i, (_, fd)) in self.pipes.iter().enumerate() {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            what.push(Source::Pipe(i));
        }
        for (i, io) in self.io.iter().enumerate() {
            if let Some(fd) = &io.notify {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                what.push(Source::Notify(SvcId(i)));
            }
        }
        for (i, b) in self.buttons.iter().enumerate() {
            fds.push(PollFd::new(b.file.as_fd(), PollFlags::POLLIN));
            what.push(Source::Button(i));
        }
        for (svc, fd) in self.groups.watched() {
            fds.push(PollFd::new(fd, PollFlags::POLLPRI));
            what.push(Source::Group(svc));
        }
        let timeout = if self.sfd.is_none() && timeout == PollTimeout::NONE {
            // No signalfd: wake up each second to reap.
            PollTimeout::from(1000u16)
        } else {
            timeout
        };
        let mut ready = Woken::default();
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => self.log(Level::Debug, &format!("poll failed: {e}")),
        }
        for (fd, src) in fds.iter().zip(what) {
            let Some(ev) = fd.revents() else { continue };
            if ev.is_empty() {
                continue;
            }
            match src {
                Source::Signal => ready.signal = true,
                Source::Listener => ready.listener = true,
                Source::Conn(id) => ready.conns.push(id),
                Source::Pipe(i) => ready.pipes.push(i),
                Source::Notify(s) => ready.notify.push(s),
                Source::Button(i) => ready.buttons.push(i),
                Source::Group(s) => ready.groups.push(s),
            }
        }
        ready
    }

    fn on_signal(&mut self, signo: i32) {
        match self.mode {
            Mode::Pid1 => {
                if let Some(kind) = power_request(signo) {
                    self.lc_event(lifecycle::Event::Power(kind));
                } else if signo != libc::SIGCHLD {
                    self.log(Level::Debug, &format!("ignored signal {signo}"));
                }
            }
            Mode::Supervise => {
                if signo == libc::SIGTERM || signo == libc::SIGINT || signo == libc::SIGHUP {
                    self.log(
                        Level::Info,
                        &format!("signal {signo}: stopping every service"),
                    );
                    self.sup_event(SupEvent::Shutdown(supervisor::PowerKind::PowerOff));
                }
            }
        }
    }

    /// Reads the power buttons that woke up; a press asks for a poweroff.
    fn read_buttons(&mut self, woken: &[usize]) {
        let mut pressed = false;
        for &i in woken.iter().rev() {
            let Some(b) = self.buttons.get_mut(i) else {
                continue;
            };
            match input::read_button(b) {
                Ok(p) => pressed |= p,
                Err(e) => {
                    self.log(Level::Info, &format!("power button lost: {e}"));
                    self.buttons.remove(i);
                }
            }
        }
        if pressed {
            self.log(Level::Info, "power button pressed");
            self.lc_event(lifecycle::Event::Power(PowerKind::PowerOff));
        }
    }

    /// Reads pipe `i`; closes it at EOF. `i` must be valid (callers go high to low).
    fn read_pipe(&mut self, i: usize) {
        let Some((svc, fd)) = self.pipes.get(i) else {
            return;
        };
        let svc = *svc;
        let d = pipe::drain(fd);
        if d.eof {
            self.pipes.remove(i);
        }
        if !d.data.is_empty() {
            self.sup_event(SupEvent::Output { svc, data: d.data });
        }
    }

    /// Reads everything waiting on `svc`'s pipes (before its exit is reported, so its last
    /// words come before the note that it exited).
    fn read_pipes_of(&mut self, svc: SvcId) {
        for i in (0..self.pipes.len()).rev() {
            if self.pipes.get(i).is_some_and(|(s, _)| *s == svc) {
                self.read_pipe(i);
            }
        }
    }

    fn reap(&mut self) {
        let drained = reap::drain();
        for (pid, ended) in drained.ended {
            match self.pids.remove(&pid) {
                Some(svc) => {
                    self.read_pipes_of(svc);
                    if let Some(io) = self.io.get_mut(svc.0) {
                        io.probe = None;
                    }
                    self.main_exited(svc);
                    self.sup_event(SupEvent::Exited {
                        pid: Pid(pid),
                        status: wait_status(ended),
                    });
                }
                None => self.lc_event(lifecycle::Event::Exited { pid, ended }),
            }
        }
        if drained.no_children {
            self.lc_event(lifecycle::Event::NoChildren);
        }
    }

    fn read_notify(&mut self, svc: SvcId) {
        let Some(fd) = self.io.get(svc.0).and_then(|io| io.notify.as_ref()) else {
            return;
        };
        let notices = notify::receive(fd);
        let name = self
            .io
            .get(svc.0)
            .map_or("?", |io| io.name.as_str())
            .to_string();
        for n in notices {
            if let Some(status) = &n.status {
                self.log(Level::Debug, &format!("{name} status: {status}"));
            }
            if n.ready {
                self.sup_event(SupEvent::Ready(svc));
            }
        }
    }

    fn run_probes(&mut self) {
        let now = clock::now();
        let mut ready = Vec::new();
        for (i, io) in self.io.iter_mut().enumerate() {
            let Some(p) = &mut io.probe else { continue };
            if now < p.next_at {
                continue;
            }
            if probe::listening(p.port) {
                ready.push(SvcId(i));
            } else {
                p.next_at = now.plus_ms(PROBE_INTERVAL_MS);
            }
        }
        for svc in ready {
            if let Some(io) = self.io.get_mut(svc.0) {
                io.probe = None;
            }
            self.sup_event(SupEvent::Ready(svc));
        }
    }

    fn accept(&mut self) {
        let own = nix::unistd::geteuid().as_raw();
        for _ in 0..16 {
            let Some(l) = &self.listener else { return };
            let (fd, uid) = match l.accept() {
                Ok(Some(x)) => x,
                Ok(None) => return,
                Err(e @ (Errno::EMFILE | Errno::ENFILE)) => {
                    self.out_of_fds(e);
                    return;
                }
                Err(e) => {
                    self.log(Level::Debug, &format!("accept on the control socket: {e}"));
                    return;
                }
            };
            let now = clock::now();
            let mut conn = Conn::new(fd, now);
            let refusal = match uid {
                Some(0) => None,
                Some(u) if u == own => None,
                Some(u) => Some(format!(
                    "permission denied: the control socket is for root (uid 0); you are uid {u}"
                )),
                None => Some("permission denied: cannot tell who you are (SO_PEERCRED)".into()),
            };
            if refusal.is_none() && self.conns.len() >= MAX_CONNS {
                self.evict_idle(now);
            }
            let refusal = refusal.or_else(|| {
                (self.conns.len() >= MAX_CONNS).then(|| {
                    format!("too many control connections (at most {MAX_CONNS}, each busy or idle less than {} s); try again", IDLE_EVICT_MS / 1000)
                })
            });
            if let Some(why) = refusal {
                conn.queue(Response::Err(why).encode().as_bytes());
                conn.closing = true;
                conn.flush();
                // A refused client gets one try to read the reason; it is not kept.
                continue;
            }
            let id = self.next_conn;
            self.next_conn += 1;
            self.conns.insert(id, conn);
        }
    }

    /// accept found no descriptor. Free the spare to take the waiting connection and tell
    /// it why it is refused (so it does not wait, and the listener is not left readable);
    /// without a spare, stop polling the listener for a while. Either way the loop does
    /// not spin on a connection it cannot take.
    fn out_of_fds(&mut self, e: Errno) {
        let what = format!(
            "keel is out of file descriptors ({e}): control connections are refused until some close"
        );
        if self.spare.take().is_some()
            && let Some(l) = &self.listener
        {
            if let Ok(Some((fd, _))) = l.accept() {
                let mut conn = Conn::new(fd, clock::now());
                conn.queue(Response::Err(what.clone()).encode().as_bytes());
                conn.flush();
            }
            self.spare = control::spare_fd();
        }
        if self.spare.is_none() {
            // No spare (it could not be had again): back off instead.
            self.accept_paused_until = Some(clock::now().plus_ms(ACCEPT_BACKOFF_MS));
        }
        self.log(Level::Debug, &what);
    }

    /// Closes the connection idle longest, if it has been idle [`IDLE_EVICT_MS`] and does
    /// not follow logs, telling it why.
    fn evict_idle(&mut self, now: clock::Mono) {
        let idle = self
            .conns
            .iter()
            .filter(|(_, c)| !c.following && !c.closing && !c.wants_write())
            .filter(|(_, c)| now.since(c.last_active) >= IDLE_EVICT_MS)
            .min_by_key(|(_, c)| c.last_active)
            .map(|(id, _)| *id);
        let Some(id) = idle else { return };
        if let Some(mut c) = self.conns.remove(&id) {
            let why = format!(
                "closed: idle for {} s while every control connection was taken",
                now.since(c.last_active) / 1000
            );
            c.queue(Response::Err(why).encode().as_bytes());
            c.flush();
        }
        self.log(
            Level::Debug,
            "closed an idle control connection to make room for a new one",
        );
        self.sup_event(SupEvent::Closed(ConnId(id)));
    }

    /// Takes the requests of connection `id` one at a time while it keeps up with the
    /// answers, reading more from the socket only when no whole line is buffered: nothing
    /// is dropped, and an input that cannot be a request gets an error reply, then the
    /// connection closes.
    fn read_conn(&mut self, id: u64) {
        for _ in 0..REQUESTS_PER_ROUND {
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            if !c.takes_requests() && c.wants_write() {
                c.flush();
            }
            if !c.takes_requests() {
                return;
            }
            if !c.has_line() {
                c.read(MAX_REQUEST);
            }
            let r = match c.take_line(MAX_REQUEST) {
                None => return,
                Some(Ok(bytes)) => match Request::decode(&bytes) {
                    Ok(r) => r,
                    Err(e) => {
                        c.queue(Response::Err(e.to_string()).encode().as_bytes());
                        c.closing = true;
                        return;
                    }
                },
                Some(Err(Overflow::TooLong)) => {
                    let e = supervisor::proto::ProtoError::TooLong;
                    c.queue(Response::Err(e.to_string()).encode().as_bytes());
                    c.closing = true;
                    return;
                }
            };
            c.last_active = clock::now();
            if matches!(r, Request::Logs { follow: true, .. }) {
                c.following = true;
            }
            self.request(ConnId(id), r);
        }
    }

    fn request(&mut self, conn: ConnId, r: Request) {
        let power = match r {
            Request::PowerOff => Some(PowerKind::PowerOff),
            Request::Reboot => Some(PowerKind::Reboot),
            _ => None,
        };
        if let (Mode::Pid1, Some(kind)) = (self.mode, power) {
            // In PID 1 the lifecycle runs the shutdown (services first, then the rest).
            let reply = Response::Ok(format!("{} requested", kind.verb()));
            if let Some(c) = self.conns.get_mut(&conn.0) {
                c.queue(reply.encode().as_bytes());
            }
            self.lc_event(lifecycle::Event::Power(kind));
            return;
        }
        if self.sup.is_none() {
            if let Some(c) = self.conns.get_mut(&conn.0) {
                let e = Response::Err(
                    "no services are running: the appliance config did not load (see the console)"
                        .into(),
                );
                c.queue(e.encode().as_bytes());
            }
            return;
        }
        self.sup_event(SupEvent::Control(conn, r));
    }

    fn flush_conns(&mut self) {
        let mut gone = Vec::new();
        for (id, c) in &mut self.conns {
            if c.wants_write() {
                c.flush();
            }
            if c.finished() {
                gone.push(*id);
            }
        }
        for id in gone {
            if self.conns.remove(&id).is_some_and(|c| c.overflowed) {
                self.log(
                    Level::Info,
                    &format!(
                        "dropped a control connection more than {} KiB behind on its output (a keelctl logs -f that does not read?)",
                        control::MAX_OUTPUT >> 10
                    ),
                );
            }
            self.sup_event(SupEvent::Closed(ConnId(id)));
        }
    }

    fn check_console_released(&mut self) {
        let releasing = self.lc.as_ref().is_some_and(Lifecycle::releasing_console);
        if !releasing {
            return;
        }
        let console_alive = self
            .pids
            .values()
            .any(|s| self.io.get(s.0).is_some_and(|io| io.owns_tty));
        if !console_alive {
            self.lc_event(lifecycle::Event::ConsoleReleased);
        }
    }
}

/// Which fds came back from poll.
#[derive(Debug, Default)]
struct Woken {
    signal: bool,
    listener: bool,
    conns: Vec<u64>,
    pipes: Vec<usize>,
    notify: Vec<SvcId>,
    buttons: Vec<usize>,
    groups: Vec<SvcId>,
}

#[derive(Debug, Clone, Copy)]
enum Source {
    Signal,
    Listener,
    Conn(u64),
    Pipe(usize),
    Notify(SvcId),
    Button(usize),
    Group(SvcId),
}

fn sup_kind(k: PowerKind) -> supervisor::PowerKind {
    match k {
        PowerKind::PowerOff => supervisor::PowerKind::PowerOff,
        PowerKind::Reboot => supervisor::PowerKind::Reboot,
        PowerKind::Halt => supervisor::PowerKind::Halt,
    }
}

fn power_kind(k: supervisor::PowerKind) -> PowerKind {
    match k {
        supervisor::PowerKind::PowerOff => PowerKind::PowerOff,
        supervisor::PowerKind::Reboot => PowerKind::Reboot,
        supervisor::PowerKind::Halt => PowerKind::Halt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_signals_follow_busybox() {
        assert_eq!(power_request(libc::SIGUSR1), Some(PowerKind::Halt));
        assert_eq!(power_request(libc::SIGUSR2), Some(PowerKind::PowerOff));
        assert_eq!(power_request(libc::SIGTERM), Some(PowerKind::Reboot));
        assert_eq!(power_request(libc::SIGINT), Some(PowerKind::Reboot));
        assert_eq!(power_request(libc::SIGPWR), Some(PowerKind::PowerOff));
        assert_eq!(power_request(libc::SIGCHLD), None);
        assert_eq!(power_request(libc::SIGHUP), None);
    }

    #[test]
    fn shell_has_its_own_session_on_the_tty() {
        let s = shell_spec(ShellKind::Console, "/dev/ttyS0");
        assert_eq!(s.argv, ["/bin/sh", "-l"]);
        assert!(s.setsid);
        assert_eq!(s.tty.as_deref(), Some("/dev/ttyS0"));
        assert!(s.env.contains(&"TERM=vt100".to_string()));
        assert!(!s.env.iter().any(|e| e.starts_with("KEEL_EMERGENCY")));
        let e = shell_spec(ShellKind::Emergency, "/dev/tty0");
        assert!(e.env.contains(&"TERM=linux".to_string()));
        assert!(e.env.contains(&"KEEL_EMERGENCY=1".to_string()));
        assert!(e.env.iter().any(|v| v.starts_with("PS1=(keel emergency)")));
        assert!(!s.env.iter().any(|v| v.starts_with("PS1=")));
    }

    #[test]
    fn service_env_is_minimal_and_the_service_wins() {
        let env = service_env("/root", None, None, &[]);
        assert_eq!(env, [format!("PATH={BASE_PATH}"), "HOME=/root".into()]);
        let env = service_env(
            "/",
            Some("/dev/ttyS0"),
            Some("/run/keel/notify/web"),
            &[("PATH".into(), "/opt/bin".into()), ("A".into(), "b".into())],
        );
        assert_eq!(
            env,
            [
                "HOME=/",
                "TERM=vt100",
                "SHELL=/bin/sh",
                "NOTIFY_SOCKET=/run/keel/notify/web",
                "PATH=/opt/bin",
                "A=b"
            ]
        );
    }
}

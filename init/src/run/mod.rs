//! The main loop and its work queue: poll what the rooms registered, turn what arrived
//! into events for the two pure cores (the supervisor and, in PID 1, the lifecycle), and
//! carry out their actions in order, with the actions that follow from them.
//!
//! The driver has no policy: which service starts, stops or restarts when is
//! `supervisor::core`; the emergency shell and the end of the machine are `lifecycle.rs`.
//! It never sleeps and never waits for a child; its one poll timeout is the nearest of
//! both cores' deadlines (and the rooms'). Errors become log lines; nothing here returns
//! an error or exits. The same loop runs as `keel supervise` (`Host::Supervise`): no
//! lifecycle, no consoles, no reboot; a stop request ends the loop once every service is
//! stopped. The rooms: `host` (PID 1 or supervise), `fds` (the poll registry),
//! `services`, `control`, `group_events`, `watchdog`, `emergency`, `finish`.
#![forbid(unsafe_code)]

mod buttons;
mod control;
mod emergency;
mod fds;
mod finish;
mod group_events;
mod host;
mod services;
mod start;
mod watchdog;

pub use emergency::{SHELL, shell_spec, shell_spec_with, summary_lines};
pub use host::{Host, power_request};
pub use services::{BASE_PATH, service_env};

use crate::boot::Booted;
use crate::groups::Groups;
use crate::lifecycle::{self, Cause, Lifecycle};
use crate::log::{self, Level};
use crate::sys::{clock, reap, signals};
use appliance::ApplianceConfig;
use buttons::Buttons;
use control::{Control, INTERNAL, REQUESTS_PER_ROUND, Routed};
use emergency::Resume;
use fds::{Registry, Source};
use host::Signalled;
use nix::poll::{PollFlags, PollTimeout};
use nix::sys::signalfd::SignalFd;
use services::Services;
use std::collections::VecDeque;
use std::os::fd::AsFd;
use supervisor::PowerKind;
use supervisor::core::Supervisor;
use supervisor::event::{Action as SupAction, ConnId, Event as SupEvent, Record};
use supervisor::proto::{Request, Response};
use supervisor::{Mono, Pid};
use watchdog::Dog;

/// keel's run-time directory: search-only for others (0711), so a service running as
/// another user can reach its own notify socket by name but nobody can list or enter
/// anything else; the control socket in it is 0600 and checked with SO_PEERCRED.
pub const RUN_DIR: &str = "/run/keel";
/// What the `[watchdog]` is doing, one line (`keelctl status` shows it).
pub const WATCHDOG_STATE: &str = "/run/keel/watchdog";
/// The control socket of PID 1.
pub const CONTROL_PATH: &str = "/run/keel/control";

/// A unit of work: an action of either core.
enum Work {
    Sup(SupAction),
    Lc(lifecycle::Action),
}

/// The loop's state: the two cores and the rooms.
pub struct Driver {
    host: Host,
    sfd: Option<SignalFd>,
    /// The lifecycle (PID 1 only).
    lc: Option<Lifecycle>,
    sup: Option<Supervisor>,
    /// The primary console (a /dev path) and every console (names under /dev).
    tty: String,
    consoles: Vec<String>,
    svcs: Services,
    ctl: Control,
    /// The power buttons watched (PID 1 only).
    buttons: Buttons,
    /// Each service's cgroup (groups.rs).
    groups: Groups,
    /// The armed `[watchdog]` (run/watchdog.rs).
    dog: Option<Dog>,
    /// Set once reboot(2) has failed for every mode: keel then only reaps, forever.
    stuck: bool,
    /// `keel.test_panic`: panic once in the next round (a test hook, see `boot::TEST_PANIC`).
    test_panic: bool,
    /// Supervise mode: the loop is over (every service stopped after a stop request).
    finished: bool,
}

impl Driver {
    /// PID 1's driver: the signalfd, the lifecycle from the boot's result, and the
    /// supervisor with the control socket when the boot left a config and no fatal error.
    pub fn new(booted: &Booted) -> Driver {
        if let Err(e) = signals::block_all() {
            log::info(&format!("cannot block signals: {e}"));
        }
        let tty = booted.consoles.primary_path();
        let mut d = Driver::bare(Host::Pid1, tty.clone(), booted.test_panic);
        d.consoles = booted.consoles.all.clone();
        let fatal = booted.fatal.as_deref().map(|f| (f, booted.cause.clone()));
        let (lc, first) = Lifecycle::new(&tty, fatal, booted.emergency, clock::now());
        d.lc = Some(lc);
        d.buttons = Buttons::open(d.host);
        if let (Some(cfg), None) = (&booted.config, &booted.fatal) {
            d.start_pid1_supervisor(cfg);
        }
        d.run(first.into_iter().map(Work::Lc).collect());
        d.sup_event(SupEvent::Deadline);
        d
    }

    /// `keel supervise`'s driver: services from `cfg`, control socket at `socket`, notify
    /// sockets in `notify/` next to it. Fails only when the control socket cannot be made.
    /// `cgroups`: put services in cgroups when the host allows it.
    pub fn supervise(cfg: &ApplianceConfig, socket: &str, cgroups: bool) -> Result<Driver, String> {
        if let Err(e) = signals::block_all() {
            return Err(format!("cannot block signals: {e}"));
        }
        let dir = start::socket_dir(socket)?;
        let mut d = Driver::bare(Host::Supervise { cgroups }, String::new(), false);
        if d.sfd.is_none() {
            return Err("cannot create a signalfd".into());
        }
        if !d.start_supervisor(cfg, socket, &format!("{dir}/notify")) {
            return Err(format!(
                "cannot listen on {socket}: is another keel running there? pick another --socket"
            ));
        }
        d.sup_event(SupEvent::Deadline);
        Ok(d)
    }

    fn bare(host: Host, tty: String, test_panic: bool) -> Driver {
        let sfd = start::signal_fd();
        Driver {
            host,
            sfd,
            lc: None,
            sup: None,
            tty,
            consoles: Vec::new(),
            svcs: Services::default(),
            ctl: Control::new(),
            buttons: Buttons::default(),
            groups: Groups::none(),
            dog: None,
            stuck: false,
            test_panic,
            finished: false,
        }
    }

    /// PID 1's supervisor: /run/keel, its notify sockets and control socket.
    fn start_pid1_supervisor(&mut self, cfg: &ApplianceConfig) {
        if let Err(e) = crate::sys::fs::mkdir(RUN_DIR, 0o711) {
            self.host
                .log(Level::Info, &format!("cannot create {RUN_DIR}: {e}"));
        }
        self.start_supervisor(cfg, CONTROL_PATH, &format!("{RUN_DIR}/notify"));
    }

    /// Sets up the supervisor, the groups, the notify sockets, the watchdog and the
    /// control socket. False when the control socket could not be made.
    fn start_supervisor(&mut self, cfg: &ApplianceConfig, socket: &str, notify_dir: &str) -> bool {
        let started = start::supervised(cfg, self.host, &self.consoles, notify_dir);
        self.groups = started.groups;
        self.svcs = started.svcs;
        self.dog = started.dog;
        self.sup = Some(started.sup);
        self.ctl.listen(socket, self.host)
    }

    /// When /init started, for the supervisor's boot timeline.
    pub fn set_init_time(&mut self, at: Mono) {
        if let Some(sup) = &mut self.sup {
            sup.set_init_time(at);
        }
    }

    /// True once `keel supervise` has stopped every service after a stop request.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// `keel supervise`'s end: the orphans its services left (see `finish::end_orphans`).
    pub fn end_orphans(&mut self, grace: std::time::Duration) {
        finish::end_orphans(self.sfd.as_ref(), grace, self.host);
    }

    /// Removes the sockets `keel supervise` made (PID 1's live in a tmpfs).
    pub fn cleanup(&mut self) {
        self.ctl.cleanup();
        self.groups.cleanup();
        self.svcs.cleanup();
    }

    /// Drops to the emergency shell (after a panic in keel).
    pub fn emergency(&mut self, what: &str) {
        self.lc_event(lifecycle::Event::Emergency(what.to_string(), Cause::Panic));
    }

    fn log(&self, level: Level, msg: &str) {
        self.host.log(level, msg);
    }

    /// Hands `ev` to the supervisor and carries out what follows.
    fn sup_event(&mut self, ev: SupEvent) {
        let w = self.sup_handle(ev);
        self.run(w.into());
    }

    /// Hands each of `evs` to the supervisor in turn.
    fn sup_events(&mut self, evs: Vec<SupEvent>) {
        for ev in evs {
            self.sup_event(ev);
        }
    }

    /// Hands `ev` to the lifecycle and carries out what follows.
    fn lc_event(&mut self, ev: lifecycle::Event) {
        let w = self.lc_handle(ev);
        self.run(w.into());
    }

    /// The work queue: carries out actions, and the actions that follow from them, in
    /// order.
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
        sup.handle(ev, clock::now(), &mut out);
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
                let ev = self
                    .svcs
                    .spawn(svc, &spec, &mut self.groups, &self.tty, self.host);
                return self.sup_handle(ev);
            }
            a @ (SupAction::Kill { .. }
            | SupAction::SignalGroup { .. }
            | SupAction::KillGroup { .. }
            | SupAction::ReleaseGroup { .. }) => {
                group_events::carry_out(&mut self.groups, self.sup.as_ref(), a, self.host)
            }
            SupAction::Reply(conn, mut resp) => {
                if let Response::Status(rows) = &mut resp {
                    group_events::fill_usage(&self.groups, self.sup.as_ref(), rows);
                }
                self.ctl.reply(conn, &resp);
            }
            SupAction::Log(Record::Note(text)) => self.log(Level::Info, &text),
            SupAction::Log(Record::Output { name, line, .. }) => {
                self.log(Level::Info, &format!("{name}: {line}"));
            }
            SupAction::Emergency { svc, why } if self.lc.is_some() => {
                let name = self.sup.as_ref().and_then(|s| s.config(svc));
                let cause = name.map_or(Cause::Panic, |c| Cause::Service(c.name.clone()));
                return self.lc_handle(lifecycle::Event::Emergency(why, cause));
            }
            SupAction::Emergency { why, .. } => self.log(
                Level::Info,
                &format!("EMERGENCY: {why} (keel supervise has no emergency shell)"),
            ),
            SupAction::Halt(kind) if self.lc.is_some() => {
                let mut w = Vec::new();
                if self
                    .lc
                    .as_ref()
                    .is_some_and(|l| l.shutting_down().is_none())
                {
                    // The supervisor decided to stop by itself (on_give_up = "reboot").
                    w.extend(self.lc_handle(lifecycle::Event::Power(kind)));
                }
                w.extend(self.lc_handle(lifecycle::Event::ServicesStopped));
                return w;
            }
            SupAction::Halt(_) => self.finished = true,
        }
        Vec::new()
    }

    fn do_lc(&mut self, a: lifecycle::Action) -> Vec<Work> {
        use lifecycle::Action;
        match a {
            Action::Log(level, msg) => self.log(level, &msg),
            Action::Summary(cause) => {
                for line in emergency::summary(&cause, self.sup.as_ref()) {
                    self.log(Level::Info, &line);
                }
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
                return w;
            }
            Action::SpawnShell(kind) => {
                let ev = emergency::spawn_shell(kind, &self.tty, self.host);
                return self.lc_handle(ev);
            }
            Action::ReleaseConsole => {
                let mut w = Vec::new();
                for n in self.svcs.tty_holders() {
                    w.extend(self.sup_handle(SupEvent::Control(INTERNAL, Request::Stop(n))));
                }
                return w;
            }
            Action::StopServices(kind) if self.sup.is_some() => {
                return self.sup_handle(SupEvent::Shutdown(kind));
            }
            Action::StopServices(_) => return self.lc_handle(lifecycle::Event::ServicesStopped),
            Action::Kill { pid, sig } => finish::kill(pid, sig, self.host),
            Action::KillAll(sig) => {
                if finish::kill_all(sig, self.host) {
                    return self.lc_handle(lifecycle::Event::NoChildren);
                }
            }
            Action::Finish(kind) => {
                finish::finish(
                    kind,
                    self.sup.as_ref(),
                    self.lc.as_ref(),
                    &mut self.dog,
                    self.host,
                );
                self.stuck = true;
            }
        }
        Vec::new()
    }

    /// Goes on after the emergency shell exited: Err says why it cannot.
    fn resume(&mut self, cause: &Cause) -> Result<(), String> {
        match emergency::resume(cause, self.sup.is_some(), self.svcs.tty_holders())? {
            Resume::Reload => {
                let cfg = start::reload(&self.consoles)?;
                self.start_pid1_supervisor(&cfg);
            }
            Resume::Start(names) => {
                for n in names {
                    self.sup_event(SupEvent::Control(INTERNAL, Request::Start(n)));
                }
            }
        }
        Ok(())
    }

    fn next_deadline(&self) -> Option<Mono> {
        let lc = self.lc.as_ref().and_then(Lifecycle::next_deadline);
        let sup = self.sup.as_ref().and_then(Supervisor::next_deadline);
        [
            lc,
            sup,
            self.svcs.probe_deadline(),
            self.ctl.deadline(),
            self.dog.as_ref().map(Dog::deadline),
        ]
        .into_iter()
        .flatten()
        .min()
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
        self.ctl.unpause(now);
        let due = (!self.ctl.waiting().is_empty()).then_some(now);
        let deadline = if self.stuck {
            None
        } else {
            self.next_deadline()
        };
        let ready = self.poll_all(fds::timeout(now, due.or(deadline), self.sfd.is_some()));
        if ready.consoles {
            crate::log::flush_backlog();
        }

        let signals = match &self.sfd {
            Some(sfd) if ready.signal => signals::read_pending(sfd),
            _ => Vec::new(),
        };
        for signo in signals {
            self.on_signal(signo);
        }
        if self.buttons.read(&ready.buttons, self.host) {
            self.lc_event(lifecycle::Event::Power(PowerKind::PowerOff));
        }
        for i in ready.pipes.into_iter().rev() {
            let ev = self.svcs.read_pipe(i);
            self.sup_events(ev.into_iter().collect());
        }
        self.reap();
        for svc in ready.groups {
            let evs = group_events::check_group(&mut self.groups, &mut self.svcs, svc);
            self.sup_events(evs);
        }
        for svc in ready.notify {
            let evs = self.svcs.read_notify(svc, self.host);
            self.sup_events(evs);
        }
        let evs = self.svcs.run_probes(clock::now());
        self.sup_events(evs);
        let mut pump: Vec<u64> = ready.conns;
        pump.extend(self.ctl.waiting());
        pump.sort_unstable();
        pump.dedup();
        for id in pump {
            self.read_conn(id);
        }
        if ready.listener {
            // Connections that just closed make room first.
            self.flush_conns();
            let evicted = self.ctl.accept(self.host);
            self.sup_events(evicted.into_iter().map(SupEvent::Closed).collect());
        }
        // Timers: both cores fire what is due at `now`.
        self.sup_event(SupEvent::Deadline);
        self.lc_event(lifecycle::Event::Tick);
        if self.lc.as_ref().is_some_and(Lifecycle::releasing_console) && !self.svcs.tty_held() {
            self.lc_event(lifecycle::Event::ConsoleReleased);
        }
        self.flush_conns();
        if let Some(dog) = &mut self.dog {
            dog.pet(self.sup.as_ref(), self.host);
        }
    }

    fn poll_all(&self, timeout: PollTimeout) -> fds::Woken {
        // Consoles with log lines they have not taken yet: woken when they have room.
        let consoles = crate::log::backlogged();
        let mut reg = Registry::default();
        for fd in &consoles {
            reg.add(fd.as_fd(), PollFlags::POLLOUT, Source::Console);
        }
        if let Some(sfd) = &self.sfd {
            reg.add(sfd.as_fd(), PollFlags::POLLIN, Source::Signal);
        }
        self.ctl.register(&mut reg);
        self.svcs.register(&mut reg);
        self.buttons.register(&mut reg);
        for (svc, fd) in self.groups.watched() {
            reg.add(fd, PollFlags::POLLPRI, Source::Group(svc));
        }
        reg.poll(timeout, self.host)
    }

    fn on_signal(&mut self, signo: i32) {
        match self.host.signalled(signo) {
            Signalled::Power(kind) => self.lc_event(lifecycle::Event::Power(kind)),
            Signalled::StopAll => {
                self.log(
                    Level::Info,
                    &format!("signal {signo}: stopping every service"),
                );
                self.sup_event(SupEvent::Shutdown(PowerKind::PowerOff));
            }
            Signalled::Ignored => self.log(Level::Debug, &format!("ignored signal {signo}")),
            Signalled::Nothing => {}
        }
    }

    /// The one reaper's harvest: a service's main process (its last output first, then
    /// its group, then `Exited`), or the lifecycle's (shells, orphans).
    fn reap(&mut self) {
        let drained = reap::drain();
        for (pid, status) in drained.ended {
            match self.svcs.ended(pid) {
                Some(svc) => {
                    let evs = group_events::main_ended(&mut self.groups, &mut self.svcs, svc);
                    self.sup_events(evs);
                    self.sup_event(SupEvent::Exited {
                        pid: Pid(pid),
                        status,
                    });
                }
                None => self.lc_event(lifecycle::Event::Exited { pid, status }),
            }
        }
        if drained.no_children {
            self.lc_event(lifecycle::Event::NoChildren);
        }
    }

    /// Takes connection `id`'s requests, a bounded number per round.
    fn read_conn(&mut self, id: u64) {
        for _ in 0..REQUESTS_PER_ROUND {
            let Some(r) = self.ctl.next_request(id) else {
                return;
            };
            self.request(ConnId(id), r);
        }
    }

    fn request(&mut self, conn: ConnId, r: Request) {
        match control::route(r, self.lc.is_some(), self.sup.is_some()) {
            Routed::Power(kind, reply) => {
                self.ctl.reply(conn, &reply);
                self.lc_event(lifecycle::Event::Power(kind));
            }
            Routed::Refused(reply) => self.ctl.reply(conn, &reply),
            Routed::Core(r) => self.sup_event(SupEvent::Control(conn, r)),
        }
    }

    fn flush_conns(&mut self) {
        let gone = self.ctl.flush(self.host);
        self.sup_events(gone.into_iter().map(SupEvent::Closed).collect());
    }
}

//! The services room: what the driver keeps per service beside the core's state (`SvcIo`:
//! its notify socket and readiness probe, whether it holds a console tty), the live main
//! processes, the log pipes; carrying out `Spawn` (credentials, capabilities, environment,
//! pipe, cgroup, limits); reading pipes and notify sockets; the TCP readiness probes.
//! Each reading returns the core's events; the loop hands them on.
#![forbid(unsafe_code)]

use super::fds::{Registry, Source};
use super::host::Host;
use crate::consoles::term_for;
use crate::groups::Groups;
use crate::log::Level;
use crate::sys::clock;
use crate::sys::spawn::{self, SpawnSpec};
use crate::sys::{caps, notify, pipe, probe, users};
use appliance::{ApplianceConfig, Ready};
use nix::poll::PollFlags;
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use supervisor::Mono;
use supervisor::event::Event as SupEvent;
use supervisor::{Pid, SvcId};

/// The PATH every service starts with.
pub const BASE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How often a TCP readiness probe looks at the socket tables again.
pub const PROBE_INTERVAL_MS: u64 = 50;

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
        env.push(("SHELL".into(), super::emergency::SHELL.into()));
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

/// One TCP readiness probe: look for a listener on `port` at `next_at`.
#[derive(Debug)]
struct Probe {
    port: u16,
    next_at: Mono,
}

/// What the driver keeps per service, beside the supervisor's state (how to start it,
/// console and readiness included, comes with each `Spawn`).
#[derive(Debug)]
struct SvcIo {
    name: String,
    /// It holds a console tty: a `console = true` service, or a per-console instance
    /// (`getty@ttyS0`). The emergency shell stops these before it takes the console.
    owns_tty: bool,
    notify: Option<OwnedFd>,
    notify_path: Option<String>,
    probe: Option<Probe>,
}

/// Every service's descriptors and live main process.
#[derive(Debug, Default)]
pub struct Services {
    io: Vec<SvcIo>,
    /// Live service processes.
    pids: HashMap<i32, SvcId>,
    /// Log pipes still open (a service's, or an earlier instance's kept by a descendant).
    pipes: Vec<(SvcId, OwnedFd)>,
}

impl Services {
    /// The services of `cfg` (in the core's order), with a notify socket in `notify_dir`
    /// for each `ready = "notify"` one. `consoles` are the /dev names of the consoles.
    pub fn new(cfg: &ApplianceConfig, host: Host, consoles: &[String], notify_dir: &str) -> Self {
        let needs_notify = cfg.services.iter().any(|s| s.ready == Ready::Notify);
        if needs_notify && let Err(e) = crate::sys::fs::mkdir(notify_dir, 0o711) {
            host.log(Level::Info, &format!("cannot create {notify_dir}: {e}"));
        }
        let mut io = Vec::new();
        for s in &cfg.services {
            let console = s.console && host.has_console();
            let mut one = SvcIo {
                name: s.name.clone(),
                owns_tty: console || consoles.iter().any(|t| s.name.ends_with(&format!("@{t}"))),
                notify: None,
                notify_path: None,
                probe: None,
            };
            if s.console && !host.has_console() {
                host.log(
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
                        one.notify = Some(fd);
                        one.notify_path = Some(path);
                    }
                    Err(e) => host.log(
                        Level::Info,
                        &format!(
                            "cannot create notify socket {path} for {}: {e}; it will never be ready",
                            s.name
                        ),
                    ),
                }
            }
            io.push(one);
        }
        Services {
            io,
            pids: HashMap::new(),
            pipes: Vec::new(),
        }
    }

    /// Carries out `Action::Spawn` as `spec` says; returns the event to report at once.
    /// `tty` is the console a console service gets (on a host that has one).
    pub fn spawn(
        &mut self,
        svc: SvcId,
        spec: &supervisor::event::SpawnSpec,
        groups: &mut Groups,
        tty: &str,
        host: Host,
    ) -> SupEvent {
        let Some(io) = self.io.get(svc.0) else {
            return SupEvent::SpawnFailed {
                svc,
                errno: libc::EINVAL,
            };
        };
        let fail = |why: String, errno: i32| {
            host.log(Level::Info, &format!("cannot start {}: {why}", spec.name));
            SupEvent::SpawnFailed { svc, errno }
        };
        let creds = if spec.user.is_some() || spec.group.is_some() {
            match users::resolve(spec.user.as_deref(), spec.group.as_deref()) {
                Ok(c) => Some(c),
                Err(e) => return fail(e, libc::EINVAL),
            }
        } else {
            None
        };
        let caps = match &spec.capabilities {
            None => None,
            Some(names) => match caps::mask(names) {
                Ok(m) => Some(m),
                Err(n) => return fail(format!("unknown capability {n:?}"), libc::EINVAL),
            },
        };
        let home = if creds.as_ref().is_none_or(|c| c.uid == 0) {
            "/root"
        } else {
            "/"
        };
        let console = spec.console && host.has_console();
        let tty = console.then(|| tty.to_string());
        let env = service_env(home, tty.as_deref(), io.notify_path.as_deref(), &spec.env);
        let (read_end, write_end) = if console {
            (None, None)
        } else {
            match pipe::new() {
                Ok((r, w)) => (Some(r), Some(w)),
                Err(e) => return fail(format!("cannot make its log pipe: {e}"), e as i32),
            }
        };
        let procs = match groups.prepare(svc) {
            Ok(fd) => fd,
            Err(why) => return fail(why, libc::EPERM),
        };
        let limits = groups.limits(svc).cloned().unwrap_or_default();
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
                if let Some(tty) = &sys_spec.tty {
                    // The marker tests and people wait for (the contract's wording).
                    host.log(
                        Level::Info,
                        &format!("console shell on {tty} (service {}, pid {pid})", spec.name),
                    );
                }
                self.pids.insert(pid, svc);
                groups.spawned(svc);
                if let Some(r) = read_end {
                    self.pipes.push((svc, r));
                }
                if let Some(io) = self.io.get_mut(svc.0) {
                    io.probe = match spec.ready {
                        Ready::Tcp(port) => Some(Probe {
                            port,
                            next_at: clock::now(),
                        }),
                        Ready::Started | Ready::Notify | Ready::Exit => None,
                    };
                }
                SupEvent::Spawned { svc, pid: Pid(pid) }
            }
            Err(e) => fail(format!("fork failed: {e}"), e as i32),
        }
    }

    /// `pid` was reaped: the service whose main process it was, if any (its probe ends).
    pub fn ended(&mut self, pid: i32) -> Option<SvcId> {
        let svc = self.pids.remove(&pid)?;
        if let Some(io) = self.io.get_mut(svc.0) {
            io.probe = None;
        }
        Some(svc)
    }

    /// Reads pipe `i`; closes it at EOF. Callers going through several go high to low.
    pub fn read_pipe(&mut self, i: usize) -> Option<SupEvent> {
        let (svc, fd) = self.pipes.get(i)?;
        let svc = *svc;
        let d = pipe::drain(fd);
        if d.eof {
            self.pipes.remove(i);
        }
        (!d.data.is_empty()).then_some(SupEvent::Output { svc, data: d.data })
    }

    /// Reads everything waiting on `svc`'s pipes (before its exit is reported, so its last
    /// words come before the note that it exited).
    pub fn read_pipes_of(&mut self, svc: SvcId) -> Vec<SupEvent> {
        let mut out = Vec::new();
        for i in (0..self.pipes.len()).rev() {
            if self.pipes.get(i).is_some_and(|(s, _)| *s == svc) {
                out.extend(self.read_pipe(i));
            }
        }
        out
    }

    /// Closes `svc`'s pipes (its group is gone, and with it whoever held them).
    pub fn close_pipes_of(&mut self, svc: SvcId) {
        self.pipes.retain(|(s, _)| *s != svc);
    }

    /// Reads `svc`'s notify socket: `Ready` for each READY=1; STATUS= is logged.
    pub fn read_notify(&self, svc: SvcId, host: Host) -> Vec<SupEvent> {
        let Some(io) = self.io.get(svc.0) else {
            return Vec::new();
        };
        let Some(fd) = io.notify.as_ref() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for n in notify::receive(fd) {
            if let Some(status) = &n.status {
                host.log(Level::Debug, &format!("{} status: {status}", io.name));
            }
            if n.ready {
                out.push(SupEvent::Ready(svc));
            }
        }
        out
    }

    /// Looks at the probes that are due: `Ready` for each service now listening.
    pub fn run_probes(&mut self, now: Mono) -> Vec<SupEvent> {
        let mut out = Vec::new();
        for (i, io) in self.io.iter_mut().enumerate() {
            let Some(p) = &mut io.probe else { continue };
            if now < p.next_at {
                continue;
            }
            if probe::listening(p.port) {
                io.probe = None;
                out.push(SupEvent::Ready(SvcId(i)));
            } else {
                p.next_at = now.plus_ms(PROBE_INTERVAL_MS);
            }
        }
        out
    }

    /// When the next probe is due.
    pub fn probe_deadline(&self) -> Option<Mono> {
        self.io
            .iter()
            .filter_map(|io| io.probe.as_ref())
            .map(|p| p.next_at)
            .min()
    }

    /// The services that hold a console tty (stopped for the emergency shell).
    pub fn tty_holders(&self) -> Vec<String> {
        self.io
            .iter()
            .filter(|io| io.owns_tty)
            .map(|io| io.name.clone())
            .collect()
    }

    /// True while a process of a service holding a console tty runs.
    pub fn tty_held(&self) -> bool {
        self.pids
            .values()
            .any(|s| self.io.get(s.0).is_some_and(|io| io.owns_tty))
    }

    /// Adds the pipes and notify sockets to the poll.
    pub fn register<'a>(&'a self, reg: &mut Registry<'a>) {
        for (i, (_, fd)) in self.pipes.iter().enumerate() {
            reg.add(fd.as_fd(), PollFlags::POLLIN, Source::Pipe(i));
        }
        for (i, io) in self.io.iter().enumerate() {
            if let Some(fd) = &io.notify {
                reg.add(fd.as_fd(), PollFlags::POLLIN, Source::Notify(SvcId(i)));
            }
        }
    }

    /// Closes and removes the notify sockets (`keel supervise`'s end).
    pub fn cleanup(&mut self) {
        for io in &mut self.io {
            io.notify = None;
            if let Some(p) = io.notify_path.take() {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

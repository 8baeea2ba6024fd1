//! A fake driver for the supervisor core: it carries out actions the way init/ does
//! (spawns get sequential pids, kills are recorded) and turns script lines into events.

#![allow(dead_code)]

use appliance::ApplianceConfig;
use std::collections::BTreeMap;
use std::time::Duration;
use supervisor::core::Supervisor;
use supervisor::event::{Action, ConnId, Event};
use supervisor::proto::{Request, Response};
use supervisor::{Mono, Pid, PowerKind, Sig, SvcId, WaitStatus};

pub struct Sim {
    pub sup: Supervisor,
    pub now: Mono,
    next_pid: i32,
    /// Children spawned and not yet reaped.
    pub live: BTreeMap<Pid, SvcId>,
    /// Every pid ever spawned.
    pub spawned: Vec<Pid>,
    /// Pids reaped so far.
    pub reaped: Vec<Pid>,
    pub fail_next_spawn: Vec<(SvcId, i32)>,
    pub trace: Vec<String>,
    /// Every action, with the time it came at, for property checks.
    pub actions: Vec<(Mono, Action)>,
    pub show_logs: bool,
    /// When set, a SIGKILL makes the process exit at once (the kernel's rule for all but
    /// processes stuck in uninterruptible sleep).
    pub sigkill_is_lethal: bool,
    /// Services whose group keeps processes after their main one exits (until `empty`).
    pub lingering: Vec<SvcId>,
    /// Services whose main process exited while lingering: their group still runs.
    pub busy_groups: Vec<SvcId>,
}

/// The config of `text`; a test with a bad one fails with its diagnostics.
pub fn parse_config(text: &str) -> ApplianceConfig {
    appliance::parse(text, "test.toml").unwrap_or_else(|d| {
        let lines: Vec<String> = d.iter().map(ToString::to_string).collect();
        panic!("{}", lines.join("\n"))
    })
}

impl Sim {
    pub fn new(cfg: &ApplianceConfig) -> Sim {
        Sim {
            sup: Supervisor::with_seed(cfg, 42),
            now: Mono(0),
            next_pid: 100,
            live: BTreeMap::new(),
            spawned: Vec::new(),
            reaped: Vec::new(),
            fail_next_spawn: Vec::new(),
            trace: Vec::new(),
            actions: Vec::new(),
            show_logs: false,
            sigkill_is_lethal: false,
            lingering: Vec::new(),
            busy_groups: Vec::new(),
        }
    }

    pub fn id(&self, name: &str) -> SvcId {
        self.sup
            .find(name)
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    pub fn name(&self, s: SvcId) -> String {
        self.sup
            .config(s)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    }

    pub fn pid_of(&self, name: &str) -> Option<Pid> {
        let s = self.id(name);
        self.live
            .iter()
            .rev()
            .find(|(_, v)| **v == s)
            .map(|(p, _)| *p)
    }

    fn say(&mut self, line: String) {
        self.trace.push(format!("{} {line}", self.now));
    }

    /// Feeds one event and carries out what comes back, including the spawn reports.
    pub fn event(&mut self, ev: Event) {
        let mut queue = vec![ev];
        let mut handled = 0u32;
        while !queue.is_empty() {
            handled += 1;
            assert!(
                handled < 100_000,
                "one event set off events without end; trace tail: {:?}",
                &self.trace[self.trace.len().saturating_sub(30)..]
            );
            let ev = queue.remove(0);
            let mut out = Vec::new();
            self.sup.handle(ev, self.now, &mut out);
            for a in out {
                self.actions.push((self.now, a.clone()));
                match a {
                    Action::Spawn(s, spec) => {
                        // Stopped means the whole group is gone: never a second instance.
                        assert!(
                            !self.busy_groups.contains(&s),
                            "{} spawned while processes of its last instance still run",
                            spec.name
                        );
                        if let Some(i) = self.fail_next_spawn.iter().position(|(f, _)| *f == s) {
                            let (_, errno) = self.fail_next_spawn.remove(i);
                            self.say(format!("spawn {} failed errno={errno}", spec.name));
                            queue.push(Event::SpawnFailed { svc: s, errno });
                        } else {
                            let pid = Pid(self.next_pid);
                            self.next_pid += 1;
                            self.live.insert(pid, s);
                            self.spawned.push(pid);
                            self.say(format!("spawn {} pid={pid}", spec.name));
                            queue.push(Event::Spawned { svc: s, pid });
                        }
                    }
                    Action::SignalGroup {
                        svc,
                        pid: None,
                        sig,
                    } => {
                        self.say(format!("signal group {} {sig}", self.name(svc)));
                    }
                    Action::KillGroup { svc, pid: None } => {
                        self.say(format!("kill group {}", self.name(svc)));
                        if self.sigkill_is_lethal {
                            self.group_ends(svc);
                            queue.push(Event::GroupEmpty(svc));
                        }
                    }
                    Action::ReleaseGroup { svc } => {
                        // The move out of the group: nothing of it is left in it.
                        self.say(format!("release group {}", self.name(svc)));
                        self.group_ends(svc);
                        queue.push(Event::GroupEmpty(svc));
                    }
                    Action::Kill { .. } | Action::SignalGroup { .. } | Action::KillGroup { .. } => {
                        let Some((pid, sig)) = a.signals_pid() else {
                            continue;
                        };
                        let owner = self.live.get(&pid).copied();
                        let name = owner.map(|s| self.name(s)).unwrap_or_else(|| "?".into());
                        self.say(format!("kill {name} pid={pid} {sig}"));
                        if sig == Sig::KILL
                            && self.sigkill_is_lethal
                            && self.live.remove(&pid).is_some()
                        {
                            self.reaped.push(pid);
                            if let Some(s) = owner
                                && (!self.lingering.contains(&s)
                                    || matches!(a, Action::KillGroup { .. }))
                            {
                                // cgroup.kill takes the whole group.
                                self.group_ends(s);
                                queue.push(Event::GroupEmpty(s));
                            } else if let Some(s) = owner {
                                self.busy_groups.push(s);
                            }
                            queue.push(Event::Exited {
                                pid,
                                status: WaitStatus::Signaled(Sig::KILL),
                            });
                        }
                    }
                    Action::Reply(_, r) => {
                        let text = match r {
                            Response::Ok(t) => format!("ok {t}"),
                            Response::Err(t) => format!("err {t}"),
                            Response::Line(t) => format!("line {t}"),
                            Response::Logs { dropped, lines } => {
                                format!("logs dropped={dropped} {lines:?}")
                            }
                            Response::Status(rows) => format!("status {} rows", rows.len()),
                            Response::Boot(b) => format!(
                                "boot up_at={} {} rows",
                                b.up_at.map_or("-".into(), |m| m.to_string()),
                                b.rows.len()
                            ),
                        };
                        self.say(format!("reply {text}"));
                    }
                    Action::Log(r) => {
                        if self.show_logs {
                            self.say(format!("log {r}"));
                        }
                    }
                    Action::Emergency { why, .. } => self.say(format!("emergency {why}")),
                    Action::Halt(kind) => {
                        assert!(
                            self.busy_groups.is_empty(),
                            "halt while groups still run: {:?}",
                            self.busy_groups
                        );
                        self.say(format!("halt {kind}"));
                    }
                }
            }
        }
    }

    /// Moves time forward, waking the core at every deadline on the way.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now.plus(d);
        let mut wakes = 0u32;
        while let Some(t) = self.sup.next_deadline() {
            if t > end {
                break;
            }
            wakes += 1;
            assert!(
                wakes < 100_000,
                "the core keeps asking to be woken at {t} (now {}): a deadline it never clears; trace tail: {:?}",
                self.now,
                &self.trace[self.trace.len().saturating_sub(30)..]
            );
            assert!(t >= self.now, "deadline {t} is in the past at {}", self.now);
            self.now = t;
            self.event(Event::Deadline);
        }
        self.now = end;
    }

    /// The main process `pid` exits; its group empties with it (the driver reports that
    /// first), unless its service is lingering.
    pub fn exit(&mut self, pid: Pid, status: WaitStatus) {
        let owner = self.live.remove(&pid);
        self.reaped.push(pid);
        match owner {
            Some(s) if self.lingering.contains(&s) => self.busy_groups.push(s),
            Some(s) => self.event(Event::GroupEmpty(s)),
            None => {}
        }
        self.event(Event::Exited { pid, status });
    }

    /// Nothing of `s`'s group is left.
    fn group_ends(&mut self, s: SvcId) {
        self.lingering.retain(|l| *l != s);
        self.busy_groups.retain(|l| *l != s);
    }

    /// Runs one script line.
    pub fn line(&mut self, line: &str) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let arg = |k: &str| -> Option<i32> {
            words.iter().find_map(|w| {
                w.strip_prefix(k)
                    .and_then(|v| v.strip_prefix('='))
                    .and_then(|v| v.parse().ok())
            })
        };
        match words.as_slice() {
            [] => {}
            ["advance", d] => self.advance(
                appliance::parse_duration(d).unwrap_or_else(|| panic!("bad duration {d}")),
            ),
            ["exit", name, ..] => {
                let pid = self
                    .pid_of(name)
                    .unwrap_or_else(|| panic!("{name} has no live process at {line:?}"));
                let status = match (arg("code"), arg("signal")) {
                    (_, Some(s)) => WaitStatus::Signaled(Sig(s as u8)),
                    (c, None) => WaitStatus::Exited(c.unwrap_or(0)),
                };
                self.exit(pid, status);
            }
            ["linger", name] => {
                // Its main process leaves others running (a shell's `sleep &`).
                let s = self.id(name);
                self.lingering.push(s);
            }
            ["empty", name] => {
                // The last of its group is gone.
                let s = self.id(name);
                self.group_ends(s);
                self.event(Event::GroupEmpty(s));
            }
            ["oom", name, ..] => {
                let s = self.id(name);
                let limit = arg("limit").unwrap_or(32 << 20) as u64;
                self.event(Event::OomKilled { svc: s, limit });
            }
            ["ready", name] => {
                let s = self.id(name);
                self.event(Event::Ready(s));
            }
            ["failspawn", name, ..] => {
                let s = self.id(name);
                self.fail_next_spawn.push((s, arg("errno").unwrap_or(2)));
            }
            ["output", name, rest @ ..] => {
                let s = self.id(name);
                self.event(Event::Output {
                    svc: s,
                    data: format!("{}\n", rest.join(" ")).into_bytes(),
                });
            }
            ["start", name] => {
                self.event(Event::Control(ConnId(1), Request::Start(name.to_string())))
            }
            ["stop", name] => {
                self.event(Event::Control(ConnId(1), Request::Stop(name.to_string())))
            }
            ["restart", name] => self.event(Event::Control(
                ConnId(1),
                Request::Restart(name.to_string()),
            )),
            ["logs", name, n] => self.event(Event::Control(
                ConnId(1),
                Request::Logs {
                    name: name.to_string(),
                    lines: n.parse().ok(),
                    follow: false,
                },
            )),
            ["shutdown", kind] => {
                let kind = match *kind {
                    "poweroff" => PowerKind::PowerOff,
                    "reboot" => PowerKind::Reboot,
                    _ => PowerKind::Halt,
                };
                self.event(Event::Shutdown(kind));
            }
            ["status", name] => {
                let s = self.id(name);
                // As keelctl's request would, this reaches the core at the current time.
                self.event(Event::Deadline);
                let st = &self.sup.status()[s.0];
                let why = if st.why.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", st.why)
                };
                let line = format!("status {name}: {}{why}", st.state);
                self.say(line);
            }
            ["wait", names @ ..] => self.event(Event::Control(
                ConnId(2),
                Request::Wait(names.iter().map(|n| n.to_string()).collect()),
            )),
            ["boot"] => {
                let b = self.sup.boot_report();
                let chain: Vec<String> = b
                    .default_target()
                    .map(|t| b.critical_chain(t))
                    .unwrap_or_default()
                    .iter()
                    .map(|l| format!("{}@{}+{}ms", l.name, l.started, l.took_ms()))
                    .collect();
                let up = b.up_at.map_or("-".into(), |m| m.to_string());
                self.say(format!("boot up={up} chain={}", chain.join(",")));
            }
            ["logs-on"] => self.show_logs = true,
            _ => panic!("unknown script line {line:?}"),
        }
    }
}

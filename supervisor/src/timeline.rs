//! Where the boot went: when each service was first started, became ready and ended, and
//! the critical chain that decided when the last one was up (systemd-analyze's `blame`
//! and `critical-chain` in one report).
//!
//! The core fills a [`BootReport`] as it goes (first start, first ready, first exit of
//! each service); `keelctl boot` and the end-of-boot console line read it. Pure: the times
//! are the core's `Mono`, the kernel's part comes from the driver.

use crate::types::Mono;
use std::fmt::Write;

/// One service's first run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BootRow {
    pub name: String,
    pub oneshot: bool,
    /// When it was first started (the spawn was asked for).
    pub started: Option<Mono>,
    /// When it first became ready (a oneshot: when it exited 0).
    pub ready: Option<Mono>,
    /// When its first process ended (a oneshot's exit, a longrun's first crash or stop).
    pub finished: Option<Mono>,
    /// What it needs and what it is ordered after, by name.
    pub needs: Vec<String>,
    pub after: Vec<String>,
}

/// The whole boot, as the supervisor saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BootReport {
    /// When /init started (CLOCK_MONOTONIC, which counts from the kernel's start); None
    /// when keel is not PID 1 (`keel supervise`).
    pub init_at: Option<Mono>,
    /// When every service wanted at boot had become ready once; None until then.
    pub up_at: Option<Mono>,
    pub rows: Vec<BootRow>,
}

/// One link of the critical chain: a service and when it started and became ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub started: Mono,
    pub ready: Mono,
}

impl Link {
    /// From its start to its readiness, in ms.
    pub fn took_ms(&self) -> u64 {
        self.ready.0.saturating_sub(self.started.0)
    }
}

impl BootReport {
    fn row(&self, name: &str) -> Option<&BootRow> {
        self.rows.iter().find(|r| r.name == name)
    }

    /// The service the chain ends at: `sshd` when it became ready, otherwise the service
    /// that became ready last.
    pub fn default_target(&self) -> Option<&str> {
        if self.row("sshd").is_some_and(|r| r.ready.is_some()) {
            return Some("sshd");
        }
        self.rows
            .iter()
            .filter(|r| r.ready.is_some())
            .max_by_key(|r| r.ready)
            .map(|r| r.name.as_str())
    }

    /// The critical chain to `target`, first link first: from `target`, step to the
    /// dependency (needs or after) that became ready last, as long as it was ready before
    /// the service started (what held the start back), until a service that waited for
    /// nothing. Empty when `target` never became ready. Bounded by the number of services,
    /// so a cycle in a hand-made report cannot loop.
    pub fn critical_chain(&self, target: &str) -> Vec<Link> {
        let mut chain = Vec::new();
        let mut cur = self.row(target);
        while let Some(r) = cur {
            let (Some(started), Some(ready)) = (r.started, r.ready) else {
                break;
            };
            if chain.len() > self.rows.len() || chain.iter().any(|l: &Link| l.name == r.name) {
                break;
            }
            chain.push(Link {
                name: r.name.clone(),
                started,
                ready,
            });
            cur = self.held_back_by(&r.name).and_then(|d| self.row(d));
        }
        chain.reverse();
        chain
    }

    /// What held `name`'s first start back: of what it needs or is ordered after, the one
    /// that became ready last before it started. None when it waited for nothing.
    pub fn held_back_by(&self, name: &str) -> Option<&str> {
        let r = self.row(name)?;
        let started = r.started?;
        r.needs
            .iter()
            .chain(&r.after)
            .filter_map(|d| self.row(d))
            .filter(|d| d.ready.is_some_and(|t| t <= started))
            .max_by_key(|d| d.ready)
            .map(|d| d.name.as_str())
    }

    /// Services by how long they took from start to ready (or to their end), longest
    /// first: systemd-analyze blame.
    pub fn blame(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self
            .rows
            .iter()
            .filter_map(|r| {
                let start = r.started?;
                let end = r.ready.or(r.finished)?;
                Some((r.name.as_str(), end.0.saturating_sub(start.0)))
            })
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }

    /// `up in 2.41 s (kernel 1.32 s, keel 1.09 s); critical chain: firewall 12 ms →
    /// hostkeys 30 ms → sshd 640 ms`, once the boot is complete. `kernel` overrides the
    /// time to /init (`keelctl boot` reads it from the kernel's own log).
    pub fn summary(&self, kernel: Option<Mono>) -> Option<String> {
        let up = self.up_at?;
        let mut s = format!("up in {}", secs(up.0));
        if let Some(k) = kernel.or(self.init_at) {
            let _ = write!(
                s,
                " (kernel {}, keel {})",
                secs(k.0),
                secs(up.0.saturating_sub(k.0))
            );
        }
        if let Some(t) = self.default_target() {
            let chain = self.critical_chain(t);
            if !chain.is_empty() {
                let links: Vec<String> = chain
                    .iter()
                    .map(|l| format!("{} {} ms", l.name, l.took_ms()))
                    .collect();
                let _ = write!(s, "; critical chain: {}", links.join(" → "));
            }
        }
        Some(s)
    }
}

/// `2.41 s`.
pub fn secs(ms: u64) -> String {
    format!("{}.{:02} s", ms / 1000, ms % 1000 / 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, t: (u64, u64), needs: &[&str], after: &[&str]) -> BootRow {
        BootRow {
            name: name.into(),
            oneshot: false,
            started: Some(Mono(t.0)),
            ready: Some(Mono(t.1)),
            finished: None,
            needs: needs.iter().map(|s| s.to_string()).collect(),
            after: after.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn appliance() -> BootReport {
        BootReport {
            init_at: Some(Mono(1320)),
            up_at: Some(Mono(2410)),
            rows: vec![
                row("getty", (1500, 1500), &[], &["state"]),
                row("firewall", (1490, 1502), &[], &[]),
                row("network", (1503, 2300), &["firewall"], &[]),
                row("state", (1490, 1495), &[], &[]),
                row("entropy", (1490, 1491), &[], &[]),
                row("hostkeys", (1496, 1526), &["entropy", "state"], &[]),
                row(
                    "sshd",
                    (1770, 2410),
                    &["firewall", "hostkeys"],
                    &["metadata"],
                ),
                row("metadata", (2300, 2350), &["network"], &[]),
            ],
        }
    }

    #[test]
    fn the_chain_follows_what_held_each_start_back() {
        let mut r = appliance();
        // metadata became ready at 1770, exactly when sshd started.
        r.rows[7] = row("metadata", (1700, 1770), &["network"], &[]);
        r.rows[2] = row("network", (1503, 1690), &["firewall"], &[]);
        let names: Vec<String> = r
            .critical_chain("sshd")
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(names, ["firewall", "network", "metadata", "sshd"]);
        assert_eq!(r.default_target(), Some("sshd"));
    }

    #[test]
    fn a_dependency_ready_after_the_start_is_not_on_the_chain() {
        // metadata became ready (2350) after sshd started (1770), so it did not hold sshd
        // back; hostkeys did.
        let r = appliance();
        let names: Vec<String> = r
            .critical_chain("sshd")
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(names, ["state", "hostkeys", "sshd"]);
    }

    #[test]
    fn the_summary_line_has_the_kernel_keel_split_and_the_chain() {
        let r = appliance();
        assert_eq!(
            r.summary(None).as_deref(),
            Some(
                "up in 2.41 s (kernel 1.32 s, keel 1.09 s); critical chain: state 5 ms → hostkeys 30 ms → sshd 640 ms"
            )
        );
        let mut no_init = r.clone();
        no_init.init_at = None;
        assert!(
            no_init
                .summary(None)
                .is_some_and(|s| s.starts_with("up in 2.41 s;"))
        );
        let mut not_up = r;
        not_up.up_at = None;
        assert_eq!(not_up.summary(None), None);
    }

    #[test]
    fn blame_is_longest_first_and_skips_what_never_ran() {
        let mut r = appliance();
        r.rows.push(BootRow {
            name: "never".into(),
            ..BootRow::default()
        });
        let b = r.blame();
        assert_eq!(b[0], ("network", 797));
        assert!(b.iter().all(|(n, _)| *n != "never"));
    }

    #[test]
    fn a_cyclic_hand_made_report_ends() {
        let r = BootReport {
            init_at: None,
            up_at: Some(Mono(10)),
            rows: vec![row("a", (5, 6), &["b"], &[]), row("b", (1, 2), &["a"], &[])],
        };
        assert_eq!(r.critical_chain("a").len(), 2);
    }
}

//! The bench's host side: `keel supervise` as an ordinary process reaping 10,000 orphans,
//! and the restart period of a crashing service under keel, runit's runsv and s6's
//! s6-supervise, each supervising the same script in the same run.
//!
//! Everything runs in a private directory under the system temp dir and every process it
//! starts is stopped by pid before it returns. It measures; it never asserts a timing.

use anyhow::{Context, Result, bail};
use keel_tests::Scratch;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How many orphans keel reaps in the orphan figure.
pub(crate) const ORPHANS: usize = 10_000;

/// The fixed delay every supervisor waits before restarting a service that just crashed:
/// runsv sleeps 1 s when ./run lived under 1 s, s6-supervise spawns ./run at most once a
/// second, and keel is given the same 1 s with no growth and no jitter.
pub(crate) const KEEL_FIXED_BACKOFF: &str =
    r#"backoff = { initial = "1s", factor = 1, cap = "1s", jitter = 0.0 }"#;

/// A supervisor in the restart comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sup {
    Keel,
    Runsv,
    S6,
}

impl Sup {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Sup::Keel => "keel",
            Sup::Runsv => "runsv",
            Sup::S6 => "s6-supervise",
        }
    }
}

/// A child process stopped on drop: SIGTERM, then SIGKILL after `grace`.
struct Guard {
    child: Child,
    grace: Duration,
}

impl Guard {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = signal(self.child.id(), "TERM");
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `SIGNAME` to `pid` with kill(1) (xtask has no libc).
fn signal(pid: u32, name: &str) -> Result<()> {
    let st = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .context("cannot run kill")?;
    if !st.success() {
        bail!("kill -{name} {pid} failed: {st}");
    }
    Ok(())
}

/// The pids of `pid`'s children, zombies included (/proc/PID/task/*/children).
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|w| w.parse::<u32>().ok()));
        }
    }
    out
}

/// Starts `keel supervise` on `config` in `dir`; its log goes to dir/keel.log.
fn keel_supervise(keel: &Path, dir: &Path, config: &str) -> Result<Guard> {
    let cfg = dir.join("appliance.toml");
    std::fs::write(&cfg, config).with_context(|| format!("cannot write {}", cfg.display()))?;
    let log = std::fs::File::create(dir.join("keel.log"))?;
    let child = Command::new(keel)
        .arg("supervise")
        .arg("--config")
        .arg(&cfg)
        .arg("--socket")
        .arg(dir.join("control"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {} supervise", keel.display()))?;
    Ok(Guard {
        child,
        grace: Duration::from_secs(10),
    })
}

/// Time for `keel supervise` to reap `ORPHANS` orphans killed at once: a oneshot starts
/// them in the background and exits, so they are re-parented to keel (a child subreaper);
/// then one kill(1) sends SIGKILL to all, and the clock runs until keel has no child left.
pub(crate) fn reap_orphans(keel: &Path) -> Result<f64> {
    let dir = Scratch::new("bench-orphans")?;
    let config = format!(
        "[services.forker]\n\
         exec = [\"/bin/sh\", \"-c\", \"i=0; while [ $i -lt {ORPHANS} ]; do /bin/busybox sleep 1000 & i=$((i+1)); done\"]\n\
         kind = \"oneshot\"\n"
    );
    let k = keel_supervise(keel, &dir.0, &config)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    // All of them, and the forker gone: while the oneshot's shell runs it is one of keel's
    // children too, and a kill list taken then misses the last sleep it starts (seen: "keel
    // still has children 120s after the orphans were killed").
    let kids = loop {
        let kids = children(k.pid());
        if kids.len() >= ORPHANS && kids.iter().all(|&p| !is_shell(p)) {
            break kids;
        }
        if Instant::now() > deadline {
            bail!(
                "keel has {} children after 300s, not the {ORPHANS} orphans; its log:\n{}",
                kids.len(),
                std::fs::read_to_string(dir.0.join("keel.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let t0 = Instant::now();
    let st = Command::new("kill")
        .arg("-KILL")
        .args(kids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status()
        .context("cannot run kill")?;
    if !st.success() {
        bail!("kill -KILL of the {} orphans failed: {st}", kids.len());
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if children(k.pid()).is_empty() {
            return Ok(t0.elapsed().as_secs_f64());
        }
        if Instant::now() > deadline {
            let left = children(k.pid());
            let states: Vec<String> = left
                .iter()
                .take(5)
                .map(|p| {
                    std::fs::read_to_string(format!("/proc/{p}/stat"))
                        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                        .unwrap_or_else(|_| format!("{p} (gone)"))
                })
                .collect();
            bail!(
                "keel still has {} children 120s after the orphans were killed (first: {}); its log:\n{}",
                left.len(),
                states.join(", "),
                std::fs::read_to_string(dir.0.join("keel.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether process `pid` runs a shell (`sh` in /proc/PID/comm); the orphans are busybox
/// sleeps, so their comm is `busybox` or `sleep`.
fn is_shell(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sh")
}

/// Periods between successive launches of a service that exits 1 at once, under `sup`:
/// `launches` launches, `launches - 1` periods. The service writes a line to a FIFO the
/// bench holds open, so each launch is timed when it happens, with no polling.
pub(crate) fn restart_periods(sup: Sup, keel: &Path, launches: usize) -> Result<Vec<f64>> {
    let dir = Scratch::new(&format!("bench-{}", sup.name()))?;
    let fifo = dir.0.join("starts");
    crate::util::run(Command::new("mkfifo").arg(&fifo))?;
    let svc = dir.0.join("svc");
    std::fs::create_dir_all(&svc)?;
    let run = svc.join("run");
    std::fs::write(
        &run,
        format!("#!/bin/sh\necho started > {}\nexit 1\n", fifo.display()),
    )?;
    crate::util::run(Command::new("chmod").arg("755").arg(&run))?;

    // Read and write, so opening never blocks and the reader never sees end of file.
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .with_context(|| format!("cannot open {}", fifo.display()))?;
    let (tx, rx) = mpsc::channel();
    // The thread blocks in read until the process exits; it only sends timestamps.
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            if line.is_err() || tx.send(Instant::now()).is_err() {
                break;
            }
        }
    });

    let _guard = match sup {
        Sup::Keel => keel_supervise(
            keel,
            &dir.0,
            &format!(
                "[services.crasher]\nexec = [\"{}\"]\nrestart = \"always\"\n{KEEL_FIXED_BACKOFF}\n\
                 crash_loop = {{ limit = 1000, within = \"1s\" }}\n",
                run.display()
            ),
        )?,
        Sup::Runsv | Sup::S6 => {
            let prog = if sup == Sup::Runsv {
                "runsv"
            } else {
                "s6-supervise"
            };
            let child = Command::new(prog)
                .arg(&svc)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("cannot start {prog}"))?;
            Guard {
                child,
                grace: Duration::from_secs(5),
            }
        }
    };
    let mut times = Vec::new();
    while times.len() < launches {
        match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(t) => times.push(t),
            Err(_) => bail!(
                "{} launched the service {} times, then nothing for 15s",
                sup.name(),
                times.len()
            ),
        }
    }
    Ok(times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64())
        .collect())
}

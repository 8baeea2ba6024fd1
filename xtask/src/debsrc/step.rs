//! One long build step: its output goes to a log file, the terminal gets a progress line
//! every 30 s (files compiled so far) and the log's tail on failure.

use super::phase;
use anyhow::{Context, Result, bail};
use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HEARTBEAT: Duration = Duration::from_secs(30);
const TAIL_ON_FAILURE: usize = 40;

/// Runs `cmd` with stdout and stderr in `log`; `what` names the step for the user, in the
/// lines of build `who` (`sshd`, `busybox`).
pub(crate) fn logged(
    who: &str,
    cmd: &mut Command,
    what: &str,
    log: &Path,
    verbose: bool,
) -> Result<()> {
    let shown = format!("{cmd:?}");
    let started = Instant::now();
    if verbose {
        phase(who, &format!("{what}: {shown}"));
    }
    let file = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("cannot start {shown}"))?;
    let mut last = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(250));
        if last.elapsed() >= HEARTBEAT {
            last = Instant::now();
            let progress = match compiled(log) {
                0 => "running".to_owned(),
                n => format!("{n} files compiled so far"),
            };
            phase(
                who,
                &format!("[{}] {what}: {progress}", mmss(started.elapsed())),
            );
        }
    };
    if !status.success() {
        print_tail(log);
        bail!(
            "{what} failed ({status}): {shown}\n  the last {TAIL_ON_FAILURE} lines are above; the \
             whole log is {}",
            log.display()
        );
    }
    phase(
        who,
        &format!(
            "{what}: done in {}{}",
            mmss(started.elapsed()),
            match compiled(log) {
                0 => String::new(),
                n => format!(", {n} files compiled"),
            }
        ),
    );
    Ok(())
}

/// Compiler runs in the log so far: lines that compile one file (`... -c ...`).
fn compiled(log: &Path) -> usize {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.trim_start().starts_with("musl-gcc ") && l.contains(" -c "))
        .count()
}

fn print_tail(log: &Path) {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(TAIL_ON_FAILURE);
    eprintln!("---- last lines of {} ----", log.display());
    for l in &lines[from..] {
        eprintln!("{l}");
    }
    eprintln!("----");
}

pub(crate) fn mmss(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

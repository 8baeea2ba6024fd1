//! `make bzImage`: reproducible (fixed timestamp, user, host, build number), its output
//! condensed to progress lines on stderr and kept whole in a log, the log's tail shown on
//! failure.

use super::{Opts, phase};
use anyhow::{Context, Result, bail};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Progress: a line every this many compiled files, and at least this often.
pub(super) const PROGRESS_EVERY: usize = 150;
pub(super) const HEARTBEAT: Duration = Duration::from_secs(30);
/// Lines of the log shown when make fails.
pub(super) const TAIL_ON_FAILURE: usize = 60;
/// A guess at the number of compiled files for a first build, refined after each full build.
pub(super) const DEFAULT_CC_COUNT: usize = 1600;

/// Formats seconds since the epoch as `date -u` does: `Sun Nov 22 02:37:05 UTC 2026`.
pub(super) fn format_utc(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    let (year, month, day) = keel::boot::civil(days);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // 1970-01-01 was a Thursday.
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let weekday = WEEKDAYS[days.rem_euclid(7) as usize];
    let month_name = MONTHS[(month - 1) as usize];
    format!(
        "{weekday} {month_name} {day:2} {:02}:{:02}:{:02} UTC {year}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

pub(super) fn mmss(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

/// Runs `make bzImage`, its output condensed on stderr and complete in `log_path`.
pub(super) fn make_bzimage(
    tree: &Path,
    build: &Path,
    opts: &Opts,
    epoch: i64,
    log_path: &Path,
) -> Result<()> {
    let timestamp = format_utc(epoch);
    phase(&format!(
        "make -j{} bzImage in {} (timestamp {timestamp:?}; log {})",
        opts.jobs,
        build.display(),
        log_path.display()
    ));
    let count_file = build.join(".keel-cc-count");
    let expected: usize = fs::read_to_string(&count_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_CC_COUNT);

    let mut cmd = Command::new("make");
    cmd.arg("-C")
        .arg(tree)
        .arg(format!("O={}", build.display()))
        .arg(format!("-j{}", opts.jobs))
        .arg("bzImage")
        .env("KBUILD_BUILD_TIMESTAMP", &timestamp)
        .env("KBUILD_BUILD_USER", "keel")
        .env("KBUILD_BUILD_HOST", "keel")
        .env("KBUILD_BUILD_VERSION", "1")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("cannot start make")?;
    // make's stdout and stderr arrive on one channel, in the order they are read.
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let mut readers = Vec::new();
    let out = child
        .stdout
        .take()
        .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
    let err = child
        .stderr
        .take()
        .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
    for stream in [out, err].into_iter().flatten() {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);

    let mut log =
        File::create(log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let started = Instant::now();
    let mut last_shown = Instant::now();
    let mut compiled = 0usize;
    let mut warnings = 0usize;
    for line in lines {
        writeln!(log, "{line}")?;
        if opts.verbose {
            eprintln!("{line}");
            continue;
        }
        let tag = line.split_whitespace().next().unwrap_or("");
        if tag == "CC" {
            compiled += 1;
        }
        if line.contains("warning:") {
            warnings += 1;
        }
        let milestone = matches!(
            tag,
            "LD" | "OBJCOPY" | "XZKERN" | "ZSTD22" | "GZIP" | "BUILD"
        ) && (line.contains("vmlinux")
            || line.contains("bzImage")
            || line.contains("setup.bin"))
            || line.starts_with("Kernel:")
            || line.contains("error:")
            || line.contains("Error ")
            || (tag == "CC" && compiled % PROGRESS_EVERY == 0)
            || last_shown.elapsed() >= HEARTBEAT;
        if milestone {
            let done = if compiled > 0 {
                format!(" {compiled}/~{} compiled,", expected.max(compiled))
            } else {
                String::new()
            };
            eprintln!(
                "kernel: [{}]{done} {}",
                mmss(started.elapsed()),
                line.trim()
            );
            last_shown = Instant::now();
        }
    }
    let status = child.wait().context("cannot wait for make")?;
    for r in readers {
        let _ = r.join();
    }
    drop(log);
    if !status.success() {
        print_tail(log_path);
        bail!(
            "make bzImage failed ({status}); the last {TAIL_ON_FAILURE} lines are above, the full log is {}",
            log_path.display()
        );
    }
    // A nearly full build tells how many files a full build compiles, for the next estimate.
    if compiled > expected / 2 {
        let _ = fs::write(&count_file, compiled.to_string());
    }
    phase(&format!(
        "make finished in {}: {compiled} files compiled, {warnings} warnings",
        mmss(started.elapsed())
    ));
    Ok(())
}

pub(super) fn print_tail(log: &Path) {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(TAIL_ON_FAILURE);
    eprintln!(
        "---- last {} lines of {} ----",
        lines.len() - from,
        log.display()
    );
    for l in &lines[from..] {
        eprintln!("{l}");
    }
    eprintln!("----");
}

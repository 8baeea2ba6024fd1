//! `cargo xtask bench --initcalls`: where the kernel's time goes before /init under TCG.
//!
//! Boots a bzImage with `initcall_debug` (no network, no disk) until the kernel prints
//! `Run /init`, then reads its own log: each initcall's duration, the wait for the
//! initramfs unpack (populate_rootfs runs async; the kernel waits for it between the last
//! initcall and "Freeing unused kernel image"), and the time to /init. The bzImage's own
//! decompression runs before the kernel's clock starts, so it is not in this log: compare
//! payload compressions with the bench's QEMU start -> /init figure instead.

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the kernel log says about a boot up to /init.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Report {
    /// (initcall, microseconds), longest first.
    pub(crate) calls: Vec<(String, u64)>,
    /// Kernel time (s) of the last initcall's return and of `Run /init`.
    pub(crate) last_initcall: Option<f64>,
    pub(crate) run_init: Option<f64>,
    /// Kernel time (s) of the first "Freeing unused kernel image" line.
    pub(crate) freeing: Option<f64>,
}

impl Report {
    pub(crate) fn total_us(&self) -> u64 {
        self.calls.iter().map(|c| c.1).sum()
    }
}

/// The `[    1.234567]` timestamp of a kernel log line, in seconds.
fn stamp(line: &str) -> Option<f64> {
    let rest = line.trim_start().strip_prefix('[')?;
    let (t, _) = rest.split_once(']')?;
    t.trim().parse().ok()
}

/// Parses a serial log of a boot with `initcall_debug` and printk times.
pub(crate) fn parse(log: &str) -> Report {
    let mut r = Report::default();
    for line in log.lines() {
        if let Some(at) = line.find("initcall ") {
            // "initcall NAME+0x0/0x2fb returned 0 after 325580 usecs"
            let words: Vec<&str> = line[at..].split_whitespace().collect();
            if let [_, name, "returned", _, "after", us, "usecs", ..] = words[..] {
                if let Ok(us) = us.parse() {
                    let name = name.split('+').next().unwrap_or(name).to_string();
                    r.calls.push((name, us));
                    r.last_initcall = stamp(line);
                }
            }
        } else if line.contains("Freeing unused kernel image") && r.freeing.is_none() {
            r.freeing = stamp(line);
        } else if line.contains("Run /init as init process") {
            r.run_init = stamp(line);
        }
    }
    r.calls
        .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    r
}

/// Boots `bzimage` under TCG with initcall_debug until `Run /init` (or `limit`) and returns
/// the serial log.
pub(crate) fn boot_log(bzimage: &Path, limit: Duration) -> Result<String> {
    if !bzimage.is_file() {
        bail!(
            "{} not found: run `cargo xtask kernel` first, or pass --bzimage FILE",
            bzimage.display()
        );
    }
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "tcg",
            "-m",
            "512",
            "-nographic",
            "-no-reboot",
            "-nic",
            "none",
        ])
        .arg("-kernel")
        .arg(bzimage)
        .args([
            "-append",
            "console=ttyS0 initcall_debug ignore_loglevel panic=-1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start qemu-system-x86_64")?;
    let out = child.stdout.take().context("qemu has no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut log = String::new();
    let mut done = false;
    while let Some(left) = limit.checked_sub(start.elapsed()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                done = line.contains("Run /init as init process");
                log.push_str(&line);
                log.push('\n');
                if done {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    if !done {
        bail!(
            "{} printed no `Run /init` within {} s under TCG; its log:\n{log}",
            bzimage.display(),
            limit.as_secs()
        );
    }
    Ok(log)
}

/// Prints the top `n` initcalls and the phases around them.
pub(crate) fn print(bzimage: &Path, r: &Report, n: usize) {
    println!("kernel log of {} (TCG, initcall_debug):", bzimage.display());
    let show = |t: Option<f64>| t.map_or("-".into(), |t| format!("{t:.3} s"));
    println!(
        "  {} initcalls, {:.3} s in total",
        r.calls.len(),
        r.total_us() as f64 / 1e6
    );
    println!("  last initcall returned at     {}", show(r.last_initcall));
    if let (Some(a), Some(b)) = (r.last_initcall, r.freeing) {
        println!(
            "  wait for the initramfs unpack {:.3} s (last initcall -> freeing init memory)",
            b - a
        );
    }
    println!("  Run /init at                  {}", show(r.run_init));
    println!("  longest initcalls:");
    for (name, us) in r.calls.iter().take(n) {
        println!("  {:>10.3} ms  {name}", *us as f64 / 1e3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_phases_and_sorts_longest_first() {
        let log = "\
[    0.655855] calling  init_jiffies_clocksource+0x0/0x13 @ 1
[    0.656802] initcall init_jiffies_clocksource+0x0/0x13 returned 0 after 0 usecs
[    0.900000] initcall pty_init+0x0/0x2fb returned 0 after 325580 usecs
[    1.728127] initcall balloon_wait_finish+0x0/0xe8 returned -19 after 29 usecs
[    2.162241] Freeing unused kernel image (initmem) memory: 24696K
[    2.181861] Freeing unused kernel image (text/rodata gap) memory: 2044K
[    2.187036] Run /init as init process
";
        let r = parse(log);
        assert_eq!(r.calls[0], ("pty_init".to_string(), 325_580));
        assert_eq!(r.calls.len(), 3);
        assert_eq!(r.total_us(), 325_609);
        assert_eq!(r.last_initcall, Some(1.728127));
        assert_eq!(r.freeing, Some(2.162241));
        assert_eq!(r.run_init, Some(2.187036));
        assert_eq!(parse("no kernel here"), Report::default());
    }
}

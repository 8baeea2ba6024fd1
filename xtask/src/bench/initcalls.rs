//! `cargo xtask bench --initcalls`: where the kernel's time goes before /init under TCG.
//!
//! Boots a bzImage with `initcall_debug` (no network, no disk) until the kernel prints
//! `Run /init`, then reads its own log: each initcall's duration, the wait for the
//! initramfs unpack (populate_rootfs runs async; the kernel waits for it between the last
//! initcall and "Freeing unused kernel image"), and the time to /init. The bzImage's own
//! decompression runs before the kernel's clock starts, so it is not in this log; the host
//! clock is: each boot also records the host time from QEMU's spawn to the `Run /init` line,
//! and that minus the kernel's own time of the line is what came before the kernel's clock
//! (firmware, loading the bzImage, decompressing it). Several `--bzimage` files and
//! `--runs N` compare payload compressions by these figures.

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

/// One boot: the serial log and the host time from QEMU's spawn to the `Run /init` line.
pub(crate) struct Boot {
    pub(crate) log: String,
    pub(crate) host_run_init: Duration,
}

/// Boots `bzimage` under TCG with initcall_debug until `Run /init` (or `limit`) and returns
/// the serial log with the host time it took.
pub(crate) fn boot_log(bzimage: &Path, limit: Duration) -> Result<Boot> {
    if !bzimage.is_file() {
        bail!(
            "{} not found: run `cargo xtask kernel` first, or pass --bzimage FILE",
            bzimage.display()
        );
    }
    let mut child = Command::new("qemu-system-x86_64");
    child
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
        .stderr(Stdio::null());
    let spawned = Instant::now();
    let mut child = child.spawn().context("cannot start qemu-system-x86_64")?;
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
    let mut log = String::new();
    let mut done = false;
    let mut host_run_init = Duration::ZERO;
    while let Some(left) = limit.checked_sub(spawned.elapsed()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                done = line.contains("Run /init as init process");
                host_run_init = spawned.elapsed();
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
    Ok(Boot { log, host_run_init })
}

/// The figures of `runs` boots of one bzImage, for the comparison table.
pub(crate) struct Series {
    pub(crate) bzimage: std::path::PathBuf,
    pub(crate) bytes: u64,
    /// Host seconds from QEMU's spawn to `Run /init`.
    pub(crate) host: Vec<f64>,
    /// The kernel's own time of `Run /init`.
    pub(crate) kernel: Vec<f64>,
}

impl Series {
    /// Host time minus kernel time, per boot: what ran before the kernel's clock started.
    pub(crate) fn before_kernel(&self) -> Vec<f64> {
        self.host
            .iter()
            .zip(&self.kernel)
            .map(|(h, k)| h - k)
            .collect()
    }
}

/// Boots each bzImage `runs` times, round-robin so drift in the host's load falls on all,
/// prints the first boot's initcall report of each and then one comparison table.
pub(crate) fn compare(bzimages: &[std::path::PathBuf], runs: usize, limit: Duration) -> Result<()> {
    let mut series: Vec<Series> = Vec::new();
    for b in bzimages {
        let bytes = std::fs::metadata(b)
            .with_context(|| {
                format!(
                    "{} not found: run `cargo xtask kernel` first, or pass --bzimage FILE",
                    b.display()
                )
            })?
            .len();
        series.push(Series {
            bzimage: b.clone(),
            bytes,
            host: Vec::new(),
            kernel: Vec::new(),
        });
    }
    for run in 0..runs {
        for s in &mut series {
            eprintln!(
                "bench --initcalls: boot {}/{runs} of {}",
                run + 1,
                s.bzimage.display()
            );
            let boot = boot_log(&s.bzimage, limit)?;
            let r = parse(&boot.log);
            if run == 0 {
                print(&s.bzimage, &r, 15);
                println!();
            }
            let kernel = r
                .run_init
                .context("the log has no time on its `Run /init` line (printk times off?)")?;
            s.host.push(boot.host_run_init.as_secs_f64());
            s.kernel.push(kernel);
        }
    }
    print!("{}", table(&series));
    Ok(())
}

/// The comparison table: per bzImage its size, and medians [min-max] of QEMU start to
/// `Run /init` (host), of the kernel's own time of it, and of the time before the kernel's
/// clock.
pub(crate) fn table(series: &[Series]) -> String {
    use super::stats::Summary;
    let cell = |v: &[f64]| {
        Summary::of(v).map_or("-".into(), |s| {
            format!("{:.3} [{:.3}-{:.3}] n={}", s.median, s.min, s.max, s.n)
        })
    };
    let mut out = format!(
        "{:<40} {:>10}  {:<26} {:<26} {:<26}\n",
        "bzImage",
        "bytes",
        "QEMU start to /init (s)",
        "kernel clock at /init (s)",
        "before the kernel's clock (s)"
    );
    for s in series {
        out.push_str(&format!(
            "{:<40} {:>10}  {:<26} {:<26} {:<26}\n",
            s.bzimage.display(),
            s.bytes,
            cell(&s.host),
            cell(&s.kernel),
            cell(&s.before_kernel())
        ));
    }
    out
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

    #[test]
    fn the_table_gives_medians_and_the_time_before_the_kernel_clock() {
        let s = Series {
            bzimage: "gz/bzImage".into(),
            bytes: 9_253_888,
            host: vec![4.0, 3.0, 5.0],
            kernel: vec![2.5, 2.0, 3.0],
        };
        assert_eq!(s.before_kernel(), vec![1.5, 1.0, 2.0]);
        let t = table(&[s]);
        let row = t.lines().nth(1).expect("a row");
        assert!(row.starts_with("gz/bzImage"), "{row}");
        assert!(row.contains(" 9253888 "), "{row}");
        assert!(row.contains("4.000 [3.000-5.000] n=3"), "{row}");
        assert!(row.contains("2.500 [2.000-3.000] n=3"), "{row}");
        assert!(row.contains("1.500 [1.000-2.000] n=3"), "{row}");
    }
}

//! The pure parts of the bench: medians and spreads of samples, kernel log timestamps,
//! and the fields of /proc/PID/status and smaps_rollup.
//!
//! Nothing here touches the host, a guest or the clock, so it is unit-tested; the
//! measuring lives in `guest.rs` and `host.rs`.

/// The summary of one series of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Summary {
    /// Median (mean of the two middle samples for an even count), min and max; `None`
    /// for no samples. NaNs are left out.
    pub(crate) fn of(samples: &[f64]) -> Option<Summary> {
        let mut v: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Summary {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        })
    }

    /// max - min.
    pub(crate) fn spread(&self) -> f64 {
        self.max - self.min
    }
}

/// One kernel log line: its timestamp in seconds and its text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogLine {
    pub secs: f64,
    pub text: String,
}

/// Parses `dmesg` output (`[    9.934422] Run /init as init process`, with or without a
/// `<N>` priority prefix); lines without a timestamp are skipped.
pub(crate) fn parse_dmesg(text: &str) -> Vec<LogLine> {
    text.lines().filter_map(parse_dmesg_line).collect()
}

fn parse_dmesg_line(line: &str) -> Option<LogLine> {
    let mut s = line.trim_start();
    if let Some(rest) = s.strip_prefix('<') {
        let end = rest.find('>')?;
        if !rest[..end].bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s = &rest[end + 1..];
    }
    let rest = s.strip_prefix('[')?;
    let end = rest.find(']')?;
    let secs: f64 = rest[..end].trim().parse().ok()?;
    let text = rest[end + 1..]
        .strip_prefix(' ')
        .unwrap_or(&rest[end + 1..]);
    Some(LogLine {
        secs,
        text: text.to_string(),
    })
}

/// The timestamp of the first line at or after `from` seconds that contains `needle`.
pub(crate) fn first_after(lines: &[LogLine], from: f64, needle: &str) -> Option<f64> {
    lines
        .iter()
        .find(|l| l.secs >= from && l.text.contains(needle))
        .map(|l| l.secs)
}

/// Seconds from the first line containing `start` to the first line at or after it that
/// contains `end`.
pub(crate) fn interval(lines: &[LogLine], start: &str, end: &str) -> Option<f64> {
    let t0 = first_after(lines, 0.0, start)?;
    let t1 = first_after(lines, t0, end)?;
    Some(t1 - t0)
}

/// A `Key:   1234 kB` or `key:\t42` field of /proc/PID/status or smaps_rollup: the first
/// number after the colon.
pub(crate) fn proc_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        if k.trim() != key {
            return None;
        }
        v.split_whitespace().next()?.parse().ok()
    })
}

/// Voluntary plus non-voluntary context switches from /proc/PID/status.
pub(crate) fn context_switches(status: &str) -> Option<u64> {
    Some(
        proc_field(status, "voluntary_ctxt_switches")?
            + proc_field(status, "nonvoluntary_ctxt_switches")?,
    )
}

/// Private memory from smaps_rollup in kB: Private_Clean + Private_Dirty.
pub(crate) fn private_kb(smaps_rollup: &str) -> Option<u64> {
    Some(proc_field(smaps_rollup, "Private_Clean")? + proc_field(smaps_rollup, "Private_Dirty")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread() {
        let s = Summary::of(&[3.0, 1.0, 2.0]).expect("samples");
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        let s = Summary::of(&[4.0, 1.0, 3.0, 2.0]).expect("samples");
        assert_eq!(s.median, 2.5);
        assert_eq!(s.spread(), 3.0);
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[f64::NAN]), None);
        assert_eq!(Summary::of(&[f64::NAN, 5.0]).map(|s| s.median), Some(5.0));
    }

    #[test]
    fn dmesg_lines_and_intervals() {
        let text = "\
[    0.000000] Linux version 6.1.0
<6>[    9.934422] Run /init as init process
no timestamp here
[   10.053021] keel: keel 0.1.0 starting as PID 1
[   20.198549] keel: sshd is ready
[   31.000000] bench: kill sshd 123
[   31.750000] keel: sshd is ready
";
        let lines = parse_dmesg(text);
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[1].text, "Run /init as init process");
        assert_eq!(lines[1].secs, 9.934422);
        let d = interval(&lines, "Run /init as init process", "keel: sshd is ready")
            .expect("both markers");
        assert!((d - 10.264127).abs() < 1e-9, "{d}");
        let k = interval(&lines, "bench: kill sshd", "keel: sshd is ready").expect("restart");
        assert!((k - 0.75).abs() < 1e-9, "{k}");
        assert_eq!(
            interval(&lines, "bench: kill dhclient", "sshd is ready"),
            None
        );
        assert_eq!(interval(&lines, "Run /init", "never printed"), None);
        assert_eq!(parse_dmesg("<x>[ 1.0] y"), vec![]);
    }

    #[test]
    fn proc_status_fields() {
        let status = "Name:\tkeel\nVmRSS:\t    1100 kB\nvoluntary_ctxt_switches:\t250\n\
                      nonvoluntary_ctxt_switches:\t12\n";
        assert_eq!(proc_field(status, "VmRSS"), Some(1100));
        assert_eq!(proc_field(status, "VmHWM"), None);
        assert_eq!(context_switches(status), Some(262));
        let rollup = "00400000-7ffd [rollup]\nRss: 1100 kB\nPss: 700 kB\n\
                      Private_Clean: 400 kB\nPrivate_Dirty: 220 kB\n";
        assert_eq!(private_kb(rollup), Some(620));
        assert_eq!(proc_field(rollup, "Pss"), Some(700));
        assert_eq!(private_kb("Rss: 1 kB\n"), None);
    }
}

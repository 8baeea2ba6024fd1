//! A figure of the bench: its series (keel, the baseline, the floor), unit, target, and the
//! medians, ratios and pass/fail drawn from them.

use super::stats::Summary;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    Secs,
    KiB,
    Bytes,
    Count,
}

impl Unit {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Unit::Secs => "s",
            Unit::KiB => "KiB",
            Unit::Bytes => "bytes",
            Unit::Count => "count",
        }
    }

    pub(super) fn show(self, v: f64) -> String {
        match self {
            Unit::Secs => format!("{v:.3}"),
            Unit::KiB | Unit::Bytes | Unit::Count => format!("{v:.0}"),
        }
    }
}

/// What a figure is checked against (informative only).
#[derive(Debug, Clone, Copy)]
pub(super) enum Target {
    /// keel's median over the second series' median at most this.
    RatioAtMost(f64),
    /// keel's median at most this, in the figure's unit.
    AtMost(f64),
    /// keel's median no greater than any other series' median.
    NoSlowerThanOthers,
}

impl Target {
    pub(super) fn text(self, unit: Unit) -> String {
        match self {
            Target::RatioAtMost(r) => format!("<= {r}x"),
            Target::AtMost(v) => format!("<= {} {}", unit.show(v), unit.as_str()),
            Target::NoSlowerThanOthers => "<= others".into(),
        }
    }
}

/// One measured series: whose, the samples, and why there are none (or fewer).
#[derive(Debug, Clone)]
pub(super) struct Series {
    pub(super) who: &'static str,
    pub(super) samples: Vec<f64>,
    pub(super) note: Option<String>,
}

impl Series {
    pub(super) fn new(who: &'static str) -> Self {
        Series {
            who,
            samples: Vec::new(),
            note: None,
        }
    }

    pub(super) fn missing(who: &'static str, why: &str) -> Self {
        Series {
            who,
            samples: Vec::new(),
            note: Some(why.to_string()),
        }
    }

    pub(super) fn push(&mut self, v: Option<f64>) {
        if let Some(v) = v {
            self.samples.push(v);
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
pub(super) struct Figure {
    pub(super) key: &'static str,
    pub(super) label: &'static str,
    pub(super) unit: Unit,
    /// keel first; the ratio is keel over each of the others.
    pub(super) series: Vec<Series>,
    pub(super) target: Option<Target>,
}

impl Figure {
    pub(super) fn new(
        key: &'static str,
        label: &'static str,
        unit: Unit,
        series: Vec<Series>,
    ) -> Self {
        Figure {
            key,
            label,
            unit,
            series,
            target: None,
        }
    }

    pub(super) fn target(mut self, t: Target) -> Self {
        self.target = Some(t);
        self
    }

    pub(super) fn median(&self, i: usize) -> Option<f64> {
        self.series
            .get(i)
            .and_then(|s| Summary::of(&s.samples))
            .map(|s| s.median)
    }

    /// keel's median over each other series' median.
    pub(super) fn ratios(&self) -> Vec<(&'static str, Option<f64>)> {
        let keel = self.median(0);
        (1..self.series.len())
            .map(|i| {
                let r = match (keel, self.median(i)) {
                    (Some(k), Some(o)) if o > 0.0 => Some(k / o),
                    _ => None,
                };
                (self.series[i].who, r)
            })
            .collect()
    }

    /// Whether the target is met; `None` when a median it needs is missing.
    pub(super) fn pass(&self) -> Option<bool> {
        let keel = self.median(0)?;
        match self.target? {
            Target::RatioAtMost(r) => self.ratios().first()?.1.map(|x| x <= r),
            Target::AtMost(v) => Some(keel <= v),
            Target::NoSlowerThanOthers => {
                let others: Option<Vec<f64>> =
                    (1..self.series.len()).map(|i| self.median(i)).collect();
                Some(others?.iter().all(|o| keel <= *o))
            }
        }
    }
}

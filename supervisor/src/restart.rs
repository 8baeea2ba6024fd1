//! The restart policy: how long to wait before starting a failed service again, and when
//! a crash loop means giving up.
//!
//! Pure: time comes in as [`Mono`], randomness as a seed handed to [`Rng`] by the driver.
//! Must not read the clock or any OS source of randomness; memory per service is bounded
//! by its crash-loop limit.

use crate::types::Mono;
use appliance::{Backoff, CrashLoop};
use std::collections::VecDeque;
use std::time::Duration;

/// A small deterministic PRNG (splitmix64) for backoff jitter; the seed is an input.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start again at this time.
    StartAt(Mono),
    /// The service failed `limit` times within `within`: stop trying.
    GiveUp,
}

/// One service's failure history.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Failures since the last healthy run; sets the backoff exponent.
    pub consecutive: u32,
    /// When the recent failures happened, oldest first, at most `limit` of them.
    failures: VecDeque<Mono>,
}

impl History {
    /// Forgets every failure (after a manual start or restart).
    pub fn reset(&mut self) {
        self.consecutive = 0;
        self.failures.clear();
    }

    /// Failures counted in the current crash-loop window.
    pub fn recent_failures(&self) -> usize {
        self.failures.len()
    }
}

/// The delay before the `n`th consecutive restart (`n` from 1), before jitter:
/// `initial * factor^(n-1)`, never above `cap`.
pub fn base_delay(b: &Backoff, n: u32) -> Duration {
    let cap = b.cap.as_millis();
    let mut d = b.initial.as_millis().min(cap);
    for _ in 1..n {
        if d >= cap {
            break;
        }
        d = (d.saturating_mul(u128::from(b.factor_milli)) / 1000).min(cap);
    }
    Duration::from_millis(u64::try_from(d).unwrap_or(u64::MAX))
}

/// `base` plus a random share of up to `jitter` of it, never above `cap`.
pub fn with_jitter(b: &Backoff, base: Duration, sample: u64) -> Duration {
    let base_ms = base.as_millis();
    let max_extra = base_ms.saturating_mul(u128::from(b.jitter_milli)) / 1000;
    let extra = if max_extra == 0 {
        0
    } else {
        u128::from(sample) % (max_extra + 1)
    };
    let total = base_ms.saturating_add(extra).min(b.cap.as_millis());
    Duration::from_millis(u64::try_from(total).unwrap_or(u64::MAX))
}

/// Records a failure at `now` and decides what happens next. `ran_for` is how long the
/// service had been ready before it failed (None if it never became ready); a run of at
/// least `reset_after` resets the backoff to `initial`.
pub fn decide(
    b: &Backoff,
    c: &CrashLoop,
    h: &mut History,
    ran_for: Option<Duration>,
    now: Mono,
    rng: &mut Rng,
) -> Decision {
    if ran_for.is_some_and(|r| r >= b.reset_after) {
        h.consecutive = 0;
    }
    h.consecutive = h.consecutive.saturating_add(1);
    while h
        .failures
        .front()
        .is_some_and(|&t| now.since(t) >= c.within)
    {
        h.failures.pop_front();
    }
    h.failures.push_back(now);
    let limit = usize::try_from(c.limit.max(1)).unwrap_or(usize::MAX);
    while h.failures.len() > limit {
        h.failures.pop_front();
    }
    if h.failures.len() >= limit {
        return Decision::GiveUp;
    }
    let delay = with_jitter(b, base_delay(b, h.consecutive), rng.next_u64());
    Decision::StartAt(now.plus(delay))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop_assert, proptest};

    fn backoff(initial: u64, factor_milli: u32, cap: u64, jitter_milli: u32) -> Backoff {
        Backoff {
            initial: Duration::from_millis(initial),
            factor_milli,
            cap: Duration::from_millis(cap),
            jitter_milli,
            reset_after: Duration::from_secs(60),
        }
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let b = backoff(200, 2000, 30_000, 0);
        let d: Vec<u128> = (1..=10).map(|n| base_delay(&b, n).as_millis()).collect();
        assert_eq!(
            d,
            [200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]
        );
        assert_eq!(base_delay(&b, u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn crash_loop_gives_up_on_the_limit_within_the_window() {
        let b = backoff(200, 2000, 30_000, 0);
        let c = CrashLoop {
            limit: 3,
            within: Duration::from_secs(10),
        };
        let (mut h, mut rng) = (History::default(), Rng::new(1));
        assert_eq!(
            decide(&b, &c, &mut h, None, Mono(1000), &mut rng),
            Decision::StartAt(Mono(1200))
        );
        assert_eq!(
            decide(&b, &c, &mut h, None, Mono(2000), &mut rng),
            Decision::StartAt(Mono(2400))
        );
        assert_eq!(
            decide(&b, &c, &mut h, None, Mono(3000), &mut rng),
            Decision::GiveUp
        );
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let b = backoff(200, 2000, 30_000, 0);
        let c = CrashLoop {
            limit: 2,
            within: Duration::from_secs(10),
        };
        let (mut h, mut rng) = (History::default(), Rng::new(1));
        assert!(matches!(
            decide(&b, &c, &mut h, None, Mono(1000), &mut rng),
            Decision::StartAt(_)
        ));
        assert!(matches!(
            decide(&b, &c, &mut h, None, Mono(11_001), &mut rng),
            Decision::StartAt(_)
        ));
        assert_eq!(h.recent_failures(), 1);
    }

    #[test]
    fn a_healthy_run_resets_the_delay() {
        let b = backoff(200, 2000, 30_000, 0);
        let c = CrashLoop {
            limit: 100,
            within: Duration::from_secs(1),
        };
        let (mut h, mut rng) = (History::default(), Rng::new(1));
        for t in 1..5 {
            decide(
                &b,
                &c,
                &mut h,
                Some(Duration::from_secs(1)),
                Mono(t * 10_000),
                &mut rng,
            );
        }
        assert_eq!(h.consecutive, 4);
        let d = decide(
            &b,
            &c,
            &mut h,
            Some(Duration::from_secs(60)),
            Mono(100_000),
            &mut rng,
        );
        assert_eq!(d, Decision::StartAt(Mono(100_200)));
    }

    #[test]
    fn jitter_is_deterministic_for_a_seed() {
        let b = backoff(1000, 1000, 30_000, 500);
        let a: Vec<Duration> = {
            let mut r = Rng::new(7);
            (0..5)
                .map(|_| with_jitter(&b, Duration::from_secs(1), r.next_u64()))
                .collect()
        };
        let mut r = Rng::new(7);
        let again: Vec<Duration> = (0..5)
            .map(|_| with_jitter(&b, Duration::from_secs(1), r.next_u64()))
            .collect();
        assert_eq!(a, again);
        assert!(a.iter().all(|d| (1000..=1500).contains(&d.as_millis())));
        assert!(a.iter().any(|d| *d != a[0]), "jitter never varied: {a:?}");
    }

    proptest! {
        #[test]
        fn delays_never_exceed_the_cap(
            initial in 10u64..100_000, factor in 1000u32..100_000, cap_extra in 0u64..1_000_000,
            jitter in 0u32..=1000, seed: u64, failures in 1usize..200, step in 0u64..100_000,
        ) {
            let b = backoff(initial, factor, initial + cap_extra, jitter);
            let c = CrashLoop { limit: 1000, within: Duration::from_secs(1) };
            let (mut h, mut rng) = (History::default(), Rng::new(seed));
            let mut now = Mono(0);
            for _ in 0..failures {
                now = Mono(now.0 + step);
                match decide(&b, &c, &mut h, None, now, &mut rng) {
                    Decision::StartAt(t) => {
                        prop_assert!(t.since(now) <= b.cap);
                        prop_assert!(t.since(now) >= b.initial.min(b.cap));
                    }
                    Decision::GiveUp => prop_assert!(false, "gave up with limit 1000"),
                }
            }
        }
    }
}

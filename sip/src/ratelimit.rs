//! Rate limits (issue #3, overload and abuse). Both are pure: the time is an input.
//!
//! [`NewCalls`]: new calls per second, as a token bucket of one second's burst.
//!
//! [`FailedAuth`]: failed authentications per source IP: after `max_failures` failures within
//! `window` of a source's first one, its requests are refused without checking credentials until
//! that window ends. Pure: the time is an input. Memory is bounded by `max_sources`: when a new
//! source arrives at the limit, the one whose window started longest ago is forgotten, so a flood
//! of spoofed addresses can only push out the oldest, least relevant records.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_failures: u32,
    pub window: Duration,
    pub max_sources: usize,
}

impl Default for Limits {
    /// Ten wrong passwords in five minutes is more than a misconfigured phone retrying and far
    /// less than a password guesser needs.
    fn default() -> Self {
        Limits { max_failures: 10, window: Duration::from_secs(300), max_sources: 10_000 }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    since: Instant,
    failures: u32,
}

#[derive(Debug)]
pub struct FailedAuth {
    limits: Limits,
    records: HashMap<IpAddr, Record>,
    /// The same records ordered by the start of their window, for eviction.
    by_age: BTreeSet<(Instant, IpAddr)>,
}

impl FailedAuth {
    pub fn new(limits: Limits) -> FailedAuth {
        FailedAuth { limits, records: HashMap::new(), by_age: BTreeSet::new() }
    }

    /// Whether requests from `source` are refused at `now` without looking at them.
    pub fn is_blocked(&self, source: IpAddr, now: Instant) -> bool {
        self.records.get(&source).is_some_and(|record| {
            record.failures >= self.limits.max_failures && now < record.since + self.limits.window
        })
    }

    pub fn record_failure(&mut self, source: IpAddr, now: Instant) {
        if let Some(record) = self.records.get_mut(&source) {
            if now < record.since + self.limits.window {
                record.failures = record.failures.saturating_add(1);
                return;
            }
            // The window is over: this failure starts a new one.
            self.by_age.remove(&(record.since, source));
            *record = Record { since: now, failures: 1 };
            self.by_age.insert((now, source));
            return;
        }
        if self.records.len() >= self.limits.max_sources
            && let Some((_, oldest)) = self.by_age.pop_first()
        {
            self.records.remove(&oldest);
        }
        if self.limits.max_sources > 0 {
            self.records.insert(source, Record { since: now, failures: 1 });
            self.by_age.insert((now, source));
        }
    }

    /// Forgets the sources whose window has ended; the edge calls it now and then so that memory
    /// shrinks after an attack.
    pub fn purge(&mut self, now: Instant) {
        while let Some(&(since, source)) = self.by_age.first() {
            if now < since + self.limits.window {
                break;
            }
            self.by_age.pop_first();
            self.records.remove(&source);
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// New calls per second as a token bucket: `per_second` tokens a second, at most one second's
/// worth saved, so a burst after a quiet spell is bounded too. Zero admits nothing.
#[derive(Debug, Clone)]
pub struct NewCalls {
    per_second: u32,
    /// Tokens in millionths, so that refilling at any rate stays exact in integers.
    micro_tokens: u64,
    last: Instant,
}

impl NewCalls {
    pub fn new(per_second: u32, now: Instant) -> NewCalls {
        NewCalls { per_second, micro_tokens: u64::from(per_second) * 1_000_000, last: now }
    }

    /// Whether a new call may start at `now`; takes its token if so.
    pub fn admit(&mut self, now: Instant) -> bool {
        let capacity = u64::from(self.per_second) * 1_000_000;
        let elapsed = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        // per_second tokens a second = per_second micro-tokens a microsecond.
        let earned = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).saturating_mul(u64::from(self.per_second));
        self.micro_tokens = self.micro_tokens.saturating_add(earned).min(capacity);
        if self.micro_tokens >= 1_000_000 {
            self.micro_tokens -= 1_000_000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    fn limiter(max_sources: usize) -> (FailedAuth, Instant) {
        let limits = Limits { max_failures: 3, window: Duration::from_secs(60), max_sources };
        (FailedAuth::new(limits), Instant::now())
    }

    #[test]
    fn a_source_is_blocked_after_n_failures_until_its_window_ends() {
        let (mut limiter, t0) = limiter(10);
        for second in 0..2 {
            limiter.record_failure(ip(1), t0 + Duration::from_secs(second));
        }
        assert!(!limiter.is_blocked(ip(1), t0 + Duration::from_secs(2)));
        limiter.record_failure(ip(1), t0 + Duration::from_secs(2));
        assert!(limiter.is_blocked(ip(1), t0 + Duration::from_secs(2)));
        assert!(limiter.is_blocked(ip(1), t0 + Duration::from_secs(59)));
        assert!(!limiter.is_blocked(ip(2), t0 + Duration::from_secs(59)), "other sources are not affected");
        assert!(!limiter.is_blocked(ip(1), t0 + Duration::from_secs(60)));
    }

    #[test]
    fn failures_spread_over_windows_do_not_add_up() {
        let (mut limiter, t0) = limiter(10);
        for minute in 0..10 {
            limiter.record_failure(ip(1), t0 + Duration::from_secs(minute * 61));
            limiter.record_failure(ip(1), t0 + Duration::from_secs(minute * 61 + 1));
            assert!(!limiter.is_blocked(ip(1), t0 + Duration::from_secs(minute * 61 + 1)));
        }
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn memory_is_bounded_by_evicting_the_oldest_source() {
        let (mut limiter, t0) = limiter(3);
        for n in 1..=3 {
            for _ in 0..3 {
                limiter.record_failure(ip(n), t0 + Duration::from_secs(u64::from(n)));
            }
        }
        limiter.record_failure(ip(4), t0 + Duration::from_secs(4));
        assert_eq!(limiter.len(), 3);
        let now = t0 + Duration::from_secs(5);
        assert!(!limiter.is_blocked(ip(1), now), "the oldest source was forgotten");
        assert!(limiter.is_blocked(ip(2), now) && limiter.is_blocked(ip(3), now));
        for n in 10..200 {
            limiter.record_failure(ip(n), now);
        }
        assert_eq!(limiter.len(), 3);
        assert_eq!(limiter.by_age.len(), 3);
    }

    #[test]
    fn purge_forgets_ended_windows() {
        let (mut limiter, t0) = limiter(10);
        limiter.record_failure(ip(1), t0);
        limiter.record_failure(ip(2), t0 + Duration::from_secs(30));
        limiter.purge(t0 + Duration::from_secs(60));
        assert_eq!(limiter.len(), 1);
        limiter.purge(t0 + Duration::from_secs(90));
        assert!(limiter.is_empty());
        assert!(limiter.by_age.is_empty());
    }

    #[test]
    fn new_calls_are_limited_per_second_with_a_bounded_burst() {
        let start = Instant::now();
        let mut calls = NewCalls::new(100, start);
        let admitted = (0..150).filter(|_| calls.admit(start)).count();
        assert_eq!(admitted, 100, "one second's burst");
        // 10 ms later: one more token.
        let later = start + Duration::from_millis(10);
        assert!(calls.admit(later));
        assert!(!calls.admit(later));
        // A long quiet spell saves no more than one second's worth.
        let much_later = start + Duration::from_secs(3_600);
        assert_eq!((0..500).filter(|_| calls.admit(much_later)).count(), 100);
        // Time going backwards changes nothing.
        assert!(!calls.admit(start));
        let mut none = NewCalls::new(0, start);
        assert!(!none.admit(much_later));
    }

    #[test]
    fn zero_sources_tracks_nothing() {
        let (mut limiter, t0) = limiter(0);
        limiter.record_failure(ip(1), t0);
        assert!(limiter.is_empty());
    }
}

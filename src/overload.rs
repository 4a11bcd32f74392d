//! Load shedding: while the media engine's prompt frames go out so late that callers hear gaps
//! (the player skips what it missed), new calls are refused with
//! 503 (`loket_sip::service::Overload`), so that the calls in progress keep their audio instead
//! of every call losing it and the SIP socket drowning in retransmissions.

use std::time::Duration;

use loket_crm::web::TelephonyMetrics;
use loket_media::edge::{MediaEngine, PaceReading};
use loket_sip::service::Overload;

/// How often the pace is read.
const EVERY: Duration = Duration::from_secs(1);
/// Fewer prompt-frame ticks than this in a reading (ten calls hearing a prompt for a second) say
/// nothing about the machine: a handful of calls on a busy machine is never refused.
const MIN_TICKS: u64 = 500;
/// The flag is raised at this share of late ticks and lowered below `CLEAR_SHARE`: far apart, so
/// that it does not flap with every reading.
const RAISE_SHARE: f64 = 0.10;
const CLEAR_SHARE: f64 = 0.02;

/// The decision, from successive readings of the engine's pace.
#[derive(Debug)]
pub struct Shedding {
    last: PaceReading,
    raised: bool,
}

/// What one reading brought: the ticks since the last one, and the decision on them.
#[derive(Debug)]
pub struct Verdict {
    pub raised: bool,
    pub ticks: u64,
    pub late: u64,
}

impl Verdict {
    pub fn late_share(&self) -> f64 {
        if self.ticks == 0 { 0.0 } else { self.late as f64 / self.ticks as f64 }
    }
}

impl Shedding {
    pub fn new(start: PaceReading) -> Shedding {
        Shedding { last: start, raised: false }
    }

    /// Whether new calls are to be refused, judged on the ticks since the last reading.
    pub fn update(&mut self, reading: PaceReading) -> Verdict {
        let ticks = reading.ticks.saturating_sub(self.last.ticks);
        let late = reading.late.saturating_sub(self.last.late);
        self.last = reading;
        let mut verdict = Verdict { raised: false, ticks, late };
        let threshold = if self.raised { CLEAR_SHARE } else { RAISE_SHARE };
        self.raised = ticks >= MIN_TICKS && verdict.late_share() >= threshold;
        verdict.raised = self.raised;
        verdict
    }
}

/// Reads the pace every second, raises or lowers the flag, and copies the figures into the
/// metrics; runs until aborted.
pub async fn watch(media: MediaEngine, overload: Overload, metrics: TelephonyMetrics) {
    let mut shedding = Shedding::new(media.pace());
    let mut refused_before = overload.refused();
    let mut interval = tokio::time::interval(EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let verdict = shedding.update(media.pace());
        if verdict.raised != overload.is_raised() {
            let late_share = verdict.late_share();
            if verdict.raised {
                tracing::warn!(
                    late_share,
                    "prompts are going out late: new calls are refused (503) until they are on time"
                );
            } else {
                tracing::info!(late_share, "prompts are on time again: new calls are taken");
            }
            overload.set(verdict.raised);
        }
        let refused = overload.refused();
        metrics.prompt_ticks.inc_by(verdict.ticks);
        metrics.late_prompt_ticks.inc_by(verdict.late);
        metrics.calls_refused.inc_by(refused.saturating_sub(refused_before));
        metrics.overload.set(i64::from(verdict.raised));
        refused_before = refused;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Readings of `ticks` and `late` more each.
    fn run(steps: &[(u64, u64)]) -> Vec<bool> {
        let mut total = PaceReading::default();
        let mut shedding = Shedding::new(total);
        steps
            .iter()
            .map(|(ticks, late)| {
                total = PaceReading { ticks: total.ticks + ticks, late: total.late + late };
                shedding.update(total).raised
            })
            .collect()
    }

    #[test]
    fn late_prompts_raise_the_flag_and_punctual_ones_lower_it() {
        assert_eq!(
            run(&[(50_000, 0), (50_000, 4_999), (50_000, 5_000), (50_000, 1_000), (50_000, 999), (50_000, 4_999)]),
            [false, false, true, true, false, false]
        );
    }

    #[test]
    fn a_few_calls_are_never_refused() {
        // Every tick late, but fewer than ten calls' worth.
        assert_eq!(run(&[(499, 499), (500, 500), (100, 100)]), [false, true, false]);
    }

    #[test]
    fn no_ticks_lower_the_flag() {
        assert_eq!(run(&[(1_000, 1_000), (0, 0)]), [true, false]);
    }
}

//! Load shedding: while the media engine's prompt frames go out so late that callers hear gaps
//! (the player skips what it missed), loket holds the legs alive at once under a ceiling
//! (`loket_sip::service::Overload`), and new calls beyond it are refused with 503, so that the
//! calls in progress keep their audio instead of every call losing it and the SIP socket drowning
//! in retransmissions.
//!
//! The ceiling follows the load the machine carries: set a tenth below the legs alive when the
//! prompts are late, lowered again only if they are still late once the calls have come down to
//! it, raised a fiftieth a second while they are on time, and lifted when the legs alive are
//! half of it. An on/off switch instead lets every new call in as soon as the prompts are on time,
//! and the next burst overloads the machine again: at 700 calls/s of 5.2 s it rose twice in 20 s,
//! and the calls it admitted heard 22 of their 50 frames a second.

use std::time::Duration;

use loket_crm::web::TelephonyMetrics;
use loket_media::edge::{MediaEngine, PaceReading};
use loket_sip::service::Overload;

/// How often the pace is read.
const EVERY: Duration = Duration::from_secs(1);
/// Fewer prompt-frame ticks than this in a reading (ten calls hearing a prompt for a second) say
/// nothing about the machine: a handful of calls on a busy machine is never refused.
const MIN_TICKS: u64 = 500;
/// Late at this share of late ticks, on time below `ON_TIME_SHARE`; in between the ceiling holds,
/// so that it does not move with every reading.
const LATE_SHARE: f64 = 0.10;
const ON_TIME_SHARE: f64 = 0.02;

/// The decision, from successive readings of the engine's pace and the legs alive.
#[derive(Debug)]
pub struct Shedding {
    last: PaceReading,
    ceiling: Option<usize>,
}

/// What one reading brought: the ticks since the last one, and the ceiling decided on them.
#[derive(Debug)]
pub struct Verdict {
    pub ceiling: Option<usize>,
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
        Shedding { last: start, ceiling: None }
    }

    /// The ceiling on the legs alive at once, judged on the ticks since the last reading and the
    /// legs alive now.
    pub fn update(&mut self, reading: PaceReading, legs: usize) -> Verdict {
        let ticks = reading.ticks.saturating_sub(self.last.ticks);
        let late = reading.late.saturating_sub(self.last.late);
        self.last = reading;
        let mut verdict = Verdict { ceiling: None, ticks, late };
        let share = verdict.late_share();
        self.ceiling = if ticks >= MIN_TICKS && share >= LATE_SHARE {
            match self.ceiling {
                // Calls still coming down to the ceiling: it has not been tried yet.
                Some(ceiling) if legs > ceiling => Some(ceiling),
                _ => Some((legs - legs / 10).max(1)),
            }
        } else if ticks < MIN_TICKS || share < ON_TIME_SHARE {
            match self.ceiling {
                Some(ceiling) if legs <= ceiling / 2 => None,
                Some(ceiling) => Some(ceiling + (ceiling / 50).max(1)),
                None => None,
            }
        } else {
            self.ceiling
        };
        verdict.ceiling = self.ceiling;
        verdict
    }
}

/// Reads the pace every second, sets or lifts the ceiling, and copies the figures into the
/// metrics; runs until aborted.
pub async fn watch(media: MediaEngine, overload: Overload, metrics: TelephonyMetrics) {
    let mut shedding = Shedding::new(media.pace());
    let mut refused_before = overload.refused();
    let mut interval = tokio::time::interval(EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let legs = overload.legs();
        let verdict = shedding.update(media.pace(), legs);
        let before = overload.ceiling();
        if verdict.ceiling != before {
            let late_share = verdict.late_share();
            match (before, verdict.ceiling) {
                (_, None) => tracing::info!(legs, "prompts are on time: the overload ceiling is lifted"),
                (Some(before), Some(ceiling)) if ceiling > before => {
                    tracing::debug!(legs, ceiling, "prompts are on time: the overload ceiling rises")
                }
                (_, Some(ceiling)) => tracing::warn!(
                    late_share,
                    legs,
                    ceiling,
                    "prompts are going out late: new calls beyond the ceiling are refused (503)"
                ),
            }
            overload.set_ceiling(verdict.ceiling);
        }
        let refused = overload.refused();
        metrics.prompt_ticks.inc_by(verdict.ticks);
        metrics.late_prompt_ticks.inc_by(verdict.late);
        metrics.calls_refused.inc_by(refused.saturating_sub(refused_before));
        metrics.overload.set(i64::from(verdict.ceiling.is_some()));
        metrics.ceiling.set(verdict.ceiling.map_or(0, gauge_value));
        metrics.legs.set(gauge_value(legs));
        refused_before = refused;
    }
}

fn gauge_value(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Readings of (ticks, late) more each, with the legs alive; the ceilings decided.
    fn run(steps: &[(u64, u64, usize)]) -> Vec<Option<usize>> {
        let mut total = PaceReading::default();
        let mut shedding = Shedding::new(total);
        steps
            .iter()
            .map(|&(ticks, late, legs)| {
                total = PaceReading { ticks: total.ticks + ticks, late: total.late + late };
                shedding.update(total, legs).ceiling
            })
            .collect()
    }

    #[test]
    fn late_prompts_set_a_ceiling_below_the_legs_alive() {
        assert_eq!(
            run(&[(50_000, 0, 2_000), (50_000, 4_999, 2_000), (50_000, 5_000, 2_000)]),
            [None, None, Some(1_800)]
        );
    }

    #[test]
    fn the_ceiling_is_lowered_again_only_once_the_calls_came_down_to_it() {
        assert_eq!(
            run(&[
                (50_000, 5_000, 2_000),
                // Still late while the calls above the ceiling end: it holds.
                (50_000, 9_000, 1_950),
                // Still late at the ceiling: it was too high.
                (50_000, 9_000, 1_800),
                // Between on time and late: it holds.
                (50_000, 1_000, 1_620),
            ]),
            [Some(1_800), Some(1_800), Some(1_620), Some(1_620)]
        );
    }

    #[test]
    fn on_time_prompts_raise_the_ceiling_and_lift_it_when_the_load_is_half() {
        assert_eq!(
            run(&[(50_000, 5_000, 1_000), (50_000, 999, 900), (50_000, 0, 900), (50_000, 0, 459), (50_000, 0, 900)]),
            [Some(900), Some(918), Some(936), None, None]
        );
    }

    #[test]
    fn a_few_calls_are_never_refused() {
        // Every tick late, but fewer than ten calls' worth; then no ticks at all.
        assert_eq!(run(&[(499, 499, 10), (500, 500, 10), (100, 100, 10), (0, 0, 4)]), [None, Some(9), Some(10), None]);
    }

    #[test]
    fn a_single_leg_keeps_a_ceiling_of_one() {
        assert_eq!(run(&[(1_000, 1_000, 1), (1_000, 1_000, 0)]), [Some(1), Some(1)]);
    }
}

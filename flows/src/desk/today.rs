//! Today's routing events, for the board's figures: the event log followed from where the desk
//! started, keeping the events of the current day on Brussels clocks. The figures themselves are
//! `loket_routing::kpi`'s, the same functions as the reports'.

use loket_routing::event::RoutingEvent;
use loket_routing::model::Timestamp;
use time::{Date, OffsetDateTime};

#[derive(Debug, Default)]
pub struct Today {
    day: Option<Date>,
    events: Vec<RoutingEvent>,
}

impl Today {
    /// Adds events read from the log at `now`; a new day starts empty.
    pub fn add(&mut self, now: Timestamp, events: impl IntoIterator<Item = RoutingEvent>) {
        self.roll(now);
        let today = self.day;
        self.events.extend(events.into_iter().filter(|event| Some(day_of(event.at)) == today));
    }

    /// The day's events so far, as of `now`.
    pub fn events(&mut self, now: Timestamp) -> Vec<RoutingEvent> {
        self.roll(now);
        self.events.clone()
    }

    fn roll(&mut self, now: Timestamp) {
        let today = day_of(now);
        if self.day != Some(today) {
            self.day = Some(today);
            self.events.clear();
        }
    }
}

fn day_of(at: Timestamp) -> Date {
    let utc =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.0) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    loket_ivr::schedule::brussels(utc).date()
}

#[cfg(test)]
mod tests {
    use loket_routing::event::EventKind;

    use super::*;

    fn event(at: i64) -> RoutingEvent {
        RoutingEvent {
            at: Timestamp(at),
            item: None,
            agent: None,
            queue: None,
            channel: None,
            kind: EventKind::Abandoned,
        }
    }

    /// 2026-11-29 23:30 in Brussels (UTC+1) is 22:30 UTC.
    const LATE: i64 = 1_795_991_400_000;

    #[test]
    fn the_day_is_brusselss_and_a_new_one_starts_empty() {
        let mut today = Today::default();
        let yesterday_evening = LATE - 24 * 3_600_000;
        today.add(Timestamp(LATE), [event(yesterday_evening), event(LATE - 60_000), event(LATE)]);
        assert_eq!(today.events(Timestamp(LATE)).len(), 2, "yesterday's event is not today's");
        // 00:30 in Brussels, still 23:30 UTC: a new day there.
        let after_midnight = LATE + 3_600_000;
        assert!(today.events(Timestamp(after_midnight)).is_empty());
        today.add(Timestamp(after_midnight), [event(after_midnight)]);
        assert_eq!(today.events(Timestamp(after_midnight)).len(), 1);
    }
}

//! Opening hours per service: weekly ranges, closed days and exceptional days, in local time.

use std::collections::BTreeMap;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::config::ScheduleConfig;

/// The time on Brussels clocks: CET, and CEST from the last Sunday of March to the last Sunday of
/// October, both changes at 01:00 UTC (EU directive 2000/84/EC). Written out rather than read
/// from the system's zone database, so that a server set to UTC still opens at 08:30 in Brussels.
pub fn brussels(at: OffsetDateTime) -> PrimitiveDateTime {
    let utc = at.to_offset(UtcOffset::UTC);
    let change = |month| {
        PrimitiveDateTime::new(last_sunday(utc.year(), month), time::Time::MIDNIGHT).assume_utc() + time::Duration::HOUR
    };
    let summer = change(Month::March) <= utc && utc < change(Month::October);
    let local = utc + time::Duration::hours(if summer { 2 } else { 1 });
    PrimitiveDateTime::new(local.date(), local.time())
}

fn last_sunday(year: i32, month: Month) -> Date {
    let last = Date::from_calendar_date(year, month, month.length(year)).unwrap_or(Date::MIN);
    last - time::Duration::days(i64::from(last.weekday().number_days_from_sunday()))
}

/// Minutes since midnight, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    start: u16,
    end: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// Monday first.
    weekly: [Vec<Range>; 7],
    /// Closed days (an empty list) and days with hours of their own.
    dates: BTreeMap<Date, Vec<Range>>,
}

impl Schedule {
    /// The error says which value is wrong, in the words of the configuration.
    pub fn parse(config: &ScheduleConfig) -> Result<Schedule, String> {
        let days = [
            &config.monday,
            &config.tuesday,
            &config.wednesday,
            &config.thursday,
            &config.friday,
            &config.saturday,
            &config.sunday,
        ];
        let mut weekly: [Vec<Range>; 7] = Default::default();
        for (slot, ranges) in weekly.iter_mut().zip(days) {
            *slot = parse_ranges(ranges)?;
        }
        let mut dates = BTreeMap::new();
        for day in &config.closed {
            dates.insert(parse_date(day)?, Vec::new());
        }
        for exception in &config.exceptions {
            let date = parse_date(&exception.date)?;
            if dates.insert(date, parse_ranges(&exception.hours)?).is_some() {
                return Err(format!("{} is listed twice", exception.date));
            }
        }
        Ok(Schedule { weekly, dates })
    }

    pub fn is_open(&self, at: PrimitiveDateTime) -> bool {
        let ranges = match self.dates.get(&at.date()) {
            Some(ranges) => ranges,
            None => &self.weekly[usize::from(at.weekday().number_days_from_monday())],
        };
        let minute = u16::from(at.hour()) * 60 + u16::from(at.minute());
        ranges.iter().any(|range| range.start <= minute && minute < range.end)
    }
}

fn parse_ranges(ranges: &[String]) -> Result<Vec<Range>, String> {
    ranges.iter().map(|range| parse_range(range)).collect()
}

fn parse_range(text: &str) -> Result<Range, String> {
    let invalid = || format!("{text:?} is not a range like \"08:30-12:30\"");
    let (start, end) = text.split_once('-').ok_or_else(invalid)?;
    let (start, end) = (parse_time(start).ok_or_else(invalid)?, parse_time(end).ok_or_else(invalid)?);
    if start >= end {
        return Err(format!("{text:?} ends before it starts"));
    }
    Ok(Range { start, end })
}

/// `HH:MM`, up to `24:00`.
fn parse_time(text: &str) -> Option<u16> {
    let (hours, minutes) = text.trim().split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let (hours, minutes): (u16, u16) = (hours.parse().ok()?, minutes.parse().ok()?);
    (minutes < 60 && (hours < 24 || (hours == 24 && minutes == 0))).then_some(hours * 60 + minutes)
}

fn parse_date(text: &str) -> Result<Date, String> {
    Date::parse(text, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| format!("{text:?} is not a date like \"2026-12-25\""))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::config::ExceptionConfig;

    #[test]
    fn brussels_clocks_change_on_the_last_sundays_of_march_and_october() {
        use time::macros::datetime as at;
        assert_eq!(brussels(at!(2026-01-15 07:30 UTC)), at!(2026-01-15 08:30));
        assert_eq!(brussels(at!(2026-03-29 00:59 UTC)), at!(2026-03-29 01:59));
        assert_eq!(brussels(at!(2026-03-29 01:00 UTC)), at!(2026-03-29 03:00));
        assert_eq!(brussels(at!(2026-07-01 10:00 UTC)), at!(2026-07-01 12:00));
        assert_eq!(brussels(at!(2026-10-25 00:59 UTC)), at!(2026-10-25 02:59));
        assert_eq!(brussels(at!(2026-10-25 01:00 UTC)), at!(2026-10-25 02:00));
        assert_eq!(brussels(at!(2027-03-28 01:00 +02:00)), at!(2027-03-28 00:00));
        assert_eq!(brussels(at!(2026-12-31 23:30 UTC)), at!(2027-01-01 00:30));
    }

    fn population() -> Schedule {
        let weekday = vec!["08:30-12:30".to_owned(), "13:30-16:00".to_owned()];
        Schedule::parse(&ScheduleConfig {
            monday: weekday.clone(),
            tuesday: weekday.clone(),
            wednesday: vec!["08:30-12:30".to_owned()],
            thursday: vec!["08:30-12:30".to_owned(), "13:30-19:00".to_owned()],
            friday: weekday,
            closed: vec!["2026-12-25".to_owned()],
            exceptions: vec![ExceptionConfig { date: "2026-12-24".to_owned(), hours: vec!["08:30-12:00".to_owned()] }],
            ..ScheduleConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn weekly_hours_with_closed_days_and_exceptions() {
        let schedule = population();
        // 2026-12-21 is a Monday.
        assert!(!schedule.is_open(datetime!(2026-12-21 08:29)));
        assert!(schedule.is_open(datetime!(2026-12-21 08:30)));
        assert!(schedule.is_open(datetime!(2026-12-21 12:29)));
        assert!(!schedule.is_open(datetime!(2026-12-21 12:30)), "the lunch break");
        assert!(schedule.is_open(datetime!(2026-12-21 15:59)));
        assert!(!schedule.is_open(datetime!(2026-12-21 16:00)));
        assert!(!schedule.is_open(datetime!(2026-12-23 14:00)), "Wednesday afternoon");
        assert!(schedule.is_open(datetime!(2026-12-24 11:59)), "Thursday 24th: a morning of its own");
        assert!(!schedule.is_open(datetime!(2026-12-24 15:00)), "not Thursday's late opening");
        assert!(!schedule.is_open(datetime!(2026-12-25 10:00)), "Christmas");
        assert!(!schedule.is_open(datetime!(2026-12-26 10:00)), "Saturday");
        assert!(schedule.is_open(datetime!(2026-12-31 18:30)), "an ordinary Thursday evening");
    }

    #[test]
    fn bad_values_are_named() {
        for (range, message) in [
            ("8:30-12:30", "not a range"),
            ("08:30", "not a range"),
            ("12:30-08:30", "ends before it starts"),
            ("08:60-09:00", "not a range"),
            ("24:01-24:02", "not a range"),
        ] {
            let config = ScheduleConfig { monday: vec![range.to_owned()], ..ScheduleConfig::default() };
            let error = Schedule::parse(&config).unwrap_err();
            assert!(error.contains(range) && error.contains(message), "{range}: {error}");
        }
    }
}

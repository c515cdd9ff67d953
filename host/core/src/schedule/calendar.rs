//! Calendar rules, as in the VergeOS Task Engine: repeat every N minutes, hours, days,
//! weeks, months or years from the schedule's start, optionally only on some weekdays,
//! on a chosen day of the month, at a time of day, within a daily window.
//!
//! - minutes and hours count real elapsed time from the start instant (a DST jump does
//!   not stretch or shrink an interval); the weekday mask and the daily window are
//!   checked against the local wall clock.
//! - days, weeks, months and years step through local dates and fire at the time of day
//!   (default: the start's), mapped to an instant with the DST rules of `zone`.
//! - weeks are anchored at the Monday of the start's week: "every 2 weeks on Fri" fires
//!   on the Fridays of weeks 0, 2, 4, ... counted from the start.
//! - a day of month that a month lacks (31st in April, 29th in a common February) does
//!   not fire that month; use `last` for the month's last day.

use super::zone;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The unit of a calendar rule's interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Minutes (real elapsed time).
    Minutes,
    /// Hours (real elapsed time).
    Hours,
    /// Local calendar days.
    Days,
    /// Weeks, anchored at the start's week.
    Weeks,
    /// Calendar months.
    Months,
    /// Calendar years.
    Years,
}

/// Which day of the month a monthly rule fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DayOfMonth {
    /// The 1st.
    First,
    /// The last day of the month.
    Last,
    /// The start date's day (default).
    Start,
    /// A fixed day, 1-31.
    Day(u32),
}

/// A calendar rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarRule {
    /// Repeat every this many units (1-1000).
    pub every: u32,
    /// The unit.
    pub unit: Unit,
    /// Only on these weekdays (all when empty). For weeks: the days of the week it fires
    /// on (default: the start's weekday).
    #[serde(default)]
    pub weekdays: Vec<Weekday>,
    /// For months: which day (default: the start's day).
    #[serde(default)]
    pub day_of_month: Option<DayOfMonth>,
    /// Time of day for days, weeks, months, years (default: the start's).
    #[serde(default)]
    pub at: Option<NaiveTime>,
    /// For minutes and hours: only fire when the local time is in [from, to).
    #[serde(default)]
    pub window: Option<(NaiveTime, NaiveTime)>,
}

impl CalendarRule {
    /// Check the fields, naming the first bad one.
    pub fn validate(&self) -> Result<(), crate::Invalid> {
        if !(1..=1000).contains(&self.every) {
            return Err(format!("calendar.every: {} is outside 1..=1000", self.every).into());
        }
        if let Some(DayOfMonth::Day(d)) = self.day_of_month
            && !(1..=31).contains(&d)
        {
            return Err(format!("calendar.day_of_month: {d} is outside 1..=31").into());
        }
        if self.day_of_month.is_some() && self.unit != Unit::Months {
            return Err("calendar.day_of_month: only for unit months".into());
        }
        if self.window.is_some() && !matches!(self.unit, Unit::Minutes | Unit::Hours) {
            return Err("calendar.window: only for units minutes and hours".into());
        }
        if let Some((from, to)) = self.window
            && from >= to
        {
            return Err("calendar.window: `from` must be before `to` (same day)".into());
        }
        if self.at.is_some() && matches!(self.unit, Unit::Minutes | Unit::Hours) {
            return Err("calendar.at: not for units minutes and hours (they count from the start)".into());
        }
        Ok(())
    }

    fn weekday_ok(&self, date: NaiveDate) -> bool {
        self.weekdays.is_empty() || self.weekdays.contains(&date.weekday())
    }

    /// The first fire strictly after `after`, for a schedule starting at `start` in `tz`.
    pub fn next_after(
        &self,
        tz: Tz,
        start: DateTime<Utc>,
        after: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, Option<zone::DstNote>)> {
        let start_wall = start.with_timezone(&tz).naive_local();
        let at = self.at.unwrap_or(start_wall.time());
        match self.unit {
            Unit::Minutes | Unit::Hours => {
                let step = i64::from(self.every) * if self.unit == Unit::Minutes { 60 } else { 3600 };
                let first = if after < start {
                    0
                } else {
                    (after - start).num_seconds() / step + 1
                };
                // Step through the candidates, jumping over closed windows and excluded
                // days to the next window opening. Bounded: four years after `after`.
                let horizon = after + Duration::days(4 * 366);
                let mut k = first;
                for _ in 0..2_000_000 {
                    let t = start + Duration::seconds(k * step);
                    if t > horizon {
                        return None;
                    }
                    let wall = t.with_timezone(&tz).naive_local();
                    let day_ok = self.weekday_ok(wall.date());
                    let in_window = self
                        .window
                        .is_none_or(|(from, to)| wall.time() >= from && wall.time() < to);
                    if t > after && in_window && day_ok {
                        return Some((t, None));
                    }
                    let reopen = match self.window {
                        Some((from, _)) if !(in_window && day_ok) => {
                            let date = if day_ok && wall.time() < from {
                                wall.date()
                            } else {
                                wall.date().succ_opt()?
                            };
                            Some(NaiveDateTime::new(date, from))
                        }
                        None if !day_ok => Some(NaiveDateTime::new(wall.date().succ_opt()?, NaiveTime::MIN)),
                        _ => None,
                    };
                    k = match reopen {
                        Some(wall) => {
                            let (open, _) = zone::resolve(tz, wall);
                            let secs = (open - start).num_seconds();
                            (k + 1).max(secs.div_euclid(step) + i64::from(secs.rem_euclid(step) != 0))
                        }
                        None => k + 1,
                    };
                }
                None
            }
            Unit::Days => {
                let from = after.with_timezone(&tz).date_naive().max(start_wall.date());
                let offset = (from - start_wall.date()).num_days().max(0) / i64::from(self.every);
                let mut k = offset.saturating_sub(1);
                loop {
                    let date = start_wall.date() + Duration::days(k * i64::from(self.every));
                    if date.year() > 9000 {
                        return None;
                    }
                    if self.weekday_ok(date) {
                        let (t, note) = zone::resolve(tz, NaiveDateTime::new(date, at));
                        if t > after && t >= start {
                            return Some((t, note));
                        }
                    }
                    k += 1;
                }
            }
            Unit::Weeks => {
                let anchor = start_wall.date()
                    - Duration::days(i64::from(start_wall.weekday().num_days_from_monday()));
                let mut days: Vec<Weekday> = if self.weekdays.is_empty() {
                    vec![start_wall.weekday()]
                } else {
                    self.weekdays.clone()
                };
                days.sort_by_key(|d| d.num_days_from_monday());
                let from = after.with_timezone(&tz).date_naive().max(start_wall.date());
                let weeks = (from - anchor).num_days().max(0) / 7 / i64::from(self.every);
                let mut k = weeks.saturating_sub(1);
                loop {
                    let monday = anchor + Duration::days(7 * k * i64::from(self.every));
                    if monday.year() > 9000 {
                        return None;
                    }
                    for d in &days {
                        let date = monday + Duration::days(i64::from(d.num_days_from_monday()));
                        if date < start_wall.date() {
                            continue;
                        }
                        let (t, note) = zone::resolve(tz, NaiveDateTime::new(date, at));
                        if t > after && t >= start {
                            return Some((t, note));
                        }
                    }
                    k += 1;
                }
            }
            Unit::Months | Unit::Years => {
                let months_per_step = i64::from(self.every) * if self.unit == Unit::Years { 12 } else { 1 };
                let from = after.with_timezone(&tz).date_naive().max(start_wall.date());
                let month_index = |d: NaiveDate| i64::from(d.year()) * 12 + i64::from(d.month0());
                let first = month_index(start_wall.date());
                let mut k = ((month_index(from) - first) / months_per_step)
                    .saturating_sub(1)
                    .max(0);
                loop {
                    let m = first + k * months_per_step;
                    // Euclidean: a month index below zero still maps to months 1-12 (found
                    // by the `schedule` fuzz target with a start before year 0).
                    let (year, month) = (m.div_euclid(12) as i32, m.rem_euclid(12) as u32 + 1);
                    if year > 9000 {
                        return None;
                    }
                    let day = match (self.unit, self.day_of_month.unwrap_or(DayOfMonth::Start)) {
                        (Unit::Years, _) | (_, DayOfMonth::Start) => Some(start_wall.day()),
                        (_, DayOfMonth::First) => Some(1),
                        (_, DayOfMonth::Last) => last_day(year, month),
                        (_, DayOfMonth::Day(d)) => Some(d),
                    };
                    if let Some(date) = day.and_then(|d| NaiveDate::from_ymd_opt(year, month, d))
                        && self.weekday_ok(date)
                    {
                        let (t, note) = zone::resolve(tz, NaiveDateTime::new(date, at));
                        if t > after && t >= start {
                            return Some((t, note));
                        }
                    }
                    k += 1;
                }
            }
        }
    }
}

fn last_day(year: i32, month: u32) -> Option<u32> {
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(ny, nm, 1).map(|d| d.pred_opt().map(|p| p.day()).unwrap_or(28))
}

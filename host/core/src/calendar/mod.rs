//! Calendars and maintenance windows: times when schedules do not run.
//!
//! A **calendar** is a named set of excluded days and time ranges: single dates, yearly
//! dates (`12-25`), ranges of dates or wall times, and the events of an iCalendar file
//! (public holidays exported from any calendar program). Schedules name the calendars
//! they honour; a slot inside an excluded window is skipped and recorded as skipped with
//! the reason, or deferred to the window's end, per the schedule's `excluded` policy.
//! Dates and wall times are read in the calendar's `timezone`, or the schedule's when
//! the calendar names none: "weekdays 08:00 Europe/Berlin except public holidays" is a
//! calendar of dates and a schedule in Berlin.
//!
//! A **maintenance window** is a one-off exclusion from now for a while, for every
//! schedule or the ones named (`sundial maintenance start --for 2h`).
//!
//! Everything here is pure: given the specs and an instant, which window (if any)
//! contains it.

pub mod ics;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// A whole day, `{"date": "2026-12-25"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DateEntry {
    /// The day.
    pub date: NaiveDate,
    /// Why (shown in the skipped run's log).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// The same day every year, `{"yearly": "12-25"}` (29 February only in leap years).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct YearlyEntry {
    /// `MM-DD`.
    pub yearly: String,
    /// Why.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// From `from` up to `to`: dates (`2026-12-24` to `2026-12-26`, both days whole), wall
/// times (`2026-12-24T18:00` up to, not including, `2026-12-27T06:00`) or RFC 3339
/// instants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RangeEntry {
    /// Start: a date, a wall time or an RFC 3339 instant.
    pub from: String,
    /// End: a date (included), a wall time or an RFC 3339 instant (excluded).
    pub to: String,
    /// Why.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// One excluded day or range: `{"date"}`, `{"yearly"}` or `{"from", "to"}`, each with an
/// optional `note`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Exclusion {
    /// A whole day.
    Date(DateEntry),
    /// A day every year.
    Yearly(YearlyEntry),
    /// A range of days, wall times or instants.
    Range(RangeEntry),
}

/// A calendar's definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    /// Unique name (same rules as task names).
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_.-]*$"), length(max = 64))]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// IANA zone its dates and wall times are read in; empty: the zone of the schedule
    /// that uses it.
    #[serde(default)]
    pub timezone: String,
    /// The excluded days and ranges (at most 10 000 with the iCalendar events).
    #[serde(default)]
    #[schemars(length(max = 10_000))]
    pub exclude: Vec<Exclusion>,
    /// An iCalendar file's text; its events are excluded too (see [`ics`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1_048_576))]
    pub ics: Option<String>,
}

/// Most exclusions in one calendar, iCalendar events included.
pub const MAX_EXCLUSIONS: usize = 10_000;
/// Largest `ics` text: 1 MiB.
pub const MAX_ICS_BYTES: usize = 1 << 20;

/// An excluded window: `[start, end)` and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// First excluded instant.
    pub start: DateTime<Utc>,
    /// First instant after it.
    pub end: DateTime<Utc>,
    /// Why: the calendar (or maintenance window) and the entry's note.
    pub reason: String,
}

/// One end of a range, as written.
enum Bound {
    Day(NaiveDate),
    Wall(NaiveDateTime),
    Instant(DateTime<Utc>),
}

/// Years a calendar may name: 1970 to 9000, as for schedules (arithmetic on days then
/// never leaves chrono's range).
const YEARS: std::ops::RangeInclusive<i32> = 1970..=9000;

fn check_year(field: &str, year: i32) -> Result<(), String> {
    if YEARS.contains(&year) {
        Ok(())
    } else {
        Err(format!("{field}: year {year} is outside 1970..=9000"))
    }
}

fn parse_bound(field: &str, text: &str) -> Result<Bound, String> {
    let bound = parse_bound_any(field, text)?;
    let year = match &bound {
        Bound::Day(d) => d.year(),
        Bound::Wall(w) => w.year(),
        Bound::Instant(t) => t.year(),
    };
    check_year(field, year)?;
    Ok(bound)
}

fn parse_bound_any(field: &str, text: &str) -> Result<Bound, String> {
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(Bound::Day(d));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(Bound::Instant(t.with_timezone(&Utc)));
    }
    for f in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, f) {
            return Ok(Bound::Wall(t));
        }
    }
    Err(format!(
        "{field}: {text:?} is not a date (2026-12-24), a wall time (2026-12-24T18:00) or an RFC 3339 instant"
    ))
}

fn parse_yearly(text: &str) -> Result<(u32, u32), String> {
    let (m, d) = text
        .split_once('-')
        .ok_or_else(|| format!("yearly: {text:?} is not MM-DD"))?;
    let (m, d): (u32, u32) = (
        m.parse().map_err(|_| format!("yearly: {text:?} is not MM-DD"))?,
        d.parse().map_err(|_| format!("yearly: {text:?} is not MM-DD"))?,
    );
    // 2024 is a leap year: every real month-day exists in it.
    NaiveDate::from_ymd_opt(2024, m, d)
        .ok_or_else(|| format!("yearly: {text:?} is not a day of the year"))?;
    Ok((m, d))
}

/// Local midnight of `day` in `tz` (DST rules as for schedules).
fn midnight(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    crate::schedule::zone::resolve(tz, day.and_time(NaiveTime::MIN)).0
}

fn with_note(base: &str, note: &str) -> String {
    if note.is_empty() {
        base.to_string()
    } else {
        format!("{base} ({note})")
    }
}

impl Exclusion {
    /// Check the entry, naming the bad field.
    pub fn validate(&self) -> Result<(), crate::Invalid> {
        match self {
            Exclusion::Date(d) => Ok(check_year("date", d.date.year())?),
            Exclusion::Yearly(y) => Ok(parse_yearly(&y.yearly).map(|_| ())?),
            Exclusion::Range(RangeEntry { from, to, .. }) => {
                let (a, b) = (parse_bound("from", from)?, parse_bound("to", to)?);
                // Compare in UTC; wall times and days as if UTC (a zone moves both alike).
                let key = |b: &Bound, end: bool| match b {
                    Bound::Day(d) => {
                        let d = if end { *d + Duration::days(1) } else { *d };
                        d.and_time(NaiveTime::MIN).and_utc()
                    }
                    Bound::Wall(w) => w.and_utc(),
                    Bound::Instant(t) => *t,
                };
                if key(&b, true) <= key(&a, false) {
                    return Err(format!("to: {to:?} is not after from {from:?}").into());
                }
                Ok(())
            }
        }
    }

    /// The window of this entry that contains `at`, in zone `tz`.
    fn window_at(&self, at: DateTime<Utc>, tz: Tz, calendar: &str) -> Option<Window> {
        let base = format!("calendar {calendar}");
        match self {
            Exclusion::Date(DateEntry { date, note }) => {
                if !YEARS.contains(&date.year()) {
                    return None;
                }
                let (start, end) = (midnight(tz, *date), midnight(tz, *date + Duration::days(1)));
                (start <= at && at < end).then(|| Window {
                    start,
                    end,
                    reason: with_note(&format!("{base}: {date}"), note),
                })
            }
            Exclusion::Yearly(YearlyEntry { yearly, note }) => {
                let (m, d) = parse_yearly(yearly).ok()?;
                let local_year = at.with_timezone(&tz).year();
                // The local day may be the 31 Dec / 1 Jan boundary: try both years.
                [local_year - 1, local_year]
                    .into_iter()
                    .filter(|y| YEARS.contains(y))
                    .find_map(|y| {
                        let day = NaiveDate::from_ymd_opt(y, m, d)?;
                        let (start, end) = (midnight(tz, day), midnight(tz, day + Duration::days(1)));
                        (start <= at && at < end).then(|| Window {
                            start,
                            end,
                            reason: with_note(&format!("{base}: {day} (every {yearly})"), note),
                        })
                    })
            }
            Exclusion::Range(RangeEntry { from, to, note }) => {
                let instant = |b: Bound, end: bool| match b {
                    Bound::Day(d) => midnight(tz, if end { d + Duration::days(1) } else { d }),
                    Bound::Wall(w) => crate::schedule::zone::resolve(tz, w).0,
                    Bound::Instant(t) => t,
                };
                let start = instant(parse_bound("from", from).ok()?, false);
                let end = instant(parse_bound("to", to).ok()?, true);
                (start <= at && at < end).then(|| Window {
                    start,
                    end,
                    reason: with_note(&format!("{base}: {from} to {to}"), note),
                })
            }
        }
    }
}

impl CalendarSpec {
    /// Check every field and entry, naming the first bad one; the iCalendar text is
    /// parsed here too.
    pub fn validate(&self) -> Result<(), crate::Invalid> {
        crate::task::validate_name("name", &self.name).map_err(|e| e.to_string())?;
        if !self.timezone.is_empty() {
            crate::schedule::zone::parse_tz(&self.timezone).map_err(|e| format!("timezone: {e}"))?;
        }
        for (i, e) in self.exclude.iter().enumerate() {
            e.validate().map_err(|m| format!("exclude[{i}].{m}"))?;
        }
        let from_ics = match &self.ics {
            Some(text) if text.len() > MAX_ICS_BYTES => {
                return Err(format!("ics: {} bytes is over {MAX_ICS_BYTES}", text.len()).into());
            }
            Some(text) => ics::parse(text).map_err(|e| format!("ics: {e}"))?.len(),
            None => 0,
        };
        if self.exclude.len() + from_ics > MAX_EXCLUSIONS {
            return Err(format!(
                "exclude: {} entries (with the iCalendar events) is over {MAX_EXCLUSIONS}",
                self.exclude.len() + from_ics
            )
            .into());
        }
        Ok(())
    }

    /// Every exclusion: the listed ones and the iCalendar file's events.
    pub fn exclusions(&self) -> Vec<Exclusion> {
        let mut all = self.exclude.clone();
        if let Some(text) = &self.ics
            && let Ok(events) = ics::parse(text)
        {
            all.extend(events);
        }
        all
    }

    /// The excluded window containing `at`, if any; dates are read in the calendar's
    /// zone, else in `schedule_tz`.
    pub fn window_at(&self, at: DateTime<Utc>, schedule_tz: Tz) -> Option<Window> {
        let tz = crate::schedule::zone::parse_tz(&self.timezone).unwrap_or(schedule_tz);
        let tz = if self.timezone.is_empty() { schedule_tz } else { tz };
        if self.ics.is_none() {
            return self.exclude.iter().find_map(|e| e.window_at(at, tz, &self.name));
        }
        self.exclusions()
            .iter()
            .find_map(|e| e.window_at(at, tz, &self.name))
    }
}

/// A one-off maintenance window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Maintenance {
    /// Id (ULID).
    pub id: String,
    /// First excluded instant.
    #[serde(with = "crate::timestamp::serde_millis")]
    #[schemars(with = "chrono::DateTime<chrono::Utc>")]
    pub from: DateTime<Utc>,
    /// First instant after it.
    #[serde(with = "crate::timestamp::serde_millis")]
    #[schemars(with = "chrono::DateTime<chrono::Utc>")]
    pub until: DateTime<Utc>,
    /// The schedules it holds (names); empty: every schedule.
    #[serde(default)]
    pub schedules: Vec<String>,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// Who started it (token name).
    pub by: String,
}

impl Maintenance {
    /// The window, if it holds schedule `name` at `at`.
    pub fn window_at(&self, at: DateTime<Utc>, name: &str) -> Option<Window> {
        let applies = self.schedules.is_empty() || self.schedules.iter().any(|s| s == name);
        (applies && self.from <= at && at < self.until).then(|| Window {
            start: self.from,
            end: self.until,
            reason: with_note(&format!("maintenance {} by {}", self.id, self.by), &self.reason),
        })
    }
}

impl Exclusions {
    /// The excluded window of `calendars` (maintenance windows left out: they hold
    /// schedules) holding `at`, in `tz` for calendars without a zone.
    pub fn calendar_window(&self, at: DateTime<Utc>, tz: Tz, calendars: &[String]) -> Option<Window> {
        let k = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let specs: Vec<&CalendarSpec> = calendars
            .iter()
            .filter_map(|c| k.calendars.get(c).map(|a| a.as_ref()))
            .collect();
        excluded_at(at, "", tz, &specs, &[])
    }
}

/// The window holding `at` among `calendars` and `maintenance`, for schedule `name` in
/// `tz`; windows that touch or overlap are followed to the end of the run of them (at
/// most 400), so a deferred slot lands after all of them.
pub fn excluded_at(
    at: DateTime<Utc>,
    name: &str,
    tz: Tz,
    calendars: &[&CalendarSpec],
    maintenance: &[Maintenance],
) -> Option<Window> {
    let one = |t: DateTime<Utc>| {
        calendars
            .iter()
            .find_map(|c| c.window_at(t, tz))
            .or_else(|| maintenance.iter().find_map(|m| m.window_at(t, name)))
    };
    let mut window = one(at)?;
    for _ in 0..400 {
        match one(window.end) {
            Some(next) if next.end > window.end => window.end = next.end,
            _ => break,
        }
    }
    Some(window)
}

/// The calendars and maintenance windows in force, shared by the scheduler (which
/// reads them for every slot) and the API (which replaces them after each change).
#[derive(Clone, Default)]
pub struct Exclusions {
    inner: std::sync::Arc<std::sync::RwLock<Known>>,
}

#[derive(Default)]
struct Known {
    /// By name, the iCalendar events already read into `exclude` (parsed once here,
    /// not at every lookup).
    calendars: std::collections::HashMap<String, std::sync::Arc<CalendarSpec>>,
    maintenance: Vec<Maintenance>,
}

impl Exclusions {
    /// Replace what is known.
    pub fn set(&self, calendars: Vec<CalendarSpec>, maintenance: Vec<Maintenance>) {
        let calendars = calendars
            .into_iter()
            .map(|c| {
                let read = CalendarSpec {
                    exclude: c.exclusions(),
                    ics: None,
                    ..c
                };
                (read.name.clone(), std::sync::Arc::new(read))
            })
            .collect();
        let mut k = self.inner.write().unwrap_or_else(|e| e.into_inner());
        k.calendars = calendars;
        k.maintenance = maintenance;
    }

    /// The excluded window holding `at` for schedule `name` (in `tz`, honouring
    /// `calendars`), followed to the end of any windows right after it.
    pub fn window(&self, at: DateTime<Utc>, name: &str, tz: Tz, calendars: &[String]) -> Option<Window> {
        let k = self.inner.read().unwrap_or_else(|e| e.into_inner());
        if calendars.is_empty() && k.maintenance.is_empty() {
            return None;
        }
        let specs: Vec<&CalendarSpec> = calendars
            .iter()
            .filter_map(|c| k.calendars.get(c).map(|a| a.as_ref()))
            .collect();
        excluded_at(at, name, tz, &specs, &k.maintenance)
    }
}

#[cfg(test)]
mod tests;

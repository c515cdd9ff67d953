//! The events of an iCalendar file (RFC 5545) as exclusions: what holiday calendars
//! exported from calendar programs and public-holiday feeds contain.
//!
//! Read: folded lines, `VEVENT`s with `DTSTART` and `DTEND` (or `DURATION` of whole
//! days, or neither: one day), values as dates (`VALUE=DATE`), UTC times (`...Z`) or
//! wall times (with or without `TZID`, read in the calendar's zone), `SUMMARY` as the
//! note, and `RRULE:FREQ=YEARLY` on whole-day events (fixed-date holidays). Anything
//! else that changes which days an event covers (other `RRULE`s, `RDATE`, `EXDATE`) is
//! refused, naming the event, rather than silently misread. Hand-written: the subset is
//! small, and a full iCalendar crate would still leave recurrence to us.

use super::{DateEntry, Exclusion, RangeEntry, YearlyEntry};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};

/// One property: name, parameters (upper-cased `KEY=VALUE`), value.
struct Property {
    name: String,
    params: Vec<String>,
    value: String,
}

fn unfold(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(rest) = line.strip_prefix(' ').or_else(|| line.strip_prefix('\t')) {
            if let Some(last) = lines.last_mut() {
                last.push_str(rest);
                continue;
            }
        }
        lines.push(line.to_string());
    }
    lines
}

fn property(line: &str) -> Option<Property> {
    let (head, value) = line.split_once(':')?;
    let mut parts = head.split(';');
    let name = parts.next()?.trim().to_ascii_uppercase();
    let params = parts.map(|p| p.trim().to_ascii_uppercase()).collect();
    Some(Property {
        name,
        params,
        value: value.trim().to_string(),
    })
}

/// A `DTSTART`/`DTEND` value.
enum When {
    Day(NaiveDate),
    Wall(NaiveDateTime),
    Utc(NaiveDateTime),
}

fn when(p: &Property) -> Result<When, String> {
    let v = p.value.as_str();
    let in_range = |year: i32| {
        if (1970..=9000).contains(&year) {
            Ok(())
        } else {
            Err(format!("{}: year {year} is outside 1970..=9000", p.name))
        }
    };
    if p.params.iter().any(|x| x == "VALUE=DATE") || v.len() == 8 {
        let d = NaiveDate::parse_from_str(v, "%Y%m%d")
            .map_err(|_| format!("{}: {v:?} is not a date (YYYYMMDD)", p.name))?;
        in_range(d.year())?;
        return Ok(When::Day(d));
    }
    let (text, utc) = match v.strip_suffix('Z') {
        Some(t) => (t, true),
        None => (v, false),
    };
    let t = NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%S")
        .map_err(|_| format!("{}: {v:?} is not a date-time (YYYYMMDDTHHMMSS[Z])", p.name))?;
    in_range(t.year())?;
    Ok(if utc { When::Utc(t) } else { When::Wall(t) })
}

fn text(w: &When, end_of_days: bool) -> String {
    match w {
        When::Day(d) => {
            // A range's `to` date is included; iCalendar's DTEND date is not.
            let d = if end_of_days { *d - Duration::days(1) } else { *d };
            d.format("%Y-%m-%d").to_string()
        }
        When::Wall(t) => t.format("%Y-%m-%dT%H:%M:%S").to_string(),
        When::Utc(t) => t.and_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }
}

/// Days of an iCalendar `DURATION` made only of days and weeks (`P1D`, `P2W`), at most
/// ten years.
fn duration_days(v: &str) -> Option<i64> {
    let body = v.strip_prefix('P')?;
    let (n, per) = match (body.strip_suffix('D'), body.strip_suffix('W')) {
        (Some(n), _) => (n, 1),
        (None, Some(n)) => (n, 7),
        _ => return None,
    };
    let days = n.parse::<i64>().ok()?.checked_mul(per)?;
    (1..=3660).contains(&days).then_some(days)
}

/// The exclusions of an iCalendar text, in file order.
pub fn parse(ics: &str) -> Result<Vec<Exclusion>, String> {
    let lines = unfold(ics);
    if !lines
        .iter()
        .any(|l| l.trim().eq_ignore_ascii_case("BEGIN:VCALENDAR"))
    {
        return Err("not an iCalendar file (no BEGIN:VCALENDAR)".into());
    }
    let mut out = Vec::new();
    let mut event: Option<Vec<Property>> = None;
    for (n, line) in lines.iter().enumerate() {
        let t = line.trim();
        if t.eq_ignore_ascii_case("BEGIN:VEVENT") {
            event = Some(Vec::new());
            continue;
        }
        if t.eq_ignore_ascii_case("END:VEVENT") {
            let props = event
                .take()
                .ok_or_else(|| format!("line {}: END:VEVENT without BEGIN", n + 1))?;
            out.push(one(&props).map_err(|e| format!("event ending on line {}: {e}", n + 1))?);
            continue;
        }
        if let Some(props) = event.as_mut()
            && let Some(p) = property(t)
        {
            props.push(p);
        }
    }
    if event.is_some() {
        return Err("a VEVENT is not closed (no END:VEVENT)".into());
    }
    Ok(out)
}

fn one(props: &[Property]) -> Result<Exclusion, String> {
    let get = |name: &str| props.iter().find(|p| p.name == name);
    let note = get("SUMMARY")
        .map(|p| p.value.replace("\\,", ","))
        .unwrap_or_default();
    for refused in ["RDATE", "EXDATE"] {
        if get(refused).is_some() {
            return Err(format!(
                "{refused} is not supported; list the days as separate events"
            ));
        }
    }
    let start = when(get("DTSTART").ok_or("no DTSTART")?)?;
    let end = match (get("DTEND"), get("DURATION")) {
        (Some(p), _) => Some(when(p)?),
        (None, Some(p)) => match (&start, duration_days(&p.value)) {
            (When::Day(d), Some(days)) => Some(When::Day(*d + Duration::days(days))),
            _ => return Err(format!("DURATION {:?}: only whole days on a date event", p.value)),
        },
        (None, None) => None,
    };
    if let Some(rule) = get("RRULE") {
        let yearly = rule.value.to_ascii_uppercase();
        let one_day = match (&start, &end) {
            (When::Day(d), None) => Some(*d),
            (When::Day(d), Some(When::Day(e))) if *e == *d + Duration::days(1) => Some(*d),
            _ => None,
        };
        return match (yearly.as_str(), one_day) {
            ("FREQ=YEARLY", Some(d)) => Ok(Exclusion::Yearly(YearlyEntry {
                yearly: format!("{:02}-{:02}", d.month(), d.day()),
                note,
            })),
            _ => Err(format!(
                "RRULE {:?} is not supported (only FREQ=YEARLY on a one-day date event)",
                rule.value
            )),
        };
    }
    Ok(match (start, end) {
        (When::Day(d), None) => Exclusion::Date(DateEntry { date: d, note }),
        (When::Day(d), Some(When::Day(e))) if e == d + Duration::days(1) => {
            Exclusion::Date(DateEntry { date: d, note })
        }
        (When::Day(d), Some(When::Day(e))) if e > d => Exclusion::Range(RangeEntry {
            from: text(&When::Day(d), false),
            to: text(&When::Day(e), true),
            note,
        }),
        (s @ (When::Wall(_) | When::Utc(_)), Some(e @ (When::Wall(_) | When::Utc(_)))) => {
            Exclusion::Range(RangeEntry {
                from: text(&s, false),
                to: text(&e, false),
                note,
            })
        }
        _ => return Err("DTEND must come after DTSTART and be of the same kind (date or date-time)".into()),
    })
}

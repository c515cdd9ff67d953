//! A schedule's rule in words, for people: "every week on Mon-Fri at 18:00
//! (Europe/Berlin)". Shown by the API as a schedule's `summary` and printed by
//! `sundial schedule create`, so an operator sees what was understood, not only what
//! was typed. Pure; defaults taken from the start are spelled out.

use super::Rule;
use super::calendar::{CalendarRule, DayOfMonth, Unit};
use chrono::{DateTime, Datelike, NaiveDateTime, NaiveTime, Timelike, Utc, Weekday};

/// Weekday abbreviations, Monday first.
const NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// `rule` in words, in zone `tz`, for a schedule starting at `start`.
pub fn describe(rule: &Rule, tz: &str, start: DateTime<Utc>) -> String {
    let zone = super::zone::parse_tz(tz).ok();
    let start_wall = match zone {
        Some(z) => start.with_timezone(&z).naive_local(),
        None => start.naive_utc(),
    };
    let tz = if tz.is_empty() { "UTC" } else { tz };
    let what = match rule {
        Rule::Cron(expr) => cron(expr),
        Rule::Calendar(c) => calendar(c, start_wall),
        Rule::At(at) => {
            let local = match zone {
                Some(z) => at.with_timezone(&z).naive_local(),
                None => at.naive_utc(),
            };
            format!("once, on {}", local.format("%a %Y-%m-%d at %H:%M:%S"))
        }
    };
    format!("{what} ({tz})")
}

/// A set of weekdays (Monday = 0) as runs: `Mon-Fri`, `Sat, Sun` (two days are not a
/// range), `Mon-Wed, Fri`.
fn day_list(on: [bool; 7]) -> String {
    if on.iter().all(|d| *d) {
        return "every day".into();
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < 7 {
        if !on[i] {
            i += 1;
            continue;
        }
        let mut j = i;
        while j + 1 < 7 && on[j + 1] {
            j += 1;
        }
        match j - i {
            0 => parts.push(NAMES[i].to_string()),
            1 => parts.extend([NAMES[i].to_string(), NAMES[j].to_string()]),
            _ => parts.push(format!("{}-{}", NAMES[i], NAMES[j])),
        }
        i = j + 1;
    }
    parts.join(", ")
}

fn weekday_set(days: &[Weekday]) -> [bool; 7] {
    let mut on = [false; 7];
    for d in days {
        on[d.num_days_from_monday() as usize] = true;
    }
    on
}

fn time(t: NaiveTime) -> String {
    if t.second() == 0 {
        t.format("%H:%M").to_string()
    } else {
        t.format("%H:%M:%S").to_string()
    }
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn calendar(c: &CalendarRule, start: NaiveDateTime) -> String {
    let unit = match c.unit {
        Unit::Minutes => "minute",
        Unit::Hours => "hour",
        Unit::Days => "day",
        Unit::Weeks => "week",
        Unit::Months => "month",
        Unit::Years => "year",
    };
    let mut out = if c.every == 1 {
        format!("every {unit}")
    } else {
        format!("every {} {unit}s", c.every)
    };
    let at = time(c.at.unwrap_or(start.time()));
    match c.unit {
        Unit::Minutes | Unit::Hours => {
            out += &format!(" from {}", start.format("%Y-%m-%d %H:%M"));
            if let Some((from, to)) = c.window {
                out += &format!(", between {} and {}", time(from), time(to));
            }
            if !c.weekdays.is_empty() {
                out += &format!(", on {}", day_list(weekday_set(&c.weekdays)));
            }
        }
        Unit::Days => {
            if !c.weekdays.is_empty() {
                out += &format!(", only on {}", day_list(weekday_set(&c.weekdays)));
            }
            out += &format!(" at {at}");
        }
        Unit::Weeks => {
            let days = if c.weekdays.is_empty() {
                vec![start.weekday()]
            } else {
                c.weekdays.clone()
            };
            out += &format!(" on {} at {at}", day_list(weekday_set(&days)));
        }
        Unit::Months => {
            let day = match c.day_of_month.unwrap_or(DayOfMonth::Start) {
                DayOfMonth::First => "the 1st".to_string(),
                DayOfMonth::Last => "the last day".to_string(),
                DayOfMonth::Start => format!("the {}", ordinal(start.day())),
                DayOfMonth::Day(d) => format!("the {} (months without one are skipped)", ordinal(d)),
            };
            out += &format!(" on {day} at {at}");
            if !c.weekdays.is_empty() {
                out += &format!(", if it is a {}", day_list(weekday_set(&c.weekdays)));
            }
        }
        Unit::Years => {
            out += &format!(" on {} at {at}", start.format("%b %-d"));
            if !c.weekdays.is_empty() {
                out += &format!(", if it is a {}", day_list(weekday_set(&c.weekdays)));
            }
        }
    }
    out
}

/// A cron field: `*` is every value; anything else is shown as written.
fn restricted(field: &str) -> bool {
    !(field.starts_with('*') || field == "?")
}

fn cron(expr: &str) -> String {
    let e = expr.trim();
    let expanded =
        super::cron_rule::nickname(&e.to_ascii_lowercase()).map_or_else(|| e.to_string(), str::to_string);
    let mut f: Vec<&str> = expanded.split_whitespace().collect();
    if f.len() == 5 {
        f.insert(0, "0");
    }
    if f.len() < 6 {
        return format!("cron {e:?}");
    }
    let (sec, min, hour, dom, month, dow) = (f[0], f[1], f[2], f[3], f[4], f[5]);
    let plain = |s: &str| s.parse::<u32>().ok();
    let when = match (plain(sec), plain(min), plain(hour)) {
        (Some(s), Some(m), Some(h)) if s < 60 && m < 60 && h < 24 => {
            format!(
                "at {}",
                time(NaiveTime::from_hms_opt(h, m, s).unwrap_or_default())
            )
        }
        _ => {
            let mut parts = Vec::new();
            if sec != "0" {
                parts.push(field_words("second", sec));
            }
            parts.push(field_words("minute", min));
            parts.push(field_words("hour", hour));
            parts.join(", ")
        }
    };
    let days = match (restricted(dom), restricted(dow)) {
        (true, true) => format!("on day {dom} of the month or on {}", weekdays(dow)),
        (true, false) => format!("on day {dom} of the month"),
        (false, true) => format!("on {}", weekdays(dow)),
        (false, false) if dom == "*" && dow == "*" => "every day".to_string(),
        (false, false) => format!("on days {dom} of the month"),
    };
    let mut out = format!("{when}, {days}");
    if restricted(month) {
        out += &format!(", in month {month}");
    }
    if let Some(year) = f.get(6).filter(|y| restricted(y)) {
        out += &format!(", in year {year}");
    }
    out
}

fn field_words(name: &str, field: &str) -> String {
    if field == "*" {
        format!("every {name}")
    } else if let Some(step) = field.strip_prefix("*/") {
        format!("every {step} {name}s")
    } else {
        format!("{name} {field}")
    }
}

/// Mark the days from `from` to `to` (Monday 0 to Sunday 6) in `on`; a range runs
/// forward from `from` and may wrap (`fri-mon`).
pub fn mark_days(on: &mut [bool; 7], from: usize, to: usize) {
    let mut d = from;
    loop {
        on[d] = true;
        if d == to {
            break;
        }
        d = (d + 1) % 7;
    }
}

/// A crontab day-of-week field as day names (Sunday 0 or 7), or as written when it
/// is not plain numbers, names and ranges.
fn weekdays(field: &str) -> String {
    let day = |t: &str| -> Option<usize> {
        let t = t.to_ascii_lowercase();
        // crontab numbers Sunday 0 (or 7); NAMES starts at Monday.
        const SUN_FIRST: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
        let n = SUN_FIRST
            .iter()
            .position(|d| t.len() >= 3 && t.starts_with(d))
            .or_else(|| t.parse::<usize>().ok().filter(|n| *n <= 7).map(|n| n % 7))?;
        Some((n + 6) % 7)
    };
    let mut on = [false; 7];
    for part in field.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (Some(a), Some(b)) = (day(a), day(b)) else {
                    return format!("weekdays {field}");
                };
                // `5-7`, `fri-sun` end on Sunday; ranges run forward from `a`.
                mark_days(&mut on, a, b);
            }
            None => match day(part) {
                Some(d) => on[d] = true,
                None => return format!("weekdays {field}"),
            },
        }
    }
    day_list(on)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn start() -> DateTime<Utc> {
        // A Wednesday, 07:30 UTC = 08:30 in Berlin.
        Utc.with_ymd_and_hms(2026, 12, 2, 7, 30, 0).unwrap()
    }

    fn cal(v: serde_json::Value) -> Rule {
        serde_json::from_value(serde_json::json!({ "calendar": v })).unwrap()
    }

    #[test]
    fn rules_read_as_an_operator_would_say_them() {
        let berlin = "Europe/Berlin";
        let table: Vec<(Rule, &str)> = vec![
            (
                cal(
                    serde_json::json!({"every": 1, "unit": "weeks", "weekdays": ["Mon","Tue","Wed","Thu","Fri"], "at": "18:00:00"}),
                ),
                "every week on Mon-Fri at 18:00 (Europe/Berlin)",
            ),
            (
                cal(serde_json::json!({"every": 2, "unit": "weeks", "weekdays": ["Sat","Sun"]})),
                "every 2 weeks on Sat, Sun at 08:30 (Europe/Berlin)",
            ),
            (
                cal(serde_json::json!({"every": 1, "unit": "weeks", "weekdays": ["Mon","Tue","Wed","Fri"]})),
                "every week on Mon-Wed, Fri at 08:30 (Europe/Berlin)",
            ),
            (
                cal(serde_json::json!({"every": 1, "unit": "weeks"})),
                "every week on Wed at 08:30 (Europe/Berlin)",
            ),
            (
                cal(
                    serde_json::json!({"every": 15, "unit": "minutes", "window": ["08:00:00", "18:00:00"], "weekdays": ["Mon","Tue","Wed","Thu","Fri"]}),
                ),
                "every 15 minutes from 2026-12-02 08:30, between 08:00 and 18:00, on Mon-Fri (Europe/Berlin)",
            ),
            (
                cal(
                    serde_json::json!({"every": 1, "unit": "months", "day_of_month": "last", "at": "23:00:00"}),
                ),
                "every month on the last day at 23:00 (Europe/Berlin)",
            ),
            (
                cal(serde_json::json!({"every": 3, "unit": "months", "day_of_month": {"day": 31}})),
                "every 3 months on the 31st (months without one are skipped) at 08:30 (Europe/Berlin)",
            ),
            (
                cal(serde_json::json!({"every": 1, "unit": "months"})),
                "every month on the 2nd at 08:30 (Europe/Berlin)",
            ),
            (
                cal(serde_json::json!({"every": 1, "unit": "years", "at": "00:00:00"})),
                "every year on Dec 2 at 00:00 (Europe/Berlin)",
            ),
            (
                cal(serde_json::json!({"every": 2, "unit": "days", "weekdays": ["Mon"], "at": "06:15:30"})),
                "every 2 days, only on Mon at 06:15:30 (Europe/Berlin)",
            ),
            (
                Rule::Cron("0 9 1 * 1".into()),
                "at 09:00, on day 1 of the month or on Mon (Europe/Berlin)",
            ),
            (
                Rule::Cron("30 8 * * mon-fri".into()),
                "at 08:30, on Mon-Fri (Europe/Berlin)",
            ),
            (
                Rule::Cron("0 22 * * 5-7".into()),
                "at 22:00, on Fri-Sun (Europe/Berlin)",
            ),
            (Rule::Cron("@daily".into()), "at 00:00, every day (Europe/Berlin)"),
            (Rule::Cron("@weekly".into()), "at 00:00, on Sun (Europe/Berlin)"),
            (
                Rule::Cron("*/5 * * * *".into()),
                "every 5 minutes, every hour, every day (Europe/Berlin)",
            ),
            (
                Rule::Cron("0 0 12 L * ? 2030".into()),
                "at 12:00, on day L of the month, in year 2030 (Europe/Berlin)",
            ),
            (
                Rule::Cron("0 9 * 1,7 *".into()),
                "at 09:00, every day, in month 1,7 (Europe/Berlin)",
            ),
            (
                Rule::At(Utc.with_ymd_and_hms(2026, 12, 31, 22, 0, 0).unwrap()),
                "once, on Thu 2026-12-31 at 23:00:00 (Europe/Berlin)",
            ),
        ];
        for (rule, want) in table {
            assert_eq!(describe(&rule, berlin, start()), want, "{rule:?}");
        }
        assert_eq!(
            describe(&Rule::Cron("0 9 * * 1".into()), "", start()),
            "at 09:00, on Mon (UTC)"
        );
    }

    #[test]
    fn day_lists_compress_runs_of_three_or_more() {
        let on = |days: &[usize]| {
            let mut s = [false; 7];
            for d in days {
                s[*d] = true;
            }
            day_list(s)
        };
        assert_eq!(on(&[0, 1, 2, 3, 4, 5, 6]), "every day");
        assert_eq!(on(&[0, 1, 2, 3, 4]), "Mon-Fri");
        assert_eq!(on(&[5, 6]), "Sat, Sun");
        assert_eq!(on(&[0, 2, 4]), "Mon, Wed, Fri");
        assert_eq!(on(&[0, 1, 2, 4, 5, 6]), "Mon-Wed, Fri-Sun");
    }
}

//! Property tests: cron schedules in random zones around DST transitions against an
//! oracle written from crontab(5), independently of [`super::cron_rule`] (which wraps
//! the `cron` crate): its own field parser, its own day-of-week numbering (days since
//! 1970-01-01, a Thursday), the "either day field" rule, and a walk over every UTC
//! minute of the window. Only chrono's zone database is shared with the code under test.

use super::{Rule, Timing};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Timelike, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use std::collections::BTreeSet;

const ZONES: &[&str] = &[
    "Europe/Berlin",
    "America/New_York",
    "America/Sao_Paulo",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Tehran",
    "America/Havana",
    "Africa/Cairo",
    "UTC",
];

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// One crontab(5) field: the values it allows, and whether it was written starting with
/// `*` (crontab's "unrestricted", which decides how the two day fields combine).
#[derive(Debug)]
struct Field {
    allowed: BTreeSet<u32>,
    starred: bool,
}

/// A number or, where the field has them, a three-letter name (case-insensitive).
/// `names[0]` stands for `first`.
fn value(text: &str, first: u32, names: &[&str]) -> u32 {
    let lower = text.to_ascii_lowercase();
    match names.iter().position(|n| *n == lower) {
        Some(i) => first + i as u32,
        None => text
            .parse()
            .unwrap_or_else(|_| panic!("oracle: bad value {text:?}")),
    }
}

/// Parse a field per crontab(5): `*`, or a comma-separated list of numbers and ranges
/// `a-b` (inclusive), each optionally followed by `/step`; `*/step` steps over the whole
/// range `lo..=hi`.
fn field(text: &str, lo: u32, hi: u32, names: &[&str]) -> Field {
    let mut allowed = BTreeSet::new();
    for element in text.split(',') {
        let (range, step) = match element.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().expect("oracle: step")),
            None => (element, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a, lo, names), value(b, lo, names));
            // Documented for the weekday field: a range ending on Sunday (`fri-sun`)
            // runs to 7, the other number of Sunday.
            (a, if b == 0 && a > 0 && hi == 7 { 7 } else { b })
        } else {
            let v = value(range, lo, names);
            // A single value with a step runs from it to the end of the field.
            (v, if step > 1 { hi } else { v })
        };
        assert!(
            lo <= a && a <= b && b <= hi,
            "oracle: range {range:?} outside {lo}-{hi}"
        );
        allowed.extend((a..=b).step_by(step as usize));
    }
    Field {
        allowed,
        starred: text.starts_with('*'),
    }
}

/// A crontab entry's time fields.
#[derive(Debug)]
struct Entry {
    seconds: Field,
    minutes: Field,
    hours: Field,
    days_of_month: Field,
    months: Field,
    /// 0-7, where both 0 and 7 are Sunday.
    days_of_week: Field,
}

fn entry(expr: &str) -> Entry {
    let expanded = match expr {
        // crontab(5): the nicknames and what they stand for.
        "@hourly" => "0 * * * *",
        "@daily" | "@midnight" => "0 0 * * *",
        "@weekly" => "0 0 * * 0",
        "@monthly" => "0 0 1 * *",
        "@yearly" | "@annually" => "0 0 1 1 *",
        other => other,
    };
    let parts: Vec<&str> = expanded.split_whitespace().collect();
    // Sundial's extension: six fields put seconds first.
    let (seconds, rest) = match parts.len() {
        5 => ("0", &parts[..]),
        6 => (parts[0], &parts[1..]),
        n => panic!("oracle: {n} fields"),
    };
    Entry {
        seconds: field(seconds, 0, 59, &[]),
        minutes: field(rest[0], 0, 59, &[]),
        hours: field(rest[1], 0, 23, &[]),
        days_of_month: field(rest[2], 1, 31, &[]),
        months: field(rest[3], 1, 12, &MONTHS),
        days_of_week: field(rest[4], 0, 7, &DAYS),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// 0 = Sunday ... 6 = Saturday; 1970-01-01 was a Thursday.
fn day_of_week(w: NaiveDateTime) -> u32 {
    (days_from_civil(w.year() as i64, w.month() as i64, w.day() as i64) + 4).rem_euclid(7) as u32
}

impl Entry {
    /// Whether the wall-clock minute `w` matches everything but the seconds. crontab(5):
    /// "If both fields are restricted (i.e., do not start with *), the command will be
    /// run when either field matches the current time."
    fn minute_matches(&self, w: NaiveDateTime) -> bool {
        let dow = day_of_week(w);
        let dom_ok = self.days_of_month.allowed.contains(&w.day());
        let dow_ok =
            self.days_of_week.allowed.contains(&dow) || (dow == 0 && self.days_of_week.allowed.contains(&7));
        let day_ok = if self.days_of_month.starred || self.days_of_week.starred {
            dom_ok && dow_ok
        } else {
            dom_ok || dow_ok
        };
        day_ok
            && self.minutes.allowed.contains(&w.minute())
            && self.hours.allowed.contains(&w.hour())
            && self.months.allowed.contains(&w.month())
    }
}

fn pick(options: &[&'static str]) -> impl Strategy<Value = &'static str> {
    prop::sample::select(options.to_vec())
}

fn cron_strategy() -> impl Strategy<Value = String> {
    let fields = (
        pick(&["", "", "", "0", "*/20", "15,45", "30", "5-7"]),
        pick(&["0", "30", "*/15", "0,45", "5-10", "59", "*", "10-50/20"]),
        pick(&["*", "0", "1", "2", "3", "1-3", "*/2", "0,12", "23", "2-4/2"]),
        pick(&["*", "*", "1", "15", "28-31", "*/10", "1,15", "13", "2/7"]),
        pick(&["*", "*", "3", "10,11", "4", "mar", "Oct-Nov", "*/2", "9-12"]),
        pick(&[
            "*", "*", "0", "1-5", "6", "7", "mon", "MON-FRI", "sat,sun", "*/2", "1-5/2", "5-7", "fri",
            "fri-sun",
        ]),
    );
    let expr = fields.prop_map(|(s, m, h, d, mo, w)| {
        let five = format!("{m} {h} {d} {mo} {w}");
        if s.is_empty() { five } else { format!("{s} {five}") }
    });
    prop_oneof![
        12 => expr,
        1 => pick(&["@hourly", "@daily", "@weekly", "@monthly", "@yearly"]).prop_map(str::to_string),
    ]
}

/// The fires of `expr` in `tz` between `from` (exclusive) and `to`, by walking every UTC
/// minute: a wall time that occurs fires at its first occurrence; wall times skipped by
/// a gap fire once, at the first instant after it.
fn oracle(expr: &str, tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> BTreeSet<DateTime<Utc>> {
    let e = entry(expr);
    let wall = |u: DateTime<Utc>| u.with_timezone(&tz).naive_local();
    // Start a day early so the first occurrence of a repeated wall time is seen.
    let mut u = from - Duration::days(1);
    let mut seen = BTreeSet::new();
    let mut fires = BTreeSet::new();
    let mut prev = wall(u);
    while u <= to {
        let next = u + Duration::minutes(1);
        let w = wall(next);
        // Wall minutes skipped between prev and w (a spring-forward gap): one fire at
        // the gap's end, second 0 of the first wall minute after it.
        let mut skipped = prev + Duration::minutes(1);
        while skipped < w {
            if !seen.contains(&skipped) && e.minute_matches(skipped) {
                fires.insert(next);
            }
            skipped += Duration::minutes(1);
        }
        if seen.insert(w) && e.minute_matches(w) {
            for s in &e.seconds.allowed {
                fires.insert(next + Duration::seconds(*s as i64));
            }
        }
        prev = prev.max(w);
        u = next;
    }
    fires.into_iter().filter(|t| *t > from && *t <= to).collect()
}

#[test]
fn the_oracle_reads_crontab_as_written() {
    // Its own weekday numbering: 2026-11-30 is a Monday, 1970-01-01 a Thursday,
    // 2000-02-29 a Tuesday.
    let day = |s: &str| {
        day_of_week(
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap(),
        )
    };
    assert_eq!(
        (day("2026-11-30"), day("1970-01-01"), day("2000-02-29")),
        (1, 4, 2)
    );
    let e = entry("0 9 1 * 1");
    let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    // Both day fields restricted: every 1st and every Monday.
    assert!(e.minute_matches(at("2026-12-01 09:00")), "a Tuesday the 1st");
    assert!(e.minute_matches(at("2026-12-07 09:00")), "a Monday the 7th");
    assert!(!e.minute_matches(at("2026-12-08 09:00")), "neither");
    // A day field that starts with `*` is unrestricted: both must match.
    let e = entry("0 9 1 * */2");
    assert!(e.minute_matches(at("2026-10-01 09:00")), "a Thursday the 1st");
    assert!(!e.minute_matches(at("2026-06-01 09:00")), "a Monday the 1st");
    assert!(!e.minute_matches(at("2026-12-03 09:00")), "a Thursday the 3rd");
    assert_eq!(
        entry("0 0 * * 5-7").days_of_week.allowed,
        BTreeSet::from([5, 6, 7])
    );
    assert_eq!(
        entry("0 0 2/7 * *").days_of_month.allowed,
        BTreeSet::from([2, 9, 16, 23, 30])
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn cron_fires_match_a_crontab_oracle_across_dst(
        expr in cron_strategy(),
        zone in prop::sample::select(ZONES.to_vec()),
        year in 2020i32..2036,
        month in prop::sample::select(vec![3u32, 4, 9, 10, 11]),
        day in 1u32..28,
    ) {
        let tz: Tz = zone.parse().unwrap();
        let from = NaiveDate::from_ymd_opt(year, month, day).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
        let to = from + Duration::days(4);
        let timing = Timing::new(&Rule::Cron(expr.clone()), zone, from - Duration::days(30), None, DateTime::<Utc>::MIN_UTC).unwrap();
        let mut got = BTreeSet::new();
        let mut t = from;
        while let Some(slot) = timing.next_after(t) {
            prop_assert!(slot.at > t, "{} <= {}", slot.at, t);
            if slot.at > to {
                break;
            }
            got.insert(slot.at);
            t = slot.at;
        }
        let want = oracle(&expr, tz, from, to);
        let missing: Vec<_> = want.difference(&got).take(5).collect();
        let extra: Vec<_> = got.difference(&want).take(5).collect();
        prop_assert!(
            got == want,
            "cron {:?} in {} from {}: {} fires, oracle {}; missing {:?}, extra {:?}",
            expr, zone, from, got.len(), want.len(), missing, extra
        );
    }
}

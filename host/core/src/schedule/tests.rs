//! Table-driven fire-time tests against hand-checked times.

use super::calendar::{CalendarRule, DayOfMonth, Unit};
use super::*;
use chrono::{Datelike, NaiveTime, Weekday};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Local RFC 3339 fire times of `rule` in `tz`, starting at `start`, after `after`.
fn fires(rule: Rule, tz: &str, start: &str, end: Option<&str>, after: &str, n: usize) -> Vec<String> {
    let timing = Timing::new(&rule, tz, t(start), end.map(t), t("2000-01-01T00:00:00Z")).unwrap();
    timing.preview(t(after), n).into_iter().map(|s| s.local).collect()
}

fn cal(every: u32, unit: Unit) -> CalendarRule {
    CalendarRule {
        every,
        unit,
        weekdays: vec![],
        day_of_month: None,
        at: None,
        window: None,
    }
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

#[test]
fn cron_across_berlin_spring_forward() {
    // 02:30 does not exist on 2026-03-29: it fires at 03:00 CEST, once.
    let got = fires(
        Rule::Cron("30 2 * * *".into()),
        "Europe/Berlin",
        "2026-03-01T00:00:00Z",
        None,
        "2026-03-27T12:00:00Z",
        4,
    );
    assert_eq!(
        got,
        [
            "2026-03-28T02:30:00.000+01:00",
            "2026-03-29T03:00:00.000+02:00",
            "2026-03-30T02:30:00.000+02:00",
            "2026-03-31T02:30:00.000+02:00"
        ]
    );
    // A minutely schedule: the 60 slots in the gap collapse to one at 03:00.
    let got = fires(
        Rule::Cron("* * * * *".into()),
        "Europe/Berlin",
        "2026-03-01T00:00:00Z",
        None,
        "2026-03-29T00:58:00Z",
        3,
    );
    assert_eq!(
        got,
        [
            "2026-03-29T01:59:00.000+01:00",
            "2026-03-29T03:00:00.000+02:00",
            "2026-03-29T03:01:00.000+02:00"
        ]
    );
}

#[test]
fn cron_across_berlin_fall_back_fires_once() {
    // 02:30 happens twice on 2026-10-25; it fires at the first (CEST) one only.
    let got = fires(
        Rule::Cron("30 2 * * *".into()),
        "Europe/Berlin",
        "2026-10-01T00:00:00Z",
        None,
        "2026-10-24T12:00:00Z",
        3,
    );
    assert_eq!(
        got,
        [
            "2026-10-25T02:30:00.000+02:00",
            "2026-10-26T02:30:00.000+01:00",
            "2026-10-27T02:30:00.000+01:00"
        ]
    );
    // Hourly: 02:00 and 03:00 wall times each fire once; the repeated hour is not doubled.
    let got = fires(
        Rule::Cron("0 * * * *".into()),
        "Europe/Berlin",
        "2026-10-01T00:00:00Z",
        None,
        "2026-10-24T23:30:00Z",
        4,
    );
    assert_eq!(
        got,
        [
            "2026-10-25T02:00:00.000+02:00",
            "2026-10-25T03:00:00.000+01:00",
            "2026-10-25T04:00:00.000+01:00",
            "2026-10-25T05:00:00.000+01:00"
        ]
    );
}

#[test]
fn cron_across_new_york_transitions() {
    let got = fires(
        Rule::Cron("15 2 * * *".into()),
        "America/New_York",
        "2026-03-01T00:00:00Z",
        None,
        "2026-03-07T12:00:00Z",
        2,
    );
    assert_eq!(
        got,
        ["2026-03-08T03:00:00.000-04:00", "2026-03-09T02:15:00.000-04:00"]
    );
    let got = fires(
        Rule::Cron("30 1 * * *".into()),
        "America/New_York",
        "2026-10-01T00:00:00Z",
        None,
        "2026-10-31T12:00:00Z",
        2,
    );
    assert_eq!(
        got,
        ["2026-11-01T01:30:00.000-04:00", "2026-11-02T01:30:00.000-05:00"]
    );
}

#[test]
fn hourly_intervals_count_real_time_across_dst() {
    // Every 2 hours from 00:00 CET: after the jump the wall times shift by an hour.
    let rule = Rule::Calendar(cal(2, Unit::Hours));
    let got = fires(
        rule,
        "Europe/Berlin",
        "2026-03-28T23:00:00Z",
        None,
        "2026-03-28T23:00:00Z",
        3,
    );
    assert_eq!(
        got,
        [
            "2026-03-29T03:00:00.000+02:00",
            "2026-03-29T05:00:00.000+02:00",
            "2026-03-29T07:00:00.000+02:00"
        ]
    );
    // Asked from before the start, the start itself is the first slot.
    let rule = Rule::Calendar(cal(2, Unit::Hours));
    let got = fires(
        rule,
        "Europe/Berlin",
        "2026-03-28T23:00:00Z",
        None,
        "2026-03-28T00:00:00Z",
        2,
    );
    assert_eq!(
        got,
        ["2026-03-29T00:00:00.000+01:00", "2026-03-29T03:00:00.000+02:00"]
    );
}

#[test]
fn daily_window_on_weekdays() {
    // Every 15 minutes, only 02:00-03:00 local, Monday to Friday.
    let mut c = cal(15, Unit::Minutes);
    c.window = Some((hm(2, 0), hm(3, 0)));
    c.weekdays = vec![
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ];
    // Start Friday 2026-11-27 00:00 UTC; after the Friday window comes Monday's.
    let got = fires(
        Rule::Calendar(c),
        "UTC",
        "2026-11-27T00:00:00Z",
        None,
        "2026-11-27T02:40:00Z",
        3,
    );
    assert_eq!(
        got,
        [
            "2026-11-27T02:45:00.000+00:00",
            "2026-11-30T02:00:00.000+00:00",
            "2026-11-30T02:15:00.000+00:00"
        ]
    );
}

#[test]
fn every_two_weeks_anchored_at_the_start() {
    // Start Wednesday 2026-11-25; every 2 weeks on Friday at 18:00 Berlin.
    let mut c = cal(2, Unit::Weeks);
    c.weekdays = vec![Weekday::Fri];
    c.at = Some(hm(18, 0));
    let got = fires(
        Rule::Calendar(c),
        "Europe/Berlin",
        "2026-11-25T08:00:00Z",
        None,
        "2026-11-25T08:00:00Z",
        3,
    );
    assert_eq!(
        got,
        [
            "2026-11-27T18:00:00.000+01:00",
            "2026-12-11T18:00:00.000+01:00",
            "2026-12-25T18:00:00.000+01:00"
        ]
    );
}

#[test]
fn saturdays_at_five_pm() {
    // VergeOS example 4: every Saturday at 17:00.
    let mut c = cal(1, Unit::Weeks);
    c.weekdays = vec![Weekday::Sat];
    c.at = Some(hm(17, 0));
    let got = fires(
        Rule::Calendar(c),
        "UTC",
        "2026-11-27T00:00:00Z",
        None,
        "2026-11-27T00:00:00Z",
        2,
    );
    assert_eq!(
        got,
        ["2026-11-28T17:00:00.000+00:00", "2026-12-05T17:00:00.000+00:00"]
    );
}

#[test]
fn monthly_days_last_and_missing_31st() {
    let mut c = cal(1, Unit::Months);
    c.day_of_month = Some(DayOfMonth::Day(31));
    c.at = Some(hm(9, 0));
    let got = fires(
        Rule::Calendar(c.clone()),
        "UTC",
        "2026-01-01T00:00:00Z",
        None,
        "2026-01-01T00:00:00Z",
        4,
    );
    assert_eq!(
        got,
        [
            "2026-01-31T09:00:00.000+00:00",
            "2026-03-31T09:00:00.000+00:00",
            "2026-05-31T09:00:00.000+00:00",
            "2026-07-31T09:00:00.000+00:00"
        ]
    );
    c.day_of_month = Some(DayOfMonth::Last);
    let got = fires(
        Rule::Calendar(c.clone()),
        "UTC",
        "2028-01-01T00:00:00Z",
        None,
        "2028-01-01T00:00:00Z",
        3,
    );
    assert_eq!(
        got,
        [
            "2028-01-31T09:00:00.000+00:00",
            "2028-02-29T09:00:00.000+00:00",
            "2028-03-31T09:00:00.000+00:00"
        ]
    );
    c.day_of_month = Some(DayOfMonth::First);
    c.every = 3;
    let got = fires(
        Rule::Calendar(c),
        "UTC",
        "2026-11-15T00:00:00Z",
        None,
        "2026-11-15T00:00:00Z",
        2,
    );
    assert_eq!(
        got,
        ["2027-02-01T09:00:00.000+00:00", "2027-05-01T09:00:00.000+00:00"]
    );
}

#[test]
fn yearly_on_february_29th_only_in_leap_years() {
    let c = cal(1, Unit::Years);
    let got = fires(
        Rule::Calendar(c),
        "UTC",
        "2024-02-29T06:00:00Z",
        None,
        "2024-03-01T00:00:00Z",
        2,
    );
    assert_eq!(
        got,
        ["2028-02-29T06:00:00.000+00:00", "2032-02-29T06:00:00.000+00:00"]
    );
}

#[test]
fn end_dates_stop_a_schedule() {
    let got = fires(
        Rule::Cron("0 12 * * *".into()),
        "UTC",
        "2026-11-01T00:00:00Z",
        Some("2026-11-03T12:00:00Z"),
        "2026-11-01T00:00:00Z",
        10,
    );
    assert_eq!(
        got,
        [
            "2026-11-01T12:00:00.000+00:00",
            "2026-11-02T12:00:00.000+00:00",
            "2026-11-03T12:00:00.000+00:00"
        ]
    );
}

#[test]
fn start_bounds_the_first_fire() {
    let got = fires(
        Rule::Calendar(cal(1, Unit::Days)),
        "UTC",
        "2026-12-24T08:30:00Z",
        None,
        "2026-11-01T00:00:00Z",
        2,
    );
    assert_eq!(
        got,
        ["2026-12-24T08:30:00.000+00:00", "2026-12-25T08:30:00.000+00:00"]
    );
}

#[test]
fn at_rules_fire_once_and_refuse_the_past() {
    let now = t("2026-11-27T12:00:00Z");
    let rule = Rule::At(t("2026-12-31T23:00:00Z"));
    let timing = Timing::new(&rule, "Europe/Berlin", now, None, now).unwrap();
    let slots = timing.preview(now, 5);
    assert_eq!(slots.len(), 1);
    assert_eq!(slots[0].local, "2027-01-01T00:00:00.000+01:00");
    let err = Timing::new(&Rule::At(t("2026-01-01T00:00:00Z")), "UTC", now, None, now).unwrap_err();
    assert!(err.contains("rule.at") && err.contains("in the past"), "{err}");
}

#[test]
fn bad_rules_name_their_field() {
    let now = t("2026-11-27T12:00:00Z");
    let bad = |rule: Rule, tz: &str| Timing::new(&rule, tz, now, None, now).unwrap_err();
    assert!(bad(Rule::Cron("* *".into()), "UTC").starts_with("rule.cron"));
    assert!(bad(Rule::Cron("@daily".into()), "Europe/Nowhere").starts_with("timezone"));
    assert!(bad(Rule::Calendar(cal(0, Unit::Days)), "UTC").contains("calendar.every"));
    let mut c = cal(1, Unit::Days);
    c.window = Some((hm(3, 0), hm(2, 0)));
    assert!(bad(Rule::Calendar(c), "UTC").contains("calendar.window"));
    let ends_early = Timing::new(&Rule::Cron("@daily".into()), "UTC", now, Some(now), now).unwrap_err();
    assert!(ends_early.starts_with("end"));
}

#[test]
fn window_jumps_match_stepping_one_candidate_at_a_time() {
    // The minute/hour rules jump over closed windows and excluded days; the result must
    // equal checking every candidate in turn, across DST changes in several zones.
    let start = t("2026-03-01T00:10:00Z");
    let weekday_sets = [
        vec![],
        vec![Weekday::Mon, Weekday::Tue, Weekday::Fri],
        vec![Weekday::Sun],
    ];
    let windows = [
        None,
        Some((hm(2, 0), hm(3, 0))),
        Some((hm(1, 30), hm(2, 40))),
        Some((hm(22, 0), hm(23, 59))),
    ];
    for tz_name in ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"] {
        let tz: chrono_tz::Tz = tz_name.parse().unwrap();
        for (every, unit) in [
            (7, Unit::Minutes),
            (45, Unit::Minutes),
            (1, Unit::Hours),
            (5, Unit::Hours),
        ] {
            for weekdays in &weekday_sets {
                for window in windows {
                    let mut c = cal(every, unit);
                    c.weekdays = weekdays.clone();
                    c.window = window;
                    let step = i64::from(every) * if unit == Unit::Minutes { 60 } else { 3600 };
                    let mut expected = Vec::new();
                    let mut k = 0;
                    while expected.len() < 40 && k < 200_000 {
                        let at = start + chrono::Duration::seconds(k * step);
                        let wall = at.with_timezone(&tz).naive_local();
                        if (weekdays.is_empty() || weekdays.contains(&wall.weekday()))
                            && window.is_none_or(|(from, to)| wall.time() >= from && wall.time() < to)
                        {
                            expected.push(at);
                        }
                        k += 1;
                    }
                    let timing = Timing::new(&Rule::Calendar(c), tz_name, start, None, start).unwrap();
                    let got: Vec<DateTime<Utc>> = timing
                        .preview(start - chrono::Duration::seconds(1), 40)
                        .into_iter()
                        .map(|s| s.at)
                        .collect();
                    assert_eq!(
                        got, expected,
                        "{tz_name} every {every} {unit:?} {weekdays:?} {window:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn far_away_starts_are_refused_and_month_arithmetic_before_year_zero_holds() {
    // Regression (fuzz/schedule): a monthly rule starting about 2400 years back
    // overflowed turning a negative month index into a month.
    let spec: spec::ScheduleSpec = serde_json::from_value(serde_json::json!({
        "name": "s", "timezone": "UTC", "start": "-0398-09-04T10:00:00Z",
        "rule": {"calendar": {"every": 889, "unit": "months", "weekdays": ["Mon"], "at": "05:05:05"}}
    }))
    .unwrap();
    let err = spec.timing(t("2026-11-27T00:00:00Z")).unwrap_err();
    assert!(err.starts_with("start: -0398-09-04"), "{err}");
    // The rule itself, below the spec's check: months before year 0 map to 1-12.
    let mut rule = cal(1, Unit::Months);
    rule.at = Some(hm(5, 5));
    let start = chrono::NaiveDate::from_ymd_opt(-1, 11, 15)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let timing = Timing::new(
        &Rule::Calendar(rule),
        "UTC",
        start,
        None,
        DateTime::<Utc>::MIN_UTC,
    )
    .unwrap();
    let months: Vec<u32> = timing.preview(start, 4).iter().map(|s| s.at.month()).collect();
    assert_eq!(months, [11, 12, 1, 2]);
}

#[test]
fn cron_cache_compiles_each_expression_once_and_times_as_without_it() {
    let mut crons = CronCache::default();
    let start = t("2026-03-01T00:00:00Z");
    let now = t("2000-01-01T00:00:00Z");
    for (expr, tz) in [
        ("30 2 * * *", "Europe/Berlin"),
        ("0 9 1 * 1", "America/New_York"),
        ("30 2 * * *", "Asia/Tokyo"),
        ("*/15 * * * * *", "UTC"),
    ] {
        let rule = Rule::Cron(expr.into());
        let plain = Timing::new(&rule, tz, start, None, now).unwrap();
        let cached = Timing::new_cached(&rule, tz, start, None, now, &mut crons).unwrap();
        assert_eq!(
            plain.preview(start, 50),
            cached.preview(start, 50),
            "{expr} in {tz}"
        );
    }
    assert_eq!(crons.0.len(), 3, "one entry per distinct expression");
    let rule = Rule::Cron("30 2 * * *".into());
    let mut compiled = || match Timing::new_cached(&rule, "UTC", start, None, now, &mut crons)
        .unwrap()
        .rule
    {
        Compiled::Cron(rule) => rule,
        _ => panic!("cron"),
    };
    let (a, b) = (compiled(), compiled());
    assert!(Arc::ptr_eq(&a, &b), "shared, not compiled again");
    // A bad expression fails as without the cache, and is not kept.
    let bad = Rule::Cron("61 * * * *".into());
    assert_eq!(
        Timing::new_cached(&bad, "UTC", start, None, now, &mut crons).unwrap_err(),
        Timing::new(&bad, "UTC", start, None, now).unwrap_err()
    );
    assert_eq!(crons.0.len(), 3);
    // Full, it starts over rather than growing.
    for i in 0..CronCache::CAPACITY + 10 {
        let rule = Rule::Cron(format!("{} {} * * * *", i % 60, (i / 60) % 60));
        Timing::new_cached(&rule, "UTC", start, None, now, &mut crons).unwrap();
    }
    assert!(crons.0.len() <= CronCache::CAPACITY);
}

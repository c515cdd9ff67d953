//! Property tests: cron schedules in random zones around DST transitions against an
//! independent oracle that walks every UTC minute; any rule's fires strictly increase.

use super::{Rule, Timing};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
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

fn cron_strategy() -> impl Strategy<Value = String> {
    let minute = prop::sample::select(vec!["0", "30", "*/15", "0,45", "5-10", "59", "*"]);
    let hour = prop::sample::select(vec!["*", "0", "1", "2", "3", "1-3", "*/2", "0,12", "23"]);
    let dom = prop::sample::select(vec!["*", "*", "1", "15", "28-31"]);
    let month = prop::sample::select(vec!["*", "*", "3", "10,11", "4"]);
    let dow = prop::sample::select(vec!["*", "*", "0", "1-5", "6"]);
    (minute, hour, dom, month, dow).prop_map(|(m, h, d, mo, w)| format!("{m} {h} {d} {mo} {w}"))
}

/// The fires of `expr` in `tz` between `from` (exclusive) and `to`, by walking every UTC
/// minute: a wall time that occurs fires at its first occurrence; wall times skipped by
/// a gap fire once at the first instant after it.
fn oracle(expr: &str, tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> BTreeSet<DateTime<Utc>> {
    let rule = super::cron_rule::CronRule::parse(expr).unwrap();
    let matches = |w: NaiveDateTime| rule.next_wall_after(w - Duration::seconds(1)) == Some(w);
    let wall = |u: DateTime<Utc>| u.with_timezone(&tz).naive_local();
    // Start a day early so the first occurrence of a repeated wall time is seen.
    let mut u = from - Duration::days(1);
    let mut seen = BTreeSet::new();
    let mut fires = BTreeSet::new();
    let mut prev = wall(u);
    while u <= to {
        let next = u + Duration::minutes(1);
        let w = wall(next);
        let mut fire = false;
        // Wall minutes skipped between prev and w (a spring-forward gap).
        let mut skipped = prev + Duration::minutes(1);
        while skipped < w {
            if !seen.contains(&skipped) && matches(skipped) {
                fire = true;
            }
            skipped += Duration::minutes(1);
        }
        if seen.insert(w) && matches(w) {
            fire = true;
        }
        if fire && next > from && next <= to {
            fires.insert(next);
        }
        prev = prev.max(w);
        u = next;
    }
    fires
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn cron_fires_match_a_minute_by_minute_oracle_across_dst(
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
        prop_assert_eq!(got, want, "cron {:?} in {} from {}", expr, zone, from);
    }
}

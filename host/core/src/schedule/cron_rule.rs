//! Cron rules: standard 5-field crontab expressions, 6/7-field ones with seconds (and
//! years), and the nicknames `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.
//! Evaluated by the `cron` crate on wall-clock time; day-of-week numbers follow crontab
//! (0 or 7 = Sunday, 1 = Monday, ... 6 = Saturday) in every form, and names work too.
//!
//! The two day fields combine as in crontab(5) (Vixie cron, cronie): when both are
//! restricted (neither starts with `*`), a day matches if **either** does, so
//! `0 9 1 * 1` fires on every 1st and every Monday. The `cron` crate requires both; such
//! a rule is kept as two schedules (day of month only, day of week only) and fires at
//! the earlier of their next times.

use chrono::{NaiveDateTime, TimeZone, Utc};
use std::str::FromStr;

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub struct CronRule {
    /// One schedule, or two when both day fields are restricted (their union).
    schedules: Vec<cron::Schedule>,
}

/// Whether a day field restricts days: crontab calls a field that starts with `*`
/// unrestricted (`*/2` included); `?` is the `cron` crate's "any".
fn restricts_days(field: &str) -> bool {
    !(field.starts_with('*') || field == "?")
}

const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn day_number(token: &str) -> Result<usize, String> {
    let t = token.to_ascii_uppercase();
    if let Some(i) = DAYS.iter().position(|d| t.starts_with(d) && t.len() >= 3) {
        return Ok(i);
    }
    match t.parse::<usize>() {
        Ok(n @ 0..=6) => Ok(n),
        Ok(7) => Ok(0),
        _ => Err(format!(
            "day of week {token:?} must be 0-7 or a name (sun, mon, ...)"
        )),
    }
}

/// Translate a crontab day-of-week field into day names the `cron` crate reads the same
/// way (it numbers Sunday as 1).
fn day_of_week_field(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok(field.to_string());
    }
    let mut days = [false; 7];
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<usize>()
                    .map_err(|_| format!("day of week step {s:?} is not a number"))?,
            ),
            None => (part, 1),
        };
        if step == 0 {
            return Err("day of week step must be at least 1".into());
        }
        let (lo, hi) = match range {
            "*" => (0, 6),
            r => match r.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (day_number(a)?, day_number(b)?);
                    // 5-7 or fri-sun wraps past Saturday to Sunday.
                    if b < a && b == 0 { (a, 7) } else { (a, b) }
                }
                None => {
                    let d = day_number(r)?;
                    (d, d)
                }
            },
        };
        if hi < lo {
            return Err(format!("day of week range {range:?} runs backwards"));
        }
        for d in (lo..=hi).step_by(step) {
            days[d % 7] = true;
        }
    }
    Ok(DAYS
        .iter()
        .zip(days)
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(","))
}

/// The six-field expression (seconds first) a cron nickname stands for (`@daily`,
/// lower-case), or None when `expr` is not a nickname.
pub fn nickname(expr: &str) -> Option<&'static str> {
    Some(match expr {
        "@hourly" => "0 0 * * * *",
        "@daily" | "@midnight" => "0 0 0 * * *",
        "@weekly" => "0 0 0 * * SUN",
        "@monthly" => "0 0 0 1 * *",
        "@yearly" | "@annually" => "0 0 0 1 1 *",
        _ => return None,
    })
}

impl CronRule {
    /// Parse an expression, explaining what is wrong with a bad one.
    pub fn parse(expr: &str) -> Result<CronRule, crate::Invalid> {
        let e = expr.trim();
        let mut either_day: Option<(String, String)> = None;
        let lower = e.to_ascii_lowercase();
        let six = match nickname(&lower) {
            Some(six) => six.to_string(),
            None if lower.starts_with('@') => {
                return Err(format!(
                    "cron {expr:?}: unknown nickname (use @hourly, @daily, @weekly, @monthly or @yearly)"
                )
                .into());
            }
            None => {
                let mut fields: Vec<String> = e.split_whitespace().map(str::to_string).collect();
                match fields.len() {
                    5 => fields.insert(0, "0".into()),
                    6 | 7 => {}
                    n => {
                        return Err(format!(
                            "cron {expr:?} has {n} fields; use 5 (min hour day month weekday), 6 (with seconds first) or 7 (and year)"
                        ).into());
                    }
                }
                if restricts_days(&fields[3]) && restricts_days(&fields[5]) {
                    let mut by_month_day = fields.clone();
                    by_month_day[5] = "*".into();
                    let mut by_weekday = fields.clone();
                    by_weekday[3] = "*".into();
                    by_weekday[5] =
                        day_of_week_field(&fields[5]).map_err(|m| format!("cron {expr:?}: {m}"))?;
                    either_day = Some((by_month_day.join(" "), by_weekday.join(" ")));
                }
                fields[5] = day_of_week_field(&fields[5]).map_err(|m| format!("cron {expr:?}: {m}"))?;
                fields.join(" ")
            }
        };
        let compile =
            |text: &str| cron::Schedule::from_str(text).map_err(|err| format!("cron {expr:?}: {err}"));
        // The whole expression parses first, so errors name it as written.
        let whole = compile(&six)?;
        let schedules = match either_day {
            Some((a, b)) => vec![compile(&a)?, compile(&b)?],
            None => vec![whole],
        };
        Ok(CronRule { schedules })
    }

    /// The first matching wall time strictly after `wall`.
    pub fn next_wall_after(&self, wall: NaiveDateTime) -> Option<NaiveDateTime> {
        // Wall time is evaluated as if it were UTC: DST is applied afterwards.
        let after = Utc.from_utc_datetime(&wall);
        self.schedules
            .iter()
            .filter_map(|s| s.after(&after).next())
            .min()
            .map(|t| t.naive_utc())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(expr: &str, from: &str) -> String {
        let rule = CronRule::parse(expr).unwrap();
        let wall = NaiveDateTime::parse_from_str(from, "%Y-%m-%d %H:%M:%S").unwrap();
        rule.next_wall_after(wall)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S %a")
            .to_string()
    }

    #[test]
    fn five_field_crontab_semantics() {
        // 2026-11-27 is a Friday.
        assert_eq!(
            next("0 9 * * 1", "2026-11-27 10:00:00"),
            "2026-11-30 09:00:00 Mon"
        );
        assert_eq!(
            next("0 9 * * 0", "2026-11-27 10:00:00"),
            "2026-11-29 09:00:00 Sun"
        );
        assert_eq!(
            next("0 9 * * 7", "2026-11-27 10:00:00"),
            "2026-11-29 09:00:00 Sun"
        );
        assert_eq!(
            next("0 17 * * 6", "2026-11-27 10:00:00"),
            "2026-11-28 17:00:00 Sat"
        );
        assert_eq!(
            next("30 2 * * 1-5", "2026-11-27 10:00:00"),
            "2026-11-30 02:30:00 Mon"
        );
        assert_eq!(
            next("0 0 * * 5-7", "2026-11-27 10:00:00"),
            "2026-11-28 00:00:00 Sat"
        );
        assert_eq!(
            next("*/15 * * * *", "2026-11-27 10:07:00"),
            "2026-11-27 10:15:00 Fri"
        );
        assert_eq!(
            next("0 0 31 * *", "2026-11-27 10:00:00"),
            "2026-12-31 00:00:00 Thu"
        );
        assert_eq!(
            next("0 0 29 2 *", "2026-11-27 10:00:00"),
            "2028-02-29 00:00:00 Tue"
        );
    }

    #[test]
    fn seconds_years_and_nicknames() {
        assert_eq!(
            next("*/10 * * * * *", "2026-11-27 10:00:05"),
            "2026-11-27 10:00:10 Fri"
        );
        assert_eq!(
            next("0 0 12 1 1 * 2030", "2026-11-27 10:00:00"),
            "2030-01-01 12:00:00 Tue"
        );
        assert_eq!(next("@hourly", "2026-11-27 10:30:00"), "2026-11-27 11:00:00 Fri");
        assert_eq!(next("@weekly", "2026-11-27 10:30:00"), "2026-11-29 00:00:00 Sun");
        assert_eq!(next("@monthly", "2026-11-27 10:30:00"), "2026-12-01 00:00:00 Tue");
        assert_eq!(next("@yearly", "2026-11-27 10:30:00"), "2027-01-01 00:00:00 Fri");
        assert_eq!(
            next("0 9 * * mon-fri", "2026-11-27 10:00:00"),
            "2026-11-30 09:00:00 Mon"
        );
    }

    #[test]
    fn both_day_fields_restricted_fire_when_either_matches() {
        // 2026-12-01 is a Tuesday; the Mondays after it are the 7th and the 14th.
        assert_eq!(
            next("0 9 1 * 1", "2026-11-27 10:00:00"),
            "2026-11-30 09:00:00 Mon"
        );
        assert_eq!(
            next("0 9 1 * 1", "2026-11-30 10:00:00"),
            "2026-12-01 09:00:00 Tue"
        );
        assert_eq!(
            next("0 9 1 * 1", "2026-12-01 10:00:00"),
            "2026-12-07 09:00:00 Mon"
        );
        assert_eq!(
            next("0 9 1,15 * fri", "2026-12-02 00:00:00"),
            "2026-12-04 09:00:00 Fri"
        );
        assert_eq!(
            next("0 0 0 13 * 5 *", "2026-11-14 00:00:00"),
            "2026-11-20 00:00:00 Fri"
        );
        // A day field that starts with `*` is unrestricted: both must match.
        assert_eq!(
            next("0 9 1 * */2", "2026-11-27 10:00:00"),
            "2026-12-01 09:00:00 Tue"
        );
        assert_eq!(
            next("0 9 */2 * 1", "2026-11-27 10:00:00"),
            "2026-12-07 09:00:00 Mon"
        );
        assert_eq!(
            next("0 9 ? * 1", "2026-11-27 10:00:00"),
            "2026-11-30 09:00:00 Mon"
        );
    }

    #[test]
    fn bad_expressions_say_why() {
        assert!(CronRule::parse("* * *").unwrap_err().contains("has 3 fields"));
        assert!(
            CronRule::parse("@fortnightly")
                .unwrap_err()
                .contains("unknown nickname")
        );
        assert!(CronRule::parse("0 9 * * 8").unwrap_err().contains("day of week"));
        assert!(CronRule::parse("61 * * * *").is_err());
        assert!(CronRule::parse("0 25 * * *").is_err());
    }
}

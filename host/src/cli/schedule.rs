//! `sundial schedule ...`: schedules on the daemon, with friendly rule flags
//! (`--cron`, `--every "2 weeks" --on fri --at 18:00`, `--once 2026-12-31T23:00`).

use super::EXIT_USAGE;
use super::client::{Failure, Remote, columns, text};
use super::noun::{Edit, Exclusions, Noun, Toggle, q, set};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

/// How a schedule's rule is given on the command line.
#[derive(Debug, Args, Default, Clone)]
pub(crate) struct RuleFlags {
    /// A cron expression (5, 6 or 7 fields, or @hourly, @daily, ...).
    #[arg(long)]
    cron: Option<String>,
    /// Repeat every N units: "15 minutes", "2 hours", "day", "2 weeks", "month", "year".
    #[arg(long)]
    every: Option<String>,
    /// Weekdays for --every: days and ranges, comma-separated (mon-fri, sat,sun,
    /// mon-wed,fri); anything else is refused.
    #[arg(long)]
    on: Option<String>,
    /// Time of day for --every days/weeks/months/years, HH:MM.
    #[arg(long)]
    at: Option<String>,
    /// Day of month for --every months: first, last, start or a number.
    #[arg(long)]
    day: Option<String>,
    /// Daily window for --every minutes/hours, HH:MM-HH:MM.
    #[arg(long)]
    window: Option<String>,
    /// Fire once at this time: RFC 3339, or YYYY-MM-DDTHH:MM in --tz.
    #[arg(long)]
    once: Option<String>,
    /// IANA time zone of the rule [default: the daemon's zone; UTC for a local --once time].
    #[arg(long)]
    tz: Option<String>,
}

fn hms(field: &str, text: &str) -> Result<String, String> {
    chrono::NaiveTime::parse_from_str(text, "%H:%M")
        .or_else(|_| chrono::NaiveTime::parse_from_str(text, "%H:%M:%S"))
        .map(|t| t.format("%H:%M:%S").to_string())
        .map_err(|_| format!("--{field} {text:?}: expected HH:MM"))
}

/// Weekday names, Monday first, as the API spells them.
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// One weekday: its three-letter abbreviation or its full name, any case.
fn weekday(text: &str) -> Option<usize> {
    const FULL: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let t = text.trim().to_ascii_lowercase();
    FULL.iter().position(|full| t == full[..3] || t == *full)
}

/// `--on`: weekdays and ranges, comma-separated (`mon-fri`, `sat,sun`, `mon-wed,fri`; a
/// range may wrap, `fri-mon`), as the API's list, Monday first. Anything else is refused
/// naming the part that is not a weekday.
pub(crate) fn weekdays(text: &str) -> Result<Vec<&'static str>, String> {
    let mut on = [false; 7];
    for part in text.split(',') {
        let day = |d: &str| {
            weekday(d).ok_or_else(|| {
                format!(
                    "--on {text:?}: {:?} is not a weekday (mon, tue, ... sun, or ranges such as mon-fri)",
                    d.trim()
                )
            })
        };
        match part.split_once('-') {
            Some((from, to)) => {
                sundial_core::schedule::words::mark_days(&mut on, day(from)?, day(to)?);
            }
            None => on[day(part)?] = true,
        }
    }
    Ok(WEEKDAYS
        .iter()
        .zip(on)
        .filter(|(_, o)| *o)
        .map(|(d, _)| *d)
        .collect())
}

/// Build the JSON rule from the flags (pure, unit-tested).
pub(crate) fn rule_json(f: &RuleFlags) -> Result<Value, String> {
    let given = [f.cron.is_some(), f.every.is_some(), f.once.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if given != 1 {
        return Err("give exactly one of --cron, --every or --once".into());
    }
    if let Some(c) = &f.cron {
        return Ok(json!({ "cron": c }));
    }
    if let Some(once) = &f.once {
        let at = match chrono::DateTime::parse_from_rfc3339(once) {
            Ok(t) => t.with_timezone(&chrono::Utc),
            Err(_) => {
                let naive = chrono::NaiveDateTime::parse_from_str(once, "%Y-%m-%dT%H:%M")
                    .map_err(|_| format!("--once {once:?}: expected RFC 3339 or YYYY-MM-DDTHH:MM"))?;
                let tz = sundial_core::schedule::zone::parse_tz(f.tz.as_deref().unwrap_or("UTC"))
                    .map_err(|e| format!("--tz: {e}"))?;
                sundial_core::schedule::zone::resolve(tz, naive).0
            }
        };
        return Ok(json!({ "at": sundial_core::timestamp::text(at) }));
    }
    let every = f.every.as_deref().unwrap_or_default();
    // "2 weeks", "week" or "2w": the number may be written against the unit.
    let compact = every.trim();
    let split = compact
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(compact.len());
    let (number, rest) = compact.split_at(split);
    let (n, unit) = match (number, rest.trim()) {
        (_, "") => return Err("--every needs a unit, e.g. \"2 weeks\" or 2w".into()),
        ("", u) if u.contains(char::is_whitespace) => {
            return Err(format!(
                "--every {every:?}: {:?} is not a number",
                u.split_whitespace().next().unwrap_or_default()
            ));
        }
        ("", u) => (1, u),
        (n, u) => (
            n.parse::<u32>()
                .map_err(|_| format!("--every {every:?}: {n:?} is not a number"))?,
            u,
        ),
    };
    let unit = match unit.to_ascii_lowercase().trim_end_matches('s') {
        "minute" | "min" | "m" => "minutes",
        "hour" | "h" | "hr" => "hours",
        "day" | "d" => "days",
        "week" | "w" => "weeks",
        "month" | "mo" => "months",
        "year" | "y" => "years",
        other => {
            return Err(format!(
                "--every: unknown unit {other:?} (minutes, hours, days, weeks, months, years)"
            ));
        }
    };
    let mut cal = json!({ "every": n, "unit": unit });
    if let Some(on) = &f.on {
        cal["weekdays"] = json!(weekdays(on)?);
    }
    if let Some(at) = &f.at {
        cal["at"] = json!(hms("at", at)?);
    }
    if let Some(day) = &f.day {
        cal["day_of_month"] = match day.as_str() {
            "first" | "last" | "start" => json!(day),
            n => {
                json!({ "day": n.parse::<u32>().map_err(|_| format!("--day {n:?}: first, last, start or a number"))? })
            }
        };
    }
    if let Some(w) = &f.window {
        let (a, b) = w
            .split_once('-')
            .ok_or_else(|| format!("--window {w:?}: expected HH:MM-HH:MM"))?;
        cal["window"] = json!([hms("window", a)?, hms("window", b)?]);
    }
    Ok(json!({ "calendar": cal }))
}

/// Schedules, by name or id.
pub(crate) const SCHEDULES: Noun = Noun {
    name: "schedule",
    path: "/v1/schedules",
    key: "schedules",
    columns: &[
        ("NAME", "name"),
        ("ZONE", "timezone"),
        ("ENABLED", "enabled"),
        ("NEXT", "next_slot_local"),
        ("RULE", "summary"),
        ("ID", "id"),
    ],
    toggle: Toggle::Patch,
};

#[derive(Debug, Subcommand)]
pub(crate) enum ScheduleCommand {
    /// Create a schedule.
    Create {
        /// Schedule name.
        name: String,
        #[command(flatten)]
        rule: RuleFlags,
        /// Missed slots after downtime: skip, run-once or run-all:N.
        #[arg(long)]
        misfire: Option<String>,
        /// Start (RFC 3339); default now.
        #[arg(long)]
        start: Option<String>,
        /// End (RFC 3339).
        #[arg(long)]
        end: Option<String>,
        #[command(flatten)]
        exclusions: Exclusions,
    },
    /// List schedules.
    List,
    #[command(flatten)]
    Edit(Edit),
    /// Delete a schedule (--force detaches its tasks).
    Delete {
        name: String,
        #[arg(long)]
        force: bool,
    },
    /// Pause a schedule.
    Pause { name: String },
    /// Resume a schedule.
    Resume { name: String },
    /// Attach a task.
    Attach { name: String, task: String },
    /// Detach a task.
    Detach { name: String, task: String },
    /// Show next fire times: of a saved schedule (NAME) or of a rule given by flags.
    Preview {
        /// A saved schedule.
        name: Option<String>,
        #[command(flatten)]
        rule: RuleFlags,
        /// How many (1-1440).
        #[arg(long, default_value_t = 10)]
        count: usize,
    },
}

fn slots_table(v: &Value) -> String {
    let table = columns(v, "slots", &[("LOCAL", "local"), ("UTC", "utc"), ("DST", "dst")]);
    if v["summary"].is_string() {
        format!("{}\n{table}", text(&v["summary"]))
    } else {
        table
    }
}

pub(crate) async fn run(remote: &Remote, cmd: ScheduleCommand) -> Result<(), Failure> {
    let usage = |e: String| (EXIT_USAGE, e);
    match cmd {
        ScheduleCommand::Create {
            name,
            rule,
            misfire,
            start,
            end,
            exclusions,
        } => {
            let mut body = json!({ "name": name, "rule": rule_json(&rule).map_err(usage)? });
            set(&mut body, "timezone", rule.tz.as_ref());
            if let Some(m) = misfire {
                body["misfire"] = match m.as_str() {
                    "skip" => json!({"policy": "skip"}),
                    "run-once" => json!({"policy": "run_once"}),
                    other => match other.strip_prefix("run-all:").and_then(|n| n.parse::<u32>().ok()) {
                        Some(max) => json!({"policy": "run_all", "max": max}),
                        None => {
                            return Err(usage(format!("--misfire {other:?}: skip, run-once or run-all:N")));
                        }
                    },
                };
            }
            set(&mut body, "start", start);
            set(&mut body, "end", end);
            exclusions.add_to(&mut body)?;
            let v = remote.call("POST", "/v1/schedules", Some(&body)).await?;
            remote.print(&v, |s| {
                format!(
                    "created schedule {}: {}\nnext: {}\n",
                    text(&s["name"]),
                    text(&s["summary"]),
                    text(&s["next_slot_local"])
                )
            });
        }
        ScheduleCommand::List => SCHEDULES.list(remote).await?,
        ScheduleCommand::Edit(verb) => verb.run(&SCHEDULES, remote).await?,
        ScheduleCommand::Delete { name, force } => {
            let path = format!(
                "{}{}",
                SCHEDULES.item(&name),
                if force { "?force=true" } else { "" }
            );
            remote.call("DELETE", &path, None).await?;
            SCHEDULES.done(remote, "deleted", &name);
        }
        ScheduleCommand::Pause { name } => {
            remote
                .call("POST", &format!("{}/pause", SCHEDULES.item(&name)), None)
                .await?;
            SCHEDULES.done(remote, "paused", &name);
        }
        ScheduleCommand::Resume { name } => {
            remote
                .call("POST", &format!("{}/resume", SCHEDULES.item(&name)), None)
                .await?;
            SCHEDULES.done(remote, "resumed", &name);
        }
        ScheduleCommand::Attach { name, task } => {
            remote
                .call(
                    "POST",
                    &format!("{}/tasks", SCHEDULES.item(&name)),
                    Some(&json!({ "task": task })),
                )
                .await?;
            remote.done(
                json!({"attached": task, "schedule": name}),
                &format!("attached task {task} to schedule {name}"),
            );
        }
        ScheduleCommand::Detach { name, task } => {
            remote
                .call(
                    "DELETE",
                    &format!("{}/tasks/{}", SCHEDULES.item(&name), q(&task)),
                    None,
                )
                .await?;
            remote.done(
                json!({"detached": task, "schedule": name}),
                &format!("detached task {task} from schedule {name}"),
            );
        }
        ScheduleCommand::Preview { name, rule, count } => {
            let v = match name {
                Some(n) => {
                    remote
                        .call("GET", &format!("/v1/schedules/{n}/preview?count={count}"), None)
                        .await?
                }
                None => {
                    let mut body = json!({ "rule": rule_json(&rule).map_err(usage)?, "count": count });
                    set(&mut body, "timezone", rule.tz.as_ref());
                    remote.call("POST", "/v1/schedules/preview", Some(&body)).await?
                }
            };
            remote.print(&v, slots_table);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(f: impl FnOnce(&mut RuleFlags)) -> RuleFlags {
        let mut r = RuleFlags {
            tz: None,
            ..RuleFlags::default()
        };
        f(&mut r);
        r
    }

    #[test]
    fn every_takes_the_number_against_the_unit_too() {
        for (text, n, unit) in [
            ("2w", 2, "weeks"),
            ("15m", 15, "minutes"),
            ("2 hours", 2, "hours"),
            ("3d", 3, "days"),
            ("day", 1, "days"),
        ] {
            let r = rule_json(&flags(|f| f.every = Some(text.into()))).unwrap();
            assert_eq!(
                (r["calendar"]["every"].clone(), r["calendar"]["unit"].clone()),
                (json!(n), json!(unit)),
                "{text}"
            );
        }
        assert!(
            rule_json(&flags(|f| f.every = Some("2".into())))
                .unwrap_err()
                .contains("needs a unit")
        );
    }

    #[test]
    fn friendly_flags_become_rules() {
        let r = rule_json(&flags(|f| {
            f.every = Some("2 weeks".into());
            f.on = Some("fri,Sat".into());
            f.at = Some("18:00".into());
        }))
        .unwrap();
        assert_eq!(
            r,
            json!({"calendar": {"every": 2, "unit": "weeks", "weekdays": ["Fri", "Sat"], "at": "18:00:00"}})
        );
        let r = rule_json(&flags(|f| {
            f.every = Some("hour".into());
            f.window = Some("02:00-03:00".into());
        }))
        .unwrap();
        assert_eq!(r["calendar"]["window"], json!(["02:00:00", "03:00:00"]));
        let r = rule_json(&flags(|f| {
            f.once = Some("2026-12-31T23:00".into());
            f.tz = Some("Europe/Berlin".into());
        }))
        .unwrap();
        assert_eq!(r, json!({"at": "2026-12-31T22:00:00.000Z"}));
        assert_eq!(
            rule_json(&flags(|f| f.cron = Some("@daily".into()))).unwrap(),
            json!({"cron": "@daily"})
        );
        let r = rule_json(&flags(|f| {
            f.every = Some("month".into());
            f.day = Some("last".into());
        }))
        .unwrap();
        assert_eq!(r["calendar"]["day_of_month"], "last");
    }

    #[test]
    fn weekday_lists_and_ranges() {
        assert_eq!(weekdays("mon-fri").unwrap(), ["Mon", "Tue", "Wed", "Thu", "Fri"]);
        assert_eq!(weekdays("sat,sun").unwrap(), ["Sat", "Sun"]);
        assert_eq!(weekdays("mon-wed,fri").unwrap(), ["Mon", "Tue", "Wed", "Fri"]);
        assert_eq!(weekdays("Friday-Monday").unwrap(), ["Mon", "Fri", "Sat", "Sun"]);
        assert_eq!(weekdays(" TUE , tue ").unwrap(), ["Tue"]);
        assert_eq!(weekdays("sun-sat").unwrap(), WEEKDAYS);
        assert_eq!(weekdays("wed-wed").unwrap(), ["Wed"]);
        for (bad, part) in [
            ("monkey", "monkey"),
            ("mon-frx", "frx"),
            ("mon,,fri", ""),
            ("mon-", ""),
            ("mo", "mo"),
            ("thursdays", "thursdays"),
        ] {
            let e = weekdays(bad).unwrap_err();
            assert!(e.contains(&format!("{part:?} is not a weekday")), "{bad}: {e}");
        }
    }

    /// The flags `set` makes are refused with a message containing `why`.
    fn refused(set: impl FnOnce(&mut RuleFlags), why: &str) {
        let e = rule_json(&flags(set)).unwrap_err();
        assert!(e.contains(why), "{e:?} does not say {why:?}");
    }

    #[test]
    fn bad_flags_say_why() {
        refused(|_| {}, "exactly one");
        refused(|f| f.every = Some("3 fortnights".into()), "unknown unit");
        refused(
            |f| {
                f.every = Some("week".into());
                f.on = Some("funday".into());
            },
            "weekday",
        );
        refused(
            |f| {
                f.every = Some("day".into());
                f.at = Some("25:99".into());
            },
            "HH:MM",
        );
    }
}

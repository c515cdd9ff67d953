//! A schedule as the API creates it: rule, zone, bounds, misfire policy, jitter.

use super::{Rule, Timing};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The fields of a schedule as the API shows it that the daemon sets (every field but
/// the spec's): a PATCH may not change them, `apply` leaves them out of a comparison.
pub const VIEW_FIELDS: &[&str] = &[
    "id",
    "created_at",
    "updated_at",
    "last_slot",
    "next_slot",
    "next_slot_local",
    "summary",
    "tasks",
    "task_names",
];

/// What to do with slots missed while the daemon was down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "policy")]
pub enum Misfire {
    /// Drop them (each is logged as missed).
    Skip,
    /// Run once for all of them (default).
    #[default]
    RunOnce,
    /// Run each, up to `max` (1-1000).
    RunAll {
        /// Most missed slots to run.
        max: u32,
    },
}

/// A schedule's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Unique name (same rules as task names).
    #[schemars(regex(pattern = crate::task::NAME_PATTERN), extend("not" = {"pattern": "^[0-7][0-9a-hjkmnp-tv-z]{25}$"}))]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// When it fires.
    pub rule: Rule,
    /// IANA time zone of the rule's wall times. Empty or absent: the daemon's default
    /// zone (its `timezone` setting, UTC unless configured), filled in at creation.
    #[serde(default)]
    pub timezone: String,
    /// First instant it may fire (RFC 3339). Default: when it is created.
    #[serde(default, with = "crate::timestamp::serde_millis_opt")]
    #[schemars(with = "Option<chrono::DateTime<chrono::Utc>>")]
    pub start: Option<DateTime<Utc>>,
    /// Last instant it may fire.
    #[serde(default, with = "crate::timestamp::serde_millis_opt")]
    #[schemars(with = "Option<chrono::DateTime<chrono::Utc>>")]
    pub end: Option<DateTime<Utc>>,
    /// Paused schedules do not fire. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Random delay added to each fire, up to this many milliseconds (0-3 600 000). Default 0.
    #[serde(default)]
    pub jitter_ms: u64,
    /// Missed slots after downtime. Default `run_once`.
    #[serde(default)]
    pub misfire: Misfire,
    /// Calendars whose excluded days and ranges this schedule does not fire in (names;
    /// at most 16). Maintenance windows apply as well.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub calendars: Vec<String>,
    /// What a slot inside an excluded window does: `skip` (recorded as skipped, with
    /// the reason; default) or `defer` (fires when the window ends).
    #[serde(default, skip_serializing_if = "Excluded::is_skip")]
    pub excluded: Excluded,
}

/// What a slot inside a calendar's excluded window or a maintenance window does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Excluded {
    /// Not run: recorded as a skipped run whose log says which window.
    #[default]
    Skip,
    /// Run when the window (and any window right after it) ends.
    Defer,
}

impl Excluded {
    fn is_skip(&self) -> bool {
        *self == Excluded::Skip
    }
}

fn yes() -> bool {
    true
}

impl ScheduleSpec {
    /// Validate every field and compile the rule, naming the first bad field.
    pub fn timing(&self, now: DateTime<Utc>) -> Result<Timing, crate::Invalid> {
        crate::task::validate_name("name", &self.name).map_err(|e| e.to_string())?;
        if self.jitter_ms > 3_600_000 {
            return Err(format!("jitter_ms: {} is over 3600000 (one hour)", self.jitter_ms).into());
        }
        if self.calendars.len() > 16 {
            return Err(format!("calendars: {} is over 16", self.calendars.len()).into());
        }
        if let Misfire::RunAll { max } = self.misfire
            && !(1..=1000).contains(&max)
        {
            return Err(format!("misfire.max: {max} is outside 1..=1000").into());
        }
        // The API fills in the daemon's zone first; a bare spec with none means UTC.
        let tz = if self.timezone.is_empty() {
            "UTC"
        } else {
            &self.timezone
        };
        let start = self.start.unwrap_or(now);
        // Years outside 1970-9000 are typos, and calendar arithmetic stays in range.
        for (field, t) in [("start", Some(start)), ("end", self.end)] {
            if let Some(t) = t
                && !(1970..=9000).contains(&chrono::Datelike::year(&t))
            {
                return Err(format!(
                    "{field}: {} is outside the years 1970-9000",
                    crate::timestamp::text(t)
                )
                .into());
            }
        }
        let timing = Timing::new(&self.rule, tz, start, self.end, now)?;
        if timing
            .next_after(start - chrono::Duration::nanoseconds(1))
            .is_none()
        {
            return Err(match self.end {
                Some(end) => format!(
                    "rule: never fires between start {} and end {}",
                    crate::timestamp::text(start),
                    crate::timestamp::text(end)
                )
                .into(),
                None => format!(
                    "rule: never fires after start {} (calendar minute and hour rules look four years ahead)",
                    crate::timestamp::text(start)
                )
                .into(),
            });
        }
        Ok(timing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn json_shapes_and_defaults() {
        let s: ScheduleSpec =
            serde_json::from_value(json!({"name": "nightly", "rule": {"cron": "0 2 * * *"}})).unwrap();
        assert_eq!(
            (s.timezone.as_str(), s.enabled, s.misfire),
            ("", true, Misfire::RunOnce)
        );
        s.timing(now()).unwrap();
        let s: ScheduleSpec = serde_json::from_value(json!({
            "name": "updates", "timezone": "Europe/Berlin", "misfire": {"policy": "run_all", "max": 5},
            "rule": {"calendar": {"every": 1, "unit": "weeks", "weekdays": ["Sat"], "at": "17:00:00"}}
        }))
        .unwrap();
        let first = s.timing(now()).unwrap().next_after(now()).unwrap();
        assert_eq!(first.local, "2026-11-28T17:00:00.000+01:00");
        let s: ScheduleSpec =
            serde_json::from_value(json!({"name": "poweroff", "rule": {"at": "2026-12-31T22:00:00Z"}}))
                .unwrap();
        assert_eq!(s.timing(now()).unwrap().preview(now(), 10).len(), 1);
    }

    #[test]
    fn bad_specs_name_their_field() {
        let err = |v: serde_json::Value| match serde_json::from_value::<ScheduleSpec>(v) {
            Ok(s) => s.timing(now()).unwrap_err().to_string(),
            Err(e) => e.to_string(),
        };
        assert!(
            err(json!({"name": "x", "rule": {"cron": "0 2 * * *"}, "jitter_ms": 7200000}))
                .starts_with("jitter_ms")
        );
        assert!(err(json!({"name": "x", "rule": {"cron": "0 2 *"}})).starts_with("rule.cron"));
        // Every 2 hours from an even hour never lands in an odd hour's window.
        let never = err(json!({"name": "x", "start": "2026-11-27T00:00:00Z",
            "rule": {"calendar": {"every": 2, "unit": "hours", "window": ["03:00:00", "04:00:00"]}}}));
        assert!(never.starts_with("rule: never fires after start"), "{never}");
        let never = err(
            json!({"name": "x", "start": "2026-11-27T13:00:00Z", "end": "2026-11-27T14:00:00Z",
            "rule": {"cron": "0 2 * * *"}}),
        );
        assert!(never.starts_with("rule: never fires between"), "{never}");
        assert!(err(json!({"name": "x", "rule": {"at": "2020-01-01T00:00:00Z"}})).contains("in the past"));
        assert!(
            err(json!({"name": "x", "rule": {"cron": "@daily"}, "timezone": "Moon/Base"}))
                .starts_with("timezone")
        );
        assert!(
            err(json!({"name": "x", "rule": {"cron": "@daily"}, "misfire": {"policy": "run_all", "max": 0}}))
                .contains("misfire.max")
        );
        assert!(err(json!({"name": "x", "rule": {"sometimes": 1}})).contains("unknown variant"));
    }
}

//! Tasks: a reusable action (plugin + JSON params) with its timeout, retry, overlap
//! and retention policies. Pure: validation and retry arithmetic, no I/O or clock.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// A field that failed validation, named the way the API spells it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// JSON path of the field, e.g. `retry.max_attempts`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn bad<T>(field: &str, message: impl Into<String>) -> Result<T, FieldError> {
    Err(FieldError {
        field: field.into(),
        message: message.into(),
    })
}

/// Which failures a retry policy retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RetryOn {
    /// The plugin said `retryable`. Default true.
    pub retryable: bool,
    /// The run timed out. Default true.
    pub timeout: bool,
    /// The plugin said `failed`. Default false.
    pub failed: bool,
    /// The plugin trapped or hit its memory or fuel limit. Default false.
    pub crash: bool,
    /// The daemon died while the run was running. Default true.
    pub interrupted: bool,
}

impl Default for RetryOn {
    fn default() -> Self {
        RetryOn {
            retryable: true,
            timeout: true,
            failed: false,
            crash: false,
            interrupted: true,
        }
    }
}

/// Retries with exponential backoff and jitter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Total attempts including the first; 1 means never retry. Default 3, at most 100.
    #[schemars(range(min = 1, max = 100))]
    pub max_attempts: u32,
    /// Delay before the first retry, in milliseconds. Default 1000.
    #[schemars(range(max = 86_400_000))]
    pub initial_delay_ms: u64,
    /// Each further retry waits this many times longer. Default 2.0 (1.0..=10.0).
    #[schemars(range(min = 1.0, max = 10.0))]
    pub multiplier: f64,
    /// Cap on any one delay, in milliseconds. Default 300 000 (5 minutes).
    #[schemars(range(max = 604_800_000))]
    pub max_delay_ms: u64,
    /// Random spread applied to each delay, as a fraction: 0.2 means ±20%. Default 0.2.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub jitter: f64,
    /// Which failures are retried.
    pub retry_on: RetryOn,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_delay_ms: 1000,
            multiplier: 2.0,
            max_delay_ms: 300_000,
            jitter: 0.2,
            retry_on: RetryOn::default(),
        }
    }
}

impl RetryPolicy {
    /// Check the bounds of every field.
    pub fn validate(&self) -> Result<(), FieldError> {
        if !(1..=100).contains(&self.max_attempts) {
            return bad(
                "retry.max_attempts",
                format!("{} is outside 1..=100", self.max_attempts),
            );
        }
        if self.initial_delay_ms > 86_400_000 {
            return bad("retry.initial_delay_ms", "must be at most one day");
        }
        if !(1.0..=10.0).contains(&self.multiplier) {
            return bad(
                "retry.multiplier",
                format!("{} is outside 1.0..=10.0", self.multiplier),
            );
        }
        // A cap below initial_delay_ms is allowed: every delay is then the cap.
        if self.max_delay_ms > 7 * 86_400_000 {
            return bad("retry.max_delay_ms", "must be at most 7 days");
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return bad("retry.jitter", format!("{} is outside 0.0..=1.0", self.jitter));
        }
        Ok(())
    }

    /// The delay before attempt `next_attempt` (2 for the first retry), or `None` when
    /// the attempts are used up. `unit` is a uniform random number in `[0, 1)` that
    /// places the delay inside the jitter band (pass 0.5 for no jitter).
    pub fn delay_before(&self, next_attempt: u32, unit: f64) -> Option<Duration> {
        if next_attempt < 2 || next_attempt > self.max_attempts {
            return None;
        }
        let exp = self.multiplier.powi(next_attempt as i32 - 2);
        let base = (self.initial_delay_ms as f64 * exp).min(self.max_delay_ms as f64);
        let spread = 1.0 + self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        let ms = (base * spread).clamp(0.0, self.max_delay_ms as f64);
        Some(Duration::from_millis(ms.round() as u64))
    }
}

/// What to do when a task is due while a run of it is still active.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OverlapPolicy {
    /// Start another run alongside (default).
    #[default]
    Allow,
    /// Skip the new run and record it as `skipped`.
    Forbid,
    /// Cancel the active run and start the new one.
    Replace,
    /// Start the new run when the active one finishes.
    Queue,
}

/// How much of a task's log to keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Keep at most this many finished runs (newest first). Default: the daemon's
    /// global default.
    #[schemars(range(min = 1, max = 4_294_967_295u32))]
    pub keep_last: Option<u32>,
    /// Delete finished runs older than this many days. Default: the global default.
    #[schemars(range(min = 1, max = 4_294_967_295u32))]
    pub max_age_days: Option<u32>,
}

/// A task as the API creates and updates it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    { "required": ["plugin"], "properties": {
        "plugin": { "type": "string", "pattern": NAME_PATTERN, "not": { "pattern": "^[0-7][0-9a-hjkmnp-tv-z]{25}$" } },
        "webhook": { "type": "null" }
    } },
    { "required": ["webhook"], "properties": { "webhook": { "type": "string", "minLength": 1 }, "plugin": { "const": "" } } }
]))]
pub struct TaskSpec {
    /// Unique name: 1-64 characters of `[a-z0-9-_.]`, starting with a letter or digit.
    #[schemars(regex(pattern = crate::task::NAME_PATTERN), extend("not" = {"pattern": "^[0-7][0-9a-hjkmnp-tv-z]{25}$"}))]
    pub name: String,
    /// Free text.
    #[serde(default)]
    #[schemars(length(max = 4096))]
    pub description: String,
    /// Name of the installed action plugin (give this or `webhook`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub plugin: String,
    /// Instead of a plugin: the task's action is sending to this webhook (by name or
    /// id). Each run queues one delivery of the run (params, cause, event) in the run's
    /// final commit and succeeds with `{"delivery", "webhook"}`; the delivery retries on
    /// its own and a dead one emits `sundial.webhook.failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Parameters passed to the plugin (a JSON object). Default `{}`.
    #[serde(default = "empty_object")]
    #[schemars(with = "serde_json::Map<String, Value>")]
    pub params: Value,
    /// Overrides the plugin's timeout for this task, in milliseconds.
    #[serde(default)]
    #[schemars(range(min = 1, max = 86_400_000))]
    pub timeout_ms: Option<u64>,
    /// Retry policy.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Overlap policy.
    #[serde(default)]
    pub overlap: OverlapPolicy,
    /// Retention of the task's runs.
    #[serde(default)]
    pub retention: Retention,
    /// Disabled tasks refuse new runs. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Delete the task after its first successful run. Default false.
    #[serde(default)]
    pub delete_after_run: bool,
    /// Webhooks that get a delivery of the run when it ends (several tasks can share
    /// one webhook). Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub notify: Vec<Notify>,
}

/// Send a finished run to a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// The webhook, by name or id.
    #[schemars(length(min = 1))]
    pub webhook: String,
    /// On which endings: `succeeded`, `failed` (any failed ending: failed, timed out,
    /// interrupted). Default `["failed"]`.
    #[serde(default = "on_failure")]
    #[schemars(length(min = 1))]
    pub on: Vec<NotifyOn>,
}

/// A run ending a [`Notify`] reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyOn {
    /// The run succeeded.
    Succeeded,
    /// The run ended in a failed state.
    Failed,
}

fn on_failure() -> Vec<NotifyOn> {
    vec![NotifyOn::Failed]
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

fn yes() -> bool {
    true
}

/// The name rule as a JSON Schema pattern (the "not an id" part is a separate `not`).
pub const NAME_PATTERN: &str = "^[a-z0-9][a-z0-9._-]{0,63}$";

/// Check a noun name (tasks, plugins, schedules, ... share the rule): 1-64 of
/// `[a-z0-9._-]`, starting with a letter or digit, not shaped like an id.
pub fn validate_name(field: &str, name: &str) -> Result<(), FieldError> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > 64 {
        return bad(field, format!("must be 1-64 characters, got {}", name.len()));
    }
    if !name.chars().all(ok_char) || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad(
            field,
            format!(
                "{name:?} must be lowercase letters, digits, '-', '_' or '.', starting with a letter or digit"
            ),
        );
    }
    if ulid::Ulid::from_string(&name.to_ascii_uppercase()).is_ok() && name.len() == 26 {
        return bad(field, "must not look like an id (a 26-character ULID)");
    }
    Ok(())
}

impl TaskSpec {
    /// Check every field, naming the first bad one.
    pub fn validate(&self) -> Result<(), FieldError> {
        validate_name("name", &self.name)?;
        match &self.webhook {
            None => validate_name("plugin", &self.plugin)?,
            Some(_) if !self.plugin.is_empty() => {
                return bad(
                    "webhook",
                    "give either plugin or webhook as the task's action, not both",
                );
            }
            Some(w) if w.is_empty() => return bad("webhook", "must not be empty"),
            Some(_) => {}
        }
        if self.description.chars().count() > 4096 {
            return bad("description", "must be at most 4096 characters");
        }
        if !self.params.is_object() {
            return bad("params", "must be a JSON object");
        }
        if let Some(t) = self.timeout_ms
            && !(1..=crate::limits::MAX_TIMEOUT_MS).contains(&t)
        {
            return bad("timeout_ms", format!("{t} is outside 1..=86400000"));
        }
        self.retry.validate()?;
        if self.retention.keep_last == Some(0) {
            return bad("retention.keep_last", "must be at least 1 when set");
        }
        if self.retention.max_age_days == Some(0) {
            return bad("retention.max_age_days", "must be at least 1 when set");
        }
        if self.notify.len() > 16 {
            return bad("notify", "at most 16 webhooks");
        }
        for (i, n) in self.notify.iter().enumerate() {
            if n.webhook.is_empty() {
                return bad(&format!("notify[{i}].webhook"), "must not be empty");
            }
            if n.on.is_empty() {
                return bad(&format!("notify[{i}].on"), "give succeeded and/or failed");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> Result<TaskSpec, String> {
        serde_json::from_value::<TaskSpec>(v).map_err(|e| e.to_string())
    }

    #[test]
    fn a_delay_cap_below_the_first_delay_caps_every_delay() {
        let p = RetryPolicy {
            initial_delay_ms: 5000,
            max_delay_ms: 1000,
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        p.validate().unwrap();
        assert_eq!(p.delay_before(2, 0.5), Some(Duration::from_millis(1000)));
        assert_eq!(p.delay_before(3, 0.5), Some(Duration::from_millis(1000)));
        let too_long = RetryPolicy {
            max_delay_ms: 7 * 86_400_000 + 1,
            ..p
        };
        assert!(too_long.validate().is_err());
    }

    #[test]
    fn descriptions_are_limited_in_characters_not_bytes() {
        let ok = spec(json!({"name": "d", "plugin": "echo", "description": "é".repeat(4096)})).unwrap();
        ok.validate().unwrap();
        let long = spec(json!({"name": "d", "plugin": "echo", "description": "e".repeat(4097)})).unwrap();
        assert!(long.validate().is_err());
    }

    #[test]
    fn minimal_task_gets_documented_defaults() {
        let t = spec(json!({"name": "backup", "plugin": "echo"})).unwrap();
        t.validate().unwrap();
        assert_eq!(t.params, json!({}));
        assert!(t.enabled);
        assert_eq!(t.retry.max_attempts, 3);
        assert_eq!(t.overlap, OverlapPolicy::Allow);
    }

    #[test]
    fn bad_fields_are_named() {
        let err = |v: Value| spec(v).unwrap().validate().unwrap_err().field;
        assert_eq!(err(json!({"name": "Bad Name", "plugin": "echo"})), "name");
        assert_eq!(
            err(json!({"name": "a", "plugin": "echo", "params": [1]})),
            "params"
        );
        assert_eq!(
            err(json!({"name": "a", "plugin": "echo", "retry": {"max_attempts": 0}})),
            "retry.max_attempts"
        );
        assert_eq!(
            err(json!({"name": "a", "plugin": "echo", "retry": {"jitter": 2.0}})),
            "retry.jitter"
        );
        assert_eq!(
            err(json!({"name": "a", "plugin": "echo", "timeout_ms": 0})),
            "timeout_ms"
        );
        assert_eq!(
            err(json!({"name": "01arz3ndektsv4rrffq69g5fav", "plugin": "echo"})),
            "name"
        );
        assert!(
            spec(json!({"name": "a", "plugin": "echo", "colour": "red"}))
                .unwrap_err()
                .contains("unknown field")
        );
        assert!(spec(json!({"name": "a", "plugin": "echo", "overlap": "sometimes"})).is_err());
    }

    #[test]
    fn backoff_grows_caps_and_stops() {
        let p = RetryPolicy {
            max_attempts: 6,
            initial_delay_ms: 1000,
            multiplier: 2.0,
            max_delay_ms: 5000,
            jitter: 0.0,
            ..Default::default()
        };
        let d = |n| p.delay_before(n, 0.5).map(|d| d.as_millis());
        assert_eq!(d(1), None);
        assert_eq!(d(2), Some(1000));
        assert_eq!(d(3), Some(2000));
        assert_eq!(d(4), Some(4000));
        assert_eq!(d(5), Some(5000));
        assert_eq!(d(6), Some(5000));
        assert_eq!(d(7), None);
    }

    #[test]
    fn jitter_stays_in_its_band() {
        let p = RetryPolicy {
            jitter: 0.2,
            ..Default::default()
        };
        let lo = p.delay_before(2, 0.0).unwrap().as_millis();
        let hi = p.delay_before(2, 0.999_999).unwrap().as_millis();
        assert_eq!(lo, 800);
        assert_eq!(hi, 1200);
    }
}

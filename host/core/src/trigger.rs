//! Triggers connect events to tasks and webhooks: an event pattern (type, optional
//! source and subject, each exact or a glob, and a filter over the event) or a schedule
//! (its `sundial.schedule.fired` events), and targets, with an optional context merged
//! into the run's params and an optional delay (pure).

use crate::event::cloudevent::CloudEvent;
use crate::event::filter;
use crate::event::filter::{Filter, glob_match};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest delay: 3660 days (about ten years), in milliseconds.
pub const MAX_DELAY_MS: u64 = 3660 * 86_400_000;

/// Type of the event a schedule's fired slot emits; `on.schedule` triggers match it.
pub const SCHEDULE_FIRED: &str = "sundial.schedule.fired";

/// Which events a trigger reacts to: give `type` (with optional source, subject and
/// filter) or `schedule`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventPattern {
    /// Event `type`: exact, or a glob (`sync.*`, `*.failed`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// A schedule, by id or name (stored as the id): the trigger reacts to each slot it
    /// fires (`sundial.schedule.fired` from source `sundial` with this schedule's id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Event `source`, exact or glob. Default: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Event `subject`, exact or glob. Default: any (events without a subject too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// A filter over the event (see `event::filter`). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Value>,
}

/// What a trigger starts: a task run or a webhook delivery (exactly one of the two).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// A task, by id or name (stored as the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// A webhook, by id or name (stored as the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
}

/// A trigger's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    /// Unique name (same rules as task names).
    #[schemars(regex(pattern = crate::task::NAME_PATTERN), extend("not" = {"pattern": "^[0-7][0-9a-hjkmnp-tv-z]{25}$"}))]
    pub name: String,
    /// Free text.
    #[serde(default)]
    #[schemars(length(max = 4096))]
    pub description: String,
    /// Disabled triggers match nothing. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The events it reacts to.
    pub on: EventPattern,
    /// What it starts: one or more tasks (1-100).
    #[schemars(length(min = 1, max = 100))]
    pub targets: Vec<Target>,
    /// A JSON object merged over each target task's params (the trigger's values win).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// Start the targets this long after the event (`30s`, `90m`, `30d`, `2w`), as a
    /// durable timer. Default: at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
    /// Calendars whose excluded days and ranges it starts nothing in (names; at most
    /// 16), read in the daemon's zone unless the calendar names its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub calendars: Vec<String>,
    /// An event in an excluded window: `skip` (noted on the event; default) or `defer`
    /// (its targets start when the window ends, as timers).
    #[serde(default, skip_serializing_if = "is_skip")]
    pub excluded: crate::schedule::spec::Excluded,
}

fn is_skip(e: &crate::schedule::spec::Excluded) -> bool {
    *e == crate::schedule::spec::Excluded::Skip
}

fn yes() -> bool {
    true
}

/// A string pattern: exact, or a glob with `*`/`?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// Exactly this.
    Exact(String),
    /// A glob; `prefix` is its literal part before the first wildcard.
    Glob {
        /// The whole glob.
        glob: String,
        /// The literal characters before the first `*` or `?`.
        prefix: String,
    },
}

impl Pattern {
    /// Compile `text` (a glob when it contains `*` or `?`).
    pub fn new(text: &str) -> Pattern {
        match text.find(['*', '?']) {
            None => Pattern::Exact(text.to_string()),
            Some(i) => Pattern::Glob {
                glob: text.to_string(),
                prefix: text[..i].to_string(),
            },
        }
    }

    /// Whether `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        match self {
            Pattern::Exact(e) => e == s,
            Pattern::Glob { glob, .. } => glob_match(glob, s),
        }
    }
}

/// A validated trigger, ready to match.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The trigger's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Event type pattern.
    pub kind: Pattern,
    /// Event source pattern.
    pub source: Option<Pattern>,
    /// Event subject pattern.
    pub subject: Option<Pattern>,
    /// For `on.schedule` triggers: the schedule id the event's `data.schedule_id` must be.
    pub schedule: Option<String>,
    /// Filter over the event.
    pub filter: Option<Filter>,
    /// Target task ids.
    pub tasks: Vec<String>,
    /// Target webhook ids.
    pub webhooks: Vec<String>,
    /// Context merged over params.
    pub context: Option<Value>,
    /// Delay in milliseconds (0 = at once).
    pub delay_ms: u64,
    /// Calendars it honours.
    pub calendars: Vec<String>,
    /// What an event in an excluded window does.
    pub excluded: crate::schedule::spec::Excluded,
}

impl Compiled {
    /// Whether `event` matches everything but the type (the index checks the type).
    pub fn matches_rest(&self, event: &CloudEvent) -> bool {
        self.source.as_ref().is_none_or(|p| p.matches(&event.source))
            && self
                .subject
                .as_ref()
                .is_none_or(|p| event.subject.as_deref().is_some_and(|s| p.matches(s)))
            && self.schedule.as_ref().is_none_or(|id| {
                event
                    .data
                    .as_ref()
                    .and_then(|d| d.get("schedule_id"))
                    .and_then(|v| v.as_str())
                    == Some(id.as_str())
            })
            && self.filter.as_ref().is_none_or(|f| f.matches(event))
    }
}

fn check_pattern(field: &str, text: &str) -> Result<(), String> {
    if text.is_empty() || text.len() > 256 {
        return Err(format!("{field}: must be 1-256 characters"));
    }
    Ok(())
}

impl TriggerSpec {
    /// Check every field, naming the first bad one, and compile the pattern, with the
    /// targets as given (the caller resolves names to ids first).
    pub fn compile(&self, id: &str) -> Result<Compiled, crate::Invalid> {
        crate::task::validate_name("name", &self.name).map_err(|e| e.to_string())?;
        if self.description.len() > 4096 {
            return Err("description: at most 4096 bytes".into());
        }
        let kind = match (&self.on.kind, &self.on.schedule) {
            (Some(kind), None) => {
                check_pattern("on.type", kind)?;
                kind.clone()
            }
            (None, Some(schedule)) => {
                check_pattern("on.schedule", schedule)?;
                if self.on.source.is_some() || self.on.subject.is_some() {
                    return Err("on: source and subject do not apply to a schedule (use filter)".into());
                }
                SCHEDULE_FIRED.to_string()
            }
            _ => return Err("on: give exactly one of type (an event pattern) or schedule".into()),
        };
        if let Some(s) = &self.on.source {
            check_pattern("on.source", s)?;
        }
        if let Some(s) = &self.on.subject {
            check_pattern("on.subject", s)?;
        }
        let filter = match &self.on.filter {
            None => None,
            Some(f) => Some(filter::compile(f).map_err(|e| format!("on.{e}"))?),
        };
        if self.targets.is_empty() || self.targets.len() > 100 {
            return Err(format!("targets: 1-100 targets, got {}", self.targets.len()).into());
        }
        let (mut tasks, mut webhooks) = (Vec::new(), Vec::new());
        for (i, t) in self.targets.iter().enumerate() {
            match (&t.task, &t.webhook) {
                (Some(task), None) => tasks.push(task.clone()),
                (None, Some(hook)) => webhooks.push(hook.clone()),
                _ => return Err(format!("targets[{i}]: give exactly one of task or webhook").into()),
            }
        }
        if let Some(c) = &self.context
            && !c.is_object()
        {
            return Err("context: expected a JSON object".into());
        }
        if self.calendars.len() > 16 {
            return Err(format!("calendars: {} is over 16", self.calendars.len()).into());
        }
        let delay_ms = match &self.delay {
            None => 0,
            Some(d) => {
                let ms = crate::limits::parse_duration(d)
                    .map_err(|e| format!("delay: {e}"))?
                    .as_millis() as u64;
                if ms > MAX_DELAY_MS {
                    return Err(format!("delay: {d:?} is longer than 3660 days").into());
                }
                ms
            }
        };
        Ok(Compiled {
            id: id.to_string(),
            name: self.name.clone(),
            kind: Pattern::new(&kind),
            source: match &self.on.schedule {
                Some(_) => Some(Pattern::new(crate::event::INTERNAL_SOURCE)),
                None => self.on.source.as_deref().map(Pattern::new),
            },
            schedule: self.on.schedule.clone(),
            subject: self.on.subject.as_deref().map(Pattern::new),
            filter,
            tasks,
            webhooks,
            context: self.context.clone(),
            delay_ms,
            calendars: self.calendars.clone(),
            excluded: self.excluded,
        })
    }
}

/// Merge `patch` over `base` (objects recursively; anything else replaces).
pub fn merge_params(base: &Value, patch: &Value) -> Value {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            let mut out = b.clone();
            for (k, v) in p {
                let merged = match out.get(k) {
                    Some(existing) => merge_params(existing, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (_, p) => p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> TriggerSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn compile_checks_each_field() {
        let good = json!({"name": "t", "on": {"type": "user.*", "filter": {"path": "data.x", "eq": 1}},
            "targets": [{"task": "a"}], "context": {"vm": "web"}, "delay": "30d"});
        let c = spec(good.clone()).compile("id").unwrap();
        assert_eq!(c.delay_ms, 30 * 86_400_000);
        assert_eq!(
            c.kind,
            Pattern::Glob {
                glob: "user.*".into(),
                prefix: "user.".into()
            }
        );
        let err = |patch: Value| spec(merge_params(&good, &patch)).compile("id").unwrap_err();
        assert!(err(json!({"name": "Bad Name"})).starts_with("name"));
        assert!(err(json!({"on": {"type": ""}})).starts_with("on.type"));
        let mut bad_filter = good.clone();
        bad_filter["on"]["filter"] = json!({"path": "x", "gt": "y"});
        let e = spec(bad_filter).compile("id").unwrap_err();
        assert_eq!(&*e, "on.filter.gt: expected a number");
        assert!(err(json!({"targets": []})).starts_with("targets"));
        let mut both = good.clone();
        both["targets"] = json!([{"task": "a", "webhook": "w"}]);
        assert!(
            spec(both)
                .compile("id")
                .unwrap_err()
                .starts_with("targets[0]: give exactly one")
        );
        assert!(err(json!({"context": [1]})).starts_with("context"));
        assert!(err(json!({"delay": "soon"})).starts_with("delay"));
        assert!(err(json!({"delay": "4000d"})).contains("3660 days"));
    }

    #[test]
    fn schedule_patterns_match_only_their_schedules_fired_events() {
        let c = spec(json!({"name": "t", "on": {"schedule": "S1"}, "targets": [{"webhook": "w"}]}))
            .compile("id")
            .unwrap();
        assert_eq!(c.kind, Pattern::Exact(SCHEDULE_FIRED.into()));
        let fired = |source: &str, id: &str| {
            let mut e = crate::event::internal(SCHEDULE_FIRED, "nightly", json!({"schedule_id": id}), "t");
            e.source = source.into();
            e
        };
        assert!(c.matches_rest(&fired("sundial", "S1")));
        assert!(!c.matches_rest(&fired("sundial", "S2")), "another schedule");
        assert!(
            !c.matches_rest(&fired("sundial/plugin/x", "S1")),
            "not from the daemon"
        );
        for bad in [
            json!({"type": "a", "schedule": "S1"}),
            json!({}),
            json!({"schedule": "S1", "subject": "x"}),
            json!({"schedule": ""}),
        ] {
            let e = spec(json!({"name": "t", "on": bad, "targets": [{"task": "a"}]}))
                .compile("id")
                .unwrap_err();
            assert!(e.starts_with("on"), "{e}");
        }
    }

    #[test]
    fn context_wins_over_params() {
        let base = json!({"vm": "db", "opts": {"force": false, "wait": true}, "keep": 1});
        let ctx = json!({"vm": "web", "opts": {"force": true}});
        assert_eq!(
            merge_params(&base, &ctx),
            json!({"vm": "web", "opts": {"force": true, "wait": true}, "keep": 1})
        );
        assert_eq!(merge_params(&json!(null), &ctx), ctx);
    }
}

//! Events: CloudEvents 1.0 records that say why tasks run. External systems post them,
//! Sundial emits its own (`sundial.run.failed`, ...), plugins emit them too. This module
//! is the pure part: parsing and validation (`cloudevent`), filters (`filter`), the
//! trigger index (`index`) and the stored record (`EventRecord`).

pub mod budget;
pub mod cloudevent;
pub mod filter;
pub mod index;

use cloudevent::CloudEvent;
use serde::{Deserialize, Serialize};

/// Source of the events Sundial emits itself.
pub const INTERNAL_SOURCE: &str = "sundial";
/// Prefix of the source of events plugins emit (`sundial/plugin/NAME`).
pub const PLUGIN_SOURCE_PREFIX: &str = "sundial/plugin/";

/// Whether `source` belongs to Sundial (`sundial`, `sundial/...`): events posted to the
/// API may not use it, so triggers on internal events cannot be set off from outside.
pub fn is_reserved_source(source: &str) -> bool {
    source == INTERNAL_SOURCE || source.starts_with("sundial/")
}

/// What one trigger did with an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Matched {
    /// The trigger's id.
    pub trigger: String,
    /// Its name when the event arrived.
    pub name: String,
    /// Runs it started.
    #[serde(default)]
    pub runs: Vec<String>,
    /// Timers it set (delayed runs).
    #[serde(default)]
    pub timers: Vec<String>,
    /// Webhook deliveries it queued.
    #[serde(default)]
    pub deliveries: Vec<String>,
    /// Targets it could not start, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// An event as stored: the CloudEvent plus what Sundial did with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EventRecord {
    /// Sundial's id for the event (a ULID, in arrival order).
    pub seq: String,
    /// The CloudEvent.
    pub event: CloudEvent,
    /// When Sundial stored it, RFC 3339.
    pub received_at: String,
    /// Causal depth: 0 for events from outside; one more than the run that caused it.
    pub depth: u32,
    /// The run that emitted it or that it is about (internal and plugin events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caused_by: Option<String>,
    /// The triggers it matched and what each started.
    #[serde(default)]
    pub triggers: Vec<Matched>,
    /// Why it was not routed (the causal depth limit or the chain's budget), if it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// The chain it belongs to: the first event or run it descends from (absent: it
    /// starts one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
}

impl EventRecord {
    /// The event as a plugin sees it in its invocation. Data that is not JSON is
    /// passed as a JSON string holding its base64.
    pub fn for_plugin(&self) -> crate::invocation::Event {
        let e = &self.event;
        crate::invocation::Event {
            id: e.id.clone(),
            kind: e.kind.clone(),
            source: e.source.clone(),
            subject: e.subject.clone(),
            time: e.time.clone().unwrap_or_else(|| self.received_at.clone()),
            data: match (&e.data, &e.data_base64) {
                (Some(d), _) => d.clone(),
                (None, Some(b)) => serde_json::Value::String(b.clone()),
                (None, None) => serde_json::Value::Null,
            },
        }
    }
}

/// An event Sundial emits itself (`sundial.run.failed`, ...), with a fresh id.
pub fn internal(kind: &str, subject: &str, data: serde_json::Value, time: &str) -> CloudEvent {
    CloudEvent {
        specversion: "1.0".into(),
        id: crate::ids::new_id(),
        source: INTERNAL_SOURCE.into(),
        kind: kind.into(),
        subject: Some(subject.into()),
        time: Some(time.into()),
        datacontenttype: Some("application/json".into()),
        dataschema: None,
        data: Some(data),
        data_base64: None,
        extensions: Default::default(),
    }
}

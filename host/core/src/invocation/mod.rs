//! Host-side views of what goes into a plugin (invocation, event, delivery) and what
//! comes out of a run (report, resources, emitted events, the typed [`RunError`]).
//! The runtime converts them to and from the WIT types.

pub mod error;

pub use error::{LoadError, RunError};

use crate::log::RunLog;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A CloudEvents 1.0 event as handed to plugins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Event {
    /// CloudEvents `id`.
    pub id: String,
    /// CloudEvents `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// CloudEvents `source`.
    pub source: String,
    /// CloudEvents `subject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// CloudEvents `time`, RFC 3339.
    pub time: String,
    /// CloudEvents `data` (`null` when absent).
    #[serde(default)]
    pub data: Value,
}

/// Why a run started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// A schedule (by name) fired.
    Schedule(String),
    /// An event matched a trigger.
    Event,
    /// Started by hand.
    Manual,
    /// A retry of the given attempt.
    Retry(u32),
}

/// One call of an action plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Invocation {
    /// Stable run id, the plugin's idempotency key.
    pub run_id: String,
    /// Name of the task.
    pub task: String,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// Why the run started.
    pub cause: Cause,
    /// Parameters (JSON).
    pub params: Value,
    /// The causing event, if any.
    pub event: Option<Event>,
}

impl Invocation {
    /// A manual invocation with fresh run id, attempt 1.
    pub fn manual(task: &str, params: Value) -> Invocation {
        Invocation {
            run_id: crate::ids::new_id(),
            task: task.to_string(),
            attempt: 1,
            cause: Cause::Manual,
            params,
            event: None,
        }
    }
}

/// A webhook delivery handed to a formatter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Delivery {
    /// Delivery id.
    pub id: String,
    /// Webhook name.
    pub webhook: String,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// Creation time, RFC 3339.
    pub timestamp: String,
    /// The event being delivered.
    pub event: Option<Event>,
    /// The run being reported (JSON).
    pub run: Option<Value>,
    /// Formatter configuration (JSON object).
    pub config: Value,
    /// Message template.
    pub template: Option<String>,
}

/// What a formatter produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HttpBody {
    /// Content type.
    pub content_type: String,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
}

/// An event a plugin emitted through `host.emit-event` during a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EmittedEvent {
    /// Event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Subject, if given.
    pub subject: Option<String>,
    /// Data (JSON).
    pub data: Value,
}

/// Resources one run used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Resources {
    /// Wall-clock time from instantiation to result, in microseconds.
    pub duration_us: u64,
    /// Largest total linear memory the plugin had, in bytes.
    pub peak_memory_bytes: u64,
    /// Fuel consumed, when fuel metering is on.
    pub fuel_consumed: Option<u64>,
    /// `host:port` of every host the plugin connected to, in order, deduplicated.
    pub hosts_contacted: Vec<String>,
    /// The run called an instance an earlier run left (`limits.runs_per_instance` above
    /// 1) instead of a fresh one. Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reused_instance: bool,
}

/// Everything a run produced, success or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunReport<T> {
    /// The output, or why there is none.
    pub result: Result<T, RunError>,
    /// The run's log.
    pub log: RunLog,
    /// Events the plugin emitted (only kept when the run succeeded or failed
    /// cleanly; the caller decides what to do with them).
    pub events: Vec<EmittedEvent>,
    /// Resources used.
    pub resources: Resources,
}

//! A readable message for any delivery, whatever caused it, for chat and paging
//! formatters (`slack`, `teams`, `pagerduty`) and for yours.
//!
//! A delivery reaches a formatter for one of four [`Cause`]s, and each carries
//! different data: an event (a trigger matched), a finished run (a task's `notify`),
//! the run of a task whose action is the webhook (its output names the delivery; the
//! event that started it too, when there was one) or a test event (`sundial webhook
//! test`). Templates that
//! name only `${event.*}` come out empty for a run. [`Message::of`] looks at what the
//! delivery carries and writes a title, a text and facts that make sense for it.

use crate::Delivery;
use serde_json::Value;

/// Why a delivery was made, as far as a formatter can tell from what it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// An event matched a trigger (the event is in the delivery).
    Event,
    /// A run finished and its task notifies this webhook (the run is in the delivery;
    /// also a `sundial.run.*` event, whose data is the run).
    RunFinished,
    /// A task's action is this webhook (the run is in the delivery, its output naming
    /// this delivery; the event that started it too, when there was one).
    TaskAction,
    /// `sundial webhook test` (a `sundial.webhook.test` event).
    Test,
}

/// How a message should look: good news, bad news or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Information (events, tests, a task's own message).
    Info,
    /// A run succeeded.
    Good,
    /// A run failed, timed out or was interrupted.
    Bad,
}

impl Tone {
    /// One of three values by tone: `good`, `bad` or `info`.
    pub fn pick<T>(self, good: T, bad: T, info: T) -> T {
        match self {
            Tone::Good => good,
            Tone::Bad => bad,
            Tone::Info => info,
        }
    }
}

/// A delivery as people read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// What caused the delivery.
    pub cause: Cause,
    /// A one-line headline, never empty.
    pub title: String,
    /// The message body, never empty.
    pub text: String,
    /// Name and value pairs worth showing beside it (empty values left out).
    pub facts: Vec<(String, String)>,
    /// Who produced it: the event's source, or `sundial`.
    pub source: String,
    /// When it happened, RFC 3339.
    pub time: String,
    /// Good, bad or neither.
    pub tone: Tone,
    /// A key that is the same for every delivery about the same thing, for alert
    /// deduplication: `sundial/TASK` for runs, `SOURCE/SUBJECT` for events.
    pub key: String,
}

/// Longest text taken from event or run data: 1 000 characters.
const MAX_DATA_TEXT: usize = 1000;

/// `v` as short text: a string as it is, anything else as compact JSON; cut at
/// [`MAX_DATA_TEXT`] characters with an ellipsis.
fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Object(o) if o.is_empty() => String::new(),
        Value::Array(a) if a.is_empty() => String::new(),
        other => other.to_string(),
    };
    if s.chars().count() > MAX_DATA_TEXT {
        let mut cut: String = s.chars().take(MAX_DATA_TEXT).collect();
        cut.push('…');
        cut
    } else {
        s
    }
}

/// The most readable part of event data: its `message` (or `text`, `summary`) when it
/// has one, else the whole of it.
fn data_text(data: &Value) -> String {
    for key in ["message", "text", "summary", "description"] {
        if let Some(Value::String(s)) = data.get(key)
            && !s.is_empty()
        {
            return short(&Value::String(s.clone()));
        }
    }
    short(data)
}

fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The string field `a`, or `b` when `a` is absent or empty.
fn either<'a>(v: &'a Value, a: &str, b: &str) -> &'a str {
    match field(v, a) {
        "" => field(v, b),
        found => found,
    }
}

fn push(facts: &mut Vec<(String, String)>, name: &str, value: impl Into<String>) {
    let value = value.into();
    if !value.is_empty() {
        facts.push((name.to_string(), value));
    }
}

/// The error of a run, as text: `kind: message`.
fn run_error(run: &Value) -> String {
    let Some(e) = run.get("error").filter(|e| !e.is_null()) else {
        return String::new();
    };
    let kind = field(e, "kind").replace('_', " ");
    match e.get("message") {
        Some(m) if !m.is_null() => format!("{kind}: {}", short(m)),
        _ => kind,
    }
}

impl Message {
    /// The message for `d` (see the module documentation).
    pub fn of(d: &Delivery) -> Message {
        let run: Option<Value> = d.run.as_deref().and_then(|r| serde_json::from_str(r).ok());
        let event = d.event.as_ref();
        let event_data: Value = event
            .and_then(|e| serde_json::from_str(&e.data).ok())
            .unwrap_or(Value::Null);
        if let Some(e) = event
            && e.kind == "sundial.webhook.test"
        {
            let by = field(&event_data, "by");
            let mut facts = Vec::new();
            push(&mut facts, "Webhook", d.webhook.clone());
            push(&mut facts, "Sent by", by);
            push(&mut facts, "Delivery", d.id.clone());
            return Message {
                cause: Cause::Test,
                title: format!("Test delivery to webhook {}", d.webhook),
                text: format!(
                    "{} (webhook {}, attempt {}{}).",
                    match data_text(&event_data) {
                        t if t.is_empty() => "A test delivery from Sundial".to_string(),
                        t => t,
                    },
                    d.webhook,
                    d.attempt,
                    if by.is_empty() {
                        String::new()
                    } else {
                        format!(", sent by {by}")
                    }
                ),
                facts,
                source: e.source.clone(),
                time: e.time.clone(),
                tone: Tone::Info,
                key: format!("sundial/webhook-test/{}", d.webhook),
            };
        }
        // A task whose action is this webhook: its run's output names this delivery.
        if let Some(r) = &run
            && r.get("output")
                .and_then(|o| o.get("delivery"))
                .and_then(Value::as_str)
                == Some(&d.id)
        {
            return Message::of_task_action(d, r);
        }
        // A finished run: from a task's notify, or carried by a `sundial.run.*` event.
        let finished = match (&run, event) {
            (Some(r), _) if is_terminal(field(r, "status")) => Some(r.clone()),
            (_, Some(e)) if e.kind.starts_with("sundial.run.") && event_data.get("status").is_some() => {
                Some(event_data.clone())
            }
            _ => None,
        };
        if let Some(r) = finished {
            return Message::of_finished_run(d, &r);
        }
        if let Some(r) = &run {
            return Message::of_task_action(d, r);
        }
        match event {
            Some(e) => {
                let subject = e.subject.clone().unwrap_or_default();
                let detail = data_text(&event_data);
                let text = match (subject.is_empty(), detail.is_empty()) {
                    (false, false) => format!("{subject}: {detail}"),
                    (false, true) => subject.clone(),
                    (true, false) => detail,
                    (true, true) => format!("{} from {}", e.kind, e.source),
                };
                let mut facts = Vec::new();
                push(&mut facts, "Type", e.kind.clone());
                push(&mut facts, "Subject", subject.clone());
                push(&mut facts, "Source", e.source.clone());
                push(&mut facts, "Time", e.time.clone());
                Message {
                    cause: Cause::Event,
                    title: e.kind.clone(),
                    text,
                    facts,
                    source: e.source.clone(),
                    time: e.time.clone(),
                    tone: Tone::Info,
                    key: format!("{}/{}", e.source, subject),
                }
            }
            None => Message {
                cause: Cause::TaskAction,
                title: format!("Delivery to webhook {}", d.webhook),
                text: format!(
                    "Delivery {} to webhook {} (no event or run attached).",
                    d.id, d.webhook
                ),
                facts: vec![("Delivery".into(), d.id.clone())],
                source: "sundial".into(),
                time: d.timestamp.clone(),
                tone: Tone::Info,
                key: format!("sundial/webhook/{}", d.webhook),
            },
        }
    }

    /// `r` is a run (`id`, `task_name`) or the data of a `sundial.run.*` event (`run`,
    /// `task`).
    fn of_finished_run(d: &Delivery, r: &Value) -> Message {
        let task = either(r, "task_name", "task");
        let id = either(r, "id", "run");
        let status = field(r, "status");
        let attempts = r.get("attempt").and_then(Value::as_u64).unwrap_or(1);
        let error = run_error(r);
        let tone = if status == "succeeded" {
            Tone::Good
        } else {
            Tone::Bad
        };
        let mut text = format!(
            "Run {id} of task {task} {} after {attempts} attempt{}",
            status.replace('_', " "),
            if attempts == 1 { "" } else { "s" }
        );
        if !error.is_empty() {
            text += &format!(": {error}");
        } else {
            text.push('.');
        }
        let mut facts = Vec::new();
        push(&mut facts, "Task", task);
        push(&mut facts, "Status", status);
        push(&mut facts, "Run", id);
        push(&mut facts, "Started by", started_by(r));
        push(&mut facts, "Started", field(r, "started_at"));
        push(&mut facts, "Finished", field(r, "finished_at"));
        push(&mut facts, "Error", error);
        let time = match field(r, "finished_at") {
            "" => d.timestamp.clone(),
            t => t.to_string(),
        };
        Message {
            cause: Cause::RunFinished,
            title: format!("Task {task} {}", status.replace('_', " ")),
            text,
            facts,
            source: "sundial".into(),
            time,
            tone,
            key: format!("sundial/{task}"),
        }
    }

    fn of_task_action(d: &Delivery, r: &Value) -> Message {
        let task = field(r, "task_name");
        let mut facts = Vec::new();
        push(&mut facts, "Task", task);
        push(&mut facts, "Run", field(r, "id"));
        push(&mut facts, "Started by", started_by(r));
        let text = match &d.event {
            Some(e) => {
                let data: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
                push(&mut facts, "Event", e.kind.clone());
                push(&mut facts, "Subject", e.subject.clone().unwrap_or_default());
                let detail = data_text(&data);
                format!(
                    "Task {task} on {}{}{}",
                    e.kind,
                    e.subject.as_deref().map(|s| format!(" {s}")).unwrap_or_default(),
                    if detail.is_empty() {
                        String::new()
                    } else {
                        format!(": {detail}")
                    }
                )
            }
            None => {
                let params = r
                    .get("params")
                    .filter(|p| !p.is_null() && *p != &serde_json::json!({}));
                format!(
                    "Task {task} ran (run {}){}",
                    field(r, "id"),
                    params.map(|p| format!(" with {}", short(p))).unwrap_or_default()
                )
            }
        };
        Message {
            cause: Cause::TaskAction,
            title: format!("Task {task}"),
            text,
            facts,
            source: d
                .event
                .as_ref()
                .map(|e| e.source.clone())
                .unwrap_or_else(|| "sundial".into()),
            time: d.timestamp.clone(),
            tone: Tone::Info,
            key: format!("sundial/{task}"),
        }
    }
}

/// What started a run, in words: `schedule (slot 2026-12-03T09:00:00Z)`, `event
/// user.created`, `admin, by hand`.
fn started_by(r: &Value) -> String {
    let cause = r.get("cause").unwrap_or(&Value::Null);
    match field(cause, "kind") {
        "schedule" => match field(cause, "slot") {
            "" => "a schedule".into(),
            slot => format!("a schedule (slot {slot})"),
        },
        "event" => match r.get("event").and_then(|e| e.get("type")) {
            Some(Value::String(k)) => format!("event {k}"),
            _ => "an event".into(),
        },
        "manual" => match field(r, "started_by") {
            "" => "by hand".into(),
            who => format!("{who}, by hand"),
        },
        other => other.replace('_', " "),
    }
}

fn is_terminal(status: &str) -> bool {
    !matches!(status, "" | "queued" | "running")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;
    use serde_json::json;

    fn delivery(event: Option<Event>, run: Option<Value>) -> Delivery {
        Delivery {
            id: "01D".into(),
            webhook: "alerts".into(),
            attempt: 1,
            timestamp: "2026-12-03T10:00:00.000Z".into(),
            event,
            run: run.map(|r| r.to_string()),
            config: "{}".into(),
            template: None,
        }
    }

    fn event(kind: &str, subject: Option<&str>, data: Value) -> Event {
        Event {
            id: "e1".into(),
            kind: kind.into(),
            source: "/crm".into(),
            subject: subject.map(Into::into),
            time: "2026-12-03T09:59:00.000Z".into(),
            data: data.to_string(),
        }
    }

    #[test]
    fn every_cause_gets_a_title_and_a_text() {
        let failed = json!({"id": "R1", "task_name": "backup", "status": "failed", "attempt": 3,
            "cause": {"kind": "schedule", "slot": "2026-12-03T09:00:00Z"}, "started_by": "sundial",
            "error": {"kind": "failed", "message": "disk full"}, "finished_at": "2026-12-03T10:00:00.000Z"});
        let m = Message::of(&delivery(None, Some(failed.clone())));
        assert_eq!(m.cause, Cause::RunFinished);
        assert_eq!(m.title, "Task backup failed");
        assert_eq!(
            m.text,
            "Run R1 of task backup failed after 3 attempts: failed: disk full"
        );
        assert_eq!(m.tone, Tone::Bad);
        assert!(m.facts.contains(&(
            "Started by".into(),
            "a schedule (slot 2026-12-03T09:00:00Z)".into()
        )));

        let ok = json!({"id": "R2", "task_name": "backup", "status": "succeeded", "attempt": 1});
        let m = Message::of(&delivery(None, Some(ok)));
        assert_eq!((m.title.as_str(), m.tone), ("Task backup succeeded", Tone::Good));
        assert_eq!(m.text, "Run R2 of task backup succeeded after 1 attempt.");

        // A `sundial.run.failed` event's data (host/engine/src/executor/outcome.rs).
        let data = json!({"run": "R1", "task": "backup", "task_id": "T1", "status": "failed", "attempt": 1,
            "cause": {"kind": "manual"}, "error": {"kind": "timeout", "message": "after 30 s"}});
        let m = Message::of(&delivery(
            Some(event("sundial.run.failed", Some("backup"), data)),
            None,
        ));
        assert_eq!(
            (m.cause, m.title.as_str()),
            (Cause::RunFinished, "Task backup failed")
        );
        assert_eq!(
            m.text,
            "Run R1 of task backup failed after 1 attempt: timeout: after 30 s"
        );
        assert!(
            m.facts.contains(&("Started by".into(), "by hand".into())),
            "{m:?}"
        );

        let m = Message::of(&delivery(
            Some(event(
                "user.created",
                Some("u-1"),
                json!({"message": "Ada signed up"}),
            )),
            None,
        ));
        assert_eq!(m.cause, Cause::Event);
        assert_eq!(
            (m.title.as_str(), m.text.as_str()),
            ("user.created", "u-1: Ada signed up")
        );
        assert_eq!(m.key, "/crm/u-1");

        let m = Message::of(&delivery(Some(event("tick", None, Value::Null)), None));
        assert_eq!(m.text, "tick from /crm");

        let running = json!({"id": "R3", "task_name": "page-oncall", "status": "succeeded",
            "params": {"level": 2}, "cause": {"kind": "manual"}, "started_by": "admin",
            "output": {"delivery": "01D", "webhook": "alerts"}});
        let m = Message::of(&delivery(None, Some(running.clone())));
        assert_eq!(m.cause, Cause::TaskAction);
        assert_eq!(m.text, "Task page-oncall ran (run R3) with {\"level\":2}");
        let m = Message::of(&delivery(
            Some(event("disk.full", Some("/var"), json!({"used": 99}))),
            Some(running),
        ));
        assert_eq!(m.text, "Task page-oncall on disk.full /var: {\"used\":99}");

        let m = Message::of(&delivery(
            Some(event(
                "sundial.webhook.test",
                Some("alerts"),
                json!({"message": "a test delivery from Sundial", "by": "admin"}),
            )),
            None,
        ));
        assert_eq!(m.cause, Cause::Test);
        assert_eq!(m.title, "Test delivery to webhook alerts");
        assert_eq!(
            m.text,
            "a test delivery from Sundial (webhook alerts, attempt 1, sent by admin)."
        );

        let m = Message::of(&delivery(None, None));
        assert!(!m.title.is_empty() && !m.text.is_empty());
    }

    #[test]
    fn long_data_is_cut() {
        let m = Message::of(&delivery(Some(event("big", None, json!("x".repeat(5000)))), None));
        assert_eq!(m.text.chars().count(), MAX_DATA_TEXT + 1);
    }
}

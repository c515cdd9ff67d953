//! `json` formatter: the delivery context as one JSON document.
//!
//! Body: `{"id", "webhook", "attempt", "timestamp", "event": {...} | null, "run": {...} | null,
//! "message": {"cause", "title", "text"}}` with content type `application/json`. The
//! event's `data` and the run are embedded as JSON, not as strings; `message` is the
//! delivery in words ([`sundial_sdk::message::Message`]).

use serde_json::{Value, json};
use sundial_sdk::message::{Cause, Message};
use sundial_sdk::{Delivery, Formatter, HttpBody};

struct JsonFormatter;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

impl Formatter for JsonFormatter {
    fn format(d: Delivery) -> Result<HttpBody, String> {
        let event = d.event.as_ref().map(|e| {
            json!({
                "specversion": "1.0", "id": e.id, "type": e.kind, "source": e.source,
                "subject": e.subject, "time": e.time, "data": parse(&e.data),
            })
        });
        let m = Message::of(&d);
        let cause = match m.cause {
            Cause::Event => "event",
            Cause::RunFinished => "run",
            Cause::TaskAction => "task",
            Cause::Test => "test",
        };
        let body = json!({
            "id": d.id,
            "webhook": d.webhook,
            "attempt": d.attempt,
            "timestamp": d.timestamp,
            "event": event,
            "run": d.run.as_deref().map(parse),
            "message": { "cause": cause, "title": m.title, "text": m.text },
        });
        Ok(HttpBody {
            content_type: "application/json".into(),
            body: body.to_string().into_bytes(),
            headers: Vec::new(),
        })
    }
}

sundial_sdk::export_formatter!(JsonFormatter);

//! Message templates for formatter and action plugins: `${...}` placeholders filled
//! from a delivery ([`render`]) or a run's invocation ([`render_run`]), as in VergeOS
//! webhooks (`${DATE}`, `${TIMESTAMP}`, `${RANDOM}`, `${NAME}`) plus the event and run.
//!
//! | placeholder | value |
//! |---|---|
//! | `${DATE}` | now, `YYYY-MM-DD HH:MM:SS UTC` |
//! | `${TIMESTAMP}` | now, Unix seconds |
//! | `${RANDOM}` | a random number (0 – 2^32-1) |
//! | `${NAME}`, `${webhook}` | the webhook's name |
//! | `${delivery.id}`, `${delivery.attempt}` | the delivery |
//! | `${event.type}`, `${event.subject}`, `${event.source}`, `${event.id}`, `${event.time}` | the event |
//! | `${event.data}`, `${event.data.PATH}` | its data, or a value inside it (`event.data.user.name`, `event.data.items.0`) |
//! | `${run.FIELD}` | a field of the run being reported (`run.status`, `run.id`, `run.error.message`); for `sundial.run.*` events, of the event's data |
//! | `${task.name}` | the run's task |
//! | `${params.PATH}` | a task parameter (a run's, and a delivery's that carries a run) |
//!
//! For a run ([`render_run`]), `${NAME}` is the task, `${run.id}` and `${run.attempt}`
//! are the run's, and `${delivery.*}` is empty.
//!
//! Strings are inserted as they are, other JSON values as JSON; a missing value is
//! empty. With `json_escape` (the body is JSON) every value is escaped for a JSON
//! string, so `"text": "${event.data.message}"` stays valid JSON whatever the message.

use crate::{Delivery, Event, Invocation};
use serde_json::Value;

/// What placeholders are filled from.
struct Context<'a> {
    name: &'a str,
    delivery: Option<(&'a str, u32)>,
    event: Option<&'a Event>,
    run: Option<Value>,
    params: Value,
}

impl<'a> Context<'a> {
    fn of_delivery(d: &'a Delivery) -> Context<'a> {
        let run: Option<Value> = d.run.as_deref().and_then(|r| serde_json::from_str(r).ok());
        // A run's params, for a task whose action is this webhook (or a notification).
        let params = run
            .as_ref()
            .and_then(|r| r.get("params"))
            .cloned()
            .unwrap_or(Value::Null);
        Context {
            name: &d.webhook,
            delivery: Some((&d.id, d.attempt)),
            event: d.event.as_ref(),
            run,
            params,
        }
    }

    fn of_run(inv: &'a Invocation) -> Context<'a> {
        Context {
            name: &inv.task,
            delivery: None,
            event: inv.event.as_ref(),
            run: Some(serde_json::json!({ "id": inv.run_id, "task": inv.task, "attempt": inv.attempt })),
            params: serde_json::from_str(&inv.params).unwrap_or(Value::Null),
        }
    }
}

/// Fill the placeholders of `template` from `d`.
pub fn render(template: &str, d: &Delivery, json_escape: bool) -> String {
    render_at(template, d, json_escape, now_secs(), random)
}

/// Fill the placeholders of `template` from a run's invocation (its task, params and
/// the event that started it).
pub fn render_run(template: &str, inv: &Invocation, json_escape: bool) -> String {
    fill(template, &Context::of_run(inv), json_escape, now_secs(), random)
}

/// [`render`] with the clock and the random source given (tests).
pub fn render_at(template: &str, d: &Delivery, json_escape: bool, now: u64, rand: fn() -> u32) -> String {
    fill(template, &Context::of_delivery(d), json_escape, now, rand)
}

fn fill(template: &str, d: &Context<'_>, json_escape: bool, now: u64, rand: fn() -> u32) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let value = lookup(after[..end].trim(), d, now, rand);
        if json_escape {
            let quoted = serde_json::to_string(&value).unwrap_or_default();
            out.push_str(&quoted[1..quoted.len() - 1]);
        } else {
            out.push_str(&value);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn walk<'a>(mut v: &'a Value, path: &str) -> Option<&'a Value> {
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        v = match v {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

fn lookup(name: &str, d: &Context<'_>, now: u64, rand: fn() -> u32) -> String {
    let event = d.event;
    let data: Value = event
        .and_then(|e| serde_json::from_str(&e.data).ok())
        .unwrap_or(Value::Null);
    let run: Value = match &d.run {
        Some(r) => r.clone(),
        None if event.is_some_and(|e| e.kind.starts_with("sundial.run.")) => data.clone(),
        None => Value::Null,
    };
    match name {
        "DATE" => date(now),
        "TIMESTAMP" => now.to_string(),
        "RANDOM" => rand().to_string(),
        "NAME" | "webhook" => d.name.to_string(),
        "delivery.id" => d.delivery.map(|(id, _)| id.to_string()).unwrap_or_default(),
        "delivery.attempt" => d.delivery.map(|(_, n)| n.to_string()).unwrap_or_default(),
        "event.type" => event.map(|e| e.kind.clone()).unwrap_or_default(),
        "event.subject" => event.and_then(|e| e.subject.clone()).unwrap_or_default(),
        "event.source" => event.map(|e| e.source.clone()).unwrap_or_default(),
        "event.id" => event.map(|e| e.id.clone()).unwrap_or_default(),
        "event.time" => event.map(|e| e.time.clone()).unwrap_or_default(),
        "event.data" => text(&data),
        "task.name" => walk(&run, "task")
            .or_else(|| walk(&run, "task_name"))
            .map(text)
            .unwrap_or_default(),
        _ => {
            if let Some(path) = name.strip_prefix("event.data.") {
                walk(&data, path).map(text).unwrap_or_default()
            } else if let Some(path) = name.strip_prefix("run.") {
                walk(&run, path).map(text).unwrap_or_default()
            } else if let Some(path) = name.strip_prefix("params.") {
                walk(&d.params, path).map(text).unwrap_or_default()
            } else {
                String::new()
            }
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` of Unix seconds `secs` (proleptic Gregorian calendar).
pub fn date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the platform's randomness (WASI `random` in a plugin).
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_secs());
    h.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    fn delivery(kind: &str, data: &str, run: Option<&str>) -> Delivery {
        Delivery {
            id: "D1".into(),
            webhook: "alerts".into(),
            attempt: 2,
            timestamp: "2026-11-27T10:00:00Z".into(),
            event: Some(Event {
                id: "e1".into(),
                kind: kind.into(),
                source: "/sync".into(),
                subject: Some("vm-7".into()),
                time: "2026-11-27T10:00:00Z".into(),
                data: data.into(),
            }),
            run: run.map(str::to_string),
            config: "{}".into(),
            template: None,
        }
    }

    #[test]
    fn placeholders_fill_and_escape() {
        let d = delivery(
            "sync.failed",
            r#"{"message": "disk \"full\"\nnow", "errors": 3, "hosts": ["a", "b"]}"#,
            None,
        );
        let t = "${NAME}|${event.type}|${event.subject}|${event.data.errors}|${event.data.hosts.1}|${event.data.missing}|${DATE}|${TIMESTAMP}|${RANDOM}|${delivery.attempt}";
        assert_eq!(
            render_at(t, &d, false, 1_764_237_600, || 42),
            "alerts|sync.failed|vm-7|3|b||2025-11-27 10:00:00 UTC|1764237600|42|2"
        );
        let json = r#"{"text": "${event.data.message}", "n": ${event.data.errors}}"#;
        let out = render_at(json, &d, true, 0, || 0);
        let parsed: Value = serde_json::from_str(&out).expect("still JSON");
        assert_eq!(parsed["text"], "disk \"full\"\nnow");
        assert_eq!(parsed["n"], 3);
        assert_eq!(render_at("a ${unclosed", &d, false, 0, || 0), "a ${unclosed");
        assert_eq!(render_at("${nope}x", &d, false, 0, || 0), "x");
    }

    #[test]
    fn run_fields_from_the_run_or_a_run_event() {
        let d = delivery(
            "sundial.run.failed",
            r#"{"task": "backup", "status": "failed", "error": {"message": "boom"}}"#,
            None,
        );
        assert_eq!(
            render_at(
                "${task.name} ${run.status}: ${run.error.message}",
                &d,
                false,
                0,
                || 0
            ),
            "backup failed: boom"
        );
        let d = delivery("x", "{}", Some(r#"{"task_name": "sync", "status": "succeeded"}"#));
        assert_eq!(
            render_at("${task.name} ${run.status}", &d, false, 0, || 0),
            "sync succeeded"
        );
        assert_eq!(date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(date(951_782_400), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn a_run_fills_task_run_params_and_event() {
        let d = delivery("user.login", r#"{"user": "jthompson"}"#, None);
        let inv = Invocation {
            run_id: "R1".into(),
            task: "power-on".into(),
            attempt: 2,
            cause: crate::Cause::Event,
            params: r#"{"vm": {"name": "gpu-1"}}"#.into(),
            event: d.event.clone(),
        };
        let t = "${NAME} ${task.name} ${run.id} ${run.attempt} ${params.vm.name} ${event.data.user} [${delivery.id}]";
        assert_eq!(
            render_run(t, &inv, false),
            "power-on power-on R1 2 gpu-1 jthompson []"
        );
    }
}

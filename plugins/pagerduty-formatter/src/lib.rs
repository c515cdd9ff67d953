//! `pagerduty` formatter: a PagerDuty Events API v2 event (`trigger` or `resolve`);
//! point the webhook at `https://events.pagerduty.com/v2/enqueue`.
//!
//! Config: `routing_key_secret` (name of a secret holding the integration key; grant it
//! to this plugin) or `routing_key`; `action`: `trigger`, `resolve` or `auto` (default:
//! resolve for a run that succeeded and for event types ending in `.succeeded` or
//! `.resolved`); `severity` (`critical`, `error` default, `warning`, `info`);
//! templates `summary` and `dedup_key`; optional `component`, `group`, `class`.
//!
//! By default the summary, source, time and dedup key come from
//! [`sundial_sdk::message::Message`], which reads every cause (an event, a finished
//! run, a task whose action is the webhook, `webhook test`): a failed run triggers
//! `Task backup failed: Run ... failed after 3 attempts: ...` keyed by the task, and
//! its success resolves the same incident. `custom_details` holds the message's facts
//! and the event's data.

use serde_json::{Value, json};
use sundial_sdk::config::Config;
use sundial_sdk::message::{Message, Tone};
use sundial_sdk::{Delivery, Formatter, HttpBody, secret};

struct PagerDuty;

impl Formatter for PagerDuty {
    fn format(d: Delivery) -> Result<HttpBody, String> {
        let config = Config::of(&d)?;
        let routing_key = match (
            config.string("routing_key_secret")?,
            config.string("routing_key")?,
        ) {
            (Some(name), _) => secret(name).ok_or_else(|| {
                format!("config.routing_key_secret: secret {name:?} is missing or not granted to this plugin")
            })?,
            (None, Some(key)) => key.to_string(),
            (None, None) => return Err("config: give routing_key_secret (or routing_key)".into()),
        };
        let m = Message::of(&d);
        let kind = d.event.as_ref().map(|e| e.kind.clone()).unwrap_or_default();
        let good = m.tone == Tone::Good || kind.ends_with(".succeeded") || kind.ends_with(".resolved");
        let action = match config.string("action")?.unwrap_or("auto") {
            "trigger" => "trigger",
            "resolve" => "resolve",
            "auto" if good => "resolve",
            "auto" => "trigger",
            other => {
                return Err(format!(
                    "config.action: {other:?} is not trigger, resolve or auto"
                ));
            }
        };
        let severity = config.string("severity")?.unwrap_or("error");
        if !["critical", "error", "warning", "info"].contains(&severity) {
            return Err(format!(
                "config.severity: {severity:?} is not critical, error, warning or info"
            ));
        }
        let summary: String = config
            .render("summary", &d)?
            .unwrap_or_else(|| format!("{}: {}", m.title, m.text))
            .chars()
            .take(1024)
            .collect();
        let mut details = serde_json::Map::new();
        for (k, v) in &m.facts {
            details.insert(k.clone(), json!(v));
        }
        if let Some(data) = d
            .event
            .as_ref()
            .and_then(|e| serde_json::from_str::<Value>(&e.data).ok())
            && !data.is_null()
        {
            details.insert("data".into(), data);
        }
        let mut payload = json!({
            "summary": summary,
            "source": m.source,
            "severity": severity,
            "timestamp": m.time,
            "custom_details": details,
        });
        for key in ["component", "group", "class"] {
            if let Some(t) = config.render(key, &d)? {
                payload[key] = json!(t);
            }
        }
        let body = json!({
            "routing_key": routing_key,
            "event_action": action,
            "dedup_key": config.render("dedup_key", &d)?.unwrap_or_else(|| m.key.clone()),
            "payload": payload,
            "client": "Sundial",
        });
        Ok(HttpBody {
            content_type: "application/json".into(),
            body: body.to_string().into_bytes(),
            headers: Vec::new(),
        })
    }
}

sundial_sdk::export_formatter!(PagerDuty);

//! `pagerduty` formatter: a PagerDuty Events API v2 event (`trigger` or `resolve`);
//! point the webhook at `https://events.pagerduty.com/v2/enqueue`.
//!
//! Config: `routing_key_secret` (name of a secret holding the integration key; grant it
//! to this plugin) or `routing_key`; `action`: `trigger`, `resolve` or `auto` (default:
//! resolve for event types ending in `.succeeded` or `.resolved`); `severity`
//! (`critical`, `error` default, `warning`, `info`); templates `summary` (default
//! `${event.type} ${event.subject}`) and `dedup_key` (default `${event.source}/${event.subject}`);
//! optional `component`, `group`, `class`. The event's data goes in `custom_details`.

use serde_json::{Value, json};
use sundial_sdk::{Delivery, Formatter, HttpBody, secret, template};

struct PagerDuty;

fn text<'a>(config: &'a Value, key: &str) -> Result<Option<&'a str>, String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("config.{key}: expected a string")),
    }
}

impl Formatter for PagerDuty {
    fn format(d: Delivery) -> Result<HttpBody, String> {
        let config: Value = serde_json::from_str(&d.config).map_err(|e| format!("config: {e}"))?;
        let routing_key = match (
            text(&config, "routing_key_secret")?,
            text(&config, "routing_key")?,
        ) {
            (Some(name), _) => secret(name).ok_or_else(|| {
                format!("config.routing_key_secret: secret {name:?} is missing or not granted to this plugin")
            })?,
            (None, Some(key)) => key.to_string(),
            (None, None) => return Err("config: give routing_key_secret (or routing_key)".into()),
        };
        let kind = d.event.as_ref().map(|e| e.kind.clone()).unwrap_or_default();
        let action = match text(&config, "action")?.unwrap_or("auto") {
            "trigger" => "trigger",
            "resolve" => "resolve",
            "auto" if kind.ends_with(".succeeded") || kind.ends_with(".resolved") => "resolve",
            "auto" => "trigger",
            other => {
                return Err(format!(
                    "config.action: {other:?} is not trigger, resolve or auto"
                ));
            }
        };
        let severity = text(&config, "severity")?.unwrap_or("error");
        if !["critical", "error", "warning", "info"].contains(&severity) {
            return Err(format!(
                "config.severity: {severity:?} is not critical, error, warning or info"
            ));
        }
        let render = |key: &str, default: &str| -> Result<String, String> {
            Ok(template::render(
                text(&config, key)?.unwrap_or(default),
                &d,
                false,
            ))
        };
        let summary: String = render("summary", "${event.type} ${event.subject}")?
            .chars()
            .take(1024)
            .collect();
        let mut payload = json!({
            "summary": summary,
            "source": template::render("${event.source}", &d, false),
            "severity": severity,
            "timestamp": template::render("${event.time}", &d, false),
            "custom_details": d.event.as_ref().and_then(|e| serde_json::from_str::<Value>(&e.data).ok()),
        });
        for key in ["component", "group", "class"] {
            if let Some(t) = text(&config, key)? {
                payload[key] = json!(template::render(t, &d, false));
            }
        }
        let body = json!({
            "routing_key": routing_key,
            "event_action": action,
            "dedup_key": render("dedup_key", "${event.source}/${event.subject}")?,
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

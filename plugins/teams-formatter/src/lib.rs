//! `teams` formatter: a Microsoft Teams message carrying an Adaptive Card (1.4), as
//! Teams workflows ("Post to a channel when a webhook request is received") expect.
//!
//! Config (templates): `title` (default `${event.type}`), `text` (default: the webhook's
//! template, else `${event.subject}: ${event.data}`). The card lists the event's type,
//! subject, source and time as facts.

use serde_json::{Value, json};
use sundial_sdk::{Delivery, Formatter, HttpBody, template};

struct Teams;

fn setting(config: &Value, key: &str, default: &str) -> Result<String, String> {
    match config.get(key) {
        None => Ok(default.to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("config.{key}: expected a string")),
    }
}

impl Formatter for Teams {
    fn format(d: Delivery) -> Result<HttpBody, String> {
        let config: Value = serde_json::from_str(&d.config).map_err(|e| format!("config: {e}"))?;
        let default_text = d
            .template
            .clone()
            .unwrap_or_else(|| "${event.subject}: ${event.data}".into());
        let title = template::render(&setting(&config, "title", "${event.type}")?, &d, false);
        let text = template::render(&setting(&config, "text", &default_text)?, &d, false);
        let fact = |name: &str, t: &str| json!({"title": name, "value": template::render(t, &d, false)});
        let card = json!({
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [
                {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "text": title, "wrap": true},
                {"type": "TextBlock", "text": text, "wrap": true},
                {"type": "FactSet", "facts": [
                    fact("Type", "${event.type}"), fact("Subject", "${event.subject}"),
                    fact("Source", "${event.source}"), fact("Time", "${event.time}"),
                ]},
            ],
        });
        let body = json!({
            "type": "message",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": card}],
        });
        Ok(HttpBody {
            content_type: "application/json".into(),
            body: body.to_string().into_bytes(),
            headers: Vec::new(),
        })
    }
}

sundial_sdk::export_formatter!(Teams);

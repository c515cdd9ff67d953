//! `teams` formatter: a Microsoft Teams message carrying an Adaptive Card (1.4), as
//! Teams workflows ("Post to a channel when a webhook request is received") expect.
//!
//! Config (templates): `title` and `text`. By default both come from
//! [`sundial_sdk::message::Message`], a useful message for every cause (an event, a
//! finished run, a task whose action is the webhook, `webhook test`); the webhook's
//! own template, when it has one, is the text. The card lists the message's facts
//! (type, subject, source and time of an event; task, status, run and error of a run).

use serde_json::{Value, json};
use sundial_sdk::message::{Message, Tone};
use sundial_sdk::{Delivery, Formatter, HttpBody, template};

struct Teams;

/// A string setting, or None when absent.
fn setting<'a>(config: &'a Value, key: &str) -> Result<Option<&'a str>, String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("config.{key}: expected a string")),
    }
}

impl Formatter for Teams {
    fn format(d: Delivery) -> Result<HttpBody, String> {
        let config: Value = serde_json::from_str(&d.config).map_err(|e| format!("config: {e}"))?;
        let m = Message::of(&d);
        let title = match setting(&config, "title")? {
            Some(t) => template::render(t, &d, false),
            None => m.title.clone(),
        };
        let text = match setting(&config, "text")?.or(d.template.as_deref()) {
            Some(t) => template::render(t, &d, false),
            None => m.text.clone(),
        };
        let color = match m.tone {
            Tone::Good => "Good",
            Tone::Bad => "Attention",
            Tone::Info => "Default",
        };
        let facts: Vec<Value> = m
            .facts
            .iter()
            .map(|(k, v)| json!({"title": k, "value": v}))
            .collect();
        let mut body = vec![
            json!({"type": "TextBlock", "size": "Medium", "weight": "Bolder", "color": color, "text": title, "wrap": true}),
            json!({"type": "TextBlock", "text": text, "wrap": true}),
        ];
        if !facts.is_empty() {
            body.push(json!({"type": "FactSet", "facts": facts}));
        }
        let card = json!({
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": body,
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

//! `slack` formatter: a Slack Block Kit message (incoming webhooks and `chat.postMessage`).
//!
//! Config (templates, see `sundial_sdk::template`): `title` (default `${event.type}`),
//! `text` (default: the webhook's template, else `*${event.subject}*: ${event.data}`).
//! Body: `{"text": fallback, "blocks": [header, section (mrkdwn), context]}`.

use serde_json::{Value, json};
use sundial_sdk::{Delivery, Formatter, HttpBody, template};

struct Slack;

fn setting(config: &Value, key: &str, default: &str) -> Result<String, String> {
    match config.get(key) {
        None => Ok(default.to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("config.{key}: expected a string")),
    }
}

impl Formatter for Slack {
    fn format(d: Delivery) -> Result<HttpBody, String> {
        let config: Value = serde_json::from_str(&d.config).map_err(|e| format!("config: {e}"))?;
        let default_text = d
            .template
            .clone()
            .unwrap_or_else(|| "*${event.subject}*: ${event.data}".into());
        let title = template::render(&setting(&config, "title", "${event.type}")?, &d, false);
        let text = template::render(&setting(&config, "text", &default_text)?, &d, false);
        let context = template::render(
            "${event.source} · ${event.time} · delivery ${delivery.id}",
            &d,
            false,
        );
        let body = json!({
            "text": format!("{title}: {text}"),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": true}},
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
            ],
        });
        Ok(HttpBody {
            content_type: "application/json".into(),
            body: body.to_string().into_bytes(),
            headers: Vec::new(),
        })
    }
}

sundial_sdk::export_formatter!(Slack);

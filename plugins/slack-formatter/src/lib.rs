//! `slack` formatter: a Slack Block Kit message (incoming webhooks and `chat.postMessage`).
//!
//! Config (templates, see `sundial_sdk::template`): `title` and `text`. By default the
//! title and text come from [`sundial_sdk::message::Message`], which writes a useful
//! message for every cause (an event, a finished run, a task whose action is the
//! webhook, `webhook test`); the webhook's own template, when it has one, is the text.
//! Body: `{"text": fallback, "blocks": [header, section (mrkdwn), fields, context]}`.

use serde_json::{Value, json};
use sundial_sdk::config::Config;
use sundial_sdk::message::Message;
use sundial_sdk::{Delivery, Formatter, HttpBody};

struct Slack;

/// Slack's mrkdwn treats `&`, `<` and `>` as markup: escape them in our own text.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

impl Formatter for Slack {
    fn format(d: Delivery) -> Result<HttpBody, String> {
        let config = Config::of(&d)?;
        let m = Message::of(&d);
        let title = config.render("title", &d)?.unwrap_or_else(|| m.title.clone());
        let text = config.render_text(&d)?.unwrap_or_else(|| escape(&m.text));
        let mark = m.tone.pick(":white_check_mark: ", ":x: ", "");
        // Header text is plain, at most 150 characters.
        let header: String = format!("{mark}{title}").chars().take(150).collect();
        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}}),
            json!({"type": "section", "text": {"type": "mrkdwn", "text": if text.is_empty() { " ".to_string() } else { text.clone() }}}),
        ];
        // A section holds at most 10 fields.
        let fields: Vec<Value> = m
            .facts
            .iter()
            .take(10)
            .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{}", escape(v))}))
            .collect();
        if !fields.is_empty() {
            blocks.push(json!({"type": "section", "fields": fields}));
        }
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn",
            "text": escape(&format!("{} · {} · delivery {}", m.source, m.time, d.id))}]}));
        let body = json!({ "text": format!("{title}: {text}"), "blocks": blocks });
        Ok(HttpBody {
            content_type: "application/json".into(),
            body: body.to_string().into_bytes(),
            headers: Vec::new(),
        })
    }
}

sundial_sdk::export_formatter!(Slack);

//! `teams` formatter: a Microsoft Teams message carrying an Adaptive Card (1.4), as
//! Teams workflows ("Post to a channel when a webhook request is received") expect.
//!
//! Config (templates): `title` and `text`. By default both come from
//! [`sundial_sdk::message::Message`], a useful message for every cause (an event, a
//! finished run, a task whose action is the webhook, `webhook test`); the webhook's
//! own template, when it has one, is the text. The card lists the message's facts
//! (type, subject, source and time of an event; task, status, run and error of a run).

use serde_json::{Value, json};
use sundial_sdk::config::Config;
use sundial_sdk::message::Message;
use sundial_sdk::{Delivery, Formatter, HttpBody};

struct Teams;

impl Formatter for Teams {
    fn format(d: Delivery) -> Result<HttpBody, String> {
        let config = Config::of(&d)?;
        let m = Message::of(&d);
        let title = config.render("title", &d)?.unwrap_or_else(|| m.title.clone());
        let text = config.render_text(&d)?.unwrap_or_else(|| m.text.clone());
        let color = m.tone.pick("Good", "Attention", "Default");
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

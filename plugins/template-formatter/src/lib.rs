//! `template` formatter: the webhook's message template with its `${...}` placeholders
//! filled (see `sundial_sdk::template`), as in VergeOS webhooks.
//!
//! Config: `{"content_type": "..."}` (default `application/json` when the template
//! starts with `{`, else `text/plain; charset=utf-8`; set it for a JSON array). With a JSON content type
//! every value is escaped for a JSON string, so the body stays valid JSON. Without a
//! template the body is the delivery in words, `TITLE: TEXT` from
//! [`sundial_sdk::message::Message`] (useful for an event, a finished run, a task whose
//! action is the webhook and `webhook test` alike).

use serde_json::Value;
use sundial_sdk::config::Config;
use sundial_sdk::message::Message;
use sundial_sdk::{Delivery, Formatter, HttpBody, template};

struct TemplateFormatter;

impl Formatter for TemplateFormatter {
    fn format(d: Delivery) -> Result<HttpBody, String> {
        let config = Config::of(&d)?;
        let Some(text) = d.template.clone() else {
            let m = Message::of(&d);
            return Ok(HttpBody {
                content_type: "text/plain; charset=utf-8".into(),
                body: format!("{}: {}", m.title, m.text).into_bytes(),
                headers: Vec::new(),
            });
        };
        let content_type = match config.get("content_type") {
            Some(Value::String(ct)) => ct.clone(),
            Some(_) => return Err("config.content_type: expected a string".into()),
            None if text.trim_start().starts_with('{') => "application/json".into(),
            None => "text/plain; charset=utf-8".into(),
        };
        let json = content_type.contains("json");
        let body = template::render(&text, &d, json);
        if json {
            serde_json::from_str::<Value>(&body)
                .map_err(|e| format!("the filled template is not JSON ({e}); check its quotes"))?;
        }
        Ok(HttpBody {
            content_type,
            body: body.into_bytes(),
            headers: Vec::new(),
        })
    }
}

sundial_sdk::export_formatter!(TemplateFormatter);

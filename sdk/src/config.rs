//! A formatter's settings: the webhook's `config` object, read key by key with clear
//! errors (`config.title: expected a string`).

use serde_json::Value;

use crate::{Delivery, template};

/// The webhook's `config` object of one delivery.
#[derive(Debug, Clone)]
pub struct Config(Value);

impl Config {
    /// Parse `delivery.config`; an error names the JSON problem (`config: ...`).
    pub fn of(delivery: &Delivery) -> Result<Config, String> {
        serde_json::from_str(&delivery.config)
            .map(Config)
            .map_err(|e| format!("config: {e}"))
    }

    /// The raw value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// A string setting: None when absent or null, an error when it is not a string.
    pub fn string(&self, key: &str) -> Result<Option<&str>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("config.{key}: expected a string")),
        }
    }

    /// The text a chat message shows: the `text` template, else the webhook's own
    /// template, filled over the delivery; None when neither is set.
    pub fn render_text(&self, delivery: &Delivery) -> Result<Option<String>, String> {
        let text = self.string("text")?.or(delivery.template.as_deref());
        Ok(text.map(|t| template::render(t, delivery, false)))
    }

    /// A template setting filled over the delivery (see [`template::render`]), or None
    /// when the key is absent.
    pub fn render(&self, key: &str, delivery: &Delivery) -> Result<Option<String>, String> {
        Ok(self.string(key)?.map(|t| template::render(t, delivery, false)))
    }
}

//! The commands every named noun of the API shares (`list`, `get`, `create`, `update`,
//! `delete`, `enable`, `disable`), written once: each noun's file describes itself with
//! a [`Noun`] and keeps only what is its own (create flags, extra verbs, columns).

use super::client::{Failure, Remote, columns, fields, text};
use serde_json::{Value, json};

/// How a noun is switched on and off.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Toggle {
    /// `POST {item}/enable` and `POST {item}/disable`.
    Post,
    /// `PATCH {item}` with `{"enabled": true|false}`.
    Patch,
}

/// A noun of the API managed by name or id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Noun {
    /// Its name as printed ("webhook").
    pub name: &'static str,
    /// Its collection ("/v1/webhooks").
    pub path: &'static str,
    /// The key of the list in answers ("webhooks").
    pub key: &'static str,
    /// The columns `list` prints: (header, field).
    pub columns: &'static [(&'static str, &'static str)],
    /// How `enable` and `disable` are sent.
    pub toggle: Toggle,
}

impl Noun {
    /// The path of one item, its name or id percent-encoded.
    pub fn item(&self, name: &str) -> String {
        format!("{}/{}", self.path, q(name))
    }

    /// Every item, all pages, printed with [`Noun::columns`].
    pub async fn list(&self, remote: &Remote) -> Result<(), Failure> {
        let v = self.all(remote).await?;
        remote.print(&v, |v| columns(v, self.key, self.columns));
        Ok(())
    }

    /// Every item, all pages, as `{key: [...]}` (for nouns that print their own list).
    pub async fn all(&self, remote: &Remote) -> Result<Value, Failure> {
        remote.call_all(self.path, self.key).await
    }

    /// One item, every field.
    pub async fn get(&self, remote: &Remote, name: &str) -> Result<(), Failure> {
        let v = remote.call("GET", &self.item(name), None).await?;
        remote.print(&v, fields);
        Ok(())
    }

    /// Create one from `body`; prints its name and id.
    pub async fn create(&self, remote: &Remote, body: &Value) -> Result<Value, Failure> {
        let v = remote.call("POST", self.path, Some(body)).await?;
        remote.print(&v, |v| {
            format!(
                "created {} {} ({})\n",
                self.name,
                text(&v["name"]),
                text(&v["id"])
            )
        });
        Ok(v)
    }

    /// Change the top-level fields given as JSON text (`fields`, the command's
    /// argument).
    pub async fn update(&self, remote: &Remote, name: &str, fields: &str) -> Result<(), Failure> {
        let body = json_arg("fields", fields)?;
        let v = remote.call("PATCH", &self.item(name), Some(&body)).await?;
        remote.print(&v, |v| format!("updated {} {}\n", self.name, text(&v["name"])));
        Ok(())
    }

    /// Delete one.
    pub async fn delete(&self, remote: &Remote, name: &str) -> Result<(), Failure> {
        remote.call("DELETE", &self.item(name), None).await?;
        self.done(remote, "deleted", name);
        Ok(())
    }

    /// Enable (`true`) or disable one.
    pub async fn enable(&self, remote: &Remote, name: &str, on: bool) -> Result<(), Failure> {
        let item = self.item(name);
        match self.toggle {
            Toggle::Post => {
                let verb = if on { "enable" } else { "disable" };
                remote.call("POST", &format!("{item}/{verb}"), None).await?;
            }
            Toggle::Patch => {
                remote
                    .call("PATCH", &item, Some(&json!({ "enabled": on })))
                    .await?;
            }
        }
        self.done(remote, if on { "enabled" } else { "disabled" }, name);
        Ok(())
    }

    /// Say that `what` (a past participle) was done to item `name`.
    pub fn done(&self, remote: &Remote, what: &str, name: &str) {
        remote.done(
            json!({ what: self.name, "name": name }),
            &format!("{what} {} {name}", self.name),
        );
    }
}

/// Percent-encode a path segment or query value.
pub(crate) fn q(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Parse a flag's JSON value, naming the flag on error.
pub(crate) fn json_arg(flag: &str, text: &str) -> Result<Value, Failure> {
    sundial_core::json::parse_str(text).map_err(|e| (super::EXIT_USAGE, format!("{flag} is not JSON: {e}")))
}

/// `&k=v` for each given query parameter, URL-encoded.
pub(crate) fn query(pairs: &[(&str, &Option<String>)]) -> String {
    pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("&{k}={}", q(v))))
        .collect()
}

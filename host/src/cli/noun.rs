//! The commands every named noun of the API shares (`list`, `get`, `create`, `update`,
//! `delete`, `enable`, `disable`), written once: each noun's file describes itself with
//! a [`Noun`] and keeps only what is its own (create flags, extra verbs, columns).

use super::client::{Failure, Remote, columns, text};
use clap::Subcommand;
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
        remote.show(&self.item(name)).await
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

// `--calendar` and `--excluded`, flattened into `schedule create` and `trigger create`.
// (Plain comments on the flattened types: clap would take a doc comment as the help of
// the command it is flattened into.)
#[derive(Debug, clap::Args)]
pub(crate) struct Exclusions {
    /// A calendar whose excluded days and windows it honours (repeatable).
    #[arg(long = "calendar")]
    calendars: Vec<String>,
    /// What falls in an excluded window or maintenance (a schedule's slot, a trigger's
    /// event): skip it, or defer it to when the window ends [default: skip].
    #[arg(long)]
    excluded: Option<String>,
}

impl Exclusions {
    /// Add `calendars` and `excluded` to a create body; an `--excluded` other than
    /// skip or defer is a usage error.
    pub fn add_to(self, body: &mut Value) -> Result<(), Failure> {
        if !self.calendars.is_empty() {
            body["calendars"] = json!(self.calendars);
        }
        match self.excluded.as_deref() {
            None => {}
            Some(p @ ("skip" | "defer")) => body["excluded"] = json!(p),
            Some(other) => return Err((super::EXIT_USAGE, format!("--excluded {other:?}: skip or defer"))),
        }
        Ok(())
    }
}

// The verbs that read and change one item, flattened into the command enum of every
// noun changed by JSON merge (task, schedule, trigger, webhook).
#[derive(Debug, Subcommand)]
pub(crate) enum Edit {
    /// Show one, every field (by name or id).
    Get { name: String },
    /// Change fields of one (JSON merge of top-level fields, then full validation).
    Update {
        name: String,
        /// The fields to change, as JSON.
        #[arg(value_name = "JSON")]
        fields: String,
    },
}

impl Edit {
    /// Carry out the verb on `noun`.
    pub async fn run(self, noun: &Noun, remote: &Remote) -> Result<(), Failure> {
        match self {
            Edit::Get { name } => noun.get(remote, &name).await,
            Edit::Update { name, fields } => noun.update(remote, &name, &fields).await,
        }
    }
}

// The verbs that switch one item on or off and delete it, flattened into the command
// enum of task, trigger and webhook.
#[derive(Debug, Subcommand)]
pub(crate) enum Switch {
    /// Enable one: a task runs again, a trigger matches again, a webhook sends again
    /// (this also clears a webhook's disable after a 410).
    Enable { name: String },
    /// Disable one: a task refuses new runs, a trigger matches nothing, a webhook
    /// skips new deliveries.
    Disable { name: String },
    /// Delete one (a task's runs stay until retention; a trigger's pending timers stay,
    /// cancel them with `timer cancel`).
    Delete { name: String },
}

impl Switch {
    /// Carry out the verb on `noun`.
    pub async fn run(self, noun: &Noun, remote: &Remote) -> Result<(), Failure> {
        match self {
            Switch::Enable { name } => noun.enable(remote, &name, true).await,
            Switch::Disable { name } => noun.enable(remote, &name, false).await,
            Switch::Delete { name } => noun.delete(remote, &name).await,
        }
    }
}

/// Percent-encode a path segment or query value.
pub(crate) fn q(v: &str) -> String {
    sundial_core::address::percent_encode(v)
}

/// Parse a flag's JSON value, naming the flag on error.
pub(crate) fn json_arg(flag: &str, text: &str) -> Result<Value, Failure> {
    sundial_core::json::parse_str(text).map_err(|e| (super::EXIT_USAGE, format!("{flag} is not JSON: {e}")))
}

/// Set `body[key]` to `value` when it is given (an optional flag of a create command).
pub(crate) fn set<T: serde::Serialize>(body: &mut Value, key: &str, value: Option<T>) {
    if let Some(v) = value {
        body[key] = json!(v);
    }
}

/// `&k=v` for each given query parameter, URL-encoded.
pub(crate) fn query(pairs: &[(&str, &Option<String>)]) -> String {
    pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("&{k}={}", q(v))))
        .collect()
}

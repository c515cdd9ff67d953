//! `sundial webhook ...`, `sundial delivery ...` and `sundial secret ...`: define
//! webhooks, read and retry their deliveries, and manage the secrets they use.

use super::EXIT_USAGE;
use super::client::{Failure, Remote, columns, text};
use super::events::{json_arg, query};
use clap::Subcommand;
use serde_json::{Value, json};
use std::io::Read;

/// `sundial webhook ...`
#[derive(Debug, Subcommand)]
pub(crate) enum WebhookCommand {
    /// Define a webhook (see docs/webhooks.md for every field; `update` sets the rest).
    Create {
        name: String,
        /// Where deliveries go (http or https).
        #[arg(long)]
        url: String,
        /// POST (default), PUT, PATCH or GET.
        #[arg(long)]
        method: Option<String>,
        /// A header sent with every delivery, as 'Name: value' (repeat for several).
        #[arg(long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// The formatter plugin [default: json].
        #[arg(long)]
        formatter: Option<String>,
        /// The formatter's config, as a JSON object.
        #[arg(long)]
        config: Option<String>,
        /// The message template (for the template formatter and friends).
        #[arg(long)]
        template: Option<String>,
        /// A secret to sign deliveries with (repeat for rotation).
        #[arg(long = "sign", value_name = "SECRET")]
        signing_secrets: Vec<String>,
        /// Authentication, as JSON: {"type": "bearer", "token_secret": "NAME"}, basic or api_key.
        #[arg(long)]
        auth: Option<String>,
        /// Per-attempt timeout in milliseconds (1000-120000) [default: 5000].
        #[arg(long)]
        timeout_ms: Option<u64>,
    },
    /// List webhooks.
    List,
    /// Show one webhook.
    Get { name: String },
    /// Change fields of a webhook (JSON merge of top-level fields).
    Update {
        name: String,
        /// The fields to change, as JSON.
        #[arg(value_name = "JSON")]
        fields: String,
    },
    /// Enable a webhook (clears a disable after a 410).
    Enable { name: String },
    /// Disable a webhook: new deliveries to it are skipped.
    Disable { name: String },
    /// Delete a webhook.
    Delete { name: String },
    /// Queue a delivery of a sample event; prints the delivery id.
    Test { name: String },
}

/// `sundial delivery ...`
#[derive(Debug, Subcommand)]
pub(crate) enum DeliveryCommand {
    /// Deliveries, newest first.
    List {
        /// Only deliveries to this webhook.
        #[arg(long)]
        webhook: Option<String>,
        /// Only deliveries in this state: queued, delivered or dead.
        #[arg(long)]
        status: Option<String>,
        /// Most deliveries to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One delivery with every attempt.
    Get { id: String },
    /// Queue a dead delivery again, or make a queued one due now.
    Retry { id: String },
}

/// `sundial secret ...`
#[derive(Debug, Subcommand)]
pub(crate) enum SecretCommand {
    /// Set a secret (admin). The value comes from --value or, safer, from stdin (one
    /// trailing newline dropped), so it stays out of the shell history.
    Set {
        name: String,
        /// The value; omit to read it from stdin.
        #[arg(long)]
        value: Option<String>,
    },
    /// Secret names and sizes (values are never shown).
    List,
    /// Delete a secret (admin).
    Delete { name: String },
}

/// Parse `Name: value`.
fn header(text: &str) -> Result<Value, Failure> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| (EXIT_USAGE, format!("--header {text:?}: expected 'Name: value'")))?;
    Ok(json!({ "name": name.trim(), "value": value.trim() }))
}

pub(crate) async fn webhook(remote: &Remote, cmd: WebhookCommand) -> Result<(), Failure> {
    match cmd {
        WebhookCommand::Create {
            name,
            url,
            method,
            headers,
            formatter,
            config,
            template,
            signing_secrets,
            auth,
            timeout_ms,
        } => {
            let mut body = json!({ "name": name, "url": url, "signing_secrets": signing_secrets });
            body["headers"] = Value::Array(headers.iter().map(|h| header(h)).collect::<Result<_, _>>()?);
            if let Some(m) = method {
                body["method"] = json!(m.to_ascii_uppercase());
            }
            if let Some(f) = formatter {
                body["formatter"] = json!(f);
            }
            if let Some(c) = config {
                body["formatter_config"] = json_arg("config", &c)?;
            }
            if let Some(t) = template {
                body["template"] = json!(t);
            }
            if let Some(a) = auth {
                body["auth"] = json_arg("auth", &a)?;
            }
            if let Some(t) = timeout_ms {
                body["timeout_ms"] = json!(t);
            }
            let v = remote.call("POST", "/v1/webhooks", Some(&body)).await?;
            remote.print(&v, |v| {
                format!("created webhook {} ({})\n", text(&v["name"]), text(&v["id"]))
            });
        }
        WebhookCommand::List => {
            let v = remote.call_all("/v1/webhooks", "webhooks").await?;
            remote.print(&v, |v| {
                columns(
                    v,
                    "webhooks",
                    &[
                        ("NAME", "name"),
                        ("URL", "url"),
                        ("FORMATTER", "formatter"),
                        ("ENABLED", "enabled"),
                        ("ID", "id"),
                    ],
                )
            });
        }
        WebhookCommand::Get { name } => {
            let v = remote.call("GET", &format!("/v1/webhooks/{name}"), None).await?;
            remote.print(&v, super::client::fields);
        }
        WebhookCommand::Update { name, fields } => {
            let body = json_arg("fields", &fields)?;
            let v = remote
                .call("PATCH", &format!("/v1/webhooks/{name}"), Some(&body))
                .await?;
            remote.print(&v, |w| format!("updated webhook {}\n", text(&w["name"])));
        }
        WebhookCommand::Enable { name } => {
            let body = json!({ "enabled": true });
            remote
                .call("PATCH", &format!("/v1/webhooks/{name}"), Some(&body))
                .await?;
            remote.done(
                json!({"enabled": "webhook", "name": name}),
                &format!("enabled webhook {name}"),
            );
        }
        WebhookCommand::Disable { name } => {
            let body = json!({ "enabled": false });
            remote
                .call("PATCH", &format!("/v1/webhooks/{name}"), Some(&body))
                .await?;
            remote.done(
                json!({"disabled": "webhook", "name": name}),
                &format!("disabled webhook {name}"),
            );
        }
        WebhookCommand::Delete { name } => {
            remote
                .call("DELETE", &format!("/v1/webhooks/{name}"), None)
                .await?;
            remote.done(
                json!({"deleted": "webhook", "name": name}),
                &format!("deleted webhook {name}"),
            );
        }
        WebhookCommand::Test { name } => {
            let v = remote
                .call("POST", &format!("/v1/webhooks/{name}/test"), None)
                .await?;
            remote.print(&v, |v| {
                format!(
                    "queued test delivery {} (sundial delivery get {})\n",
                    text(&v["id"]),
                    text(&v["id"])
                )
            });
        }
    }
    Ok(())
}

pub(crate) async fn delivery(remote: &Remote, cmd: DeliveryCommand) -> Result<(), Failure> {
    match cmd {
        DeliveryCommand::List {
            webhook,
            status,
            limit,
        } => {
            let path = format!(
                "/v1/deliveries?limit={limit}{}",
                query(&[("webhook", &webhook), ("status", &status)])
            );
            let mut v = remote.call("GET", &path, None).await?;
            if let Some(items) = v["deliveries"].as_array_mut() {
                for d in items {
                    d["tries"] = json!(d["attempts"].as_array().map_or(0, |a| a.len()));
                    let last = d["attempts"].as_array().and_then(|a| a.last()).cloned();
                    d["last"] = match last {
                        Some(a) if !a["status_code"].is_null() => a["status_code"].clone(),
                        Some(a) => a["error"].clone(),
                        None => json!(""),
                    };
                }
            }
            remote.print(&v, |v| {
                columns(
                    v,
                    "deliveries",
                    &[
                        ("CREATED", "created_at"),
                        ("WEBHOOK", "webhook_name"),
                        ("STATUS", "status"),
                        ("ATTEMPTS", "tries"),
                        ("LAST", "last"),
                        ("ID", "id"),
                    ],
                )
            });
        }
        DeliveryCommand::Get { id } => {
            let v = remote.call("GET", &format!("/v1/deliveries/{id}"), None).await?;
            remote.print(&v, super::client::fields);
        }
        DeliveryCommand::Retry { id } => {
            let v = remote
                .call("POST", &format!("/v1/deliveries/{id}/retry"), None)
                .await?;
            remote.print(&v, |v| {
                format!("delivery {} is {}\n", text(&v["id"]), text(&v["status"]))
            });
        }
    }
    Ok(())
}

pub(crate) async fn secret(remote: &Remote, cmd: SecretCommand) -> Result<(), Failure> {
    match cmd {
        SecretCommand::Set { name, value } => {
            let value = match value {
                Some(v) => v,
                None => {
                    let mut buf = String::new();
                    std::io::stdin()
                        .read_to_string(&mut buf)
                        .map_err(|e| (EXIT_USAGE, format!("reading the value from stdin: {e}")))?;
                    let trimmed = buf.strip_suffix('\n').unwrap_or(&buf);
                    trimmed.strip_suffix('\r').unwrap_or(trimmed).to_string()
                }
            };
            let v = remote
                .call(
                    "PUT",
                    &format!("/v1/secrets/{name}"),
                    Some(&json!({ "value": value })),
                )
                .await?;
            remote.print(&v, |v| {
                format!("set secret {} ({} bytes)\n", text(&v["name"]), text(&v["size"]))
            });
        }
        SecretCommand::List => {
            let v = remote.call("GET", "/v1/secrets", None).await?;
            remote.print(&v, |v| {
                columns(
                    v,
                    "secrets",
                    &[("NAME", "name"), ("BYTES", "size"), ("UPDATED", "updated_at")],
                )
            });
        }
        SecretCommand::Delete { name } => {
            remote
                .call("DELETE", &format!("/v1/secrets/{name}"), None)
                .await?;
            remote.done(
                json!({"deleted": "secret", "name": name}),
                &format!("deleted secret {name}"),
            );
        }
    }
    Ok(())
}

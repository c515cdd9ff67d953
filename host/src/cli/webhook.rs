//! `sundial webhook ...`: define, test, enable and disable webhooks.

use super::EXIT_USAGE;
use super::client::{Failure, Remote, text};
use super::noun::{Edit, Noun, Switch, Toggle, json_arg, set};
use clap::Subcommand;
use serde_json::{Value, json};

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
    #[command(flatten)]
    Edit(Edit),
    #[command(flatten)]
    Switch(Switch),
    /// Queue a delivery of a sample event; prints the delivery id.
    Test { name: String },
}

/// Webhooks, by name or id.
pub(crate) const WEBHOOKS: Noun = Noun {
    name: "webhook",
    path: "/v1/webhooks",
    key: "webhooks",
    columns: &[
        ("NAME", "name"),
        ("URL", "url"),
        ("FORMATTER", "formatter"),
        ("ENABLED", "enabled"),
        ("ID", "id"),
    ],
    toggle: Toggle::Patch,
};

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
            set(&mut body, "formatter", formatter);
            if let Some(c) = config {
                body["formatter_config"] = json_arg("--config", &c)?;
            }
            set(&mut body, "template", template);
            if let Some(a) = auth {
                body["auth"] = json_arg("--auth", &a)?;
            }
            set(&mut body, "timeout_ms", timeout_ms);
            WEBHOOKS.create(remote, &body).await?;
        }
        WebhookCommand::List => WEBHOOKS.list(remote).await?,
        WebhookCommand::Edit(verb) => verb.run(&WEBHOOKS, remote).await?,
        WebhookCommand::Switch(verb) => verb.run(&WEBHOOKS, remote).await?,
        WebhookCommand::Test { name } => {
            let v = remote
                .call("POST", &format!("{}/test", WEBHOOKS.item(&name)), None)
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

//! `sundial secret ...`: write-only values for webhooks and plugins.

use super::EXIT_USAGE;
use super::client::{Failure, Remote, columns, text};
use super::noun::{Noun, Toggle};
use clap::Subcommand;
use serde_json::json;
use std::io::Read;

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

/// Secrets, by name (never read back: no `get`).
pub(crate) const SECRETS: Noun = Noun {
    name: "secret",
    path: "/v1/secrets",
    key: "secrets",
    columns: &[("NAME", "name"), ("BYTES", "size"), ("UPDATED", "updated_at")],
    toggle: Toggle::Patch,
};

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
                .call("PUT", &SECRETS.item(&name), Some(&json!({ "value": value })))
                .await?;
            remote.print(&v, |v| {
                format!("set secret {} ({} bytes)\n", text(&v["name"]), text(&v["size"]))
            });
        }
        SecretCommand::List => {
            // One answer, not pages: secrets are few and listed whole.
            let v = remote.call("GET", SECRETS.path, None).await?;
            remote.print(&v, |v| columns(v, SECRETS.key, SECRETS.columns));
        }
        SecretCommand::Delete { name } => SECRETS.delete(remote, &name).await?,
    }
    Ok(())
}

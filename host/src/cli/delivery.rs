//! `sundial delivery ...`: webhook deliveries (the task log of webhooks): list, show,
//! retry.

use super::client::{Failure, Remote, columns, text};
use super::noun::query;
use clap::Subcommand;
use serde_json::json;

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
        DeliveryCommand::Get { id } => remote.show(&format!("/v1/deliveries/{id}")).await?,
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

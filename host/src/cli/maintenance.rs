//! `sundial maintenance ...`: one-off windows in which schedules do not fire.

use super::EXIT_USAGE;
use super::client::{Failure, Remote, columns, text};
use super::noun::{q, set};
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Debug, Subcommand)]
pub(crate) enum MaintenanceCommand {
    /// Start a maintenance window: schedules (all, or those named) do not fire in it.
    Start {
        /// How long: 30m, 2h, 1d, "2 hours" (1 minute to 30 days).
        #[arg(long = "for")]
        duration: String,
        /// Only these schedules, comma-separated [default: all].
        #[arg(long, value_delimiter = ',')]
        schedules: Vec<String>,
        /// Why (shown in the skipped runs' logs).
        #[arg(long)]
        reason: Option<String>,
        /// When it starts, RFC 3339 [default: now].
        #[arg(long)]
        from: Option<String>,
    },
    /// List maintenance windows.
    List,
    /// End a maintenance window now.
    End { id: String },
}

pub(crate) async fn maintenance(remote: &Remote, cmd: MaintenanceCommand) -> Result<(), Failure> {
    let row = |m: &Value| {
        let scope = match m["schedules"].as_array() {
            Some(s) if !s.is_empty() => s.iter().map(text).collect::<Vec<_>>().join(","),
            _ => "all schedules".into(),
        };
        format!(
            "maintenance {} from {} until {} for {}{}\n",
            text(&m["id"]),
            text(&m["from"]),
            text(&m["until"]),
            scope,
            if m["active"] == true { " (active)" } else { "" }
        )
    };
    match cmd {
        MaintenanceCommand::Start {
            duration,
            schedules,
            reason,
            from,
        } => {
            sundial_core::limits::parse_duration(&duration)
                .map_err(|e| (EXIT_USAGE, format!("--for {e}")))?;
            let mut body = json!({ "for": duration, "schedules": schedules });
            set(&mut body, "reason", reason);
            set(&mut body, "from", from);
            let v = remote.call("POST", "/v1/maintenance", Some(&body)).await?;
            remote.print(&v, |m| format!("started {}", row(m)));
        }
        MaintenanceCommand::List => {
            let v = remote.call("GET", "/v1/maintenance", None).await?;
            remote.print(&v, |v| {
                let mut v = v.clone();
                for m in v["windows"].as_array_mut().into_iter().flatten() {
                    let scope = match m["schedules"].as_array() {
                        Some(s) if !s.is_empty() => s.iter().map(text).collect::<Vec<_>>().join(","),
                        _ => "all".into(),
                    };
                    m["scope"] = json!(scope);
                }
                columns(
                    &v,
                    "windows",
                    &[
                        ("ID", "id"),
                        ("FROM", "from"),
                        ("UNTIL", "until"),
                        ("SCHEDULES", "scope"),
                        ("ACTIVE", "active"),
                        ("BY", "by"),
                        ("REASON", "reason"),
                    ],
                )
            });
        }
        MaintenanceCommand::End { id } => {
            let v = remote
                .call("POST", &format!("/v1/maintenance/{}/end", q(&id)), None)
                .await?;
            remote.print(&v, |m| format!("ended {}", row(m)));
        }
    }
    Ok(())
}

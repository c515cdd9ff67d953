//! `sundial timer ...`: delayed trigger targets waiting for their time.

use super::client::{Failure, Remote, columns};
use super::noun::query;
use clap::Subcommand;
use serde_json::json;

/// `sundial timer ...`
#[derive(Debug, Subcommand)]
pub(crate) enum TimerCommand {
    /// Pending delayed targets.
    List {
        /// Only timers of this trigger.
        #[arg(long)]
        trigger: Option<String>,
        /// Only timers of this task.
        #[arg(long)]
        task: Option<String>,
    },
    /// Cancel a pending timer.
    Cancel { id: String },
}

pub(crate) async fn timer(remote: &Remote, cmd: TimerCommand) -> Result<(), Failure> {
    match cmd {
        TimerCommand::List { trigger, task } => {
            let path = format!(
                "/v1/timers?limit=1000{}",
                query(&[("trigger", &trigger), ("task", &task)])
            );
            let v = remote.call("GET", &path, None).await?;
            remote.print(&v, |v| {
                // A timer starts a task's run or sends to a webhook.
                let mut v = v.clone();
                for t in v["timers"].as_array_mut().into_iter().flatten() {
                    t["target"] = match t["webhook"]["name"].as_str() {
                        Some(hook) => json!(format!("webhook {hook}")),
                        None => t["task_name"].clone(),
                    };
                }
                columns(
                    &v,
                    "timers",
                    &[
                        ("DUE", "due"),
                        ("TARGET", "target"),
                        ("TRIGGER", "trigger_name"),
                        ("EVENT", "event"),
                        ("ID", "id"),
                    ],
                )
            });
        }
        TimerCommand::Cancel { id } => {
            remote.call("DELETE", &format!("/v1/timers/{id}"), None).await?;
            remote.done(
                json!({"cancelled": "timer", "name": id}),
                &format!("cancelled timer {id}"),
            );
        }
    }
    Ok(())
}

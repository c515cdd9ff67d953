//! `sundial task ...`: tasks on the daemon.

use super::EXIT_USAGE;
use super::client::{Failure, Remote, text};
use super::noun::{Edit, Noun, Switch, Toggle, json_arg, q, set};
use clap::Subcommand;
use serde_json::json;

#[derive(Debug, Subcommand)]
pub(crate) enum TaskCommand {
    /// List tasks.
    List,
    /// Create a task.
    Create {
        /// Task name.
        name: String,
        /// Action plugin to run.
        #[arg(long, required_unless_present = "webhook", conflicts_with = "webhook")]
        plugin: Option<String>,
        /// Instead of a plugin: send each run to this webhook.
        #[arg(long)]
        webhook: Option<String>,
        /// Params as JSON.
        #[arg(long, value_name = "JSON")]
        params: Option<String>,
        /// More fields of the task as JSON (retry, overlap, retention, timeout_ms, ...).
        #[arg(long, value_name = "JSON")]
        spec: Option<String>,
    },
    #[command(flatten)]
    Edit(Edit),
    #[command(flatten)]
    Switch(Switch),
    /// Start a run of a task.
    Run {
        task: String,
        /// Params for this run only, as JSON.
        #[arg(long, value_name = "JSON")]
        params: Option<String>,
        /// Wait for the result and print it.
        #[arg(long)]
        wait: bool,
    },
}

/// Tasks, by name or id.
pub(crate) const TASKS: Noun = Noun {
    name: "task",
    path: "/v1/tasks",
    key: "tasks",
    columns: &[
        ("NAME", "name"),
        ("PLUGIN", "plugin"),
        ("ENABLED", "enabled"),
        ("OVERLAP", "overlap"),
        ("ID", "id"),
    ],
    toggle: Toggle::Post,
};

pub(crate) async fn task(remote: &Remote, cmd: TaskCommand) -> Result<(), Failure> {
    match cmd {
        TaskCommand::List => TASKS.list(remote).await?,
        TaskCommand::Edit(verb) => verb.run(&TASKS, remote).await?,
        TaskCommand::Switch(verb) => verb.run(&TASKS, remote).await?,
        TaskCommand::Create {
            name,
            plugin,
            webhook,
            params,
            spec,
        } => {
            let mut body = match spec {
                Some(s) => json_arg("--spec", &s)?,
                None => json!({}),
            };
            if !body.is_object() {
                return Err((EXIT_USAGE, "--spec must be a JSON object".into()));
            }
            body["name"] = json!(name);
            set(&mut body, "plugin", plugin);
            set(&mut body, "webhook", webhook);
            if let Some(p) = params {
                body["params"] = json_arg("--params", &p)?;
            }
            TASKS.create(remote, &body).await?;
        }
        TaskCommand::Run { task, params, wait } => {
            let body = match params {
                Some(p) => Some(json!({ "params": json_arg("--params", &p)? })),
                None => None,
            };
            let path = format!(
                "/v1/tasks/{}/run{}",
                q(&task),
                if wait { "?wait=true" } else { "" }
            );
            let v = remote.call("POST", &path, body.as_ref()).await?;
            if wait {
                remote.print(&v, super::run::run_detail);
                if v["status"] != "succeeded" {
                    return Err((
                        super::client::EXIT_API_ERROR,
                        format!("run {} {}", text(&v["id"]), text(&v["status"])),
                    ));
                }
            } else {
                remote.print(&v, |r| format!("queued run {}\n", text(&r["id"])));
            }
        }
    }
    Ok(())
}

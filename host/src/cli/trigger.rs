//! `sundial trigger ...`: when an event matches, start tasks or deliveries.

use super::client::{Failure, Remote, columns, text};
use super::noun::{Edit, Exclusions, Noun, Switch, Toggle, json_arg, set};
use clap::Subcommand;
use serde_json::{Value, json};

/// `sundial trigger ...`
#[derive(Debug, Subcommand)]
pub(crate) enum TriggerCommand {
    /// Create a trigger: when an event matches (or a schedule fires), start the tasks
    /// and send to the webhooks.
    #[command(group(clap::ArgGroup::new("pattern").required(true).args(["on", "schedule"])))]
    #[command(group(clap::ArgGroup::new("targets").required(true).multiple(true).args(["tasks", "webhooks"])))]
    Create {
        name: String,
        /// Event type to react to (exact or glob, e.g. 'sync.*').
        #[arg(long = "on", value_name = "TYPE")]
        on: Option<String>,
        /// Instead of --on: react to each slot this schedule fires.
        #[arg(long, conflicts_with_all = ["on", "subject", "source"])]
        schedule: Option<String>,
        /// Only events with this subject (exact or glob).
        #[arg(long)]
        subject: Option<String>,
        /// Only events from this source (exact or glob).
        #[arg(long)]
        source: Option<String>,
        /// A filter over the event, as JSON (see docs/events.md).
        #[arg(long)]
        filter: Option<String>,
        /// A task to start (repeat for several).
        #[arg(long = "task")]
        tasks: Vec<String>,
        /// A webhook to send to (repeat for several).
        #[arg(long = "webhook")]
        webhooks: Vec<String>,
        /// JSON object merged over the tasks' params.
        #[arg(long)]
        context: Option<String>,
        /// Start the tasks this long after the event (90m, 30d, 2w, "2 hours").
        #[arg(long)]
        delay: Option<String>,
        #[command(flatten)]
        exclusions: Exclusions,
    },
    /// List triggers.
    List,
    #[command(flatten)]
    Edit(Edit),
    #[command(flatten)]
    Switch(Switch),
}

/// Triggers, by name or id (`list` flattens each trigger's pattern and targets).
pub(crate) const TRIGGERS: Noun = Noun {
    name: "trigger",
    path: "/v1/triggers",
    key: "triggers",
    columns: &[
        ("NAME", "name"),
        ("ON", "type"),
        ("TARGETS", "tasks"),
        ("DELAY", "delay"),
        ("ENABLED", "enabled"),
        ("ID", "id"),
    ],
    toggle: Toggle::Post,
};

pub(crate) async fn trigger(remote: &Remote, cmd: TriggerCommand) -> Result<(), Failure> {
    match cmd {
        TriggerCommand::Create {
            name,
            on,
            schedule,
            subject,
            source,
            filter,
            tasks,
            webhooks,
            context,
            delay,
            exclusions,
        } => {
            let mut pattern = match schedule {
                Some(s) => json!({ "schedule": s }),
                None => json!({ "type": on }),
            };
            set(&mut pattern, "subject", subject);
            set(&mut pattern, "source", source);
            if let Some(f) = filter {
                pattern["filter"] = json_arg("--filter", &f)?;
            }
            let targets: Vec<Value> = tasks
                .iter()
                .map(|t| json!({ "task": t }))
                .chain(webhooks.iter().map(|w| json!({ "webhook": w })))
                .collect();
            let mut body = json!({ "name": name, "on": pattern, "targets": targets });
            if let Some(c) = context {
                body["context"] = json_arg("--context", &c)?;
            }
            set(&mut body, "delay", delay);
            exclusions.add_to(&mut body)?;
            TRIGGERS.create(remote, &body).await?;
        }
        TriggerCommand::List => {
            let v = TRIGGERS.all(remote).await?;
            remote.print(&v, |v| {
                let mut flat = v.clone();
                if let Some(items) = flat["triggers"].as_array_mut() {
                    for t in items {
                        t["type"] = match t["on"]["schedule"].as_str() {
                            Some(s) => json!(format!("schedule:{s}")),
                            None => t["on"]["type"].clone(),
                        };
                        let names: Vec<String> = t["targets"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .map(|x| match x["webhook"].as_str() {
                                        Some(w) => format!("webhook:{w}"),
                                        None => text(&x["task"]),
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        t["tasks"] = json!(names.join(","));
                    }
                }
                columns(&flat, TRIGGERS.key, TRIGGERS.columns)
            });
        }
        TriggerCommand::Edit(verb) => verb.run(&TRIGGERS, remote).await?,
        TriggerCommand::Switch(verb) => verb.run(&TRIGGERS, remote).await?,
    }
    Ok(())
}

//! `sundial event ...`, `sundial trigger ...` and `sundial timer ...`: post and read
//! events, manage triggers, list and cancel delayed targets.

use super::EXIT_USAGE;
use super::client::{Failure, Remote, columns, text};
use clap::Subcommand;
use serde_json::{Value, json};

/// `sundial event ...`
#[derive(Debug, Subcommand)]
pub(crate) enum EventCommand {
    /// Post an event (a CloudEvent built from the flags).
    Emit {
        /// Event type, e.g. user.created.
        #[arg(value_name = "TYPE")]
        kind: String,
        /// Event data, as JSON.
        #[arg(long)]
        data: Option<String>,
        /// What the event is about.
        #[arg(long)]
        subject: Option<String>,
        /// Who produced it [default: sundial-cli].
        #[arg(long, default_value = "sundial-cli")]
        source: String,
        /// Its id; a resend with the same id and source is accepted once [default: a new ULID].
        #[arg(long)]
        id: Option<String>,
    },
    /// The event log, newest first.
    List {
        /// Only this type (exact or glob, e.g. 'sync.*').
        #[arg(long = "type")]
        kind: Option<String>,
        /// Only this subject (exact or glob).
        #[arg(long)]
        subject: Option<String>,
        /// Most events to show (1-1000).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One event with what it caused.
    Get {
        /// The event's seq.
        seq: String,
    },
}

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
        /// A calendar whose excluded windows it starts nothing in (repeatable).
        #[arg(long = "calendar")]
        calendars: Vec<String>,
        /// An event in an excluded window: skip, or defer (start when it ends)
        /// [default: skip].
        #[arg(long)]
        excluded: Option<String>,
    },
    /// List triggers.
    List,
    /// Show one trigger.
    Get { name: String },
    /// Change fields of a trigger (JSON merge of top-level fields).
    Update {
        name: String,
        /// The fields to change, as JSON.
        #[arg(value_name = "JSON")]
        fields: String,
    },
    /// Enable a trigger.
    Enable { name: String },
    /// Disable a trigger.
    Disable { name: String },
    /// Delete a trigger.
    Delete { name: String },
}

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

/// Parse a flag's JSON value, naming the flag on error.
pub(crate) fn json_arg(flag: &str, text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text).map_err(|e| (EXIT_USAGE, format!("--{flag}: not JSON ({e})")))
}

/// `&k=v` for each given query parameter, URL-encoded.
pub(crate) fn query(pairs: &[(&str, &Option<String>)]) -> String {
    pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("&{k}={}", super::remote::q(v))))
        .collect()
}

pub(crate) async fn event(remote: &Remote, cmd: EventCommand) -> Result<(), Failure> {
    match cmd {
        EventCommand::Emit {
            kind,
            data,
            subject,
            source,
            id,
        } => {
            let mut body = json!({
                "specversion": "1.0",
                "id": id.unwrap_or_else(sundial_core::ids::new_id),
                "source": source,
                "type": kind,
            });
            if let Some(d) = data {
                body["data"] = json_arg("data", &d)?;
                body["datacontenttype"] = json!("application/json");
            }
            if let Some(s) = subject {
                body["subject"] = json!(s);
            }
            let v = remote.call("POST", "/v1/events", Some(&body)).await?;
            remote.print(&v, |v| {
                let runs: usize = v["triggers"]
                    .as_array()
                    .map(|t| t.iter().map(|m| m["runs"].as_array().map_or(0, Vec::len)).sum())
                    .unwrap_or(0);
                let timers: usize = v["triggers"]
                    .as_array()
                    .map(|t| t.iter().map(|m| m["timers"].as_array().map_or(0, Vec::len)).sum())
                    .unwrap_or(0);
                format!(
                    "event {} {}: {} triggers matched, {runs} runs started, {timers} timers set{}\n",
                    text(&v["seq"]),
                    if v["duplicate"] == true {
                        "(duplicate, ignored)"
                    } else {
                        "stored"
                    },
                    v["triggers"].as_array().map_or(0, Vec::len),
                    v["stopped"]
                        .as_str()
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default()
                )
            });
        }
        EventCommand::List { kind, subject, limit } => {
            let path = format!(
                "/v1/events?limit={limit}{}",
                query(&[("type", &kind), ("subject", &subject)])
            );
            let v = remote.call("GET", &path, None).await?;
            remote.print(&v, |v| {
                let mut flat = v.clone();
                if let Some(events) = flat["events"].as_array_mut() {
                    for e in events {
                        let matched = e["triggers"].as_array().map_or(0, Vec::len);
                        e["type"] = e["event"]["type"].clone();
                        e["subject"] = e["event"]["subject"].clone();
                        e["source"] = e["event"]["source"].clone();
                        e["matched"] = json!(matched);
                    }
                }
                columns(
                    &flat,
                    "events",
                    &[
                        ("RECEIVED", "received_at"),
                        ("TYPE", "type"),
                        ("SUBJECT", "subject"),
                        ("SOURCE", "source"),
                        ("TRIGGERS", "matched"),
                        ("SEQ", "seq"),
                    ],
                )
            });
        }
        EventCommand::Get { seq } => {
            let v = remote.call("GET", &format!("/v1/events/{seq}"), None).await?;
            remote.print(&v, super::client::fields);
        }
    }
    Ok(())
}

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
            calendars,
            excluded,
        } => {
            let mut pattern = match schedule {
                Some(s) => json!({ "schedule": s }),
                None => json!({ "type": on }),
            };
            if let Some(s) = subject {
                pattern["subject"] = json!(s);
            }
            if let Some(s) = source {
                pattern["source"] = json!(s);
            }
            if let Some(f) = filter {
                pattern["filter"] = json_arg("filter", &f)?;
            }
            let targets: Vec<Value> = tasks
                .iter()
                .map(|t| json!({ "task": t }))
                .chain(webhooks.iter().map(|w| json!({ "webhook": w })))
                .collect();
            let mut body = json!({ "name": name, "on": pattern, "targets": targets });
            if let Some(c) = context {
                body["context"] = json_arg("context", &c)?;
            }
            if let Some(d) = delay {
                body["delay"] = json!(d);
            }
            if !calendars.is_empty() {
                body["calendars"] = json!(calendars);
            }
            match excluded.as_deref() {
                None => {}
                Some(p @ ("skip" | "defer")) => body["excluded"] = json!(p),
                Some(other) => {
                    return Err((super::EXIT_USAGE, format!("--excluded {other:?}: skip or defer")));
                }
            }
            let v = remote.call("POST", "/v1/triggers", Some(&body)).await?;
            remote.print(&v, |v| {
                format!("created trigger {} ({})\n", text(&v["name"]), text(&v["id"]))
            });
        }
        TriggerCommand::List => {
            let v = remote.call_all("/v1/triggers", "triggers").await?;
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
                columns(
                    &flat,
                    "triggers",
                    &[
                        ("NAME", "name"),
                        ("ON", "type"),
                        ("TARGETS", "tasks"),
                        ("DELAY", "delay"),
                        ("ENABLED", "enabled"),
                        ("ID", "id"),
                    ],
                )
            });
        }
        TriggerCommand::Get { name } => {
            let v = remote.call("GET", &format!("/v1/triggers/{name}"), None).await?;
            remote.print(&v, super::client::fields);
        }
        TriggerCommand::Update { name, fields } => {
            let body = json_arg("fields", &fields)?;
            let v = remote
                .call("PATCH", &format!("/v1/triggers/{name}"), Some(&body))
                .await?;
            remote.print(&v, |t| format!("updated trigger {}\n", text(&t["name"])));
        }
        TriggerCommand::Enable { name } => {
            remote
                .call("POST", &format!("/v1/triggers/{name}/enable"), None)
                .await?;
            remote.done(
                json!({"enabled": "trigger", "name": name}),
                &format!("enabled trigger {name}"),
            );
        }
        TriggerCommand::Disable { name } => {
            remote
                .call("POST", &format!("/v1/triggers/{name}/disable"), None)
                .await?;
            remote.done(
                json!({"disabled": "trigger", "name": name}),
                &format!("disabled trigger {name}"),
            );
        }
        TriggerCommand::Delete { name } => {
            remote
                .call("DELETE", &format!("/v1/triggers/{name}"), None)
                .await?;
            remote.done(
                json!({"deleted": "trigger", "name": name}),
                &format!("deleted trigger {name}"),
            );
        }
    }
    Ok(())
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
                columns(
                    v,
                    "timers",
                    &[
                        ("DUE", "due"),
                        ("TASK", "task_name"),
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

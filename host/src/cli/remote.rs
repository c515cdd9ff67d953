//! Client commands that talk to a running daemon: tasks, runs, tokens, audit, logs.

use super::EXIT_USAGE;
use super::client::{Failure, Remote, columns, table, text};
use clap::Subcommand;
use serde_json::{Value, json};
use std::time::Duration;

fn parse(field: &str, text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text).map_err(|e| (EXIT_USAGE, format!("{field} is not JSON: {e}")))
}

/// Percent-encode a query value.
pub(crate) fn q(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Subcommand)]
pub(crate) enum TaskCommand {
    /// List tasks.
    List,
    /// Show one task (by name or id).
    Get { task: String },
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
    /// Change fields of a task (JSON merge of top-level fields).
    Update {
        task: String,
        /// The fields to change, as JSON.
        #[arg(value_name = "JSON")]
        fields: String,
    },
    /// Delete a task.
    Delete { task: String },
    /// Let a task run again.
    Enable { task: String },
    /// Refuse new runs of a task.
    Disable { task: String },
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

#[derive(Debug, Subcommand)]
pub(crate) enum RunCommand {
    /// List runs, newest first.
    List {
        #[arg(long)]
        task: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Show one run with its plugin log.
    Get { id: String },
    /// Cancel a queued or running run.
    Cancel { id: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// List tokens (never their secrets).
    List,
    /// Create a token; its secret is printed once.
    Create {
        name: String,
        /// admin, operator, viewer or ingest.
        #[arg(long)]
        role: String,
    },
    /// Revoke a token (by name or id).
    Revoke {
        /// Token name or id.
        name: String,
    },
}

fn task_rows(v: &Value) -> String {
    let cols = [
        ("NAME", "name"),
        ("PLUGIN", "plugin"),
        ("ENABLED", "enabled"),
        ("OVERLAP", "overlap"),
        ("ID", "id"),
    ];
    columns(v, "tasks", &cols)
}

fn run_rows(runs: &[Value]) -> String {
    let rows = runs
        .iter()
        .map(|r| {
            vec![
                text(&r["id"]),
                text(&r["task_name"]),
                text(&r["status"]),
                text(&r["attempt"]),
                text(&r["queued_at"]),
                r["error"]["message"]
                    .as_str()
                    .map(|m| m.chars().take(60).collect())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    table(&["ID", "TASK", "STATUS", "ATTEMPT", "QUEUED", "ERROR"], rows)
}

fn run_detail(r: &Value) -> String {
    let mut out = format!(
        "run      {}\ntask     {}\nstatus   {}\nattempt  {}\ncause    {}\nby       {}\nqueued   {}\nstarted  {}\nfinished {}\n",
        text(&r["id"]),
        text(&r["task_name"]),
        text(&r["status"]),
        text(&r["attempt"]),
        text(&r["cause"]["kind"]),
        text(&r["started_by"]),
        text(&r["queued_at"]),
        text(&r["started_at"]),
        text(&r["finished_at"]),
    );
    if !r["error"].is_null() {
        out.push_str(&format!(
            "error    {}: {}\n",
            text(&r["error"]["kind"]),
            text(&r["error"]["message"])
        ));
    }
    if !r["output"].is_null() {
        out.push_str(&format!("output   {}\n", r["output"]));
    }
    out.push_str("log:\n");
    for line in r["log"]["lines"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  [{:>6}ms {:<5} {}] {}\n",
            text(&line["at_ms"]),
            text(&line["level"]),
            text(&line["origin"]),
            text(&line["message"])
        ));
    }
    if r["log"]["truncated"] == true {
        out.push_str("  [log truncated]\n");
    }
    out
}

pub(crate) async fn task(remote: &Remote, cmd: TaskCommand) -> Result<(), Failure> {
    match cmd {
        TaskCommand::List => {
            let v = remote.call_all("/v1/tasks", "tasks").await?;
            remote.print(&v, task_rows);
        }
        TaskCommand::Get { task } => {
            let v = remote
                .call("GET", &format!("/v1/tasks/{}", q(&task)), None)
                .await?;
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        TaskCommand::Create {
            name,
            plugin,
            webhook,
            params,
            spec,
        } => {
            let mut body = match spec {
                Some(s) => parse("--spec", &s)?,
                None => json!({}),
            };
            if !body.is_object() {
                return Err((EXIT_USAGE, "--spec must be a JSON object".into()));
            }
            body["name"] = json!(name);
            if let Some(p) = plugin {
                body["plugin"] = json!(p);
            }
            if let Some(w) = webhook {
                body["webhook"] = json!(w);
            }
            if let Some(p) = params {
                body["params"] = parse("--params", &p)?;
            }
            let v = remote.call("POST", "/v1/tasks", Some(&body)).await?;
            remote.print(&v, |t| {
                format!("created task {} ({})\n", text(&t["name"]), text(&t["id"]))
            });
        }
        TaskCommand::Update { task, fields } => {
            let body = parse("fields", &fields)?;
            let v = remote
                .call("PATCH", &format!("/v1/tasks/{}", q(&task)), Some(&body))
                .await?;
            remote.print(&v, |t| format!("updated task {}\n", text(&t["name"])));
        }
        TaskCommand::Delete { task } => {
            remote
                .call("DELETE", &format!("/v1/tasks/{}", q(&task)), None)
                .await?;
            println!("deleted task {task}");
        }
        TaskCommand::Enable { task } => {
            remote
                .call("POST", &format!("/v1/tasks/{}/enable", q(&task)), None)
                .await?;
            println!("enabled task {task}");
        }
        TaskCommand::Disable { task } => {
            remote
                .call("POST", &format!("/v1/tasks/{}/disable", q(&task)), None)
                .await?;
            println!("disabled task {task}");
        }
        TaskCommand::Run { task, params, wait } => {
            let body = match params {
                Some(p) => Some(json!({ "params": parse("--params", &p)? })),
                None => None,
            };
            let path = format!(
                "/v1/tasks/{}/run{}",
                q(&task),
                if wait { "?wait=true" } else { "" }
            );
            let v = remote.call("POST", &path, body.as_ref()).await?;
            if wait {
                remote.print(&v, run_detail);
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

pub(crate) async fn run(remote: &Remote, cmd: RunCommand) -> Result<(), Failure> {
    match cmd {
        RunCommand::List { task, status, limit } => {
            let mut path = format!("/v1/runs?limit={limit}");
            if let Some(t) = task {
                path.push_str(&format!("&task={}", q(&t)));
            }
            if let Some(s) = status {
                path.push_str(&format!("&status={}", q(&s)));
            }
            let v = remote.call("GET", &path, None).await?;
            remote.print(&v, |v| {
                run_rows(v["runs"].as_array().map(Vec::as_slice).unwrap_or_default())
            });
        }
        RunCommand::Get { id } => {
            let v = remote.call("GET", &format!("/v1/runs/{}", q(&id)), None).await?;
            remote.print(&v, run_detail);
        }
        RunCommand::Cancel { id } => {
            let v = remote
                .call("POST", &format!("/v1/runs/{}/cancel", q(&id)), None)
                .await?;
            remote.print(&v, |r| format!("run {} {}\n", text(&r["id"]), text(&r["status"])));
        }
    }
    Ok(())
}

pub(crate) async fn token(remote: &Remote, cmd: TokenCommand) -> Result<(), Failure> {
    match cmd {
        TokenCommand::List => {
            let v = remote.call("GET", "/v1/tokens", None).await?;
            remote.print(&v, |v| {
                columns(
                    v,
                    "tokens",
                    &[
                        ("NAME", "name"),
                        ("ROLE", "role"),
                        ("CREATED", "created_at"),
                        ("ID", "id"),
                    ],
                )
            });
        }
        TokenCommand::Create { name, role } => {
            let v = remote
                .call("POST", "/v1/tokens", Some(&json!({"name": name, "role": role})))
                .await?;
            remote.print(&v, |t| {
                format!(
                    "created {} token {}; its secret (shown once):\n{}\n",
                    text(&t["role"]),
                    text(&t["name"]),
                    text(&t["secret"])
                )
            });
        }
        TokenCommand::Revoke { name } => {
            remote
                .call("DELETE", &format!("/v1/tokens/{}", q(&name)), None)
                .await?;
            println!("revoked token {name}");
        }
    }
    Ok(())
}

pub(crate) async fn audit(remote: &Remote, noun: Option<String>, limit: usize) -> Result<(), Failure> {
    let mut path = format!("/v1/audit?limit={limit}");
    if let Some(n) = noun {
        path.push_str(&format!("&noun={}", q(&n)));
    }
    let v = remote.call("GET", &path, None).await?;
    remote.print(&v, |v| {
        let cols = [
            ("AT", "at"),
            ("ACTOR", "actor"),
            ("ACTION", "action"),
            ("NOUN", "noun"),
            ("TARGET", "target"),
        ];
        columns(v, "entries", &cols)
    });
    Ok(())
}

/// Print finished runs; with `follow`, keep printing new ones as they finish.
pub(crate) async fn logs(remote: &Remote, task: Option<String>, follow: bool) -> Result<(), Failure> {
    let filter = task.map(|t| format!("&task={}", q(&t))).unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    loop {
        let v = remote
            .call("GET", &format!("/v1/runs?limit=100{filter}"), None)
            .await?;
        let mut fresh: Vec<&Value> = v["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| !matches!(r["status"].as_str(), Some("queued" | "running")))
            .filter(|r| !seen.contains(&text(&r["id"])))
            .collect();
        fresh.reverse();
        for r in fresh {
            seen.insert(text(&r["id"]));
            if remote.json {
                println!("{r}");
            } else {
                let err = r["error"]["message"].as_str().unwrap_or_default();
                println!(
                    "{} {} {} attempt {} {}",
                    text(&r["finished_at"]),
                    text(&r["task_name"]),
                    text(&r["status"]),
                    text(&r["attempt"]),
                    err
                );
                for line in r["log"]["lines"].as_array().into_iter().flatten() {
                    println!(
                        "    [{} {}] {}",
                        text(&line["level"]),
                        text(&line["origin"]),
                        text(&line["message"])
                    );
                }
            }
        }
        if !follow {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

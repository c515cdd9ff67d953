//! `sundial run ...`: the task log. List, show, cancel and retry runs, one by id or
//! many by filter (`--task`, `--status`, `--cause`, `--since`, `--until`).

use super::EXIT_USAGE;
use super::client::{Failure, Remote, table, text};
use super::noun::{q, set};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

/// Which runs a bulk command acts on.
#[derive(Debug, Args, Default, Clone)]
pub(crate) struct RunFilterFlags {
    /// Runs of this task (name or id).
    #[arg(long)]
    task: Option<String>,
    /// Runs with this status (queued, running, succeeded, failed, timed_out, cancelled,
    /// skipped, interrupted).
    #[arg(long)]
    status: Option<String>,
    /// Runs started this way: manual, schedule or event.
    #[arg(long)]
    cause: Option<String>,
    /// Runs queued at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Runs queued before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Act on at most this many runs, newest first (1-1000) [default: 100].
    #[arg(long)]
    limit: Option<usize>,
    /// Show what would be done; do nothing.
    #[arg(long)]
    dry_run: bool,
}

impl RunFilterFlags {
    fn given(&self) -> bool {
        self.task.is_some()
            || self.status.is_some()
            || self.cause.is_some()
            || self.since.is_some()
            || self.until.is_some()
    }

    fn body(&self) -> Value {
        let mut b = json!({ "dry_run": self.dry_run });
        for (k, v) in [
            ("task", &self.task),
            ("status", &self.status),
            ("cause", &self.cause),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if let Some(v) = v {
                b[k] = json!(v);
            }
        }
        set(&mut b, "limit", self.limit);
        b
    }
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
    /// Cancel a queued or running run, or every one matching the filter flags.
    Cancel {
        /// The run (omit it to cancel by filter).
        id: Option<String>,
        #[command(flatten)]
        filter: RunFilterFlags,
    },
    /// Start a finished run again (same task, params, cause and event), or every
    /// finished run matching the filter flags. The new run links back (`retry of`).
    Retry {
        /// The run (omit it to retry by filter).
        id: Option<String>,
        #[command(flatten)]
        filter: RunFilterFlags,
        /// Wait for the new run's result (one run only).
        #[arg(long)]
        wait: bool,
    },
}

pub(crate) fn run_rows(runs: &[Value]) -> String {
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

pub(crate) fn run_detail(r: &Value) -> String {
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
    if let Some(of) = r["retry_of"].as_str() {
        out.push_str(&format!("retry of {}\n", text(&Value::String(of.to_string()))));
    }
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

/// The table of a bulk answer: each run and what happened to it.
fn bulk_rows(v: &Value, done: &str) -> String {
    let rows: Vec<Vec<String>> = v["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let outcome = if let Some(why) = r["skipped"].as_str() {
                format!("skipped: {}", text(&Value::String(why.to_string())))
            } else if let Some(new) = r["retry"].as_str() {
                format!("retry {new}")
            } else {
                text(&r["status"])
            };
            vec![text(&r["run"]), text(&r["task"]), outcome]
        })
        .collect();
    let mut out = table(&["RUN", "TASK", "OUTCOME"], rows);
    let done = if v["dry_run"] == true {
        "dry run: nothing done".to_string()
    } else {
        format!("{} {done}", text(&v[done]))
    };
    out.push_str(&format!("{} matched, {done}\n", text(&v["matched"])));
    if v["more"] == true {
        out.push_str("more runs matched: raise --limit (at most 1000) or narrow the filter\n");
    }
    out
}

pub(crate) async fn run(remote: &Remote, cmd: RunCommand) -> Result<(), Failure> {
    let usage = |m: &str| (EXIT_USAGE, m.to_string());
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
        RunCommand::Cancel { id, filter } => match (id, filter.given()) {
            (Some(_), true) => return Err(usage("give a run id or filter flags, not both")),
            (None, false) => {
                return Err(usage(
                    "give a run id, or filter flags (--task, --status, --cause, --since, --until)",
                ));
            }
            (Some(id), false) => {
                let v = remote
                    .call("POST", &format!("/v1/runs/{}/cancel", q(&id)), None)
                    .await?;
                remote.print(&v, |r| format!("run {} {}\n", text(&r["id"]), text(&r["status"])));
            }
            (None, true) => {
                let v = remote
                    .call("POST", "/v1/runs/cancel", Some(&filter.body()))
                    .await?;
                remote.print(&v, |v| bulk_rows(v, "cancelled"));
            }
        },
        RunCommand::Retry { id, filter, wait } => match (id, filter.given()) {
            (Some(_), true) => return Err(usage("give a run id or filter flags, not both")),
            (None, false) => {
                return Err(usage(
                    "give a run id, or filter flags (--task, --status, --cause, --since, --until)",
                ));
            }
            (None, true) if wait => return Err(usage("--wait takes one run id")),
            (Some(id), false) => {
                let path = format!(
                    "/v1/runs/{}/retry{}",
                    q(&id),
                    if wait { "?wait=true" } else { "" }
                );
                let v = remote.call("POST", &path, None).await?;
                remote.print(&v, |r| {
                    if wait {
                        run_detail(r)
                    } else {
                        format!(
                            "run {} retries {} ({})\n",
                            text(&r["id"]),
                            text(&r["retry_of"]),
                            text(&r["status"])
                        )
                    }
                });
            }
            (None, true) => {
                let v = remote
                    .call("POST", "/v1/runs/retry", Some(&filter.body()))
                    .await?;
                remote.print(&v, |v| bulk_rows(v, "retried"));
            }
        },
    }
    Ok(())
}

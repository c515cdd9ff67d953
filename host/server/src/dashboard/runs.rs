//! The task log: runs newest first, filtered by task, status and cause (the filters
//! stay in the URL), keyset paged; and one run with its cause, attempts, output, error
//! and plugin log.

use super::tasks::RunRow;
use super::{Act, Browser, Chrome, page_error, render};
use crate::ApiError;
use crate::error::Found;
use askama::Template;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

/// Runs on one page of the log.
const PAGE: usize = 50;

/// The log's filters and position, as the URL carries them.
#[derive(Deserialize, Default)]
pub(super) struct RunQuery {
    #[serde(default)]
    task: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    cause: String,
    /// The last run id of the page before (newer runs).
    before: Option<String>,
}

impl RunQuery {
    /// The query string of these filters (without the position), for links.
    fn filters(&self) -> String {
        let mut out = String::new();
        for (k, v) in [
            ("task", &self.task),
            ("status", &self.status),
            ("cause", &self.cause),
        ] {
            if !v.is_empty() {
                out.push_str(&format!("&{k}={}", sundial_core::address::percent_encode(v)));
            }
        }
        out
    }
}

/// `""` is no filter.
fn given(v: &str) -> Option<&str> {
    Some(v.trim()).filter(|v| !v.is_empty())
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    chrome: Option<Chrome>,
    task: String,
    status: String,
    cause: String,
    statuses: Vec<&'static str>,
    rows: Vec<RunRow>,
    next: Option<String>,
    filters: String,
}

/// `GET /runs`.
pub(super) async fn list(browser: Browser, Query(q): Query<RunQuery>) -> Response {
    let state = &browser.state;
    let page = (|| -> Result<RunsPage, ApiError> {
        crate::extract::check_cursor(&q.before)?;
        let filter = crate::runs::filter_of(
            state,
            given(&q.task),
            given(&q.status),
            given(&q.cause),
            &None,
            &None,
        )?;
        let (runs, next) = state.store.list_runs(&filter, q.before.as_deref(), PAGE)?;
        Ok(RunsPage {
            chrome: Some(browser.chrome("runs")),
            statuses: sundial_core::run::RunStatus::ALL
                .iter()
                .map(|s| s.as_str())
                .collect(),
            rows: runs.iter().map(RunRow::of).collect(),
            next,
            filters: q.filters(),
            task: q.task.clone(),
            status: q.status.clone(),
            cause: q.cause.clone(),
        })
    })();
    page.map_or_else(page_error, |p| render(&p))
}

/// One log line as the page shows it.
struct LineRow {
    at_ms: u64,
    level: String,
    origin: String,
    message: String,
}

/// One attempt as the page shows it.
struct AttemptRow {
    number: u32,
    started_at: String,
    finished_at: String,
    error: String,
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    chrome: Option<Chrome>,
    id: String,
    task_id: String,
    task_name: String,
    status: &'static str,
    terminal: bool,
    cause: String,
    started_by: String,
    queued_at: String,
    finished_at: String,
    retry_of: Option<String>,
    params: String,
    output: Option<String>,
    error: Option<String>,
    attempts: Vec<AttemptRow>,
    lines: Vec<LineRow>,
    truncated: bool,
    resources: String,
}

/// A serde enum as the word it serializes to (`info`, `plugin`).
fn word<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn pretty<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// `GET /runs/{id}`.
pub(super) async fn show(browser: Browser, Path(id): Path<String>) -> Response {
    let state = &browser.state;
    let page = (|| -> Result<RunPage, ApiError> {
        let run = state.store.run(&id)?.found("run", &id)?;
        Ok(RunPage {
            chrome: Some(browser.chrome("runs")),
            status: run.status.as_str(),
            terminal: run.status.is_terminal(),
            cause: pretty(&run.cause),
            params: pretty(&run.params),
            output: run.output.as_ref().map(pretty),
            error: run.error.as_ref().map(|e| e.to_string()),
            attempts: run
                .attempts
                .iter()
                .map(|a| AttemptRow {
                    number: a.number,
                    started_at: a.started_at.clone(),
                    finished_at: a.finished_at.clone().unwrap_or_default(),
                    error: a.error.as_ref().map(|e| e.to_string()).unwrap_or_default(),
                })
                .collect(),
            lines: run
                .log
                .lines
                .iter()
                .map(|l| LineRow {
                    at_ms: l.at_ms,
                    level: word(&l.level),
                    origin: word(&l.origin),
                    message: l.message.clone(),
                })
                .collect(),
            truncated: run.log.truncated,
            resources: pretty(&run.resources),
            finished_at: run.finished_at.clone().unwrap_or_default(),
            id: run.id,
            task_id: run.task_id,
            task_name: run.task_name,
            started_by: run.started_by,
            queued_at: run.queued_at,
            retry_of: run.retry_of,
        })
    })();
    page.map_or_else(page_error, |p| render(&p))
}

/// `POST /runs/{id}/retry`: a new run of the same task with the same params, cause and
/// event, linked to this one; then to the new run.
pub(super) async fn retry(Path(id): Path<String>, act: Act) -> Response {
    let state = &act.browser.state;
    let queued = async {
        let original = state.store.run(&id)?.found("run", &id)?;
        let run = crate::retry::retry_of(state, &original, act.browser.caller.who())?;
        state
            .admission
            .check_queue(state.engines.outbox.queue().backlog())?;
        let mut runs = state.engines.outbox.enqueue_runs(vec![run]).await?;
        runs.pop()
            .map(|r| r.id)
            .ok_or_else(|| ApiError::internal("enqueue returned nothing"))
    };
    match queued.await {
        Ok(new) => Redirect::to(&format!("/runs/{new}")).into_response(),
        Err(e) => page_error(e),
    }
}

/// `POST /runs/{id}/cancel`: cancel a queued or running run; then back to it.
pub(super) async fn cancel(Path(id): Path<String>, act: Act) -> Response {
    match crate::runs::cancel_run(&act.browser.state, &id).await {
        Ok(run) => Redirect::to(&format!("/runs/{}", run.id)).into_response(),
        Err(e) => page_error(e),
    }
}

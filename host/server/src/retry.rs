//! Retry and replay runs, one or many, and cancel many.
//!
//! - `POST /v1/runs/{id}/retry[?wait=true]`: a new run of the same task with the same
//!   params, cause and event (an event-started run gets its event again), linked to
//!   the original by `retry_of`. Any finished run may be retried (a succeeded one is
//!   replayed); a queued or running one is refused (409), as is a run whose task was
//!   deleted (404) or is disabled (409).
//! - `POST /v1/runs/retry` and `POST /v1/runs/cancel`: the same for every run matching
//!   a filter (`task`, `status`, `cause`, `since`, `until`; at least one), newest first,
//!   at most `limit` (default 100, at most 1000) of them; `dry_run` lists what would be
//!   done. Retry takes finished runs, cancel queued and running ones; the answer lists
//!   each run with what happened to it and says whether more matched.

use super::runs::{StartQuery, filter_of};
use super::{ApiError, ApiResult, AppState, Operator};
use crate::error::Found;
use crate::extract::{JsonBody, QueryParams};
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sundial_core::run::{Run, RunStatus};
use sundial_core::timestamp::now;

/// Runs acted on by one bulk request by default: 100.
pub const DEFAULT_BULK_LIMIT: usize = 100;
/// Most runs one bulk request acts on: 1000.
pub const MAX_BULK_LIMIT: usize = 1000;
/// Most runs a bulk request looks at to find its matches: 100 000.
const MAX_SCANNED: usize = 100_000;

/// Why `original` cannot be retried now, or the new run.
pub(crate) fn retry_of(state: &AppState, original: &Run, by: &str) -> ApiResult<Run> {
    if !original.status.is_terminal() {
        return Err(ApiError::conflict(format!(
            "run {:?} is still {}; cancel it or wait until it finishes",
            original.id,
            original.status.as_str()
        )));
    }
    let task = state.store.task(&original.task_id)?.ok_or_else(|| {
        ApiError::not_found(format!(
            "task {:?} of run {:?} no longer exists",
            original.task_name, original.id
        ))
    })?;
    if !task.spec.enabled {
        return Err(ApiError::conflict(format!(
            "task {:?} is disabled",
            task.spec.name
        )));
    }
    let mut run = original.retry(by, now());
    // The task may have been renamed since.
    run.task_name = task.spec.name.clone();
    Ok(run)
}

/// `POST /v1/runs/{id}/retry`.
pub(super) async fn retry(
    Operator(state, caller): Operator,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<StartQuery>,
) -> ApiResult<crate::answer::Started<Run>> {
    let original = state.store.run(&id)?.found("run", &id)?;
    let run = retry_of(&state, &original, caller.who())?;
    state
        .admission
        .check_queue(state.engines.outbox.queue().backlog())?;
    super::runs::enqueue_and_answer(&state, run, query.wait).await
}

/// The filter and options of a bulk request.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("not" = {
    "description": "at least one of task, status, cause, since, until",
    "properties": {
        "task": { "type": "null" }, "status": { "type": "null" }, "cause": { "type": "null" },
        "since": { "type": "null" }, "until": { "type": "null" }
    }
}))]
pub(super) struct BulkRequest<const RETRY: bool> {
    /// Task name or id.
    task: Option<String>,
    /// Run status: a finished one to retry, queued or running to cancel.
    #[serde(default)]
    #[schemars(schema_with = "bulk_status::<RETRY>")]
    status: Option<String>,
    /// What started the run.
    #[schemars(extend("enum" = ["manual", "schedule", "event", null], "type" = ["string", "null"]))]
    cause: Option<String>,
    /// Queued at or after (RFC 3339).
    #[schemars(with = "Option<chrono::DateTime<chrono::Utc>>")]
    since: Option<String>,
    /// Queued before (RFC 3339).
    #[schemars(with = "Option<chrono::DateTime<chrono::Utc>>")]
    until: Option<String>,
    /// Most runs, 1-1000. Default 100.
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
    #[serde(default)]
    /// List what would be done, do nothing.
    dry_run: bool,
}

/// What one bulk request did to one run.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct BulkItem {
    /// The run matched.
    run: String,
    /// Its task.
    task: String,
    /// The new run that retries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    retry: Option<String>,
    /// Its status after a cancel (or now, in a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<RunStatus>,
    /// Why it was left alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<String>,
}

impl BulkItem {
    fn new(run: &Run) -> BulkItem {
        BulkItem {
            run: run.id.clone(),
            task: run.task_name.clone(),
            retry: None,
            status: None,
            skipped: None,
        }
    }
}

/// The answer of a bulk retry or cancel.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct BulkAnswer {
    dry_run: bool,
    matched: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    retried: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancelled: Option<usize>,
    /// More runs matched than `limit`.
    more: bool,
    runs: Vec<BulkItem>,
}

/// The statuses a bulk retry (finished ones) or cancel (unfinished ones) takes.
fn bulk_status<const RETRY: bool>(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut names: Vec<serde_json::Value> = RunStatus::ALL
        .into_iter()
        .filter(|s| s.is_terminal() == RETRY)
        .map(|s| s.as_str().into())
        .collect();
    names.push(serde_json::Value::Null);
    schemars::json_schema!({ "type": ["string", "null"], "enum": names })
}

/// Find the runs a bulk request acts on (those `eligible` among the matches), newest
/// first: (runs, whether more matched than `limit`).
fn matching<const RETRY: bool>(
    state: &AppState,
    req: &BulkRequest<RETRY>,
    eligible: fn(RunStatus) -> bool,
    what: &str,
) -> ApiResult<(Vec<Run>, bool)> {
    if req.task.is_none()
        && req.status.is_none()
        && req.cause.is_none()
        && req.since.is_none()
        && req.until.is_none()
    {
        return Err(ApiError::bad_request(
            "give at least one filter: task, status, cause, since or until",
        ));
    }
    let limit = req.limit.unwrap_or(DEFAULT_BULK_LIMIT);
    if !(1..=MAX_BULK_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: {limit} is outside 1..={MAX_BULK_LIMIT}"
        )));
    }
    let filter = filter_of(
        state,
        req.task.as_deref(),
        req.status.as_deref(),
        req.cause.as_deref(),
        &req.since,
        &req.until,
    )?;
    if let Some(s) = filter.status
        && !eligible(s)
    {
        return Err(ApiError::bad_request(format!(
            "status: {what} takes no {} runs",
            s.as_str()
        )));
    }
    let mut found = Vec::new();
    let mut cursor: Option<String> = None;
    let mut scanned = 0;
    let mut more = false;
    loop {
        let (page, next) = state.store.list_runs(&filter, cursor.as_deref(), 1000)?;
        scanned += page.len();
        for run in page {
            if eligible(run.status) {
                if found.len() == limit {
                    more = true;
                    break;
                }
                found.push(run);
            }
        }
        match next {
            Some(n) if !more && scanned < MAX_SCANNED => cursor = Some(n),
            Some(_) => {
                more = true;
                break;
            }
            None => break,
        }
    }
    Ok((found, more))
}

/// `POST /v1/runs/retry`: retry every finished run matching the filter.
pub(super) async fn retry_many(
    Operator(state, caller): Operator,
    JsonBody(req): JsonBody<BulkRequest<true>>,
) -> ApiResult<Json<BulkAnswer>> {
    let (found, more) = matching(&state, &req, RunStatus::is_terminal, "retry")?;
    let mut planned = Vec::new();
    let mut answers = Vec::new();
    for original in &found {
        let mut item = BulkItem::new(original);
        match retry_of(&state, original, caller.who()) {
            Ok(run) => {
                item.retry = Some(run.id.clone());
                planned.push(run);
            }
            Err(e) => item.skipped = Some(e.message),
        }
        answers.push(item);
    }
    if !req.dry_run && !planned.is_empty() {
        if let Some(why) = state.engines.outbox.queue().full(planned.len()) {
            return Err(ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "queue_full",
                message: format!(
                    "{why}: {} retries do not fit; retry later or lower limit",
                    planned.len()
                ),
            });
        }
        state.engines.outbox.enqueue_runs(planned).await?;
    }
    let retried = answers.iter().filter(|a| a.retry.is_some()).count();
    Ok(Json(BulkAnswer {
        dry_run: req.dry_run,
        matched: found.len(),
        retried: Some(if req.dry_run { 0 } else { retried }),
        cancelled: None,
        more,
        runs: answers,
    }))
}

/// `POST /v1/runs/cancel`: cancel every queued or running run matching the filter.
pub(super) async fn cancel_many(
    Operator(state, _): Operator,
    JsonBody(req): JsonBody<BulkRequest<false>>,
) -> ApiResult<Json<BulkAnswer>> {
    let unfinished = |s: RunStatus| !s.is_terminal();
    let (found, more) = matching(&state, &req, unfinished, "cancel")?;
    let mut answers = Vec::new();
    let mut cancelled = 0;
    if req.dry_run {
        for run in &found {
            answers.push(BulkItem {
                status: Some(run.status),
                ..BulkItem::new(run)
            });
        }
    } else {
        // Running runs are stopped together, not one after the other.
        let mut stopping = tokio::task::JoinSet::new();
        for run in &found {
            let executor = state.engines.executor.clone();
            let id = run.id.clone();
            stopping.spawn(async move { (id.clone(), executor.cancel(&id).await) });
        }
        let mut done = std::collections::HashMap::new();
        while let Some(joined) = stopping.join_next().await {
            if let Ok((id, result)) = joined {
                done.insert(id, result);
            }
        }
        for run in &found {
            let mut item = BulkItem::new(run);
            match done.remove(&run.id) {
                Some(Ok(r)) => {
                    if r.status == RunStatus::Cancelled {
                        cancelled += 1;
                    }
                    item.status = Some(r.status);
                }
                Some(Err(e)) => item.skipped = Some(e.to_string()),
                None => item.skipped = Some("the cancel did not finish".into()),
            }
            answers.push(item);
        }
    }
    Ok(Json(BulkAnswer {
        dry_run: req.dry_run,
        matched: found.len(),
        retried: None,
        cancelled: Some(cancelled),
        more,
        runs: answers,
    }))
}

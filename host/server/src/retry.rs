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
use sundial_store::runs::RunFilter;

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
pub(crate) struct BulkItem {
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
    /// (run, task, what happened) in words, for the dashboard.
    /// `done`: the action was taken (not a dry run).
    pub(crate) fn summary(&self, done: bool) -> (String, String, String) {
        let what = match (&self.retry, self.status, &self.skipped) {
            (_, _, Some(why)) => format!("left alone: {why}"),
            (Some(new), _, _) if done => format!("retried as {new}"),
            (Some(_), _, _) => "to retry".to_string(),
            (None, Some(s), None) if done => s.as_str().to_string(),
            (None, Some(s), None) => format!("{}: to cancel", s.as_str()),
            (None, None, None) => String::new(),
        };
        (self.run.clone(), self.task.clone(), what)
    }

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
pub(crate) struct BulkAnswer {
    pub(crate) dry_run: bool,
    pub(crate) matched: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) retried: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cancelled: Option<usize>,
    /// More runs matched than `limit`.
    pub(crate) more: bool,
    pub(crate) runs: Vec<BulkItem>,
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

/// A checked bulk request: which runs, how many at most, and whether only to list them.
pub(crate) struct Bulk {
    /// The runs matched.
    pub(crate) filter: RunFilter,
    /// Most runs acted on, 1..=[`MAX_BULK_LIMIT`].
    pub(crate) limit: usize,
    /// List what would be done, do nothing.
    pub(crate) dry_run: bool,
}

impl<const RETRY: bool> BulkRequest<RETRY> {
    /// Check the request: at least one filter, the limit in range, a status the
    /// action takes (`eligible`; `what` names the action in the error).
    fn checked(&self, state: &AppState, eligible: fn(RunStatus) -> bool, what: &str) -> ApiResult<Bulk> {
        if self.task.is_none()
            && self.status.is_none()
            && self.cause.is_none()
            && self.since.is_none()
            && self.until.is_none()
        {
            return Err(ApiError::bad_request(
                "give at least one filter: task, status, cause, since or until",
            ));
        }
        let limit = self.limit.unwrap_or(DEFAULT_BULK_LIMIT);
        if !(1..=MAX_BULK_LIMIT).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "limit: {limit} is outside 1..={MAX_BULK_LIMIT}"
            )));
        }
        let filter = filter_of(
            state,
            self.task.as_deref(),
            self.status.as_deref(),
            self.cause.as_deref(),
            &self.since,
            &self.until,
        )?;
        check_eligible(&filter, eligible, what)?;
        Ok(Bulk {
            filter,
            limit,
            dry_run: self.dry_run,
        })
    }
}

/// Refuse a filter on a status the action never takes (a retry of queued runs).
pub(crate) fn check_eligible(
    filter: &RunFilter,
    eligible: fn(RunStatus) -> bool,
    what: &str,
) -> ApiResult<()> {
    match filter.status {
        Some(s) if !eligible(s) => Err(ApiError::bad_request(format!(
            "status: {what} takes no {} runs",
            s.as_str()
        ))),
        _ => Ok(()),
    }
}

/// Find the runs a bulk request acts on (those `eligible` among the matches), newest
/// first: (runs, whether more matched than the limit).
fn matching(state: &AppState, bulk: &Bulk, eligible: fn(RunStatus) -> bool) -> ApiResult<(Vec<Run>, bool)> {
    let mut found = Vec::new();
    let mut cursor: Option<String> = None;
    let mut scanned = 0;
    let mut more = false;
    loop {
        let (page, next) = state.store.list_runs(&bulk.filter, cursor.as_deref(), 1000)?;
        scanned += page.len();
        for run in page {
            if eligible(run.status) {
                if found.len() == bulk.limit {
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
    let bulk = req.checked(&state, RunStatus::is_terminal, "retry")?;
    retry_matching(&state, &bulk, caller.who()).await.map(Json)
}

/// Retry every finished run `bulk` matches, as `who`.
pub(crate) async fn retry_matching(state: &AppState, bulk: &Bulk, who: &str) -> ApiResult<BulkAnswer> {
    let (found, more) = matching(state, bulk, RunStatus::is_terminal)?;
    let mut planned = Vec::new();
    let mut answers = Vec::new();
    for original in &found {
        let mut item = BulkItem::new(original);
        match retry_of(state, original, who) {
            Ok(run) => {
                item.retry = Some(run.id.clone());
                planned.push(run);
            }
            Err(e) => item.skipped = Some(e.message),
        }
        answers.push(item);
    }
    if !bulk.dry_run && !planned.is_empty() {
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
    Ok(BulkAnswer {
        dry_run: bulk.dry_run,
        matched: found.len(),
        retried: Some(if bulk.dry_run { 0 } else { retried }),
        cancelled: None,
        more,
        runs: answers,
    })
}

/// `POST /v1/runs/cancel`: cancel every queued or running run matching the filter.
pub(super) async fn cancel_many(
    Operator(state, _): Operator,
    JsonBody(req): JsonBody<BulkRequest<false>>,
) -> ApiResult<Json<BulkAnswer>> {
    let bulk = req.checked(&state, unfinished, "cancel")?;
    cancel_matching(&state, &bulk).await.map(Json)
}

/// Whether a cancel takes runs of this status: queued and running ones.
pub(crate) fn unfinished(status: RunStatus) -> bool {
    !status.is_terminal()
}

/// Cancel every queued or running run `bulk` matches.
pub(crate) async fn cancel_matching(state: &AppState, bulk: &Bulk) -> ApiResult<BulkAnswer> {
    let (found, more) = matching(state, bulk, unfinished)?;
    let mut answers = Vec::new();
    let mut cancelled = 0;
    if bulk.dry_run {
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
    Ok(BulkAnswer {
        dry_run: bulk.dry_run,
        matched: found.len(),
        retried: None,
        cancelled: Some(cancelled),
        more,
        runs: answers,
    })
}

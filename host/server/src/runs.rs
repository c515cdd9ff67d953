//! Runs, the task log: start a run (`?wait=true` for the result), list with filters
//! and cursor pagination, get one, cancel.

use super::{ApiError, ApiResult, AppState, Operator, Reader};
use crate::answer::Started;
use crate::error::Found;
use crate::extract::{OptionalJsonBody, QueryParams, QueueRoom};
use axum::Json;
use axum::extract::Path;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /v1/runs`: one page, newest first.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct RunPage {
    runs: Vec<Run>,
    next_cursor: Option<String>,
}
use sundial_core::run::{Run, RunCause, RunStatus};
use sundial_core::timestamp::now;
use sundial_store::runs::RunFilter;
use sundial_store::tasks::TaskRecord;

/// Longest `?wait=true` before answering with the still-running run: 5 minutes.
pub const MAX_WAIT_SECS: u64 = 300;

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StartRequest {
    params: Option<Value>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StartQuery {
    /// Wait (up to 5 minutes) for the result.
    #[serde(default)]
    pub(super) wait: bool,
}

pub(super) async fn start(
    Operator(state, caller): Operator,
    _: QueueRoom,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<StartQuery>,
    OptionalJsonBody(req): OptionalJsonBody<StartRequest>,
) -> ApiResult<Started<Run>> {
    let task = state.store.task(&id)?.found("task", &id)?;
    let run = manual_run(&task, req.params, caller.who())?;
    enqueue_and_answer(&state, run, query.wait).await
}

/// A manual run of `task` started by `who`, with `params` for this run (an object) or
/// the task's own; 409 when the task is disabled. (The API and the dashboard start runs
/// through here.)
pub(crate) fn manual_run(task: &TaskRecord, params: Option<Value>, who: &str) -> ApiResult<Run> {
    if !task.spec.enabled {
        return Err(ApiError::conflict(format!(
            "task {:?} is disabled",
            task.spec.name
        )));
    }
    let params = match params {
        Some(p) if !p.is_object() => return Err(ApiError::bad_request("params: must be a JSON object")),
        Some(p) => p,
        None => task.spec.params.clone(),
    };
    let mut run = Run::queued(
        &task.id,
        &task.spec.name,
        RunCause::Manual,
        params,
        None,
        0,
        now(),
    );
    run.started_by = who.to_string();
    Ok(run)
}

/// Queue `run` and answer: 202 with it at once, or with `wait`, 200 with the finished
/// run (202 with it as it is after [`MAX_WAIT_SECS`]).
pub(super) async fn enqueue_and_answer(state: &AppState, run: Run, wait: bool) -> ApiResult<Started<Run>> {
    let mut runs = state.engines.outbox.enqueue_runs(vec![run]).await?;
    let run = runs
        .pop()
        .ok_or_else(|| ApiError::internal("enqueue returned nothing"))?;
    if !wait {
        return Ok(Started::Queued(run));
    }
    let waited = tokio::time::timeout(
        std::time::Duration::from_secs(MAX_WAIT_SECS),
        state.engines.executor.wait(&run.id),
    )
    .await;
    match waited {
        Ok(Ok(done)) => Ok(Started::Finished(done)),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Ok(Started::Queued(state.store.run(&run.id)?.unwrap_or(run))),
    }
}

crate::extract::list_query! {
    /// `GET /v1/runs`.
    pub(super) struct RunQuery {
        /// Task id or name.
        task: Option<String>,
        /// Run status.
        #[schemars(with = "Option<sundial_core::run::RunStatus>")]
        status: Option<String>,
        /// What started the run.
        #[schemars(extend("enum" = ["manual", "schedule", "event", null], "type" = ["string", "null"]))]
        cause: Option<String>,
    }
    time = "Queued"
}

pub(super) fn check_time(field: &str, value: &Option<String>) -> ApiResult<Option<String>> {
    match value {
        None => Ok(None),
        Some(t) => sundial_core::timestamp::parse(t)
            .map(|d| Some(sundial_core::timestamp::text(d)))
            .map_err(|e| ApiError::bad_request(format!("{field}: {t:?} is not an RFC 3339 time: {e}"))),
    }
}

pub(super) async fn list(
    Reader(state, _): Reader,
    QueryParams(q): QueryParams<RunQuery>,
) -> ApiResult<Json<RunPage>> {
    let limit = crate::extract::Page::limit(q.limit, 50)?;
    if let Some(c) = &q.cursor
        && ulid::Ulid::from_string(c).is_err()
    {
        return Err(ApiError::bad_request(format!("cursor: {c:?} is not a run id")));
    }
    let filter = filter_of(
        &state,
        q.task.as_deref(),
        q.status.as_deref(),
        q.cause.as_deref(),
        &q.since,
        &q.until,
    )?;
    let (runs, next) = state.store.list_runs(&filter, q.cursor.as_deref(), limit)?;
    Ok(Json(RunPage {
        runs,
        next_cursor: next,
    }))
}

/// The run filter of a list or bulk request, each field checked. `task` is a task's
/// name or id; an id that is no task now (a deleted task's) still selects its runs,
/// anything else that names no task is 404.
pub(crate) fn filter_of(
    state: &AppState,
    task: Option<&str>,
    status: Option<&str>,
    cause: Option<&str>,
    since: &Option<String>,
    until: &Option<String>,
) -> ApiResult<RunFilter> {
    let status = match status {
        None => None,
        Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
            let all: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::bad_request(format!("status: {s:?} is not one of {}", all.join(", ")))
        })?),
    };
    if let Some(c) = cause
        && !["manual", "schedule", "event"].contains(&c)
    {
        return Err(ApiError::bad_request(format!(
            "cause: {c:?} is not one of manual, schedule, event"
        )));
    }
    let task_id = match task {
        None => None,
        Some(t) => match state.store.task(t)? {
            Some(found) => Some(found.id),
            None if ulid::Ulid::from_string(t).is_ok() => Some(t.to_string()),
            None => return Err(ApiError::not_found(format!("task {t:?} not found"))),
        },
    };
    Ok(RunFilter {
        task_id,
        status,
        cause: cause.map(str::to_string),
        since: check_time("since", since)?,
        until: check_time("until", until)?,
        error_contains: None,
    })
}

pub(super) async fn get(Reader(state, _): Reader, Path(id): Path<String>) -> ApiResult<Json<Run>> {
    state.store.run(&id)?.map(Json).found("run", &id)
}

pub(super) async fn cancel(Operator(state, _): Operator, Path(id): Path<String>) -> ApiResult<Json<Run>> {
    Ok(Json(cancel_run(&state, &id).await?))
}

/// Cancel a queued or running run; 409 when it already finished otherwise. (The API
/// and the dashboard cancel through here.)
pub(crate) async fn cancel_run(state: &AppState, id: &str) -> ApiResult<Run> {
    let run = state.engines.executor.cancel(id).await?;
    if run.status.is_terminal() && run.status != RunStatus::Cancelled {
        return Err(ApiError::conflict(format!(
            "run {id:?} already finished ({})",
            run.status.as_str()
        )));
    }
    Ok(run)
}

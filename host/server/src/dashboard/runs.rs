//! The task log: runs newest first, filtered by task, status, cause, time range and
//! text of the error (the filters stay in the URL), keyset paged; a lookup by run id or
//! event seq; bulk retry or cancel of what a filter matches; and one run with its
//! cause, retry chain, attempts, output, error, plugin log (live while it runs, see
//! [`super::tail`]) and resources.

use super::tasks::RunRow;
use super::{Act, Browser, Chrome, WithCsrf, page_error, render};
use crate::error::Found;
use crate::{ApiError, AppState};
use askama::Template;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use sundial_core::run::{Run, RunCause};
use sundial_store::runs::RunFilter;

/// Runs on one page of the log.
const PAGE: usize = 50;
/// Most runs of a retry chain the run page walks back through.
const MAX_CHAIN: usize = 20;

/// The log's filters, as the URL (and the bulk forms) carry them.
#[derive(Deserialize, Default, Clone)]
pub(super) struct Filters {
    /// Task name or id.
    #[serde(default)]
    task: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    cause: String,
    /// Queued at or after: RFC 3339, or `YYYY-MM-DDTHH:MM` in UTC (a date-time field).
    #[serde(default)]
    since: String,
    /// Queued before, as `since`.
    #[serde(default)]
    until: String,
    /// Text the run's error contains, any case.
    #[serde(default)]
    q: String,
}

/// The log's filters and position.
#[derive(Deserialize, Default)]
pub(super) struct RunQuery {
    #[serde(flatten)]
    filters: Filters,
    /// The last run id of the page before (newer runs).
    before: Option<String>,
}

impl Filters {
    /// The query string of these filters (without the position), for links.
    fn query(&self) -> String {
        let mut out = String::new();
        for (k, v) in self.pairs() {
            if !v.is_empty() {
                out.push_str(&format!("&{k}={}", sundial_core::address::percent_encode(v)));
            }
        }
        out
    }

    fn pairs(&self) -> [(&'static str, &String); 6] {
        [
            ("task", &self.task),
            ("status", &self.status),
            ("cause", &self.cause),
            ("since", &self.since),
            ("until", &self.until),
            ("q", &self.q),
        ]
    }

    /// No filter at all (a bulk action needs one).
    fn is_empty(&self) -> bool {
        self.pairs().iter().all(|(_, v)| v.trim().is_empty())
    }

    /// The store's filter, each field checked (400 naming the field).
    fn checked(&self, state: &AppState) -> Result<RunFilter, ApiError> {
        let mut filter = crate::runs::filter_of(
            state,
            given(&self.task),
            given(&self.status),
            given(&self.cause),
            &time_field(&self.since),
            &time_field(&self.until),
        )?;
        filter.error_contains = given(&self.q).map(str::to_lowercase);
        Ok(filter)
    }
}

/// `""` is no filter.
fn given(v: &str) -> Option<&str> {
    Some(v.trim()).filter(|v| !v.is_empty())
}

/// A time filter: RFC 3339 as given, or a date-time field's `YYYY-MM-DDTHH:MM` read
/// as UTC.
fn time_field(v: &str) -> Option<String> {
    let v = given(v)?;
    let local = v.len() == 16 && v.as_bytes().get(10) == Some(&b'T');
    Some(if local { format!("{v}:00Z") } else { v.to_string() })
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    chrome: Option<Chrome>,
    f: Filters,
    statuses: Vec<&'static str>,
    rows: Vec<RunRow>,
    next: Option<String>,
    filters: String,
    /// A bulk action may be offered: at least one filter.
    filtered: bool,
}

/// `GET /runs`.
pub(super) async fn list(browser: Browser, Query(q): Query<RunQuery>) -> Response {
    let state = &browser.state;
    let page = (|| -> Result<RunsPage, ApiError> {
        crate::extract::check_cursor(&q.before)?;
        let filter = q.filters.checked(state)?;
        let (runs, next) = state.store.list_runs(&filter, q.before.as_deref(), PAGE)?;
        Ok(RunsPage {
            chrome: Some(browser.chrome("runs")),
            statuses: sundial_core::run::RunStatus::ALL
                .iter()
                .map(|s| s.as_str())
                .collect(),
            rows: runs.iter().map(RunRow::of).collect(),
            next,
            filters: q.filters.query(),
            filtered: !q.filters.is_empty(),
            f: q.filters.clone(),
        })
    })();
    page.map_or_else(page_error, |p| render(&p))
}

/// The lookup form: a run id or an event's seq.
#[derive(Deserialize)]
pub(super) struct Lookup {
    #[serde(default)]
    id: String,
}

/// `GET /runs/find?id=`: to the run with that id, or to the event with that seq (which
/// lists what it started).
pub(super) async fn find(browser: Browser, Query(lookup): Query<Lookup>) -> Response {
    let state = &browser.state;
    let id = lookup.id.trim();
    let found = (|| -> Result<Option<String>, ApiError> {
        if id.is_empty() || id.len() > 128 {
            return Err(ApiError::bad_request(
                "id: give a run id or an event's seq (1-128 characters)",
            ));
        }
        if state.store.run(id)?.is_some() {
            return Ok(Some(format!("/runs/{id}")));
        }
        if state.store.event(id)?.is_some() {
            return Ok(Some(format!("/events/{id}")));
        }
        Ok(None)
    })();
    match found {
        Ok(Some(to)) => Redirect::to(&to).into_response(),
        Ok(None) => page_error(ApiError::not_found(format!(
            "no run and no event has the id {id:?}"
        ))),
        Err(e) => page_error(e),
    }
}

/// The bulk form: the filters, what to do, and whether it was confirmed.
#[derive(Deserialize)]
pub(super) struct BulkForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    filters: Filters,
    /// `retry` or `cancel`.
    #[serde(default)]
    action: String,
    /// `yes` once the page listing what would be done was confirmed.
    #[serde(default)]
    confirm: String,
}

impl WithCsrf for BulkForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Template)]
#[template(path = "bulk.html")]
struct BulkPage {
    chrome: Option<Chrome>,
    action: String,
    done: bool,
    f: Filters,
    filters: String,
    matched: usize,
    acted: usize,
    more: bool,
    limit: usize,
    runs: Vec<(String, String, String)>,
}

/// `POST /runs/bulk`: retry (finished runs) or cancel (queued and running ones) every
/// run matching the filters, at most [`crate::retry::MAX_BULK_LIMIT`]: first a page
/// listing what would be done, then, confirmed, done.
pub(super) async fn bulk(act: Act<BulkForm>) -> Response {
    let state = &act.browser.state;
    let form = &act.form;
    let result = async {
        if form.filters.is_empty() {
            return Err(ApiError::bad_request(
                "give at least one filter: a bulk action never takes every run",
            ));
        }
        let filter = form.filters.checked(state)?;
        let retry = match form.action.as_str() {
            "retry" => true,
            "cancel" => false,
            other => {
                return Err(ApiError::bad_request(format!(
                    "action: {other:?} is not retry or cancel"
                )));
            }
        };
        let eligible = if retry {
            sundial_core::run::RunStatus::is_terminal
        } else {
            crate::retry::unfinished
        };
        crate::retry::check_eligible(&filter, eligible, &form.action)?;
        let bulk = crate::retry::Bulk {
            filter,
            limit: crate::retry::MAX_BULK_LIMIT,
            dry_run: form.confirm != "yes",
        };
        if retry {
            crate::retry::retry_matching(state, &bulk, act.browser.caller.who()).await
        } else {
            crate::retry::cancel_matching(state, &bulk).await
        }
    };
    match result.await {
        Ok(answer) => render(&BulkPage {
            chrome: Some(act.browser.chrome("runs")),
            action: form.action.clone(),
            done: !answer.dry_run,
            filters: form.filters.query(),
            f: form.filters.clone(),
            matched: answer.matched,
            acted: answer.retried.or(answer.cancelled).unwrap_or(0),
            more: answer.more,
            limit: crate::retry::MAX_BULK_LIMIT,
            runs: answer
                .runs
                .iter()
                .take(PAGE)
                .map(|item| item.summary(!answer.dry_run))
                .collect(),
        }),
        Err(e) => page_error(e),
    }
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
    /// The cause in words and its links (schedule, event, trigger).
    cause_words: String,
    cause_links: Vec<(String, String)>,
    /// The runs this one retries, nearest first: (id, status).
    chain: Vec<(String, &'static str)>,
    /// The chain goes back further than shown.
    chain_more: bool,
    params: String,
    output: Option<String>,
    error: Option<String>,
    attempts: Vec<AttemptRow>,
    lines: Vec<LineRow>,
    truncated: bool,
    resources: String,
}

/// A serde enum as the word it serializes to (`info`, `plugin`).
pub(super) fn word<T: Serialize>(value: &T) -> String {
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
        let (cause_words, cause_links) = cause_of(&run);
        let (chain, chain_more) = chain_of(state, &run)?;
        Ok(RunPage {
            cause_words,
            cause_links,
            chain,
            chain_more,
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
        })
    })();
    page.map_or_else(page_error, |p| render(&p))
}

/// What started a run, in words, and links to what it names.
fn cause_of(run: &Run) -> (String, Vec<(String, String)>) {
    match &run.cause {
        RunCause::Manual => (format!("started by hand by {}", run.started_by), Vec::new()),
        RunCause::Schedule { schedule, slot, .. } => (
            format!("the slot {slot} of a schedule"),
            vec![(format!("/schedules/{schedule}"), format!("schedule {schedule}"))],
        ),
        RunCause::Event {
            event,
            trigger,
            timer,
        } => {
            let links = vec![(format!("/events/{event}"), format!("event {event}"))];
            let mut words = match trigger {
                Some(t) => format!("an event matched the trigger {t}"),
                None => "an event".to_string(),
            };
            if let Some(t) = timer {
                words.push_str(&format!(", after the timer {t}"));
            }
            (words, links)
        }
    }
}

/// The runs `run` retries, nearest first, at most [`MAX_CHAIN`]: (chain, more).
fn chain_of(state: &AppState, run: &Run) -> Result<(Vec<(String, &'static str)>, bool), ApiError> {
    let mut chain = Vec::new();
    let mut next = run.retry_of.clone();
    while let Some(id) = next {
        if chain.len() == MAX_CHAIN {
            return Ok((chain, true));
        }
        match state.store.run(&id)? {
            Some(earlier) => {
                next = earlier.retry_of.clone();
                chain.push((id, earlier.status.as_str()));
            }
            None => {
                chain.push((id, "pruned"));
                next = None;
            }
        }
    }
    Ok((chain, false))
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

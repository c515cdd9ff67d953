//! The tasks pages: the list (keyset paged, with each task's last run), one task (its
//! latest runs, its configuration) and its actions: run now, enable or disable, delete
//! after a confirmation. Actions need an operator or admin session and the session's
//! CSRF token.

use super::feeds::{self, Feeds};
use super::{Act, Browser, Chrome, message, page_error, refused, render};
use crate::resource::Resource;
use crate::tasks::Tasks;
use crate::{ApiError, AppState};
use askama::Template;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sundial_core::run::Run;
use sundial_store::runs::RunFilter;
use sundial_store::tasks::TaskRecord;

/// Tasks on one page of the list.
const PAGE: usize = 50;
/// Runs shown on a task's page.
const LATEST_RUNS: usize = 20;

/// A run as a table row.
pub(super) struct RunRow {
    pub(super) id: String,
    pub(super) status: &'static str,
    pub(super) cause: &'static str,
    pub(super) at: String,
    pub(super) error: String,
}

impl RunRow {
    pub(super) fn of(run: &Run) -> RunRow {
        RunRow {
            id: run.id.clone(),
            status: run.status.as_str(),
            cause: run.cause.kind(),
            at: run.queued_at.clone(),
            error: run.error.as_ref().map(|e| e.to_string()).unwrap_or_default(),
        }
    }
}

/// A task's last run, for the list.
struct LastRun {
    status: &'static str,
    at: String,
}

struct TaskRow {
    id: String,
    name: String,
    action: String,
    enabled: bool,
    last_run: Option<LastRun>,
    feeds: Feeds,
}

/// What a task runs, in words.
fn action(task: &TaskRecord) -> String {
    match &task.spec.webhook {
        Some(hook) => format!("webhook {hook}"),
        None => format!("plugin {}", task.spec.plugin),
    }
}

/// The latest `limit` runs of a task, newest first.
fn latest_runs(state: &AppState, task_id: &str, limit: usize) -> Result<Vec<Run>, ApiError> {
    let filter = RunFilter {
        task_id: Some(task_id.to_string()),
        ..RunFilter::default()
    };
    Ok(state.store.list_runs(&filter, None, limit)?.0)
}

#[derive(Template)]
#[template(path = "tasks.html")]
struct TasksPage {
    chrome: Option<Chrome>,
    rows: Vec<TaskRow>,
    next: Option<String>,
}

/// `?after=` of a list page: the last id of the page before.
#[derive(Deserialize)]
pub(super) struct After {
    pub(super) after: Option<String>,
}

/// `GET /tasks`.
pub(super) async fn list(browser: Browser, Query(q): Query<After>) -> Response {
    let state = &browser.state;
    let page = (|| -> Result<TasksPage, ApiError> {
        crate::extract::check_cursor(&q.after)?;
        let (tasks, next) = state.store.tasks_page(q.after.as_deref(), PAGE)?;
        let triggers = feeds::triggers(state)?;
        let mut rows = Vec::with_capacity(tasks.len());
        for task in tasks {
            let last_run = latest_runs(state, &task.id, 1)?.first().map(|r| LastRun {
                status: r.status.as_str(),
                at: r.queued_at.clone(),
            });
            rows.push(TaskRow {
                feeds: feeds::feeds(state, &task, &triggers)?,
                action: action(&task),
                id: task.id,
                name: task.spec.name,
                enabled: task.spec.enabled,
                last_run,
            });
        }
        Ok(TasksPage {
            chrome: Some(browser.chrome("tasks")),
            rows,
            next,
        })
    })();
    page.map_or_else(page_error, |p| render(&p))
}

#[derive(Template)]
#[template(path = "task.html")]
struct TaskPage {
    chrome: Option<Chrome>,
    id: String,
    name: String,
    action: String,
    enabled: bool,
    rows: Vec<RunRow>,
    config: String,
    feeds: Feeds,
}

/// `GET /tasks/{id}` (an id or a name).
pub(super) async fn show(browser: Browser, Path(key): Path<String>) -> Response {
    let state = &browser.state;
    let page = (|| -> Result<TaskPage, ApiError> {
        let task = Tasks::get(state, &key)?;
        let runs = latest_runs(state, &task.id, LATEST_RUNS)?;
        Ok(TaskPage {
            feeds: feeds::feeds(state, &task, &feeds::triggers(state)?)?,
            chrome: Some(browser.chrome("tasks")),
            action: action(&task),
            config: serde_json::to_string_pretty(&task.spec).unwrap_or_default(),
            id: task.id,
            name: task.spec.name,
            enabled: task.spec.enabled,
            rows: runs.iter().map(RunRow::of).collect(),
        })
    })();
    page.map_or_else(page_error, |p| render(&p))
}

/// The new-task form.
#[derive(Deserialize, Default)]
pub(super) struct NewTaskForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    plugin: String,
    #[serde(default)]
    description: String,
    /// The task's params as JSON text (empty: none).
    #[serde(default)]
    params: String,
}

impl super::WithCsrf for NewTaskForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Template)]
#[template(path = "task_new.html")]
struct NewTaskPage {
    chrome: Option<Chrome>,
    plugins: Vec<String>,
    form: NewTaskForm,
    error: Option<String>,
}

/// The installed action plugins, by name.
fn action_plugins(state: &AppState) -> Result<Vec<String>, ApiError> {
    Ok(state
        .store
        .plugins()?
        .into_iter()
        .filter(|p| p.world == sundial_core::plugin::World::Action)
        .map(|p| p.name)
        .collect())
}

/// `GET /tasks/new`: the form (operators and admins).
pub(super) async fn new_task(browser: Browser) -> Response {
    if !browser.may_change() {
        return refused("your role reads; it may not create tasks");
    }
    match action_plugins(&browser.state) {
        Ok(plugins) => render(&NewTaskPage {
            chrome: Some(browser.chrome("tasks")),
            plugins,
            form: NewTaskForm::default(),
            error: None,
        }),
        Err(e) => page_error(e),
    }
}

/// `POST /tasks`: create the task as the API does (the same checks), then to it; a
/// refusal shows the form again with what was typed and why.
pub(super) async fn create(act: Act<NewTaskForm>) -> Response {
    let state = &act.browser.state;
    let form = &act.form;
    let created = async {
        let mut spec = serde_json::json!({
            "name": form.name.trim(),
            "plugin": form.plugin.trim(),
            "description": form.description,
        });
        if !form.params.trim().is_empty() {
            spec["params"] = sundial_core::json::parse_str(form.params.trim())
                .map_err(|e| ApiError::bad_request(format!("params: not JSON: {e}")))?;
        }
        // Through the API's own parser: the same defaults and the same messages.
        let body = bytes::Bytes::from(spec.to_string());
        let spec = crate::parse_json(&axum::http::HeaderMap::new(), &body)?;
        let spec = Tasks::check(state, spec, None)?;
        Tasks::insert(state, spec, act.browser.caller.who()).await
    };
    match created.await {
        Ok(task) => Redirect::to(&format!("/tasks/{}", task.id)).into_response(),
        Err(e) => {
            let page = NewTaskPage {
                chrome: Some(act.browser.chrome("tasks")),
                plugins: action_plugins(state).unwrap_or_default(),
                form: NewTaskForm {
                    csrf: String::new(),
                    name: form.name.clone(),
                    plugin: form.plugin.clone(),
                    description: form.description.clone(),
                    params: form.params.clone(),
                },
                error: Some(e.message),
            };
            (e.status, render(&page)).into_response()
        }
    }
}

/// `POST /tasks/{id}/run`: queue a manual run, then back to the task.
pub(super) async fn run_now(Path(key): Path<String>, act: Act) -> Response {
    let queued = async {
        let task = Tasks::get(&act.browser.state, &key)?;
        let params = match act.form.params.trim() {
            "" => None,
            text => Some(
                sundial_core::json::parse_str(text)
                    .map_err(|e| ApiError::bad_request(format!("params: not JSON: {e}")))?,
            ),
        };
        let run = crate::runs::manual_run(&task, params, act.browser.caller.who())?;
        let state = &act.browser.state;
        state
            .admission
            .check_queue(state.engines.outbox.queue().backlog())?;
        state.engines.outbox.enqueue_runs(vec![run]).await?;
        Ok::<_, ApiError>(task.id)
    };
    match queued.await {
        Ok(id) => Redirect::to(&format!("/tasks/{id}")).into_response(),
        Err(e) => page_error(e),
    }
}

/// `POST /tasks/{id}/enable` and `/disable`.
pub(super) async fn toggle(Path((key, verb)): Path<(String, String)>, act: Act) -> Response {
    let enabled = match verb.as_str() {
        "enable" => true,
        "disable" => false,
        _ => return message(StatusCode::NOT_FOUND, "Not found", "no such action on a task"),
    };
    match Tasks::toggle(&act.browser.state, &key, enabled, act.browser.caller.who()).await {
        Ok(task) => Redirect::to(&format!("/tasks/{}", task.id)).into_response(),
        Err(e) => page_error(e),
    }
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    chrome: Option<Chrome>,
    title: String,
    question: String,
    action: String,
    confirm: &'static str,
    back: String,
}

/// `GET /tasks/{id}/delete`: ask first.
pub(super) async fn confirm_delete(browser: Browser, Path(key): Path<String>) -> Response {
    let state = &browser.state;
    if !browser.may_change() {
        return refused("your role reads; it may not delete tasks");
    }
    match Tasks::get(state, &key) {
        Ok(task) => render(&ConfirmPage {
            chrome: Some(browser.chrome("tasks")),
            title: format!("Delete task {}?", task.spec.name),
            question: "Its runs stay in the task log until retention removes them; schedules and triggers stop starting it.".into(),
            action: format!("/tasks/{}/delete", task.id),
            confirm: "Delete the task",
            back: format!("/tasks/{}", task.id),
        }),
        Err(e) => page_error(e),
    }
}

/// `POST /tasks/{id}/delete`.
pub(super) async fn delete(Path(key): Path<String>, act: Act) -> Response {
    match Tasks::delete(&act.browser.state, &key, act.browser.caller.who()).await {
        Ok(()) => Redirect::to("/tasks").into_response(),
        Err(e) => page_error(e),
    }
}

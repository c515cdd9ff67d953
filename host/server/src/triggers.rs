//! `/v1/triggers` (event pattern → tasks: create, list, get, update, enable, disable,
//! delete) and `/v1/timers` (pending delayed targets: list, cancel).

use super::{ApiError, ApiResult, AppState, Operator, Reader};
use crate::extract::{Page, QueryParams};
use crate::resource::Resource;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sundial_core::trigger::{Target, TriggerSpec};
use sundial_store::timers::Timer;
use sundial_store::triggers::TriggerRecord;

/// Resolve the schedule and target task and webhook names to ids (404 naming an unknown
/// one) and validate.
fn resolve(state: &AppState, mut spec: TriggerSpec) -> ApiResult<TriggerSpec> {
    spec.compile("").map_err(ApiError::invalid_field)?;
    if let Some(schedule) = &mut spec.on.schedule {
        let record = state
            .store
            .schedule(schedule)?
            .ok_or_else(|| ApiError::not_found(format!("on.schedule: schedule {schedule:?} not found")))?;
        *schedule = record.id;
    }
    for (i, name) in spec.calendars.iter().enumerate() {
        if state.store.calendar(name)?.is_none() {
            return Err(ApiError::not_found(format!(
                "calendars[{i}]: calendar {name:?} not found"
            )));
        }
    }
    let mut ids = Vec::with_capacity(spec.targets.len());
    for (i, target) in spec.targets.iter_mut().enumerate() {
        let id = if let Some(task) = &mut target.task {
            let record = state
                .store
                .task(task)?
                .ok_or_else(|| ApiError::not_found(format!("targets[{i}].task: task {task:?} not found")))?;
            *task = record.id.clone();
            record.id
        } else if let Some(hook) = &mut target.webhook {
            let record = state.store.webhook(hook)?.ok_or_else(|| {
                ApiError::not_found(format!("targets[{i}].webhook: webhook {hook:?} not found"))
            })?;
            *hook = record.id.clone();
            record.id
        } else {
            continue;
        };
        if ids.contains(&id) {
            return Err(ApiError::invalid_field(format!("targets[{i}]: listed twice")));
        }
        ids.push(id);
    }
    Ok(spec)
}

/// A trigger as the API shows it: spec fields (targets with names) plus id and
/// timestamps.
fn view(state: &AppState, record: &TriggerRecord) -> ApiResult<Value> {
    let mut v = serde_json::to_value(&record.spec).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut targets = Vec::new();
    for Target { task, webhook } in &record.spec.targets {
        if let Some(task) = task {
            let name = state.store.task(task)?.map(|t| t.spec.name);
            targets.push(json!({ "task": name.clone().unwrap_or_else(|| task.clone()), "task_id": task, "missing": name.is_none() }));
        }
        if let Some(hook) = webhook {
            let name = state.store.webhook(hook)?.map(|w| w.spec.name);
            targets.push(json!({ "webhook": name.clone().unwrap_or_else(|| hook.clone()), "webhook_id": hook, "missing": name.is_none() }));
        }
    }
    if let Value::Object(m) = &mut v {
        if let Some(id) = &record.spec.on.schedule {
            let name = state.store.schedule(id)?.map(|s| s.spec.name);
            let mut on = json!({ "schedule": name.clone().unwrap_or_else(|| id.clone()), "schedule_id": id,
                                 "missing": name.is_none() });
            if let Some(filter) = &record.spec.on.filter {
                on["filter"] = filter.clone();
            }
            m.insert("on".into(), on);
        }
        m.insert("targets".into(), Value::Array(targets));
        m.insert("id".into(), json!(record.id));
        m.insert("created_at".into(), json!(record.created_at));
        m.insert("updated_at".into(), json!(record.updated_at));
    }
    Ok(v)
}

/// The trigger noun. Changes go through the router, which keeps its index of
/// triggers in step.
pub(crate) struct Triggers;

impl Resource for Triggers {
    type Record = TriggerRecord;
    type Spec = TriggerSpec;
    type View = Value;
    const NOUN: &'static str = "trigger";
    const PLURAL: &'static str = "triggers";
    const FIXED: &'static [&'static str] = &["id", "created_at", "updated_at"];

    crate::resource::store_accessors!(TriggerRecord, trigger, triggers_page);

    fn check(state: &AppState, spec: TriggerSpec, _: Option<&TriggerRecord>) -> ApiResult<TriggerSpec> {
        resolve(state, spec)
    }

    async fn insert(state: &AppState, spec: TriggerSpec, who: &str) -> ApiResult<TriggerRecord> {
        let stamp = sundial_core::timestamp::now();
        let record = TriggerRecord {
            id: sundial_core::ids::new_id(),
            created_at: stamp.clone(),
            updated_at: stamp,
            spec,
        };
        Ok(state.engines.router().create_trigger(record, who).await?)
    }

    async fn update(state: &AppState, id: &str, spec: TriggerSpec, who: &str) -> ApiResult<TriggerRecord> {
        Ok(state.engines.router().update_trigger(id, spec, who).await?.1)
    }

    async fn toggle(state: &AppState, key: &str, enabled: bool, who: &str) -> ApiResult<TriggerRecord> {
        crate::resource::toggle_checked::<Self>(state, key, enabled, who).await
    }

    async fn delete(state: &AppState, key: &str, who: &str) -> ApiResult<()> {
        state.engines.router().delete_trigger(key, who).await?;
        Ok(())
    }

    fn view(state: &AppState, record: TriggerRecord) -> ApiResult<Value> {
        view(state, &record)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TimerQuery {
    trigger: Option<String>,
    task: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// `GET /v1/timers`: one page of pending delayed targets, soonest first.
#[derive(Serialize)]
pub(super) struct TimerPage {
    timers: Vec<Timer>,
    next_cursor: Option<String>,
}

pub(super) async fn timers(
    State(state): State<AppState>,
    _: Reader,
    QueryParams(q): QueryParams<TimerQuery>,
) -> ApiResult<Json<TimerPage>> {
    let page = Page::new(q.limit, q.cursor)?;
    let trigger = match &q.trigger {
        Some(t) => Some(Triggers::get(&state, t)?.id),
        None => None,
    };
    let task = match &q.task {
        Some(t) => Some(
            state
                .store
                .task(t)?
                .map(|t| t.id)
                .ok_or_else(|| ApiError::not_found(format!("task {t:?} not found")))?,
        ),
        None => None,
    };
    let (timers, next_cursor) = state.store.timers_page(
        trigger.as_deref(),
        task.as_deref(),
        page.cursor.as_deref(),
        page.limit,
    )?;
    Ok(Json(TimerPage { timers, next_cursor }))
}

pub(super) async fn cancel_timer(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.cancel_timer(&id, caller.who()).await?;
    Ok(StatusCode::NO_CONTENT)
}

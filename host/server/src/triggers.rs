//! `/v1/triggers` (event pattern → tasks: create, list, get, update, enable, disable,
//! delete) and `/v1/timers` (pending delayed targets: list, cancel).

use super::{ApiError, ApiResult, AppState, Operator, Reader};
use crate::answer::Deleted;
use crate::error::Found;
use crate::extract::{Page, QueryParams};
use crate::resource::Resource;
use axum::Json;
use axum::extract::Path;
use serde::Serialize;
use serde_json::Value;
use sundial_core::schedule::spec::Excluded;
use sundial_core::trigger::{EventPattern, Target, TriggerSpec};
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

/// A trigger as the API shows it: its spec with names where the spec stores ids (each
/// with the id beside it, and `missing` when the thing is gone), plus id and timestamps.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct TriggerView {
    /// Unique name.
    name: String,
    /// Free text.
    description: String,
    /// Disabled triggers match nothing.
    enabled: bool,
    /// The events it reacts to.
    on: OnView,
    /// What it starts.
    targets: Vec<TargetView>,
    /// Merged over each target task's params.
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<Value>,
    /// How long after the event its targets start.
    #[serde(skip_serializing_if = "Option::is_none")]
    delay: Option<String>,
    /// Calendars whose excluded windows it starts nothing in.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    calendars: Vec<String>,
    /// What an event in an excluded window does.
    #[serde(skip_serializing_if = "is_skip")]
    excluded: Excluded,
    /// Id (ULID).
    id: String,
    /// Created, RFC 3339.
    created_at: String,
    /// Last changed, RFC 3339.
    updated_at: String,
}

fn is_skip(e: &Excluded) -> bool {
    *e == Excluded::Skip
}

/// The event pattern, with the schedule's name (and its id) when it reacts to one.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(transform = crate::openapi::open_object)]
pub(crate) struct OnView {
    /// The pattern (`schedule` is the schedule's name).
    #[serde(flatten)]
    pattern: EventPattern,
    /// The schedule's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule_id: Option<String>,
    /// True when the schedule is gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    missing: Option<bool>,
}

/// A target by name, with its id; `missing` when it is gone (the name is then the id).
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct TargetView {
    /// The task's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<String>,
    /// The task's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    task_id: Option<String>,
    /// The webhook's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook: Option<String>,
    /// The webhook's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_id: Option<String>,
    /// True when the task or webhook is gone.
    missing: bool,
}

/// A trigger as the API shows it.
fn view(state: &AppState, record: TriggerRecord) -> ApiResult<TriggerView> {
    let TriggerSpec {
        name,
        description,
        enabled,
        mut on,
        targets,
        context,
        delay,
        calendars,
        excluded,
    } = record.spec;
    let mut shown = Vec::with_capacity(targets.len());
    for Target { task, webhook } in targets {
        if let Some(id) = task {
            let name = state.store.task(&id)?.map(|t| t.spec.name);
            shown.push(TargetView {
                missing: name.is_none(),
                task: Some(name.unwrap_or_else(|| id.clone())),
                task_id: Some(id),
                webhook: None,
                webhook_id: None,
            });
        }
        if let Some(id) = webhook {
            let name = state.store.webhook(&id)?.map(|w| w.spec.name);
            shown.push(TargetView {
                missing: name.is_none(),
                task: None,
                task_id: None,
                webhook: Some(name.unwrap_or_else(|| id.clone())),
                webhook_id: Some(id),
            });
        }
    }
    let (mut schedule_id, mut missing) = (None, None);
    if let Some(id) = on.schedule.take() {
        let name = state.store.schedule(&id)?.map(|s| s.spec.name);
        missing = Some(name.is_none());
        on.schedule = Some(name.unwrap_or_else(|| id.clone()));
        schedule_id = Some(id);
    }
    Ok(TriggerView {
        name,
        description,
        enabled,
        on: OnView {
            pattern: on,
            schedule_id,
            missing,
        },
        targets: shown,
        context,
        delay,
        calendars,
        excluded,
        id: record.id,
        created_at: record.created_at,
        updated_at: record.updated_at,
    })
}

/// The trigger noun. Changes go through the router, which keeps its index of
/// triggers in step.
pub(crate) struct Triggers;

impl Resource for Triggers {
    type Record = TriggerRecord;
    type Spec = TriggerSpec;
    type View = TriggerView;
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

    fn view(state: &AppState, record: TriggerRecord) -> ApiResult<TriggerView> {
        view(state, record)
    }
}

crate::extract::list_query! {
    /// `GET /v1/timers`.
    pub(super) struct TimerQuery {
        /// Only timers of this trigger (id or name).
        trigger: Option<String>,
        /// Only timers of this task (id or name).
        task: Option<String>,
    }
}

/// `GET /v1/timers`: one page of pending delayed targets, soonest first.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct TimerPage {
    timers: Vec<Timer>,
    next_cursor: Option<String>,
}

pub(super) async fn timers(
    Reader(state, _): Reader,
    QueryParams(q): QueryParams<TimerQuery>,
) -> ApiResult<Json<TimerPage>> {
    let page = Page::new(q.limit, q.cursor)?;
    let trigger = match &q.trigger {
        Some(t) => Some(Triggers::get(&state, t)?.id),
        None => None,
    };
    let task = match &q.task {
        Some(t) => Some(state.store.task(t)?.map(|t| t.id).found("task", &t)?),
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
    Operator(state, caller): Operator,
    Path(id): Path<String>,
) -> ApiResult<Deleted> {
    state.store.cancel_timer(&id, caller.who()).await?;
    Ok(Deleted)
}

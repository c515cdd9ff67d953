//! `/v1/schedules`: create, list, get, update, pause, resume, delete (refused while it
//! drives tasks unless `?force=true`), attach and detach tasks, and previews of saved and
//! unsaved rules.

use super::{ApiError, ApiResult, AppState, Operator, Reader};
use crate::answer::Deleted;
use crate::extract::{JsonBody, QueryParams};
use crate::resource::Resource;
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sundial_core::schedule::spec::ScheduleSpec;
use sundial_core::schedule::{Rule, Timing};
use sundial_store::schedules::ScheduleRecord;

/// Most fire times one preview returns.
pub const MAX_PREVIEW: usize = 1440;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PreviewRequest {
    rule: Rule,
    /// Default: the daemon's zone.
    #[serde(default)]
    timezone: String,
    #[serde(default, with = "sundial_core::timestamp::serde_millis_opt")]
    #[schemars(with = "Option<chrono::DateTime<chrono::Utc>>")]
    start: Option<DateTime<Utc>>,
    #[serde(default, with = "sundial_core::timestamp::serde_millis_opt")]
    #[schemars(with = "Option<chrono::DateTime<chrono::Utc>>")]
    end: Option<DateTime<Utc>>,
    /// Fire times after this instant (default: now).
    #[serde(default, with = "sundial_core::timestamp::serde_millis_opt")]
    #[schemars(with = "Option<chrono::DateTime<chrono::Utc>>")]
    from: Option<DateTime<Utc>>,
    /// How many (1-1440, default 10).
    #[schemars(range(min = 1, max = 1440))]
    count: Option<usize>,
}

pub(super) async fn preview(
    Reader(state, _): Reader,
    JsonBody(mut req): JsonBody<PreviewRequest>,
) -> ApiResult<Json<Preview>> {
    if req.timezone.is_empty() {
        req.timezone = state.default_timezone.clone();
    }
    let count = req.count.unwrap_or(10);
    if !(1..=MAX_PREVIEW).contains(&count) {
        return Err(ApiError::bad_request(format!(
            "count: {count} is outside 1..={MAX_PREVIEW}"
        )));
    }
    let now = state.engines.scheduler.clock().now();
    let from = req.from.unwrap_or(now);
    let timing = Timing::new(&req.rule, &req.timezone, req.start.unwrap_or(from), req.end, now)
        .map_err(ApiError::bad_request)?;
    let summary =
        sundial_core::schedule::words::describe(&req.rule, &req.timezone, req.start.unwrap_or(from));
    Ok(Json(Preview::new(req.timezone, summary, &timing, from, count)))
}

/// The next fire times of a rule, in UTC and in its zone, with DST notes.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Preview {
    timezone: String,
    /// The rule in words.
    summary: String,
    slots: Vec<PreviewSlot>,
}

/// One fire time of a preview.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct PreviewSlot {
    utc: String,
    local: String,
    dst: Option<sundial_core::schedule::zone::DstNote>,
}

impl Preview {
    fn new(timezone: String, summary: String, timing: &Timing, from: DateTime<Utc>, count: usize) -> Preview {
        let slots = timing
            .preview(from, count)
            .into_iter()
            .map(|s| PreviewSlot {
                utc: sundial_core::timestamp::text(s.at),
                local: s.local,
                dst: s.dst,
            })
            .collect();
        Preview {
            timezone,
            summary,
            slots,
        }
    }
}

/// A schedule as the API shows it: its spec's fields, id and timestamps, the attached
/// tasks, the last and next slot and the rule in words.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(transform = crate::openapi::open_object)]
pub(crate) struct ScheduleView {
    /// The spec's fields.
    #[serde(flatten)]
    pub(crate) spec: ScheduleSpec,
    /// Id (ULID).
    pub(crate) id: String,
    /// Created, RFC 3339.
    pub(crate) created_at: String,
    /// Last changed, RFC 3339.
    pub(crate) updated_at: String,
    /// The last slot that fired or was recorded missed, UTC.
    pub(crate) last_slot: Option<String>,
    /// The next fire, UTC (null when paused or done).
    pub(crate) next_slot: Option<String>,
    /// The next fire on the schedule's wall clock, with its offset.
    pub(crate) next_slot_local: Option<String>,
    /// The rule in words, in the schedule's zone, e.g. `every week on Mon-Fri at 18:00
    /// (Europe/Berlin)`.
    pub(crate) summary: String,
    /// Ids of the attached tasks.
    pub(crate) tasks: Vec<String>,
    /// Their names, in the same order.
    pub(crate) task_names: Vec<String>,
}

/// A stored schedule's start (`now` when it has none) and its timing over all time.
pub(crate) fn timing(spec: &ScheduleSpec, now: DateTime<Utc>) -> (DateTime<Utc>, Result<Timing, String>) {
    let start = spec.start.unwrap_or(now);
    let timing = Timing::new(
        &spec.rule,
        &spec.timezone,
        start,
        spec.end,
        DateTime::<Utc>::MIN_UTC,
    );
    (start, timing)
}

/// A schedule's next slot after `now` (none when paused, ended or invalid).
pub(crate) fn next_slot(record: &ScheduleRecord, now: DateTime<Utc>) -> Option<sundial_core::schedule::Slot> {
    let (_, timing) = timing(&record.spec, now);
    timing
        .ok()
        .filter(|_| record.spec.enabled)
        .and_then(|t| t.next_after(record.last_slot.unwrap_or(now).max(now)))
}

/// A schedule as the API shows it.
fn view(state: &AppState, record: ScheduleRecord) -> ApiResult<ScheduleView> {
    let now = state.engines.scheduler.clock().now();
    let next = next_slot(&record, now);
    let start = record.spec.start.unwrap_or(now);
    let summary = sundial_core::schedule::words::describe(&record.spec.rule, &record.spec.timezone, start);
    let tasks = state.store.schedule_tasks(&record.id)?;
    let mut task_names = Vec::with_capacity(tasks.len());
    for id in &tasks {
        task_names.push(
            state
                .store
                .task(id)?
                .map(|t| t.spec.name)
                .unwrap_or_else(|| id.clone()),
        );
    }
    Ok(ScheduleView {
        id: record.id,
        created_at: record.created_at,
        updated_at: record.updated_at,
        last_slot: record.last_slot.map(sundial_core::timestamp::text),
        next_slot: next.as_ref().map(|s| sundial_core::timestamp::text(s.at)),
        next_slot_local: next.map(|s| s.local),
        summary,
        tasks,
        task_names,
        spec: record.spec,
    })
}

/// Every calendar a schedule names must exist (404 naming the first that does not).
fn check_calendars(state: &AppState, spec: &ScheduleSpec) -> ApiResult<()> {
    for (i, name) in spec.calendars.iter().enumerate() {
        if state.store.calendar(name)?.is_none() {
            return Err(ApiError::not_found(format!(
                "calendars[{i}]: calendar {name:?} not found"
            )));
        }
    }
    Ok(())
}

/// The schedule noun. Changes go through the scheduler, which keeps its due times in
/// step; pause and resume are disable and enable.
pub(crate) struct Schedules;

impl Resource for Schedules {
    type Record = ScheduleRecord;
    type Spec = ScheduleSpec;
    type View = ScheduleView;
    const NOUN: &'static str = "schedule";
    const PLURAL: &'static str = "schedules";
    const FIXED: &'static [&'static str] = sundial_core::schedule::spec::VIEW_FIELDS;

    crate::resource::store_accessors!(ScheduleRecord, schedule, schedules_page);

    /// The daemon's zone where none is named; a new schedule starts now unless told;
    /// the rule is checked against the clock (a rule already active may have an `at`
    /// in the past, so a change checks it only when the rule changes).
    fn check(
        state: &AppState,
        mut spec: ScheduleSpec,
        current: Option<&ScheduleRecord>,
    ) -> ApiResult<ScheduleSpec> {
        if spec.timezone.is_empty() {
            spec.timezone = state.default_timezone.clone();
        }
        let now = state.engines.scheduler.clock().now();
        let now = match current {
            None => {
                spec.start = Some(spec.start.unwrap_or(now));
                now
            }
            Some(current) if spec.rule == current.spec.rule => DateTime::<Utc>::MIN_UTC,
            Some(_) => now,
        };
        spec.timing(now).map_err(|e| ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_field",
            message: e.to_string(),
        })?;
        check_calendars(state, &spec)?;
        Ok(spec)
    }

    async fn insert(state: &AppState, spec: ScheduleSpec, who: &str) -> ApiResult<ScheduleRecord> {
        let stamp = sundial_core::timestamp::now();
        let record = ScheduleRecord {
            id: sundial_core::ids::new_id(),
            created_at: stamp.clone(),
            updated_at: stamp,
            spec,
            last_slot: None,
        };
        Ok(state.engines.scheduler.create_schedule(record, who).await?)
    }

    async fn update(state: &AppState, id: &str, spec: ScheduleSpec, who: &str) -> ApiResult<ScheduleRecord> {
        Ok(state.engines.scheduler.update_schedule(id, spec, who).await?.1)
    }

    async fn toggle(state: &AppState, key: &str, enabled: bool, who: &str) -> ApiResult<ScheduleRecord> {
        crate::resource::toggle_checked::<Self>(state, key, enabled, who).await
    }

    async fn delete(state: &AppState, key: &str, who: &str) -> ApiResult<()> {
        state.engines.scheduler.delete_schedule(key, false, who).await?;
        Ok(())
    }

    fn view(state: &AppState, record: ScheduleRecord) -> ApiResult<ScheduleView> {
        view(state, record)
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteQuery {
    /// Detach its tasks and delete.
    #[serde(default)]
    force: bool,
}

pub(super) async fn delete(
    Operator(state, caller): Operator,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<DeleteQuery>,
) -> ApiResult<Deleted> {
    state
        .engines
        .scheduler
        .delete_schedule(&id, q.force, caller.who())
        .await?;
    Ok(Deleted)
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AttachRequest {
    task: String,
}

/// The tasks a schedule drives (ids).
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct LinkedTasks {
    tasks: Vec<String>,
}

pub(super) async fn tasks(Reader(state, _): Reader, Path(id): Path<String>) -> ApiResult<Json<LinkedTasks>> {
    let record = Schedules::get(&state, &id)?;
    Ok(Json(LinkedTasks {
        tasks: state.store.schedule_tasks(&record.id)?,
    }))
}

pub(super) async fn attach(
    Operator(state, caller): Operator,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<AttachRequest>,
) -> ApiResult<Json<LinkedTasks>> {
    let tasks = state.store.link_task(&id, &req.task, true, caller.who()).await?;
    Ok(Json(LinkedTasks { tasks }))
}

pub(super) async fn detach(
    Operator(state, caller): Operator,
    Path((id, task)): Path<(String, String)>,
) -> ApiResult<Json<LinkedTasks>> {
    let tasks = state.store.link_task(&id, &task, false, caller.who()).await?;
    Ok(Json(LinkedTasks { tasks }))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PreviewQuery {
    /// How many, 1-1440. Default 10.
    #[schemars(range(min = 1, max = 1440))]
    count: Option<usize>,
    #[serde(default, with = "sundial_core::timestamp::serde_millis_opt")]
    #[schemars(with = "Option<chrono::DateTime<chrono::Utc>>")]
    from: Option<DateTime<Utc>>,
}

pub(super) async fn preview_saved(
    Reader(state, _): Reader,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<PreviewQuery>,
) -> ApiResult<Json<Preview>> {
    let record = Schedules::get(&state, &id)?;
    let count = q.count.unwrap_or(10);
    if !(1..=MAX_PREVIEW).contains(&count) {
        return Err(ApiError::bad_request(format!(
            "count: {count} is outside 1..={MAX_PREVIEW}"
        )));
    }
    let (start, timing) = timing(&record.spec, state.engines.scheduler.clock().now());
    let timing = timing.map_err(ApiError::bad_request)?;
    let summary = sundial_core::schedule::words::describe(&record.spec.rule, &record.spec.timezone, start);
    let from = q.from.unwrap_or_else(|| state.engines.scheduler.clock().now());
    Ok(Json(Preview::new(
        record.spec.timezone,
        summary,
        &timing,
        from,
        count,
    )))
}

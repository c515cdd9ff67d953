//! `GET /v1/upcoming`: the agenda of the next hours, every schedule's fires and every
//! pending timer merged (see [`sundial_core::schedule::agenda`]).

use super::{ApiError, ApiResult, Reader};
use crate::error::Found;
use crate::extract::QueryParams;
use axum::Json;
use serde::Deserialize;
use sundial_core::schedule::agenda::{Pending, Scheduled, agenda};

/// Window by default: 24 hours.
pub const DEFAULT_HOURS: u32 = 24;
/// Longest window: 31 days (744 hours).
pub const MAX_HOURS: u32 = 744;
/// Entries by default: 200; at most 10 000.
pub const DEFAULT_LIMIT: usize = 200;
const MAX_LIMIT: usize = 10_000;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpcomingQuery {
    /// Window, 1-744 hours. Default 24.
    #[schemars(range(min = 1, max = 744))]
    hours: Option<u32>,
    /// Only what starts this task (name or id).
    task: Option<String>,
    /// Most entries, 1-10000. Default 200.
    #[schemars(range(min = 1, max = 10000))]
    limit: Option<usize>,
}

pub(super) async fn upcoming(
    Reader(state, _): Reader,
    QueryParams(q): QueryParams<UpcomingQuery>,
) -> ApiResult<Json<sundial_core::schedule::agenda::Agenda>> {
    let hours = q.hours.unwrap_or(DEFAULT_HOURS);
    if !(1..=MAX_HOURS).contains(&hours) {
        return Err(ApiError::bad_request(format!(
            "hours: {hours} is outside 1..={MAX_HOURS}"
        )));
    }
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: {limit} is outside 1..={MAX_LIMIT}"
        )));
    }
    let task = match &q.task {
        None => None,
        Some(t) => Some(state.store.task(t)?.found("task", &t)?),
    };
    let mut records = Vec::new();
    let mut names: std::collections::HashMap<String, String> = Default::default();
    let mut cursor: Option<String> = None;
    loop {
        let (page, next) = state.store.schedules_page(cursor.as_deref(), 1000)?;
        for record in page {
            let ids = state.store.schedule_tasks(&record.id)?;
            if task.as_ref().is_some_and(|t| !ids.contains(&t.id)) {
                continue;
            }
            let mut tasks = Vec::with_capacity(ids.len());
            for id in ids {
                if !names.contains_key(&id) {
                    let name = state
                        .store
                        .task(&id)?
                        .map(|t| t.spec.name)
                        .unwrap_or_else(|| id.clone());
                    names.insert(id.clone(), name);
                }
                tasks.push(names[&id].clone());
            }
            records.push((record, tasks));
        }
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let mut timers = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let task_id = task.as_ref().map(|t| t.id.as_str());
        let (page, next) = state.store.timers_page(None, task_id, cursor.as_deref(), 1000)?;
        timers.extend(page);
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let scheduled: Vec<Scheduled<'_>> = records
        .iter()
        .map(|(r, tasks)| Scheduled {
            spec: &r.spec,
            last_slot: r.last_slot,
            tasks: tasks.clone(),
        })
        .collect();
    let pending: Vec<Pending<'_>> = timers
        .iter()
        .map(|t| Pending {
            id: &t.id,
            due: t.due,
            trigger: &t.trigger_name,
            task: t.webhook.is_none().then_some(t.task_name.as_str()),
            webhook: t.webhook.as_ref().map(|w| w.name.as_str()),
        })
        .collect();
    let now = state.engines.scheduler.clock().now();
    let until = now + chrono::Duration::hours(i64::from(hours));
    let mut a = agenda(&scheduled, &pending, now, until, limit);
    // Slots in calendars' excluded windows or maintenance say what will happen.
    let by_name: std::collections::HashMap<&str, &sundial_core::schedule::spec::ScheduleSpec> = records
        .iter()
        .map(|(r, _)| (r.spec.name.as_str(), &r.spec))
        .collect();
    for e in a.entries.iter_mut().filter(|e| e.kind == "schedule") {
        let (Some(spec), Ok(at)) = (
            by_name.get(e.name.as_str()),
            sundial_core::timestamp::parse(&e.at),
        ) else {
            continue;
        };
        let Ok(tz) = sundial_core::schedule::zone::parse_tz(&spec.timezone) else {
            continue;
        };
        if let Some(w) = state
            .engines
            .scheduler
            .exclusions()
            .window(at, &spec.name, tz, &spec.calendars)
        {
            e.excluded = Some(match spec.excluded {
                sundial_core::schedule::spec::Excluded::Skip => format!("skipped: {}", w.reason),
                sundial_core::schedule::spec::Excluded::Defer => {
                    format!(
                        "deferred to {}: {}",
                        sundial_core::timestamp::text(w.end),
                        w.reason
                    )
                }
            });
        }
    }
    Ok(Json(a))
}

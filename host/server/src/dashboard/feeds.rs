//! What feeds a task and what it notifies: the schedules that drive it (with their
//! next fire), the triggers that start it (with the events they match), and the
//! webhooks it notifies, for the tasks list and the graph on a task's page.

use crate::ApiError;
use crate::AppState;
use sundial_core::task::NotifyOn;
use sundial_store::tasks::TaskRecord;
use sundial_store::triggers::TriggerRecord;

/// Most triggers read to find those that start a task.
pub(super) const MAX_TRIGGERS: usize = 1000;

/// A schedule that drives a task.
pub(super) struct FeedingSchedule {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) summary: String,
    /// Its next fire on its own wall clock, if any.
    pub(super) next: Option<String>,
    /// The same instant in UTC, for ordering.
    next_utc: Option<chrono::DateTime<chrono::Utc>>,
}

/// A trigger that starts a task: its name and the events it matches, in words.
pub(super) struct FeedingTrigger {
    pub(super) name: String,
    pub(super) on: String,
    pub(super) delay: String,
}

/// A webhook a task notifies, and on which endings.
pub(super) struct Notified {
    pub(super) webhook: String,
    pub(super) on: String,
}

/// What feeds one task, and what it notifies.
pub(super) struct Feeds {
    pub(super) schedules: Vec<FeedingSchedule>,
    pub(super) triggers: Vec<FeedingTrigger>,
    pub(super) notifies: Vec<Notified>,
}

impl Feeds {
    /// The soonest next fire among its schedules, on that schedule's wall clock.
    pub(super) fn next_fire(&self) -> Option<&str> {
        self.schedules
            .iter()
            .filter_map(|s| Some((s.next_utc?, s.next.as_deref()?)))
            .min_by_key(|(utc, _)| *utc)
            .map(|(_, local)| local)
    }
}

/// The triggers to look through (the first [`MAX_TRIGGERS`]).
pub(super) fn triggers(state: &AppState) -> Result<Vec<TriggerRecord>, ApiError> {
    Ok(state.store.triggers_page(None, MAX_TRIGGERS)?.0)
}

/// The events a trigger matches, in words: `type x.later, source /a`.
fn pattern(t: &TriggerRecord) -> String {
    let on = &t.spec.on;
    let parts: Vec<String> = [
        ("type", &on.kind),
        ("schedule", &on.schedule),
        ("source", &on.source),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
    .collect();
    if parts.is_empty() {
        "any event".into()
    } else {
        parts.join(", ")
    }
}

/// What feeds `task` among `triggers`, and what it notifies.
pub(super) fn feeds(
    state: &AppState,
    task: &TaskRecord,
    triggers: &[TriggerRecord],
) -> Result<Feeds, ApiError> {
    let now = state.engines.scheduler.clock().now();
    let mut schedules = Vec::new();
    for id in state.store.task_schedules(&task.id)? {
        let Some(record) = state.store.schedule(&id)? else {
            continue;
        };
        let next = crate::schedules::next_slot(&record, now);
        let start = record.spec.start.unwrap_or(now);
        schedules.push(FeedingSchedule {
            summary: sundial_core::schedule::words::describe(&record.spec.rule, &record.spec.timezone, start),
            next_utc: next.as_ref().map(|s| s.at),
            next: next.map(|s| s.local),
            name: record.spec.name,
            id: record.id,
        });
    }
    let starts_it = |t: &&TriggerRecord| {
        t.spec.targets.iter().any(|target| {
            target
                .task
                .as_deref()
                .is_some_and(|k| k == task.id || k == task.spec.name)
        })
    };
    let triggers = triggers
        .iter()
        .filter(starts_it)
        .map(|t| FeedingTrigger {
            name: t.spec.name.clone(),
            on: pattern(t),
            delay: t.spec.delay.clone().unwrap_or_default(),
        })
        .collect();
    let notifies = task
        .spec
        .notify
        .iter()
        .map(|n| Notified {
            webhook: n.webhook.clone(),
            on: n
                .on
                .iter()
                .map(|o| match o {
                    NotifyOn::Succeeded => "succeeded",
                    NotifyOn::Failed => "failed",
                })
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    Ok(Feeds {
        schedules,
        triggers,
        notifies,
    })
}

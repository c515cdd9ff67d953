//! Retention: keeps the task log bounded. Every interval, each task's finished runs
//! beyond its `retention.keep_last` (or the global default) and those older than its
//! `retention.max_age_days` (or the global default) are deleted. Queued and running
//! runs are never deleted; runs of deleted tasks follow the global defaults.

use std::time::Duration;
use sundial_store::{SharedStore, StoreError};

/// Global retention defaults, used where a task sets none.
#[derive(Debug, Clone, Copy)]
pub struct RetentionDefaults {
    /// Finished runs kept per task. Default 1000.
    pub keep_last: u32,
    /// Finished runs older than this many days are deleted. Default 30.
    pub max_age_days: u32,
    /// Events kept in the event log. Default 100 000.
    pub keep_events: u32,
    /// Events older than this many days are deleted. Default 30.
    pub max_event_age_days: u32,
    /// How often retention runs, in milliseconds. Default 60 000.
    pub interval_ms: u64,
}

impl Default for RetentionDefaults {
    fn default() -> Self {
        RetentionDefaults {
            keep_last: 1000,
            max_age_days: 30,
            keep_events: 100_000,
            max_event_age_days: 30,
            interval_ms: 60_000,
        }
    }
}

/// Apply retention once to every task's runs and to the event log; returns how many
/// runs and events were deleted.
pub async fn prune_once(store: &SharedStore, defaults: RetentionDefaults) -> Result<usize, StoreError> {
    let mut deleted = 0;
    for task_id in store.tasks_with_runs()? {
        let policy = store
            .task(&task_id)?
            .map(|t| t.spec.retention)
            .unwrap_or_default();
        let keep = policy.keep_last.unwrap_or(defaults.keep_last) as usize;
        let days = policy.max_age_days.unwrap_or(defaults.max_age_days);
        let cutoff =
            sundial_core::timestamp::text(chrono::Utc::now() - chrono::Duration::days(i64::from(days)));
        deleted += store.prune_runs(&task_id, keep, cutoff).await?;
    }
    let cutoff = sundial_core::timestamp::text(
        chrono::Utc::now() - chrono::Duration::days(i64::from(defaults.max_event_age_days)),
    );
    loop {
        let n = store
            .prune_events(defaults.keep_events as usize, cutoff.clone())
            .await?;
        deleted += n;
        if n < 100_000 {
            break;
        }
    }
    Ok(deleted)
}

/// Run [`prune_once`] every `defaults.interval_ms` in the background.
pub fn spawn_pruner(store: SharedStore, defaults: RetentionDefaults) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(defaults.interval_ms.max(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match prune_once(&store, defaults).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "retention pruned runs"),
                Err(StoreError::Closed) => break,
                Err(e) => tracing::warn!("retention failed: {e}"),
            }
        }
    });
}

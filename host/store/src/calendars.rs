//! Calendars (by name) and maintenance windows (by id), with audit entries in the same
//! commit.

use super::tables::{get_existing, get_json, pick_json, put_json};
use super::{Store, StoreError, audit};
use crate::schema::*;
use async_trait::async_trait;
use redb::ReadableTable;
use sundial_core::calendar::{CalendarSpec, Maintenance};

/// Ended maintenance windows are kept this long, then dropped: 30 days.
pub(crate) const KEEP_ENDED_DAYS: i64 = 30;

/// Calendars and maintenance windows.
#[async_trait]
pub trait CalendarStore: Send + Sync {
    /// Create (`create`) or replace a calendar (validated by the caller). Returns the
    /// one it replaced.
    async fn put_calendar(
        &self,
        spec: CalendarSpec,
        create: bool,
        actor: &str,
    ) -> Result<Option<CalendarSpec>, StoreError>;

    /// One calendar.
    fn calendar(&self, name: &str) -> Result<Option<CalendarSpec>, StoreError>;

    /// Every calendar, by name (unreadable ones skipped).
    fn calendars(&self) -> Result<Vec<CalendarSpec>, StoreError>;

    /// Delete a calendar; refused (409) while schedules name it.
    async fn delete_calendar(&self, name: &str, actor: &str) -> Result<CalendarSpec, StoreError>;

    /// Store a maintenance window (windows ended long ago are dropped in the same commit).
    async fn add_maintenance(
        &self,
        m: Maintenance,
        now: chrono::DateTime<chrono::Utc>,
        actor: &str,
    ) -> Result<Maintenance, StoreError>;

    /// Every maintenance window, oldest first.
    fn maintenance(&self) -> Result<Vec<Maintenance>, StoreError>;

    /// End a maintenance window at `now` (one not started yet ends before it starts).
    async fn end_maintenance(
        &self,
        id: &str,
        now: chrono::DateTime<chrono::Utc>,
        actor: &str,
    ) -> Result<Maintenance, StoreError>;
}

#[async_trait]
impl CalendarStore for Store {
    async fn put_calendar(
        &self,
        spec: CalendarSpec,
        create: bool,
        actor: &str,
    ) -> Result<Option<CalendarSpec>, StoreError> {
        let actor = actor.to_string();
        self.write(move |txn| {
            let mut t = txn.open_table(CALENDARS)?;
            let before: Option<CalendarSpec> = get_json(&t, &spec.name)?;
            match (&before, create) {
                (Some(_), true) => {
                    return Err(StoreError::Conflict(format!(
                        "calendar {:?} already exists",
                        spec.name
                    )));
                }
                (None, false) => {
                    return Err(StoreError::NotFound(format!(
                        "calendar {:?} not found",
                        spec.name
                    )));
                }
                _ => {}
            }
            put_json(&mut t, &spec.name, &spec)?;
            let action = if create { "create" } else { "update" };
            audit::record(
                txn,
                &actor,
                action,
                "calendar",
                &spec.name,
                before.as_ref(),
                Some(&spec),
            )?;
            Ok(before)
        })
        .await
    }

    fn calendar(&self, name: &str) -> Result<Option<CalendarSpec>, StoreError> {
        self.get_record(CALENDARS, name)
    }

    fn calendars(&self) -> Result<Vec<CalendarSpec>, StoreError> {
        self.all_records(CALENDARS)
    }

    async fn delete_calendar(&self, name: &str, actor: &str) -> Result<CalendarSpec, StoreError> {
        let name = name.to_string();
        let actor = actor.to_string();
        self.write(move |txn| {
            let mut t = txn.open_table(CALENDARS)?;
            let before: CalendarSpec = get_existing(&t, "calendar", &name)?;
            let mut users = pick_json(&txn.open_table(SCHEDULES)?, |s| {
                s.spec
                    .calendars
                    .contains(&name)
                    .then(|| format!("schedule {}", s.spec.name))
            })?;
            users.extend(pick_json(&txn.open_table(TRIGGERS)?, |t| {
                t.spec
                    .calendars
                    .contains(&name)
                    .then(|| format!("trigger {}", t.spec.name))
            })?);
            if !users.is_empty() {
                return Err(StoreError::Conflict(format!(
                    "calendar {name:?} is used by {}; take it out of them first",
                    users.join(", ")
                )));
            }
            t.remove(name.as_str())?;
            audit::deleted(txn, &actor, "calendar", &name, &before)?;
            Ok(before)
        })
        .await
    }

    async fn add_maintenance(
        &self,
        m: Maintenance,
        now: chrono::DateTime<chrono::Utc>,
        actor: &str,
    ) -> Result<Maintenance, StoreError> {
        let actor = actor.to_string();
        self.write(move |txn| {
            let mut t = txn.open_table(MAINTENANCE)?;
            let cutoff = now - chrono::Duration::days(KEEP_ENDED_DAYS);
            let mut old = Vec::new();
            for entry in t.iter()? {
                let (k, v) = entry?;
                if let Ok(w) = v.value().decode()
                    && w.until < cutoff
                {
                    old.push(k.value().to_string());
                }
            }
            for k in old {
                t.remove(k.as_str())?;
            }
            put_json(&mut t, &m.id, &m)?;
            audit::created(txn, &actor, "maintenance", &m.id, &m)?;
            Ok(m)
        })
        .await
    }

    fn maintenance(&self) -> Result<Vec<Maintenance>, StoreError> {
        self.all_records(MAINTENANCE)
    }

    async fn end_maintenance(
        &self,
        id: &str,
        now: chrono::DateTime<chrono::Utc>,
        actor: &str,
    ) -> Result<Maintenance, StoreError> {
        let id = id.to_string();
        let actor = actor.to_string();
        self.write(move |txn| {
            let mut t = txn.open_table(MAINTENANCE)?;
            let before: Maintenance = get_existing(&t, "maintenance window", &id)?;
            if before.until <= now {
                return Err(StoreError::Conflict(format!(
                    "maintenance window {id:?} already ended"
                )));
            }
            let mut after = before.clone();
            after.until = now.max(after.from);
            put_json(&mut t, &id, &after)?;
            audit::updated(txn, &actor, "maintenance", &id, &before, &after)?;
            Ok(after)
        })
        .await
    }
}

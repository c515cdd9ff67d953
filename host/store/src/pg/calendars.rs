//! Calendars (by name) and maintenance windows (by id) on PostgreSQL, with audit
//! entries in the same transaction.

use super::records::Keyed;
use super::{PgStore, audit, db_error, decode_listed, encode, exec, rows};
use crate::StoreError;
use crate::calendars::{CalendarStore, KEEP_ENDED_DAYS};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sundial_core::calendar::{CalendarSpec, Maintenance};

/// Calendars by name.
const CALENDARS: Keyed = Keyed {
    table: "calendars",
    key: "name",
    noun: "calendar",
};

/// Maintenance windows by id.
const MAINTENANCE: Keyed = Keyed {
    table: "maintenance",
    key: "id",
    noun: "maintenance window",
};

#[async_trait]
impl CalendarStore for PgStore {
    async fn put_calendar(
        &self,
        spec: CalendarSpec,
        create: bool,
        actor: &str,
    ) -> Result<Option<CalendarSpec>, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        exec(
            &t,
            "SELECT pg_advisory_xact_lock(hashtext('calendar:' || $1))",
            &[&spec.name],
        )
        .await?;
        let before: Option<CalendarSpec> = CALENDARS.get(&t, &spec.name, true).await?;
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
        exec(
            &t,
            "INSERT INTO calendars (name, doc) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET doc = excluded.doc",
            &[&spec.name, &encode(&spec)?],
        )
        .await?;
        super::listen::notify(&t, "calendars").await?;
        let action = if create { "create" } else { "update" };
        audit::record(
            &t,
            actor,
            action,
            "calendar",
            &spec.name,
            before.as_ref(),
            Some(&spec),
        )
        .await?;
        self.commit(t).await?;
        Ok(before)
    }

    fn calendar(&self, name: &str) -> Result<Option<CalendarSpec>, StoreError> {
        self.block(async { CALENDARS.get(&self.client().await?, name, false).await })
    }

    fn calendars(&self) -> Result<Vec<CalendarSpec>, StoreError> {
        self.block(async { CALENDARS.all(&self.client().await?).await })
    }

    async fn delete_calendar(&self, name: &str, actor: &str) -> Result<CalendarSpec, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let before: CalendarSpec = CALENDARS.load(&t, name).await?;
        let mut users = Vec::new();
        for r in rows(&t, "SELECT id, doc FROM schedules ORDER BY id", &[]).await? {
            let s: Option<crate::schedules::ScheduleRecord> = decode_listed("schedules", r.get(0), r.get(1));
            if let Some(s) = s.filter(|s| s.spec.calendars.iter().any(|c| c == name)) {
                users.push(format!("schedule {}", s.spec.name));
            }
        }
        for r in rows(&t, "SELECT id, doc FROM triggers ORDER BY id", &[]).await? {
            let tr: Option<crate::triggers::TriggerRecord> = decode_listed("triggers", r.get(0), r.get(1));
            if let Some(tr) = tr.filter(|tr| tr.spec.calendars.iter().any(|c| c == name)) {
                users.push(format!("trigger {}", tr.spec.name));
            }
        }
        if !users.is_empty() {
            return Err(StoreError::Conflict(format!(
                "calendar {name:?} is used by {}; take it out of them first",
                users.join(", ")
            )));
        }
        CALENDARS.delete(&t, name).await?;
        super::listen::notify(&t, "calendars").await?;
        audit::deleted(&t, actor, "calendar", name, &before).await?;
        self.commit(t).await?;
        Ok(before)
    }

    async fn add_maintenance(
        &self,
        m: Maintenance,
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<Maintenance, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let cutoff = now - chrono::Duration::days(KEEP_ENDED_DAYS);
        let mut old = Vec::new();
        for r in rows(&t, "SELECT id, doc FROM maintenance FOR UPDATE", &[]).await? {
            let id: String = r.get(0);
            if let Ok(w) = crate::tables::decode::<Maintenance>(r.get::<_, &str>(1).as_bytes())
                && w.until < cutoff
            {
                old.push(id);
            }
        }
        for id in old {
            MAINTENANCE.delete(&t, &id).await?;
        }
        exec(
            &t,
            "INSERT INTO maintenance (id, doc) VALUES ($1, $2)",
            &[&m.id, &encode(&m)?],
        )
        .await?;
        super::listen::notify(&t, "calendars").await?;
        audit::created(&t, actor, "maintenance", &m.id, &m).await?;
        self.commit(t).await?;
        Ok(m)
    }

    fn maintenance(&self) -> Result<Vec<Maintenance>, StoreError> {
        self.block(async { MAINTENANCE.all(&self.client().await?).await })
    }

    async fn end_maintenance(
        &self,
        id: &str,
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<Maintenance, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let before: Maintenance = MAINTENANCE.load(&t, id).await?;
        if before.until <= now {
            return Err(StoreError::Conflict(format!(
                "maintenance window {id:?} already ended"
            )));
        }
        let mut after = before.clone();
        after.until = now.max(after.from);
        exec(
            &t,
            "UPDATE maintenance SET doc = $2 WHERE id = $1",
            &[&id, &encode(&after)?],
        )
        .await?;
        super::listen::notify(&t, "calendars").await?;
        audit::updated(&t, actor, "maintenance", id, &before, &after).await?;
        self.commit(t).await?;
        Ok(after)
    }
}

//! Named records on PostgreSQL: a table `(id text PRIMARY KEY, name text UNIQUE, doc
//! text)` per noun, with create / rename / delete and an audit entry in the same
//! transaction, as [`crate::named`] does on redb. Tasks, schedules, triggers and
//! webhooks are stored through it.

use super::{PgStore, audit, db_error, decode_listed, decode_one, encode, exec, limit_plus_one, row, rows};
use crate::StoreError;
use crate::named::NamedRecord;
use crate::tables::Paged;
use deadpool_postgres::GenericClient;

/// A noun stored as named records in `table`.
#[derive(Clone, Copy)]
pub(crate) struct PgNamed {
    /// The table: `tasks`, `schedules`, `triggers`, `webhooks`.
    pub table: &'static str,
    /// The noun, for messages and audit entries ("trigger").
    pub noun: &'static str,
}

impl PgNamed {
    /// The record `key` (an id or a name; a name wins) with its id, locked for the rest
    /// of the transaction when `lock`.
    pub async fn find<T: NamedRecord>(
        &self,
        c: &impl GenericClient,
        key: &str,
        lock: bool,
    ) -> Result<Option<T>, StoreError> {
        let sql = format!(
            "SELECT id, doc FROM {} WHERE name = $1 OR id = $1 ORDER BY (name = $1) DESC LIMIT 1{}",
            self.table,
            if lock { " FOR UPDATE" } else { "" }
        );
        match row(c, &sql, &[&key]).await? {
            None => Ok(None),
            Some(r) => {
                let (id, doc): (String, String) = (r.get(0), r.get(1));
                decode_one(self.table, &id, &doc).map(Some)
            }
        }
    }

    /// [`PgNamed::find`] with a lock, or not found.
    pub async fn load<T: NamedRecord>(&self, c: &impl GenericClient, key: &str) -> Result<T, StoreError> {
        self.find(c, key, true)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("{} {key:?} not found", self.noun)))
    }

    /// Insert `record` (its name must be free) and audit it.
    pub async fn create<T: NamedRecord>(
        &self,
        c: &impl GenericClient,
        record: &T,
        actor: &str,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO {} (id, name, doc) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            self.table
        );
        let inserted = exec(c, &sql, &[&record.id(), &record.name(), &encode(record)?]).await?;
        if inserted == 0 {
            return Err(self.taken(record.name()));
        }
        super::listen::notify(c, self.table).await?;
        audit::created(c, actor, self.noun, record.id(), record).await
    }

    fn taken(&self, name: &str) -> StoreError {
        StoreError::Conflict(format!("{} {name:?} already exists", self.noun))
    }

    /// Write `after` over the record `before` (stamped by the caller), moving its name,
    /// and audit the change.
    pub async fn replace<T: NamedRecord>(
        &self,
        c: &impl GenericClient,
        before: &T,
        after: &T,
        actor: &str,
    ) -> Result<(), StoreError> {
        if after.name() != before.name() {
            let sql = format!("SELECT 1 FROM {} WHERE name = $1 AND id <> $2", self.table);
            if row(c, &sql, &[&after.name(), &after.id()]).await?.is_some() {
                return Err(self.taken(after.name()));
            }
        }
        let sql = format!("UPDATE {} SET name = $2, doc = $3 WHERE id = $1", self.table);
        exec(c, &sql, &[&after.id(), &after.name(), &encode(after)?])
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => self.taken(after.name()),
                other => other,
            })?;
        super::listen::notify(c, self.table).await?;
        audit::updated(c, actor, self.noun, after.id(), before, after).await
    }

    /// Change the record `key` names: `change` edits a copy, which is stamped `now`
    /// and replaces the record. Returns (before, after).
    pub async fn update<T: NamedRecord>(
        &self,
        c: &impl GenericClient,
        key: &str,
        now: String,
        actor: &str,
        change: impl FnOnce(&mut T) -> Result<(), StoreError>,
    ) -> Result<(T, T), StoreError> {
        let before: T = self.load(c, key).await?;
        let mut after = before.clone();
        change(&mut after)?;
        after.stamp(now);
        self.replace(c, &before, &after, actor).await?;
        Ok((before, after))
    }

    /// Delete `record` and audit it.
    pub async fn delete<T: NamedRecord>(
        &self,
        c: &impl GenericClient,
        record: &T,
        actor: &str,
    ) -> Result<(), StoreError> {
        let sql = format!("DELETE FROM {} WHERE id = $1", self.table);
        exec(c, &sql, &[&record.id()]).await?;
        super::listen::notify(c, self.table).await?;
        audit::deleted(c, actor, self.noun, record.id(), record).await
    }

    /// Up to `limit` readable records with ids after `after`, oldest first, and the
    /// cursor for more.
    pub async fn page<T: NamedRecord>(
        &self,
        c: &impl GenericClient,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Paged<T>, StoreError> {
        let sql = format!(
            "SELECT id, doc FROM {} WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2",
            self.table
        );
        let found = rows(c, &sql, &[&after, &limit_plus_one(limit)]).await?;
        let more = found.len() > limit;
        let mut out = Vec::new();
        let mut last = None;
        for r in found.into_iter().take(limit) {
            let (id, doc): (String, String) = (r.get(0), r.get(1));
            if let Some(record) = decode_listed(self.table, &id, &doc) {
                out.push(record);
            }
            last = Some(id);
        }
        Ok((out, if more { last } else { None }))
    }
}

/// What every named noun's store does alike, one transaction each.
impl PgStore {
    /// One record by id or name.
    pub(crate) fn get_named<T: NamedRecord>(
        &self,
        named: PgNamed,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        self.block(async {
            let client = self.client().await?;
            named.find(&client, key, false).await
        })
    }

    /// A page of records.
    pub(crate) fn page_named<T: NamedRecord>(
        &self,
        named: PgNamed,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Paged<T>, StoreError> {
        self.block(async {
            let client = self.client().await?;
            named.page(&client, after, limit).await
        })
    }

    /// Create `record` (its name must be free).
    pub(crate) async fn insert_named<T: NamedRecord + Sync>(
        &self,
        named: PgNamed,
        record: T,
        actor: &str,
    ) -> Result<T, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        named.create(&t, &record, actor).await?;
        self.commit(t).await?;
        Ok(record)
    }

    /// Change the record `key` names (see [`PgNamed::update`]).
    pub(crate) async fn update_named<T: NamedRecord + Sync>(
        &self,
        named: PgNamed,
        key: &str,
        now: String,
        actor: &str,
        change: impl FnOnce(&mut T) -> Result<(), StoreError> + Send,
    ) -> Result<(T, T), StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let changed = named.update(&t, key, now, actor, change).await?;
        self.commit(t).await?;
        Ok(changed)
    }

    /// Delete the record `key` names; returns it.
    pub(crate) async fn delete_named<T: NamedRecord + Sync>(
        &self,
        named: PgNamed,
        key: &str,
        actor: &str,
    ) -> Result<T, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let record: T = named.load(&t, key).await?;
        named.delete(&t, &record, actor).await?;
        self.commit(t).await?;
        Ok(record)
    }
}

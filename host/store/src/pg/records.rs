//! Keyed JSON records: the tables whose rows are a key and a `doc` (plugins, secrets,
//! calendars, maintenance windows), read one by key, all, or a page in key order.
//! Table and key column names come from this crate only, never from input.

use super::{decode_listed, decode_one, limit_plus_one, row, rows};
use crate::StoreError;
use crate::tables::Paged;
use deadpool_postgres::GenericClient;
use serde::de::DeserializeOwned;

/// A table of keyed records.
#[derive(Clone, Copy)]
pub(crate) struct Keyed {
    /// The table.
    pub table: &'static str,
    /// Its key column.
    pub key: &'static str,
    /// The noun, for "not found".
    pub noun: &'static str,
}

impl Keyed {
    /// The record `key`, locked for the transaction when `lock`; one that does not
    /// decode is unreadable.
    pub async fn get<T: DeserializeOwned>(
        &self,
        c: &impl GenericClient,
        key: &str,
        lock: bool,
    ) -> Result<Option<T>, StoreError> {
        let sql = format!(
            "SELECT doc FROM {} WHERE {} = $1{}",
            self.table,
            self.key,
            if lock { " FOR UPDATE" } else { "" }
        );
        match row(c, &sql, &[&key]).await? {
            Some(r) => decode_one(self.table, key, r.get(0)).map(Some),
            None => Ok(None),
        }
    }

    /// [`Keyed::get`] locked, or `{noun} {key:?} not found`.
    pub async fn load<T: DeserializeOwned>(
        &self,
        c: &impl GenericClient,
        key: &str,
    ) -> Result<T, StoreError> {
        self.get(c, key, true)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("{} {key:?} not found", self.noun)))
    }

    /// Every readable record, in key order.
    pub async fn all<T: DeserializeOwned>(&self, c: &impl GenericClient) -> Result<Vec<T>, StoreError> {
        let sql = format!("SELECT {0}, doc FROM {1} ORDER BY {0}", self.key, self.table);
        Ok(rows(c, &sql, &[])
            .await?
            .iter()
            .filter_map(|r| decode_listed(self.table, r.get(0), r.get(1)))
            .collect())
    }

    /// Up to `limit` readable records with keys after `after`, in key order, and the
    /// last key as the cursor when more remain.
    pub async fn page<T: DeserializeOwned>(
        &self,
        c: &impl GenericClient,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Paged<T>, StoreError> {
        let sql = format!(
            "SELECT {0}, doc FROM {1} WHERE ($1::text IS NULL OR {0} > $1) ORDER BY {0} LIMIT $2",
            self.key, self.table
        );
        let found = rows(c, &sql, &[&after, &limit_plus_one(limit)]).await?;
        let more = found.len() > limit;
        let mut page = Vec::new();
        let mut last = None;
        for r in found.iter().take(limit) {
            let key: String = r.get(0);
            if let Some(record) = decode_listed(self.table, &key, r.get(1)) {
                page.push(record);
            }
            last = Some(key);
        }
        Ok((page, if more { last } else { None }))
    }

    /// Delete the record `key`; true when there was one.
    pub async fn delete(&self, c: &impl GenericClient, key: &str) -> Result<bool, StoreError> {
        let sql = format!("DELETE FROM {} WHERE {} = $1", self.table, self.key);
        Ok(super::exec(c, &sql, &[&key]).await? > 0)
    }
}

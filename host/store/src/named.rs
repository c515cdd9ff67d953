//! Named records: a JSON table keyed by id plus a unique name → id index, with
//! create / rename / delete and an audit entry in the same transaction. Tasks,
//! schedules, triggers and webhooks are stored through it.

use super::StoreError;
use super::audit;
use super::tables::{Json, get_json, put_json};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A noun stored as named records of type `T`.
pub struct Named<T: 'static> {
    /// id → record.
    pub records: TableDefinition<'static, &'static str, Json<'static, T>>,
    /// name → id.
    pub names: TableDefinition<'static, &'static str, &'static str>,
    /// The noun, for messages and audit entries ("trigger").
    pub noun: &'static str,
}

impl<T: 'static> Clone for Named<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: 'static> Copy for Named<T> {}

impl<T: Serialize + DeserializeOwned + 'static> Named<T> {
    /// The id `key` (an id or a name) stands for.
    pub fn resolve(
        &self,
        names: &impl ReadableTable<&'static str, &'static str>,
        key: &str,
    ) -> Result<String, StoreError> {
        Ok(names
            .get(key)?
            .map(|v| v.value().to_string())
            .unwrap_or_else(|| key.to_string()))
    }

    /// Read one record by id or name.
    pub fn get(&self, txn: &redb::ReadTransaction, key: &str) -> Result<Option<T>, StoreError> {
        let (Ok(records), Ok(names)) = (txn.open_table(self.records), txn.open_table(self.names)) else {
            return Ok(None);
        };
        get_json(&records, &self.resolve(&names, key)?)
    }

    /// Up to `limit` records with ids after `after`, oldest first, and the cursor for more.
    pub fn page(
        &self,
        txn: &redb::ReadTransaction,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<T>, Option<String>), StoreError> {
        let Ok(records) = txn.open_table(self.records) else {
            return Ok((Vec::new(), None));
        };
        use redb::TableHandle;
        super::tables::page_json(&records, self.records.name(), after, limit)
    }

    /// Load one record by id or name inside a write, or fail with not found.
    pub fn load(&self, txn: &WriteTransaction, key: &str) -> Result<(String, T), StoreError> {
        let id = self.resolve(&txn.open_table(self.names)?, key)?;
        let record = get_json(&txn.open_table(self.records)?, &id)?
            .ok_or_else(|| StoreError::NotFound(format!("{} {key:?} not found", self.noun)))?;
        Ok((id, record))
    }

    /// Create a record; the name must be free.
    pub fn create(
        &self,
        txn: &WriteTransaction,
        id: &str,
        name: &str,
        record: &T,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut names = txn.open_table(self.names)?;
        if names.get(name)?.is_some() {
            return Err(StoreError::Conflict(format!(
                "{} {name:?} already exists",
                self.noun
            )));
        }
        names.insert(name, id)?;
        put_json(&mut txn.open_table(self.records)?, id, record)?;
        audit::record(txn, actor, "create", self.noun, id, None::<&()>, Some(record))
    }

    /// Replace a record, moving its name if it changed (the new name must be free).
    #[allow(clippy::too_many_arguments)]
    pub fn replace(
        &self,
        txn: &WriteTransaction,
        id: &str,
        old_name: &str,
        before: &T,
        new_name: &str,
        after: &T,
        actor: &str,
    ) -> Result<(), StoreError> {
        if new_name != old_name {
            let mut names = txn.open_table(self.names)?;
            if names.get(new_name)?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "{} {new_name:?} already exists",
                    self.noun
                )));
            }
            names.remove(old_name)?;
            names.insert(new_name, id)?;
        }
        put_json(&mut txn.open_table(self.records)?, id, after)?;
        audit::record(txn, actor, "update", self.noun, id, Some(before), Some(after))
    }

    /// Delete a record and its name.
    pub fn delete(
        &self,
        txn: &WriteTransaction,
        id: &str,
        name: &str,
        record: &T,
        actor: &str,
    ) -> Result<(), StoreError> {
        txn.open_table(self.names)?.remove(name)?;
        txn.open_table(self.records)?.remove(id)?;
        audit::record(txn, actor, "delete", self.noun, id, Some(record), None::<&()>)
    }
}

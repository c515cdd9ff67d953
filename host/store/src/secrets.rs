//! Secrets as stored: sealed values by name (see `crate::sealing`). The audit log
//! records that a secret was set or deleted, never its value.

use super::tables::{Paged, get_existing, get_json, page_json, put_json};
use super::{Store, StoreError, audit};
use crate::schema::*;
use crate::sealing::Sealed;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A stored secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRecord {
    /// Its name.
    pub name: String,
    /// Created, RFC 3339.
    pub created_at: String,
    /// Last set, RFC 3339.
    pub updated_at: String,
    /// Length of the value in bytes.
    pub size: usize,
    /// The sealed value.
    pub sealed: Sealed,
}

/// What the API and the audit log show of a secret: everything but the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SecretInfo {
    /// Its name.
    pub name: String,
    /// Created, RFC 3339.
    pub created_at: String,
    /// Last set, RFC 3339.
    pub updated_at: String,
    /// Length of the value in bytes.
    pub size: usize,
}

impl SecretRecord {
    /// The record without its value.
    pub fn info(&self) -> SecretInfo {
        SecretInfo {
            name: self.name.clone(),
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
            size: self.size,
        }
    }
}

/// Sealed secrets, by name.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Create or replace a secret. Returns its info and whether it was new.
    async fn put_secret(
        &self,
        mut record: SecretRecord,
        actor: &str,
    ) -> Result<(SecretInfo, bool), StoreError>;

    /// One secret by name.
    fn secret(&self, name: &str) -> Result<Option<SecretRecord>, StoreError>;

    /// Every secret's name and sealed value (to check the key at start).
    fn sealed_secrets(&self) -> Result<Vec<(String, crate::sealing::Sealed)>, StoreError>;

    /// Every secret's info, by name.
    fn secrets(&self) -> Result<Vec<SecretInfo>, StoreError>;

    /// Up to `limit` secrets' info by name after `after`, and the name to continue after.
    fn secrets_page(&self, after: Option<&str>, limit: usize) -> Result<Paged<SecretInfo>, StoreError>;

    /// Delete a secret.
    async fn delete_secret(&self, name: &str, actor: &str) -> Result<SecretInfo, StoreError>;
}

#[async_trait]
impl SecretStore for Store {
    async fn put_secret(
        &self,
        mut record: SecretRecord,
        actor: &str,
    ) -> Result<(SecretInfo, bool), StoreError> {
        let actor = actor.to_string();
        self.write(move |txn| {
            let mut table = txn.open_table(SECRETS)?;
            let before: Option<SecretRecord> = get_json(&table, &record.name)?;
            if let Some(b) = &before {
                record.created_at = b.created_at.clone();
            }
            put_json(&mut table, &record.name, &record)?;
            drop(table);
            let action = if before.is_some() { "update" } else { "create" };
            audit::record(
                txn,
                &actor,
                action,
                "secret",
                &record.name,
                before.as_ref().map(SecretRecord::info).as_ref(),
                Some(&record.info()),
            )?;
            Ok((record.info(), before.is_none()))
        })
        .await
    }

    fn secret(&self, name: &str) -> Result<Option<SecretRecord>, StoreError> {
        self.get_record(SECRETS, name)
    }

    fn sealed_secrets(&self) -> Result<Vec<(String, crate::sealing::Sealed)>, StoreError> {
        let all: Vec<SecretRecord> = self.all_records(SECRETS)?;
        Ok(all.into_iter().map(|r| (r.name, r.sealed)).collect())
    }

    fn secrets(&self) -> Result<Vec<SecretInfo>, StoreError> {
        let all: Vec<SecretRecord> = self.all_records(SECRETS)?;
        Ok(all.iter().map(SecretRecord::info).collect())
    }

    fn secrets_page(&self, after: Option<&str>, limit: usize) -> Result<Paged<SecretInfo>, StoreError> {
        let (records, next): Paged<SecretRecord> =
            self.read_table(SECRETS, |t| page_json(t, "secrets", after, limit))?;
        Ok((records.iter().map(SecretRecord::info).collect(), next))
    }

    async fn delete_secret(&self, name: &str, actor: &str) -> Result<SecretInfo, StoreError> {
        let (name, actor) = (name.to_string(), actor.to_string());
        self.write(move |txn| {
            let mut table = txn.open_table(SECRETS)?;
            let record: SecretRecord = get_existing(&table, "secret", &name)?;
            table.remove(name.as_str())?;
            drop(table);
            audit::deleted(txn, &actor, "secret", &name, &record.info())?;
            Ok(record.info())
        })
        .await
    }
}

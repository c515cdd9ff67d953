//! Sealed secrets on PostgreSQL, by name. The audit log records that a secret was set
//! or deleted, never its value.

use super::records::Keyed;
use super::{PgStore, audit, db_error, encode, exec};
use crate::StoreError;
use crate::sealing::Sealed;
use crate::secrets::{SecretInfo, SecretRecord, SecretStore};
use crate::tables::Paged;
use async_trait::async_trait;

/// Secrets by name.
const SECRETS: Keyed = Keyed {
    table: "secrets",
    key: "name",
    noun: "secret",
};

#[async_trait]
impl SecretStore for PgStore {
    async fn put_secret(
        &self,
        mut record: SecretRecord,
        actor: &str,
    ) -> Result<(SecretInfo, bool), StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        // Lock the name (present or not) so two nodes setting it agree on create/update.
        exec(
            &t,
            "SELECT pg_advisory_xact_lock(hashtext('secret:' || $1))",
            &[&record.name],
        )
        .await?;
        let before: Option<SecretRecord> = SECRETS.get(&t, &record.name, true).await?;
        if let Some(b) = &before {
            record.created_at = b.created_at.clone();
        }
        exec(
            &t,
            "INSERT INTO secrets (name, doc) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET doc = excluded.doc",
            &[&record.name, &encode(&record)?],
        )
        .await?;
        let action = if before.is_some() { "update" } else { "create" };
        audit::record(
            &t,
            actor,
            action,
            "secret",
            &record.name,
            before.as_ref().map(SecretRecord::info).as_ref(),
            Some(&record.info()),
        )
        .await?;
        self.commit(t).await?;
        Ok((record.info(), before.is_none()))
    }

    fn secret(&self, name: &str) -> Result<Option<SecretRecord>, StoreError> {
        self.block(async { SECRETS.get(&self.client().await?, name, false).await })
    }

    fn sealed_secrets(&self) -> Result<Vec<(String, Sealed)>, StoreError> {
        let all: Vec<SecretRecord> = self.block(async { SECRETS.all(&self.client().await?).await })?;
        Ok(all.into_iter().map(|r| (r.name, r.sealed)).collect())
    }

    fn secrets(&self) -> Result<Vec<SecretInfo>, StoreError> {
        let all: Vec<SecretRecord> = self.block(async { SECRETS.all(&self.client().await?).await })?;
        Ok(all.iter().map(SecretRecord::info).collect())
    }

    fn secrets_page(&self, after: Option<&str>, limit: usize) -> Result<Paged<SecretInfo>, StoreError> {
        let (records, next): Paged<SecretRecord> =
            self.block(async { SECRETS.page(&self.client().await?, after, limit).await })?;
        Ok((records.iter().map(SecretRecord::info).collect(), next))
    }

    async fn delete_secret(&self, name: &str, actor: &str) -> Result<SecretInfo, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let record: SecretRecord = SECRETS.load(&t, name).await?;
        SECRETS.delete(&t, name).await?;
        audit::deleted(&t, actor, "secret", name, &record.info()).await?;
        self.commit(t).await?;
        Ok(record.info())
    }
}

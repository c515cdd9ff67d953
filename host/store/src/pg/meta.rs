//! The store as a whole on PostgreSQL: metadata and the commit counters.

use super::{PgStore, exec, row};
use crate::writer::WriterStats;
use crate::{MetaStore, StoreError};
use async_trait::async_trait;
use std::path::PathBuf;
use std::sync::Arc;

#[async_trait]
impl MetaStore for PgStore {
    async fn snapshot(&self, _dest: PathBuf) -> Result<u64, StoreError> {
        Err(StoreError::Invalid(
            "this daemon stores in PostgreSQL: back it up with PostgreSQL's own tools \
             (pg_dump, or a base backup with WAL archiving); see docs/cluster.md"
                .into(),
        ))
    }

    fn stats(&self) -> &Arc<WriterStats> {
        PgStore::stats(self)
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.block(async {
            let client = self.client().await?;
            Ok(row(&client, "SELECT value FROM meta WHERE key = $1", &[&key])
                .await?
                .map(|r| r.get(0)))
        })
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )
        .await?;
        Ok(())
    }

    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        Some(self.notices())
    }

    fn schema_version(&self) -> Result<u64, StoreError> {
        match self.meta("schema_version")? {
            Some(v) => v
                .parse()
                .map_err(|_| StoreError::Storage(format!("bad schema_version {v:?}"))),
            None => Ok(0),
        }
    }
}

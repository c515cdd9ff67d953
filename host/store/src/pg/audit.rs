//! The audit log on PostgreSQL: entries written in the transaction of the change they
//! describe, and the newest-first listing.

use super::{PgStore, decode_listed, encode, exec, rows};
use crate::StoreError;
use crate::audit::{AuditEntry, AuditFilter, AuditStore};
use crate::tables::{Paged, Pager};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use serde::Serialize;

/// Append an entry inside the transaction `c`.
pub(crate) async fn record<B: Serialize, A: Serialize>(
    c: &impl GenericClient,
    actor: &str,
    action: &str,
    noun: &str,
    target: &str,
    before: Option<&B>,
    after: Option<&A>,
) -> Result<(), StoreError> {
    let entry = crate::audit::entry(actor, action, noun, target, before, after);
    exec(
        c,
        "INSERT INTO audit (id, doc) VALUES ($1, $2)",
        &[&entry.id, &encode(&entry)?],
    )
    .await?;
    Ok(())
}

/// Record that `noun` `target` was created as `after`.
pub(crate) async fn created<A: Serialize>(
    c: &impl GenericClient,
    actor: &str,
    noun: &str,
    target: &str,
    after: &A,
) -> Result<(), StoreError> {
    record(c, actor, "create", noun, target, None::<&()>, Some(after)).await
}

/// Record that `noun` `target` changed from `before` to `after`.
pub(crate) async fn updated<T: Serialize>(
    c: &impl GenericClient,
    actor: &str,
    noun: &str,
    target: &str,
    before: &T,
    after: &T,
) -> Result<(), StoreError> {
    record(c, actor, "update", noun, target, Some(before), Some(after)).await
}

/// Record that `noun` `target`, which was `before`, was deleted.
pub(crate) async fn deleted<B: Serialize>(
    c: &impl GenericClient,
    actor: &str,
    noun: &str,
    target: &str,
    before: &B,
) -> Result<(), StoreError> {
    record(c, actor, "delete", noun, target, Some(before), None::<&()>).await
}

/// How many rows a filtered newest-first scan reads per statement.
pub(crate) const SCAN_BATCH: i64 = 500;

#[async_trait]
impl AuditStore for PgStore {
    fn audit(
        &self,
        filter: &AuditFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Paged<AuditEntry>, StoreError> {
        self.block(async {
            let client = self.client().await?;
            let mut pager = Pager::new(limit);
            let mut before = cursor.map(str::to_string);
            loop {
                let batch = rows(
                    &client,
                    "SELECT id, doc FROM audit WHERE ($1::text IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
                    &[&before, &SCAN_BATCH],
                )
                .await?;
                let n = batch.len() as i64;
                for row in batch {
                    let (id, doc): (String, String) = (row.get(0), row.get(1));
                    before = Some(id.clone());
                    let Some(entry) = decode_listed::<AuditEntry>("audit", &id, &doc) else {
                        continue;
                    };
                    if filter.matches(&entry) && pager.push(&id, entry) {
                        return Ok(pager.finish());
                    }
                }
                if n < SCAN_BATCH {
                    return Ok(pager.finish());
                }
            }
        })
    }
}

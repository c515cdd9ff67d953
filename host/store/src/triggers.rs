//! Trigger records (event pattern → tasks), stored as named records.

use super::named::Named;
use super::{Store, StoreError};
use crate::schema::*;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sundial_core::trigger::TriggerSpec;

const NAMED: Named<TriggerRecord> = Named {
    records: TRIGGERS,
    names: TRIGGER_NAMES,
    noun: "trigger",
};

/// A trigger as stored: its spec with target task names replaced by ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TriggerRecord {
    /// Id (ULID).
    pub id: String,
    /// Created, RFC 3339.
    pub created_at: String,
    /// Last changed, RFC 3339.
    pub updated_at: String,
    /// The definition (targets by task id).
    pub spec: TriggerSpec,
}

/// Triggers, by id or name.
#[async_trait]
pub trait TriggerStore: Send + Sync {
    /// Create a trigger; the name must be free.
    async fn insert_trigger(&self, record: TriggerRecord, actor: &str) -> Result<TriggerRecord, StoreError>;

    /// One trigger by id or name.
    fn trigger(&self, key: &str) -> Result<Option<TriggerRecord>, StoreError>;

    /// Up to `limit` triggers with ids after `after`, oldest first, and the cursor for more.
    fn triggers_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<TriggerRecord>, Option<String>), StoreError>;

    /// Replace a trigger's spec (validated by the caller). Returns (before, after).
    async fn update_trigger(
        &self,
        key: &str,
        spec: TriggerSpec,
        now: String,
        actor: &str,
    ) -> Result<(TriggerRecord, TriggerRecord), StoreError>;

    /// Delete a trigger. Its pending timers stay (cancel them under `/v1/timers`).
    async fn delete_trigger(&self, key: &str, actor: &str) -> Result<TriggerRecord, StoreError>;
}

#[async_trait]
impl TriggerStore for Store {
    async fn insert_trigger(&self, record: TriggerRecord, actor: &str) -> Result<TriggerRecord, StoreError> {
        self.insert_named(NAMED, record, actor).await
    }

    fn trigger(&self, key: &str) -> Result<Option<TriggerRecord>, StoreError> {
        NAMED.get(&self.read()?, key)
    }

    fn triggers_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<TriggerRecord>, Option<String>), StoreError> {
        NAMED.page(&self.read()?, after, limit)
    }

    async fn update_trigger(
        &self,
        key: &str,
        spec: TriggerSpec,
        now: String,
        actor: &str,
    ) -> Result<(TriggerRecord, TriggerRecord), StoreError> {
        self.update_named(NAMED, key, now, actor, |_, t| {
            t.spec = spec;
            Ok(())
        })
        .await
    }

    async fn delete_trigger(&self, key: &str, actor: &str) -> Result<TriggerRecord, StoreError> {
        self.delete_named(NAMED, key, actor).await
    }
}

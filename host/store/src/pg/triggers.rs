//! Triggers on PostgreSQL: named records in `triggers`, as [`crate::triggers`] stores
//! them on redb.

use super::PgStore;
use super::named::PgNamed;
use crate::StoreError;
use crate::tables::Paged;
use crate::triggers::{TriggerRecord, TriggerStore};
use async_trait::async_trait;
use sundial_core::trigger::TriggerSpec;

/// Triggers as named records.
const NAMED: PgNamed = PgNamed {
    table: "triggers",
    noun: "trigger",
};

#[async_trait]
impl TriggerStore for PgStore {
    async fn insert_trigger(&self, record: TriggerRecord, actor: &str) -> Result<TriggerRecord, StoreError> {
        self.insert_named(NAMED, record, actor).await
    }

    fn trigger(&self, key: &str) -> Result<Option<TriggerRecord>, StoreError> {
        self.get_named(NAMED, key)
    }

    fn triggers_page(&self, after: Option<&str>, limit: usize) -> Result<Paged<TriggerRecord>, StoreError> {
        self.page_named(NAMED, after, limit)
    }

    async fn update_trigger(
        &self,
        key: &str,
        spec: TriggerSpec,
        now: String,
        actor: &str,
    ) -> Result<(TriggerRecord, TriggerRecord), StoreError> {
        self.update_named(NAMED, key, now, actor, |record: &mut TriggerRecord| {
            record.spec = spec;
            Ok(())
        })
        .await
    }

    async fn delete_trigger(&self, key: &str, actor: &str) -> Result<TriggerRecord, StoreError> {
        self.delete_named(NAMED, key, actor).await
    }
}

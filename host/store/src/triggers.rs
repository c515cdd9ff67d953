//! Trigger records (event pattern → tasks), stored as named records.

use super::StoreError;
use super::named::{Named, named_store};
use super::tables::Paged;
use crate::schema::*;
use serde::{Deserialize, Serialize};
use sundial_core::trigger::TriggerSpec;

const NAMED: Named<TriggerRecord> = Named {
    records: TRIGGERS,
    names: TRIGGER_NAMES,
    noun: "trigger",
    on_put: crate::named::no_hook,
    on_delete: crate::named::no_hook,
    copies: None,
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

named_store! {
    /// Triggers, by id or name.
    pub trait TriggerStore: Named<TriggerRecord> = NAMED {
        /// Create a trigger; the name must be free.
        fn insert_trigger;
        /// One trigger by id or name.
        fn trigger;
        /// Up to `limit` triggers with ids after `after`, oldest first, and the cursor for more.
        fn triggers_page;
        /// Replace a trigger's spec (validated by the caller). Returns (before, after).
        fn update_trigger(spec: TriggerSpec);
        /// Delete a trigger. Its pending timers stay (cancel them under `/v1/timers`).
        fn delete_trigger;
    }
}

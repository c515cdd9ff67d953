//! The audit log: who created, changed or deleted what, when, with before and after.
//! Entries are written inside the same transaction as the change they describe, so
//! a change and its audit entry commit (or vanish) together.

use super::tables::{Paged, Scan, newest_first, put_json};
use super::{Store, StoreError};
use crate::schema::*;
use async_trait::async_trait;
use redb::WriteTransaction;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One audited change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEntry {
    /// Entry id (ULID).
    pub id: String,
    /// When, RFC 3339.
    pub at: String,
    /// Token name of who did it (`sundial` for the daemon itself).
    pub actor: String,
    /// `create`, `update` or `delete`.
    pub action: String,
    /// `plugin`, `task`, `token`, ...
    pub noun: String,
    /// Id or name of the thing changed.
    pub target: String,
    /// The thing before (absent for a create). Secrets are never part of a record.
    pub before: Option<Value>,
    /// The thing after (absent for a delete).
    pub after: Option<Value>,
}

/// A new entry, stamped now.
pub(crate) fn entry<B: Serialize, A: Serialize>(
    actor: &str,
    action: &str,
    noun: &str,
    target: &str,
    before: Option<&B>,
    after: Option<&A>,
) -> AuditEntry {
    AuditEntry {
        id: sundial_core::ids::new_id(),
        at: sundial_core::timestamp::now(),
        actor: actor.to_string(),
        action: action.to_string(),
        noun: noun.to_string(),
        target: target.to_string(),
        before: before.and_then(|b| serde_json::to_value(b).ok()),
        after: after.and_then(|a| serde_json::to_value(a).ok()),
    }
}

/// Append an entry inside `txn`.
pub(crate) fn record<B: Serialize, A: Serialize>(
    txn: &WriteTransaction,
    actor: &str,
    action: &str,
    noun: &str,
    target: &str,
    before: Option<&B>,
    after: Option<&A>,
) -> Result<(), StoreError> {
    let entry = entry(actor, action, noun, target, before, after);
    put_json(&mut txn.open_table(AUDIT)?, &entry.id, &entry)
}

/// Record that `noun` `target` was created as `after`.
pub(crate) fn created<A: Serialize>(
    txn: &WriteTransaction,
    actor: &str,
    noun: &str,
    target: &str,
    after: &A,
) -> Result<(), StoreError> {
    record(txn, actor, "create", noun, target, None::<&()>, Some(after))
}

/// Record that `noun` `target` changed from `before` to `after`.
pub(crate) fn updated<T: Serialize>(
    txn: &WriteTransaction,
    actor: &str,
    noun: &str,
    target: &str,
    before: &T,
    after: &T,
) -> Result<(), StoreError> {
    record(txn, actor, "update", noun, target, Some(before), Some(after))
}

/// Record that `noun` `target`, which was `before`, was deleted.
pub(crate) fn deleted<B: Serialize>(
    txn: &WriteTransaction,
    actor: &str,
    noun: &str,
    target: &str,
    before: &B,
) -> Result<(), StoreError> {
    record(txn, actor, "delete", noun, target, Some(before), None::<&()>)
}

/// Filters of the audit listing.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this noun.
    pub noun: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this target.
    pub target: Option<String>,
    /// At or after this time (RFC 3339).
    pub since: Option<String>,
    /// Before this time (RFC 3339).
    pub until: Option<String>,
}

impl AuditFilter {
    pub(crate) fn matches(&self, e: &AuditEntry) -> bool {
        self.noun.as_deref().is_none_or(|n| e.noun == n)
            && self.actor.as_deref().is_none_or(|a| e.actor == a)
            && self.target.as_deref().is_none_or(|t| e.target == t)
            && self.since.as_deref().is_none_or(|t| e.at.as_str() >= t)
            && self.until.as_deref().is_none_or(|t| e.at.as_str() < t)
    }
}

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Audit entries matching `filter`, newest first, paginated like runs.
    fn audit(
        &self,
        filter: &AuditFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Paged<AuditEntry>, StoreError>;
}

#[async_trait]
impl AuditStore for Store {
    fn audit(
        &self,
        filter: &AuditFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Paged<AuditEntry>, StoreError> {
        self.read_table(AUDIT, |table| {
            newest_first(table, "audit", cursor, limit, |e| {
                Scan::take_if(filter.matches(e))
            })
        })
    }
}

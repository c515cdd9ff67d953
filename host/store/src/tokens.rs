//! API tokens: stored by the sha256 of the secret, never the secret itself.

use super::tables::put_json;
use super::{Store, StoreError, audit};
use crate::schema::*;
use async_trait::async_trait;
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Everything but plugins and tokens.
    Operator,
    /// Read only.
    Viewer,
    /// Post events only.
    Ingest,
}

/// A stored token (without its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenRecord {
    /// Token id (ULID).
    pub id: String,
    /// Human name, recorded as "who" in runs and the audit log.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// When it was created, RFC 3339.
    pub created_at: String,
}

/// The sha256 of a token secret, hex.
pub fn token_hash(secret: &str) -> String {
    sundial_core::hash::digest(secret.as_bytes())
}

/// API tokens, by the hash of their secret.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Store a token under the hash of `secret`.
    async fn insert_token(
        &self,
        secret: &str,
        record: TokenRecord,
        actor: &str,
    ) -> Result<TokenRecord, StoreError>;

    /// The token whose secret hashes to `hash`.
    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// Number of tokens.
    fn token_count(&self) -> Result<usize, StoreError>;

    /// Every token (without secrets), oldest first.
    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Revoke (delete) a token by id or name; the last admin token cannot be revoked.
    async fn revoke_token(&self, id_or_name: &str, actor: &str) -> Result<TokenRecord, StoreError>;
}

#[async_trait]
impl TokenStore for Store {
    async fn insert_token(
        &self,
        secret: &str,
        record: TokenRecord,
        actor: &str,
    ) -> Result<TokenRecord, StoreError> {
        let hash = token_hash(secret);
        let actor = actor.to_string();
        self.write_dropping(
            |copies| copies.tokens.drop_all(),
            move |txn| {
                let mut t = txn.open_table(TOKENS)?;
                if t.iter()?.any(|e| {
                    e.ok()
                        .and_then(|(_, v)| v.value().decode().ok())
                        .is_some_and(|r| r.name == record.name)
                }) {
                    return Err(StoreError::Conflict(format!(
                        "token {:?} already exists",
                        record.name
                    )));
                }
                put_json(&mut t, &hash, &record)?;
                audit::created(txn, &actor, "token", &record.id, &record)?;
                Ok(record)
            },
        )
        .await
    }

    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.cache.tokens.read(hash, || self.get_record(TOKENS, hash))
    }

    fn token_count(&self) -> Result<usize, StoreError> {
        self.read_table(TOKENS, |t| Ok(t.iter()?.count()))
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let mut out: Vec<TokenRecord> = self.all_records(TOKENS)?;
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn revoke_token(&self, id_or_name: &str, actor: &str) -> Result<TokenRecord, StoreError> {
        let key = id_or_name.to_string();
        let actor = actor.to_string();
        self.write_dropping(
            |copies| copies.tokens.drop_all(),
            move |txn| {
                let mut t = txn.open_table(TOKENS)?;
                let mut found = None;
                let mut admins = 0;
                for entry in t.iter()? {
                    let (hash, v) = entry?;
                    let Some(record): Option<TokenRecord> =
                        super::tables::decode_listed("tokens", hash.value(), v.value().bytes())
                    else {
                        continue;
                    };
                    if record.role == Role::Admin {
                        admins += 1;
                    }
                    if record.id == key || record.name == key {
                        found = Some((hash.value().to_string(), record));
                    }
                }
                let Some((hash, record)) = found else {
                    return Err(StoreError::NotFound(format!("token {key:?} not found")));
                };
                if record.role == Role::Admin && admins == 1 {
                    return Err(StoreError::Conflict(
                        "the last admin token cannot be revoked".into(),
                    ));
                }
                t.remove(hash.as_str())?;
                audit::deleted(txn, &actor, "token", &record.id, &record)?;
                Ok(record)
            },
        )
        .await
    }
}

/// A fresh random token secret: `sdl_` + 64 hex digits (256 bits).
pub fn new_token_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(format!("sdl_{}", hex::encode(bytes)))
}

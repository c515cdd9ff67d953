//! API tokens on PostgreSQL: rows keyed by the secret's sha256, names unique.

use super::{PgStore, audit, db_error, decode_listed, decode_one, encode, exec, row, rows};
use crate::StoreError;
use crate::tokens::{Role, TokenRecord, TokenStore, token_hash};
use async_trait::async_trait;

#[async_trait]
impl TokenStore for PgStore {
    async fn insert_token(
        &self,
        secret: &str,
        record: TokenRecord,
        actor: &str,
    ) -> Result<TokenRecord, StoreError> {
        let hash = token_hash(secret);
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let inserted = exec(
            &t,
            "INSERT INTO tokens (hash, name, doc) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&hash, &record.name, &encode(&record)?],
        )
        .await?;
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "token {:?} already exists",
                record.name
            )));
        }
        audit::created(&t, actor, "token", &record.id, &record).await?;
        super::listen::notify(&t, "tokens").await?;
        self.commit(t).await?;
        self.cache().tokens.drop_all();
        Ok(record)
    }

    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.cache().tokens.read(hash, || {
            self.block(async {
                let client = self.client().await?;
                match row(&client, "SELECT doc FROM tokens WHERE hash = $1", &[&hash]).await? {
                    Some(r) => decode_one("tokens", hash, r.get(0)).map(Some),
                    None => Ok(None),
                }
            })
        })
    }

    fn token_count(&self) -> Result<usize, StoreError> {
        self.block(async {
            let client = self.client().await?;
            let n: i64 = row(&client, "SELECT count(*) FROM tokens", &[])
                .await?
                .map(|r| r.get(0))
                .unwrap_or(0);
            Ok(n as usize)
        })
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.block(async {
            let client = self.client().await?;
            let found = rows(&client, "SELECT hash, doc FROM tokens", &[]).await?;
            let mut out: Vec<TokenRecord> = found
                .iter()
                .filter_map(|r| decode_listed("tokens", r.get(0), r.get(1)))
                .collect();
            out.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(out)
        })
    }

    async fn revoke_token(&self, id_or_name: &str, actor: &str) -> Result<TokenRecord, StoreError> {
        let key = id_or_name;
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        // Every token locked: two nodes revoking the last two admins cannot both succeed.
        let mut found = None;
        let mut admins = 0;
        for r in rows(&t, "SELECT hash, doc FROM tokens ORDER BY hash FOR UPDATE", &[]).await? {
            let hash: String = r.get(0);
            let Some(record): Option<TokenRecord> = decode_listed("tokens", &hash, r.get(1)) else {
                continue;
            };
            if record.role == Role::Admin {
                admins += 1;
            }
            if record.id == key || record.name == key {
                found = Some((hash, record));
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
        exec(&t, "DELETE FROM tokens WHERE hash = $1", &[&hash]).await?;
        audit::deleted(&t, actor, "token", &record.id, &record).await?;
        super::listen::notify(&t, "tokens").await?;
        self.commit(t).await?;
        self.cache().tokens.drop_all();
        Ok(record)
    }
}

//! Plugin records and component blobs on PostgreSQL.

use super::records::Keyed;
use super::{PgStore, audit, db_error, decode_listed, encode, exec, row, rows};
use crate::StoreError;
use crate::plugins::PluginStore;
use crate::tables::Paged;
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use sundial_core::plugin::{PluginRecord, PluginUpdate};

/// Plugins by name.
const PLUGINS: Keyed = Keyed {
    table: "plugins",
    key: "name",
    noun: "plugin",
};

/// Store the blob of `record` unless one with its digest is there.
async fn put_blob(c: &impl GenericClient, record: &PluginRecord, bytes: &[u8]) -> Result<(), StoreError> {
    exec(
        c,
        "INSERT INTO plugin_blobs (digest, bytes) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
        &[&record.blob_key(), &bytes],
    )
    .await?;
    Ok(())
}

/// Write a plugin's row.
async fn put(c: &impl GenericClient, record: &PluginRecord) -> Result<(), StoreError> {
    exec(
        c,
        "UPDATE plugins SET digest = $2, doc = $3 WHERE name = $1",
        &[&record.name, &record.blob_key(), &encode(record)?],
    )
    .await?;
    Ok(())
}

/// Delete the component blob of `old` unless a plugin still uses it.
async fn drop_blob_unless_used(c: &impl GenericClient, old: &PluginRecord) -> Result<(), StoreError> {
    exec(
        c,
        "DELETE FROM plugin_blobs WHERE digest = $1 AND NOT EXISTS (SELECT 1 FROM plugins WHERE digest = $1)",
        &[&old.blob_key()],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl PluginStore for PgStore {
    async fn insert_plugin(
        &self,
        record: PluginRecord,
        bytes: Vec<u8>,
        actor: &str,
    ) -> Result<PluginRecord, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let inserted = exec(
            &t,
            "INSERT INTO plugins (name, digest, doc) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
            &[&record.name, &record.blob_key(), &encode(&record)?],
        )
        .await?;
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "plugin {:?} already exists",
                record.name
            )));
        }
        put_blob(&t, &record, &bytes).await?;
        audit::created(&t, actor, "plugin", &record.name, &record).await?;
        super::listen::notify(&t, "plugins").await?;
        self.commit(t).await?;
        self.cache().plugins.drop_all();
        Ok(record)
    }

    fn plugin(&self, name: &str) -> Result<Option<PluginRecord>, StoreError> {
        self.cache().plugins.read(name, || {
            self.block(async { PLUGINS.get(&self.client().await?, name, false).await })
        })
    }

    fn plugin_bytes(&self, record: &PluginRecord) -> Result<Option<Vec<u8>>, StoreError> {
        self.block(async {
            let client = self.client().await?;
            let key = record.blob_key();
            Ok(row(
                &client,
                "SELECT bytes FROM plugin_blobs WHERE digest = $1",
                &[&key],
            )
            .await?
            .map(|r| r.get(0)))
        })
    }

    fn plugins(&self) -> Result<Vec<PluginRecord>, StoreError> {
        self.block(async { PLUGINS.all(&self.client().await?).await })
    }

    fn plugins_page(&self, after: Option<&str>, limit: usize) -> Result<Paged<PluginRecord>, StoreError> {
        self.block(async { PLUGINS.page(&self.client().await?, after, limit).await })
    }

    async fn update_plugin(
        &self,
        name: &str,
        update: PluginUpdate,
        now: String,
        actor: &str,
    ) -> Result<(PluginRecord, PluginRecord), StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let before: PluginRecord = PLUGINS.load(&t, name).await?;
        let after = crate::plugins::updated(&before, update, now);
        put(&t, &after).await?;
        audit::updated(&t, actor, "plugin", name, &before, &after).await?;
        super::listen::notify(&t, "plugins").await?;
        self.commit(t).await?;
        self.cache().plugins.drop_all();
        Ok((before, after))
    }

    async fn replace_plugin_bytes(
        &self,
        new: PluginRecord,
        bytes: Vec<u8>,
        actor: &str,
    ) -> Result<(PluginRecord, PluginRecord), StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let before: PluginRecord = PLUGINS.load(&t, &new.name).await?;
        let after = crate::plugins::replaced(&before, new);
        put_blob(&t, &after, &bytes).await?;
        put(&t, &after).await?;
        drop_blob_unless_used(&t, &before).await?;
        audit::updated(&t, actor, "plugin", &after.name, &before, &after).await?;
        super::listen::notify(&t, "plugins").await?;
        self.commit(t).await?;
        self.cache().plugins.drop_all();
        Ok((before, after))
    }

    async fn remove_plugin(&self, name: &str, actor: &str) -> Result<PluginRecord, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let record: PluginRecord = PLUGINS.load(&t, name).await?;
        let mut users = Vec::new();
        for r in rows(&t, "SELECT id, doc FROM tasks ORDER BY id", &[]).await? {
            let task: Option<crate::tasks::TaskRecord> = decode_listed("tasks", r.get(0), r.get(1));
            if let Some(task) = task.filter(|task| task.spec.plugin == name) {
                users.push(task.spec.name);
            }
        }
        if !users.is_empty() {
            return Err(StoreError::Conflict(format!(
                "plugin {name:?} is used by tasks {}; delete them or point them at another plugin first",
                users.join(", ")
            )));
        }
        exec(&t, "DELETE FROM plugins WHERE name = $1", &[&name]).await?;
        drop_blob_unless_used(&t, &record).await?;
        audit::deleted(&t, actor, "plugin", name, &record).await?;
        super::listen::notify(&t, "plugins").await?;
        self.commit(t).await?;
        self.cache().plugins.drop_all();
        Ok(record)
    }
}

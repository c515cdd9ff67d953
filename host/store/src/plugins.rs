//! Plugin records and component blobs.

use super::tables::{Json, Paged, get_existing, page_json, pick_json, put_json};
use super::{Store, StoreError, audit};
use crate::schema::*;
use async_trait::async_trait;
use redb::{ReadableTable, Table};
use sundial_core::plugin::{PluginRecord, PluginUpdate};

/// Delete the component blob of `old` unless a plugin in `plugins` still uses it.
fn drop_blob_unless_used(
    plugins: &impl ReadableTable<&'static str, Json<'static, PluginRecord>>,
    blobs: &mut Table<&'static str, &'static [u8]>,
    old: &PluginRecord,
) -> Result<(), StoreError> {
    let still_used = plugins.iter()?.any(|e| {
        e.ok()
            .and_then(|(_, v)| v.value().decode().ok())
            .is_some_and(|p| p.digest == old.digest)
    });
    if !still_used {
        blobs.remove(old.blob_key())?;
    }
    Ok(())
}

/// `before` with `update`'s changes, stamped `now`.
pub(crate) fn updated(before: &PluginRecord, update: PluginUpdate, now: String) -> PluginRecord {
    let mut after = before.clone();
    if let Some(g) = update.grants {
        after.grants = g;
    }
    if let Some(l) = update.limits {
        after.limits = l;
    }
    if let Some(d) = update.description {
        after.description = d;
    }
    if let Some(p) = update.pinned {
        after.pinned = p;
    }
    after.updated_at = now;
    after
}

/// `before` with the component `new` describes (digest, world, size, imports), its
/// name, grants, limits, description and flags kept.
pub(crate) fn replaced(before: &PluginRecord, new: PluginRecord) -> PluginRecord {
    let mut after = before.clone();
    after.digest = new.digest;
    after.world = new.world;
    after.size_bytes = new.size_bytes;
    after.imports = new.imports;
    after.updated_at = new.updated_at;
    after
}

/// Installed plugins and their component bytes.
#[async_trait]
pub trait PluginStore: Send + Sync {
    /// Store a new plugin and its bytes; a name that exists is a conflict.
    async fn insert_plugin(
        &self,
        record: PluginRecord,
        bytes: Vec<u8>,
        actor: &str,
    ) -> Result<PluginRecord, StoreError>;

    /// One plugin's record.
    fn plugin(&self, name: &str) -> Result<Option<PluginRecord>, StoreError>;

    /// A plugin's component bytes.
    fn plugin_bytes(&self, record: &PluginRecord) -> Result<Option<Vec<u8>>, StoreError>;

    /// Every plugin, by name.
    fn plugins(&self) -> Result<Vec<PluginRecord>, StoreError>;

    /// Up to `limit` plugins by name after `after`, and the name to continue after.
    fn plugins_page(&self, after: Option<&str>, limit: usize) -> Result<Paged<PluginRecord>, StoreError>;

    /// Change a plugin's grants, limits or description.
    async fn update_plugin(
        &self,
        name: &str,
        update: PluginUpdate,
        now: String,
        actor: &str,
    ) -> Result<(PluginRecord, PluginRecord), StoreError>;

    /// Replace a plugin's component with `bytes` (described by `new`: digest, world,
    /// size, imports), keeping its name, grants, limits, description and flags; the old
    /// blob goes when nothing else uses it. Returns (before, after).
    async fn replace_plugin_bytes(
        &self,
        new: PluginRecord,
        bytes: Vec<u8>,
        actor: &str,
    ) -> Result<(PluginRecord, PluginRecord), StoreError>;

    /// Remove a plugin; refused while a task uses it (the message names the tasks).
    async fn remove_plugin(&self, name: &str, actor: &str) -> Result<PluginRecord, StoreError>;
}

#[async_trait]
impl PluginStore for Store {
    async fn insert_plugin(
        &self,
        record: PluginRecord,
        bytes: Vec<u8>,
        actor: &str,
    ) -> Result<PluginRecord, StoreError> {
        let actor = actor.to_string();
        self.write_dropping(
            |copies| copies.plugins.drop_all(),
            move |txn| {
                let mut plugins = txn.open_table(PLUGINS)?;
                if plugins.get(record.name.as_str())?.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "plugin {:?} already exists",
                        record.name
                    )));
                }
                let mut blobs = txn.open_table(PLUGIN_BLOBS)?;
                if blobs.get(record.blob_key())?.is_none() {
                    blobs.insert(record.blob_key(), bytes.as_slice())?;
                }
                put_json(&mut plugins, &record.name, &record)?;
                audit::created(txn, &actor, "plugin", &record.name, &record)?;
                Ok(record)
            },
        )
        .await
    }

    fn plugin(&self, name: &str) -> Result<Option<PluginRecord>, StoreError> {
        self.cache.plugins.read(name, || self.get_record(PLUGINS, name))
    }

    fn plugin_bytes(&self, record: &PluginRecord) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_table(PLUGIN_BLOBS, |blobs| {
            Ok(blobs.get(record.blob_key())?.map(|v| v.value().to_vec()))
        })
    }

    fn plugins(&self) -> Result<Vec<PluginRecord>, StoreError> {
        self.all_records(PLUGINS)
    }

    fn plugins_page(&self, after: Option<&str>, limit: usize) -> Result<Paged<PluginRecord>, StoreError> {
        self.read_table(PLUGINS, |t| page_json(t, "plugins", after, limit))
    }

    async fn update_plugin(
        &self,
        name: &str,
        update: PluginUpdate,
        now: String,
        actor: &str,
    ) -> Result<(PluginRecord, PluginRecord), StoreError> {
        let name = name.to_string();
        let actor = actor.to_string();
        self.write_dropping(
            |copies| copies.plugins.drop_all(),
            move |txn| {
                let mut plugins = txn.open_table(PLUGINS)?;
                let before: PluginRecord = get_existing(&plugins, "plugin", &name)?;
                let after = updated(&before, update, now);
                put_json(&mut plugins, &name, &after)?;
                audit::updated(txn, &actor, "plugin", &name, &before, &after)?;
                Ok((before, after))
            },
        )
        .await
    }

    async fn replace_plugin_bytes(
        &self,
        new: PluginRecord,
        bytes: Vec<u8>,
        actor: &str,
    ) -> Result<(PluginRecord, PluginRecord), StoreError> {
        let actor = actor.to_string();
        self.write_dropping(
            |copies| copies.plugins.drop_all(),
            move |txn| {
                let mut plugins = txn.open_table(PLUGINS)?;
                let before: PluginRecord = get_existing(&plugins, "plugin", &new.name)?;
                let after = replaced(&before, new);
                let mut blobs = txn.open_table(PLUGIN_BLOBS)?;
                if blobs.get(after.blob_key())?.is_none() {
                    blobs.insert(after.blob_key(), bytes.as_slice())?;
                }
                put_json(&mut plugins, &after.name, &after)?;
                drop_blob_unless_used(&plugins, &mut blobs, &before)?;
                audit::updated(txn, &actor, "plugin", &after.name, &before, &after)?;
                Ok((before, after))
            },
        )
        .await
    }

    async fn remove_plugin(&self, name: &str, actor: &str) -> Result<PluginRecord, StoreError> {
        let name = name.to_string();
        let actor = actor.to_string();
        self.write_dropping(|copies| copies.plugins.drop_all(), move |txn| {
            let mut plugins = txn.open_table(PLUGINS)?;
            let record: PluginRecord = get_existing(&plugins, "plugin", &name)?;
            let users = pick_json(&txn.open_table(TASKS)?, |task| {
                (task.spec.plugin == name).then_some(task.spec.name)
            })?;
            if !users.is_empty() {
                return Err(StoreError::Conflict(format!(
                    "plugin {name:?} is used by tasks {}; delete them or point them at another plugin first",
                    users.join(", ")
                )));
            }
            plugins.remove(name.as_str())?;
            drop_blob_unless_used(&plugins, &mut txn.open_table(PLUGIN_BLOBS)?, &record)?;
            audit::deleted(txn, &actor, "plugin", &name, &record)?;
            Ok(record)
        })
        .await
    }
}

//! Tasks on PostgreSQL: named records in `tasks`, as [`crate::tasks`] stores them on
//! redb. Creating a task (or pointing it at another plugin) checks that the plugin is
//! an installed action plugin, holding that plugin's row until the commit so that it
//! cannot be removed or changed meanwhile; deleting a task detaches it from the
//! schedules that drive it.

use super::named::PgNamed;
use super::{PgStore, db_error, decode_one, exec, row};
use crate::StoreError;
use crate::named::NamedRecord;
use crate::tables::Paged;
use crate::tasks::{TaskChange, TaskRecord, TaskStore};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use sundial_core::plugin::{PluginRecord, World};

/// Tasks as named records.
pub(crate) const NAMED: PgNamed = PgNamed {
    table: "tasks",
    noun: "task",
};

/// Check that the plugin `name` is installed and is an action plugin, and hold its row
/// (`FOR SHARE`) until the transaction ends: a concurrent removal or change of the
/// plugin waits for this commit, then sees the task that uses it.
async fn check_plugin(c: &impl GenericClient, name: &str) -> Result<(), StoreError> {
    let found = row(c, "SELECT doc FROM plugins WHERE name = $1 FOR SHARE", &[&name]).await?;
    let Some(r) = found else {
        return Err(StoreError::NotFound(format!("plugin {name:?} is not installed")));
    };
    let doc: String = r.get(0);
    let plugin: PluginRecord = decode_one("plugins", name, &doc)?;
    if plugin.world != World::Action {
        return Err(StoreError::Conflict(format!(
            "plugin {name:?} is a {} plugin; a task needs an action plugin",
            plugin.world.as_str()
        )));
    }
    Ok(())
}

/// Detach `task` from the schedules that drive it, so a schedule never drives a task
/// that is gone. The links are locked in key order first, as deleting a schedule locks
/// its own, so that concurrent deletes of tasks and schedules never deadlock.
async fn unlink_schedules(c: &impl GenericClient, task: &TaskRecord) -> Result<(), StoreError> {
    exec(
        c,
        "DELETE FROM schedule_tasks WHERE (schedule_id, task_id) IN (
             SELECT schedule_id, task_id FROM schedule_tasks WHERE task_id = $1
             ORDER BY schedule_id, task_id FOR UPDATE)",
        &[&task.id],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl TaskStore for PgStore {
    async fn insert_task(&self, record: TaskRecord, actor: &str) -> Result<TaskRecord, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        if record.spec.webhook.is_none() {
            check_plugin(&t, &record.spec.plugin).await?;
        }
        NAMED.create(&t, &record, actor).await?;
        self.commit(t).await?;
        self.cache().tasks.drop_all();
        Ok(record)
    }

    fn task(&self, key: &str) -> Result<Option<TaskRecord>, StoreError> {
        self.cache().tasks.read(key, || self.get_named(NAMED, key))
    }

    fn tasks_page(&self, after: Option<&str>, limit: usize) -> Result<Paged<TaskRecord>, StoreError> {
        self.page_named(NAMED, after, limit)
    }

    async fn update_task(
        &self,
        key: &str,
        change: TaskChange,
        now: String,
        actor: &str,
    ) -> Result<(TaskRecord, TaskRecord), StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let before: TaskRecord = NAMED.load(&t, key).await?;
        let mut after = before.clone();
        change(&mut after.spec);
        after
            .spec
            .validate()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        if after.spec.plugin != before.spec.plugin && after.spec.webhook.is_none() {
            check_plugin(&t, &after.spec.plugin).await?;
        }
        after.stamp(now);
        NAMED.replace(&t, &before, &after, actor).await?;
        self.commit(t).await?;
        self.cache().tasks.drop_all();
        Ok((before, after))
    }

    async fn delete_task(&self, key: &str, actor: &str) -> Result<TaskRecord, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let record: TaskRecord = NAMED.load(&t, key).await?;
        unlink_schedules(&t, &record).await?;
        NAMED.delete(&t, &record, actor).await?;
        self.commit(t).await?;
        self.cache().tasks.drop_all();
        Ok(record)
    }
}

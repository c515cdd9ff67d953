//! Task records and the name index.

use super::StoreError;
use super::named::{Named, named_store};
use super::tables::{Paged, get_json};
use crate::schema::*;
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use sundial_core::plugin::PluginRecord;
use sundial_core::plugin::World;
use sundial_core::task::TaskSpec;

/// A task as stored: its id, timestamps and spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskRecord {
    /// Task id (ULID).
    pub id: String,
    /// When it was created, RFC 3339.
    pub created_at: String,
    /// When it last changed, RFC 3339.
    pub updated_at: String,
    /// What it does.
    pub spec: TaskSpec,
}

fn check_plugin(txn: &WriteTransaction, name: &str) -> Result<(), StoreError> {
    let plugins = txn.open_table(PLUGINS)?;
    match get_json::<PluginRecord>(&plugins, name)? {
        None => Err(StoreError::NotFound(format!("plugin {name:?} is not installed"))),
        Some(p) if p.world != World::Action => Err(StoreError::Conflict(format!(
            "plugin {name:?} is a {} plugin; a task needs an action plugin",
            p.world.as_str()
        ))),
        Some(_) => Ok(()),
    }
}

/// Tasks as named records: id → `TaskRecord`, name → id.
pub(crate) const NAMED: Named<TaskRecord> = Named {
    records: TASKS,
    names: TASK_NAMES,
    noun: "task",
    on_put: crate::named::no_hook,
    on_delete: crate::named::no_hook,
    copies: Some(|copies| &copies.tasks),
};

/// A change to a task's spec, applied inside the commit that stores it.
pub type TaskChange = Box<dyn for<'s> FnOnce(&'s mut TaskSpec) + Send + 'static>;

/// Detach `task` from the schedules that drive it (both directions of the links), so
/// a schedule never drives a task that is gone.
fn unlink_schedules(txn: &WriteTransaction, task: &TaskRecord) -> Result<(), StoreError> {
    let id = &task.id;
    let mut back = txn.open_table(TASK_SCHEDULES)?;
    let (lo, hi) = (format!("{id}/"), format!("{id}0"));
    let mut schedules = Vec::new();
    for entry in back.range(lo.as_str()..hi.as_str())? {
        let (k, _) = entry?;
        schedules.push(k.value().rsplit('/').next().unwrap_or_default().to_string());
    }
    back.retain_in(lo.as_str()..hi.as_str(), |_, _| false)?;
    let mut links = txn.open_table(SCHEDULE_TASKS)?;
    for s in schedules {
        links.remove(format!("{s}/{id}").as_str())?;
    }
    Ok(())
}

named_store! {
    /// Tasks: reusable task definitions, by id or name.
    pub trait TaskStore: Named<TaskRecord> = NAMED {
        /// Create a task; the name must be free and the plugin an installed action.
        fn insert_task = |txn, record| {
            if record.spec.webhook.is_none() {
                check_plugin(txn, &record.spec.plugin)?;
            }
            Ok(())
        };
        /// A task by id or name.
        fn task;
        /// Up to `limit` tasks with ids after `after`, oldest first, and the cursor for more.
        fn tasks_page;
        /// Replace a task's spec (a rename moves its name). Returns (before, after).
        fn update_task(change: TaskChange) = |txn, task| {
            let plugin = task.spec.plugin.clone();
            change(&mut task.spec);
            task.spec
                .validate()
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            if task.spec.plugin != plugin && task.spec.webhook.is_none() {
                check_plugin(txn, &task.spec.plugin)?;
            }
            Ok(())
        };
        /// Delete a task (its runs stay in the task log until retention prunes them).
        fn delete_task = unlink_schedules;
    }
}

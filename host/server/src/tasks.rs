//! `/v1/tasks`: create, list, get, update (JSON merge of top-level fields), delete,
//! enable, disable; served by the handlers of [`crate::resource`].

use super::{ApiError, ApiResult, AppState};
use crate::resource::{Resource, Stamped};
use sundial_core::task::TaskSpec;
use sundial_core::timestamp::now;
use sundial_store::tasks::TaskRecord;

/// The task noun.
pub(crate) struct Tasks;

impl Resource for Tasks {
    type Record = TaskRecord;
    type Spec = TaskSpec;
    type View = Stamped<TaskSpec>;
    const NOUN: &'static str = "task";
    const PLURAL: &'static str = "tasks";
    const FIXED: &'static [&'static str] = &["id", "created_at", "updated_at"];

    crate::resource::store_accessors!(TaskRecord, task, tasks_page);

    fn check(state: &AppState, spec: TaskSpec, _: Option<&TaskRecord>) -> ApiResult<TaskSpec> {
        spec.validate()?;
        check_notify(state, &spec)?;
        Ok(spec)
    }

    async fn insert(state: &AppState, spec: TaskSpec, who: &str) -> ApiResult<TaskRecord> {
        let stamp = now();
        let record = TaskRecord {
            id: sundial_core::ids::new_id(),
            created_at: stamp.clone(),
            updated_at: stamp,
            spec,
        };
        Ok(state.store.insert_task(record, who).await?)
    }

    async fn update(state: &AppState, id: &str, spec: TaskSpec, who: &str) -> ApiResult<TaskRecord> {
        let (_before, after) = state
            .store
            .update_task(id, Box::new(move |s| *s = spec), now(), who)
            .await?;
        Ok(after)
    }

    async fn toggle(state: &AppState, key: &str, enabled: bool, who: &str) -> ApiResult<TaskRecord> {
        let (_before, after) = state
            .store
            .update_task(key, Box::new(move |s| s.enabled = enabled), now(), who)
            .await?;
        Ok(after)
    }

    async fn delete(state: &AppState, key: &str, who: &str) -> ApiResult<()> {
        state.store.delete_task(key, who).await?;
        Ok(())
    }

    fn view(_: &AppState, task: TaskRecord) -> ApiResult<Stamped<TaskSpec>> {
        Ok(view(task))
    }
}

/// A task as the API shows it: the spec's fields plus id and timestamps.
pub(crate) fn view(task: TaskRecord) -> Stamped<TaskSpec> {
    Stamped {
        spec: task.spec,
        id: task.id,
        created_at: task.created_at,
        updated_at: task.updated_at,
    }
}

/// Every webhook a task notifies or sends to must exist (404 naming the field, as
/// every reference to a missing object is answered).
fn check_notify(state: &AppState, spec: &TaskSpec) -> ApiResult<()> {
    if let Some(w) = &spec.webhook
        && state.store.webhook(w)?.is_none()
    {
        return Err(ApiError::not_found(format!("webhook: webhook {w:?} not found")));
    }
    for (i, n) in spec.notify.iter().enumerate() {
        if state.store.webhook(&n.webhook)?.is_none() {
            return Err(ApiError::not_found(format!(
                "notify[{i}].webhook: webhook {:?} not found",
                n.webhook
            )));
        }
    }
    Ok(())
}

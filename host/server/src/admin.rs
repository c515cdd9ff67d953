//! `/v1/admin/unreadable` (admin only): stored records that do not decode, which lists,
//! pages and start-up skip, and deleting them.

use super::{Admin, ApiResult};
use crate::answer::Deleted;
use crate::extract::QueryParams;
use axum::Json;
use axum::extract::Path;
use serde::{Deserialize, Serialize};
use sundial_store::unreadable::UnreadableRecord;

/// `GET /v1/admin/unreadable`: stored records that do not decode, and how often a
/// read skipped one since start.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct UnreadableList {
    records: Vec<UnreadableRecord>,
    skipped_total: u64,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UnreadableQuery {
    /// Most records (1-1000). Default 100.
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
}

pub(super) async fn unreadable(
    Admin(state, _): Admin,
    QueryParams(q): QueryParams<UnreadableQuery>,
) -> ApiResult<Json<UnreadableList>> {
    let limit = crate::extract::Page::limit(q.limit, 100)?;
    let records = state.store.unreadable_records(limit)?;
    Ok(Json(UnreadableList {
        records,
        skipped_total: sundial_store::unreadable::skipped_total(),
    }))
}

/// `/v1/admin/unreadable/{table}/{key}`.
#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct UnreadablePath {
    /// The table, as `GET /v1/admin/unreadable` lists it.
    #[schemars(schema_with = "table_schema")]
    table: String,
    /// The record's key.
    key: String,
}

fn table_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "enum": sundial_store::unreadable::table_names() })
}

pub(super) async fn delete_unreadable(
    Admin(state, caller): Admin,
    Path(UnreadablePath { table, key }): Path<UnreadablePath>,
) -> ApiResult<Deleted> {
    state.store.delete_unreadable(&table, &key, caller.who()).await?;
    sundial_store::unreadable::forget(&table, &key);
    Ok(Deleted)
}

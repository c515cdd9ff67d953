//! `/v1/admin/unreadable` (admin only): stored records that do not decode, which lists,
//! pages and start-up skip, and deleting them.

use super::{Admin, ApiResult, AppState};
use crate::extract::QueryParams;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sundial_store::unreadable::UnreadableRecord;

/// `GET /v1/admin/unreadable`: stored records that do not decode, and how often a
/// read skipped one since start.
#[derive(Serialize)]
pub(super) struct UnreadableList {
    records: Vec<UnreadableRecord>,
    skipped_total: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// Most records (1-1000). Default 100.
    limit: Option<usize>,
}

pub(super) async fn unreadable(
    State(state): State<AppState>,
    _: Admin,
    QueryParams(q): QueryParams<ListQuery>,
) -> ApiResult<Json<UnreadableList>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(super::ApiError::bad_request(format!(
            "limit: {limit} is outside 1..=1000"
        )));
    }
    let records = state.store.unreadable_records(limit)?;
    Ok(Json(UnreadableList {
        records,
        skipped_total: sundial_store::unreadable::skipped_total(),
    }))
}

pub(super) async fn delete_unreadable(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path((table, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.store.delete_unreadable(&table, &key, caller.who()).await?;
    sundial_store::unreadable::forget(&table, &key);
    Ok(StatusCode::NO_CONTENT)
}

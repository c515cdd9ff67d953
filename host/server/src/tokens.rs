//! `/v1/tokens` (admin only): create (the secret is shown once), list, revoke.
//! `/v1/audit`: the audit log, with filters and cursor pagination.

use super::{Admin, ApiError, ApiResult, Reader};
use crate::answer::{Created, Deleted};
use crate::extract::{JsonBody, Page, QueryParams};
use axum::Json;
use axum::extract::Path;
use serde::{Deserialize, Serialize};
use sundial_core::timestamp::now;
use sundial_store::audit::{AuditEntry, AuditFilter};
use sundial_store::tokens::{Role, TokenRecord};

/// A new token: its record and its secret, shown this once.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct NewToken {
    #[serde(flatten)]
    record: TokenRecord,
    secret: String,
}

/// `GET /v1/tokens`.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct TokenList {
    tokens: Vec<TokenRecord>,
}

/// `GET /v1/audit`: one page, newest first.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct AuditPage {
    entries: Vec<AuditEntry>,
    next_cursor: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateToken {
    /// Unique name.
    #[schemars(regex(pattern = sundial_core::task::NAME_PATTERN), extend("not" = {"pattern": "^[0-7][0-9a-hjkmnp-tv-z]{25}$"}))]
    name: String,
    role: Role,
}

pub(super) async fn create(
    Admin(state, caller): Admin,
    JsonBody(req): JsonBody<CreateToken>,
) -> ApiResult<Created<NewToken>> {
    sundial_core::task::validate_name("name", &req.name)?;
    let secret = sundial_store::tokens::new_token_secret().map_err(ApiError::internal)?;
    let record = TokenRecord {
        id: sundial_core::ids::new_id(),
        name: req.name,
        role: req.role,
        created_at: now(),
    };
    let record = state.store.insert_token(&secret, record, caller.who()).await?;
    Ok(Created(NewToken { record, secret }))
}

pub(super) async fn list(Admin(state, _): Admin) -> ApiResult<Json<TokenList>> {
    Ok(Json(TokenList {
        tokens: state.store.tokens()?,
    }))
}

pub(super) async fn revoke(Admin(state, caller): Admin, Path(id): Path<String>) -> ApiResult<Deleted> {
    // Revoking the token in use would lock the caller out mid-session: another admin
    // token revokes it (and the last admin token cannot be revoked at all).
    if id == caller.token.id || id == caller.token.name {
        return Err(ApiError::conflict(format!(
            "token {:?} is the one making this request; revoke it with another admin token",
            caller.token.name
        )));
    }
    state.store.revoke_token(&id, caller.who()).await?;
    Ok(Deleted)
}

crate::extract::list_query! {
    /// `GET /v1/audit`.
    pub(super) struct AuditQuery {
        /// plugin, task, token, ...
        noun: Option<String>,
        /// Token name.
        actor: Option<String>,
        /// Id or name of the thing changed.
        target: Option<String>,
    }
    time = "Changed"
}

pub(super) async fn audit(
    Reader(state, _): Reader,
    QueryParams(q): QueryParams<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let page = Page::new(q.limit, q.cursor)?;
    let filter = AuditFilter {
        noun: q.noun,
        actor: q.actor,
        target: q.target,
        since: super::runs::check_time("since", &q.since)?,
        until: super::runs::check_time("until", &q.until)?,
    };
    let (entries, next_cursor) = state.store.audit(&filter, page.cursor.as_deref(), page.limit)?;
    Ok(Json(AuditPage { entries, next_cursor }))
}

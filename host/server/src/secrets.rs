//! `/v1/secrets`: write-only values (set, list names, show metadata, delete). A value is
//! never returned, logged or written to the audit log.

use super::{Admin, ApiError, ApiResult, Operator};
use crate::answer::{Deleted, Upserted};
use crate::error::Found;
use crate::extract::JsonBody;
use axum::Json;
use axum::extract::Path;
use serde::{Deserialize, Serialize};
use sundial_core::secret::{MAX_SECRET_BYTES, validate_name};
use sundial_store::secrets::{SecretInfo, SecretRecord};

/// Largest body of a set: a value of the largest size, JSON-escaped, with room.
const MAX_SECRET_BODY: usize = MAX_SECRET_BYTES * 2 + 1024;

/// `GET /v1/secrets`: names and metadata, never values.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct SecretList {
    secrets: Vec<SecretInfo>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SetRequest {
    /// The value: 1-65536 characters.
    #[schemars(length(min = 1, max = 65_536))]
    value: String,
}

/// A secret's name from the path, checked before the body is read (400 naming what is
/// wrong with it).
pub(super) struct SecretName(String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for SecretName {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<SecretName, ApiError> {
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        validate_name(&name).map_err(ApiError::bad_request)?;
        Ok(SecretName(name))
    }
}

/// The path of a secret, as the document shows it.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct SecretPath {
    /// Secret name: 1-128 letters, digits, `_`, `-`, `.`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_.-]{1,128}$"))]
    name: String,
}

impl aide::OperationInput for SecretName {
    fn operation_input(ctx: &mut aide::generate::GenContext, operation: &mut aide::openapi::Operation) {
        <Path<SecretPath>>::operation_input(ctx, operation);
    }
}

pub(super) async fn set(
    Admin(state, caller): Admin,
    SecretName(name): SecretName,
    // Parse errors from serde name the field and position, never the value.
    JsonBody(req): JsonBody<SetRequest, MAX_SECRET_BODY>,
) -> ApiResult<Upserted<SecretInfo>> {
    let chars = req.value.chars().count();
    if chars == 0 || chars > MAX_SECRET_BYTES {
        return Err(ApiError::bad_request(format!(
            "value: must be 1-{MAX_SECRET_BYTES} characters, got {chars}"
        )));
    }
    let sealed = state.secret_key.seal(&name, req.value.as_bytes())?;
    let stamp = sundial_core::timestamp::now();
    let record = SecretRecord {
        name,
        created_at: stamp.clone(),
        updated_at: stamp,
        size: req.value.len(),
        sealed,
    };
    let (info, created) = state.store.put_secret(record, caller.who()).await?;
    Ok(if created {
        Upserted::Created(info)
    } else {
        Upserted::Replaced(info)
    })
}

pub(super) async fn list(Operator(state, _): Operator) -> ApiResult<Json<SecretList>> {
    Ok(Json(SecretList {
        secrets: state.store.secrets()?,
    }))
}

pub(super) async fn get(
    Operator(state, _): Operator,
    Path(name): Path<String>,
) -> ApiResult<Json<SecretInfo>> {
    let record = state.store.secret(&name)?.found("secret", &name)?;
    Ok(Json(record.info()))
}

pub(super) async fn delete(Admin(state, caller): Admin, Path(name): Path<String>) -> ApiResult<Deleted> {
    state.store.delete_secret(&name, caller.who()).await?;
    Ok(Deleted)
}

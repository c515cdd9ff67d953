//! `/v1/plugins`: install (validated and compiled before it is accepted), list, get,
//! update grants and limits, remove.

use super::{Admin, ApiError, ApiResult, AppState, MAX_PLUGIN_BODY_BYTES, Reader};
use crate::answer::{Created, Deleted};
use crate::error::Found;
use crate::extract::JsonBody;
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sundial_core::grants::Grants;
use sundial_core::limits::Limits;
use sundial_core::plugin::{PluginRecord, PluginUpdate};
use sundial_core::timestamp::now;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct InstallRequest {
    /// Unique name.
    #[schemars(regex(pattern = sundial_core::task::NAME_PATTERN), extend("not" = {"pattern": "^[0-7][0-9a-hjkmnp-tv-z]{25}$"}))]
    name: String,
    wasm_base64: String,
    #[serde(default)]
    grants: Grants,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    description: String,
}

/// A plugin to install.
pub(crate) struct NewPlugin {
    /// Name to install it under.
    pub name: String,
    /// Component bytes.
    pub bytes: Vec<u8>,
    /// Grants.
    pub grants: Grants,
    /// Limits.
    pub limits: Limits,
    /// Description.
    pub description: String,
    /// Shipped inside the binary.
    pub bundled: bool,
}

/// Validate, compile and store a component under a name.
pub(crate) async fn install_plugin(state: &AppState, new: NewPlugin, actor: &str) -> ApiResult<PluginRecord> {
    let NewPlugin {
        name,
        bytes,
        grants,
        limits,
        description,
        bundled,
    } = new;
    sundial_core::task::validate_name("name", &name)?;
    grants
        .validate()
        .map_err(|e| ApiError::bad_request(format!("grants.{e}")))?;
    limits
        .validate()
        .map_err(|e| ApiError::bad_request(format!("limits.{e}")))?;
    let runtime = state.runtime.clone();
    let probe = bytes.clone();
    let plugin = tokio::task::spawn_blocking(move || runtime.load(&probe))
        .await
        .map_err(|e| ApiError::internal(format!("compiling: {e}")))?
        .map_err(|e| ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_component",
            message: format!("wasm_base64: {e}"),
        })?;
    let stamp = now();
    let record = PluginRecord {
        name,
        digest: format!("sha256:{}", plugin.digest),
        world: plugin.world,
        size_bytes: bytes.len() as u64,
        imports: plugin.imports.clone(),
        grants,
        limits,
        description,
        bundled,
        pinned: false,
        installed_at: stamp.clone(),
        updated_at: stamp,
    };
    let record = state.store.insert_plugin(record, bytes, actor).await?;
    let data = serde_json::json!({
        "name": record.name, "digest": record.digest, "world": record.world,
        "bundled": record.bundled, "by": actor,
    });
    let event = sundial_core::event::internal(
        "sundial.plugin.installed",
        &record.name,
        data,
        &record.installed_at,
    );
    if let Err(e) = state.engines.outbox.emit(event, 0, None).await {
        tracing::warn!(plugin = %record.name, "emitting sundial.plugin.installed failed: {e}");
    }
    Ok(record)
}

pub(super) async fn install(
    Admin(state, caller): Admin,
    JsonBody(req): JsonBody<InstallRequest, MAX_PLUGIN_BODY_BYTES>,
) -> ApiResult<Created<PluginRecord>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(req.wasm_base64.trim())
        .map_err(|e| ApiError::bad_request(format!("wasm_base64: not base64: {e}")))?;
    let new = NewPlugin {
        name: req.name,
        bytes,
        grants: req.grants,
        limits: req.limits,
        description: req.description,
        bundled: false,
    };
    let record = install_plugin(&state, new, caller.who()).await?;
    Ok(Created(record))
}

/// `GET /v1/plugins`.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct PluginList {
    plugins: Vec<PluginRecord>,
}

/// A plugin with what its key-value namespace holds.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct PluginView {
    #[serde(flatten)]
    record: PluginRecord,
    kv: sundial_store::kv::KvUsage,
}

pub(super) async fn list(Reader(state, _): Reader) -> ApiResult<Json<PluginList>> {
    Ok(Json(PluginList {
        plugins: state.store.plugins()?,
    }))
}

/// `GET /v1/plugins/{name}`: the record, with what its key-value namespace holds
/// (`kv`: keys, bytes, and the quota from its limits).
pub(super) async fn get(Reader(state, _): Reader, Path(name): Path<String>) -> ApiResult<Json<PluginView>> {
    let record = state.store.plugin(&name)?.found("plugin", &name)?;
    let kv = state.store.kv_usage(&record.name)?;
    Ok(Json(PluginView { record, kv }))
}

pub(super) async fn update(
    Admin(state, caller): Admin,
    Path(name): Path<String>,
    JsonBody(update): JsonBody<PluginUpdate>,
) -> ApiResult<Json<PluginRecord>> {
    if let Some(g) = &update.grants {
        g.validate()
            .map_err(|e| ApiError::bad_request(format!("grants.{e}")))?;
    }
    if let Some(l) = &update.limits {
        l.validate()
            .map_err(|e| ApiError::bad_request(format!("limits.{e}")))?;
    }
    let (_before, after) = state
        .store
        .update_plugin(&name, update, now(), caller.who())
        .await?;
    Ok(Json(after))
}

pub(super) async fn remove(Admin(state, caller): Admin, Path(name): Path<String>) -> ApiResult<Deleted> {
    state.store.remove_plugin(&name, caller.who()).await?;
    Ok(Deleted)
}

//! `/v1/plugins`: install (validated and compiled before it is accepted), list, get,
//! update grants and limits, remove.
//!
//! A component is installed either as JSON (`wasm_base64`, at most
//! [`MAX_PLUGIN_BODY_BYTES`] of body) or as the raw bytes (`content-type:
//! application/wasm`, at most [`MAX_PLUGIN_WASM_BYTES`]) with the rest in the query:
//! `?name=N&description=D&grants=JSON&limits=JSON`.

use super::{Admin, ApiError, ApiResult, AppState, MAX_PLUGIN_BODY_BYTES, MAX_PLUGIN_WASM_BYTES, Reader};
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
/// A plugin to install, as JSON (the component in base64).
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
    // A taken name is refused before the compile (the insert checks again).
    if state.store.plugin(&name)?.is_some() {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: format!("plugin {name:?} already exists"),
        });
    }
    grants
        .validate()
        .map_err(|e| ApiError::bad_request(format!("grants.{e}")))?;
    limits
        .validate()
        .map_err(|e| ApiError::bad_request(format!("limits.{e}")))?;
    let runtime = state.runtime.clone();
    let (plugin, bytes) = tokio::task::spawn_blocking(move || (runtime.load(&bytes), bytes))
        .await
        .map_err(|e| ApiError::internal(format!("compiling: {e}")))?;
    let plugin = std::sync::Arc::new(plugin.map_err(|e| match e {
        // The compiler process died (killed, out of memory): not the component's fault.
        sundial_runtime::LoadError::Compiler(_) => ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "compile_failed",
            message: format!("component: {e}; nothing was installed, try again"),
        },
        e => ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_component",
            message: format!("component: {e}"),
        },
    })?);
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
    // Stored, then taken up in memory and announced, whatever becomes of the request.
    let (state, actor) = (state.clone(), actor.to_string());
    let record = sundial_engine::detach::detached(async move {
        let actor = actor.as_str();
        let record = state.store.insert_plugin(record, bytes, actor).await?;
        // Compiled once, here: its first run starts without loading it again. Not the
        // bundled ones the daemon installs at its first start: nothing uses them yet,
        // and their first run loads them from the disk cache (a deserialization).
        if !record.bundled {
            state.engines.plugins.insert(&record.digest, plugin);
        }
        // No kept instance of an earlier install under this name serves the new one.
        state.engines.plugins.runtime().drop_idle_instances();
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
    })
    .await?;
    Ok(record)
}

pub(super) async fn install(Admin(state, caller): Admin, upload: Upload) -> ApiResult<Created<PluginRecord>> {
    let new = match upload {
        Upload::Json(req) => NewPlugin {
            name: req.name,
            bytes: base64::engine::general_purpose::STANDARD
                .decode(req.wasm_base64.trim())
                .map_err(|e| ApiError::bad_request(format!("wasm_base64: not base64: {e}")))?,
            grants: req.grants,
            limits: req.limits,
            description: req.description,
            bundled: false,
        },
        Upload::Wasm(q, bytes) => NewPlugin {
            name: q.name,
            bytes,
            grants: json_param("grants", q.grants.as_deref())?,
            limits: json_param("limits", q.limits.as_deref())?,
            description: q.description.unwrap_or_default(),
            bundled: false,
        },
    };
    let record = install_plugin(&state, new, caller.who()).await?;
    Ok(Created(record))
}

/// A query parameter holding JSON (`grants`, `limits`): its default when absent.
fn json_param<T: serde::de::DeserializeOwned + Default>(name: &str, text: Option<&str>) -> ApiResult<T> {
    match text {
        None => Ok(T::default()),
        Some(t) => {
            let mut de = serde_json::Deserializer::from_str(t);
            serde_path_to_error::deserialize(&mut de)
                .map_err(|e| ApiError::bad_request(format!("query {name}: {} at {}", e.inner(), e.path())))
        }
    }
}

/// The query of a raw `application/wasm` install.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct WasmQuery {
    /// Unique name (raw uploads only; JSON installs carry it in the body).
    name: String,
    /// Description.
    description: Option<String>,
    /// Grants as a JSON object, as in the JSON install (default: none).
    grants: Option<String>,
    /// Limits as a JSON object, as in the JSON install (default limits).
    limits: Option<String>,
}

/// An install request: JSON with the component in base64, or the raw component.
pub(super) enum Upload {
    Json(InstallRequest),
    Wasm(WasmQuery, Vec<u8>),
}

impl axum::extract::FromRequest<AppState> for Upload {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> ApiResult<Upload> {
        let media = req.headers().get(axum::http::header::CONTENT_TYPE).map(|v| {
            let text = v.to_str().unwrap_or_default();
            text.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
        match media.as_deref() {
            None | Some("application/json" | "application/wasm") => {}
            Some(other) => {
                return Err(ApiError::media_type(format!(
                    "expected application/json (base64 in wasm_base64) or application/wasm (the component itself), got {other:?}"
                )));
            }
        }
        if media.as_deref() != Some("application/wasm") {
            let JsonBody(r) =
                JsonBody::<InstallRequest, MAX_PLUGIN_BODY_BYTES>::from_request(req, state).await?;
            return Ok(Upload::Json(r));
        }
        let axum::extract::Query(q) = axum::extract::Query::<WasmQuery>::try_from_uri(req.uri())
            .map_err(|e| ApiError::bad_request(format!("query: {}", e.body_text())))?;
        let (_, body) = crate::extract::body_bytes(req, MAX_PLUGIN_WASM_BYTES).await?;
        Ok(Upload::Wasm(q, Vec::from(body)))
    }
}

impl aide::OperationInput for Upload {
    fn operation_input(ctx: &mut aide::generate::GenContext, operation: &mut aide::openapi::Operation) {
        use aide::openapi::{MediaType, RequestBody, SchemaObject};
        let mut content = crate::answer::json_content::<InstallRequest>(ctx);
        let binary = SchemaObject {
            json_schema: schemars::json_schema!({"type": "string", "format": "binary"}),
            example: None,
            external_docs: None,
        };
        content.insert(
            "application/wasm".to_string(),
            MediaType {
                schema: Some(binary),
                ..Default::default()
            },
        );
        let body = RequestBody {
            description: Some(format!(
                "JSON (at most {MAX_PLUGIN_BODY_BYTES} bytes), or the component itself as application/wasm \
                 (at most {MAX_PLUGIN_WASM_BYTES} bytes) with name, description, grants and limits in the query"
            )),
            content,
            required: true,
            extensions: Default::default(),
        };
        aide::operation::set_body(ctx, operation, body);
        let schema = ctx.schema.subschema_for::<WasmQuery>();
        let mut params =
            aide::operation::parameters_from_schema(ctx, schema, aide::operation::ParamLocation::Query);
        for p in &mut params {
            if let aide::openapi::Parameter::Query { parameter_data, .. } = p {
                parameter_data.required = false;
            }
        }
        aide::operation::add_parameters(ctx, operation, params);
    }

    fn inferred_early_responses(
        ctx: &mut aide::generate::GenContext,
        _: &mut aide::openapi::Operation,
    ) -> crate::answer::Answers {
        vec![
            crate::answer::error_answer(ctx, 408, "the body did not arrive within body_timeout"),
            crate::answer::error_answer(ctx, 413, "the body is over the size limit"),
            crate::answer::error_answer(ctx, 415, "neither application/json nor application/wasm"),
        ]
    }
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
    state.engines.plugins.runtime().drop_idle_instances();
    Ok(Deleted)
}

#![recursion_limit = "512"]
//! The REST API under `/v1/`: JSON in and out, bearer-token auth with roles, errors as
//! `{"error": {"code", "message"}}` with a precise status.
//!
//! Rule of this layer: handlers decode a request, call the engine or the store, and
//! encode the answer; no domain decision is made here. See `docs/ARCHITECTURE.md`.

#![warn(missing_docs)]

mod admin;
pub mod admission;
mod backup;
mod calendars;
mod clock;
pub mod connections;
mod events;
pub mod linger;
mod metrics;
pub mod openapi;
mod plugins;
mod resource;
mod retry;
mod runs;
mod schedules;
mod secrets;
mod tasks;
pub mod tls;
mod tokens;
mod triggers;
mod upcoming;
mod webhooks;

pub mod error;
pub mod extract;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
pub use error::{ApiError, ApiResult};
pub use extract::{ADMINS, Admin, Caller, INGESTERS, Ingester, OPERATORS, Operator, READERS, Reader};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;

use schedules::Schedules;
use sundial_runtime::Runtime;
use sundial_store::SharedStore;
use tasks::Tasks;
use triggers::Triggers;
use webhooks::Webhooks;

/// Largest request body outside plugin uploads: 1 MiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest plugin upload (JSON with base64 component): 64 MiB.
pub const MAX_PLUGIN_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Shared state of the API handlers.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: SharedStore,
    /// The plugin runtime (for validating uploads).
    pub runtime: Runtime,
    /// The engines: the outbox (ingest, the run queue, the router), the executor (runs,
    /// cancellation, waiting), the scheduler (told about every schedule change), the
    /// timer loop.
    pub engines: sundial_engine::Engines,
    /// Seals secrets.
    pub secret_key: sundial_store::sealing::SecretKey,
    /// IANA zone given to schedules that name none (the daemon's `timezone` setting).
    pub default_timezone: String,
    /// Largest event accepted, in bytes.
    pub max_event_bytes: usize,
    /// Request and run-queue limits.
    pub admission: admission::Admission,
    /// The open client connections (for `/metrics`).
    pub connections: Arc<connections::Connections>,
    /// The data directory (backups read the key and token files there).
    pub data_dir: std::path::PathBuf,
}

/// Read a whole body up to `limit` bytes: 413 beyond, 408 when it does not arrive
/// within the body timeout (see [`admission`]), 400 when the client breaks it off.
pub async fn read_body(body: Body, limit: usize) -> ApiResult<Bytes> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(c) = cause {
            if c.is::<http_body_util::LengthLimitError>() {
                return ApiError {
                    status: axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    code: "too_large",
                    message: format!("the request body is larger than {limit} bytes"),
                };
            }
            if let Some(t) = c.downcast_ref::<admission::BodyTimeout>() {
                return ApiError {
                    status: axum::http::StatusCode::REQUEST_TIMEOUT,
                    code: "body_timeout",
                    message: t.to_string(),
                };
            }
            cause = c.source();
        }
        ApiError::bad_request(format!("the request body could not be read: {e}"))
    })
}

/// Parse a JSON body (415 for another content type, 400 naming the problem).
pub fn parse_json<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> ApiResult<T> {
    if let Some(ct) = headers.get(axum::http::header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default();
        if !ct.starts_with("application/json") {
            return Err(ApiError::media_type(format!(
                "expected application/json, got {ct:?}"
            )));
        }
    }
    let bad = |message: String| ApiError {
        status: axum::http::StatusCode::BAD_REQUEST,
        code: "invalid_json",
        message: format!("request body: {message}"),
    };
    let mut json: Value = sundial_core::json::parse(body).map_err(|e| bad(e.to_string()))?;
    integral_floats_to_integers(&mut json);
    let value: T = serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            bad(e.inner().to_string())
        } else {
            bad(format!("{path}: {}", e.inner()))
        }
    })?;
    Ok(value)
}

/// JSON has one number type: `304.0` is the integer 304 (as JSON Schema says), so a
/// field that wants an integer accepts it. Numbers with a fraction, or beyond 64 bits,
/// stay as they are.
fn integral_floats_to_integers(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                *value = Value::from(f as u64);
            } else if f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..0.0).contains(&f) {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

/// Install a plugin as the API does (validate, compile, store); used at first start
/// for the bundled plugins.
pub async fn plugins_install(
    state: &AppState,
    name: &str,
    bytes: Vec<u8>,
    grants: sundial_core::grants::Grants,
    limits: sundial_core::limits::Limits,
) -> ApiResult<sundial_core::plugin::PluginRecord> {
    let new = plugins::NewPlugin {
        name: name.to_string(),
        bytes,
        grants,
        limits,
        description: format!("bundled {name} plugin"),
        bundled: true,
    };
    plugins::install_plugin(state, new, "sundial").await
}

/// Apply a PATCH body (top-level JSON merge) to `current`, refusing the `fixed` keys
/// that belong to the record rather than the spec. The result still needs validating.
pub fn merge_patch<T: serde::Serialize + DeserializeOwned>(
    current: &T,
    patch: serde_json::Map<String, serde_json::Value>,
    fixed: &[&str],
) -> ApiResult<T> {
    if let Some(key) = fixed.iter().find(|k| patch.contains_key(**k)) {
        return Err(ApiError::bad_request(format!("{key}: cannot be changed")));
    }
    let mut merged = serde_json::to_value(current).map_err(|e| ApiError::internal(e.to_string()))?;
    if let serde_json::Value::Object(m) = &mut merged {
        // Top-level JSON merge patch (RFC 7386): null removes a field (back to its default).
        for (k, v) in patch {
            if v.is_null() {
                m.remove(&k);
            } else {
                m.insert(k, v);
            }
        }
    }
    // The error names the field, as a create's does.
    serde_path_to_error::deserialize(merged).map_err(|e| {
        let path = e.path().to_string();
        let message = if path == "." {
            format!("request body: {}", e.inner())
        } else {
            format!("request body: {path}: {}", e.inner())
        };
        ApiError {
            status: axum::http::StatusCode::BAD_REQUEST,
            code: "invalid_json",
            message,
        }
    })
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /openapi.json`: the API description, for the roles that read (an `ingest`
/// token may post events and nothing else, as for `/metrics`).
async fn openapi_json(_: Reader) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(openapi::document()))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// Declares every route once: builds the router from the list and publishes the same
/// list as [`ROUTES`], so what the OpenAPI check compares is what the router serves.
macro_rules! routes {
    ($( $path:literal => { $( $method:ident : $handler:expr ),+ $(,)? } ),* $(,)?) => {
        /// Every (method, path) the router serves, in OpenAPI path syntax (axum's
        /// `{param}` is the same), generated from the router's own route list.
        pub const ROUTES: &[(&str, &str)] = &[ $( $( (stringify!($method), $path), )+ )* ];

        fn with_routes(router: Router<AppState>) -> Router<AppState> {
            router $( .route($path, axum::routing::MethodRouter::new() $( .$method($handler) )+ ) )*
        }
    };
}

routes! {
    "/healthz" => { get: healthz },
    "/metrics" => { get: metrics::metrics },
    "/openapi.json" => { get: openapi_json },
    "/v1/plugins" => { get: plugins::list, post: plugins::install },
    "/v1/plugins/{name}" => { get: plugins::get, patch: plugins::update, delete: plugins::remove },
    "/v1/tasks" => { get: resource::list::<Tasks>, post: resource::create::<Tasks> },
    "/v1/tasks/{id}" => { get: resource::get::<Tasks>, patch: resource::update::<Tasks>, delete: resource::delete::<Tasks> },
    "/v1/tasks/{id}/enable" => { post: resource::enable::<Tasks> },
    "/v1/tasks/{id}/disable" => { post: resource::disable::<Tasks> },
    "/v1/tasks/{id}/run" => { post: runs::start },
    "/v1/runs" => { get: runs::list },
    "/v1/runs/{id}" => { get: runs::get },
    "/v1/runs/{id}/cancel" => { post: runs::cancel },
    "/v1/runs/{id}/retry" => { post: retry::retry },
    "/v1/runs/retry" => { post: retry::retry_many },
    "/v1/runs/cancel" => { post: retry::cancel_many },
    "/v1/tokens" => { get: tokens::list, post: tokens::create },
    "/v1/tokens/{id}" => { delete: tokens::revoke },
    "/v1/audit" => { get: tokens::audit },
    "/v1/clock" => { get: clock::get, post: clock::set },
    "/v1/events" => { get: events::list, post: events::ingest },
    "/v1/events/{seq}" => { get: events::get },
    "/v1/triggers" => { get: resource::list::<Triggers>, post: resource::create::<Triggers> },
    "/v1/triggers/{id}" => { get: resource::get::<Triggers>, patch: resource::update::<Triggers>, delete: resource::delete::<Triggers> },
    "/v1/triggers/{id}/enable" => { post: resource::enable::<Triggers> },
    "/v1/triggers/{id}/disable" => { post: resource::disable::<Triggers> },
    "/v1/secrets" => { get: secrets::list },
    "/v1/secrets/{name}" => { get: secrets::get, put: secrets::set, delete: secrets::delete },
    "/v1/webhooks" => { get: resource::list::<Webhooks>, post: resource::create::<Webhooks> },
    "/v1/webhooks/{id}" => { get: resource::get::<Webhooks>, patch: resource::update::<Webhooks>, delete: resource::delete::<Webhooks> },
    "/v1/webhooks/{id}/test" => { post: webhooks::test },
    "/v1/deliveries" => { get: webhooks::deliveries },
    "/v1/deliveries/{id}" => { get: webhooks::delivery },
    "/v1/deliveries/{id}/retry" => { post: webhooks::retry },
    "/v1/timers" => { get: triggers::timers },
    "/v1/upcoming" => { get: upcoming::upcoming },
    "/v1/calendars" => { get: calendars::list, post: calendars::create },
    "/v1/calendars/{name}" => { get: calendars::get, put: calendars::replace, delete: calendars::delete },
    "/v1/calendars/{name}/check" => { get: calendars::check },
    "/v1/maintenance" => { get: calendars::list_maintenance, post: calendars::start_maintenance },
    "/v1/maintenance/{id}/end" => { post: calendars::end_maintenance },
    "/v1/timers/{id}" => { delete: triggers::cancel_timer },
    "/v1/schedules/preview" => { post: schedules::preview },
    "/v1/schedules" => { get: resource::list::<Schedules>, post: resource::create::<Schedules> },
    "/v1/schedules/{id}" => { get: resource::get::<Schedules>, patch: resource::update::<Schedules>, delete: schedules::delete },
    "/v1/schedules/{id}/pause" => { post: resource::disable::<Schedules> },
    "/v1/schedules/{id}/resume" => { post: resource::enable::<Schedules> },
    "/v1/schedules/{id}/preview" => { get: schedules::preview_saved },
    "/v1/schedules/{id}/tasks" => { get: schedules::tasks, post: schedules::attach },
    "/v1/schedules/{id}/tasks/{task}" => { delete: schedules::detach },
    "/v1/admin/unreadable" => { get: admin::unreadable },
    "/v1/admin/backup" => { get: backup::backup },
    "/v1/admin/unreadable/{table}/{key}" => { delete: admin::delete_unreadable },
}

/// The router with every endpoint.
pub fn router(state: AppState) -> Router {
    with_routes(Router::new())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admission::limit_requests,
        ))
        .with_state(state)
}

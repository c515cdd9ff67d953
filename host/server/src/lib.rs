#![recursion_limit = "512"]
//! The REST API under `/v1/`: JSON in and out, bearer-token auth with roles, errors as
//! `{"error": {"code", "message"}}` with a precise status.
//!
//! Rule of this layer: handlers decode a request, call the engine or the store, and
//! encode the answer; no domain decision is made here. See `docs/ARCHITECTURE.md`.

#![warn(missing_docs)]

mod admin;
pub mod admission;
pub mod answer;
mod backup;
mod calendars;
mod clock;
pub mod connections;
pub mod dashboard;
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

use aide::axum::ApiRouter;
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
/// Largest component accepted as a raw `application/wasm` upload: 256 MiB.
pub const MAX_PLUGIN_WASM_BYTES: usize = 256 * 1024 * 1024;

/// Shared state of the API handlers: one reference count to clone (axum clones it for
/// every extractor of every request; a clone of the fields themselves allocated).
#[derive(Clone)]
pub struct AppState(Arc<AppShared>);

impl AppState {
    /// The handlers' state from its parts.
    pub fn new(shared: AppShared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppShared;

    fn deref(&self) -> &AppShared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct AppShared {
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
    /// The web dashboard's sessions and cookie settings.
    pub dashboard: Arc<dashboard::Dashboard>,
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
async fn openapi_json(_: Reader, axum::Extension(doc): axum::Extension<Arc<Value>>) -> axum::Json<Value> {
    axum::Json(Value::clone(&doc))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// Declares every route once: builds the router from the list (aide documents each
/// handler from its types as it routes it) and publishes the same list as [`ROUTES`],
/// and each route's summary and extra answers as [`ROUTE_DOCS`].
macro_rules! routes {
    ($( $path:literal => { $( $method:ident : $handler:expr => $summary:literal $(, $code:literal : $when:literal)* ; )+ } ),* $(,)?) => {
        /// Every (method, path) the router serves, in OpenAPI path syntax (axum's
        /// `{param}` is the same), generated from the router's own route list.
        pub const ROUTES: &[(&str, &str)] = &[ $( $( (stringify!($method), $path), )+ )* ];

        /// Each route's summary and the answers only its handler knows.
        pub const ROUTE_DOCS: &[openapi::RouteDoc] = &[ $( $( openapi::RouteDoc {
            method: stringify!($method), path: $path, summary: $summary, answers: &[ $( ($code, $when) ),* ],
        }, )+ )* ];

        fn with_routes(router: ApiRouter<AppState>) -> ApiRouter<AppState> {
            router $( .api_route($path, aide::axum::routing::ApiMethodRouter::new() $( .$method($handler) )+ ) )*
        }
    };
}

routes! {
    "/healthz" => { get: healthz => "Liveness (no token needed)"; },
    "/metrics" => { get: metrics::metrics => "Prometheus metrics (text exposition)"; },
    "/openapi.json" => { get: openapi_json => "This document"; },
    "/v1/plugins" => {
        get: plugins::list => "List plugins";
        post: plugins::install => "Install a plugin (validated and compiled first)", 409: "name taken";
    },
    "/v1/plugins/{name}" => {
        get: plugins::get => "Get a plugin, with its key-value usage and quota";
        patch: plugins::update => "Change grants, limits, description or pinning";
        delete: plugins::remove => "Remove a plugin (refused while tasks or webhooks use it)", 409: "used by tasks or webhooks (named)";
    },
    "/v1/tasks" => {
        get: resource::list::<Tasks> => "List tasks, oldest first (follow next_cursor)";
        post: resource::create::<Tasks> => "Create a task", 409: "name taken, or the plugin is not an action";
    },
    "/v1/tasks/{id}" => {
        get: resource::get::<Tasks> => "Get a task";
        patch: resource::update::<Tasks> => "Change fields of a task (top-level JSON merge, then full validation)", 409: "name taken, or the plugin is not an action";
        delete: resource::delete::<Tasks> => "Delete a task (its runs stay until retention)";
    },
    "/v1/tasks/{id}/enable" => { post: resource::enable::<Tasks> => "Enable a task"; },
    "/v1/tasks/{id}/disable" => { post: resource::disable::<Tasks> => "Disable a task (new runs are refused)"; },
    "/v1/tasks/{id}/run" => {
        post: runs::start => "Start a run; 202 once it is durably queued, 200 with the result when ?wait=true", 409: "task disabled";
    },
    "/v1/runs" => { get: runs::list => "List runs (the task log), newest first"; },
    "/v1/runs/{id}" => { get: runs::get => "Get a run with its plugin log"; },
    "/v1/runs/{id}/cancel" => { post: runs::cancel => "Cancel a queued or running run", 409: "already finished"; },
    "/v1/runs/{id}/retry" => { post: retry::retry => "Retry (or replay) a finished run: a new run of the same task with the same params, cause and event, linked by retry_of", 409: "the run is still queued or running, or its task is disabled", 429: "max_queued_runs runs wait for a worker; Retry-After says when to try again"; },
    "/v1/runs/retry" => { post: retry::retry_many => "Retry every finished run matching a filter"; },
    "/v1/runs/cancel" => { post: retry::cancel_many => "Cancel every queued or running run matching a filter"; },
    "/v1/tokens" => {
        get: tokens::list => "List tokens (never secrets)";
        post: tokens::create => "Create a token; the secret is in this answer only", 409: "name taken";
    },
    "/v1/tokens/{id}" => { delete: tokens::revoke => "Revoke a token (by id or name)", 409: "the last admin token, or the token making the request"; },
    "/v1/audit" => { get: tokens::audit => "The audit log, newest first"; },
    "/v1/clock" => {
        get: clock::get => "The scheduler's clock (manual when the daemon runs with --test-clock)";
        post: clock::set => "Move a manual test clock forward; returns once every slot due by then is recorded", 409: "the daemon runs on the system clock";
    },
    "/v1/events" => {
        get: events::list => "The event log, newest first, with what each event caused";
        post: events::ingest => "Post a CloudEvent (structured), a batch, or one event in binary mode (ce-* headers); 202 once it is stored with the runs and timers it started";
    },
    "/v1/events/{seq}" => { get: events::get => "One event by its seq"; },
    "/v1/triggers" => {
        get: resource::list::<Triggers> => "List triggers, oldest first (follow next_cursor)";
        post: resource::create::<Triggers> => "Create a trigger", 409: "name taken";
    },
    "/v1/triggers/{id}" => {
        get: resource::get::<Triggers> => "Get a trigger";
        patch: resource::update::<Triggers> => "Change fields of a trigger (top-level JSON merge; the result is validated again)", 409: "name taken";
        delete: resource::delete::<Triggers> => "Delete a trigger (its pending timers stay; cancel them under /v1/timers)";
    },
    "/v1/triggers/{id}/enable" => { post: resource::enable::<Triggers> => "Enable a trigger"; },
    "/v1/triggers/{id}/disable" => { post: resource::disable::<Triggers> => "Disable a trigger"; },
    "/v1/secrets" => { get: secrets::list => "Secret names with sizes and timestamps (never values)"; },
    "/v1/secrets/{name}" => {
        get: secrets::get => "One secret's metadata (never its value)";
        put: secrets::set => "Set a secret (write-only; sealed with the daemon's key)";
        delete: secrets::delete => "Delete a secret";
    },
    "/v1/webhooks" => {
        get: resource::list::<Webhooks> => "List webhooks, oldest first (follow next_cursor)";
        post: resource::create::<Webhooks> => "Create a webhook (its formatter must be an installed formatter plugin and its secrets must exist)", 409: "name taken";
    },
    "/v1/webhooks/{id}" => {
        get: resource::get::<Webhooks> => "Get a webhook";
        patch: resource::update::<Webhooks> => "Change fields of a webhook (top-level JSON merge, validated again; enabling clears disabled_reason)", 409: "name taken";
        delete: resource::delete::<Webhooks> => "Delete a webhook (its queued deliveries die)";
    },
    "/v1/webhooks/{id}/test" => { post: webhooks::test => "Queue a delivery of a sample event (sundial.webhook.test)"; },
    "/v1/deliveries" => { get: webhooks::deliveries => "Deliveries, newest first"; },
    "/v1/deliveries/{id}" => { get: webhooks::delivery => "One delivery with its attempts"; },
    "/v1/deliveries/{id}/retry" => { post: webhooks::retry => "Queue a dead delivery again, or make a queued one due now", 409: "already delivered"; },
    "/v1/timers" => { get: triggers::timers => "Pending delayed trigger targets, oldest first"; },
    "/v1/upcoming" => { get: upcoming::upcoming => "The agenda: every schedule's fires and every pending timer in the next hours, in time order, with DST changes"; },
    "/v1/calendars" => {
        get: calendars::list => "List calendars";
        post: calendars::create => "Create a calendar: excluded days and ranges schedules honour", 409: "name taken";
    },
    "/v1/calendars/{name}" => {
        get: calendars::get => "Get a calendar";
        put: calendars::replace => "Replace a calendar (same name)";
        delete: calendars::delete => "Delete a calendar (409 while schedules name it)", 409: "schedules use it";
    },
    "/v1/calendars/{name}/check" => { get: calendars::check => "Whether an instant is excluded, and by which window"; },
    "/v1/maintenance" => {
        get: calendars::list_maintenance => "List maintenance windows (ended ones are kept 30 days)";
        post: calendars::start_maintenance => "Start a maintenance window: schedules (all, or those named) do not fire in it";
    },
    "/v1/maintenance/{id}/end" => { post: calendars::end_maintenance => "End a maintenance window now", 409: "already ended"; },
    "/v1/timers/{id}" => { delete: triggers::cancel_timer => "Cancel a pending timer"; },
    "/v1/schedules/preview" => { post: schedules::preview => "Preview the fire times of an unsaved rule (each in UTC and the zone, with DST notes)"; },
    "/v1/schedules" => {
        get: resource::list::<Schedules> => "List schedules with their tasks and next slot, oldest first (follow next_cursor)";
        post: resource::create::<Schedules> => "Create a schedule", 409: "name taken";
    },
    "/v1/schedules/{id}" => {
        get: resource::get::<Schedules> => "Get a schedule";
        patch: resource::update::<Schedules> => "Change fields of a schedule (top-level JSON merge, then full validation)", 409: "name taken";
        delete: schedules::delete => "Delete a schedule; 409 naming the tasks it drives unless ?force=true detaches them", 409: "it drives tasks (named)";
    },
    "/v1/schedules/{id}/pause" => { post: resource::disable::<Schedules> => "Pause a schedule"; },
    "/v1/schedules/{id}/resume" => { post: resource::enable::<Schedules> => "Resume a schedule"; },
    "/v1/schedules/{id}/preview" => { get: schedules::preview_saved => "Next fire times of a saved schedule"; },
    "/v1/schedules/{id}/tasks" => {
        get: schedules::tasks => "Tasks a schedule drives";
        post: schedules::attach => "Attach a task";
    },
    "/v1/schedules/{id}/tasks/{task}" => { delete: schedules::detach => "Detach a task"; },
    "/v1/admin/unreadable" => { get: admin::unreadable => "Stored records that do not decode (lists, pages and start-up skip them)"; },
    "/v1/admin/backup" => { get: backup::backup => "A consistent backup of the running daemon: a tar of the store, its secret key and the admin token file (see docs/operations.md)"; },
    "/v1/admin/unreadable/{table}/{key}" => { delete: admin::delete_unreadable => "Delete an unreadable record and the index entries that point to it (409 if it reads)", 409: "the record reads; delete it through its own API"; },
}

/// The routes (still needing the state) and the document describing them.
pub fn documented_routes() -> (Router<AppState>, Value) {
    let mut api = aide::openapi::OpenApi::default();
    let router = with_routes(ApiRouter::new()).finish_api(&mut api);
    (router, openapi::document(api, ROUTE_DOCS))
}

/// The router with every endpoint.
pub fn router(state: AppState) -> Router {
    let (routes, doc) = documented_routes();
    routes
        .merge(dashboard::routes())
        .fallback(not_found)
        .layer(axum::Extension(Arc::new(doc)))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admission::limit_requests,
        ))
        .with_state(state)
}

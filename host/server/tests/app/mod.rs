//! The in-process app the server's tests drive: the real router, engines and redb store
//! in a temporary directory, one token per role, requests sent with
//! `tower::ServiceExt::oneshot` (no socket, no process).

#![allow(dead_code)] // each test binary uses its own part

pub mod web;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use sundial_server::{AppState, router};
use sundial_store::SharedStore;
use sundial_store::tokens::{Role, TokenRecord};
use tower::ServiceExt;

/// A daemon's API without the daemon: state on a fresh store, and one token per role.
pub struct App {
    pub state: AppState,
    _dir: tempfile::TempDir,
}

pub const ROLES: [(Role, &str); 4] = [
    (Role::Admin, "sdl_admin"),
    (Role::Operator, "sdl_operator"),
    (Role::Viewer, "sdl_viewer"),
    (Role::Ingest, "sdl_ingest"),
];

impl App {
    pub async fn new() -> App {
        App::with_queue(100).await
    }

    /// An app whose run queue holds at most `max_queued_runs` runs.
    pub async fn with_queue(max_queued_runs: usize) -> App {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(sundial_store::Store::open(dir.path(), 64).unwrap());
        for (role, secret) in ROLES {
            let record = TokenRecord {
                id: sundial_core::ids::new_id(),
                name: format!("{role:?}").to_lowercase(),
                role,
                created_at: sundial_core::timestamp::now(),
            };
            store.insert_token(secret, record, "test").await.unwrap();
        }
        let runtime = sundial_runtime::Runtime::new(sundial_runtime::RuntimeConfig {
            max_instances: 8,
            ..Default::default()
        })
        .unwrap();
        let key = sundial_store::sealing::SecretKey::from_bytes([7; 32]);
        let engines = sundial_engine::Engines::start(sundial_engine::EngineConfig {
            store: store.clone(),
            runtime: runtime.clone(),
            services: Arc::new(sundial_runtime::MemoryServices::default()),
            key: key.clone(),
            network: Default::default(),
            clock: sundial_engine::clock::Clock::system(),
            workers: 2,
            max_queued_runs,
            route_limits: Default::default(),
            zone: chrono_tz::UTC,
            plugin_memory: sundial_engine::plugins::DEFAULT_CAPACITY_BYTES,
        })
        .await
        .unwrap();
        let state = AppState::new(sundial_server::AppShared {
            store,
            runtime,
            engines,
            secret_key: key,
            default_timezone: "UTC".into(),
            max_event_bytes: 64 * 1024,
            admission: sundial_server::admission::Admission::new(64, 100, Duration::from_secs(5)),
            connections: Arc::new(sundial_server::connections::Connections::default()),
            data_dir: dir.path().to_path_buf(),
            dashboard: Arc::new(sundial_server::dashboard::Dashboard::new(false)),
        });
        App { state, _dir: dir }
    }

    /// Send one request; (status, JSON body or null).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Body>,
        content_type: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let req = req.body(body.unwrap_or_else(Body::empty)).unwrap();
        let resp = router(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None, None).await
    }

    /// `POST /v1/tasks` as the admin, a body of any content type.
    pub async fn post_task_raw(&self, body: &'static str, content_type: &str) -> (StatusCode, Value) {
        let body = Some(Body::from(body));
        self.call(
            Method::POST,
            "/v1/tasks",
            Some("sdl_admin"),
            body,
            Some(content_type),
        )
        .await
    }

    /// `POST /v1/tasks` as the admin.
    pub async fn post_task(&self, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, "/v1/tasks", "sdl_admin", body).await
    }

    pub async fn send(&self, method: Method, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let body = Body::from(body.to_string());
        self.call(method, path, Some(token), Some(body), Some("application/json"))
            .await
    }
}

impl App {
    /// Send a request as it is; the answer's status, headers and body text.
    pub async fn raw(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
        let resp = router(self.state.clone()).oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }
}

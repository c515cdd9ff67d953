//! The nine bundled plugins, run as the real compiled components embedded in the
//! binary (`sundial::bundled`) through the host runtime, against real peers on
//! loopback: HTTP servers, an SMTP relay and a stand-in VergeOS API. Every expected
//! output, body and error below is derived from the plugin's source (`plugins/*/src`,
//! `sdk/src/template.rs`); where a message comes from a library (serde, lettre,
//! wasi-http), only its stable part is asserted.
//!
//! Servers run on their own runtimes and are created outside any async context; each
//! plugin run gets a fresh tokio runtime of its own (see [`block_on`]).

use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use sundial_core::grants::{Grants, HostPattern};
use sundial_core::invocation::{Cause, Delivery, Event, HttpBody, Invocation, RunError, RunReport};
use sundial_core::limits::Limits;
use sundial_core::log::{Level, Origin, RunLog};
use sundial_core::run::{Run, RunCause, RunStatus};
use sundial_runtime::mail::{MailConfig, MailError, Mailer, Message};
use sundial_runtime::services::BoxFuture;
use sundial_runtime::{HostServices, MemoryServices, Plugin, PluginIdentity, Runtime};
use sundial_tests::smtp::SmtpServer;
use sundial_tests::vergeos::VergeOs;
use sundial_tests::{Answer, Received, error_message, find_secret, runtime, serve_http};

// ---------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------

/// The one runtime these tests use (loopback allowed: every peer is on 127.0.0.1).
/// A plugin is compiled for one engine, so all of them are loaded into this one.
fn rt() -> Runtime {
    runtime(true)
}

/// Bundled plugin `name`, compiled once per test process.
fn plugin(name: &'static str) -> Arc<Plugin> {
    static LOADED: OnceLock<Mutex<HashMap<&'static str, Arc<Plugin>>>> = OnceLock::new();
    let mut loaded = LOADED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    loaded
        .entry(name)
        .or_insert_with(|| {
            let bytes =
                sundial::bundled::get(name).unwrap_or_else(|| panic!("{name:?} is not a bundled plugin"));
            Arc::new(
                rt().load(bytes)
                    .unwrap_or_else(|e| panic!("bundled plugin {name} does not load: {e}")),
            )
        })
        .clone()
}

/// Run `future` on a fresh multi-threaded tokio runtime (dropped outside async code).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Runtime::new()
        .expect("tokio runtime")
        .block_on(future)
}

fn identity(name: &str, grants: Grants) -> Arc<PluginIdentity> {
    Arc::new(PluginIdentity {
        name: name.to_string(),
        grants,
    })
}

fn memory() -> Arc<dyn HostServices> {
    Arc::new(MemoryServices::default())
}

fn with_secret(name: &str, value: &str) -> Arc<dyn HostServices> {
    Arc::new(MemoryServices::with_secrets([(
        name.to_string(),
        value.to_string(),
    )]))
}

/// Run action `name` (installed under that name) once.
fn run_action(
    name: &'static str,
    grants: Grants,
    services: Arc<dyn HostServices>,
    limits: Limits,
    inv: &Invocation,
) -> RunReport<Value> {
    let plugin = plugin(name);
    let rt = rt();
    block_on(rt.run_action(&plugin, identity(name, grants), &limits, services, inv))
}

/// Run formatter `name` (installed under that name) once.
fn run_formatter(
    name: &'static str,
    grants: Grants,
    services: Arc<dyn HostServices>,
    limits: Limits,
    delivery: &Delivery,
) -> RunReport<HttpBody> {
    let plugin = plugin(name);
    let rt = rt();
    block_on(rt.run_formatter(&plugin, identity(name, grants), &limits, services, delivery))
}

/// Format `delivery` with no grants, in-memory services and default limits.
fn format(name: &'static str, delivery: &Delivery) -> RunReport<HttpBody> {
    run_formatter(name, Grants::default(), memory(), Limits::default(), delivery)
}

/// The body of a successful formatter run as (content type, text); formatters here
/// never add headers.
fn formatted(report: &RunReport<HttpBody>) -> (String, String) {
    let body = match &report.result {
        Ok(b) => b,
        Err(e) => panic!("the formatter failed: {e}\n{report:#?}"),
    };
    assert!(body.headers.is_empty(), "no extra headers: {report:#?}");
    let text = String::from_utf8(body.body.clone())
        .unwrap_or_else(|e| panic!("body is not UTF-8 ({e}): {report:#?}"));
    (body.content_type.clone(), text)
}

/// The body of a successful formatter run, which must be `application/json`, parsed.
fn json_body(report: &RunReport<HttpBody>) -> Value {
    let (content_type, text) = formatted(report);
    assert_eq!(content_type, "application/json", "{report:#?}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"))
}

/// The error of a run that must have failed.
fn error_of<T: std::fmt::Debug>(report: &RunReport<T>) -> &RunError {
    match &report.result {
        Err(e) => e,
        Ok(out) => panic!("expected the run to fail, it returned {out:?}\n{report:#?}"),
    }
}

/// Whether the log holds exactly this line.
fn logged(log: &RunLog, level: Level, origin: Origin, text: &str) -> bool {
    log.lines
        .iter()
        .any(|l| l.level == level && l.origin == origin && l.message == text)
}

/// Assert that the host logged exactly `text` at `level` during the run.
#[track_caller]
fn assert_host_logged<T: std::fmt::Debug>(report: &RunReport<T>, level: Level, text: &str) {
    assert!(logged(&report.log, level, Origin::Host, text), "{report:#?}");
}

/// Assert that the run ended with exactly `error` and the host logged `text` at `level`.
#[track_caller]
fn assert_refused<T: std::fmt::Debug + PartialEq>(
    report: &RunReport<T>,
    error: RunError,
    level: Level,
    text: &str,
) {
    assert_eq!(report.result, Err(error), "{report:#?}");
    assert_host_logged(report, level, text);
}

/// Assert that the run failed as retryable because nobody listened: its message starts
/// with `prefix` and names `ConnectionRefused`.
#[track_caller]
fn assert_connection_refused<T: std::fmt::Debug>(report: &RunReport<T>, prefix: &str) {
    let m = error_message(report, "retryable");
    assert!(m.starts_with(prefix) && m.contains("ConnectionRefused"), "{m}");
}

/// The messages the plugin itself logged (`host.log`), in order.
fn plugin_lines(log: &RunLog) -> Vec<&str> {
    log.lines
        .iter()
        .filter(|l| l.origin == Origin::Plugin)
        .map(|l| l.message.as_str())
        .collect()
}

/// Grants for outbound HTTP to `127.0.0.1:port` only.
fn host_grant(port: u16) -> Grants {
    Grants {
        hosts: vec![HostPattern::parse(&format!("127.0.0.1:{port}")).unwrap()],
        ..Grants::default()
    }
}

/// A loopback port nobody listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().unwrap().port()
}

/// An answer with this status, headers and body.
fn answer(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Answer {
    Answer {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.into(),
        hang: false,
        delay_ms: 0,
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

/// A real HTTP server on loopback that records every request and answers with a
/// function of it. Dropping it stops it (outside async code only).
struct Http {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Received>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Http {
    fn start(respond: impl Fn(&Received) -> Answer + Send + Sync + 'static) -> Http {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let (addr, runtime) = serve_http(Arc::new(move |req: Received| {
            let a = respond(&req);
            log.lock().unwrap_or_else(|e| e.into_inner()).push(req);
            a
        }));
        Http {
            addr,
            seen,
            _runtime: runtime,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn grants(&self) -> Grants {
        host_grant(self.addr.port())
    }

    fn requests(&self) -> Vec<Received> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

// ---------------------------------------------------------------------------------
// Deliveries and events shared by the formatter tests
// ---------------------------------------------------------------------------------

/// The event most formatter tests deliver.
fn sync_event() -> Event {
    Event {
        id: "e-1".into(),
        kind: "sync.failed".into(),
        source: "/sync".into(),
        subject: Some("vm-7".into()),
        time: "2026-11-27T10:00:00Z".into(),
        data: json!({"host": "node-3", "errors": 2}),
    }
}

/// `sync_event` with another type and data.
fn event(kind: &str, data: Value) -> Event {
    Event {
        kind: kind.into(),
        data,
        ..sync_event()
    }
}

/// The sample event of `POST /v1/webhooks/{id}/test` (host/server/src/webhooks.rs).
fn test_event() -> Event {
    Event {
        id: "t-1".into(),
        kind: "sundial.webhook.test".into(),
        source: "sundial".into(),
        subject: Some("alerts".into()),
        time: "2026-11-27T10:00:00Z".into(),
        data: json!({"message": "a test delivery from Sundial", "by": "admin"}),
    }
}

/// The data of a `sundial.run.*` event, as the executor builds it
/// (host/engine/src/executor/outcome.rs).
fn run_event_data(status: &str) -> Value {
    let error = if status == "failed" {
        json!({"kind": "failed", "message": "boom"})
    } else {
        Value::Null
    };
    json!({"run": "01RUNID", "task": "backup", "task_id": "T1", "status": status, "attempt": 1,
           "cause": {"kind": "manual"}, "error": error, "not_before": null})
}

/// A `sundial.run.<status>` event about task `backup`.
fn run_event(status: &str) -> Event {
    Event {
        id: "r-1".into(),
        kind: format!("sundial.run.{status}"),
        source: "sundial".into(),
        subject: Some("backup".into()),
        time: "2026-11-27T10:00:00Z".into(),
        data: run_event_data(status),
    }
}

/// A failed run of task `backup`, as JSON (what a run notification carries).
fn failed_run() -> Value {
    let mut run = Run::queued(
        "T1",
        "backup",
        RunCause::Manual,
        json!({}),
        None,
        0,
        "2026-11-27T09:59:00Z".into(),
    );
    run.id = "01RUNID".into();
    run.status = RunStatus::Failed;
    run.attempt = 1;
    run.error = Some(RunError::Failed("boom".into()));
    run.finished_at = Some("2026-11-27T10:00:00Z".into());
    serde_json::to_value(&run).expect("a run serializes")
}

/// A succeeded run of task `backup`, as JSON.
fn succeeded_run() -> Value {
    let mut run: Run = serde_json::from_value(failed_run()).expect("a run");
    run.status = RunStatus::Succeeded;
    run.error = None;
    run.output = Some(json!({"copied": 12}));
    serde_json::to_value(&run).expect("a run serializes")
}

/// The run of task `page-oncall` (started by hand, with params) whose action is
/// webhook delivery `D1`, as that delivery carries it (host/engine/src/executor/outcome.rs:
/// the run as it finished, its output naming the delivery).
fn task_action_run() -> Value {
    let mut run = Run::queued(
        "T2",
        "page-oncall",
        RunCause::Manual,
        json!({"level": 2}),
        None,
        0,
        "2026-11-27T09:59:00Z".into(),
    );
    run.id = "01RUN2".into();
    run.status = RunStatus::Succeeded;
    run.attempt = 1;
    run.started_by = "admin".into();
    run.output = Some(json!({"delivery": "D1", "webhook": "alerts"}));
    serde_json::to_value(&run).expect("a run serializes")
}

/// Delivery `D1` of webhook `alerts`, attempt 2, default config, no template.
fn delivery(event: Option<Event>, run: Option<Value>) -> Delivery {
    Delivery {
        id: "D1".into(),
        webhook: "alerts".into(),
        attempt: 2,
        timestamp: "2026-11-27T10:00:05Z".into(),
        event,
        run,
        config: json!({}),
        template: None,
    }
}

/// Delivery of `event` with this formatter config and template.
fn configured(event: Event, config: Value, template: Option<&str>) -> Delivery {
    Delivery {
        config,
        template: template.map(str::to_string),
        ..delivery(Some(event), None)
    }
}

mod echo;
mod email;
mod formatters;
mod http_request;
mod vergeos;

//! Helpers for Sundial's workspace-level integration tests: where the real binary and
//! the real compiled plugins are, a shared runtime, and small loopback HTTP servers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use sundial::runtime::{
    Grants, Invocation, Limits, MemoryServices, NetworkPolicy, Plugin, PluginIdentity, RunReport, Runtime,
    RuntimeConfig,
};

/// Path of a compiled wasm plugin by crate name, e.g. `sundial-fixture-hostile`.
pub fn wasm(package: &str) -> PathBuf {
    let path = PathBuf::from(env!("SUNDIAL_WASM_DIR")).join(format!("{}.wasm", package.replace('-', "_")));
    assert!(
        path.exists(),
        "{} is missing: the tests crate's build script builds it",
        path.display()
    );
    path
}

/// Path of the `sundial` binary built by `cargo test` at the workspace root.
pub fn sundial_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/sundial
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join(format!("sundial{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test` at the workspace root, which builds it",
        bin.display()
    );
    bin
}

/// One runtime per test process (as the daemon has one), loopback allowed or not.
pub fn runtime(allow_loopback: bool) -> Runtime {
    static DENY: OnceLock<Runtime> = OnceLock::new();
    static ALLOW: OnceLock<Runtime> = OnceLock::new();
    let cell = if allow_loopback { &ALLOW } else { &DENY };
    cell.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            network: NetworkPolicy {
                allow_loopback,
                allow_private: false,
            },
            max_instances: 16,
            ..RuntimeConfig::default()
        })
        .expect("runtime")
    })
    .clone()
}

/// Load a compiled plugin into `runtime`.
pub fn load(runtime: &Runtime, package: &str) -> Plugin {
    runtime.load_file(&wasm(package)).expect("plugin loads")
}

/// Run an action once with the given grants and limits and in-memory services.
pub async fn run(
    runtime: &Runtime,
    plugin: &Plugin,
    grants: Grants,
    limits: Limits,
    params: serde_json::Value,
) -> RunReport<serde_json::Value> {
    let identity = Arc::new(PluginIdentity {
        name: "test".into(),
        grants,
    });
    let services = Arc::new(MemoryServices::with_secrets([(
        "token".to_string(),
        "s3cret".to_string(),
    )]));
    let inv = Invocation::manual("test-task", params);
    runtime
        .run_action(plugin, identity, &limits, services, &inv)
        .await
}

/// What a test HTTP server does with each request.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// Answer 200 with a JSON body echoing the method and path.
    Ok,
    /// Accept the connection and never answer.
    Hang,
}

/// Start a real HTTP/1.1 server on 127.0.0.1 (random port) in the background.
pub async fn http_server(behaviour: Behaviour) -> SocketAddr {
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if let Behaviour::Hang = behaviour {
                    let _keep = stream;
                    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                    return;
                }
                let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let body = serde_json::json!({
                        "method": req.method().as_str(),
                        "path": req.uri().path(),
                        "idempotency_key": req.headers().get("idempotency-key").and_then(|v| v.to_str().ok()),
                    });
                    Ok::<_, std::convert::Infallible>(
                        hyper::Response::builder()
                            .header("content-type", "application/json")
                            .body(http_body_util::Full::new(bytes::Bytes::from(body.to_string())))
                            .expect("response"),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

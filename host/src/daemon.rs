//! `sundial serve`: open the store, install the bundled plugins on first start, make
//! sure an admin token exists, start the runtime and executor, recover what a previous
//! process left, and serve the API until SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use sundial_core::grants::{Grants, NetworkPolicy};
use sundial_core::timestamp::now;
use sundial_engine::executor::DEFAULT_WORKERS;
use sundial_runtime::{Runtime, RuntimeConfig};
use sundial_server as api;
use sundial_server::AppState;
use sundial_store::Store;
use sundial_store::tokens::{Role, TokenRecord};

/// Settings of the daemon (defaults documented on each field).
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Data directory: `sundial.redb`, `admin.token`, `cache/`. Default `./sundial-data`.
    pub data_dir: PathBuf,
    /// Directory of compiled plugins (native code: it must be trusted). Default: none,
    /// meaning `cache/` in the data directory. Entries are named by the component's
    /// digest and the engine's fingerprint and written atomically, so daemons may share
    /// one.
    pub compile_cache: Option<PathBuf>,
    /// Address the API listens on. Default `127.0.0.1:7780`.
    pub listen: SocketAddr,
    /// Runs executing at once. Default 64 ([`DEFAULT_WORKERS`]).
    pub workers: usize,
    /// Most mutations per store commit. Default 1024.
    pub max_batch: usize,
    /// Store page cache in bytes (redb). Default 8 MiB.
    pub cache_bytes: usize,
    /// The store's backend. Default redb in the data directory.
    pub store: StoreChoice,
    /// Address ranges plugins may reach. Default: public only.
    pub network: NetworkPolicy,
    /// How long a graceful stop waits for running runs. Default 30 s.
    pub grace: std::time::Duration,
    /// Task-log retention defaults and interval.
    pub retention: sundial_engine::retention::RetentionDefaults,
    /// Start on a manual test clock standing at this time (moved with `POST /v1/clock`)
    /// instead of the wall clock. Default: none (wall clock). For tests only.
    pub test_clock: Option<chrono::DateTime<chrono::Utc>>,
    /// Testing hook: while this file exists, store writes fail with ENOSPC (see
    /// [`sundial_store::faults`]). Default: none.
    pub inject_disk_full: Option<PathBuf>,
    /// IANA zone of schedules that name none. Default `UTC`.
    pub timezone: String,
    /// Causal depth beyond which events are not routed. Default 8.
    pub max_event_depth: u32,
    /// Runs, timers and webhook deliveries one causal chain (everything descended from
    /// one outside event, manual run or schedule slot) may start. Default 1000.
    pub max_chain: u64,
    /// Largest event accepted, in bytes (its JSON). Default 256 KiB.
    pub max_event_bytes: usize,
    /// Compiled plugins kept loaded in memory, in bytes. Default 1 GiB.
    pub plugin_memory: usize,
    /// Core wasm instances one plugin instance may create. Default 96.
    pub plugin_core_instances: u32,
    /// Requests handled at once; more are answered 503 at once. Default 512.
    pub max_requests: usize,
    /// Runs waiting for a worker before manual runs and events are refused with 429.
    /// Default 10 000.
    pub max_queued_runs: usize,
    /// Time a request body has to arrive after the request's head; a slower one is
    /// answered 408. Default 60 s.
    pub body_timeout: std::time::Duration,
    /// Client connections open at once; at the limit the oldest idle one is closed for
    /// a new one, or the new one is answered 503 when all are busy. Default 4096, and
    /// at most a quarter of the open-file limit.
    pub max_connections: usize,
    /// Time a client has to send a request head (new or idle keep-alive connections);
    /// then the connection is closed. Default 10 s.
    pub header_timeout: std::time::Duration,
    /// The SMTP relay plugins granted `mail` send through. Default: none (sending
    /// fails with `denied`).
    pub mail: Option<sundial_runtime::mail::MailConfig>,
    /// TLS for the API: the certificate chain and private key (PEM files). Default:
    /// none (plain HTTP).
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            data_dir: PathBuf::from("sundial-data"),
            compile_cache: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 7780)),
            workers: DEFAULT_WORKERS,
            max_batch: sundial_store::writer::DEFAULT_MAX_BATCH,
            cache_bytes: sundial_store::DEFAULT_CACHE_BYTES,
            store: StoreChoice::Redb,
            network: NetworkPolicy::default(),
            retention: sundial_engine::retention::RetentionDefaults::default(),
            grace: std::time::Duration::from_secs(30),
            test_clock: None,
            inject_disk_full: None,
            timezone: "UTC".into(),
            max_event_depth: sundial_engine::router::DEFAULT_MAX_DEPTH,
            max_chain: sundial_core::event::budget::DEFAULT_MAX_CHAIN,
            max_event_bytes: sundial_core::event::cloudevent::DEFAULT_MAX_EVENT_BYTES,
            plugin_memory: sundial_engine::plugins::DEFAULT_CAPACITY_BYTES,
            plugin_core_instances: sundial_runtime::PoolLimits::default().core_instances,
            max_requests: sundial_server::admission::DEFAULT_MAX_REQUESTS,
            max_queued_runs: sundial_server::admission::DEFAULT_MAX_QUEUED_RUNS,
            body_timeout: sundial_server::admission::DEFAULT_BODY_TIMEOUT,
            max_connections: sundial_server::connections::DEFAULT_MAX_CONNECTIONS,
            header_timeout: sundial_server::connections::DEFAULT_HEADER_TIMEOUT,
            mail: None,
            tls: None,
        }
    }
}

/// Where the daemon keeps its state.
#[derive(Debug, Clone)]
pub enum StoreChoice {
    /// `sundial.redb` in the data directory (one node).
    Redb,
    /// A PostgreSQL database, which several nodes may share (`docs/cluster.md`).
    Postgres(sundial_store::PgOptions),
}

/// Open the store `config` names.
async fn open_store(config: &DaemonConfig) -> Result<sundial_store::SharedStore, String> {
    let dir = &config.data_dir;
    Ok(match &config.store {
        StoreChoice::Redb => Arc::new(
            Store::open_options(
                dir,
                config.max_batch,
                config.cache_bytes,
                config.inject_disk_full.clone(),
            )
            .map_err(|e| format!("opening the store in {}: {e}", dir.display()))?,
        ),
        StoreChoice::Postgres(options) => {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            let mut options = options.clone();
            options.node = crate::node::claim(dir)?;
            let store = sundial_store::PgStore::connect(&options).await.map_err(|e| {
                format!(
                    "opening the store in PostgreSQL at {}: {e}",
                    sundial_store::pg::redact_url(&options.url)
                )
            })?;
            tracing::info!(
                url = store.url(),
                node = store.node(),
                lease_s = store.lease().as_secs_f64(),
                "store: PostgreSQL (cluster node)"
            );
            Arc::new(store)
        }
    })
}

/// Start everything and serve until a shutdown signal. Returns an error message for
/// startup failures.
pub async fn serve(config: DaemonConfig) -> Result<(), String> {
    let dir = &config.data_dir;
    // What can fail without touching the data directory fails first: a bad certificate
    // or a port in use leaves no half-made data directory behind.
    let tls = match &config.tls {
        Some((cert, key)) => Some(sundial_server::tls::server_config(cert, key)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    // The engines and the API see the store only through its traits.
    let store = open_store(&config).await?;
    // Descriptors: the soft limit goes up to the hard one, and client connections and
    // plugin requests each get at most a quarter of it.
    let open_files = match crate::fdlimit::raise_nofile() {
        Ok((before, after)) => {
            if after > before {
                tracing::info!(
                    before,
                    after,
                    "raised the open-file limit (RLIMIT_NOFILE) to its hard limit"
                );
            } else {
                tracing::info!(
                    open_files = after,
                    "open-file limit (RLIMIT_NOFILE) already at its hard limit"
                );
            }
            after
        }
        Err(e) => {
            let soft = crate::fdlimit::nofile().map(|(soft, _)| soft).unwrap_or(1024);
            tracing::warn!("raising the open-file limit (RLIMIT_NOFILE) failed: {e}; keeping {soft}");
            soft
        }
    };
    let share = crate::fdlimit::share(open_files);
    let connection_limits = sundial_server::connections::ConnectionLimits {
        max_connections: config.max_connections.min(share),
        header_timeout: config.header_timeout,
        tls: tls.clone(),
    };
    let max_outbound = sundial_runtime::DEFAULT_MAX_OUTBOUND.min(share);
    tracing::info!(
        open_files,
        max_connections = connection_limits.max_connections,
        max_plugin_requests = max_outbound,
        "descriptor limits"
    );
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(config.compile_cache.clone().unwrap_or_else(|| dir.join("cache"))),
        network: config.network.clone(),
        max_instances: (config.workers as u32).saturating_mul(2).max(8),
        max_outbound,
        pool: sundial_runtime::PoolLimits {
            core_instances: config.plugin_core_instances,
            ..Default::default()
        },
        compiler: compiler_process(),
        ..RuntimeConfig::default()
    })
    .map_err(|e| e.to_string())?;
    sundial_store::backup::clean_leftovers(dir);
    let sealed: Vec<(String, sundial_store::sealing::Sealed)> = store
        .sealed_secrets()
        .map_err(|e| format!("reading the secrets: {e}"))?;
    let key =
        sundial_store::sealing::SecretKey::load_or_create(dir, sealed.len()).map_err(|e| e.to_string())?;
    key.verify(&sealed, &sundial_store::sealing::SecretKey::source(dir))
        .map_err(|e| e.to_string())?;
    let mailer = match config.mail.clone() {
        Some(m) => {
            let mailer = sundial_runtime::mail::Mailer::new(m)?;
            tracing::info!(relay = %mailer.config().host, port = mailer.config().port(), "mail relay configured");
            Some(mailer)
        }
        None => None,
    };
    let services = Arc::new(sundial_engine::services::StoreServices {
        store: store.clone(),
        key: key.clone(),
        mailer,
    });
    let clock = match config.test_clock {
        Some(t) => {
            tracing::warn!(now = %t, "running on a manual test clock: schedules follow POST /v1/clock, not the wall clock");
            sundial_engine::clock::Clock::manual(t)
        }
        None => sundial_engine::clock::Clock::system(),
    };
    let engines = sundial_engine::Engines::start(sundial_engine::EngineConfig {
        store: store.clone(),
        runtime: runtime.clone(),
        services,
        key: key.clone(),
        network: config.network.clone(),
        clock,
        workers: config.workers,
        max_queued_runs: config.max_queued_runs,
        route_limits: sundial_engine::router::RouteLimits {
            max_depth: config.max_event_depth,
            max_chain: config.max_chain,
        },
        zone: sundial_core::schedule::zone::parse_tz(&config.timezone)?,
        plugin_memory: config.plugin_memory,
    })
    .await
    .map_err(|e| e.to_string())?;
    let state = AppState::new(sundial_server::AppShared {
        store: store.clone(),
        runtime,
        engines: engines.clone(),
        secret_key: key,
        default_timezone: config.timezone.clone(),
        max_event_bytes: config.max_event_bytes,
        admission: sundial_server::admission::Admission::new(
            config.max_requests,
            config.max_queued_runs,
            config.body_timeout,
        ),
        connections: Arc::new(sundial_server::connections::Connections::default()),
        data_dir: dir.clone(),
        dashboard: Arc::new(sundial_server::dashboard::Dashboard::new(tls.is_some())),
    });

    // Bundled plugins: each one is offered once, on the first start of a version that
    // ships it (an operator may remove or replace them later; a removed one stays
    // removed). `bundled_offered` remembers the names; a store from before it existed
    // counts the plugins it has as offered.
    let installed: Vec<String> = store
        .plugins()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|p| p.name)
        .collect();
    let offered: Vec<String> = match store.meta("bundled_offered").map_err(|e| e.to_string())? {
        Some(list) => list.split(',').map(str::to_string).collect(),
        None => installed.clone(),
    };
    let mut not_offered: Vec<&str> = Vec::new();
    for (name, bytes) in crate::bundled::BUNDLED {
        if offered.iter().any(|o| o == name) || installed.iter().any(|i| i == name) {
            continue;
        }
        // The email plugin exists to send mail; everything else starts with nothing.
        let grants = Grants {
            mail: *name == "email",
            ..Grants::default()
        };
        match api::plugins_install(&state, name, bytes.to_vec(), grants, crate::bundled::limits(name)).await {
            Ok(_) => {}
            // Another node of a cluster, starting at the same time, installed it.
            Err(e) if e.status == axum::http::StatusCode::CONFLICT => {}
            // The compiler process died: the daemon starts without it and offers it
            // again at the next start.
            Err(e) if e.code == "compile_failed" => {
                tracing::warn!(plugin = %name, "installing a bundled plugin failed, offered again at the next start: {}", e.message);
                not_offered.push(*name);
            }
            Err(e) => return Err(format!("installing bundled plugin {name}: {}", e.message)),
        }
    }
    update_bundled(&state).await?;
    // What was offered before stays offered (another node of a cluster may have
    // written it since this one read it), and this start's offers are added.
    let mut all: Vec<&str> = offered.iter().map(String::as_str).collect();
    for (name, _) in crate::bundled::BUNDLED {
        if !not_offered.contains(name) && !all.contains(name) {
            all.push(name);
        }
    }
    store
        .set_meta("bundled_offered", &all.join(","))
        .await
        .map_err(|e| e.to_string())?;
    // The first start creates an admin token.
    if store.token_count().map_err(|e| e.to_string())? == 0 {
        let secret = sundial_store::tokens::new_token_secret()?;
        let path = dir.join("admin.token");
        sundial_store::private_file::write_private(&path, &format!("{secret}\n"))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        let record = TokenRecord {
            id: sundial_core::ids::new_id(),
            name: "admin".into(),
            role: Role::Admin,
            created_at: now(),
        };
        match store.insert_token(&secret, record, "sundial").await {
            Ok(_) => tracing::info!(path = %path.display(), "created an admin token (mode 0600)"),
            // Another node of a cluster, starting at the same time, made the first one;
            // this file would hold a token nobody accepts.
            Err(sundial_store::StoreError::Conflict(_)) => {
                let _ = std::fs::remove_file(&path);
                tracing::info!("another node created the admin token");
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    sundial_engine::retention::spawn_pruner(store.clone(), config.retention);

    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        data = %dir.display(),
        "sundial listening on {scheme}://{addr}"
    );
    let (stop_http, http_stopped) = tokio::sync::watch::channel(false);
    let connections = state.connections.clone();
    let server = tokio::spawn(sundial_server::connections::serve(
        listener,
        api::router(state),
        connection_limits,
        connections,
        http_stopped,
    ));
    shutdown_signal().await;
    tracing::info!(
        "sundial stopping: no new runs, waiting up to {} s for running ones",
        config.grace.as_secs()
    );
    let _ = stop_http.send(true);
    let left = engines.executor.stop(config.grace).await;
    if left > 0 {
        tracing::warn!("{left} runs outlived the grace period and were persisted as interrupted");
    }
    // Requests still open (for example `?wait=true`) get until the end of the grace period.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(200), server).await;
    // Closed cleanly, a large redb file opens at once next time (no repair).
    store.shutdown().await;
    tracing::info!("sundial stopped");
    Ok(())
}

/// The daemon compiles plugins in a child process of its own binary (`sundial
/// compile-component`), so a compile's memory and Cranelift's code never stay in the
/// daemon (ARCHITECTURE.md, "Compiles in a child process"). On Linux the program is
/// `/proc/self/exe`, the very binary running even if an upgrade replaced its file.
fn compiler_process() -> sundial_runtime::Compiler {
    let program = if cfg!(target_os = "linux") {
        std::path::PathBuf::from("/proc/self/exe")
    } else {
        match std::env::current_exe() {
            Ok(path) => path,
            Err(_) => return sundial_runtime::Compiler::InProcess,
        }
    };
    sundial_runtime::Compiler::Child {
        program,
        args: vec!["compile-component".into()],
    }
}

/// Upgrades: a bundled plugin whose bytes differ from the ones this binary ships is
/// updated to them (grants, limits and description kept), unless the operator pinned
/// it (`PATCH /v1/plugins/NAME {"pinned": true}`) or replaced it with their own (then
/// it is no longer `bundled`).
pub async fn update_bundled(state: &AppState) -> Result<usize, String> {
    let mut updated = 0;
    for (name, bytes) in crate::bundled::BUNDLED {
        let Some(record) = state.store.plugin(name).map_err(|e| e.to_string())? else {
            continue;
        };
        if !record.bundled || record.pinned {
            continue;
        }
        let digest = format!("sha256:{}", sundial_core::hash::digest(bytes));
        if record.digest == digest {
            continue;
        }
        let runtime = state.runtime.clone();
        let plugin = match tokio::task::spawn_blocking(move || runtime.load(bytes))
            .await
            .map_err(|e| format!("loading bundled plugin {name}: {e}"))?
        {
            Ok(plugin) => plugin,
            // The compiler process died: the installed version stays until the next start.
            Err(e) if e.is_transient() => {
                tracing::warn!(plugin = %name, "updating a bundled plugin failed, tried again at the next start: {e}");
                continue;
            }
            Err(e) => return Err(format!("loading bundled plugin {name}: {e}")),
        };
        let new = sundial_core::plugin::PluginRecord {
            digest: format!("sha256:{}", plugin.digest),
            world: plugin.world,
            size_bytes: bytes.len() as u64,
            imports: plugin.imports.clone(),
            updated_at: now(),
            ..record.clone()
        };
        let (before, after) = state
            .store
            .replace_plugin_bytes(new, bytes.to_vec(), "sundial upgrade")
            .await
            .map_err(|e| format!("updating bundled plugin {name}: {e}"))?;
        tracing::info!(plugin = %name, from = %before.digest, to = %after.digest, "updated a bundled plugin to this version's");
        updated += 1;
    }
    Ok(updated)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

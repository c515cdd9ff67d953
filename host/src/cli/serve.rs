//! `sundial serve`: flags, environment variables and an optional TOML config file,
//! resolved into a `DaemonConfig`. Precedence: flag or environment variable, then the
//! config file, then the built-in default. Every key is documented in
//! `docs/operations.md` with its default and unit.

use super::{EXIT_PLUGIN_ERROR, EXIT_USAGE};
use crate::daemon::{DaemonConfig, StoreChoice};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use sundial_core::grants::NetworkPolicy;
use sundial_core::limits::parse_duration;
use sundial_engine::retention::RetentionDefaults;

/// Every setting of `sundial serve`, written once: clap reads the flags and environment
/// variables into it, serde reads the config file (same keys in snake_case), and
/// figment layers the two (see [`resolve`]). `mail` is file only; `config`,
/// `test_clock` and `inject_disk_full` are flag or environment only.
#[derive(Debug, Default, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServeArgs {
    /// TOML config file (keys as in docs/operations.md) [default: ./sundial.toml, else
    /// /etc/sundial/sundial.toml, when one exists].
    #[arg(long, env = "SUNDIAL_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Data directory (store, admin token, compile cache) [default: sundial-data].
    #[arg(long, env = "SUNDIAL_DATA")]
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<PathBuf>,
    /// Address for the API [default: 127.0.0.1:7780].
    #[arg(long, env = "SUNDIAL_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    /// Runs executing at once [default: 64].
    #[arg(long, env = "SUNDIAL_WORKERS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    workers: Option<usize>,
    /// Where the state lives: `redb` (a file in the data directory) or a PostgreSQL
    /// URL `postgres://USER[:PASSWORD]@HOST:PORT/DATABASE` shared by the nodes of a
    /// cluster [default: redb].
    #[arg(long, env = "SUNDIAL_STORE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<String>,
    /// Lease on a run a cluster node executes (PostgreSQL store): renewed every third of
    /// it; a run whose node stopped renewing is taken over by another node after it
    /// [default: 10s].
    #[arg(long, env = "SUNDIAL_RUN_LEASE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    run_lease: Option<String>,
    /// PostgreSQL connections this node keeps at most [default: 16].
    #[arg(long, env = "SUNDIAL_STORE_POOL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    store_pool: Option<usize>,
    /// Directory of compiled plugins (native code: it must be trusted; its mode is set
    /// to 0700 at every start, so give it a directory of its own). Daemons of one user
    /// may share one [default: cache/ in the data directory].
    #[arg(long, env = "SUNDIAL_COMPILE_CACHE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    compile_cache: Option<PathBuf>,
    /// Store page cache in MiB [default: 8].
    #[arg(long, env = "SUNDIAL_STORE_CACHE_MB")]
    #[serde(skip_serializing_if = "Option::is_none")]
    store_cache_mb: Option<usize>,
    /// Let plugins reach loopback addresses (for local testing) [default: false].
    #[arg(long, env = "SUNDIAL_ALLOW_LOOPBACK", num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_loopback: Option<bool>,
    /// Address ranges plugins and webhooks may reach although private/loopback/link-local,
    /// comma-separated CIDR (e.g. 10.20.0.0/16) [default: none].
    #[arg(long = "allow-range", env = "SUNDIAL_ALLOW_RANGES", value_delimiter = ',')]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    allow_ranges: Vec<String>,
    /// Let plugins reach private and link-local addresses [default: false].
    #[arg(long, env = "SUNDIAL_ALLOW_PRIVATE", num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_private: Option<bool>,
    /// Finished runs kept per task when the task sets none [default: 1000].
    #[arg(long, env = "SUNDIAL_KEEP_RUNS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_runs: Option<u32>,
    /// Finished runs older than this many days are deleted unless the task says otherwise [default: 30].
    #[arg(long, env = "SUNDIAL_MAX_RUN_AGE_DAYS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_run_age_days: Option<u32>,
    /// Events kept in the event log [default: 100000].
    #[arg(long, env = "SUNDIAL_KEEP_EVENTS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_events: Option<u32>,
    /// Events older than this many days are deleted [default: 30].
    #[arg(long, env = "SUNDIAL_MAX_EVENT_AGE_DAYS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_event_age_days: Option<u32>,
    /// Causal depth beyond which events are stored but not routed (stops trigger loops) [default: 8].
    #[arg(long, env = "SUNDIAL_MAX_EVENT_DEPTH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_event_depth: Option<u32>,
    /// Runs, timers and webhook deliveries one causal chain (everything descended from
    /// one outside event, manual run or schedule slot) may start; past it, events are
    /// stored but not routed [default: 1000].
    #[arg(long, env = "SUNDIAL_MAX_CHAIN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_chain: Option<u64>,
    /// Largest event accepted, e.g. 256KiB [default: 256KiB].
    #[arg(long, env = "SUNDIAL_MAX_EVENT_SIZE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_event_size: Option<String>,
    /// Compiled plugins kept loaded in memory, e.g. 1GiB; past it the least recently
    /// used are dropped and loaded again from the compile cache when needed [default: 1GiB].
    #[arg(long, env = "SUNDIAL_PLUGIN_MEMORY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    plugin_memory: Option<String>,
    /// Core wasm instances one plugin instance may create; a component needing more
    /// fails to install. componentize-py builds need 44 [default: 96].
    #[arg(long, env = "SUNDIAL_PLUGIN_CORE_INSTANCES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    plugin_core_instances: Option<u32>,
    /// Requests handled at once; one more is answered 503 with Retry-After [default: 512].
    #[arg(long, env = "SUNDIAL_MAX_REQUESTS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_requests: Option<usize>,
    /// Runs waiting for a worker before manual runs and events are refused with 429 [default: 10000].
    #[arg(long, env = "SUNDIAL_MAX_QUEUED_RUNS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_queued_runs: Option<usize>,
    /// Time a request body has to arrive after the request's head, e.g. 60s; a slower
    /// upload is answered 408 and its request slot freed [default: 60s].
    #[arg(long, env = "SUNDIAL_BODY_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    body_timeout: Option<String>,
    /// Client connections open at once; at the limit the oldest idle one is closed to
    /// make room, or a new one is answered 503 when all are busy. At most a quarter of
    /// the open-file limit [default: 4096].
    #[arg(long, env = "SUNDIAL_MAX_CONNECTIONS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_connections: Option<usize>,
    /// Time a client has to send a request's head, on a new or an idle keep-alive
    /// connection, e.g. 10s; then the connection is closed [default: 10s].
    #[arg(long, env = "SUNDIAL_HEADER_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    header_timeout: Option<String>,
    /// How often retention runs, e.g. 60s [default: 60s].
    #[arg(long, env = "SUNDIAL_PRUNE_INTERVAL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    prune_interval: Option<String>,
    /// On SIGTERM/SIGINT, how long to wait for running runs [default: 30s].
    #[arg(long, env = "SUNDIAL_GRACE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    grace: Option<String>,
    /// TLS certificate chain for the API, PEM (with --tls-key; then only https://)
    /// [default: none, plain HTTP].
    #[arg(long, env = "SUNDIAL_TLS_CERT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert, PEM (PKCS#8, PKCS#1 or SEC1) [default: none].
    #[arg(long, env = "SUNDIAL_TLS_KEY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_key: Option<PathBuf>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "SUNDIAL_LOG_FORMAT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<String>,
    /// IANA time zone of schedules that name none [default: UTC].
    #[arg(long, env = "SUNDIAL_TIMEZONE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<String>,
    /// Run schedules on a manual test clock standing at this RFC 3339 time, moved only
    /// by `POST /v1/clock`. For tests; never in production [default: the wall clock].
    #[arg(long, env = "SUNDIAL_TEST_CLOCK")]
    #[serde(skip)]
    test_clock: Option<String>,
    /// Testing hook for the disk-full path: while this file exists every write to the
    /// store fails with ENOSPC, as on a full disk. For tests; never in production
    /// [default: none].
    #[arg(long, env = "SUNDIAL_INJECT_DISK_FULL", hide = true)]
    #[serde(skip)]
    inject_disk_full: Option<PathBuf>,
    /// The client flags are global; here they are accepted and ignored, so `serve
    /// --help` lists only what the server reads.
    #[command(flatten)]
    #[serde(skip)]
    client: HiddenClientFlags,
    /// The SMTP relay (`[mail]`, config file only; see docs/operations.md).
    #[arg(skip)]
    #[serde(default, skip_serializing)]
    mail: Option<sundial_runtime::mail::MailConfig>,
}

/// The client commands' global flags, hidden from `serve` (see [`ServeArgs`]).
#[derive(Debug, Default, clap::Args)]
struct HiddenClientFlags {
    #[arg(long, hide = true)]
    server: Option<String>,
    #[arg(long, hide = true)]
    token: Option<String>,
    #[arg(long, hide = true)]
    ca_file: Option<PathBuf>,
    #[arg(long, hide = true)]
    json: bool,
}

/// The resolved settings: the daemon's config and the log format.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) daemon: DaemonConfig,
    pub(crate) json_logs: bool,
    /// The TLS paths as the config file gave them (to resolve them against its folder).
    pub(crate) tls_from_file: (Option<PathBuf>, Option<PathBuf>),
}

fn duration(
    key: &str,
    text: Option<String>,
    default: &str,
    min_ms: u128,
) -> Result<std::time::Duration, String> {
    let text = text.unwrap_or_else(|| default.to_string());
    let d = parse_duration(&text).map_err(|e| format!("{key}: {e}"))?;
    if d.as_millis() < min_ms {
        return Err(format!("{key}: must be at least {min_ms} ms"));
    }
    Ok(d)
}

/// A layering error as `key: what is wrong` (figment's own text names its profile and
/// source, which say nothing to an operator).
fn setting_error(e: figment::Error) -> String {
    match e.path.join(".") {
        key if key.is_empty() => e.kind.to_string(),
        key => format!("{key}: {}", e.kind),
    }
}

/// Merge flags/environment over the file over the defaults, validating every value.
pub(crate) fn resolve(args: ServeArgs, file_text: Option<&str>) -> Result<Resolved, String> {
    use figment::Figment;
    use figment::providers::{Format, Serialized, Toml};
    // The file alone first, so its own mistakes are named as the file's.
    let file: ServeArgs = match file_text {
        Some(t) => Figment::from(Toml::string(t))
            .extract()
            .map_err(|e| format!("config file: {}", setting_error(e)))?,
        None => ServeArgs::default(),
    };
    let tls_from_file = (file.tls_cert.clone(), file.tls_key.clone());
    let mail = file.mail.clone();
    // Flags and environment over the file (what neither sets stays unset: defaults
    // below).
    let layered: ServeArgs = Figment::from(Serialized::defaults(&file))
        .merge(Serialized::defaults(&args))
        .extract()
        .map_err(|e| format!("settings: {}", setting_error(e)))?;
    let args = ServeArgs {
        test_clock: args.test_clock,
        inject_disk_full: args.inject_disk_full,
        mail,
        ..layered
    };
    let d = DaemonConfig::default();
    let r = RetentionDefaults::default();
    let workers = args.workers.unwrap_or(d.workers);
    if workers == 0 || workers > 4096 {
        return Err(format!("workers: {workers} is outside 1..=4096"));
    }
    let cache_mb = args.store_cache_mb.unwrap_or(d.cache_bytes >> 20);
    if !(4..=65536).contains(&cache_mb) {
        return Err(format!("store_cache_mb: {cache_mb} is outside 4..=65536"));
    }
    let store = match args.store.as_deref().map(str::trim) {
        None | Some("redb") => StoreChoice::Redb,
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let mut options = sundial_store::PgOptions::new(url);
            options.pool_size = args.store_pool.unwrap_or(options.pool_size);
            if !(1..=1000).contains(&options.pool_size) {
                return Err(format!("store_pool: {} is outside 1..=1000", options.pool_size));
            }
            options.lease = duration("run_lease", args.run_lease.clone(), "10s", 1000)?;
            if options.lease > std::time::Duration::from_secs(600) {
                return Err("run_lease: must be at most 10m".into());
            }
            StoreChoice::Postgres(options)
        }
        Some(other) => {
            return Err(format!(
                "store: {:?} is neither redb nor a postgres:// URL",
                sundial_store::pg::redact_url(other)
            ));
        }
    };
    let keep_last = args.keep_runs.unwrap_or(r.keep_last);
    let max_age_days = args.max_run_age_days.unwrap_or(r.max_age_days);
    if keep_last == 0 || max_age_days == 0 {
        return Err("keep_runs and max_run_age_days must be at least 1".into());
    }
    let keep_events = args.keep_events.unwrap_or(r.keep_events);
    let max_event_age_days = args.max_event_age_days.unwrap_or(r.max_event_age_days);
    if keep_events == 0 || max_event_age_days == 0 {
        return Err("keep_events and max_event_age_days must be at least 1".into());
    }
    let max_event_depth = args.max_event_depth.unwrap_or(d.max_event_depth);
    let max_requests = args.max_requests.unwrap_or(d.max_requests);
    if !(1..=1_000_000).contains(&max_requests) {
        return Err(format!("max_requests: {max_requests} is outside 1..=1000000"));
    }
    let max_queued_runs = args.max_queued_runs.unwrap_or(d.max_queued_runs);
    if !(1..=100_000_000).contains(&max_queued_runs) {
        return Err(format!(
            "max_queued_runs: {max_queued_runs} is outside 1..=100000000"
        ));
    }
    if !(1..=100).contains(&max_event_depth) {
        return Err(format!("max_event_depth: {max_event_depth} is outside 1..=100"));
    }
    let max_chain = args.max_chain.unwrap_or(d.max_chain);
    if !(1..=100_000_000).contains(&max_chain) {
        return Err(format!("max_chain: {max_chain} is outside 1..=100000000"));
    }
    let max_event_bytes = match args.max_event_size {
        None => d.max_event_bytes,
        Some(t) => sundial_core::limits::parse_size(&t).map_err(|e| format!("max_event_size: {e}"))? as usize,
    };
    if !(1024..=16 << 20).contains(&max_event_bytes) {
        return Err(format!(
            "max_event_size: {max_event_bytes} bytes is outside 1KiB..=16MiB"
        ));
    }
    let plugin_memory = match args.plugin_memory {
        None => d.plugin_memory,
        Some(t) => sundial_core::limits::parse_size(&t).map_err(|e| format!("plugin_memory: {e}"))? as usize,
    };
    if !(16 << 20..=64 << 30).contains(&plugin_memory) {
        return Err(format!(
            "plugin_memory: {plugin_memory} bytes is outside 16MiB..=64GiB"
        ));
    }
    let plugin_core_instances = args.plugin_core_instances.unwrap_or(d.plugin_core_instances);
    if !(4..=10_000).contains(&plugin_core_instances) {
        return Err(format!(
            "plugin_core_instances: {plugin_core_instances} is outside 4..=10000"
        ));
    }
    let interval = duration("prune_interval", args.prune_interval, "60s", 100)?;
    let grace = duration("grace", args.grace, "30s", 0)?;
    let body_timeout = duration("body_timeout", args.body_timeout, "60s", 1000)?;
    if body_timeout > std::time::Duration::from_secs(3600) {
        return Err("body_timeout: must be at most 1h".into());
    }
    let header_timeout = duration("header_timeout", args.header_timeout, "10s", 100)?;
    if header_timeout > std::time::Duration::from_secs(600) {
        return Err("header_timeout: must be at most 10m".into());
    }
    let max_connections = args.max_connections.unwrap_or(d.max_connections);
    if !(1..=1_000_000).contains(&max_connections) {
        return Err(format!(
            "max_connections: {max_connections} is outside 1..=1000000"
        ));
    }
    let json_logs = match args.log_format.as_deref() {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => return Err(format!("log_format: {other:?} is not text or json")),
    };
    let timezone = args.timezone.unwrap_or(d.timezone);
    sundial_core::schedule::zone::parse_tz(&timezone).map_err(|e| format!("timezone: {e}"))?;
    let allow_ranges = args
        .allow_ranges
        .iter()
        .map(|r| {
            r.trim()
                .parse::<ipnet::IpNet>()
                .map_err(|_| format!("allow_ranges: {r:?} is not a CIDR range such as 10.20.0.0/16"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(m) = &args.mail {
        m.validate()?;
    }
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (Some(_), None) => return Err("tls_cert is set but tls_key is not: give both or neither".into()),
        (None, Some(_)) => return Err("tls_key is set but tls_cert is not: give both or neither".into()),
    };
    let test_clock = match args.test_clock.as_deref() {
        None => None,
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| format!("test_clock: {t:?} is not an RFC 3339 time ({e})"))?
                .with_timezone(&chrono::Utc),
        ),
    };
    Ok(Resolved {
        daemon: DaemonConfig {
            data_dir: args.data.unwrap_or(d.data_dir),
            compile_cache: args.compile_cache,
            listen: args.listen.unwrap_or(d.listen),
            workers,
            max_batch: d.max_batch,
            cache_bytes: cache_mb << 20,
            store,
            network: NetworkPolicy {
                allow_loopback: args.allow_loopback.unwrap_or(false),
                allow_private: args.allow_private.unwrap_or(false),
                allow_ranges,
            },
            retention: RetentionDefaults {
                keep_last,
                max_age_days,
                keep_events,
                max_event_age_days,
                interval_ms: interval.as_millis() as u64,
            },
            grace,
            test_clock,
            inject_disk_full: args.inject_disk_full,
            timezone,
            max_event_depth,
            max_chain,
            max_requests,
            max_queued_runs,
            body_timeout,
            max_connections,
            header_timeout,
            max_event_bytes,
            plugin_memory,
            plugin_core_instances,
            mail: args.mail,
            tls,
        },
        json_logs,
        tls_from_file,
    })
}

/// Where the config file is looked for when neither --config nor SUNDIAL_CONFIG names
/// one, in order; the first that exists is read.
pub(crate) const CONFIG_SEARCH: [&str; 2] = ["sundial.toml", "/etc/sundial/sundial.toml"];

pub(crate) async fn serve(mut args: ServeArgs) -> u8 {
    let config_path = args
        .config
        .take()
        .or_else(|| CONFIG_SEARCH.iter().map(PathBuf::from).find(|p| p.is_file()));
    let file_text = match &config_path {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("error: --config {}: {e}", path.display());
                return EXIT_USAGE;
            }
        },
        None => None,
    };
    let mut resolved = match resolve(args, file_text.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    // Paths in the config file are relative to the file, not to where the daemon runs
    // (a path given by flag or environment is relative to the working directory, and
    // TLS paths from the file are only rewritten when the file set them).
    if let Some(path) = &config_path {
        let base = path.parent().unwrap_or(std::path::Path::new("."));
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(ca) = resolved.daemon.mail.as_mut().and_then(|m| m.ca_file.as_mut()) {
            rebase(ca);
        }
        if let Some((cert, key)) = resolved.daemon.tls.as_mut() {
            let (file_cert, file_key) = &resolved.tls_from_file;
            if file_cert.as_ref() == Some(&*cert) {
                rebase(cert);
            }
            if file_key.as_ref() == Some(&*key) {
                rebase(key);
            }
        }
    }
    super::init_logging(resolved.json_logs, "info");
    if let Some(path) = &config_path {
        tracing::info!(config = %path.display(), "read the config file");
    }
    match crate::daemon::serve(resolved.daemon).await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e}");
            EXIT_PLUGIN_ERROR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_file_and_flags_layer_in_that_order() {
        let r = resolve(ServeArgs::default(), None).unwrap();
        assert_eq!(r.daemon.listen.to_string(), "127.0.0.1:7780");
        assert_eq!(r.daemon.retention.keep_last, 1000);
        let file =
            "workers = 4\nkeep_runs = 10\ngrace = \"5s\"\nlog_format = \"json\"\nallow_loopback = true\n";
        let r = resolve(ServeArgs::default(), Some(file)).unwrap();
        assert_eq!((r.daemon.workers, r.daemon.retention.keep_last), (4, 10));
        assert_eq!(r.daemon.grace.as_secs(), 5);
        assert!(r.json_logs && r.daemon.network.allow_loopback);
        let args = ServeArgs {
            workers: Some(8),
            ..ServeArgs::default()
        };
        assert_eq!(resolve(args, Some(file)).unwrap().daemon.workers, 8);
        // The compile cache is the data directory's unless named.
        assert_eq!(r.daemon.compile_cache, None);
        let named = resolve(
            ServeArgs::default(),
            Some("compile_cache = \"/var/cache/sundial\"\n"),
        )
        .unwrap();
        assert_eq!(
            named.daemon.compile_cache,
            Some(PathBuf::from("/var/cache/sundial"))
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = |file: &str| resolve(ServeArgs::default(), Some(file)).unwrap_err();
        let e = err("wrkers = 3");
        assert!(
            e.starts_with("config file: wrkers: unknown field: found `wrkers`"),
            "{e}"
        );
        let e = err("workers = \"x\"");
        assert!(e.starts_with("config file: workers: invalid type"), "{e}");
        assert!(err("workers = 0").contains("workers"));
        assert!(err("prune_interval = \"1ms\"").contains("prune_interval"));
        assert!(err("allow_ranges = [\"10.0.0.0/33\"]").contains("allow_ranges"));
        let r = resolve(ServeArgs::default(), Some("allow_ranges = [\"10.20.0.0/16\"]")).unwrap();
        assert_eq!(r.daemon.network.allow_ranges.len(), 1);
        assert!(err("grace = \"soon\"").contains("grace"));
        assert!(err("body_timeout = \"500ms\"").contains("body_timeout: must be at least 1000 ms"));
        assert!(err("body_timeout = \"2h\"").contains("body_timeout: must be at most 1h"));
        let r = resolve(ServeArgs::default(), Some("body_timeout = \"5s\"")).unwrap();
        assert_eq!(r.daemon.body_timeout.as_secs(), 5);
        let r = resolve(ServeArgs::default(), None).unwrap();
        assert_eq!(r.daemon.body_timeout.as_secs(), 60);
        assert!(err("log_format = \"xml\"").contains("log_format"));
        assert!(err("listen = \"nowhere\"").contains("listen"));
    }
}

//! `sundial serve`: flags (each with an environment variable) to `DaemonConfig`.

use super::{EXIT_PLUGIN_ERROR, EXIT_USAGE};

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Data directory (store, admin token, compile cache).
    #[arg(long, env = "SUNDIAL_DATA", default_value = "sundial-data")]
    data: std::path::PathBuf,
    /// Address for the API.
    #[arg(long, env = "SUNDIAL_LISTEN", default_value = "127.0.0.1:7780")]
    listen: std::net::SocketAddr,
    /// Runs executing at once.
    #[arg(long, env = "SUNDIAL_WORKERS", default_value_t = crate::executor::DEFAULT_WORKERS)]
    workers: usize,
    /// Let plugins reach loopback addresses (for local testing).
    #[arg(long, env = "SUNDIAL_ALLOW_LOOPBACK")]
    allow_loopback: bool,
    /// Let plugins reach private and link-local addresses.
    #[arg(long, env = "SUNDIAL_ALLOW_PRIVATE")]
    allow_private: bool,
    /// Finished runs kept per task when the task sets no `retention.keep_last`.
    #[arg(long, env = "SUNDIAL_KEEP_RUNS", default_value_t = 1000)]
    keep_runs: u32,
    /// Finished runs older than this many days are deleted (unless the task says otherwise).
    #[arg(long, env = "SUNDIAL_MAX_RUN_AGE_DAYS", default_value_t = 30)]
    max_run_age_days: u32,
    /// On SIGTERM/SIGINT, how long to wait for running runs, e.g. 30s.
    #[arg(long, env = "SUNDIAL_GRACE", default_value = "30s")]
    grace: String,
    /// How often retention runs, e.g. 60s.
    #[arg(long, env = "SUNDIAL_PRUNE_INTERVAL", default_value = "60s")]
    prune_interval: String,
}

pub(crate) async fn serve(args: ServeArgs) -> u8 {
    if args.workers == 0 || args.workers > 4096 {
        eprintln!("error: --workers must be 1..=4096");
        return EXIT_USAGE;
    }
    let interval = match crate::runtime::limits::parse_duration(&args.prune_interval) {
        Ok(d) if d.as_millis() >= 100 => d,
        Ok(_) => {
            eprintln!("error: --prune-interval must be at least 100ms");
            return EXIT_USAGE;
        }
        Err(e) => {
            eprintln!("error: --prune-interval: {e}");
            return EXIT_USAGE;
        }
    };
    let grace = match crate::runtime::limits::parse_duration(&args.grace) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: --grace: {e}");
            return EXIT_USAGE;
        }
    };
    if args.keep_runs == 0 || args.max_run_age_days == 0 {
        eprintln!("error: --keep-runs and --max-run-age-days must be at least 1");
        return EXIT_USAGE;
    }
    let config = crate::daemon::DaemonConfig {
        grace,
        retention: crate::retention::RetentionDefaults {
            keep_last: args.keep_runs,
            max_age_days: args.max_run_age_days,
            interval_ms: interval.as_millis() as u64,
        },
        data_dir: args.data,
        listen: args.listen,
        workers: args.workers,
        network: crate::runtime::NetworkPolicy {
            allow_loopback: args.allow_loopback,
            allow_private: args.allow_private,
        },
        ..Default::default()
    };
    match crate::daemon::serve(config).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_PLUGIN_ERROR
        }
    }
}

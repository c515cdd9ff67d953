//! The `sundial` command line: `serve`, local plugin tools (`plugin run`, `plugin
//! inspect`) and client commands for every noun of a running daemon.
//!
//! Exit codes: 0 success; 1 the plugin returned an error or trapped (local runs), or the
//! daemon answered with an error (client commands); 2 usage error, invalid component,
//! or daemon unreachable; 3 a limit (timeout, memory, fuel, output size) stopped the
//! plugin.

mod apply;
mod audit;
mod backup;
mod calendar;
mod client;
mod delivery;
mod endpoint;
mod event;
mod logs;
mod maintenance;
mod migrate;
mod noun;
mod plugin;
mod project;
mod run;
mod schedule;
mod secret;
mod serve;
mod task;
mod timer;
mod token;
mod trigger;
mod upcoming;
mod webhook;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit code: the plugin returned an error or trapped.
pub const EXIT_PLUGIN_ERROR: u8 = 1;
/// Exit code: bad usage, unreadable or invalid component.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: a resource limit stopped the plugin.
pub const EXIT_LIMIT: u8 = 3;

/// Sundial: schedules, events and webhooks running sandboxed WebAssembly actions.
#[derive(Debug, Parser)]
#[command(name = "sundial", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    remote: client::Remote,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the daemon: the API, the executor and the store.
    Serve(serve::ServeArgs),
    /// Internal: the daemon's compiler process. Reads a component on stdin, writes its
    /// compiled form on stdout (`sundial_runtime::compile`).
    #[command(hide = true)]
    CompileComponent {
        /// The engine settings (`EngineSettings::to_arg`).
        settings: String,
    },
    /// Plugins: run or inspect a component locally; install, list, get, remove on the daemon.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Tasks on the daemon.
    #[command(subcommand)]
    Task(task::TaskCommand),
    /// Runs (the task log) on the daemon.
    #[command(subcommand)]
    Run(run::RunCommand),
    /// Schedules: create with friendly rule flags, attach tasks, preview.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// Back up a running daemon into FILE (a tar: the store, its secret key, the admin
    /// token file); admin token.
    Backup {
        /// The backup file to write (must not exist).
        file: std::path::PathBuf,
    },
    /// Restore a backup into an empty data directory (the daemon stopped); the secret
    /// key is checked against the sealed secrets first.
    Restore {
        /// The backup file.
        file: std::path::PathBuf,
        /// The data directory to restore into [default: $SUNDIAL_DATA, else sundial-data].
        #[arg(long, env = "SUNDIAL_DATA")]
        data: Option<std::path::PathBuf>,
    },
    /// Copy a stopped single-node store (redb) into an empty PostgreSQL database, to
    /// run it as a cluster (docs/cluster.md).
    Migrate {
        /// `redb:DIR`: the data directory of the store to copy (its daemon stopped).
        #[arg(long)]
        from: String,
        /// `postgres://USER[:PASSWORD]@HOST:PORT/DATABASE`: an empty database.
        #[arg(long)]
        to: String,
    },
    /// Calendars: excluded days and ranges (holidays) that schedules honour.
    #[command(subcommand)]
    Calendar(calendar::CalendarCommand),
    /// Maintenance windows: for a while, schedules (all or some) do not fire.
    #[command(subcommand)]
    Maintenance(maintenance::MaintenanceCommand),
    /// The agenda: every schedule's next fires and every pending timer, in time order,
    /// each in its zone, with the DST changes ahead.
    Upcoming {
        /// How far ahead, in hours (1-744).
        #[arg(long, default_value_t = 24)]
        hours: u32,
        /// Only what starts this task.
        #[arg(long)]
        task: Option<String>,
        /// Most entries (1-10000).
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
    /// Events: post one, read the event log.
    #[command(subcommand)]
    Event(event::EventCommand),
    /// Triggers: when an event matches, start tasks (optionally after a delay).
    #[command(subcommand)]
    Trigger(trigger::TriggerCommand),
    /// Timers: delayed trigger targets waiting for their time.
    #[command(subcommand)]
    Timer(timer::TimerCommand),
    /// Webhooks: define, test, enable, disable.
    #[command(subcommand)]
    Webhook(webhook::WebhookCommand),
    /// Webhook deliveries (the task log of webhooks): list, show, retry.
    #[command(subcommand)]
    Delivery(delivery::DeliveryCommand),
    /// Secrets: write-only values for webhooks and plugins.
    #[command(subcommand)]
    Secret(secret::SecretCommand),
    /// Bring the daemon to a declarative configuration file (TOML): plugins' grants,
    /// secrets it relies on, webhooks, tasks, schedules and triggers, by name.
    Apply {
        /// The configuration file.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: std::path::PathBuf,
        /// Show the plan (what would be created, changed, deleted) and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also delete webhooks, tasks, schedules and triggers that are not in the file.
        #[arg(long)]
        prune: bool,
    },
    /// Write the daemon's configuration in the `apply` format.
    Export {
        /// Write to this file instead of stdout.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
    /// API tokens (admin only).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// The audit log.
    Audit {
        /// Only entries about this noun (plugin, task, token).
        #[arg(long)]
        noun: Option<String>,
        /// Most entries to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Print finished runs with their plugin logs; `--follow` keeps printing.
    Logs {
        /// Only runs of this task.
        #[arg(long)]
        task: Option<String>,
        /// Keep watching for runs that finish.
        #[arg(long, short)]
        follow: bool,
    },
}

/// Install the tracing subscriber: level from `SUNDIAL_LOG` (else `default`), text or
/// JSON lines on stderr.
pub(crate) fn init_logging(json: bool, default: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("SUNDIAL_LOG").unwrap_or_else(|_| default.into());
    // Colour only for a person at a terminal, never in files, journals or pipes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if json {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

/// Parse the arguments and run the command; returns the process exit code.
/// A client command whose output pipe closes (`sundial run list | head`) ends quietly,
/// as `cat` and `grep` do: the default action of SIGPIPE, which Rust's runtime turns
/// off (a write would then fail and `println!` panic). Sockets are unaffected: they
/// are written with `MSG_NOSIGNAL`. Not for `serve`, which must outlive its clients.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition before any thread writes output;
    // no handler is installed.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The `sundial` command: parse the command line and run it; the process's exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    if let Command::CompileComponent { settings } = &cli.command {
        let status = sundial_runtime::compile::serve_child(
            settings,
            &mut std::io::stdin().lock(),
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        );
        return ExitCode::from(status as u8);
    }
    if !matches!(cli.command, Command::Serve(_)) {
        init_logging(false, "warn");
        quiet_on_closed_pipe();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let code = runtime.block_on(async {
        let remote = cli.remote;
        let result = match cli.command {
            Command::Plugin(cmd) => return plugin::execute(cmd, &remote).await,
            Command::Serve(args) => return serve::serve(args).await,
            Command::CompileComponent { .. } => unreachable!("handled before the async runtime"),
            Command::Task(cmd) => task::task(&remote, cmd).await,
            Command::Run(cmd) => run::run(&remote, cmd).await,
            Command::Token(cmd) => token::token(&remote, cmd).await,
            Command::Schedule(cmd) => schedule::run(&remote, cmd).await,
            Command::Event(cmd) => event::event(&remote, cmd).await,
            Command::Trigger(cmd) => trigger::trigger(&remote, cmd).await,
            Command::Timer(cmd) => timer::timer(&remote, cmd).await,
            Command::Apply { file, dry_run, prune } => apply::apply(&remote, &file, dry_run, prune).await,
            Command::Export { output } => apply::export(&remote, output.as_deref()).await,
            Command::Webhook(cmd) => webhook::webhook(&remote, cmd).await,
            Command::Delivery(cmd) => delivery::delivery(&remote, cmd).await,
            Command::Secret(cmd) => secret::secret(&remote, cmd).await,
            Command::Audit { noun, limit } => audit::audit(&remote, noun, limit).await,
            Command::Logs { task, follow } => logs::logs(&remote, task, follow).await,
            Command::Calendar(cmd) => calendar::calendar(&remote, cmd).await,
            Command::Maintenance(cmd) => maintenance::maintenance(&remote, cmd).await,
            Command::Backup { file } => backup::backup(&remote, &file).await,
            Command::Restore { file, data } => {
                backup::restore(&file, &data.unwrap_or_else(|| "sundial-data".into())).await
            }
            Command::Migrate { from, to } => migrate::migrate(&from, &to).await,
            Command::Upcoming { hours, task, limit } => upcoming::upcoming(&remote, hours, task, limit).await,
        };
        match result {
            Ok(()) => 0,
            Err((code, msg)) => {
                eprintln!("error: {}", client::printable(&msg));
                code
            }
        }
    });
    ExitCode::from(code)
}

//! The `sundial` command line. Exit codes: 0 success, 1 the plugin returned an error
//! or trapped, 2 usage error or invalid/incompatible component, 3 a limit (timeout,
//! memory, fuel, output size) stopped the plugin.

mod plugin;

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
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with plugin components locally, without a daemon.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
}

/// Parse the arguments and run the command; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SUNDIAL_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Plugin(cmd) => plugin::execute(cmd).await,
        }
    });
    ExitCode::from(code)
}

//! `sundial plugin run` and `sundial plugin inspect`: run or describe one component
//! locally, with no daemon.

use super::client::Remote;
use super::{EXIT_LIMIT, EXIT_PLUGIN_ERROR, EXIT_USAGE};
use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use sundial_core::grants::{Grants, HostPattern, NetworkPolicy};
use sundial_core::invocation::{Event, Invocation};
use sundial_core::limits::Limits;
use sundial_core::limits::{parse_duration, parse_size};
use sundial_core::plugin::World;
use sundial_runtime::{MemoryServices, Plugin, PluginIdentity, Runtime, RuntimeConfig};

#[derive(Debug, Subcommand)]
pub(crate) enum PluginCommand {
    /// Run an action plugin once and print its JSON result on stdout.
    ///
    /// Plugin log lines go to stderr. Exit codes: 0 success, 1 the plugin returned an
    /// error or trapped, 2 usage error or invalid component, 3 a limit stopped it.
    Run(Box<RunArgs>),
    /// Print the world a component implements, its imports, exports and digest.
    Inspect(InspectArgs),
    /// Write a new plugin project: manifest (grants, limits), source and a test.
    New(super::project::NewArgs),
    /// Build the plugin project in this folder with its language's toolchain
    /// (installing what is missing, and saying so).
    Build(super::project::BuildArgs),
    /// Install a component on the daemon (validated and compiled before it is accepted).
    ///
    /// With no FILE, installs the plugin project in this folder: its built component,
    /// under its name, with its manifest's grants and limits (flags add grants and
    /// override limits).
    Install(InstallArgs),
    /// List the daemon's plugins.
    List,
    /// Show one installed plugin.
    Get {
        /// Plugin name.
        name: String,
    },
    /// Remove a plugin from the daemon (refused while a task uses it).
    Remove {
        /// Plugin name.
        name: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct InstallArgs {
    /// The component file [default: the project's, from sundial-plugin.toml here].
    file: Option<PathBuf>,
    /// Name to install it under [default: the file name without extension].
    #[arg(long)]
    name: Option<String>,
    /// Grant outbound HTTP to HOST; repeatable.
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,
    /// Grant its key-value namespace.
    #[arg(long)]
    grant_kv: bool,
    /// Grant emitting events.
    #[arg(long)]
    grant_events: bool,
    /// Grant sending mail through the daemon's SMTP relay.
    #[arg(long)]
    grant_mail: bool,
    /// Grant reading secret NAME; repeatable.
    #[arg(long = "grant-secret", value_name = "NAME")]
    secrets: Vec<String>,
    /// Wall-clock timeout per run, e.g. 30s.
    #[arg(long)]
    timeout: Option<String>,
    /// Memory cap, e.g. 64MiB.
    #[arg(long)]
    memory: Option<String>,
    /// Fuel budget per run.
    #[arg(long)]
    fuel: Option<u64>,
    /// Description [default: the manifest's, else none].
    #[arg(long)]
    description: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CacheArgs {
    /// Directory of compiled components [default: $SUNDIAL_CACHE_DIR, else
    /// $XDG_CACHE_HOME/sundial/compiled, else ~/.cache/sundial/compiled].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Do not use the compile cache.
    #[arg(long)]
    no_cache: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// A component file, or the name of a bundled plugin (echo, http-request).
    plugin: String,
    /// Task parameters as JSON [default: {}].
    #[arg(long, value_name = "JSON")]
    params: Option<String>,
    /// A CloudEvents JSON event to pass as the cause (id, source, time get defaults).
    #[arg(long, value_name = "JSON")]
    event: Option<String>,
    /// Grant outbound HTTP to HOST (`api.example.com`, `*.example.com`, `localhost:8080`,
    /// `127.0.0.1:*`); repeatable.
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,
    /// Let granted hosts resolve to loopback addresses (refused by default).
    #[arg(long)]
    allow_loopback: bool,
    /// Let granted hosts resolve to private and link-local addresses (refused by default).
    #[arg(long)]
    allow_private: bool,
    /// Grant the in-memory key-value store.
    #[arg(long)]
    grant_kv: bool,
    /// Grant emitting events (they are printed on stderr).
    #[arg(long)]
    grant_events: bool,
    /// Grant a secret, as NAME=VALUE; repeatable.
    #[arg(long = "secret", value_name = "NAME=VALUE")]
    secrets: Vec<String>,
    /// Wall-clock timeout, e.g. 500ms, 30s, 5m [default: 30s].
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// Memory cap, e.g. 64MiB [default: 64MiB].
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// Fuel budget (about one unit per instruction) [default: unlimited].
    #[arg(long, value_name = "UNITS")]
    fuel: Option<u64>,
    /// Largest accepted output, e.g. 1MiB [default: 1MiB].
    #[arg(long, value_name = "SIZE")]
    max_output: Option<String>,
    /// Task name passed in the invocation [default: local].
    #[arg(long, default_value = "local")]
    task: String,
    /// Print the whole run report (result, log, events, resources) as JSON instead.
    #[arg(long)]
    report: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// A component file, or the name of a bundled plugin.
    plugin: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

/// Run a plugin subcommand; returns the exit code.
pub(crate) async fn execute(cmd: PluginCommand, remote: &Remote) -> u8 {
    let result = match cmd {
        PluginCommand::Run(args) => run(*args).await,
        PluginCommand::Inspect(args) => inspect(args),
        PluginCommand::New(args) => super::project::new(args),
        PluginCommand::Build(args) => super::project::build(args),
        PluginCommand::Install(args) => install(args, remote).await,
        PluginCommand::List => list(remote).await,
        PluginCommand::Get { name } => remote.show(&format!("/v1/plugins/{name}")).await.map(|()| 0),
        PluginCommand::Remove { name } => remote
            .call("DELETE", &format!("/v1/plugins/{name}"), None)
            .await
            .map(|_| {
                println!("removed plugin {name}");
                0
            }),
    };
    result.unwrap_or_else(|(code, msg)| {
        eprintln!("error: {msg}");
        code
    })
}

type CliResult = Result<u8, (u8, String)>;

fn usage(msg: impl Into<String>) -> (u8, String) {
    (EXIT_USAGE, msg.into())
}

fn cache_dir(args: &CacheArgs) -> Option<PathBuf> {
    if args.no_cache {
        return None;
    }
    if let Some(dir) = &args.cache_dir {
        return Some(dir.clone());
    }
    if let Some(dir) = std::env::var_os("SUNDIAL_CACHE_DIR") {
        return Some(dir.into());
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("sundial").join("compiled"))
}

fn component_bytes(spec: &str) -> Result<Vec<u8>, (u8, String)> {
    let path = std::path::Path::new(spec);
    if path.exists() {
        return std::fs::read(path).map_err(|e| usage(format!("{spec}: {e}")));
    }
    match crate::bundled::get(spec) {
        Some(bytes) => Ok(bytes.to_vec()),
        None => Err(usage(format!(
            "{spec}: no such file, and not a bundled plugin (bundled: {})",
            crate::bundled::BUNDLED
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn load(runtime: &Runtime, spec: &str) -> Result<Plugin, (u8, String)> {
    let bytes = component_bytes(spec)?;
    runtime.load(&bytes).map_err(|e| usage(format!("{spec}: {e}")))
}

/// A CloudEvent as typed on the command line: only `type` is required.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventArg {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    source: Option<String>,
    subject: Option<String>,
    time: Option<String>,
    #[serde(default)]
    data: Value,
    specversion: Option<String>,
    datacontenttype: Option<String>,
}

fn parse_event(text: &str) -> Result<Event, String> {
    let arg: EventArg = serde_json::from_str(text).map_err(|e| format!("--event: {e}"))?;
    if arg.specversion.as_deref().is_some_and(|v| v != "1.0") {
        return Err("--event: specversion must be \"1.0\"".into());
    }
    if arg.kind.is_empty() {
        return Err("--event: `type` must not be empty".into());
    }
    let _ = arg.datacontenttype;
    Ok(Event {
        id: arg.id.unwrap_or_else(sundial_core::ids::new_id),
        kind: arg.kind,
        source: arg.source.unwrap_or_else(|| "sundial/cli".into()),
        subject: arg.subject,
        time: arg.time.unwrap_or_else(sundial_core::timestamp::now),
        data: arg.data,
    })
}

fn build_limits(args: &RunArgs) -> Result<Limits, String> {
    let mut limits = Limits::default();
    if let Some(t) = &args.timeout {
        limits.timeout_ms = parse_duration(t)
            .map_err(|e| format!("--timeout: {e}"))?
            .as_millis() as u64;
    }
    if let Some(m) = &args.memory {
        limits.memory_bytes = parse_size(m).map_err(|e| format!("--memory: {e}"))?;
    }
    if let Some(m) = &args.max_output {
        limits.max_output_bytes = parse_size(m).map_err(|e| format!("--max-output: {e}"))?;
    }
    limits.fuel = args.fuel;
    limits.validate().map_err(|e| format!("limit {e}"))?;
    Ok(limits)
}

async fn run(args: RunArgs) -> CliResult {
    let params: Value = match &args.params {
        Some(text) => {
            sundial_core::json::parse_str(text).map_err(|e| usage(format!("--params is not JSON: {e}")))?
        }
        None => Value::Object(Default::default()),
    };
    let event = args
        .event
        .as_deref()
        .map(parse_event)
        .transpose()
        .map_err(usage)?;
    let limits = build_limits(&args).map_err(usage)?;
    let hosts = args
        .allow_hosts
        .iter()
        .map(|h| HostPattern::parse(h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    let mut secrets = Vec::new();
    for s in &args.secrets {
        let (name, value) = s
            .split_once('=')
            .ok_or_else(|| usage(format!("--secret {s:?}: expected NAME=VALUE")))?;
        secrets.push((name.to_string(), value.to_string()));
    }
    let grants = Grants {
        hosts,
        kv: args.grant_kv,
        emit_events: args.grant_events,
        secrets: secrets.iter().map(|(n, _)| n.clone()).collect(),
        mail: false,
    };
    let config = RuntimeConfig {
        cache_dir: cache_dir(&args.cache),
        network: NetworkPolicy {
            allow_loopback: args.allow_loopback,
            allow_private: args.allow_private,
            ..NetworkPolicy::default()
        },
        max_instances: 4,
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(config).map_err(|e| usage(e.to_string()))?;
    let plugin = load(&runtime, &args.plugin)?;
    if plugin.world != World::Action {
        return Err(usage(format!(
            "{}: is a {} plugin; `plugin run` runs action plugins",
            args.plugin,
            plugin.world.as_str()
        )));
    }
    let name = std::path::Path::new(&args.plugin)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| args.plugin.clone());
    let identity = Arc::new(PluginIdentity { name, grants });
    let services = Arc::new(MemoryServices::with_secrets(secrets));
    let mut inv = Invocation::manual(&args.task, params);
    if let Some(ev) = event {
        inv.cause = sundial_core::invocation::Cause::Event;
        inv.event = Some(ev);
    }
    let report = runtime
        .run_action(&plugin, identity, &limits, services, &inv)
        .await;

    if args.report {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        for line in &report.log.lines {
            eprintln!(
                "[{:>6}ms {:<5} {:?}] {}",
                line.at_ms,
                line.level.as_str(),
                line.origin,
                super::client::printable(&line.message)
            );
        }
        if report.log.truncated {
            eprintln!("[log truncated: {} lines dropped]", report.log.dropped_lines);
        }
        for ev in &report.events {
            eprintln!("[event] {}", serde_json::to_string(ev).unwrap_or_default());
        }
        if let Ok(out) = &report.result {
            println!("{}", serde_json::to_string_pretty(out).unwrap_or_default());
        }
    }
    Ok(match &report.result {
        Ok(_) => 0,
        Err(e) => {
            if !args.report {
                eprintln!("error: {}", super::client::printable(&e.to_string()));
            }
            if e.is_limit() {
                EXIT_LIMIT
            } else {
                EXIT_PLUGIN_ERROR
            }
        }
    })
}

async fn install(args: InstallArgs, remote: &Remote) -> CliResult {
    // With no file: the project here, its manifest's grants and limits under the flags.
    let manifest = match &args.file {
        Some(_) => None,
        None => Some(super::project::Manifest::load(std::path::Path::new(".")).map_err(usage)?),
    };
    let file = match (&args.file, &manifest) {
        (Some(f), _) => f.clone(),
        (None, Some(m)) => m.output(std::path::Path::new(".")),
        (None, None) => unreachable!("a manifest is loaded when no file is given"),
    };
    let bytes = std::fs::read(&file).map_err(|e| {
        let hint = if manifest.is_some() {
            " (run `sundial plugin build` first)"
        } else {
            ""
        };
        usage(format!("{}: {e}{hint}", file.display()))
    })?;
    let name = match (args.name, &manifest) {
        (Some(n), _) => n,
        (None, Some(m)) => m.plugin.name.clone(),
        (None, None) => file
            .file_stem()
            .map(|s| s.to_string_lossy().replace('_', "-"))
            .unwrap_or_default(),
    };
    let (mut grants, mut limits) = match &manifest {
        Some(m) => (m.grants.clone(), m.limits),
        None => (Grants::default(), Limits::default()),
    };
    if let Some(t) = &args.timeout {
        limits.timeout_ms = parse_duration(t)
            .map_err(|e| usage(format!("--timeout: {e}")))?
            .as_millis() as u64;
    }
    if let Some(m) = &args.memory {
        limits.memory_bytes = parse_size(m).map_err(|e| usage(format!("--memory: {e}")))?;
    }
    if let Some(f) = args.fuel {
        limits.fuel = Some(f);
    }
    for h in &args.allow_hosts {
        grants
            .hosts
            .push(HostPattern::parse(h).map_err(|e| usage(format!("--allow-host {h:?}: {e}")))?);
    }
    grants.kv |= args.grant_kv;
    grants.emit_events |= args.grant_events;
    grants.mail |= args.grant_mail;
    grants.secrets.extend(args.secrets.iter().cloned());
    let description = match (args.description, &manifest) {
        (Some(d), _) => d,
        (None, Some(m)) => m.plugin.description.clone(),
        (None, None) => String::new(),
    };
    // The component goes up as raw bytes (no base64), the rest in the query.
    let enc = sundial_core::address::percent_encode;
    let path = format!(
        "/v1/plugins?name={}&description={}&grants={}&limits={}",
        enc(&name),
        enc(&description),
        enc(&serde_json::to_string(&grants).unwrap_or_default()),
        enc(&serde_json::to_string(&limits).unwrap_or_default()),
    );
    let v = remote.upload(&path, "application/wasm", bytes).await?;
    remote.print(&v, |p| {
        format!(
            "installed {} plugin {} ({})\n",
            super::client::text(&p["world"]),
            super::client::text(&p["name"]),
            super::client::text(&p["digest"])
        )
    });
    Ok(0)
}

async fn list(remote: &Remote) -> CliResult {
    use super::client::{table, text};
    let v = remote.call("GET", "/v1/plugins", None).await?;
    remote.print(&v, |v| {
        let rows = v["plugins"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        let digest = text(&p["digest"]);
                        vec![
                            text(&p["name"]),
                            text(&p["world"]),
                            digest.chars().take(19).collect(),
                            text(&p["size_bytes"]),
                            text(&p["bundled"]),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default();
        table(&["NAME", "WORLD", "DIGEST", "BYTES", "BUNDLED"], rows)
    });
    Ok(0)
}

fn inspect(args: InspectArgs) -> CliResult {
    let config = RuntimeConfig {
        cache_dir: cache_dir(&args.cache),
        max_instances: 1,
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(config).map_err(|e| usage(e.to_string()))?;
    let bytes = component_bytes(&args.plugin)?;
    let plugin = runtime
        .load(&bytes)
        .map_err(|e| usage(format!("{}: {e}", args.plugin)))?;
    if args.json {
        let doc = serde_json::json!({
            "world": plugin.world,
            "digest": format!("sha256:{}", plugin.digest),
            "size_bytes": bytes.len(),
            "imports": plugin.imports,
            "exports": plugin.exports,
            "compile_cache": plugin.cache,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        println!("world:   sundial:plugin/{}@0.1.0", plugin.world.as_str());
        println!("digest:  sha256:{}", plugin.digest);
        println!("size:    {} bytes", bytes.len());
        println!("exports: {}", plugin.exports.join(", "));
        println!("imports:");
        for i in &plugin.imports {
            println!("  {i}");
        }
    }
    Ok(0)
}

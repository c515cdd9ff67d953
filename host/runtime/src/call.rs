//! Calling a plugin: a fresh store per run with its limits, the call under its
//! deadline, and every way it can go wrong turned into a report.

use sundial_core::{limits, log};

use crate::bindings::action::sundial::plugin::types as wit;
use crate::outbound::OutboundHttp;
use crate::outcome::{DeadlineExceeded, classify, preview, timeout_error};
use crate::state::{Limiter, LogStream, RunState, StdioLog};
use crate::warm::{Live, Warm};
use crate::*;
use log::{Level, Origin, SharedLog};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::WasiHttpCtx;

impl Runtime {
    /// A fresh store for a run: deny-by-default WASI, bounded host resources, the
    /// run's limits armed by [`Runtime::arm`].
    fn new_store(&self, run: PerRun) -> Store<RunState> {
        let stdio = StdioLog::new(run.log.clone());
        let mut wasi = WasiCtxBuilder::new();
        // Deny by default: no args, env, preopened dirs, sockets or name lookups.
        wasi.stdout(LogStream {
            log: stdio.clone(),
            origin: Origin::Stdout,
        })
        .stderr(LogStream {
            log: stdio.clone(),
            origin: Origin::Stderr,
        })
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
        // Every socket address is refused as well: the WASI context's default check
        // (`SocketAddrCheck::default`) denies all, so none is set here.
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(limits::MAX_FIELDS_BYTES);
        let state = RunState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            http,
            hooks: self.hooks(&run),
            limiter: Limiter::new(run.limits.memory_bytes),
            log: run.log.clone(),
            stdio,
            plugin: run.identity.clone(),
            services: run.services.clone(),
            events: Vec::new(),
            secrets_read: Vec::new(),
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        self.arm(&mut store, &run);
        store
    }

    /// Point a store kept from an earlier run at this run: its log, services, HTTP
    /// bookkeeping, memory cap, fuel and deadline. The instance's memory, its WASI
    /// streams and the host resources it holds stay.
    fn reuse_store(&self, store: &mut Store<RunState>, run: PerRun) {
        let hooks = self.hooks(&run);
        let state = store.data_mut();
        state.stdio.set(run.log.clone());
        state.log = run.log.clone();
        state.hooks = hooks;
        state.limiter.rearm(run.limits.memory_bytes);
        state.plugin = run.identity.clone();
        state.services = run.services.clone();
        state.events.clear();
        self.arm(store, &run);
    }

    /// Outbound HTTP bookkeeping for one run.
    fn hooks(&self, run: &PerRun) -> OutboundHttp {
        OutboundHttp {
            plugin: run.identity.clone(),
            policy: self.inner.network.clone(),
            log: run.log.clone(),
            contacted: run.contacted.clone(),
            run_connections: Arc::new(tokio::sync::Semaphore::new(run.limits.max_connections as usize)),
            max_run_connections: run.limits.max_connections,
            all_connections: self.inner.outbound.clone(),
            max_all_connections: self.inner.config.max_outbound,
        }
    }

    /// The run's limits on a store: host resources, fuel and the deadline.
    fn arm(&self, store: &mut Store<RunState>, run: &PerRun) {
        // Host-side resources are bounded per run: how many (the table, and the
        // guest's handles to them) and how large a header map may grow.
        store
            .data_mut()
            .table
            .set_max_capacity(run.limits.max_resources as usize);
        store.set_max_component_handles(run.limits.max_resources as usize);
        if self.inner.config.fuel_metering {
            // Cannot fail: fuel metering is on in this engine.
            let _ = store.set_fuel(run.limits.fuel.unwrap_or(u64::MAX));
        }
        let deadline = run.deadline;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
    }

    /// Run an action plugin once. Never panics on plugin behaviour.
    pub async fn run_action(
        &self,
        plugin: &Plugin,
        identity: Arc<PluginIdentity>,
        limits: &Limits,
        services: Arc<dyn HostServices>,
        invocation: &Invocation,
    ) -> RunReport<Value> {
        let log = SharedLog::new(limits.max_log_lines, limits.max_log_bytes);
        self.run_action_logged(plugin, identity, limits, services, invocation, log)
            .await
    }

    /// [`Runtime::run_action`] writing its log lines into `log` as they come, so a
    /// reader holding a clone of it (the dashboard's live tail) sees them while the
    /// plugin runs. `log` should be new and carry `limits`' log limits.
    pub async fn run_action_logged(
        &self,
        plugin: &Plugin,
        identity: Arc<PluginIdentity>,
        limits: &Limits,
        services: Arc<dyn HostServices>,
        invocation: &Invocation,
        log: SharedLog,
    ) -> RunReport<Value> {
        let input = wit::Invocation::from(invocation);
        let report = self
            .execute(
                plugin,
                identity,
                limits,
                services,
                Input::Action(&input),
                World::Action,
                log,
            )
            .await;
        let max = limits.max_output_bytes;
        map_report(report, |out| match out {
            Output::Action(Ok(text)) => {
                if text.len() as u64 > max {
                    return Err(RunError::OutputTooLarge(format!(
                        "output is {} bytes, over the {max}-byte limit (starts {:?})",
                        text.len(),
                        preview(&text)
                    )));
                }
                sundial_core::json::parse_str(&text).map_err(|e| {
                    RunError::BadOutput(format!("output is not accepted JSON ({e}): {:?}", preview(&text)))
                })
            }
            Output::Action(Err(e)) => Err(e.into()),
            Output::Formatter(_) => Err(RunError::Instantiate("internal: world mismatch".into())),
        })
    }

    /// Run a formatter plugin once. Never panics on plugin behaviour.
    pub async fn run_formatter(
        &self,
        plugin: &Plugin,
        identity: Arc<PluginIdentity>,
        limits: &Limits,
        services: Arc<dyn HostServices>,
        delivery: &Delivery,
    ) -> RunReport<HttpBody> {
        let input = wit::Delivery::from(delivery);
        let report = self
            .execute(
                plugin,
                identity,
                limits,
                services,
                Input::Formatter(&input),
                World::Formatter,
                SharedLog::new(limits.max_log_lines, limits.max_log_bytes),
            )
            .await;
        let max = limits.max_output_bytes;
        map_report(report, |out| match out {
            Output::Formatter(Ok(b)) if b.body.len() as u64 > max => Err(RunError::OutputTooLarge(format!(
                "body is {} bytes, over the {max}-byte limit",
                b.body.len()
            ))),
            Output::Formatter(Ok(b)) => Ok(HttpBody {
                content_type: b.content_type,
                body: b.body,
                headers: b.headers,
            }),
            Output::Formatter(Err(e)) => Err(RunError::Failed(e)),
            Output::Action(_) => Err(RunError::Instantiate("internal: world mismatch".into())),
        })
    }

    async fn execute(
        &self,
        plugin: &Plugin,
        identity: Arc<PluginIdentity>,
        limits: &Limits,
        services: Arc<dyn HostServices>,
        input: Input<'_>,
        expected: World,
        log: SharedLog,
    ) -> RunReport<Output> {
        let contacted = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let deadline = started + limits.timeout();
        if plugin.world != expected {
            let err = RunError::Instantiate(
                LoadError::WrongWorld {
                    expected: expected.as_str(),
                    found: plugin.world.as_str(),
                }
                .to_string(),
            );
            return RunReport {
                result: Err(err),
                log: log.finish(),
                events: Vec::new(),
                resources: Resources::default(),
            };
        }
        let run = PerRun {
            identity: &identity,
            limits,
            services: &services,
            log: &log,
            contacted: &contacted,
            deadline,
        };
        let reuse = limits.runs_per_instance > 1;
        let warm = match reuse {
            true => self.inner.warm.take(&plugin.digest, &identity, limits),
            false => None,
        };
        let reused_instance = warm.is_some();
        let (mut store, live, runs) = match warm {
            Some(mut w) => {
                self.reuse_store(&mut w.store, run);
                (w.store, Some(w.live), w.runs)
            }
            None => (self.new_store(run), None, 0),
        };
        let call = call(&mut store, &plugin.pre, live, input);
        // The outer timeout also covers time blocked in host calls; a little slack
        // lets the epoch callback report guest-side timeouts itself.
        let outcome = tokio::time::timeout(limits.timeout() + Duration::from_millis(50), call).await;
        let duration = started.elapsed();
        let (result, live) = match outcome {
            Err(_elapsed) => (Err(timeout_error(limits)), None),
            Ok(Ok((out, live))) => (Ok(out), Some(live)),
            Ok(Err(e)) => (Err(classify(&e, store.data(), limits, &log)), None),
        };
        if let Err(e) = &result {
            log.push(Level::Error, Origin::Host, &e.to_string());
        }
        let fuel_consumed = match (self.inner.config.fuel_metering, store.get_fuel()) {
            (true, Ok(left)) => Some(limits.fuel.unwrap_or(u64::MAX) - left),
            _ => None,
        };
        let state = store.data_mut();
        let mut events = std::mem::take(&mut state.events);
        // A kept instance may still hold the secrets an earlier run read: redact them all.
        let secrets = state.secrets_read.clone();
        let resources = Resources {
            duration_us: duration.as_micros() as u64,
            peak_memory_bytes: state.limiter.peak as u64,
            fuel_consumed,
            hosts_contacted: contacted.lock().map(|c| c.clone()).unwrap_or_default(),
            reused_instance,
        };
        // Only an instance that returned normally, within its memory cap, is called
        // again: after a trap, a timeout or a refused allocation its state is unknown.
        // Nor one that still holds an outbound connection (a response or body kept in a
        // global): its permits would outlive the run that counts them.
        let connections_closed =
            state.hooks.run_connections.available_permits() == state.hooks.max_run_connections as usize;
        let keep = live.filter(|_| {
            reuse && runs + 1 < limits.runs_per_instance && !state.limiter.hit && connections_closed
        });
        match keep {
            Some(live) => {
                // Idle, the store holds nothing of this run's.
                let idle = SharedLog::new(0, 0);
                state.stdio.set(idle.clone());
                state.log = idle;
                self.inner
                    .warm
                    .put(Warm::new(store, live, runs + 1, plugin.digest.clone()));
            }
            None => drop(store),
        }
        let mut log = log.finish();
        let mut result = result;
        if !secrets.is_empty() {
            redact_report(&secrets, &mut result, &mut log, &mut events);
        }
        RunReport {
            result,
            log,
            events,
            resources,
        }
    }
}

/// Replace the secret values a run read wherever the run's results would show them:
/// log lines, error messages, an action's output and emitted events. A formatter's body
/// is left alone (putting a token into a payload is its job).
fn redact_report(
    secrets: &[String],
    result: &mut Result<Output, RunError>,
    log: &mut log::RunLog,
    events: &mut [EmittedEvent],
) {
    use sundial_core::secret::{REDACTED, redact};
    // In JSON text a value may appear escaped; redact that form too.
    let mut forms: Vec<String> = secrets.to_vec();
    for s in secrets {
        let escaped = serde_json::to_string(s).unwrap_or_default();
        let inner = escaped.trim_matches('"').to_string();
        if inner != *s {
            forms.push(inner);
        }
    }
    for line in &mut log.lines {
        line.message = redact(&line.message, &forms);
    }
    match result {
        Err(e) => *e = e.map_message(|m| redact(m, &forms)),
        Ok(Output::Action(Ok(out))) => *out = redact(out, &forms),
        Ok(Output::Action(Err(e))) => {
            let (wit::ActionError::InvalidParams(m)
            | wit::ActionError::Failed(m)
            | wit::ActionError::Retryable(m)) = e;
            *m = redact(m, &forms);
        }
        Ok(Output::Formatter(_)) => {}
    }
    for e in events {
        let text = redact(&e.data.to_string(), &forms);
        e.data = serde_json::from_str(&text).unwrap_or(Value::String(REDACTED.into()));
        if let Some(s) = &mut e.subject {
            *s = redact(s, &forms);
        }
    }
}

enum Input<'a> {
    Action(&'a wit::Invocation),
    Formatter(&'a wit::Delivery),
}

enum Output {
    Action(Result<String, wit::ActionError>),
    Formatter(Result<wit::HttpBody, String>),
}

/// Call the plugin: on `live` when a kept instance is given, else on a new instance.
/// Returns the instance with the output so it can be kept.
async fn call(
    store: &mut Store<RunState>,
    pre: &Pre,
    live: Option<Live>,
    input: Input<'_>,
) -> wasmtime::Result<(Output, Live)> {
    let live = match live {
        Some(live) => live,
        None => instantiate(store, pre).await?,
    };
    let out = match (&live, input) {
        (Live::Action(a), Input::Action(inv)) => Output::Action(a.call_run(&mut *store, inv).await?),
        (Live::Formatter(f), Input::Formatter(d)) => Output::Formatter(f.call_format(&mut *store, d).await?),
        _ => wasmtime::bail!("plugin world does not match the call"),
    };
    Ok((out, live))
}

async fn instantiate(store: &mut Store<RunState>, pre: &Pre) -> wasmtime::Result<Live> {
    Ok(match pre {
        Pre::Action(pre) => Live::Action(pre.instantiate_async(&mut *store).await?),
        Pre::Formatter(pre) => Live::Formatter(pre.instantiate_async(&mut *store).await?),
    })
}

/// What a store needs to know of the run it serves.
#[derive(Clone, Copy)]
struct PerRun<'a> {
    identity: &'a Arc<PluginIdentity>,
    limits: &'a Limits,
    services: &'a Arc<dyn HostServices>,
    log: &'a SharedLog,
    contacted: &'a Arc<Mutex<Vec<String>>>,
    deadline: Instant,
}

fn map_report<T>(report: RunReport<Output>, f: impl FnOnce(Output) -> Result<T, RunError>) -> RunReport<T> {
    let RunReport {
        result,
        mut log,
        events,
        resources,
    } = report;
    let result = result.and_then(f);
    if let Err(e @ (RunError::OutputTooLarge(_) | RunError::BadOutput(_))) = &result {
        log.lines.push(log::LogLine {
            at_ms: resources.duration_us / 1000,
            level: Level::Error,
            origin: Origin::Host,
            message: e.to_string(),
        });
    }
    RunReport {
        result,
        log,
        events,
        resources,
    }
}

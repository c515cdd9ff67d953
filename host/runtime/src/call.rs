//! Calling a plugin: a fresh store per run with its limits, the call under its
//! deadline, and every way it can go wrong turned into a report.

use sundial_core::{limits, log};

use crate::bindings::action::sundial::plugin::types as wit;
use crate::outbound::OutboundHttp;
use crate::outcome::{DeadlineExceeded, classify, preview, timeout_error};
use crate::state::{Limiter, LogStream, RunState};
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
    fn new_store(
        &self,
        identity: &Arc<PluginIdentity>,
        limits: &Limits,
        services: Arc<dyn HostServices>,
        log: SharedLog,
        contacted: Arc<Mutex<Vec<String>>>,
        deadline: Instant,
    ) -> Store<RunState> {
        let mut wasi = WasiCtxBuilder::new();
        // Deny by default: no args, env, preopened dirs, sockets or name lookups.
        wasi.stdout(LogStream {
            log: log.clone(),
            origin: Origin::Stdout,
        })
        .stderr(LogStream {
            log: log.clone(),
            origin: Origin::Stderr,
        })
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
        // Host-side resources are bounded per run: how many (the table, and the
        // guest's handles to them) and how large a header map may grow.
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_resources as usize);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(limits::MAX_FIELDS_BYTES);
        let state = RunState {
            wasi: wasi.build(),
            table,
            http,
            hooks: OutboundHttp {
                grants: Arc::new(identity.grants.clone()),
                policy: self.inner.config.network.clone(),
                log: log.clone(),
                contacted,
                run_connections: Arc::new(tokio::sync::Semaphore::new(limits.max_connections as usize)),
                max_run_connections: limits.max_connections,
                all_connections: self.inner.outbound.clone(),
                max_all_connections: self.inner.config.max_outbound,
            },
            limiter: Limiter::new(limits.memory_bytes),
            log,
            plugin: identity.clone(),
            services,
            events: Vec::new(),
            secrets_read: Vec::new(),
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_max_component_handles(limits.max_resources as usize);
        if self.inner.config.fuel_metering {
            // Cannot fail: fuel metering is on in this engine.
            let _ = store.set_fuel(limits.fuel.unwrap_or(u64::MAX));
        }
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
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
        let mut store = self.new_store(
            &identity,
            limits,
            services,
            log.clone(),
            contacted.clone(),
            deadline,
        );
        let call = call(&mut store, &plugin.pre, input);
        // The outer timeout also covers time blocked in host calls; a little slack
        // lets the epoch callback report guest-side timeouts itself.
        let outcome = tokio::time::timeout(limits.timeout() + Duration::from_millis(50), call).await;
        let duration = started.elapsed();
        let result = match outcome {
            Err(_elapsed) => Err(timeout_error(limits)),
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(classify(&e, store.data(), limits, &log)),
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
        let secrets = std::mem::take(&mut state.secrets_read);
        let resources = Resources {
            duration_us: duration.as_micros() as u64,
            peak_memory_bytes: state.limiter.peak as u64,
            fuel_consumed,
            hosts_contacted: contacted.lock().map(|c| c.clone()).unwrap_or_default(),
        };
        drop(store);
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

async fn call(store: &mut Store<RunState>, pre: &Pre, input: Input<'_>) -> wasmtime::Result<Output> {
    match (pre, input) {
        (Pre::Action(pre), Input::Action(inv)) => {
            let instance = pre.instantiate_async(&mut *store).await?;
            Ok(Output::Action(instance.call_run(&mut *store, inv).await?))
        }
        (Pre::Formatter(pre), Input::Formatter(d)) => {
            let instance = pre.instantiate_async(&mut *store).await?;
            Ok(Output::Formatter(instance.call_format(&mut *store, d).await?))
        }
        _ => wasmtime::bail!("plugin world does not match the call"),
    }
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

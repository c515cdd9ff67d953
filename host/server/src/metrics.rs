//! `GET /metrics`: every figure the daemon reports, read at scrape time from the layer
//! that counts it (store, executor, router, runtime, admission, connections) and
//! encoded by `prometheus-client` in the OpenMetrics text format.
//!
//! The layers below count with plain atomics and know nothing of Prometheus; the names,
//! types and help texts are all here, in one table (`docs/operations.md` lists them).

use crate::{ApiResult, AppState, Reader};
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use sundial_core::metrics::Histogram;

/// The OpenMetrics text format, as Prometheus asks for it.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics` (any role but ingest).
pub(crate) async fn metrics(Reader(state, _): Reader) -> ApiResult<Exposition> {
    // Read before encoding: a store error is an answer, not a broken exposition.
    let queue_depth = state.store.queue_depth()?;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Figures { state, queue_depth }));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .map_err(|e| crate::ApiError::internal(format!("encoding metrics: {e}")))?;
    Ok(Exposition(text))
}

/// The metrics in the OpenMetrics text format.
pub(crate) struct Exposition(String);

impl IntoResponse for Exposition {
    fn into_response(self) -> axum::response::Response {
        ([(header::CONTENT_TYPE, CONTENT_TYPE)], self.0).into_response()
    }
}

crate::answer::raw_answer!(
    Exposition,
    "application/openmetrics-text",
    "the metrics (OpenMetrics text; docs/metrics.md lists them)",
    { "type": "string" }
);

/// What one scrape reports.
struct Figures {
    state: AppState,
    queue_depth: u64,
}

impl fmt::Debug for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Figures")
    }
}

/// Writes metric families: a counter's samples get the `_total` suffix.
struct Out<'a, 'b>(&'a mut DescriptorEncoder<'b>);

impl Out<'_, '_> {
    fn counter(&mut self, name: &str, help: &str, value: u64) -> fmt::Result {
        let c = ConstCounter::new(value);
        c.encode(self.0.encode_descriptor(name, help, None, c.metric_type())?)
    }

    fn gauge(&mut self, name: &str, help: &str, value: usize) -> fmt::Result {
        let g = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
        g.encode(self.0.encode_descriptor(name, help, None, g.metric_type())?)
    }

    fn histogram(&mut self, name: &str, help: &str, h: &Histogram) -> fmt::Result {
        let mut s = h.snapshot();
        // prometheus-client writes the bucket bounded by f64::MAX as `+Inf`.
        for (bound, _) in &mut s.buckets {
            if bound.is_infinite() {
                *bound = f64::MAX;
            }
        }
        let mut m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Histogram)?;
        m.encode_histogram::<NoLabelSet>(s.sum, s.count, &s.buckets, None)
    }

    /// A counter with one label, one sample per (label value, count).
    fn counters(&mut self, name: &str, help: &str, label: &str, samples: &[(&str, u64)]) -> fmt::Result {
        let mut family = self.0.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (value, n) in samples {
            let labels = [(label, *value)];
            ConstCounter::new(*n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

impl Collector for Figures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let state = &self.state;
        let mut out = Out(&mut encoder);
        let stats = state.store.stats();
        out.counter(
            "sundial_store_commits",
            "Durable store commits.",
            stats.commits.load(Relaxed),
        )?;
        out.counter(
            "sundial_store_mutations",
            "Mutations applied (many share one commit).",
            stats.mutations.load(Relaxed),
        )?;
        out.gauge(
            "sundial_store_max_batch",
            "Largest number of mutations in one commit.",
            stats.max_batch.load(Relaxed) as usize,
        )?;
        out.histogram(
            "sundial_store_commit_seconds",
            "Commit (fsync) latency; its sum is the time spent committing.",
            &stats.commit_seconds,
        )?;
        out.histogram(
            "sundial_store_batch_size",
            "Mutations per commit.",
            &stats.batch_size,
        )?;
        out.counter(
            "sundial_store_unreadable_skipped",
            "Times a list, page or load skipped a stored record that does not decode (GET /v1/admin/unreadable lists them).",
            sundial_store::unreadable::skipped_total(),
        )?;
        let executor = &state.engines.executor;
        out.gauge(
            "sundial_run_queue_depth",
            "Runs waiting in the durable queue.",
            self.queue_depth as usize,
        )?;
        out.gauge(
            "sundial_runs_running",
            "Runs executing now.",
            executor.running_count(),
        )?;
        out.gauge(
            "sundial_run_backlog",
            "Runs handed to the workers and waiting for a free one.",
            executor.backlog(),
        )?;
        out.histogram(
            "sundial_run_duration_seconds",
            "Duration of finished run attempts.",
            executor.durations(),
        )?;
        out.histogram(
            "sundial_schedule_lateness_seconds",
            "Scheduled runs (first attempts): from the slot's due time (slot plus jitter) to the run's start.",
            executor.lateness(),
        )?;
        let finished: Vec<(&str, u64)> = executor
            .finished_counts()
            .into_iter()
            .filter(|(status, _)| status.is_terminal())
            .map(|(status, n)| (status.as_str(), n))
            .collect();
        out.counters(
            "sundial_runs_finished",
            "Runs that reached a final status since start.",
            "status",
            &finished,
        )?;
        let (chain_budget, queue_full) = state.engines.router().stopped();
        out.counters(
            "sundial_events_stopped",
            "Events stored but not routed, by reason: chain_budget (their causal chain had started max_chain runs, timers and deliveries) or queue_full (max_queued_runs runs waited).",
            "reason",
            &[("chain_budget", chain_budget), ("queue_full", queue_full)],
        )?;
        let (in_progress, max_requests, refused) = state.admission.requests();
        out.gauge(
            "sundial_http_requests_in_progress",
            "API requests being handled now (not /healthz or /metrics).",
            in_progress,
        )?;
        out.gauge(
            "sundial_http_max_requests",
            "The request limit (max_requests).",
            max_requests,
        )?;
        out.counter(
            "sundial_http_requests_refused",
            "Requests answered 503 overloaded since start.",
            refused,
        )?;
        let c = state.connections.stats();
        out.gauge(
            "sundial_http_connections_open",
            "Client connections open now.",
            c.open,
        )?;
        out.gauge(
            "sundial_http_max_connections",
            "The connection limit (max_connections).",
            c.max,
        )?;
        out.counter(
            "sundial_http_connections_accepted",
            "Client connections accepted since start.",
            c.accepted,
        )?;
        out.counter(
            "sundial_http_connections_evicted",
            "Idle connections closed to make room for a new one at the limit.",
            c.evicted,
        )?;
        out.counter(
            "sundial_http_connections_refused",
            "Connections answered 503 because every open one was in a request.",
            c.refused,
        )?;
        out.gauge(
            "sundial_plugin_http_requests_open",
            "Outbound HTTP requests plugin runs have open now (all runs).",
            state.runtime.outbound_in_use(),
        )?;
        out.gauge(
            "sundial_plugin_instances_idle",
            "Plugin instances kept idle between runs (limits.runs_per_instance above 1).",
            state.runtime.idle_instances(),
        )?;
        let plugins = &state.engines.plugins;
        let (loaded, bytes) = plugins.usage();
        out.gauge(
            "sundial_plugins_loaded",
            "Compiled plugins kept loaded in memory (the warm-up at start loads only those a task or webhook names).",
            loaded,
        )?;
        out.gauge(
            "sundial_plugins_loaded_bytes",
            "Compiled code the loaded plugins hold, in bytes (bounded by plugin_memory).",
            bytes,
        )?;
        let (compiled, from_disk) = plugins.loads();
        out.counters(
            "sundial_plugin_loads",
            "Plugins loaded for runs, deliveries or the warm-up since start, by source: compile (no usable compile cache entry; also a plugin the warm-up compiled into the compile cache without loading it) or disk (the compile cache). Installing compiles without counting here, and keeps the plugin loaded unless the daemon installed it (bundled).",
            "from",
            &[("compile", compiled), ("disk", from_disk)],
        )
    }
}

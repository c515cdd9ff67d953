//! Sundial's engines: the [`executor`] runs queued runs through the plugin runtime,
//! the [`scheduler`] fires schedule slots, the [`router`] plans what events start, the
//! [`timers`] loop fires delayed targets, the [`deliverer`] sends webhook deliveries,
//! [`retention`] prunes old records. Every change that causes work commits through the
//! [`outbox`] (plan, commit with the change, dispatch). [`services`] are what plugins
//! may ask of the host; [`clock`] is the one time source the engines share.
//!
//! Rule of this layer: engines talk to persistence through `sundial-store` and to
//! plugins through `sundial-runtime`; nothing here knows HTTP routes or the CLI. Each
//! engine gets what it needs when it is built ([`Engines::start`]): no setters, no
//! late-bound references between engines. See `docs/ARCHITECTURE.md`.

#![warn(missing_docs)]

pub mod clock;
pub mod deliverer;
pub mod detach;
pub mod executor;
pub mod outbox;
pub mod plugins;
pub mod queue;
pub mod retention;
pub mod router;
pub mod scheduler;
pub mod services;
pub mod timers;

/// Lock a mutex, taking the value over from a thread that panicked while holding it
/// (every value these engines guard stays consistent between statements).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

use std::sync::Arc;
use sundial_core::calendar::Exclusions;
use sundial_core::grants::NetworkPolicy;
use sundial_runtime::{HostServices, Runtime};
use sundial_store::sealing::SecretKey;
use sundial_store::{SharedStore, StoreError};

/// What the engines are built from.
pub struct EngineConfig {
    /// The store every engine commits to.
    pub store: SharedStore,
    /// The plugin runtime.
    pub runtime: Runtime,
    /// What plugins may ask of the host.
    pub services: Arc<dyn HostServices>,
    /// The key that opens webhook signing secrets.
    pub key: SecretKey,
    /// Address ranges deliveries may reach.
    pub network: NetworkPolicy,
    /// The time source of schedules, timers and event times.
    pub clock: clock::Clock,
    /// Runs executing at once.
    pub workers: usize,
    /// Runs waiting for a worker beyond which no source adds more.
    pub max_queued_runs: usize,
    /// How far work may spread from one cause.
    pub route_limits: router::RouteLimits,
    /// The zone of calendars that name none (the daemon's `timezone`).
    pub zone: chrono_tz::Tz,
    /// Compiled plugins kept loaded in memory, in bytes (least recently used dropped
    /// first). [`plugins::DEFAULT_CAPACITY_BYTES`] by default.
    pub plugin_memory: usize,
}

/// The running engines, built in dependency order.
#[derive(Clone)]
pub struct Engines {
    /// The one commit-with-effects path (and, through it, the router and run queue).
    pub outbox: Outbox,
    /// Runs queued runs.
    pub executor: executor::Executor,
    /// Sends webhook deliveries.
    pub deliverer: deliverer::Deliverer,
    /// Fires delayed trigger targets.
    pub timers: timers::Timers,
    /// Fires schedule slots.
    pub scheduler: scheduler::Scheduler,
    /// Compiled plugins kept loaded (shared by the executor and the deliverer).
    pub plugins: plugins::PluginCache,
}

pub use outbox::Outbox;

/// Most runs read at start to fill the per-minute series of the last day: 200 000.
pub const ACTIVITY_BACKFILL_RUNS: usize = 200_000;

/// Why the engines did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Reading what the engines load at start failed.
    #[error("{step}: {source}")]
    Store {
        /// What was being done.
        step: &'static str,
        /// The store's error.
        source: StoreError,
    },
    /// The executor's worker threads did not start.
    #[error("starting the run threads: {0}")]
    Threads(std::io::Error),
}

impl StartError {
    fn at(step: &'static str) -> impl FnOnce(StoreError) -> StartError {
        move |source| StartError::Store { step, source }
    }
}

impl Engines {
    /// Build and start every engine: the run queue, the router and the outbox first,
    /// then the executor (and recovery of what a dead process left), the deliverer,
    /// the timer loop and the scheduler (which records slots missed while down).
    pub async fn start(config: EngineConfig) -> Result<Engines, StartError> {
        let EngineConfig {
            store,
            runtime,
            services,
            key,
            network,
            clock,
            workers,
            max_queued_runs,
            route_limits,
            zone,
            plugin_memory,
        } = config;
        let exclusions = Exclusions::default();
        exclusions.set(
            store.calendars().map_err(StartError::at("reading calendars"))?,
            store
                .maintenance()
                .map_err(StartError::at("reading maintenance windows"))?,
        );
        let (queue, ready) = queue::RunQueue::new(max_queued_runs);
        let router = router::Router::new(
            store.clone(),
            queue.clone(),
            clock.clone(),
            route_limits,
            exclusions.clone(),
            zone,
        )
        .map_err(StartError::at("loading triggers"))?;
        let outbox = Outbox::new(store.clone(), router, queue);
        let plugins = plugins::PluginCache::new(store.clone(), runtime, plugin_memory);
        plugins.warm();
        let executor = executor::Executor::start(
            store.clone(),
            plugins.clone(),
            services.clone(),
            outbox.clone(),
            ready,
            workers,
        )
        .map_err(StartError::Threads)?;
        let deliverer = deliverer::Deliverer::start(
            store.clone(),
            plugins.clone(),
            outbox.clone(),
            services,
            key,
            network,
        );
        let (queued, interrupted) = executor
            .recover()
            .await
            .map_err(StartError::at("recovering runs"))?;
        if queued + interrupted > 0 {
            tracing::info!(queued, interrupted, "recovered runs left by the previous process");
        }
        // The dashboard's chart of the last day starts from what the store holds.
        let backfill = executor.clone();
        tokio::task::spawn_blocking(move || match backfill.backfill_activity(ACTIVITY_BACKFILL_RUNS) {
            Ok(n) => tracing::debug!(runs = n, "counted the last day's runs"),
            Err(e) => tracing::warn!("counting the last day's runs failed: {e}"),
        });
        let timers = timers::Timers::start(store.clone(), clock.clone(), outbox.clone());
        let store_changes = store.changes();
        let scheduler = scheduler::start(store, outbox.clone(), clock, exclusions)
            .await
            .map_err(StartError::at("starting the scheduler"))?;
        let engines = Engines {
            outbox,
            executor,
            deliverer,
            timers,
            scheduler,
            plugins,
        };
        if let Some(changes) = store_changes {
            tokio::spawn(engines.clone().follow(changes));
        }
        Ok(engines)
    }

    /// In a cluster: take up what the other nodes change, on their notices (and every
    /// [`scheduler::RESYNC`] for triggers, in case a notice was lost).
    async fn follow(self, mut changes: tokio::sync::broadcast::Receiver<String>) {
        use tokio::sync::broadcast::error::RecvError;
        let mut poll = tokio::time::interval(scheduler::RESYNC);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let first = tokio::select! {
                topic = changes.recv() => match topic {
                    Ok(topic) => topic,
                    Err(RecvError::Lagged(_)) => "resync".to_string(),
                    Err(RecvError::Closed) => return,
                },
                _ = poll.tick() => "triggers".to_string(),
            };
            // Every notice that came meanwhile is taken up with this one: a thousand
            // trigger changes reload the triggers once, not a thousand times.
            let mut topics = std::collections::BTreeSet::from([first]);
            loop {
                match changes.try_recv() {
                    Ok(topic) => {
                        topics.insert(topic);
                    }
                    Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {
                        topics.insert("resync".to_string());
                    }
                    Err(_) => break,
                }
            }
            let has = |t: &str| topics.contains("resync") || topics.contains(t);
            if (has("triggers") || has("calendars"))
                && let Err(e) = self.router().reload_all().await
            {
                tracing::warn!("reloading triggers after another node's change failed: {e}");
            }
            if has("schedules") || has("calendars") {
                self.scheduler.resync();
            }
            if has("timers") {
                self.outbox.timer_signal().notify_one();
            }
            if has("deliveries") {
                self.outbox.delivery_signal().notify_one();
            }
            if has("cancel") {
                self.executor.renew_now();
            }
            if topics.contains("plugins") {
                // Another node installed one: compile it here too before a run needs it,
                // and keep no instance of what it replaced.
                self.plugins.runtime().drop_idle_instances();
                self.plugins.warm();
            }
        }
    }

    /// The router (trigger index, reloads, counters).
    pub fn router(&self) -> &router::Router {
        self.outbox.router()
    }
}

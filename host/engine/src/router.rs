//! The router: plans what an event starts through the trigger index (runs, timers,
//! deliveries), holding it back past the depth limit, the chain's budget or a full run
//! queue. It stores nothing: the [`crate::outbox`] commits the plan with the change
//! that caused the event and dispatches it.

use crate::clock::Clock;
use crate::queue::RunQueue;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use sundial_core::calendar::Exclusions;
use sundial_core::event::budget::ChainBudget;
use sundial_core::event::cloudevent::CloudEvent;
use sundial_core::event::index::TriggerIndex;
use sundial_core::event::{EventRecord, Matched};
use sundial_core::run::{Run, RunCause};
use sundial_core::timestamp::now;
use sundial_core::trigger::{TriggerSpec, merge_params};
use sundial_store::events::Planned;
use sundial_store::tasks::TaskRecord;
use sundial_store::timers::{Timer, TimerWebhook};
use sundial_store::triggers::TriggerRecord;
use sundial_store::webhooks::WebhookRecord;
use sundial_store::{SharedStore, StoreError};

/// Default limit on causal depth (`max_event_depth`): an event more than this many
/// run-to-event steps away from an outside event or a manual run is stored but not
/// routed, which stops trigger loops.
pub const DEFAULT_MAX_DEPTH: u32 = 8;

/// How far the router lets work spread from one cause.
#[derive(Debug, Clone, Copy)]
pub struct RouteLimits {
    /// Causal depth beyond which events are stored but not routed (`max_event_depth`,
    /// default [`DEFAULT_MAX_DEPTH`]).
    pub max_depth: u32,
    /// Runs, timers and webhook deliveries one causal chain may start
    /// (`max_chain`, default [`sundial_core::event::budget::DEFAULT_MAX_CHAIN`]).
    pub max_chain: u64,
}

impl Default for RouteLimits {
    fn default() -> Self {
        RouteLimits {
            max_depth: DEFAULT_MAX_DEPTH,
            max_chain: sundial_core::event::budget::DEFAULT_MAX_CHAIN,
        }
    }
}

/// Where an event to plan comes from: what the router needs besides the event.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// Causal depth: 0 for outside events, one more than the run, slot or delivery
    /// that caused it.
    pub depth: u32,
    /// The run it came from, if any.
    pub caused_by: Option<String>,
    /// The causal chain it belongs to (`None`: it starts one, named by its own seq).
    pub root: Option<String>,
    /// Runs planned for the same commit before this event: they count toward the
    /// queue limit although they are not queued yet.
    pub queued_with: usize,
}

impl Origin {
    /// An event `depth` steps from outside that starts its own chain.
    pub fn at_depth(depth: u32) -> Origin {
        Origin {
            depth,
            ..Origin::default()
        }
    }
}

/// Handle to the router (cheap to clone).
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

struct Inner {
    store: SharedStore,
    queue: RunQueue,
    clock: Clock,
    limits: RouteLimits,
    /// What each causal chain has started so far.
    budget: Mutex<ChainBudget>,
    /// Events not routed because their chain had spent its budget.
    stopped_by_budget: AtomicU64,
    /// Events from inside not routed because the run queue was full.
    stopped_by_queue: AtomicU64,
    /// Every enabled, valid trigger by id: the source the index is built from.
    triggers: std::sync::Mutex<std::collections::HashMap<String, Arc<sundial_core::trigger::Compiled>>>,
    /// Reloads (one trigger or all) take turns, read and apply: of two, the later read
    /// (the newer state) is applied last. An async lock: a read may wait on the store
    /// (on PostgreSQL a blocking read drives the connection on the runtime), and a
    /// thread blocked on a plain mutex meanwhile could hold the very task it waits for.
    reloads: tokio::sync::Mutex<()>,
    index: RwLock<Arc<TriggerIndex>>,
    /// Calendars in force (shared with the scheduler).
    exclusions: Exclusions,
    /// The zone of calendars that name none (the daemon's `timezone`).
    zone: chrono_tz::Tz,
}

impl Router {
    /// Build the router and load the trigger index. Triggers honour `exclusions` (the
    /// scheduler's), reading calendars that name no zone in `zone`.
    pub fn new(
        store: SharedStore,
        queue: RunQueue,
        clock: Clock,
        limits: RouteLimits,
        exclusions: Exclusions,
        zone: chrono_tz::Tz,
    ) -> Result<Router, StoreError> {
        let router = Router {
            inner: Arc::new(Inner {
                store,
                queue,
                clock,
                limits,
                budget: Mutex::new(ChainBudget::new(limits.max_chain)),
                stopped_by_budget: AtomicU64::new(0),
                stopped_by_queue: AtomicU64::new(0),
                triggers: Default::default(),
                reloads: tokio::sync::Mutex::new(()),
                index: RwLock::new(Arc::new(TriggerIndex::default())),
                exclusions,
                zone,
            }),
        };
        router.reload()?;
        Ok(router)
    }

    /// Load every trigger from the store and build the index again (in a cluster, on
    /// another node's change), in turn with other reloads.
    pub async fn reload_all(&self) -> Result<(), StoreError> {
        let _turn = self.inner.reloads.lock().await;
        self.reload()
    }

    /// Load every trigger from the store and build the index (at start, before any
    /// other reload can run; later through [`Router::reload_all`]).
    fn reload(&self) -> Result<(), StoreError> {
        let mut all = std::collections::HashMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let (page, next) = self.inner.store.triggers_page(cursor.as_deref(), 1000)?;
            for record in &page {
                if let Some(c) = compile(record) {
                    all.insert(record.id.clone(), Arc::new(c));
                }
            }
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let mut triggers = self.inner.triggers.lock().unwrap_or_else(|e| e.into_inner());
        *triggers = all;
        self.publish(&triggers);
        Ok(())
    }

    /// Store a new trigger and add it to the index.
    pub async fn create_trigger(
        &self,
        record: TriggerRecord,
        who: &str,
    ) -> Result<TriggerRecord, StoreError> {
        let (this, who) = (self.clone(), who.to_string());
        crate::detach::detached(async move {
            let record = this.inner.store.insert_trigger(record, &who).await?;
            this.reload_trigger(&record.id).await?;
            Ok(record)
        })
        .await
    }

    /// Change a trigger's spec (`key`: id or name) and its place in the index:
    /// (before, after).
    pub async fn update_trigger(
        &self,
        key: &str,
        spec: TriggerSpec,
        who: &str,
    ) -> Result<(TriggerRecord, TriggerRecord), StoreError> {
        let (this, key, who) = (self.clone(), key.to_string(), who.to_string());
        crate::detach::detached(async move {
            let (before, after) = this.inner.store.update_trigger(&key, spec, now(), &who).await?;
            this.reload_trigger(&after.id).await?;
            Ok((before, after))
        })
        .await
    }

    /// Delete a trigger and drop it from the index.
    pub async fn delete_trigger(&self, key: &str, who: &str) -> Result<TriggerRecord, StoreError> {
        let (this, key, who) = (self.clone(), key.to_string(), who.to_string());
        crate::detach::detached(async move {
            let record = this.inner.store.delete_trigger(&key, &who).await?;
            this.reload_trigger(&record.id).await?;
            Ok(record)
        })
        .await
    }

    /// Re-read one trigger after it was created, changed or deleted, and rebuild the
    /// index from the compiled triggers in memory (no other trigger is re-read).
    async fn reload_trigger(&self, id: &str) -> Result<(), StoreError> {
        let _turn = self.inner.reloads.lock().await;
        let record = self.inner.store.trigger(id)?;
        let mut triggers = self.inner.triggers.lock().unwrap_or_else(|e| e.into_inner());
        match record.as_ref().and_then(compile) {
            Some(c) => triggers.insert(id.to_string(), Arc::new(c)),
            None => triggers.remove(id),
        };
        self.publish(&triggers);
        Ok(())
    }

    fn publish(&self, triggers: &std::collections::HashMap<String, Arc<sundial_core::trigger::Compiled>>) {
        let index = Arc::new(TriggerIndex::from_shared(triggers.values().cloned()));
        *self.inner.index.write().unwrap_or_else(|e| e.into_inner()) = index;
    }

    /// The excluded window of `trigger`'s calendars holding `at`, if any.
    fn excluded(
        &self,
        trigger: &sundial_core::trigger::Compiled,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Option<sundial_core::calendar::Window> {
        if trigger.calendars.is_empty() {
            return None;
        }
        self.inner
            .exclusions
            .calendar_window(at, self.inner.zone, &trigger.calendars)
    }

    /// The current trigger index.
    pub fn index(&self) -> Arc<TriggerIndex> {
        self.inner.index.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The clock delays are measured on.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Events stored but not routed since start: (their causal chain had spent its
    /// budget, the run queue was full).
    pub fn stopped(&self) -> (u64, u64) {
        (
            self.inner.stopped_by_budget.load(Relaxed),
            self.inner.stopped_by_queue.load(Relaxed),
        )
    }

    /// Match `event` and build what it starts (nothing is stored yet), unless its
    /// depth, its chain's budget or the run queue holds it back.
    pub fn plan(&self, event: CloudEvent, origin: Origin) -> Result<Planned, StoreError> {
        self.plan_with(event, origin, &mut Targets::default())
    }

    /// [`Router::plan`] for events that commit together (a batch posted at once): each
    /// task and webhook they start is read from the store once for all of them.
    pub fn plan_all(&self, events: Vec<CloudEvent>, origin: Origin) -> Result<Vec<Planned>, StoreError> {
        let mut targets = Targets::default();
        events
            .into_iter()
            .map(|e| self.plan_with(e, origin.clone(), &mut targets))
            .collect()
    }

    fn plan_with(
        &self,
        event: CloudEvent,
        origin: Origin,
        targets: &mut Targets,
    ) -> Result<Planned, StoreError> {
        let Origin {
            depth,
            caused_by,
            root,
            queued_with,
        } = origin;
        let mut record = EventRecord {
            seq: sundial_core::ids::new_id(),
            event,
            // The router's clock (the test clock under `--test-clock`), so delays and
            // the event's own time agree.
            received_at: sundial_core::timestamp::text(self.inner.clock.now()),
            depth,
            caused_by,
            triggers: Vec::new(),
            stopped: None,
            root,
        };
        let chain = record.root.clone().unwrap_or_else(|| record.seq.clone());
        let (mut runs, mut timers, mut deliveries) = (Vec::new(), Vec::new(), Vec::new());
        if depth > self.inner.limits.max_depth {
            let why = format!(
                "causal depth {depth} is over the limit {} (max_event_depth): a trigger loop? not routed",
                self.inner.limits.max_depth
            );
            tracing::warn!(event = %record.seq, kind = %record.event.kind, "{why}");
            record.stopped = Some(why);
            return Ok(Planned {
                record,
                runs,
                timers,
                deliveries,
            });
        }
        let matched = self.index().matches(&record.event);
        if matched.is_empty() {
            return Ok(Planned {
                record,
                runs,
                timers,
                deliveries,
            });
        }
        let payload = record.for_plugin();
        for trigger in matched {
            let mut m = Matched {
                trigger: trigger.id.clone(),
                name: trigger.name.clone(),
                runs: Vec::new(),
                timers: Vec::new(),
                deliveries: Vec::new(),
                skipped: Vec::new(),
            };
            // A calendar's excluded window: start nothing, or start it all when it ends.
            let now_at = self.inner.clock.now();
            let mut deferred_to = None;
            if let Some(w) = self.excluded(&trigger, now_at) {
                match trigger.excluded {
                    sundial_core::schedule::spec::Excluded::Skip => {
                        m.skipped.push(format!("excluded by {}", w.reason));
                        record.triggers.push(m);
                        continue;
                    }
                    sundial_core::schedule::spec::Excluded::Defer => {
                        m.skipped.push(format!(
                            "deferred to {}: {}",
                            sundial_core::timestamp::text(w.end),
                            w.reason
                        ));
                        deferred_to = Some(w.end);
                    }
                }
            }
            let delay_ms = match deferred_to {
                Some(end) => (end - now_at)
                    .num_milliseconds()
                    .max(trigger.delay_ms as i64)
                    .max(1) as u64,
                None => trigger.delay_ms,
            };
            // A timer of this trigger and event, due after the delay; its target is set
            // by the caller.
            let delayed = || Timer {
                id: sundial_core::ids::new_id(),
                due: now_at + chrono::Duration::milliseconds(delay_ms as i64),
                created_at: record.received_at.clone(),
                trigger: trigger.id.clone(),
                trigger_name: trigger.name.clone(),
                event: record.seq.clone(),
                task_id: String::new(),
                task_name: String::new(),
                params: serde_json::Value::Null,
                webhook: None,
                payload: payload.clone(),
                depth,
                root: Some(chain.clone()),
            };
            for hook_id in &trigger.webhooks {
                let Some(hook) = targets.webhook(&self.inner.store, hook_id)? else {
                    m.skipped.push(format!("webhook {hook_id} no longer exists"));
                    continue;
                };
                if !hook.spec.enabled {
                    m.skipped.push(format!("webhook {} is disabled", hook.spec.name));
                    continue;
                }
                if delay_ms > 0 {
                    // A delayed target is a timer on the scheduler's clock, as a task's.
                    let timer = Timer {
                        webhook: Some(TimerWebhook {
                            id: hook.id.clone(),
                            name: hook.spec.name.clone(),
                        }),
                        ..delayed()
                    };
                    m.timers.push(timer.id.clone());
                    timers.push(timer);
                    continue;
                }
                let mut d = sundial_store::webhooks::Delivery::queued(&hook, "trigger", depth);
                d.event = Some(payload.clone());
                d.event_seq = Some(record.seq.clone());
                d.trigger = Some(trigger.id.clone());
                d.root = Some(chain.clone());
                m.deliveries.push(d.id.clone());
                deliveries.push(d);
            }
            for task_id in &trigger.tasks {
                let Some(task) = targets.task(&self.inner.store, task_id)? else {
                    m.skipped.push(format!("task {task_id} no longer exists"));
                    continue;
                };
                if !task.spec.enabled {
                    m.skipped.push(format!("task {} is disabled", task.spec.name));
                    continue;
                }
                let params = match &trigger.context {
                    Some(c) => merge_params(&task.spec.params, c),
                    None => task.spec.params.clone(),
                };
                if delay_ms > 0 {
                    let timer = Timer {
                        task_id: task.id.clone(),
                        task_name: task.spec.name.clone(),
                        params,
                        ..delayed()
                    };
                    m.timers.push(timer.id.clone());
                    timers.push(timer);
                } else {
                    let run = Run::queued(
                        &task.id,
                        &task.spec.name,
                        RunCause::Event {
                            event: record.seq.clone(),
                            trigger: Some(trigger.id.clone()),
                            timer: None,
                        },
                        params,
                        Some(payload.clone()),
                        depth,
                        now(),
                    )
                    .in_chain(&chain);
                    m.runs.push(run.id.clone());
                    runs.push(run);
                }
            }
            record.triggers.push(m);
        }
        // From inside, runs wait for room in the queue: with it full, the event starts
        // no runs (its timers and deliveries go ahead).
        if depth > 0
            && !runs.is_empty()
            && let Some(full) = self.inner.queue.full(queued_with + runs.len())
        {
            self.inner.stopped_by_queue.fetch_add(1, Relaxed);
            let why = format!("{full}: runs not started");
            tracing::warn!(event = %record.seq, kind = %record.event.kind, "{why}");
            for m in record.triggers.iter_mut().filter(|m| !m.runs.is_empty()) {
                m.runs.clear();
                m.skipped.push(why.clone());
            }
            runs.clear();
            if timers.is_empty() && deliveries.is_empty() {
                record.stopped = Some(why);
            }
        }
        if let Some(why) = self.charge(&chain, &runs, &timers, &deliveries) {
            tracing::warn!(event = %record.seq, kind = %record.event.kind, chain = %chain, "{why}");
            for m in &mut record.triggers {
                m.runs.clear();
                m.timers.clear();
                m.deliveries.clear();
                m.skipped.push(why.clone());
            }
            record.stopped = Some(why);
            (runs, timers, deliveries) = (Vec::new(), Vec::new(), Vec::new());
        }
        Ok(Planned {
            record,
            runs,
            timers,
            deliveries,
        })
    }

    /// Charge `chain` for what an event starts; why not, when its budget is spent
    /// (then nothing is charged).
    fn charge(
        &self,
        chain: &str,
        runs: &[Run],
        timers: &[Timer],
        deliveries: &[sundial_store::webhooks::Delivery],
    ) -> Option<String> {
        let cost = (runs.len() + timers.len() + deliveries.len()) as u64;
        if cost == 0 {
            return None;
        }
        let max = self.inner.limits.max_chain;
        // In a cluster the chain's runs go on on every node: its budget is counted in
        // the store (the node's own count is the fallback while the store fails).
        let shared = self
            .inner
            .store
            .leases()
            .map(|leases| leases.spend_chain(chain, cost, max));
        let spent = match shared {
            Some(Ok(spent)) => spent,
            other => {
                if let Some(Err(e)) = other {
                    tracing::warn!(
                        chain,
                        "counting the chain's budget in the store failed, counting here: {e}"
                    );
                }
                self.inner
                    .budget
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .spend(chain, cost)
            }
        };
        let spent = spent.err()?;
        self.inner.stopped_by_budget.fetch_add(1, Relaxed);
        Some(format!(
            "causal chain {chain} has started {spent} runs, timers and deliveries; {cost} more would pass its budget of {} (max_chain): not routed",
            self.inner.limits.max_chain
        ))
    }
}

/// Compile an enabled trigger record for the index (`None` when disabled or invalid).
fn compile(record: &sundial_store::triggers::TriggerRecord) -> Option<sundial_core::trigger::Compiled> {
    if !record.spec.enabled {
        return None;
    }
    match record.spec.compile(&record.id) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(trigger = %record.id, "trigger no longer valid: {e}");
            None
        }
    }
}

/// The tasks and webhooks the events of one plan started, each read once.
#[derive(Default)]
struct Targets {
    tasks: HashMap<String, Option<TaskRecord>>,
    webhooks: HashMap<String, Option<WebhookRecord>>,
}

impl Targets {
    fn task(&mut self, store: &SharedStore, id: &str) -> Result<Option<&TaskRecord>, StoreError> {
        if !self.tasks.contains_key(id) {
            self.tasks.insert(id.to_string(), store.task(id)?);
        }
        Ok(self.tasks.get(id).and_then(Option::as_ref))
    }

    fn webhook(&mut self, store: &SharedStore, id: &str) -> Result<Option<&WebhookRecord>, StoreError> {
        if !self.webhooks.contains_key(id) {
            self.webhooks.insert(id.to_string(), store.webhook(id)?);
        }
        Ok(self.webhooks.get(id).and_then(Option::as_ref))
    }
}

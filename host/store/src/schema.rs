//! Every table of the redb store, its key and its value, in one place (the commits that
//! write them are in `docs/storage.md`). Keys are strings: ULIDs sort by creation time,
//! composite keys join parts with `/` (ULIDs and names never contain it), due-time keys
//! start with the time in milliseconds as 16 hex digits.

use crate::audit::AuditEntry;
use crate::schedules::ScheduleRecord;
use crate::secrets::SecretRecord;
use crate::tables::Json;
use crate::tasks::TaskRecord;
use crate::timers::Timer;
use crate::tokens::TokenRecord;
use crate::triggers::TriggerRecord;
use crate::webhooks::{Delivery, WebhookRecord};
use redb::TableDefinition;
use sundial_core::calendar::{CalendarSpec, Maintenance};
use sundial_core::event::EventRecord;
use sundial_core::plugin::PluginRecord;
use sundial_core::run::Run;

// The store

/// Store metadata: `schema_version`, creation time.
pub const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

// Plugins, tasks, runs, key-value

/// Installed plugins: name → `PluginRecord` JSON.
pub const PLUGINS: TableDefinition<&str, Json<PluginRecord>> = TableDefinition::new("plugins");

/// Component bytes by sha256 digest (shared by plugins with equal bytes).
pub const PLUGIN_BLOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("plugin_blobs");

/// Tasks: id → `TaskRecord` JSON.
pub const TASKS: TableDefinition<&str, Json<TaskRecord>> = TableDefinition::new("tasks");

/// Task names: name → id.
pub const TASK_NAMES: TableDefinition<&str, &str> = TableDefinition::new("task_names");

/// Runs: id → `Run` JSON.
pub const RUNS: TableDefinition<&str, Json<Run>> = TableDefinition::new("runs");

/// Runs of a task in time order: `task_id/run_id` → ().
pub const RUNS_BY_TASK: TableDefinition<&str, ()> = TableDefinition::new("runs_by_task");

/// Queued runs in FIFO order: run id → ().
pub const RUN_QUEUE: TableDefinition<&str, ()> = TableDefinition::new("run_queue");

/// Runs a worker is executing: run id → (). Whatever is here at start was interrupted.
pub const ACTIVE_RUNS: TableDefinition<&str, ()> = TableDefinition::new("active_runs");

/// Plugins' key-value namespaces: `plugin/key` → bytes.
pub const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");

// Schedules

/// Schedules: id → `ScheduleRecord` JSON.
pub const SCHEDULES: TableDefinition<&str, Json<ScheduleRecord>> = TableDefinition::new("schedules");

/// Schedule names: name → id.
pub const SCHEDULE_NAMES: TableDefinition<&str, &str> = TableDefinition::new("schedule_names");

/// The due-time index: schedule id → `DueEntry` (41 bytes, see `schedule_due`), written
/// in the commit of every change to a schedule record.
pub const SCHEDULE_DUE: TableDefinition<&str, &[u8]> = TableDefinition::new("schedule_due");

/// Links: `schedule_id/task_id` → ().
pub const SCHEDULE_TASKS: TableDefinition<&str, ()> = TableDefinition::new("schedule_tasks");

/// Links the other way: `task_id/schedule_id` → ().
pub const TASK_SCHEDULES: TableDefinition<&str, ()> = TableDefinition::new("task_schedules");

/// Fired slots: `schedule_id/slot RFC 3339` → (). A slot present here never fires again;
/// keys older than the previous last slot are pruned as new slots fire (the scheduler
/// only proposes slots after the last one recorded).
pub const SLOTS: TableDefinition<&str, ()> = TableDefinition::new("slots");

// Triggers

/// Triggers: id → `TriggerRecord` JSON.
pub const TRIGGERS: TableDefinition<&str, Json<TriggerRecord>> = TableDefinition::new("triggers");

/// Trigger names: name → id.
pub const TRIGGER_NAMES: TableDefinition<&str, &str> = TableDefinition::new("trigger_names");

// Events

/// Events: seq (ULID) → `EventRecord` JSON.
pub const EVENTS: TableDefinition<&str, Json<EventRecord>> = TableDefinition::new("events");

/// Deduplication: `len(source):source` + id → seq.
pub const EVENT_KEYS: TableDefinition<&str, &str> = TableDefinition::new("event_keys");

// Timers

/// Timers: id → `Timer` JSON.
pub const TIMERS: TableDefinition<&str, Json<Timer>> = TableDefinition::new("timers");

/// Timers by due time: `{due ms, 16 hex digits}/{id}` → ().
pub const TIMERS_DUE: TableDefinition<&str, ()> = TableDefinition::new("timers_due");

// Webhooks and deliveries

/// Webhooks: id → `WebhookRecord` JSON.
pub const WEBHOOKS: TableDefinition<&str, Json<WebhookRecord>> = TableDefinition::new("webhooks");

/// Webhook names: name → id.
pub const WEBHOOK_NAMES: TableDefinition<&str, &str> = TableDefinition::new("webhook_names");

/// Deliveries: id → `Delivery` JSON.
pub const DELIVERIES: TableDefinition<&str, Json<Delivery>> = TableDefinition::new("deliveries");

/// Pending deliveries by due time: `{due ms, 16 hex}/{id}` → ().
pub const DELIVERY_QUEUE: TableDefinition<&str, ()> = TableDefinition::new("delivery_queue");

// Secrets

/// Secrets: name → `SecretRecord` JSON.
pub const SECRETS: TableDefinition<&str, Json<SecretRecord>> = TableDefinition::new("secrets");

// Tokens

/// Tokens: sha256(secret) hex → `TokenRecord` JSON.
pub const TOKENS: TableDefinition<&str, Json<TokenRecord>> = TableDefinition::new("tokens");

// Calendars and maintenance windows

/// Calendars: name → spec JSON.
pub const CALENDARS: TableDefinition<&str, Json<CalendarSpec>> = TableDefinition::new("calendars");

/// Maintenance windows: id → JSON.
pub const MAINTENANCE: TableDefinition<&str, Json<Maintenance>> = TableDefinition::new("maintenance");

// Audit

/// Audit entries: id (ULID, time-ordered) → `AuditEntry` JSON.
pub const AUDIT: TableDefinition<&str, Json<AuditEntry>> = TableDefinition::new("audit");

// Plugin key-value

/// Each plugin's key-value usage: plugin → (keys, bytes of keys and values). Kept in the
/// commit of every change; computed once from the data for a plugin that has none.
pub const KV_USAGE: TableDefinition<&str, (u64, u64)> = TableDefinition::new("kv_usage");

//! The PostgreSQL schema: every table and index, as numbered migrations applied in
//! order by the first node that starts (under an advisory lock, so nodes starting
//! together apply each step once). `docs/storage.md` describes each table.
//!
//! Records are JSON documents in `doc text` columns, as in the redb store, so fields can
//! be added without a migration; the columns beside a document are the ones queries
//! filter, order or claim by, and are written from the document in the same statement.
//! `doc::json` reads a document in `psql`. Every text column sorts by bytes (`COLLATE
//! "C"`), as redb's keys do, whatever the database's default collation.

use super::{PgStore, db_error};
use crate::StoreError;

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = 2;

/// Advisory lock key held while migrating ("sundial" in ASCII).
pub const MIGRATION_LOCK: i64 = 0x73756e6469616c;

/// `MIGRATIONS[n - 1]` brings an empty database (n = 1) or a version `n - 1` one to
/// version `n`, inside one transaction.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (key text COLLATE "C" PRIMARY KEY, value text COLLATE "C" NOT NULL);

CREATE TABLE plugins (name text COLLATE "C" PRIMARY KEY, digest text COLLATE "C" NOT NULL, doc text COLLATE "C" NOT NULL);
CREATE INDEX plugins_by_digest ON plugins (digest);
CREATE TABLE plugin_blobs (digest text COLLATE "C" PRIMARY KEY, bytes bytea NOT NULL);

CREATE TABLE tasks (id text COLLATE "C" PRIMARY KEY, name text COLLATE "C" NOT NULL UNIQUE, doc text COLLATE "C" NOT NULL);

CREATE TABLE runs (
    id text COLLATE "C" PRIMARY KEY,
    task_id text COLLATE "C" NOT NULL,
    status text COLLATE "C" NOT NULL,
    cause text COLLATE "C" NOT NULL,
    queued_at text COLLATE "C" NOT NULL,
    doc text COLLATE "C" NOT NULL,
    due timestamptz,
    owner text COLLATE "C",
    attempt integer,
    lease_until timestamptz,
    cancel boolean NOT NULL DEFAULT false
);
CREATE INDEX runs_by_task ON runs (task_id, id);
CREATE INDEX runs_queue ON runs (id) WHERE status = 'queued';
CREATE INDEX runs_active ON runs (lease_until) WHERE status = 'running';
CREATE INDEX runs_by_owner ON runs (owner) WHERE status = 'running';
CREATE INDEX runs_running_by_task ON runs (task_id) WHERE status = 'running';

CREATE TABLE kv (plugin text COLLATE "C" NOT NULL, key text COLLATE "C" NOT NULL, value bytea NOT NULL, PRIMARY KEY (plugin, key));
CREATE TABLE kv_usage (plugin text COLLATE "C" PRIMARY KEY, keys bigint NOT NULL, bytes bigint NOT NULL);

CREATE TABLE schedules (id text COLLATE "C" PRIMARY KEY, name text COLLATE "C" NOT NULL UNIQUE, doc text COLLATE "C" NOT NULL,
    slots_pruned_before text COLLATE "C");
CREATE TABLE schedule_tasks (schedule_id text COLLATE "C" NOT NULL, task_id text COLLATE "C" NOT NULL, PRIMARY KEY (schedule_id, task_id));
CREATE INDEX task_schedules ON schedule_tasks (task_id, schedule_id);
CREATE TABLE slots (schedule_id text COLLATE "C" NOT NULL, slot text COLLATE "C" NOT NULL,
    fired_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (schedule_id, slot));

CREATE TABLE triggers (id text COLLATE "C" PRIMARY KEY, name text COLLATE "C" NOT NULL UNIQUE, doc text COLLATE "C" NOT NULL);

CREATE TABLE events (seq text COLLATE "C" PRIMARY KEY, doc text COLLATE "C" NOT NULL);
CREATE TABLE chains (chain text COLLATE "C" PRIMARY KEY, spent bigint NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE INDEX chains_by_time ON chains (at);
CREATE TABLE event_keys (key text COLLATE "C" PRIMARY KEY, seq text COLLATE "C" NOT NULL);
CREATE INDEX event_keys_by_seq ON event_keys (seq);

-- A timer whose doc does not decode has no due time: kept for an admin to see and
-- delete (GET /v1/admin/unreadable), never fired.
CREATE TABLE timers (
    id text COLLATE "C" PRIMARY KEY,
    due timestamptz,
    trigger_id text COLLATE "C" NOT NULL,
    task_id text COLLATE "C" NOT NULL,
    doc text COLLATE "C" NOT NULL
);
CREATE INDEX timers_due ON timers (due, id);

CREATE TABLE webhooks (id text COLLATE "C" PRIMARY KEY, name text COLLATE "C" NOT NULL UNIQUE, doc text COLLATE "C" NOT NULL);
CREATE TABLE deliveries (
    id text COLLATE "C" PRIMARY KEY,
    webhook_id text COLLATE "C" NOT NULL,
    status text COLLATE "C" NOT NULL,
    due timestamptz,
    doc text COLLATE "C" NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (due, id) WHERE due IS NOT NULL;
CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, id);

CREATE TABLE secrets (name text COLLATE "C" PRIMARY KEY, doc text COLLATE "C" NOT NULL);
CREATE TABLE tokens (hash text COLLATE "C" PRIMARY KEY, name text COLLATE "C" NOT NULL UNIQUE, doc text COLLATE "C" NOT NULL);
CREATE TABLE calendars (name text COLLATE "C" PRIMARY KEY, doc text COLLATE "C" NOT NULL);
CREATE TABLE maintenance (id text COLLATE "C" PRIMARY KEY, doc text COLLATE "C" NOT NULL);
CREATE TABLE audit (id text COLLATE "C" PRIMARY KEY, doc text COLLATE "C" NOT NULL);
"#,
    // 2: the node whose attempt of a delivery is under way (`claim_delivery`); only it
    // may record that attempt (`save_delivery`). The running runs by owner lose their
    // index: every run's start paid for it, and what reads by owner also names the ids
    // (a renewal) or reads all running runs once (a node's start).
    r#"
ALTER TABLE deliveries ADD COLUMN claimed_by text COLLATE "C";
DROP INDEX runs_by_owner;
"#,
];

/// Bring the database to [`SCHEMA_VERSION`], one committed step at a time, holding
/// [`MIGRATION_LOCK`] so that of several nodes starting together one migrates and the
/// others wait, then find the work done. A database of a newer version is refused.
pub(super) async fn migrate(store: &PgStore) -> Result<i64, StoreError> {
    let mut client = store.client().await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db_error)?;
    let result = async {
        loop {
            let t = client.transaction().await.map_err(db_error)?;
            let exists: bool = t
                .query_one("SELECT to_regclass('meta') IS NOT NULL", &[])
                .await
                .map_err(db_error)?
                .get(0);
            let current: i64 = if exists {
                match t
                    .query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[])
                    .await
                    .map_err(db_error)?
                {
                    Some(row) => {
                        let v: String = row.get(0);
                        v.parse()
                            .map_err(|_| StoreError::Storage(format!("bad schema_version {v:?}")))?
                    }
                    None => 0,
                }
            } else {
                0
            };
            if current > SCHEMA_VERSION {
                return Err(StoreError::TooNew {
                    found: current as u64,
                    supported: SCHEMA_VERSION as u64,
                });
            }
            if current == SCHEMA_VERSION {
                t.rollback().await.map_err(db_error)?;
                return Ok(current);
            }
            t.batch_execute(MIGRATIONS[current as usize])
                .await
                .map_err(db_error)?;
            let next = (current + 1).to_string();
            t.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&next],
            )
            .await
            .map_err(db_error)?;
            if current == 0 {
                t.execute(
                    "INSERT INTO meta (key, value) VALUES ('created_at', $1)",
                    &[&sundial_core::timestamp::now()],
                )
                .await
                .map_err(db_error)?;
            }
            t.commit().await.map_err(db_error)?;
            tracing::info!(version = current + 1, "PostgreSQL schema migrated");
        }
    }
    .await;
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    let version = result?;
    unlock.map_err(db_error)?;
    Ok(version)
}

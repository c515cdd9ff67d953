//! The PostgreSQL store: the same [`crate::Storage`] traits as the redb
//! [`crate::Store`], on tables that many nodes share (cluster mode, `docs/cluster.md`).
//! All of Sundial's SQL lives in this module; `docs/storage.md` describes the tables,
//! the indexes and each transaction.
//!
//! **Connections.** A pool ([`deadpool_postgres`]) of at most [`PgOptions::pool_size`]
//! connections; each statement is prepared once per connection. A connection that
//! breaks is dropped and a new one made on the next use, so the store recovers by
//! itself when PostgreSQL comes back. While no connection can be had within
//! [`PgOptions::timeout`], every operation answers [`StoreError::Unavailable`] (the
//! API's 503).
//!
//! **Reads the traits declare synchronous** (`fn run(&self, ..)`, as redb reads are)
//! block the calling thread on the query with `tokio::task::block_in_place`, which
//! hands that worker's other tasks to another thread meanwhile: the PostgreSQL store
//! needs a multi-threaded tokio runtime, which the daemon has.

mod audit;
mod batch;
mod calendars;
mod events;
mod kv;
pub mod listen;
mod meta;
mod named;
mod plugins;
mod records;
pub(crate) mod rows;
mod runs;
mod schedules;
pub mod schema;
mod secrets;
mod tasks;
mod timers;
mod tokens;
mod triggers;
mod unreadable;
mod webhooks;

use crate::StoreError;
use crate::writer::WriterStats;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// Default largest number of connections a node keeps: 16.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// Default lease on a run a node executes: 10 s. The node renews its leases every third
/// of it; a run whose lease has expired is taken over by another node.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// Default time to wait for a connection (to make one, or for one to come free): 5 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// A libpq URL: `postgres://USER[:PASSWORD]@HOST:PORT/DATABASE`.
    pub url: String,
    /// Largest number of connections ([`DEFAULT_POOL_SIZE`]).
    pub pool_size: usize,
    /// Time to wait for a connection ([`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
    /// This node's name: the owner of the runs it executes. Stable across restarts of
    /// one node (the daemon keeps it in its data directory), unique in the cluster.
    pub node: String,
    /// The lease on a run this node executes ([`DEFAULT_LEASE`]).
    pub lease: Duration,
}

impl PgOptions {
    /// Options for `url` with the defaults.
    pub fn new(url: &str) -> PgOptions {
        PgOptions {
            url: url.to_string(),
            pool_size: DEFAULT_POOL_SIZE,
            timeout: DEFAULT_TIMEOUT,
            node: format!("node-{}", sundial_core::ids::new_id().to_lowercase()),
            lease: DEFAULT_LEASE,
        }
    }
}

/// The PostgreSQL store. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// The URL without its password, for messages.
    shown: String,
    /// This node's name, the owner of the runs it executes.
    node: String,
    /// The lease on a run this node executes.
    lease: Duration,
    /// Change notices from the other nodes ([`listen`]).
    notices: listen::Notices,
    /// Copies of tasks, plugins and tokens ([`crate::cache`]).
    cache: Arc<crate::cache::ReadCache>,
    /// Group commit of the run transitions ([`batch`]).
    batcher: batch::Batcher,
    stats: Arc<WriterStats>,
}

/// `url` with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some((auth, host)) => (auth, host),
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

impl PgStore {
    /// Connect to the database `options.url` names, bring its schema to
    /// [`schema::SCHEMA_VERSION`] (refusing a newer one) and return the store.
    pub async fn connect(options: &PgOptions) -> Result<PgStore, StoreError> {
        let shown = redact_url(&options.url);
        let mut config: tokio_postgres::Config = options
            .url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("store URL {shown:?}: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.timeout);
        }
        config.keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("sundial");
        }
        let cache = Arc::new(crate::cache::ReadCache::new());
        let notices = listen::start(config.clone(), cache.clone());
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .wait_timeout(Some(options.timeout))
            .create_timeout(Some(options.timeout))
            .recycle_timeout(Some(options.timeout))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Invalid(format!("store URL {shown:?}: {e}")))?;
        let store = PgStore {
            inner: Arc::new_cyclic(|inner| Inner {
                pool,
                shown,
                node: options.node.clone(),
                lease: options.lease,
                notices,
                cache,
                batcher: batch::Batcher::start(inner.clone()),
                stats: Arc::new(WriterStats::default()),
            }),
        };
        schema::migrate(&store).await?;
        Ok(store)
    }

    /// This node's name (the owner of the runs it executes).
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// The lease on a run this node executes.
    pub fn lease(&self) -> Duration {
        self.inner.lease
    }

    /// The database's URL without its password.
    pub fn url(&self) -> &str {
        &self.inner.shown
    }

    /// A connection from the pool.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.inner.pool.get().await.map_err(|e| {
            StoreError::Unavailable(format!(
                "PostgreSQL at {} cannot be reached: {}",
                self.inner.shown,
                match &e {
                    deadpool_postgres::PoolError::Backend(b) => b.to_string(),
                    other => other.to_string(),
                }
            ))
        })
    }

    /// Commit `t` (opened on a connection of [`PgStore::client`] with
    /// `client.transaction()`), counted in the store's stats.
    pub(crate) async fn commit(&self, t: deadpool_postgres::Transaction<'_>) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        t.commit().await.map_err(db_error)?;
        self.counted(started.elapsed(), 1);
        Ok(())
    }

    /// Count a commit of `mutations` that took `took` in the store's stats.
    pub(crate) fn counted(&self, took: Duration, mutations: usize) {
        let stats = &self.inner.stats;
        use std::sync::atomic::Ordering::Relaxed;
        stats.commits.fetch_add(1, Relaxed);
        stats.mutations.fetch_add(mutations as u64, Relaxed);
        stats.commit_micros.fetch_add(took.as_micros() as u64, Relaxed);
        stats.commit_seconds.observe(took.as_secs_f64());
        stats.batch_size.observe(mutations as f64);
        stats.max_batch.fetch_max(mutations as u64, Relaxed);
    }

    /// Apply a run transition in the next group commit ([`batch`]).
    pub(crate) async fn batched(&self, op: batch::Op) -> Result<batch::Reply, StoreError> {
        self.inner.batcher.apply(op).await
    }

    /// Wait for `read` on the calling thread (see the module's doc).
    pub(crate) fn block<T>(
        &self,
        read: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            StoreError::Storage("the PostgreSQL store is read outside a tokio runtime".into())
        })?;
        match handle.runtime_flavor() {
            tokio::runtime::RuntimeFlavor::CurrentThread => Err(StoreError::Storage(
                "the PostgreSQL store needs a multi-threaded tokio runtime".into(),
            )),
            _ => tokio::task::block_in_place(|| handle.block_on(read)),
        }
    }

    /// Change notices (topics) from every node, this one included.
    pub fn notices(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.inner.notices.subscribe()
    }

    /// The node's copies of tasks, plugins and tokens.
    pub(crate) fn cache(&self) -> &crate::cache::ReadCache {
        &self.inner.cache
    }

    /// The commit counters.
    pub(crate) fn stats(&self) -> &Arc<WriterStats> {
        &self.inner.stats
    }
}

/// SQLSTATE classes that mean the server is unreachable or going away, or that the
/// transaction lost a race and may simply be tried again, not that the statement is
/// wrong: connection exceptions (08), operator intervention (57, e.g. a shutdown),
/// insufficient resources (53), transaction rollback (40: a deadlock, a serialization
/// failure). Nothing was written; the API answers 503.
fn unavailable_state(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57") || code.starts_with("53") || code.starts_with("40")
}

/// A client error as a [`StoreError`]: a lost or refused connection is
/// [`StoreError::Unavailable`] (the API's 503), a unique violation a
/// [`StoreError::Conflict`], anything else [`StoreError::Storage`].
pub(crate) fn db_error(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) if unavailable_state(db.code().code()) => {
            StoreError::Unavailable(format!("PostgreSQL is unavailable: {}", db.message()))
        }
        Some(db) if *db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION => {
            StoreError::Conflict(db.message().to_string())
        }
        Some(db) => StoreError::Storage(format!("PostgreSQL: {}", db.message())),
        None => StoreError::Unavailable(format!("PostgreSQL is unavailable: {e}")),
    }
}

/// Rows of the statement `sql` (prepared once per connection).
pub(crate) async fn rows(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let statement = c.prepare_cached(sql).await.map_err(db_error)?;
    c.query(&statement, params).await.map_err(db_error)
}

/// The one row of `sql`, if any.
pub(crate) async fn row(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, StoreError> {
    let statement = c.prepare_cached(sql).await.map_err(db_error)?;
    c.query_opt(&statement, params).await.map_err(db_error)
}

/// Run `sql`; the number of rows it changed.
pub(crate) async fn exec(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    let statement = c.prepare_cached(sql).await.map_err(db_error)?;
    c.execute(&statement, params).await.map_err(db_error)
}

/// `SELECT id, doc FROM {table}` where every `(condition, value)` holds (each condition
/// ends in its operator: `"task_id ="`), ordered by `order`, at most `limit` rows.
/// Tables, columns and operators come from this crate only; values are parameters.
pub(crate) async fn select_docs(
    c: &impl GenericClient,
    table: &str,
    conditions: &[(&str, &(dyn ToSql + Sync))],
    order: &str,
    limit: i64,
) -> Result<Vec<Row>, StoreError> {
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(conditions.len() + 1);
    let mut clauses = Vec::with_capacity(conditions.len());
    for (condition, value) in conditions {
        params.push(*value);
        clauses.push(format!("{condition} ${}", params.len()));
    }
    params.push(&limit);
    let filter = match clauses.is_empty() {
        true => String::new(),
        false => format!(" WHERE {}", clauses.join(" AND ")),
    };
    let sql = format!(
        "SELECT id, doc FROM {table}{filter} ORDER BY {order} LIMIT ${}",
        params.len()
    );
    rows(c, &sql, &params).await
}

/// A record as its stored JSON text.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Storage(format!("encoding a record: {e}")))
}

/// A record read by key: one that does not decode is [`StoreError::Unreadable`].
pub(crate) fn decode_one<T: DeserializeOwned>(table: &str, key: &str, doc: &str) -> Result<T, StoreError> {
    crate::tables::decode(doc.as_bytes())
        .map_err(|e| StoreError::Unreadable(format!("{table} record {key:?} cannot be read ({e})")))
}

/// A record met in a list: `None` (skipped and logged) when it does not decode.
pub(crate) fn decode_listed<T: DeserializeOwned>(table: &str, key: &str, doc: &str) -> Option<T> {
    crate::tables::decode_listed(table, key, doc.as_bytes())
}

/// A list's limit as SQL's `LIMIT` (one more than the page, to know whether more remain).
pub(crate) fn limit_plus_one(limit: usize) -> i64 {
    (limit.min(1 << 40) as i64).saturating_add(1)
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

//! The store: one redb file in the data directory, a schema version with migrations,
//! and a group-commit [`Writer`] through which every write goes.
//!
//! Reads use redb read transactions (MVCC snapshots, never blocked by the writer);
//! tasks, plugins and tokens are read through this node's copies (`cache`), which
//! every change of those nouns drops once committed (`Store::write_dropping`).
//! Values are JSON documents, so fields can be added without a migration;
//! structural changes bump [`SCHEMA_VERSION`] and add a step to [`MIGRATIONS`].

pub mod audit;
pub mod backup;
pub mod batch;
pub(crate) mod cache;
pub mod calendars;
pub mod events;
pub mod faults;
pub mod handle;
pub mod kv;
pub mod migrate;
pub mod named;
pub mod pg;
pub mod plugins;
pub mod private_file;
pub mod runs;
pub mod schedule_due;
pub mod schedules;
pub mod schema;
pub mod sealing;
pub mod secrets;
pub mod tables;
pub mod tasks;
pub mod timers;
pub mod tokens;
pub mod triggers;
pub mod unreadable;
pub mod webhooks;
pub mod writer;

#[cfg(test)]
mod cache_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod replay_contract;
use crate::schema::*;
use async_trait::async_trait;
pub use batch::Batch;
pub use pg::{PgOptions, PgStore};
#[cfg(test)]
use redb::ReadableTableMetadata;
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};
use std::path::{Path, PathBuf};
use std::sync::Arc;
pub use writer::{Mutation, Writer, WriterStats};

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u64 = 2;

/// A migration step: upgrades a file from version `n` to `n + 1` inside one transaction.
pub type Migration = fn(&WriteTransaction) -> Result<(), StoreError>;

/// `MIGRATIONS[n - 1]` upgrades a version-`n` file. Version 1 is the first; version 2
/// adds the schedules' due-time index ([`schedule_due`]).
pub const MIGRATIONS: &[Migration] = &[|txn| schedule_due::build(txn).map(|_| ())];

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// redb reported an error (I/O, corruption, ...).
    #[error("storage error: {0}")]
    Storage(String),
    /// Could not create the directory or file.
    #[error("{0}")]
    Io(String),
    /// The file was written by a newer Sundial.
    #[error("the data file has schema version {found}, newer than this build's {supported}; upgrade Sundial")]
    TooNew {
        /// Version in the file.
        found: u64,
        /// Newest version this build knows.
        supported: u64,
    },
    /// Something with this name or key already exists.
    #[error("{0}")]
    Conflict(String),
    /// The change is invalid (names the field).
    #[error("{0}")]
    Invalid(String),
    /// The thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The writer has stopped (the store is shutting down).
    #[error("the store is closed")]
    Closed,
    /// The data file cannot be written (disk full, I/O error) or is being reopened after
    /// such an error; nothing was written. Retry later: the store reopens by itself.
    #[error("{0}")]
    Unavailable(String),
    /// A completion from a node that no longer owns the run's attempt (its lease
    /// expired and another node took the run over): nothing was written.
    #[error("{0}")]
    Stale(String),
    /// A stored record does not decode; an admin can list and delete it
    /// (`GET /v1/admin/unreadable`).
    #[error("{0}; an admin can list and delete unreadable records: GET /v1/admin/unreadable")]
    Unreadable(String),
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> StoreError {
        match e {
            redb::Error::Io(e) => StoreError::Unavailable(format!("the data file cannot be written: {e}")),
            redb::Error::PreviousIo | redb::Error::DatabaseClosed => {
                StoreError::Unavailable("the data file had an I/O error and is being reopened".into())
            }
            other => StoreError::Storage(other.to_string()),
        }
    }
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> StoreError {
                StoreError::from(redb::Error::from(e))
            }
        }
    )*};
}
storage_from!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError
);

/// Default size of redb's page cache: 8 MiB. redb's own default is 1 GiB, which a large
/// store fills and keeps resident; under a write load the cache fills with pages just
/// written, which few reads come back to. Reads past the cache come from the kernel's
/// page cache. (16 MiB until issue 21's twelfth session: 8 MiB held about 10 MiB less
/// under the event → run load with no fewer executions, `docs/BENCHMARKS.md`.)
pub const DEFAULT_CACHE_BYTES: usize = 8 << 20;

/// The opened store.
#[derive(Clone)]
pub struct Store {
    db: Arc<handle::DbHandle>,
    writer: Writer,
    /// Copies of tasks, plugins and tokens ([`cache`]); every write of those nouns
    /// drops its shelf once committed.
    cache: Arc<cache::ReadCache>,
}

impl Store {
    /// Close the store: wait for the writer to finish what it holds, then release the
    /// database file, so another process may open it as soon as this returns (merely
    /// dropping a `Store` releases it a moment later, when the writer thread ends).
    /// A clone of this store still alive keeps it open.
    pub fn close(self) {
        let Store { db, writer, .. } = self;
        drop(db);
        writer.close();
    }

    /// Open (or create) `dir/sundial.redb` with the default page cache
    /// ([`DEFAULT_CACHE_BYTES`]); see [`Store::open_with`].
    pub fn open(dir: &Path, max_batch: usize) -> Result<Store, StoreError> {
        Store::open_with(dir, max_batch, DEFAULT_CACHE_BYTES)
    }

    /// Open (or create) `dir/sundial.redb` with a page cache of `cache_bytes`, migrate it
    /// to [`SCHEMA_VERSION`], and start the writer with batches of at most `max_batch`
    /// mutations.
    pub fn open_with(dir: &Path, max_batch: usize, cache_bytes: usize) -> Result<Store, StoreError> {
        Store::open_options(dir, max_batch, cache_bytes, None)
    }

    /// [`Store::open_with`], and when `disk_full_switch` is set, through the testing
    /// backend whose writes fail with ENOSPC while that file exists ([`faults`]).
    pub fn open_options(
        dir: &Path,
        max_batch: usize,
        cache_bytes: usize,
        disk_full_switch: Option<std::path::PathBuf>,
    ) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Io(format!("{}: {e}", dir.display())))?;
        let options = handle::OpenOptions {
            path: dir.join("sundial.redb"),
            cache_bytes,
            disk_full_switch,
        };
        let db = options.open()?;
        migrate(&db)?;
        let db = Arc::new(handle::DbHandle::new(db, options));
        let writer = Writer::start(db.clone(), max_batch)?;
        Ok(Store {
            db,
            writer,
            cache: Arc::new(cache::ReadCache::new()),
        })
    }

    /// A consistent read snapshot.
    pub fn read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.db.get()?.begin_read()?)
    }

    /// [`Store::write`] of a change to tasks, plugins or tokens, whose copies this node
    /// keeps ([`cache`]): `forget` empties the noun's shelf once the change has committed
    /// (or failed), on a task of its own, so a caller that stops waiting cannot leave
    /// the old record on the shelf.
    pub(crate) async fn write_dropping<R: Send + 'static>(
        &self,
        forget: impl FnOnce(&cache::ReadCache) + Send + 'static,
        mutation: impl FnOnce(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let store = self.clone();
        let change = tokio::spawn(async move {
            let written = store.write(mutation).await;
            forget(&store.cache);
            written
        });
        match change.await {
            Ok(written) => written,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(StoreError::Closed),
        }
    }

    /// Apply a mutation durably through the group-commit writer and return what it
    /// produced once it is committed. The mutation must validate before it writes (see
    /// [`Mutation`]).
    pub async fn write<R: Send + 'static>(
        &self,
        mutation: impl FnOnce(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.write_batch(move |batch| mutation(batch.txn())).await
    }

    /// [`Store::write`] of a mutation that works on the tables its batch holds open
    /// ([`Batch::hot`]): the hot paths (events, runs, timers, deliveries).
    pub(crate) async fn write_batch<R: Send + 'static>(
        &self,
        mutation: impl FnOnce(&mut Batch<'_>) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let slot = Arc::new(std::sync::Mutex::new(None));
        let out = slot.clone();
        self.writer
            .write(Box::new(move |batch| {
                let value = mutation(batch)?;
                *out.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
                Ok(())
            }))
            .await?;
        let value = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        value.ok_or(StoreError::Closed)
    }
}

/// What the store is as a whole: metadata, its writer's counters, a consistent copy.
#[async_trait]
pub trait MetaStore: Send + Sync {
    /// Copy the database file to `dest` (created, synced) while the store is quiet:
    /// every write acknowledged before is in the copy, and writes wait until it is done
    /// (about a second per GiB on an SSD). The copy is a consistent redb file. Returns
    /// its size in bytes.
    async fn snapshot(&self, dest: PathBuf) -> Result<u64, StoreError>;

    /// The writer's counters (commits, mutations per commit, commit time).
    fn stats(&self) -> &Arc<WriterStats>;

    /// A metadata value (`schema_version`, `created_at`, `bundled_offered`, ...).
    fn meta(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// Set a metadata value.
    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError>;

    /// The schema version recorded in the file.
    fn schema_version(&self) -> Result<u64, StoreError>;

    /// Topics of changes other nodes of a cluster made and this node must take up
    /// (`triggers`, `schedules`, `calendars`, `timers`, `deliveries`, or `resync` when
    /// some may have been missed); `None` for a store only this node writes (redb).
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
    }

    /// The daemon is stopping: let every write handed in so far finish, then release
    /// the backend (redb: close the file cleanly, so the next start needs no repair).
    /// Operations after it fail with [`StoreError::Closed`]. Default: nothing to do.
    async fn shutdown(&self) {}
}

#[async_trait]
impl MetaStore for Store {
    async fn snapshot(&self, dest: PathBuf) -> Result<u64, StoreError> {
        let src = self.db.path().to_path_buf();
        let size = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let out = size.clone();
        self.writer
            .quiet(Box::new(move |_db| {
                let io = |e: std::io::Error| {
                    StoreError::Io(format!("copying {} to {}: {e}", src.display(), dest.display()))
                };
                let n = std::fs::copy(&src, &dest).map_err(io)?;
                std::fs::File::open(&dest)
                    .and_then(|f| f.sync_all())
                    .map_err(io)?;
                out.store(n, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }))
            .await?;
        Ok(size.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn stats(&self) -> &Arc<WriterStats> {
        self.writer.stats()
    }

    async fn shutdown(&self) {
        // Every write handed in before this is committed first (a quiet turn waits
        // for them); then the file is closed.
        let _ = self.writer.quiet(Box::new(|_db| Ok(()))).await;
        let db = self.db.clone();
        let closed = tokio::task::spawn_blocking(move || db.close(std::time::Duration::from_secs(5)))
            .await
            .unwrap_or(false);
        if !closed {
            tracing::warn!("the data file is still in use: the next start checks it (repair)");
        }
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let txn = self.read()?;
        let Ok(meta) = txn.open_table(META) else {
            return Ok(None);
        };
        Ok(meta.get(key)?.map(|v| v.value().to_string()))
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.write(move |txn| {
            txn.open_table(META)?.insert(key.as_str(), value.as_str())?;
            Ok(())
        })
        .await
    }

    fn schema_version(&self) -> Result<u64, StoreError> {
        let txn = self.read()?;
        let meta = txn.open_table(META)?;
        version_of(&meta)
    }
}

/// Declare [`Storage`] as all the traits it lists, and implement it for every type
/// that implements them all.
macro_rules! storage {
    ($(#[$doc:meta])* pub trait Storage: $($store:path),* $(,)?) => {
        $(#[$doc])*
        pub trait Storage: $($store +)* Send + Sync + 'static {}

        impl<T> Storage for T where T: $($store +)* Send + Sync + 'static {}
    };
}

storage! {
    /// Everything the engines and the server ask of persistence: one trait per noun. The
    /// redb [`Store`] is the first implementation; another backend implements the same
    /// traits and nothing above this crate changes. See `docs/storage.md`.
    pub trait Storage:
        MetaStore,
        tasks::TaskStore,
        runs::RunStore,
        schedules::ScheduleStore,
        triggers::TriggerStore,
        events::EventStore,
        timers::TimerStore,
        webhooks::WebhookStore,
        plugins::PluginStore,
        tokens::TokenStore,
        secrets::SecretStore,
        calendars::CalendarStore,
        audit::AuditStore,
        kv::KvStore,
        unreadable::UnreadableStore,
}

/// The store the engines and the server share: any [`Storage`] backend.
pub type SharedStore = Arc<dyn Storage>;

/// The storage traits, for `use sundial_store::prelude::*`: calling a store's methods
/// needs the trait that declares them in scope.
pub mod prelude {
    pub use super::audit::AuditStore;
    pub use super::calendars::CalendarStore;
    pub use super::events::EventStore;
    pub use super::kv::KvStore;
    pub use super::plugins::PluginStore;
    pub use super::runs::RunStore;
    pub use super::schedules::ScheduleStore;
    pub use super::secrets::SecretStore;
    pub use super::tasks::TaskStore;
    pub use super::timers::TimerStore;
    pub use super::tokens::TokenStore;
    pub use super::triggers::TriggerStore;
    pub use super::unreadable::UnreadableStore;
    pub use super::webhooks::WebhookStore;
    pub use super::{MetaStore, SharedStore, Storage};
}

fn version_of(meta: &impl ReadableTable<&'static str, &'static str>) -> Result<u64, StoreError> {
    match meta.get("schema_version")? {
        Some(v) => v
            .value()
            .parse()
            .map_err(|_| StoreError::Storage(format!("bad schema_version {:?}", v.value()))),
        None => Ok(0),
    }
}

/// Bring the file to [`SCHEMA_VERSION`], one committed step at a time; then make sure
/// this build computed the schedules' due-time entries ([`schedule_due::refresh`]).
fn migrate(db: &Database) -> Result<(), StoreError> {
    migrate_schema(db)?;
    if let Some(count) = schedule_due::refresh(db)?
        && count > 0
    {
        tracing::info!(
            schedules = count,
            "computed the schedules' due-time index for this build"
        );
    }
    Ok(())
}

fn migrate_schema(db: &Database) -> Result<(), StoreError> {
    loop {
        let txn = db.begin_write()?;
        let current = {
            let meta = txn.open_table(META)?;
            version_of(&meta)?
        };
        if current > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                found: current,
                supported: SCHEMA_VERSION,
            });
        }
        if current == SCHEMA_VERSION {
            txn.abort()?;
            return Ok(());
        }
        if current > 0 {
            MIGRATIONS[(current - 1) as usize](&txn)?;
        }
        {
            let mut meta = txn.open_table(META)?;
            let next = if current == 0 { SCHEMA_VERSION } else { current + 1 };
            meta.insert("schema_version", next.to_string().as_str())?;
            if current == 0 {
                let now = sundial_core::timestamp::now();
                meta.insert("created_at", now.as_str())?;
            }
        }
        txn.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::TableDefinition;

    const ITEMS: TableDefinition<u64, &str> = TableDefinition::new("test_items");

    fn put(
        key: u64,
        value: &'static str,
    ) -> impl FnOnce(&WriteTransaction) -> Result<(), StoreError> + Send + 'static {
        move |txn: &WriteTransaction| {
            let mut t = txn.open_table(ITEMS)?;
            if t.get(key)?.is_some() {
                return Err(StoreError::Conflict(format!("item {key} exists")));
            }
            t.insert(key, value)?;
            Ok(())
        }
    }

    fn count(store: &Store) -> u64 {
        let txn = store.read().unwrap();
        match txn.open_table(ITEMS) {
            Ok(t) => t.len().unwrap(),
            Err(_) => 0,
        }
    }

    #[tokio::test]
    async fn a_full_disk_fails_writes_keeps_commits_and_the_store_reopens_itself() {
        let dir = tempfile::tempdir().unwrap();
        let switch = dir.path().join("full");
        let store = Store::open_options(
            &dir.path().join("data"),
            64,
            DEFAULT_CACHE_BYTES,
            Some(switch.clone()),
        )
        .unwrap();
        store.write(put(1, "before")).await.unwrap();
        std::fs::write(&switch, b"").unwrap();
        for key in 2..5 {
            match store.write(put(key, "during")).await {
                Err(StoreError::Unavailable(m)) => assert!(m.contains("data file"), "{m}"),
                other => panic!("a write on a full disk gave {other:?}"),
            }
        }
        std::fs::remove_file(&switch).unwrap();
        // The first attempts after space returns may come within the reopen interval.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match store.write(put(5, "after")).await {
                Ok(()) => break,
                Err(StoreError::Unavailable(_)) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(handle::REOPEN_INTERVAL).await
                }
                other => panic!("the store did not recover: {other:?}"),
            }
        }
        assert_eq!(
            count(&store),
            2,
            "the commit before and the one after, nothing between"
        );
        drop(store);
        // The writer thread lets go of the file once it sees the store dropped.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let store = loop {
            match Store::open(&dir.path().join("data"), 64) {
                Ok(s) => break s,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Err(e) => panic!("reopening: {e}"),
            }
        };
        assert_eq!(count(&store), 2);
    }

    #[tokio::test]
    async fn new_file_gets_the_schema_version_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), 64).unwrap();
            assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
            store.write(put(1, "one")).await.unwrap();
        }
        // The writer thread has released the file once the handles are gone.
        let mut reopened = None;
        for _ in 0..100 {
            match Store::open(dir.path(), 64) {
                Ok(s) => {
                    reopened = Some(s);
                    break;
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
        let store = reopened.expect("reopens");
        assert_eq!(count(&store), 1);
    }

    #[tokio::test]
    async fn a_newer_file_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::create(dir.path().join("sundial.redb")).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("schema_version", "99")
                .unwrap();
            txn.commit().unwrap();
        }
        match Store::open(dir.path(), 64) {
            Err(e @ StoreError::TooNew { found: 99, .. }) => {
                assert!(e.to_string().contains("upgrade Sundial"))
            }
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("a newer file must be refused"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_commits_and_refusals_stay_isolated() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1024).unwrap();
        let mut tasks = Vec::new();
        for i in 0..2000u64 {
            let store = store.clone();
            // Every 10th write collides with an earlier key and must be refused alone.
            let key = if i % 10 == 9 { i - 1 } else { i };
            tasks.push(tokio::spawn(async move { (i, store.write(put(key, "v")).await) }));
        }
        let mut refused = 0;
        for t in tasks {
            let (i, result) = t.await.unwrap();
            match result {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => refused += 1,
                Err(e) => panic!("write {i} failed: {e}"),
            }
        }
        assert_eq!(refused, 200);
        assert_eq!(count(&store), 1800);
        let stats = store.stats();
        let commits = stats.commits.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(stats.mutations.load(std::sync::atomic::Ordering::Relaxed), 2000);
        assert!(
            commits < 2000,
            "group commit folded writes: {commits} commits for 2000 writes"
        );
    }
}

#[cfg(test)]
mod close_tests {
    use super::*;

    /// After `close` the file is free at once: reopening it never finds it locked
    /// (with a mere drop, the writer thread may still hold it).
    #[tokio::test]
    async fn close_releases_the_file_before_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..20 {
            let store = Store::open(dir.path(), 8).unwrap();
            store.write(|_| Ok(())).await.unwrap();
            store.close();
        }
    }
}

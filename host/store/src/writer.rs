//! The group-commit writer: one thread owns every write transaction. Callers send
//! mutations; the writer takes every mutation already waiting (up to a batch limit),
//! applies them in one redb write transaction, commits once (one fsync), and only then
//! answers each caller. Under load one fsync serves many mutations; idle, a lone
//! mutation commits at once.

use super::StoreError;
use super::batch::Batch;
use super::handle::DbHandle;
use redb::Durability;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Most mutations folded into one commit. Default 1024.
pub const DEFAULT_MAX_BATCH: usize = 1024;

/// A mutation: applied inside the batch's write transaction ([`Batch`]). It must
/// validate before it writes: returning `Err` after writing would leave its writes in
/// the batch. (redb only allows savepoints on a clean transaction, so a batch cannot
/// undo one member.) A storage error aborts the whole batch and every member gets it.
pub type Mutation = Box<dyn FnOnce(&mut Batch<'_>) -> Result<(), StoreError> + Send>;

struct Job {
    mutation: Work,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// What a job does: a mutation folded into a batch, or work that needs the database
/// quiet (no write transaction open, every earlier mutation committed), such as
/// copying the file for a backup.
enum Work {
    Mutation(Mutation),
    Quiet(Box<dyn FnOnce(&redb::Database) -> Result<(), StoreError> + Send>),
}

/// Counters of the writer, for metrics and benchmarks.
#[derive(Debug)]
pub struct WriterStats {
    /// Commit (fsync) latency, in seconds.
    pub commit_seconds: sundial_core::metrics::Histogram,
    /// Mutations per commit.
    pub batch_size: sundial_core::metrics::Histogram,
    /// Commits made.
    pub commits: AtomicU64,
    /// Mutations applied (successful or refused).
    pub mutations: AtomicU64,
    /// Total time spent in `commit()` (the fsync), in microseconds.
    pub commit_micros: AtomicU64,
    /// Largest batch seen.
    pub max_batch: AtomicU64,
}

impl Default for WriterStats {
    fn default() -> Self {
        WriterStats {
            commit_seconds: sundial_core::metrics::Histogram::new(sundial_core::metrics::SECONDS),
            batch_size: sundial_core::metrics::Histogram::new(sundial_core::metrics::BATCH),
            commits: AtomicU64::new(0),
            mutations: AtomicU64::new(0),
            commit_micros: AtomicU64::new(0),
            max_batch: AtomicU64::new(0),
        }
    }
}

impl WriterStats {
    /// Average mutations per commit so far.
    pub fn mutations_per_commit(&self) -> f64 {
        let c = self.commits.load(Ordering::Relaxed);
        if c == 0 {
            0.0
        } else {
            self.mutations.load(Ordering::Relaxed) as f64 / c as f64
        }
    }
}

/// Handle to the writer thread. Dropping every handle stops the thread after it drains.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
    stats: Arc<WriterStats>,
    /// The thread, for [`Writer::close`].
    thread: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Writer {
    /// Start the writer thread for `db`.
    pub fn start(db: Arc<DbHandle>, max_batch: usize) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel::<Job>(max_batch.max(1) * 4);
        let stats = Arc::new(WriterStats::default());
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("sundial-store-writer".into())
            .spawn(move || run(db, rx, max_batch.max(1), &thread_stats))
            .map_err(|e| StoreError::Io(format!("cannot start the store writer: {e}")))?;
        Ok(Writer {
            tx,
            stats,
            thread: Arc::new(std::sync::Mutex::new(Some(thread))),
        })
    }

    /// Stop taking writes and wait until the thread has committed what it holds and
    /// ended (it owns a handle of the database, so the file is released only then).
    /// Blocks. With other handles of this writer still alive the thread goes on serving
    /// them, so this only lets go of its own handle.
    pub fn close(self) {
        let Writer { tx, thread, .. } = self;
        let last = Arc::strong_count(&thread) == 1;
        let thread = if last {
            thread.lock().unwrap_or_else(|e| e.into_inner()).take()
        } else {
            None
        };
        drop(tx);
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// Apply `mutation` durably; returns once it is committed (or refused).
    pub async fn write(&self, mutation: Mutation) -> Result<(), StoreError> {
        self.submit(Work::Mutation(mutation)).await
    }

    /// Run `work` on the writer thread between commits: every mutation sent before it
    /// is committed, and none after it starts until it returns.
    pub async fn quiet(
        &self,
        work: Box<dyn FnOnce(&redb::Database) -> Result<(), StoreError> + Send>,
    ) -> Result<(), StoreError> {
        self.submit(Work::Quiet(work)).await
    }

    /// Hand `work` to the writer thread and wait for its outcome.
    async fn submit(&self, work: Work) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job { mutation: work, done })
            .await
            .map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)?
    }

    /// The writer's counters.
    pub fn stats(&self) -> &Arc<WriterStats> {
        &self.stats
    }
}

fn run(db: Arc<DbHandle>, mut rx: mpsc::Receiver<Job>, max_batch: usize, stats: &WriterStats) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    let mut quiet: Option<Job> = None;
    while let Some(first) = rx.blocking_recv() {
        match first.mutation {
            Work::Quiet(_) => quiet = Some(first),
            Work::Mutation(_) => {
                batch.push(first);
                while batch.len() < max_batch {
                    match rx.try_recv() {
                        Ok(Job {
                            mutation: Work::Quiet(w),
                            done,
                        }) => {
                            quiet = Some(Job {
                                mutation: Work::Quiet(w),
                                done,
                            });
                            break;
                        }
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
            }
        }
        if !batch.is_empty() {
            commit_batch(&db, &mut batch, stats);
        }
        if let Some(Job {
            mutation: Work::Quiet(work),
            done,
        }) = quiet.take()
        {
            let result = db.get().and_then(|database| work(&database));
            let _ = done.send(result);
        }
    }
}

/// Commit one batch; an I/O error (disk full, failing device) fails the batch and
/// closes the file so the next batch reopens it.
fn commit_batch(handle: &DbHandle, batch: &mut Vec<Job>, stats: &WriterStats) {
    let failed = commit_on(handle, batch, stats);
    if let Some(e @ StoreError::Unavailable(_)) = &failed {
        handle.fail(e);
    }
}

/// Commit one batch on the open database; the batch's storage error, if any.
fn commit_on(handle: &DbHandle, batch: &mut Vec<Job>, stats: &WriterStats) -> Option<StoreError> {
    let size = batch.len() as u64;
    let fail_all = |batch: &mut Vec<Job>, e: StoreError| {
        for job in batch.drain(..) {
            let _ = job.done.send(Err(e.clone()));
        }
        Some(e)
    };
    let db = match handle.get() {
        Ok(db) => db,
        Err(e) => return fail_all(batch, e),
    };
    let mut txn = match db.begin_write() {
        Ok(t) => t,
        Err(e) => return fail_all(batch, StoreError::from(redb::Error::from(e))),
    };
    if let Err(e) = txn.set_durability(Durability::Immediate) {
        return fail_all(batch, StoreError::from(redb::Error::from(e)));
    }
    let mut results = Vec::with_capacity(batch.len());
    let mut dones = Vec::with_capacity(batch.len());
    let mut jobs = batch.drain(..);
    // The tables held across the batch close when it ends, before the commit.
    let mut tables = Batch::new(&txn);
    while let Some(job) = jobs.next() {
        let Work::Mutation(mutation) = job.mutation else {
            unreachable!("quiet work is never batched")
        };
        let result = mutation(&mut tables);
        if let Err(e @ (StoreError::Storage(_) | StoreError::Unavailable(_))) = &result {
            // The transaction may be half-written: abandon the whole batch.
            let e = e.clone();
            let _ = job.done.send(Err(e.clone()));
            for d in dones {
                let _: Result<(), _> = oneshot::Sender::send(d, Err(e.clone()));
            }
            for job in jobs {
                let _ = job.done.send(Err(e.clone()));
            }
            return Some(e);
        }
        results.push(result);
        dones.push(job.done);
    }
    drop(tables);
    let started = Instant::now();
    let committed = txn.commit();
    let took = started.elapsed();
    stats.commits.fetch_add(1, Ordering::Relaxed);
    stats.mutations.fetch_add(size, Ordering::Relaxed);
    stats
        .commit_micros
        .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    stats.max_batch.fetch_max(size, Ordering::Relaxed);
    stats.commit_seconds.observe(took.as_secs_f64());
    stats.batch_size.observe(size as f64);
    if took > Duration::from_secs(1) {
        tracing::warn!(?took, size, "slow store commit");
    }
    match committed {
        Ok(()) => {
            for (done, result) in dones.into_iter().zip(results) {
                let _ = done.send(result);
            }
            None
        }
        Err(e) => {
            let e = StoreError::from(redb::Error::from(e));
            for done in dones {
                let _ = done.send(Err(e.clone()));
            }
            Some(e)
        }
    }
}

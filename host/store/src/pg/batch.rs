//! Group commit for the writes every run makes on PostgreSQL: queueing runs, starting
//! one, recording an attempt's end with the event it emits, and ingesting events. One
//! task takes every write already waiting (up to [`MAX_BATCH`]) and applies them in one
//! transaction of set statements, however many there are:
//!
//! 1. `INSERT … SELECT * FROM unnest(…)` of every new run;
//! 2. `SELECT … WHERE id = ANY(…) ORDER BY id FOR UPDATE` of every run started or
//!    ended (locked in id order, as every batch of every node locks them, so two
//!    batches never deadlock each other);
//! 3. the transitions applied in order to those rows in memory, with the same checks as
//!    one at a time: a start only of a queued run, an end only from the node that owns
//!    the run's current attempt ([`StoreError::Stale`] otherwise, and its events are
//!    not stored);
//! 4. one `UPDATE … FROM unnest(…)` of the rows that changed;
//! 5. the events of the ends recorded and of the ingests, in order, in one statement
//!    ([`super::events::STORE_EVENTS`]), and what they start; then one commit.
//!
//! The statements are pipelined ([`apply_on`]): two round trips to the server a batch.
//!
//! Only then is each caller answered, so acknowledged still means committed. Under load
//! one commit (one WAL flush) and five statements serve hundreds of transitions; idle, a
//! lone transition commits at once. A batch that loses a race with another transaction
//! (SQLSTATE class 40: deadlock, serialization) is applied again from the start; one
//! that a statement refuses, or that keeps losing races, is split, each transition
//! applied alone so that only the one at fault gets the error; a lost connection fails every member with
//! [`StoreError::Unavailable`] (the API's 503), nothing written.

use super::events::{EventColumns, STORE_EVENTS, claimed, earlier, has_effects, insert_effects, stored};
use super::rows::{INSERT_RUNS, RunColumns, due_of_run};
use super::{PgStore, db_error, decode_one, encode};
use crate::StoreError;
use crate::events::{Planned, Stored};
use std::collections::HashMap;
use std::sync::Weak;
use sundial_core::run::{Run, RunStatus};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;

/// Most transitions applied in one transaction: 512.
pub const MAX_BATCH: usize = 512;

/// Batches a node applies at once, each on a connection of its own: 4. While one
/// waits for its commit's flush, the next are under way.
pub const WRITERS: usize = 4;

/// Times a batch that lost a race is applied again before its members get the error.
const RETRIES: usize = 3;

/// A write of the batch.
#[derive(Clone)]
pub(crate) enum Op {
    /// Queue new runs.
    Enqueue(Vec<Run>),
    /// Start the queued run `id` at `now` with this node as its owner.
    Start { id: String, now: String },
    /// Record an attempt's end (or a retry going back to the queue), fenced, with the
    /// events it emits.
    Save(Run, Vec<Planned>),
    /// Store events with what they start.
    Ingest(Vec<Planned>),
}

/// What a write answers.
pub(crate) enum Reply {
    /// The runs queued.
    Runs(Vec<Run>),
    /// The run started (`None`: it was not queued any more).
    Started(Option<Run>),
    /// The run saved, and its events as stored.
    Saved(Run, Vec<Stored>),
    /// The events as stored.
    Ingested(Vec<Stored>),
}

struct Job {
    op: Op,
    done: oneshot::Sender<Result<Reply, StoreError>>,
}

/// The sending side; the tasks stop once it is dropped (with the store).
pub(crate) struct Batcher {
    tx: mpsc::Sender<Job>,
}

impl Batcher {
    /// Start [`WRITERS`] tasks; they reach the store through `store` while it lives.
    pub fn start(store: Weak<super::Inner>) -> Batcher {
        let (tx, rx) = mpsc::channel(MAX_BATCH * 4);
        let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..WRITERS {
            tokio::spawn(run(store.clone(), rx.clone()));
        }
        Batcher { tx }
    }

    /// Apply `op` in the next batch; returns once that batch is committed (or failed).
    pub async fn apply(&self, op: Op) -> Result<Reply, StoreError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job { op, done })
            .await
            .map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)?
    }
}

/// One writer: takes what waits (while it holds the receiver, so the writers' batches
/// are disjoint) and applies it on a connection of its own.
async fn run(store: Weak<super::Inner>, rx: std::sync::Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>) {
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    loop {
        {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            jobs.push(first);
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        let Some(inner) = store.upgrade() else {
            return;
        };
        let store = PgStore { inner };
        let (ops, dones): (Vec<Op>, Vec<_>) = jobs.drain(..).map(|j| (j.op, j.done)).unzip();
        let replies = apply_all(&store, ops).await;
        for (done, reply) in dones.into_iter().zip(replies) {
            let _ = done.send(reply);
        }
    }
}

/// Apply `ops` in one transaction, or, when a statement refuses the batch or it keeps
/// losing races, each alone (so that only the write at fault fails).
pub(crate) async fn apply_all(store: &PgStore, ops: Vec<Op>) -> Vec<Result<Reply, StoreError>> {
    let n = ops.len();
    match apply_retrying(store, &ops).await {
        Ok(replies) => replies,
        Err(Failure::Store(e @ StoreError::Unavailable(_))) => (0..n).map(|_| Err(e.clone())).collect(),
        Err(_) if n > 1 => {
            let mut replies = Vec::with_capacity(n);
            let mut lost: Option<StoreError> = None;
            for op in ops {
                // Once the server is gone the others fail at once, not after a
                // connection timeout each.
                if let Some(e) = &lost {
                    replies.push(Err(e.clone()));
                    continue;
                }
                replies.push(match apply_retrying(store, std::slice::from_ref(&op)).await {
                    Ok(mut one) => one.pop().unwrap_or(Err(StoreError::Closed)),
                    Err(Failure::Store(e @ StoreError::Unavailable(_))) => {
                        lost = Some(e.clone());
                        Err(e)
                    }
                    Err(f) => Err(gave_up(f)),
                });
            }
            replies
        }
        Err(f) => vec![Err(gave_up(f))],
    }
}

/// The error a write gets when its batch failed for good.
fn gave_up(failure: Failure) -> StoreError {
    match failure {
        Failure::Race => StoreError::Unavailable(
            "PostgreSQL: the write kept conflicting with other transactions; try again".into(),
        ),
        Failure::Store(e) => e,
    }
}

/// Why a batch failed: it lost a race (apply it again) or the error every member gets.
enum Failure {
    Race,
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure::Store(e)
    }
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Failure {
        match e.as_db_error() {
            Some(db) if db.code().code().starts_with("40") => Failure::Race,
            _ => Failure::Store(db_error(e)),
        }
    }
}

/// [`apply`], again while it loses races, up to [`RETRIES`] times.
async fn apply_retrying(store: &PgStore, ops: &[Op]) -> Result<Vec<Result<Reply, StoreError>>, Failure> {
    let mut tries = 0;
    loop {
        match apply(store, ops).await {
            Err(Failure::Race) if tries < RETRIES => tries += 1,
            other => return other,
        }
    }
}

/// A run as the batch holds it: its row's columns and, once read or changed, its
/// document.
struct Current {
    status: String,
    owner: Option<String>,
    attempt: Option<i32>,
    doc: Option<String>,
    run: Option<Run>,
    changed: bool,
    /// Started in this batch: its lease starts now.
    leased: bool,
    /// Ended in this batch: a cancel asked of the attempt is void.
    ended: bool,
}

/// Apply `ops` in one transaction; each member's own answer, or why all failed.
async fn apply(store: &PgStore, ops: &[Op]) -> Result<Vec<Result<Reply, StoreError>>, Failure> {
    let mut open = Open(Some(store.client().await?));
    let client = open.0.as_ref().ok_or(Failure::Store(StoreError::Closed))?;
    let started = std::time::Instant::now();
    let result = apply_on(store, client, ops).await;
    match &result {
        Ok(_) => store.counted(started.elapsed(), ops.len()),
        // A statement that failed aborted the transaction; end it before the connection
        // goes back to the pool (a broken one is dropped by the pool).
        Err(_) => {
            let _ = client.batch_execute("ROLLBACK").await;
        }
    }
    open.0.take(); // back to the pool: the transaction is over either way
    result
}

/// A connection whose transaction may be open: should the batch end without reaching
/// its `COMMIT` or `ROLLBACK` (a panic), the connection is taken out of the pool and
/// closed, never handed to another caller with the transaction still open.
struct Open(Option<deadpool_postgres::Client>);

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

/// The row locks of the runs a batch starts or ends, in id order, with the documents
/// of those it starts.
const LOCK_RUNS: &str = "SELECT id, status, owner, attempt, CASE WHEN id = ANY($2) THEN doc END
     FROM runs WHERE id = ANY($1) ORDER BY id FOR UPDATE";

/// The rows a batch changed, from [`Changed`] and the lease in seconds.
const UPDATE_RUNS: &str = "UPDATE runs AS r SET status = u.status, due = u.due, doc = u.doc,
         owner = u.owner, attempt = u.attempt,
         lease_until = CASE WHEN u.leased THEN now() + make_interval(secs => $9)
                            WHEN u.status = 'running' THEN r.lease_until END,
         cancel = r.cancel AND NOT u.ended
     FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[],
                 $6::int4[], $7::bool[], $8::bool[])
         AS u(id, status, due, doc, owner, attempt, leased, ended)
     WHERE r.id = u.id";

/// The batch's statements, pipelined: the client sends every statement of a round
/// before it reads the answers, so a batch costs two round trips to the server (three
/// when its events start something):
///
/// 1. `BEGIN`, the new runs' insert, the locks (with what they read);
/// 2. the changed rows' update, the events' insert, `COMMIT`.
async fn apply_on(
    store: &PgStore,
    client: &deadpool_postgres::Client,
    ops: &[Op],
) -> Result<Vec<Result<Reply, StoreError>>, Failure> {
    let new = RunColumns::of(ops.iter().flat_map(|op| match op {
        Op::Enqueue(runs) => runs.as_slice(),
        _ => &[],
    }))?;
    let mut ids: Vec<&str> = Vec::new();
    let mut starting: Vec<&str> = Vec::new();
    for op in ops {
        match op {
            Op::Start { id, .. } => {
                ids.push(id);
                starting.push(id);
            }
            Op::Save(run, _) => ids.push(&run.id),
            Op::Enqueue(_) | Op::Ingest(_) => {}
        }
    }
    ids.sort_unstable();
    ids.dedup();

    // Round 1.
    let insert = match new.is_empty() {
        true => None,
        false => Some(client.prepare_cached(INSERT_RUNS).await?),
    };
    let lock = match ids.is_empty() {
        true => None,
        false => Some(client.prepare_cached(LOCK_RUNS).await?),
    };
    let inserting = new.params();
    let (_, _, locked) = futures::try_join!(
        client.batch_execute("BEGIN"),
        async {
            match &insert {
                Some(s) => client.execute(s, &inserting).await.map(Some),
                None => Ok(None),
            }
        },
        async {
            match &lock {
                Some(s) => client.query(s, &[&ids, &starting]).await.map(Some),
                None => Ok(None),
            }
        },
    )?;
    let mut current: HashMap<String, Current> = HashMap::with_capacity(ids.len());
    for r in locked.unwrap_or_default() {
        current.insert(
            r.get(0),
            Current {
                status: r.get(1),
                owner: r.get(2),
                attempt: r.get(3),
                doc: r.get(4),
                run: None,
                changed: false,
                leased: false,
                ended: false,
            },
        );
    }

    // Each op's answer, with the events whose stored form completes it.
    let node = store.node();
    let mut replies: Vec<Result<(Reply, usize), StoreError>> = Vec::with_capacity(ops.len());
    let mut events: Vec<Planned> = Vec::new();
    for op in ops {
        replies.push(match op {
            Op::Enqueue(runs) => Ok((Reply::Runs(runs.clone()), 0)),
            Op::Start { id, now } => {
                start(current.get_mut(id.as_str()), id, now, node).map(|r| (Reply::Started(r), 0))
            }
            Op::Save(run, emitted) => save(current.get_mut(run.id.as_str()), run, node).map(|r| {
                events.extend(emitted.iter().cloned());
                (Reply::Saved(r, Vec::new()), emitted.len())
            }),
            Op::Ingest(planned) => {
                events.extend(planned.iter().cloned());
                Ok((Reply::Ingested(Vec::new()), planned.len()))
            }
        });
    }

    // Round 2 (and 3 when the events start runs, set timers or queue deliveries).
    let mut cols = Changed::default();
    for (id, c) in current.iter().filter(|(_, c)| c.changed) {
        let Some(run) = &c.run else { continue };
        cols.ids.push(id.as_str());
        cols.statuses.push(&c.status);
        cols.due.push(if c.leased { None } else { due_of_run(run) });
        cols.docs.push(encode(run)?);
        cols.owners.push(c.owner.as_deref());
        cols.attempts.push(c.attempt);
        cols.leased.push(c.leased);
        cols.ended.push(c.ended);
    }
    let update = match cols.ids.is_empty() {
        true => None,
        false => Some(client.prepare_cached(UPDATE_RUNS).await?),
    };
    let lease = store.lease().as_secs_f64();
    let updating: [&(dyn ToSql + Sync); 9] = [
        &cols.ids,
        &cols.statuses,
        &cols.due,
        &cols.docs,
        &cols.owners,
        &cols.attempts,
        &cols.leased,
        &cols.ended,
        &lease,
    ];
    let event_columns = EventColumns::of(&events)?;
    let storing = match events.is_empty() {
        true => None,
        false => Some(client.prepare_cached(STORE_EVENTS).await?),
    };
    let effects = has_effects(&events);
    let event_params = event_columns.params();
    let (_, stored_rows, _) = futures::try_join!(
        async {
            match &update {
                Some(s) => client.execute(s, &updating).await.map(Some),
                None => Ok(None),
            }
        },
        async {
            match &storing {
                Some(s) => client.query(s, &event_params).await.map(Some),
                None => Ok(None),
            }
        },
        async {
            match effects {
                false => client.batch_execute("COMMIT").await,
                true => Ok(()),
            }
        },
    )?;
    let claimed = claimed(stored_rows.unwrap_or_default());
    if effects {
        insert_effects(client, &events, &claimed).await?;
        client.batch_execute("COMMIT").await?;
    }
    // Committed. The records that duplicates repeat are read after the commit (they
    // are committed: a conflicting insert waits for the other's commit); should that
    // read fail, a duplicate is reported with its own record.
    let earlier = earlier(client, &events, &event_columns, &claimed)
        .await
        .unwrap_or_default();
    let mut stored = stored(events, event_columns, &claimed, earlier).into_iter();
    Ok(replies
        .into_iter()
        .map(|reply| {
            reply.map(|(reply, n)| match reply {
                Reply::Saved(run, _) => Reply::Saved(run, stored.by_ref().take(n).collect()),
                Reply::Ingested(_) => Reply::Ingested(stored.by_ref().take(n).collect()),
                other => other,
            })
        })
        .collect())
}

/// The columns of the rows a batch changed.
#[derive(Default)]
struct Changed<'a> {
    ids: Vec<&'a str>,
    statuses: Vec<&'a str>,
    due: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    docs: Vec<String>,
    owners: Vec<Option<&'a str>>,
    attempts: Vec<Option<i32>>,
    leased: Vec<bool>,
    ended: Vec<bool>,
}

/// The run `current` holds, decoded from its row when this batch has not changed it.
fn run_of(current: &mut Current, id: &str) -> Result<Run, StoreError> {
    if let Some(run) = &current.run {
        return Ok(run.clone());
    }
    let doc = current
        .doc
        .as_deref()
        .ok_or_else(|| StoreError::Storage(format!("run {id:?} was locked without its document")))?;
    decode_one("runs", id, doc)
}

/// Start the run `id` if it is queued: a new attempt owned by `node`.
fn start(current: Option<&mut Current>, id: &str, now: &str, node: &str) -> Result<Option<Run>, StoreError> {
    let current = current.ok_or_else(|| StoreError::NotFound(format!("run {id:?} not found")))?;
    if current.status != RunStatus::Queued.as_str() {
        return Ok(None);
    }
    let mut run = run_of(current, id)?;
    if run.status != RunStatus::Queued {
        return Ok(None);
    }
    run.begin_attempt(now.to_string());
    current.status = RunStatus::Running.as_str().to_string();
    current.owner = Some(node.to_string());
    current.attempt = Some(run.attempt as i32);
    current.run = Some(run.clone());
    current.changed = true;
    current.leased = true;
    Ok(Some(run))
}

/// Record `run` over the stored one if `node` owns its current attempt.
fn save(current: Option<&mut Current>, run: &Run, node: &str) -> Result<Run, StoreError> {
    let current = current.ok_or_else(|| StoreError::NotFound(format!("run {:?} not found", run.id)))?;
    super::runs::fence(
        &run.id,
        run.attempt,
        node,
        &current.status,
        current.owner.as_deref(),
        current.attempt,
    )?;
    let running = run.status == RunStatus::Running;
    current.status = run.status.as_str().to_string();
    if !running {
        current.owner = None;
        current.attempt = None;
    }
    current.leased = current.leased && running;
    current.ended = true;
    current.run = Some(run.clone());
    current.changed = true;
    Ok(run.clone())
}

//! Rows that several nouns' transactions write: runs (an event's, a slot's, a timer's
//! and a manual run's), timers and deliveries. The columns beside each document are
//! set from it here and nowhere else.

use super::{encode, exec};
use crate::StoreError;
use crate::timers::Timer;
use crate::webhooks::{Delivery, DeliveryStatus};
use deadpool_postgres::GenericClient;
use sundial_core::run::Run;
use tokio_postgres::types::ToSql;

/// Insert new runs, all in one statement (queued ones are in the queue by their
/// status, due at their `not_before`): [`INSERT_RUNS`] with [`RunColumns::params`].
pub(crate) async fn insert_runs(c: &impl GenericClient, runs: &[Run]) -> Result<(), StoreError> {
    if runs.is_empty() {
        return Ok(());
    }
    let columns = RunColumns::of(runs.iter())?;
    exec(c, INSERT_RUNS, &columns.params()).await?;
    Ok(())
}

/// The statement that inserts the runs of a [`RunColumns`].
pub(crate) const INSERT_RUNS: &str = "INSERT INTO runs (id, task_id, status, cause, queued_at, due, doc)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[])";

/// New runs as the column arrays of [`INSERT_RUNS`].
pub(crate) struct RunColumns<'a> {
    ids: Vec<&'a str>,
    tasks: Vec<&'a str>,
    statuses: Vec<&'static str>,
    causes: Vec<&'static str>,
    queued_at: Vec<&'a str>,
    due: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    docs: Vec<String>,
}

impl<'a> RunColumns<'a> {
    /// The columns of `runs`.
    pub fn of(runs: impl Iterator<Item = &'a Run>) -> Result<RunColumns<'a>, StoreError> {
        let mut c = RunColumns {
            ids: Vec::new(),
            tasks: Vec::new(),
            statuses: Vec::new(),
            causes: Vec::new(),
            queued_at: Vec::new(),
            due: Vec::new(),
            docs: Vec::new(),
        };
        for run in runs {
            c.ids.push(&run.id);
            c.tasks.push(&run.task_id);
            c.statuses.push(run.status.as_str());
            c.causes.push(run.cause.kind());
            c.queued_at.push(&run.queued_at);
            c.due.push(due_of_run(run));
            c.docs.push(encode(run)?);
        }
        Ok(c)
    }

    /// True when there is no run.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The statement's parameters.
    pub fn params(&self) -> [&(dyn ToSql + Sync); 7] {
        [
            &self.ids,
            &self.tasks,
            &self.statuses,
            &self.causes,
            &self.queued_at,
            &self.due,
            &self.docs,
        ]
    }
}

/// When a queued run may start: its `not_before` (a retry's backoff), else now (NULL).
pub(crate) fn due_of_run(run: &Run) -> Option<chrono::DateTime<chrono::Utc>> {
    run.not_before
        .as_deref()
        .and_then(|t| sundial_core::timestamp::parse(t).ok())
}

/// Write an existing run's document, status and due time. A run that is not running
/// has no owner, attempt or lease (a retry goes back to the queue unowned). Returns
/// false when no such run exists.
pub(crate) async fn put_run(c: &impl GenericClient, run: &Run) -> Result<bool, StoreError> {
    let changed = exec(
        c,
        "UPDATE runs SET status = $2, due = $3, doc = $4,
             owner = CASE WHEN $2 = 'running' THEN owner END,
             attempt = CASE WHEN $2 = 'running' THEN attempt END,
             lease_until = CASE WHEN $2 = 'running' THEN lease_until END,
             cancel = false
         WHERE id = $1",
        &[&run.id, &run.status.as_str(), &due_of_run(run), &encode(run)?],
    )
    .await?;
    Ok(changed == 1)
}

/// Write a run this node has just started (or taken over): `node` owns `run.attempt`
/// until `lease` from now (the database's clock).
pub(crate) async fn put_owned_run(
    c: &impl GenericClient,
    run: &Run,
    node: &str,
    lease: std::time::Duration,
) -> Result<(), StoreError> {
    exec(
        c,
        "UPDATE runs SET status = $2, due = NULL, doc = $3, owner = $4, attempt = $5,
             lease_until = now() + make_interval(secs => $6),
             cancel = cancel AND $2 = 'running'
         WHERE id = $1",
        &[
            &run.id,
            &run.status.as_str(),
            &encode(run)?,
            &node,
            &(run.attempt as i32),
            &lease.as_secs_f64(),
        ],
    )
    .await?;
    Ok(())
}

/// Insert a timer.
pub(crate) async fn insert_timer(c: &impl GenericClient, timer: &Timer) -> Result<(), StoreError> {
    exec(
        c,
        "INSERT INTO timers (id, due, trigger_id, task_id, doc) VALUES ($1, $2, $3, $4, $5)",
        &[
            &timer.id,
            &timer.due,
            &timer.trigger,
            &timer.task_id,
            &encode(timer)?,
        ],
    )
    .await?;
    super::listen::notify(c, "timers").await?;
    Ok(())
}

/// A delivery status as stored in the `status` column.
pub(crate) fn delivery_status(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Queued => "queued",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Dead => "dead",
    }
}

/// Insert new deliveries; a queued one is due at its `next_attempt_at`.
pub(crate) async fn insert_deliveries(
    c: &impl GenericClient,
    deliveries: &[Delivery],
) -> Result<(), StoreError> {
    for d in deliveries {
        exec(
            c,
            "INSERT INTO deliveries (id, webhook_id, status, due, doc) VALUES ($1, $2, $3, $4, $5)",
            &[
                &d.id,
                &d.webhook_id,
                &delivery_status(d.status),
                &due_of(d),
                &encode(d)?,
            ],
        )
        .await?;
    }
    if !deliveries.is_empty() {
        super::listen::notify(c, "deliveries").await?;
    }
    Ok(())
}

/// Write an existing delivery (its due time follows its status and next attempt); with
/// `release`, the claim on it ends (an attempt was recorded).
pub(crate) async fn put_delivery(
    c: &impl GenericClient,
    d: &Delivery,
    release: bool,
) -> Result<(), StoreError> {
    exec(
        c,
        "UPDATE deliveries SET status = $2, due = $3, doc = $4,
             claimed_by = CASE WHEN $5 THEN NULL ELSE claimed_by END
         WHERE id = $1",
        &[
            &d.id,
            &delivery_status(d.status),
            &due_of(d),
            &encode(d)?,
            &release,
        ],
    )
    .await?;
    Ok(())
}

/// When a delivery is next due: its next attempt while queued, never once finished.
/// Cut to the millisecond, as the document holds it and as redb's queue keys order it,
/// so the queue's order and cursors (`WebhookStore::due_deliveries`) are redb's.
fn due_of(d: &Delivery) -> Option<chrono::DateTime<chrono::Utc>> {
    match d.status {
        DeliveryStatus::Queued => d.next_attempt_at.map(sundial_core::timestamp::millis),
        _ => None,
    }
}

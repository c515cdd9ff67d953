//! The event log on PostgreSQL: events with what they caused, deduplicated by (source,
//! id) through `event_keys`, stored in the same transaction as the runs, timers and
//! deliveries they start, as [`crate::events`] does on redb.

use super::audit::SCAN_BATCH;
use super::rows::{insert_deliveries, insert_runs, insert_timer};
use super::{PgStore, db_error, decode_listed, decode_one, encode, exec, limit_plus_one, row, rows};
use crate::StoreError;
use crate::events::{EventFilter, EventStore, Planned, Stored, dedup_key};
use crate::tables::{Paged, Pager};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use std::collections::{HashMap, HashSet};
use sundial_core::event::EventRecord;
use tokio_postgres::types::ToSql;

/// Most events one [`EventStore::prune_events`] deletes (the caller repeats while a
/// round deletes this many), as on redb.
const PRUNE_ROUND: usize = 100_000;

/// Store planned events inside the transaction `c` (ingest, and every producer whose
/// events commit with the change that caused them): [`STORE_EVENTS`], then what the
/// new ones start ([`insert_effects`]), then the records the duplicates repeat.
pub(crate) async fn apply_events(
    c: &impl GenericClient,
    planned: Vec<Planned>,
) -> Result<Vec<Stored>, StoreError> {
    if planned.is_empty() {
        return Ok(Vec::new());
    }
    let columns = EventColumns::of(&planned)?;
    let claimed = claimed(rows(c, STORE_EVENTS, &columns.params()).await?);
    insert_effects(c, &planned, &claimed).await?;
    let earlier = earlier(c, &planned, &columns, &claimed).await?;
    Ok(stored(planned, columns, &claimed, earlier))
}

/// Claim each event's (source, id) by inserting its key into `event_keys`, in order, and
/// store the events whose key was free; returns their `seq`s. A key there already
/// (stored before, earlier in these events, or by another node at the same moment,
/// whose insert this one waits for) makes the event a duplicate, which starts nothing.
/// Parameters: [`EventColumns::params`].
pub(crate) const STORE_EVENTS: &str = "WITH k AS (
        INSERT INTO event_keys (key, seq) SELECT * FROM unnest($1::text[], $2::text[])
        ON CONFLICT (key) DO NOTHING RETURNING seq)
    INSERT INTO events (seq, doc) SELECT u.seq, u.doc FROM unnest($2::text[], $3::text[]) AS u(seq, doc)
        JOIN k ON k.seq = u.seq
    RETURNING seq";

/// Planned events as the column arrays of [`STORE_EVENTS`].
pub(crate) struct EventColumns {
    keys: Vec<String>,
    seqs: Vec<String>,
    docs: Vec<String>,
}

impl EventColumns {
    /// The columns of `planned`.
    pub fn of(planned: &[Planned]) -> Result<EventColumns, StoreError> {
        let mut c = EventColumns {
            keys: Vec::with_capacity(planned.len()),
            seqs: Vec::with_capacity(planned.len()),
            docs: Vec::with_capacity(planned.len()),
        };
        for p in planned {
            c.keys.push(dedup_key(&p.record.event.source, &p.record.event.id));
            c.seqs.push(p.record.seq.clone());
            c.docs.push(encode(&p.record)?);
        }
        Ok(c)
    }

    /// The statement's parameters.
    pub fn params(&self) -> [&(dyn ToSql + Sync); 3] {
        [&self.keys, &self.seqs, &self.docs]
    }
}

/// The `seq`s [`STORE_EVENTS`] returned: the events stored (not duplicates).
pub(crate) fn claimed(found: Vec<tokio_postgres::Row>) -> HashSet<String> {
    found.iter().map(|r| r.get(0)).collect()
}

/// True when some of `planned` start runs, set timers or queue deliveries.
pub(crate) fn has_effects(planned: &[Planned]) -> bool {
    planned
        .iter()
        .any(|p| !p.runs.is_empty() || !p.timers.is_empty() || !p.deliveries.is_empty())
}

/// Insert the runs, timers and deliveries of the events of `planned` that were stored
/// (their `seq` is in `claimed`).
pub(crate) async fn insert_effects(
    c: &impl GenericClient,
    planned: &[Planned],
    claimed: &HashSet<String>,
) -> Result<(), StoreError> {
    let (mut runs, mut deliveries) = (Vec::new(), Vec::new());
    for p in planned.iter().filter(|p| claimed.contains(&p.record.seq)) {
        runs.extend(p.runs.iter().cloned());
        deliveries.extend(p.deliveries.iter().cloned());
        for timer in &p.timers {
            insert_timer(c, timer).await?;
        }
    }
    insert_runs(c, &runs).await?;
    insert_deliveries(c, &deliveries).await
}

/// The records stored first under the keys of the duplicates among `planned`.
pub(crate) async fn earlier(
    c: &impl GenericClient,
    planned: &[Planned],
    columns: &EventColumns,
    claimed: &HashSet<String>,
) -> Result<HashMap<String, EventRecord>, StoreError> {
    let duplicates: Vec<&str> = columns
        .keys
        .iter()
        .zip(planned)
        .filter(|(_, p)| !claimed.contains(&p.record.seq))
        .map(|(k, _)| k.as_str())
        .collect();
    let mut earlier = HashMap::new();
    if duplicates.is_empty() {
        return Ok(earlier);
    }
    for r in rows(
        c,
        "SELECT k.key, e.seq, e.doc FROM event_keys k JOIN events e ON e.seq = k.seq WHERE k.key = ANY($1)",
        &[&duplicates],
    )
    .await?
    {
        let (key, seq, doc): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        match decode_one::<EventRecord>("events", &seq, &doc) {
            Ok(record) => {
                earlier.insert(key, record);
            }
            // The key alone makes it a duplicate: one whose earlier record no longer
            // decodes is answered with itself, as on redb, instead of failing the call.
            Err(StoreError::Unreadable(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(earlier)
}

/// What storing `planned` did: each new event with what it started, each duplicate
/// with the record stored first (from `earlier`).
pub(crate) fn stored(
    planned: Vec<Planned>,
    columns: EventColumns,
    claimed: &HashSet<String>,
    earlier: HashMap<String, EventRecord>,
) -> Vec<Stored> {
    let mut out = Vec::with_capacity(planned.len());
    for (key, p) in columns.keys.into_iter().zip(planned) {
        if !claimed.contains(&p.record.seq) {
            out.push(Stored {
                record: earlier.get(&key).cloned().unwrap_or(p.record),
                duplicate: true,
                runs: Vec::new(),
                timers: Vec::new(),
                deliveries: 0,
            });
            continue;
        }
        out.push(Stored {
            timers: p.timers.iter().map(|t| t.due).collect(),
            deliveries: p.deliveries.len(),
            record: p.record,
            duplicate: false,
            runs: p.runs,
        });
    }
    out
}

/// True when `filter` filters at all (an unfiltered page needs one batch).
fn filters(filter: &EventFilter) -> bool {
    filter.kind.is_some()
        || filter.source.is_some()
        || filter.subject.is_some()
        || filter.since.is_some()
        || filter.until.is_some()
}

/// Up to `limit` events (`seq, doc`) after `after` (or from the first), oldest first.
async fn oldest(
    c: &impl GenericClient,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    match after {
        None => rows(c, "SELECT seq, doc FROM events ORDER BY seq LIMIT $1", &[&limit]).await,
        Some(a) => {
            rows(
                c,
                "SELECT seq, doc FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&a, &limit],
            )
            .await
        }
    }
}

#[async_trait]
impl EventStore for PgStore {
    async fn ingest_events(&self, planned: Vec<Planned>) -> Result<Vec<Stored>, StoreError> {
        match self.batched(super::batch::Op::Ingest(planned)).await? {
            super::batch::Reply::Ingested(stored) => Ok(stored),
            _ => Err(StoreError::Storage(
                "the batch answered an ingest with something else".into(),
            )),
        }
    }

    fn event(&self, seq: &str) -> Result<Option<EventRecord>, StoreError> {
        self.block(async {
            let client = self.client().await?;
            match row(&client, "SELECT doc FROM events WHERE seq = $1", &[&seq]).await? {
                None => Ok(None),
                Some(r) => decode_one("events", seq, r.get(0)).map(Some),
            }
        })
    }

    fn list_events(
        &self,
        filter: &EventFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Paged<EventRecord>, StoreError> {
        let batch = if filters(filter) {
            SCAN_BATCH.max(limit_plus_one(limit))
        } else {
            limit_plus_one(limit)
        };
        self.block(async {
            let client = self.client().await?;
            let mut pager = Pager::new(limit);
            let mut before = cursor.map(str::to_string);
            loop {
                let found = match &before {
                    None => {
                        rows(
                            &client,
                            "SELECT seq, doc FROM events ORDER BY seq DESC LIMIT $1",
                            &[&batch],
                        )
                        .await?
                    }
                    Some(b) => {
                        rows(
                            &client,
                            "SELECT seq, doc FROM events WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
                            &[b, &batch],
                        )
                        .await?
                    }
                };
                let more = found.len() as i64 == batch;
                for r in found {
                    let seq: String = r.get(0);
                    if let Some(record) = decode_listed::<EventRecord>("events", &seq, r.get(1)) {
                        if filter
                            .since
                            .as_deref()
                            .is_some_and(|s| record.received_at.as_str() < s)
                        {
                            // Newest first: everything further is older still.
                            return Ok(pager.finish());
                        }
                        if filter.matches(&record) && pager.push(&seq, record) {
                            return Ok(pager.finish());
                        }
                    }
                    before = Some(seq);
                }
                if !more {
                    return Ok(pager.finish());
                }
            }
        })
    }

    async fn prune_events(&self, keep: usize, cutoff: String) -> Result<usize, StoreError> {
        // Chains' budgets (cluster-wide `max_chain`) are forgotten a day after their
        // last spending, as a node forgets its oldest chains.
        {
            let client = self.client().await?;
            exec(
                &client,
                "DELETE FROM chains WHERE at < now() - interval '1 day'",
                &[],
            )
            .await?;
        }
        // Oldest first, as on redb: the events beyond the newest `keep` go, then those
        // after them that were received before `cutoff` (or do not decode), up to the
        // first that stays; at most PRUNE_ROUND per call. Events never change, so they
        // are read without locks; the DELETEs lock what they delete, and a key goes
        // with its event (found by seq, so an event that does not decode frees its key
        // too).
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let keep = keep.min(i64::MAX as usize) as i64;
        let boundary: Option<String> = row(
            &t,
            "SELECT seq FROM events ORDER BY seq DESC OFFSET $1 LIMIT 1",
            &[&keep],
        )
        .await?
        .map(|r| r.get(0));
        let mut deleted = 0;
        if let Some(b) = &boundary {
            let gone = row(
                &t,
                "WITH gone AS (
                     DELETE FROM events WHERE seq IN
                         (SELECT seq FROM events WHERE seq <= $1 ORDER BY seq LIMIT $2)
                     RETURNING seq
                 ), keys AS (
                     DELETE FROM event_keys WHERE seq IN (SELECT seq FROM gone)
                 )
                 SELECT count(*) FROM gone",
                &[b, &(PRUNE_ROUND as i64)],
            )
            .await?;
            deleted = gone.map_or(0, |r| r.get::<_, i64>(0)) as usize;
        }
        let mut doomed: Vec<String> = Vec::new();
        let mut after = boundary;
        'scan: while deleted + doomed.len() < PRUNE_ROUND {
            let found = oldest(&t, after.as_deref(), SCAN_BATCH).await?;
            let more = found.len() as i64 == SCAN_BATCH;
            for r in found {
                let seq: String = r.get(0);
                let doc: &str = r.get(1);
                let record: Option<EventRecord> = crate::tables::decode(doc.as_bytes()).ok();
                if record.is_some_and(|r| r.received_at >= cutoff) {
                    break 'scan;
                }
                doomed.push(seq.clone());
                if deleted + doomed.len() >= PRUNE_ROUND {
                    break 'scan;
                }
                after = Some(seq);
            }
            if !more {
                break;
            }
        }
        if !doomed.is_empty() {
            deleted += exec(&t, "DELETE FROM events WHERE seq = ANY($1)", &[&doomed]).await? as usize;
            exec(&t, "DELETE FROM event_keys WHERE seq = ANY($1)", &[&doomed]).await?;
        }
        self.commit(t).await?;
        Ok(deleted)
    }
}

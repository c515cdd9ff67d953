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
use sundial_core::event::EventRecord;

/// Most events one [`EventStore::prune_events`] deletes (the caller repeats while a
/// round deletes this many), as on redb.
const PRUNE_ROUND: usize = 100_000;

/// Store planned events inside the transaction `c` (ingest, and every producer whose
/// events commit with the change that caused them).
///
/// An event's (source, id) is claimed by inserting its key into `event_keys`: when
/// the key is there already (stored before, earlier in this batch, or by another node
/// at the same moment, whose insert this one waits for), the event is a duplicate,
/// reported with the record stored first, and starts nothing.
pub(crate) async fn apply_events(
    c: &impl GenericClient,
    planned: Vec<Planned>,
) -> Result<Vec<Stored>, StoreError> {
    let mut out = Vec::with_capacity(planned.len());
    for p in planned {
        let key = dedup_key(&p.record.event.source, &p.record.event.id);
        let claimed = exec(
            c,
            "INSERT INTO event_keys (key, seq) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&key, &p.record.seq],
        )
        .await?;
        if claimed == 0 {
            let earlier = row(
                c,
                "SELECT e.seq, e.doc FROM event_keys k JOIN events e ON e.seq = k.seq WHERE k.key = $1",
                &[&key],
            )
            .await?;
            let record = match earlier {
                Some(r) => decode_one("events", r.get(0), r.get(1))?,
                None => p.record,
            };
            out.push(Stored {
                record,
                duplicate: true,
                runs: Vec::new(),
                timers: Vec::new(),
                deliveries: 0,
            });
            continue;
        }
        exec(
            c,
            "INSERT INTO events (seq, doc) VALUES ($1, $2)",
            &[&p.record.seq, &encode(&p.record)?],
        )
        .await?;
        insert_runs(c, &p.runs).await?;
        let mut due = Vec::with_capacity(p.timers.len());
        for timer in &p.timers {
            insert_timer(c, timer).await?;
            due.push(timer.due);
        }
        insert_deliveries(c, &p.deliveries).await?;
        out.push(Stored {
            record: p.record,
            duplicate: false,
            runs: p.runs,
            timers: due,
            deliveries: p.deliveries.len(),
        });
    }
    Ok(out)
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
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let stored = apply_events(&t, planned).await?;
        self.commit(t).await?;
        Ok(stored)
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

//! The event log: events with what they caused, deduplicated by (source, id), stored
//! in the same commit as the runs and timers they start.

use super::batch::Hot;
use super::runs::{encode_runs, insert_encoded_runs};
use super::tables::{Json, Paged, Scan, encode_record, get_json, newest_first, put_encoded};
use super::timers::{Timer, insert_timer};
use super::{Store, StoreError};
use crate::schema::*;
use async_trait::async_trait;
use redb::{ReadableTable, ReadableTableMetadata};
use sundial_core::event::EventRecord;
use sundial_core::run::Run;

/// An event ready to store, with the runs and timers its triggers start.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The record (its `triggers` list what `runs` and `timers` hold).
    pub record: EventRecord,
    /// Runs to queue.
    pub runs: Vec<Run>,
    /// Delayed runs.
    pub timers: Vec<Timer>,
    /// Webhook deliveries to queue.
    pub deliveries: Vec<super::webhooks::Delivery>,
}

/// What storing one planned event did.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The stored record: the new one, or the earlier one with the same (source, id).
    pub record: EventRecord,
    /// True when an event with the same (source, id) was already stored; nothing ran.
    pub duplicate: bool,
    /// Runs queued (empty for a duplicate).
    pub runs: Vec<Run>,
    /// Due times of the timers set.
    pub timers: Vec<chrono::DateTime<chrono::Utc>>,
    /// How many deliveries were queued.
    pub deliveries: usize,
}

/// A planned event with its record and runs encoded before the write transaction
/// ([`encode_events`]), so the writer thread only copies bytes.
pub(crate) struct Encoded {
    planned: Planned,
    record: Json<'static, EventRecord>,
    runs: Vec<Json<'static, Run>>,
    deliveries: Vec<Json<'static, super::webhooks::Delivery>>,
}

/// Encode `planned` for [`apply_events`]; callers do it before their write transaction.
pub(crate) fn encode_events(planned: Vec<Planned>) -> Result<Vec<Encoded>, StoreError> {
    planned
        .into_iter()
        .map(|planned| {
            Ok(Encoded {
                record: encode_record(&planned.record.seq, &planned.record)?,
                runs: encode_runs(&planned.runs)?,
                deliveries: super::webhooks::encode_deliveries(&planned.deliveries)?,
                planned,
            })
        })
        .collect()
}

pub(crate) fn dedup_key(source: &str, id: &str) -> String {
    format!("{}:{source}{id}", source.len())
}

/// Store planned events in the hot tables of a write transaction (used by ingest and
/// by every internal producer, so an event commits together with the change that
/// caused it), encoded beforehand by [`encode_events`].
pub(crate) fn apply_events(hot: &mut Hot<'_>, planned: Vec<Encoded>) -> Result<Vec<Stored>, StoreError> {
    let mut out = Vec::with_capacity(planned.len());
    for Encoded {
        planned: p,
        record,
        runs,
        deliveries,
    } in planned
    {
        let key = dedup_key(&p.record.event.source, &p.record.event.id);
        let earlier = hot.event_keys.get(key.as_str())?.map(|v| v.value().to_string());
        if let Some(seq) = earlier {
            // The key alone makes it a duplicate. An earlier record that is gone or no
            // longer decodes is answered with this one, not an error: the events before
            // it in this call are written already, and a mutation may only refuse
            // before it writes.
            let record = match get_json(&hot.events, &seq) {
                Ok(Some(earlier)) => earlier,
                Ok(None) | Err(StoreError::Unreadable(_)) => p.record,
                Err(e) => return Err(e),
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
        hot.event_keys.insert(key.as_str(), p.record.seq.as_str())?;
        put_encoded(&mut hot.events, &p.record.seq, &record)?;
        insert_encoded_runs(hot, &p.runs, &runs)?;
        let mut due = Vec::new();
        for t in &p.timers {
            insert_timer(hot, t)?;
            due.push(t.due);
        }
        super::webhooks::insert_encoded_deliveries(hot, &p.deliveries, &deliveries)?;
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

/// Which events to list.
#[derive(Debug, Default, Clone)]
pub struct EventFilter {
    /// Only this type (exact, or a glob with `*`/`?`).
    pub kind: Option<String>,
    /// Only this source (exact).
    pub source: Option<String>,
    /// Only this subject (exact, or a glob).
    pub subject: Option<String>,
    /// Only events received at or after this time (RFC 3339, UTC, milliseconds).
    pub since: Option<String>,
    /// Only events received before this time.
    pub until: Option<String>,
}

impl EventFilter {
    pub(crate) fn matches(&self, r: &EventRecord) -> bool {
        let glob = |p: &Option<String>, v: Option<&str>| {
            p.as_deref()
                .is_none_or(|p| v.is_some_and(|v| sundial_core::event::filter::glob_match(p, v)))
        };
        glob(&self.kind, Some(&r.event.kind))
            && self.source.as_deref().is_none_or(|s| s == r.event.source)
            && glob(&self.subject, r.event.subject.as_deref())
            && self.since.as_deref().is_none_or(|s| r.received_at.as_str() >= s)
            && self.until.as_deref().is_none_or(|u| r.received_at.as_str() < u)
    }
}

/// The event log: events stored with what they start.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Store events with their runs and timers in one commit. Duplicates of stored
    /// events (same source and id) are reported and start nothing.
    async fn ingest_events(&self, planned: Vec<Planned>) -> Result<Vec<Stored>, StoreError>;

    /// One event by its seq.
    fn event(&self, seq: &str) -> Result<Option<EventRecord>, StoreError>;

    /// Events matching `filter`, newest first, at most `limit`, after seq `cursor`.
    fn list_events(
        &self,
        filter: &EventFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Paged<EventRecord>, StoreError>;

    /// Delete the oldest events beyond `keep` and those received before `cutoff`
    /// (RFC 3339), with their deduplication keys. Returns how many were deleted.
    async fn prune_events(&self, keep: usize, cutoff: String) -> Result<usize, StoreError>;
}

#[async_trait]
impl EventStore for Store {
    async fn ingest_events(&self, planned: Vec<Planned>) -> Result<Vec<Stored>, StoreError> {
        let planned = encode_events(planned)?;
        self.write_batch(move |batch| apply_events(batch.hot()?, planned))
            .await
    }

    fn event(&self, seq: &str) -> Result<Option<EventRecord>, StoreError> {
        self.get_record(EVENTS, seq)
    }

    fn list_events(
        &self,
        filter: &EventFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Paged<EventRecord>, StoreError> {
        self.read_table(EVENTS, |events| {
            newest_first(events, "events", cursor, limit, |record| {
                if filter
                    .since
                    .as_deref()
                    .is_some_and(|s| record.received_at.as_str() < s)
                {
                    return Scan::Stop; // newest first: everything further is older still
                }
                Scan::take_if(filter.matches(record))
            })
        })
    }

    async fn prune_events(&self, keep: usize, cutoff: String) -> Result<usize, StoreError> {
        self.write(move |txn| {
            let mut events = txn.open_table(EVENTS)?;
            let mut keys = txn.open_table(EVENT_KEYS)?;
            let total = events.len()? as usize;
            let mut doomed = Vec::new();
            for entry in events.iter()? {
                let (k, v) = entry?;
                let over = total - doomed.len() > keep;
                let record: Option<EventRecord> = v.value().decode().ok();
                let old = record.as_ref().is_none_or(|r| r.received_at < cutoff);
                if !over && !old {
                    break;
                }
                doomed.push((k.value().to_string(), record));
                if doomed.len() >= 100_000 {
                    break; // the next round continues
                }
            }
            for (seq, record) in &doomed {
                events.remove(seq.as_str())?;
                if let Some(r) = record {
                    keys.remove(dedup_key(&r.event.source, &r.event.id).as_str())?;
                }
            }
            Ok(doomed.len())
        })
        .await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sundial_core::event::cloudevent::parse_structured;

    /// Event `id` (source `/t`) received at `received_at`, starting nothing.
    pub(crate) fn planned(id: &str, received_at: &str) -> Planned {
        let event = parse_structured(
            &serde_json::json!({"specversion": "1.0", "id": id, "source": "/t", "type": "x"}),
        )
        .unwrap();
        Planned {
            record: EventRecord {
                seq: sundial_core::ids::new_id(),
                event,
                received_at: received_at.into(),
                depth: 0,
                caused_by: None,
                triggers: Vec::new(),
                stopped: None,
                root: None,
            },
            runs: Vec::new(),
            timers: Vec::new(),
            deliveries: Vec::new(),
        }
    }

    /// A resend of an event whose stored copy no longer decodes is a duplicate all the
    /// same: the call it came in with succeeds and stores the rest of its events.
    #[tokio::test]
    async fn a_resend_of_an_unreadable_event_is_a_duplicate_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 64).unwrap();
        let first = store
            .ingest_events(vec![planned("a", "2026-11-01T00:00:00.000Z")])
            .await
            .unwrap();
        let seq = first[0].record.seq.clone();
        let raw: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("events");
        store
            .write(move |txn| {
                txn.open_table(raw)?
                    .insert(seq.as_str(), b"{not json".as_slice())?;
                Ok(())
            })
            .await
            .unwrap();
        let again = store
            .ingest_events(vec![
                planned("b", "2026-11-02T00:00:00.000Z"),
                planned("a", "2026-11-02T00:00:00.000Z"),
            ])
            .await
            .unwrap();
        assert_eq!((again[0].duplicate, again[1].duplicate), (false, true));
        assert_eq!(again[1].record.event.id, "a");
        let b = store.event(&again[0].record.seq).unwrap().expect("b is stored");
        assert_eq!(b.event.id, "b");
        assert!(
            store.event(&again[1].record.seq).unwrap().is_none(),
            "the resend is not"
        );
    }

    #[tokio::test]
    async fn retention_by_count_and_age_frees_the_dedup_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 64).unwrap();
        let batch = vec![
            planned("a", "2026-01-01T00:00:00.000Z"),
            planned("b", "2026-06-01T00:00:00.000Z"),
            planned("c", "2026-11-01T00:00:00.000Z"),
            planned("d", "2026-11-02T00:00:00.000Z"),
            planned("e", "2026-11-03T00:00:00.000Z"),
        ];
        let stored = store.ingest_events(batch).await.unwrap();
        assert!(stored.iter().all(|s| !s.duplicate));
        // Age: everything before March goes (a); count: keep 3 of the rest (b goes).
        let deleted = store
            .prune_events(3, "2026-03-01T00:00:00.000Z".into())
            .await
            .unwrap();
        assert_eq!(deleted, 2);
        let (left, _) = store.list_events(&EventFilter::default(), None, 10).unwrap();
        let ids: Vec<&str> = left.iter().map(|r| r.event.id.as_str()).collect();
        assert_eq!(ids, ["e", "d", "c"]);
        // A pruned event's (source, id) is free again; a kept one is still a duplicate.
        let again = store
            .ingest_events(vec![
                planned("a", "2026-11-04T00:00:00.000Z"),
                planned("c", "2026-11-04T00:00:00.000Z"),
            ])
            .await
            .unwrap();
        assert_eq!((again[0].duplicate, again[1].duplicate), (false, true));
        let filter = EventFilter {
            since: Some("2026-11-02T00:00:00.000Z".into()),
            ..Default::default()
        };
        let (recent, _) = store.list_events(&filter, None, 10).unwrap();
        assert_eq!(recent.len(), 3, "d, e and the new a");
    }
}

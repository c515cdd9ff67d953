//! The schedules' due-time index (`SCHEDULE_DUE`, redb only): for every schedule, what
//! the scheduler needs to place it at start-up without reading its record: the record's
//! version, its last slot, its next slot by its definition, its jitter and three flags
//! ([`DueEntry`], 41 bytes).
//!
//! **Never out of step with the records.** The entry is written in the commit of every
//! change to a schedule record (create, update, delete, a fired slot, deleting an
//! unreadable record), computed from the record as it reads back ([`DueEntry::of`]).
//! Beyond the record it depends only on the binary (its rule code and time-zone data),
//! so `meta` names the build that computed the entries and another build computes them
//! all again when it opens the file (`refresh`). A file from before the index gets it
//! built in one migration step (schema version 2). A reader that finds fewer entries
//! than records reads the records instead; an entry it cannot decode, its record.
//!
//! **Why.** Starting with a million schedules spent about 70 % of its loading thread
//! reading and decoding a million JSON records; the entries are a twentieth of the
//! bytes and need no parsing. The record of a schedule that cannot be placed from its
//! entry alone (slots missed, paused, deferring out of windows, ended, invalid) is
//! still read and loaded in full.

use crate::StoreError;
use crate::schedules::ScheduleRecord;
use crate::schema::{SCHEDULE_DUE, SCHEDULES};
use chrono::{DateTime, Utc};
use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};
use std::cell::RefCell;
use sundial_core::schedule::spec::Excluded;
use sundial_core::schedule::{CronCache, Timing};

/// What the due-time index keeps of one schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueEntry {
    /// [`version`] of the record's `updated_at`.
    pub version: u64,
    /// The record's last slot.
    pub last_slot: Option<DateTime<Utc>>,
    /// When `timed`: the definition's first slot after `last_slot` (after its start when
    /// none), or `None` when no slot is left.
    pub next: Option<DateTime<Utc>>,
    /// The record's `jitter_ms`.
    pub jitter_ms: u64,
    /// `spec.enabled`.
    pub enabled: bool,
    /// `spec.excluded` is `defer`.
    pub defer: bool,
    /// The definition compiled and its start is known, so `next` is meaningful.
    pub timed: bool,
}

/// Encoded size of a [`DueEntry`]: 41 bytes.
const SIZE: usize = 8 + 12 + 12 + 8 + 1;

const ENABLED: u8 = 1;
const DEFER: u8 = 2;
const TIMED: u8 = 4;
const HAS_LAST: u8 = 8;
const HAS_NEXT: u8 = 16;

impl DueEntry {
    /// The entry of `record`, its cron expression from `crons` when compiled before.
    pub fn of(record: &ScheduleRecord, crons: &mut CronCache) -> DueEntry {
        let spec = &record.spec;
        let timing = record.start().and_then(|start| {
            Timing::new_cached(
                &spec.rule,
                &spec.timezone,
                start,
                spec.end,
                DateTime::<Utc>::MIN_UTC,
                crons,
            )
            .ok()
        });
        let next = timing.as_ref().and_then(|t| {
            t.next_instant(record.last_slot.unwrap_or(DateTime::<Utc>::MIN_UTC))
                .map(|(slot, _)| slot)
        });
        DueEntry {
            version: version(&record.updated_at),
            last_slot: record.last_slot,
            next,
            jitter_ms: spec.jitter_ms,
            enabled: spec.enabled,
            defer: spec.excluded == Excluded::Defer,
            timed: timing.is_some(),
        }
    }

    /// The slot the schedule waits for as of `now`, when it can be placed from this
    /// entry alone: enabled, not deferring out of windows, and its next slot still
    /// ahead (nothing missed for the misfire policy to decide on).
    pub fn waiting(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !(self.timed && self.enabled && !self.defer) {
            return None;
        }
        self.next.filter(|slot| *slot > now)
    }

    /// The entry as stored.
    pub fn encode(&self) -> [u8; SIZE] {
        let mut out = [0u8; SIZE];
        out[0..8].copy_from_slice(&self.version.to_le_bytes());
        put_time(&mut out[8..20], self.last_slot);
        put_time(&mut out[20..32], self.next);
        out[32..40].copy_from_slice(&self.jitter_ms.to_le_bytes());
        out[40] = flag(self.enabled, ENABLED)
            | flag(self.defer, DEFER)
            | flag(self.timed, TIMED)
            | flag(self.last_slot.is_some(), HAS_LAST)
            | flag(self.next.is_some(), HAS_NEXT);
        out
    }

    /// An entry as stored, or `None` when the bytes are not one (then the record is read).
    pub fn decode(bytes: &[u8]) -> Option<DueEntry> {
        let bytes: &[u8; SIZE] = bytes.try_into().ok()?;
        let flags = bytes[40];
        if flags & !(ENABLED | DEFER | TIMED | HAS_LAST | HAS_NEXT) != 0 {
            return None;
        }
        let time = |range: std::ops::Range<usize>, has: u8| -> Option<Option<DateTime<Utc>>> {
            if flags & has == 0 {
                return Some(None);
            }
            get_time(&bytes[range]).map(Some)
        };
        Some(DueEntry {
            version: u64::from_le_bytes(bytes[0..8].try_into().ok()?),
            last_slot: time(8..20, HAS_LAST)?,
            next: time(20..32, HAS_NEXT)?,
            jitter_ms: u64::from_le_bytes(bytes[32..40].try_into().ok()?),
            enabled: flags & ENABLED != 0,
            defer: flags & DEFER != 0,
            timed: flags & TIMED != 0,
        })
    }
}

fn flag(on: bool, bit: u8) -> u8 {
    if on { bit } else { 0 }
}

/// Seconds (i64) and nanoseconds (u32), little-endian: slots of `at` rules keep their
/// sub-millisecond part.
fn put_time(out: &mut [u8], t: Option<DateTime<Utc>>) {
    if let Some(t) = t {
        out[0..8].copy_from_slice(&t.timestamp().to_le_bytes());
        out[8..12].copy_from_slice(&t.timestamp_subsec_nanos().to_le_bytes());
    }
}

fn get_time(bytes: &[u8]) -> Option<DateTime<Utc>> {
    let secs = i64::from_le_bytes(bytes[0..8].try_into().ok()?);
    let nanos = u32::from_le_bytes(bytes[8..12].try_into().ok()?);
    DateTime::from_timestamp(secs, nanos)
}

/// The version a record's `updated_at` stands for: its FNV-1a hash, the same in every
/// build (the index outlives the binary that wrote it).
pub fn version(updated_at: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in updated_at.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

thread_local! {
    /// Cron expressions compiled by this thread's commits (the writer's).
    static CRONS: RefCell<CronCache> = RefCell::new(CronCache::default());
}

/// Write `record`'s entry, in the commit that writes the record. The entry is made
/// from the record as it reads back (times cut to the millisecond by its JSON), so it
/// is the one a reader computing it from the stored record gets: a round trip through
/// JSON, a few microseconds beside the commit.
pub(crate) fn put(txn: &WriteTransaction, record: &ScheduleRecord) -> Result<(), StoreError> {
    let stored: ScheduleRecord = serde_json::to_vec(record)
        .and_then(|bytes| serde_json::from_slice(&bytes))
        .map_err(|e| StoreError::Storage(format!("schedule {:?}: {e}", record.id)))?;
    let entry = CRONS.with(|c| DueEntry::of(&stored, &mut c.borrow_mut()));
    txn.open_table(SCHEDULE_DUE)?
        .insert(record.id.as_str(), entry.encode().as_slice())?;
    Ok(())
}

/// Remove the entry of schedule `id`, in the commit that deletes its record.
pub(crate) fn remove(txn: &WriteTransaction, id: &str) -> Result<(), StoreError> {
    txn.open_table(SCHEDULE_DUE)?.remove(id)?;
    Ok(())
}

/// The `meta` key naming the build that computed the entries ([`built_by`]).
const BUILT_BY: &str = "schedule_due_built_by";

/// Which build computes entries: this crate's version and the running executable's size
/// and modification time. An entry depends on more than its record: on the rule code
/// and the time-zone data compiled into the binary. So a file opened by another binary
/// (an upgrade, a rebuilt one) has its entries computed again (`refresh`); a spurious
/// rebuild (the same binary copied) costs only time.
pub fn built_by() -> String {
    let exe =
        std::fs::metadata("/proc/self/exe").or_else(|_| std::env::current_exe().and_then(std::fs::metadata));
    let identity = match exe {
        Ok(m) => {
            let modified = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{} bytes, modified {modified} ns", m.len())
        }
        // Unknown: never equal, so every open rebuilds.
        Err(e) => format!("unknown ({e}) {}", sundial_core::ids::new_id()),
    };
    format!(
        "sundial-store {}, executable {identity}",
        env!("CARGO_PKG_VERSION")
    )
}

/// Compute the entries again when another build computed them (or none did: a new
/// file), in one commit: the count rebuilt, or `None` when they were current.
pub(crate) fn refresh(db: &redb::Database) -> Result<Option<u64>, StoreError> {
    let txn = db.begin_write()?;
    let current = built_by();
    let stored = txn
        .open_table(crate::schema::META)?
        .get(BUILT_BY)?
        .map(|v| v.value().to_string());
    if stored.as_deref() == Some(current.as_str()) {
        txn.abort()?;
        return Ok(None);
    }
    txn.delete_table(SCHEDULE_DUE)?;
    let count = build(&txn)?;
    txn.commit()?;
    Ok(Some(count))
}

/// Migration to schema version 2, and [`refresh`]: an entry for every schedule record,
/// and the build that computed them in `meta`. A record that cannot be decoded gets an
/// entry that is not `timed` (the reader reads the record, and reports it unreadable as
/// before).
pub(crate) fn build(txn: &WriteTransaction) -> Result<u64, StoreError> {
    txn.open_table(crate::schema::META)?
        .insert(BUILT_BY, built_by().as_str())?;
    let records = txn.open_table(SCHEDULES)?;
    let mut index = txn.open_table(SCHEDULE_DUE)?;
    let mut crons = CronCache::default();
    let untimed = DueEntry {
        version: 0,
        last_slot: None,
        next: None,
        jitter_ms: 0,
        enabled: true,
        defer: false,
        timed: false,
    };
    for item in records.iter()? {
        let (key, value) = item?;
        let entry = match value.value().decode() {
            Ok(record) => DueEntry::of(&record, &mut crons),
            Err(_) => untimed,
        };
        index.insert(key.value(), entry.encode().as_slice())?;
    }
    Ok(index.len()?)
}

/// Up to `limit` entries with ids after `after`, in id order, and the cursor for more;
/// an entry that cannot be decoded comes as `None`. `Ok(None)` when the index does not
/// hold one entry per record (checked with the first page, `after == None`).
pub(crate) fn page(
    txn: &redb::ReadTransaction,
    after: Option<&str>,
    limit: usize,
) -> Result<Option<crate::tables::Paged<(String, Option<DueEntry>)>>, StoreError> {
    let index = match txn.open_table(SCHEDULE_DUE) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            let empty = match txn.open_table(SCHEDULES) {
                Ok(records) => records.is_empty()?,
                Err(redb::TableError::TableDoesNotExist(_)) => true,
                Err(e) => return Err(e.into()),
            };
            return Ok(empty.then(|| (Vec::new(), None)));
        }
        Err(e) => return Err(e.into()),
    };
    if after.is_none() {
        let records = match txn.open_table(SCHEDULES) {
            Ok(records) => records.len()?,
            Err(redb::TableError::TableDoesNotExist(_)) => 0,
            Err(e) => return Err(e.into()),
        };
        if records != index.len()? {
            return Ok(None);
        }
    }
    let mut out = Vec::with_capacity(limit.min(4096));
    for item in index.range::<&str>(crate::tables::keys_after(after))? {
        let (key, value) = item?;
        if out.len() == limit {
            let cursor = out.last().map(|(id, _): &(String, _)| id.clone());
            return Ok(Some((out, cursor)));
        }
        out.push((key.value().to_string(), DueEntry::decode(value.value())));
    }
    Ok(Some((out, None)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedules::ScheduleStore;
    use crate::unreadable::UnreadableStore;
    use crate::{MetaStore, Store};
    use redb::TableDefinition;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// Every record's entry is what [`DueEntry::of`] makes of it, and there is one per
    /// record, read back through [`page`] in small pages.
    fn assert_in_step(store: &Store) {
        let mut crons = CronCache::default();
        let mut records = Vec::new();
        let mut cursor = None;
        loop {
            let (page, next) = store.schedules_page(cursor.as_deref(), 2).unwrap();
            records.extend(page);
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let mut entries = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let (page, next) = store
                .schedule_due_page(cursor.as_deref(), 2)
                .unwrap()
                .expect("the index covers every record");
            entries.extend(page);
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let expected: Vec<(String, Option<DueEntry>)> = records
            .iter()
            .map(|r| (r.id.clone(), Some(DueEntry::of(r, &mut crons))))
            .collect();
        assert_eq!(entries, expected);
    }

    fn record(name: &str, spec: serde_json::Value) -> ScheduleRecord {
        let mut spec = spec;
        spec["name"] = name.into();
        // As the API stores it: the zone spelled out.
        if spec.get("timezone").is_none() {
            spec["timezone"] = "UTC".into();
        }
        ScheduleRecord {
            id: sundial_core::ids::new_id(),
            created_at: "2026-12-01T00:00:00.000Z".into(),
            updated_at: "2026-12-01T00:00:00.000Z".into(),
            spec: serde_json::from_value(spec).unwrap(),
            last_slot: None,
        }
    }

    #[tokio::test]
    async fn every_change_to_a_schedule_keeps_its_entry_in_the_same_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 64).unwrap();
        assert_in_step(&store);
        let hourly = serde_json::json!({"rule": {"cron": "0 * * * *"}, "timezone": "Europe/Berlin"});
        let a = store
            .insert_schedule(record("a", hourly.clone()), "t")
            .await
            .unwrap();
        let mut at = record(
            "b",
            serde_json::json!({"rule": {"at": "2027-01-01T00:00:00.123Z"}}),
        );
        at.spec.jitter_ms = 1500;
        let b = store.insert_schedule(at, "t").await.unwrap();
        let mut untimed = record("c", hourly.clone());
        untimed.created_at = String::new();
        let c = store.insert_schedule(untimed, "t").await.unwrap();
        assert_in_step(&store);
        let due = |id: &str| {
            let (page, _) = store.schedule_due_page(None, 10).unwrap().unwrap();
            page.into_iter().find(|(i, _)| i == id).unwrap().1.unwrap()
        };
        assert_eq!(
            due(&a.id).next,
            Some(t("2026-12-01T00:00:00Z")),
            "the first slot after creation"
        );
        assert_eq!(
            due(&b.id).next,
            Some(t("2027-01-01T00:00:00.123Z")),
            "to the millisecond"
        );
        assert!(
            !due(&c.id).timed,
            "no start and no creation time: read the record"
        );

        // Fired slots move it on.
        store
            .fire_slot(&a.id, t("2026-12-06T10:00:00Z"), vec![], vec![])
            .await
            .unwrap();
        assert_eq!(due(&a.id).next, Some(t("2026-12-06T11:00:00Z")));
        assert_eq!(due(&a.id).last_slot, Some(t("2026-12-06T10:00:00Z")));
        store
            .fire_slot(&b.id, t("2027-01-01T00:00:00.123Z"), vec![], vec![])
            .await
            .unwrap();
        assert_eq!(due(&b.id).next, None, "an `at` rule has one slot");
        assert_in_step(&store);

        // Edits: paused, deferring, another rule, renamed.
        let mut spec = a.spec.clone();
        spec.enabled = false;
        let (_, paused) = store
            .update_schedule(&a.id, spec.clone(), "2026-12-06T10:30:00.000Z".into(), "t")
            .await
            .unwrap();
        assert!(!due(&a.id).enabled);
        assert_eq!(due(&a.id).version, version(&paused.updated_at));
        spec.enabled = true;
        spec.excluded = Excluded::Defer;
        spec.rule = serde_json::from_value(serde_json::json!({"cron": "*/5 * * * *"})).unwrap();
        spec.name = "a2".into();
        store
            .update_schedule("a", spec, "2026-12-06T10:31:00.000Z".into(), "t")
            .await
            .unwrap();
        assert!(due(&a.id).defer);
        assert_eq!(due(&a.id).next, Some(t("2026-12-06T10:05:00Z")));
        assert_in_step(&store);

        // Deleted, with its entry.
        store.delete_schedule(&b.id, true, "t").await.unwrap();
        assert_in_step(&store);

        // An unreadable record deleted by an admin takes its entry along.
        let raw: TableDefinition<&str, &[u8]> = TableDefinition::new("schedules");
        let c_id = c.id.clone();
        store
            .write(move |txn| {
                txn.open_table(raw)?
                    .insert(c_id.as_str(), b"{not json".as_slice())?;
                Ok(())
            })
            .await
            .unwrap();
        store.delete_unreadable("schedules", &c.id, "t").await.unwrap();
        let (page, _) = store.schedule_due_page(None, 10).unwrap().unwrap();
        assert_eq!(
            page.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
            [a.id.clone()]
        );
        assert_in_step(&store);
    }

    #[tokio::test]
    async fn a_file_from_before_the_index_gets_it_built_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 64).unwrap();
        let hourly = serde_json::json!({"rule": {"cron": "0 * * * *"}});
        for i in 0..5 {
            store
                .insert_schedule(record(&format!("s{i}"), hourly.clone()), "t")
                .await
                .unwrap();
        }
        let broken = sundial_core::ids::new_id();
        // As a version-1 file: records, no index; one record no longer decodes.
        let raw: TableDefinition<&str, &[u8]> = TableDefinition::new("schedules");
        let id = broken.clone();
        store
            .write(move |txn| {
                txn.delete_table(SCHEDULE_DUE)?;
                txn.open_table(raw)?.insert(id.as_str(), b"[]".as_slice())?;
                txn.open_table(crate::schema::META)?
                    .insert("schema_version", "1")?;
                Ok(())
            })
            .await
            .unwrap();
        assert!(
            store.schedule_due_page(None, 10).unwrap().is_none(),
            "no index: read the records"
        );
        store.shutdown().await;
        drop(store);
        let store = Store::open(dir.path(), 64).unwrap();
        assert_eq!(store.schema_version().unwrap(), crate::SCHEMA_VERSION);
        let (page, next) = store.schedule_due_page(None, 10).unwrap().unwrap();
        assert_eq!(next, None);
        assert_eq!(page.len(), 6);
        let unreadable = page.iter().find(|(i, _)| *i == broken).unwrap().1.unwrap();
        assert!(
            !unreadable.timed,
            "an unreadable record's entry sends the reader to the record"
        );
        for (id, due) in &page {
            if *id != broken {
                assert_eq!(due.unwrap().next, Some(t("2026-12-01T00:00:00Z")));
            }
        }
    }

    #[tokio::test]
    async fn entries_computed_by_another_build_are_computed_again_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 64).unwrap();
        let hourly = serde_json::json!({"rule": {"cron": "0 * * * *"}});
        let a = store.insert_schedule(record("a", hourly), "t").await.unwrap();
        // As another build would have left it: its name in `meta`, and an entry its
        // rule code or zone data computed differently.
        let (id, stale) = (a.id.clone(), {
            let (page, _) = store.schedule_due_page(None, 10).unwrap().unwrap();
            DueEntry {
                next: Some(t("2026-12-01T00:30:00Z")),
                ..page[0].1.unwrap()
            }
        });
        store
            .write(move |txn| {
                txn.open_table(crate::schema::META)?
                    .insert(BUILT_BY, "sundial-store 0.0.1")?;
                txn.open_table(SCHEDULE_DUE)?
                    .insert(id.as_str(), stale.encode().as_slice())?;
                Ok(())
            })
            .await
            .unwrap();
        let (page, _) = store.schedule_due_page(None, 10).unwrap().unwrap();
        assert_eq!(page[0].1.unwrap().next, Some(t("2026-12-01T00:30:00Z")));
        store.shutdown().await;
        drop(store);
        let store = Store::open(dir.path(), 64).unwrap();
        assert_in_step(&store);
        let (page, _) = store.schedule_due_page(None, 10).unwrap().unwrap();
        assert_eq!(page[0].1.unwrap().next, Some(t("2026-12-01T00:00:00Z")));
        // This build's entries: nothing to do.
        assert_eq!(refresh(&store.db.get().unwrap()).unwrap(), None);
    }

    #[tokio::test]
    async fn an_index_with_an_entry_missing_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 64).unwrap();
        let hourly = serde_json::json!({"rule": {"cron": "0 * * * *"}});
        let a = store
            .insert_schedule(record("a", hourly.clone()), "t")
            .await
            .unwrap();
        store.insert_schedule(record("b", hourly), "t").await.unwrap();
        assert!(store.schedule_due_page(None, 10).unwrap().is_some());
        store.write(move |txn| remove(txn, &a.id)).await.unwrap();
        assert!(store.schedule_due_page(None, 10).unwrap().is_none());
    }

    #[test]
    fn an_entry_round_trips_and_foreign_bytes_are_refused() {
        let entry = DueEntry {
            version: version("2026-12-06T10:00:00.000Z"),
            last_slot: Some(t("2026-12-06T10:00:00Z")),
            next: Some(t("2026-12-06T11:00:00.123456789Z")),
            jitter_ms: 3_600_000,
            enabled: true,
            defer: true,
            timed: true,
        };
        assert_eq!(DueEntry::decode(&entry.encode()), Some(entry));
        let none = DueEntry {
            last_slot: None,
            next: None,
            enabled: false,
            defer: false,
            timed: false,
            ..entry
        };
        assert_eq!(DueEntry::decode(&none.encode()), Some(none));
        assert_eq!(DueEntry::decode(&entry.encode()[..40]), None, "short");
        assert_eq!(DueEntry::decode(&[0u8; 42]), None, "long");
        let mut bad = entry.encode();
        bad[40] |= 0x80;
        assert_eq!(DueEntry::decode(&bad), None, "unknown flag");
        let mut bad = entry.encode();
        bad[28..32].copy_from_slice(&2_000_000_000u32.to_le_bytes());
        assert_eq!(DueEntry::decode(&bad), None, "nanoseconds out of range");
    }

    #[test]
    fn the_version_is_fixed_across_builds() {
        // FNV-1a of the text: a changed hash would only cost a reload, but pin it.
        assert_eq!(version(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(version("a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(
            version("2026-12-06T10:00:00.000Z"),
            version("2026-12-06T10:00:00.001Z")
        );
    }
}

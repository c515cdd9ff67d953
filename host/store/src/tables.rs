//! Table definitions and JSON helpers. Keys are strings: ULIDs sort by creation time,
//! composite keys join parts with `/` (ULIDs and names never contain it).

use super::StoreError;
use chrono::{DateTime, Utc};
use redb::{Key, ReadOnlyTable, ReadableTable, Table, TableDefinition, TableHandle, TypeName, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::marker::PhantomData;
use std::ops::Bound;

/// A stored JSON record of type `T`: the value type of every record table
/// ([`crate::schema`]), so a table can only hold its own records. Its bytes are `T`'s
/// JSON, and its redb type name is that of `&[u8]`, the type the tables were created
/// with: files written before it existed open unchanged. Reading does not decode; a
/// record is decoded with [`Json::decode`], so one that no longer decodes is reported
/// (or skipped in lists), never a panic.
pub struct Json<'a, T> {
    bytes: Cow<'a, [u8]>,
    _type: PhantomData<fn() -> T>,
}

impl<'a, T> Json<'a, T> {
    /// The stored JSON text.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Some fields of the record, read into `U` (the others skipped, not built).
    pub fn decode_as<U: DeserializeOwned>(&self) -> Result<U, String> {
        decode(&self.bytes)
    }
}

impl<T: DeserializeOwned> Json<'_, T> {
    /// The record, or why it cannot be read ([`decode`]).
    pub fn decode(&self) -> Result<T, String> {
        decode(&self.bytes)
    }
}

impl<T: Serialize> Json<'static, T> {
    /// `value` as stored.
    pub fn encode(value: &T) -> Result<Json<'static, T>, serde_json::Error> {
        Ok(Json {
            bytes: Cow::Owned(serde_json::to_vec(value)?),
            _type: PhantomData,
        })
    }
}

impl<T> std::fmt::Debug for Json<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Json({})", String::from_utf8_lossy(&self.bytes))
    }
}

impl<T: 'static> Value for Json<'static, T> {
    type SelfType<'a>
        = Json<'a, T>
    where
        Self: 'a;
    type AsBytes<'a>
        = &'a [u8]
    where
        Self: 'a;

    fn fixed_width() -> Option<usize> {
        None
    }

    fn from_bytes<'a>(data: &'a [u8]) -> Json<'a, T>
    where
        Self: 'a,
    {
        Json {
            bytes: Cow::Borrowed(data),
            _type: PhantomData,
        }
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a Json<'b, T>) -> &'a [u8]
    where
        Self: 'b,
    {
        &value.bytes
    }

    fn type_name() -> TypeName {
        <&[u8] as Value>::type_name()
    }
}

/// Deepest nesting a stored record may have and still be decoded: above anything the
/// API ever stored (its input limit is `json::MAX_DEPTH`, and before that serde_json's
/// 128), low enough that decoding, encoding and dropping it never strain the stack.
pub const STORED_MAX_DEPTH: usize = 256;

/// Decode a stored record. Reading does not depend on the input limit: a record past
/// serde_json's recursion limit (128) is read again without it; only nesting deeper
/// than [`STORED_MAX_DEPTH`], measured on the bytes, is refused.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    // Nearly every record nests far less than serde_json's own limit (128): read it
    // directly. Only one that hits the limit is measured and read without it.
    match serde_json::from_slice(bytes) {
        Ok(value) => return Ok(value),
        Err(e) if !e.to_string().starts_with("recursion limit exceeded") => return Err(e.to_string()),
        Err(_) => {}
    }
    let depth = sundial_core::json::text_depth(bytes);
    if depth > STORED_MAX_DEPTH {
        return Err(format!("nested {depth} levels, more than {STORED_MAX_DEPTH}"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.disable_recursion_limit();
    let value = T::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// Decode a record met in a list, a page or a load: `None` (skipped, counted, logged
/// once) when it cannot be read, so one bad record never breaks the rest.
pub fn decode_listed<T: DeserializeOwned>(table: &str, key: &str, bytes: &[u8]) -> Option<T> {
    match decode(bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            super::unreadable::skipped(table, key, &e);
            None
        }
    }
}

/// Read a JSON value (an unreadable one is [`StoreError::Unreadable`]).
pub fn get_json<T: DeserializeOwned + 'static>(
    table: &impl ReadableTable<&'static str, Json<'static, T>>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match table.get(key)? {
        Some(v) => v
            .value()
            .decode()
            .map(Some)
            .map_err(|e| StoreError::Unreadable(format!("record {key:?} cannot be read ({e})"))),
        None => Ok(None),
    }
}

/// [`get_json`] of a record that must be there: a missing one is
/// [`StoreError::NotFound`] (`{what} {key:?} not found`).
pub fn get_existing<T: DeserializeOwned + 'static>(
    table: &impl ReadableTable<&'static str, Json<'static, T>>,
    what: &str,
    key: &str,
) -> Result<T, StoreError> {
    get_json(table, key)?.ok_or_else(|| StoreError::NotFound(format!("{what} {key:?} not found")))
}

/// [`get_json`] for a record met in a list or a load of `table`: an unreadable one is
/// skipped (`None`) like a missing one.
pub fn get_listed<T: DeserializeOwned + 'static>(
    table: &impl ReadableTable<&'static str, Json<'static, T>>,
    name: &str,
    key: &str,
) -> Result<Option<T>, StoreError> {
    Ok(match table.get(key)? {
        Some(v) => decode_listed(name, key, v.value().bytes()),
        None => None,
    })
}

/// Write a JSON value.
pub fn put_json<T: Serialize + 'static>(
    table: &mut Table<&'static str, Json<'static, T>>,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    table.insert(key, encode_record(key, value)?)?;
    Ok(())
}

/// `value` encoded for `put_encoded`: done by the caller before its write transaction,
/// so the single writer thread only copies the bytes into the B-tree.
pub fn encode_record<T: Serialize>(key: &str, value: &T) -> Result<Json<'static, T>, StoreError> {
    Json::encode(value).map_err(|e| StoreError::Storage(format!("encode {key:?}: {e}")))
}

/// Write a value encoded earlier with [`encode_record`].
pub fn put_encoded<T: 'static>(
    table: &mut Table<&'static str, Json<'static, T>>,
    key: &str,
    json: &Json<'static, T>,
) -> Result<(), StoreError> {
    table.insert(key, json)?;
    Ok(())
}

/// A page of records and the cursor to continue after, when more remain.
pub type Paged<T> = (Vec<T>, Option<String>);

/// The keys after `after` (every key when `None`), for a range scan in key order.
pub fn keys_after(after: Option<&str>) -> (Bound<&str>, Bound<&str>) {
    (after.map_or(Bound::Unbounded, Bound::Excluded), Bound::Unbounded)
}

/// The keys before `before` (every key when `None`), for a range scan newest first.
pub fn keys_before(before: Option<&str>) -> (Bound<&str>, Bound<&str>) {
    (Bound::Unbounded, before.map_or(Bound::Unbounded, Bound::Excluded))
}

/// Up to `limit` readable values of the JSON table `name` with keys after `after`
/// (exclusive), in key order, and the key to continue after when more remain.
/// Unreadable records are skipped ([`decode_listed`]).
pub fn page_json<T: DeserializeOwned + 'static>(
    table: &impl ReadableTable<&'static str, Json<'static, T>>,
    name: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Paged<T>, StoreError> {
    let mut out = Vec::new();
    let mut last = None;
    for entry in table.range::<&str>(keys_after(after))? {
        let (k, v) = entry?;
        if out.len() == limit {
            return Ok((out, last));
        }
        if let Some(item) = decode_listed(name, k.value(), v.value().bytes()) {
            out.push(item);
        }
        last = Some(k.value().to_string());
    }
    Ok((out, None))
}

/// What a filtered scan does with a record it meets.
pub enum Scan {
    /// Put it in the page.
    Take,
    /// Pass over it.
    Skip,
    /// End the scan: nothing further can match.
    Stop,
}

impl Scan {
    /// [`Scan::Take`] when `keep`, else [`Scan::Skip`].
    pub fn take_if(keep: bool) -> Scan {
        if keep { Scan::Take } else { Scan::Skip }
    }
}

/// A page filled newest first: up to `limit` items, and as the cursor the key of the
/// last one when one more was found after it.
pub struct Pager<T> {
    page: Vec<T>,
    limit: usize,
    last: Option<String>,
}

impl<T> Pager<T> {
    /// An empty page of at most `limit` items.
    pub fn new(limit: usize) -> Pager<T> {
        Pager {
            page: Vec::new(),
            limit,
            last: None,
        }
    }

    /// Add `item`, listed under `key`; true once the page is full and more remain.
    pub fn push(&mut self, key: &str, item: T) -> bool {
        self.page.push(item);
        if self.page.len() == self.limit {
            self.last = Some(key.to_string());
        }
        self.page.len() > self.limit
    }

    /// The page and the cursor for the next one.
    pub fn finish(mut self) -> Paged<T> {
        if self.page.len() > self.limit {
            self.page.truncate(self.limit);
            (self.page, self.last)
        } else {
            (self.page, None)
        }
    }
}

/// Up to `limit` readable values of the JSON table `name` with keys before `cursor`,
/// newest (highest key) first, that `scan` takes, and the key of the last one as the
/// cursor when more remain. Unreadable records are skipped ([`decode_listed`]).
pub fn newest_first<T: DeserializeOwned + 'static>(
    table: &impl ReadableTable<&'static str, Json<'static, T>>,
    name: &str,
    cursor: Option<&str>,
    limit: usize,
    mut scan: impl FnMut(&T) -> Scan,
) -> Result<Paged<T>, StoreError> {
    let mut pager = Pager::new(limit);
    for entry in table.range::<&str>(keys_before(cursor))?.rev() {
        let (k, v) = entry?;
        let Some(item) = decode_listed(name, k.value(), v.value().bytes()) else {
            continue;
        };
        match scan(&item) {
            Scan::Take if pager.push(k.value(), item) => break,
            Scan::Take | Scan::Skip => {}
            Scan::Stop => break,
        }
    }
    Ok(pager.finish())
}

/// What `pick` makes of each record of `table` that decodes, in key order, where it
/// makes something; a record that does not decode is passed over.
pub fn pick_json<T: DeserializeOwned + 'static, R>(
    table: &impl ReadableTable<&'static str, Json<'static, T>>,
    mut pick: impl FnMut(T) -> Option<R>,
) -> Result<Vec<R>, StoreError> {
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (_, v) = entry?;
        if let Some(item) = v.value().decode().ok().and_then(&mut pick) {
            out.push(item);
        }
    }
    Ok(out)
}

/// Every readable value of the JSON table `name`, in key order (unreadable ones skipped).
pub fn all_json<T: DeserializeOwned + 'static>(
    table: &impl ReadableTable<&'static str, Json<'static, T>>,
    name: &str,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        if let Some(item) = decode_listed(name, k.value(), v.value().bytes()) {
            out.push(item);
        }
    }
    Ok(out)
}

/// The key of `id` in a queue ordered by due time: the due time in milliseconds as 16
/// hex digits (so keys sort by time), `/`, the id.
pub fn due_key(due: DateTime<Utc>, id: &str) -> String {
    format!("{:016x}/{id}", due.timestamp_millis().max(0))
}

/// The end (exclusive) of the keys of a due-time queue that are due at `now`.
pub fn due_by(now: DateTime<Utc>) -> String {
    format!("{:016x}/~", now.timestamp_millis().max(0))
}

/// The id part of a due-time queue key.
pub fn due_id(key: &str) -> &str {
    key.split('/').nth(1).unwrap_or_default()
}

/// When the first entry of a due-time queue is due (`what` names the queue in errors).
pub fn first_due(
    queue: &impl ReadableTable<&'static str, ()>,
    what: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let Some((k, _)) = queue.first()? else {
        return Ok(None);
    };
    let key = k.value();
    let ms = i64::from_str_radix(key.split('/').next().unwrap_or_default(), 16)
        .map_err(|_| StoreError::Storage(format!("corrupt {what} key {key:?}")))?;
    Ok(DateTime::from_timestamp_millis(ms))
}

/// Reads of one table in a fresh snapshot, where a table not created yet reads empty.
impl crate::Store {
    /// `read` of the table `def`, or the empty answer (`R::default()`: nothing, no
    /// items, zero) when the table does not exist yet.
    pub(crate) fn read_table<K: Key + 'static, V: Value + 'static, R: Default>(
        &self,
        def: TableDefinition<K, V>,
        read: impl FnOnce(&ReadOnlyTable<K, V>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let txn = self.read()?;
        let Ok(table) = txn.open_table(def) else {
            return Ok(R::default());
        };
        read(&table)
    }

    /// The record `key` of the JSON table `def` ([`get_json`]).
    pub(crate) fn get_record<T: DeserializeOwned + 'static>(
        &self,
        def: TableDefinition<&'static str, Json<'static, T>>,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        self.read_table(def, |table| get_json(table, key))
    }

    /// Every readable record of the JSON table `def`, in key order ([`all_json`]).
    pub(crate) fn all_records<T: DeserializeOwned + 'static>(
        &self,
        def: TableDefinition<&'static str, Json<'static, T>>,
    ) -> Result<Vec<T>, StoreError> {
        self.read_table(def, |table| all_json(table, def.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{Database, ReadableDatabase, TableDefinition};

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Rec {
        name: String,
    }

    /// A table written as raw bytes (as every file before `Json<T>` was) opens as
    /// `Json<T>` and decodes (a record that does not is `Unreadable`, not a panic); one
    /// written as `Json<T>` reads back as the same bytes. (A `Json<Rec>` table takes
    /// only `Rec`s: inserting another type does not compile.)
    #[test]
    fn json_tables_are_the_byte_tables_files_already_hold() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let raw: TableDefinition<&str, &[u8]> = TableDefinition::new("recs");
        let typed: TableDefinition<&str, Json<Rec>> = TableDefinition::new("recs");
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(raw).unwrap();
            t.insert("a", br#"{"name":"old"}"#.as_slice()).unwrap();
            t.insert("bad", br#""not a record""#.as_slice()).unwrap();
        }
        txn.commit().unwrap();

        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(typed).unwrap();
            assert_eq!(get_json(&t, "a").unwrap(), Some(Rec { name: "old".into() }));
            put_json(&mut t, "b", &Rec { name: "new".into() }).unwrap();
            let err = get_json::<Rec>(&t, "bad").unwrap_err();
            assert!(matches!(err, StoreError::Unreadable(_)), "{err}");
        }
        txn.commit().unwrap();

        let read = db.begin_read().unwrap();
        let t = read.open_table(raw).unwrap();
        assert_eq!(t.get("b").unwrap().unwrap().value(), br#"{"name":"new"}"#);
    }

    /// Pages newest first end at `limit` with the last key as the cursor, carry on
    /// before it, skip what the scan skips and stop where it stops.
    #[test]
    fn newest_first_pages_back_from_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let recs: TableDefinition<&str, Json<Rec>> = TableDefinition::new("recs");
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(recs).unwrap();
            for name in ["a", "b", "c", "d", "e"] {
                put_json(&mut t, name, &Rec { name: name.into() }).unwrap();
            }
        }
        txn.commit().unwrap();
        let read = db.begin_read().unwrap();
        let t = read.open_table(recs).unwrap();
        let page = |cursor, limit, scan: fn(&Rec) -> Scan| {
            let (items, next) = newest_first(&t, "recs", cursor, limit, scan).unwrap();
            let names: Vec<String> = items.into_iter().map(|r| r.name).collect();
            (names.join(""), next)
        };
        assert_eq!(page(None, 2, |_| Scan::Take), ("ed".into(), Some("d".into())));
        assert_eq!(
            page(Some("d"), 2, |_| Scan::Take),
            ("cb".into(), Some("b".into()))
        );
        assert_eq!(page(Some("b"), 2, |_| Scan::Take), ("a".into(), None));
        assert_eq!(page(None, 5, |_| Scan::Take), ("edcba".into(), None));
        let odd = |r: &Rec| Scan::take_if(r.name != "d" && r.name != "b");
        assert_eq!(page(None, 2, odd), ("ec".into(), Some("c".into())));
        let until_b = |r: &Rec| if r.name == "b" { Scan::Stop } else { Scan::Take };
        assert_eq!(page(None, 10, until_b), ("edc".into(), None));
    }
}

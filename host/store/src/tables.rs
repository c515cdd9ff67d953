//! Table definitions and JSON helpers. Keys are strings: ULIDs sort by creation time,
//! composite keys join parts with `/` (ULIDs and names never contain it).

use super::StoreError;
use redb::{ReadableTable, Table, TypeName, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::marker::PhantomData;

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
    table.insert(
        key,
        Json::encode(value).map_err(|e| StoreError::Storage(format!("encode {key:?}: {e}")))?,
    )?;
    Ok(())
}

/// Up to `limit` readable values of the JSON table `name` with keys after `after`
/// (exclusive), in key order, and the key to continue after when more remain.
/// Unreadable records are skipped ([`decode_listed`]).
pub fn page_json<T: DeserializeOwned + 'static>(
    table: &impl ReadableTable<&'static str, Json<'static, T>>,
    name: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), StoreError> {
    let mut out = Vec::new();
    let range = match after {
        Some(a) => table.range::<&str>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))?,
        None => table.range::<&str>(..)?,
    };
    let mut last = None;
    for entry in range {
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
}

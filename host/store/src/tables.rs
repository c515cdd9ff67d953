//! Table definitions and JSON helpers. Keys are strings: ULIDs sort by creation time,
//! composite keys join parts with `/` (ULIDs and names never contain it).

use super::StoreError;
use redb::{ReadableTable, Table};
use serde::Serialize;
use serde::de::DeserializeOwned;

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
pub fn get_json<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match table.get(key)? {
        Some(v) => decode(v.value())
            .map(Some)
            .map_err(|e| StoreError::Unreadable(format!("record {key:?} cannot be read ({e})"))),
        None => Ok(None),
    }
}

/// [`get_json`] for a record met in a list or a load of `table`: an unreadable one is
/// skipped (`None`) like a missing one.
pub fn get_listed<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
    key: &str,
) -> Result<Option<T>, StoreError> {
    Ok(match table.get(key)? {
        Some(v) => decode_listed(name, key, v.value()),
        None => None,
    })
}

/// Write a JSON value.
pub fn put_json<T: Serialize>(
    table: &mut Table<&'static str, &'static [u8]>,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Storage(format!("encode {key:?}: {e}")))?;
    table.insert(key, bytes.as_slice())?;
    Ok(())
}

/// Up to `limit` readable values of the JSON table `name` with keys after `after`
/// (exclusive), in key order, and the key to continue after when more remain.
/// Unreadable records are skipped ([`decode_listed`]).
pub fn page_json<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
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
        if let Some(item) = decode_listed(name, k.value(), v.value()) {
            out.push(item);
        }
        last = Some(k.value().to_string());
    }
    Ok((out, None))
}

/// Every readable value of the JSON table `name`, in key order (unreadable ones skipped).
pub fn all_json<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        if let Some(item) = decode_listed(name, k.value(), v.value()) {
            out.push(item);
        }
    }
    Ok(out)
}

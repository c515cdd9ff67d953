//! The one JSON parser for everything a caller or a plugin sends (pure): request bodies,
//! CloudEvents, plugin output and emitted event data. Stricter than `serde_json`'s
//! default in two ways:
//!
//! - **Depth**: arrays and objects nest at most [`MAX_DEPTH`] (64) levels. Whatever is
//!   accepted is then stored wrapped a few levels deeper and still reads back below
//!   `serde_json`'s own recursion limit (128), so no accepted value can make a stored
//!   record unreadable.
//! - **Duplicate keys**: an object naming a key twice is refused, naming the key and
//!   where it is (`serde_json` would keep the last value silently).

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::fmt;

/// Most levels of nested arrays and objects in any JSON Sundial accepts.
pub const MAX_DEPTH: usize = 64;

/// Parse `bytes` as one JSON value, refusing nesting deeper than [`MAX_DEPTH`] and
/// duplicate keys. The error names the path (`data.items[3]`) where it happened.
pub fn parse(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    // Most input is valid: parse it without keeping the path, and only when that fails
    // parse again keeping it, for an error that says where. Both make the same checks,
    // so the second parse fails too, with the error that names the place.
    if let Ok(value) = parse_with(bytes, Unplaced) {
        return Ok(value);
    }
    let path = RefCell::new(Vec::new());
    parse_with(bytes, &path)
}

fn parse_with<W: Where>(bytes: &[u8], path: W) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Checked { depth: 0, path }.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// [`parse`] for text.
pub fn parse_str(text: &str) -> Result<Value, serde_json::Error> {
    parse(text.as_bytes())
}

/// Whether `value` encodes to at most `limit` bytes of compact JSON text, found without
/// building the text (the count stops at the first byte past the limit).
pub fn fits(value: &Value, limit: usize) -> bool {
    struct Count {
        left: usize,
    }
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if buf.len() > self.left {
                self.left = 0;
                return Err(std::io::Error::other("over the limit"));
            }
            self.left -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(&mut Count { left: limit }, value).is_ok()
}

/// How deep `value` nests (a scalar is 0, `[]` and `{}` are 1).
pub fn depth(value: &Value) -> usize {
    // Iterative, so a value nested deeper than the stack allows is still measured.
    let mut deepest = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(items) => {
                deepest = deepest.max(d + 1);
                stack.extend(items.iter().map(|i| (i, d + 1)));
            }
            Value::Object(map) => {
                deepest = deepest.max(d + 1);
                stack.extend(map.values().map(|i| (i, d + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// How deep the JSON text `bytes` nests, counted on the text itself (brackets outside
/// strings), without parsing it: a check that costs no stack whatever the input.
pub fn text_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Refuse `value` when it nests deeper than [`MAX_DEPTH`] (for values that were not
/// parsed by [`parse`], such as those built in the host).
pub fn check_depth(value: &Value) -> Result<(), crate::Invalid> {
    match depth(value) {
        d if d > MAX_DEPTH => Err(format!("nested {d} levels deep; at most {MAX_DEPTH} are allowed").into()),
        _ => Ok(()),
    }
}

/// One step of the path to the value being parsed. Kept without formatting (a key is
/// moved in and out, an index is a number), so a valid document costs no allocation
/// for it; it is rendered only for an error.
enum Step {
    Index(usize),
    Key(String),
}

/// Where the value being parsed is, for errors: the path itself (`&RefCell<Vec<Step>>`),
/// or [`Unplaced`], which keeps nothing and costs nothing.
trait Where: Copy {
    /// `f` parses the element at `index` of the current array.
    fn index<R>(self, index: usize, f: impl FnOnce() -> R) -> R;
    /// `f` parses the value of `key` in the current object; the key is given back.
    fn key<R>(self, key: String, f: impl FnOnce() -> R) -> (String, R);
    /// The path, rendered.
    fn at(self) -> String;
}

/// No path kept: the first parse, of input that is most likely valid.
#[derive(Clone, Copy)]
struct Unplaced;

impl Where for Unplaced {
    fn index<R>(self, _: usize, f: impl FnOnce() -> R) -> R {
        f()
    }

    fn key<R>(self, key: String, f: impl FnOnce() -> R) -> (String, R) {
        (key, f())
    }

    fn at(self) -> String {
        String::new()
    }
}

impl Where for &RefCell<Vec<Step>> {
    fn index<R>(self, index: usize, f: impl FnOnce() -> R) -> R {
        self.borrow_mut().push(Step::Index(index));
        let r = f();
        self.borrow_mut().pop();
        r
    }

    fn key<R>(self, key: String, f: impl FnOnce() -> R) -> (String, R) {
        // The key waits in the path while its value is parsed, then goes back.
        self.borrow_mut().push(Step::Key(key));
        let r = f();
        let Some(Step::Key(key)) = self.borrow_mut().pop() else {
            unreachable!("the path holds the key pushed above");
        };
        (key, r)
    }

    fn at(self) -> String {
        let path = self.borrow();
        if path.is_empty() {
            return "the top level".into();
        }
        let mut text = String::new();
        for step in path.iter() {
            match step {
                Step::Index(i) => text.push_str(&format!("[{i}]")),
                Step::Key(k) if text.is_empty() => text.push_str(k),
                Step::Key(k) => {
                    text.push('.');
                    text.push_str(k);
                }
            }
        }
        text
    }
}

struct Checked<W> {
    depth: usize,
    path: W,
}

impl<W: Where> Checked<W> {
    fn deeper<E: serde::de::Error>(&self) -> Result<usize, E> {
        let next = self.depth + 1;
        if next > MAX_DEPTH {
            return Err(E::custom(format!(
                "nested deeper than {MAX_DEPTH} levels at {}",
                self.path.at()
            )));
        }
        Ok(next)
    }
}

impl<'de, W: Where> DeserializeSeed<'de> for Checked<W> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, W: Where> Visitor<'de> for Checked<W> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self.deeper()?;
        let mut items = Vec::new();
        loop {
            let next = self.path.index(items.len(), || {
                seq.next_element_seed(Checked {
                    depth,
                    path: self.path,
                })
            });
            match next? {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let depth = self.deeper()?;
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(A::Error::custom(format!(
                    "duplicate key {key:?} at {}",
                    self.path.at()
                )));
            }
            let (key, value) = self.path.key(key, || {
                access.next_value_seed(Checked {
                    depth,
                    path: self.path,
                })
            });
            map.insert(key, value?);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn fits_agrees_with_the_encoded_length_at_the_boundary() {
        for value in [
            serde_json::json!({"a": [1, "two", {"three": null}], "é": "\u{1F600}"}),
            serde_json::json!("x".repeat(100)),
            serde_json::json!(null),
        ] {
            let len = serde_json::to_string(&value).unwrap().len();
            assert!(fits(&value, len), "{value} fits in its own length {len}");
            assert!(fits(&value, len + 1), "{value}");
            assert!(!fits(&value, len - 1), "{value} does not fit in {}", len - 1);
            assert!(!fits(&value, 0), "{value}");
        }
    }

    #[test]
    fn values_parse_as_serde_json_parses_them() {
        for text in [
            r#"{"a": [1, 2.5, -3, "x", true, null, {"b": {}}], "c": 18446744073709551615}"#,
            "[]",
            "\"é\\u0041\"",
            "0",
        ] {
            assert_eq!(
                parse_str(text).unwrap(),
                serde_json::from_str::<Value>(text).unwrap(),
                "{text}"
            );
        }
        assert!(parse_str("{\"a\": 1} trailing").is_err());
        assert!(parse_str("{\"a\": }").is_err());
    }

    #[test]
    fn nesting_is_limited_to_max_depth() {
        assert_eq!(depth(&parse_str(&nested(MAX_DEPTH)).unwrap()), MAX_DEPTH);
        let err = parse_str(&nested(MAX_DEPTH + 1)).unwrap_err().to_string();
        assert!(err.starts_with("nested deeper than 64 levels at [0][0]"), "{err}");
        let deep_object = format!(
            "{}1{}",
            "{\"k\":".repeat(MAX_DEPTH + 1),
            "}".repeat(MAX_DEPTH + 1)
        );
        let err = parse_str(&deep_object).unwrap_err().to_string();
        assert!(err.contains("nested deeper than 64 levels at k.k."), "{err}");
        // Deeper than serde_json's own limit, and much deeper: a clear error, no crash.
        assert!(parse_str(&nested(200)).is_err());
        assert!(parse_str(&nested(100_000)).is_err());
        // What the limit lets in stays readable with serde_json's default limit even
        // when stored three levels deeper.
        let wrapped = format!("{{\"a\":{{\"b\":{{\"c\":{}}}}}}}", nested(MAX_DEPTH));
        assert!(serde_json::from_str::<Value>(&wrapped).is_ok());
        let deep = serde_json::from_str::<Value>(&nested(100)).unwrap();
        assert_eq!(depth(&deep), 100);
        assert!(check_depth(&deep).unwrap_err().contains("100 levels"));
        assert!(check_depth(&parse_str(&nested(64)).unwrap()).is_ok());
    }

    #[test]
    fn text_depth_counts_brackets_outside_strings() {
        assert_eq!(text_depth(b"1"), 0);
        assert_eq!(text_depth(nested(100).as_bytes()), 100);
        assert_eq!(text_depth(br#"{"a": "[[[{{{", "b": [1, {"c": "\"]]]"}]}"#), 3);
        assert_eq!(text_depth(br#"["\\", [1]]"#), 2);
        assert_eq!(text_depth(nested(1_000_000).as_bytes()), 1_000_000);
    }

    #[test]
    fn the_first_parse_and_the_placed_one_accept_exactly_the_same_input() {
        let deep_object = |n: usize| format!("{}1{}", "{\"k\":".repeat(n), "}".repeat(n));
        let cases = [
            r#"{"a": 1, "b": [true, null, 2.5, "x"], "c": {"d": {}}}"#.to_string(),
            r#"{"a": 1, "a": 2}"#.into(),
            r#"[{"x": 1}, {"x": 2, "y": {"x": 3, "x": 4}}]"#.into(),
            r#"{"a": 1} trailing"#.into(),
            r#"{"a": }"#.into(),
            "\"\\u00e9t\\u00e9\"".into(),
            "-0.0e+3".into(),
            String::new(),
            nested(MAX_DEPTH),
            nested(MAX_DEPTH + 1),
            deep_object(MAX_DEPTH),
            deep_object(MAX_DEPTH + 1),
        ];
        for case in cases {
            let fast = parse_with(case.as_bytes(), Unplaced);
            let placed = parse_with(case.as_bytes(), &RefCell::new(Vec::new()));
            match (&fast, &placed) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{case}"),
                (Err(_), Err(_)) => {}
                _ => panic!("the two parses disagree on {case:?}: {fast:?} / {placed:?}"),
            }
            // And `parse` gives what the placed parse gives, error text included.
            assert_eq!(
                parse(case.as_bytes()).map_err(|e| e.to_string()),
                placed.map_err(|e| e.to_string()),
                "{case}"
            );
        }
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_place() {
        let err = parse_str(r#"{"name": "a", "name": "b"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("duplicate key \"name\" at the top level"),
            "{err}"
        );
        let err = parse_str(r#"{"data": {"items": [{"x": 1}, {"x": 2, "x": 3}]}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("duplicate key \"x\" at data.items[1]"), "{err}");
        // The same key in different objects is fine.
        assert!(parse_str(r#"{"a": {"x": 1}, "b": {"x": 1}}"#).is_ok());
    }
}

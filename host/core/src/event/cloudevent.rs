//! CloudEvents 1.0: parsing and validating the JSON event format (structured mode) and
//! the HTTP binary mode (`ce-*` headers), with errors that name the attribute (pure).

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Largest event accepted (its JSON encoding), in bytes: 256 KiB by default.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 256 * 1024;

/// A CloudEvent as Sundial keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CloudEvent {
    /// `specversion`: always `1.0`.
    pub specversion: String,
    /// `id`: unique together with `source`.
    pub id: String,
    /// `source`: a URI-reference naming the producer.
    pub source: String,
    /// `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `subject`: what the event is about, inside the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// `time`, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// `datacontenttype`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacontenttype: Option<String>,
    /// `dataschema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataschema: Option<String>,
    /// `data` when it is JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// `data_base64` when the data is not JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_base64: Option<String>,
    /// Extension attributes (lower-case alphanumeric names; string, number or boolean).
    #[serde(default, flatten)]
    pub extensions: Map<String, Value>,
}

const CONTEXT: &[&str] = &[
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
    "data",
    "data_base64",
];

/// A content type's essence: the media type without parameters, lower-case
/// (`Application/JSON; charset=utf-8` is `application/json`).
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Whether a content type says the data is JSON (`application/json`, `text/json`,
/// `*/*+json`, with or without parameters). Absent means JSON in the JSON format.
pub fn is_json_type(content_type: &str) -> bool {
    let essence = essence(content_type);
    essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
}

fn string_attr(obj: &Map<String, Value>, name: &str, required: bool) -> Result<Option<String>, String> {
    match obj.get(name) {
        None | Some(Value::Null) if required => Err(format!("{name}: required")),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Err(format!("{name}: must not be empty")),
        Some(Value::String(s)) => {
            check_chars(name, s)?;
            Ok(Some(s.clone()))
        }
        Some(other) => Err(format!("{name}: expected a string, got {}", kind_of(other))),
    }
}

/// CloudEvents 1.0, "Type System": a String attribute value must not contain the control
/// characters U+0000–U+001F and U+007F–U+009F, nor Unicode noncharacters.
fn check_chars(name: &str, s: &str) -> Result<(), String> {
    let bad = |c: char| {
        let n = c as u32;
        n <= 0x1f || (0x7f..=0x9f).contains(&n) || (0xfdd0..=0xfdef).contains(&n) || (n & 0xfffe) == 0xfffe
    };
    match s.char_indices().find(|(_, c)| bad(*c)) {
        Some((i, c)) => Err(format!(
            "{name}: character U+{:04X} at byte {i} is not allowed in an attribute (CloudEvents forbids control characters and noncharacters)",
            c as u32
        )),
        None => Ok(()),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_extension_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 20
        || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(format!(
            "{name}: extension attribute names are 1-20 lower-case letters or digits"
        ));
    }
    Ok(())
}

fn check_time(t: &str) -> Result<(), String> {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|_| ())
        .map_err(|e| format!("time: {t:?} is not an RFC 3339 time ({e})"))
}

/// Parse one event in the CloudEvents JSON format.
pub fn parse_structured(value: &Value) -> Result<CloudEvent, crate::Invalid> {
    let Value::Object(obj) = value else {
        return Err(format!("expected a JSON object, got {}", kind_of(value)).into());
    };
    match obj.get("specversion") {
        Some(Value::String(v)) if v == "1.0" => {}
        Some(Value::String(v)) => {
            return Err(format!("specversion: {v:?} is not supported (only \"1.0\")").into());
        }
        Some(other) => return Err(format!("specversion: expected \"1.0\", got {}", kind_of(other)).into()),
        None => return Err("specversion: required (\"1.0\")".into()),
    }
    let id = string_attr(obj, "id", true)?.unwrap_or_default();
    let source = string_attr(obj, "source", true)?.unwrap_or_default();
    let kind = string_attr(obj, "type", true)?.unwrap_or_default();
    let subject = string_attr(obj, "subject", false)?;
    let time = string_attr(obj, "time", false)?;
    if let Some(t) = &time {
        check_time(t)?;
    }
    let datacontenttype = string_attr(obj, "datacontenttype", false)?;
    let dataschema = string_attr(obj, "dataschema", false)?;
    let json_declared = datacontenttype.as_deref().is_none_or(is_json_type);
    let mut data = obj.get("data").filter(|v| !v.is_null()).cloned();
    let mut data_base64 = string_attr(obj, "data_base64", false)?;
    if data.is_some() && data_base64.is_some() {
        return Err("data and data_base64: give one, not both".into());
    }
    if let Some(b64) = &data_base64 {
        // Padding is required; unused bits in the last symbol are not (RFC 4648 lets
        // decoders ignore them, and JSON Schema patterns for base64 allow them).
        const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
        );
        let bytes = LENIENT
            .decode(b64)
            .map_err(|e| format!("data_base64: not valid base64 ({e})"))?;
        if json_declared && datacontenttype.is_some() {
            // Declared JSON: keep it as JSON so filters can look inside.
            data =
                Some(crate::json::parse(&bytes).map_err(|e| {
                    format!("data_base64: declared {datacontenttype:?} but is not JSON ({e})")
                })?);
            data_base64 = None;
        }
    }
    let mut extensions = Map::new();
    for (name, v) in obj {
        if CONTEXT.contains(&name.as_str()) {
            continue;
        }
        check_extension_name(name)?;
        match v {
            Value::Null => {}
            Value::String(s) => {
                check_chars(name, s)?;
                extensions.insert(name.clone(), v.clone());
            }
            Value::Bool(_) | Value::Number(_) => {
                extensions.insert(name.clone(), v.clone());
            }
            other => {
                return Err(format!(
                    "{name}: extension values are strings, numbers or booleans, got {}",
                    kind_of(other)
                )
                .into());
            }
        }
    }
    Ok(CloudEvent {
        specversion: "1.0".into(),
        id,
        source,
        kind,
        subject,
        time,
        datacontenttype,
        dataschema,
        data,
        data_base64,
        extensions,
    })
}

/// Parse an event in HTTP binary mode: attributes from `ce-*` headers (`headers` are
/// lower-case name/value pairs), data from the body typed by `content-type`.
pub fn parse_binary(headers: &[(String, String)], body: &[u8]) -> Result<CloudEvent, crate::Invalid> {
    let mut obj = Map::new();
    let mut content_type = None;
    for (name, value) in headers {
        if name == "content-type" {
            content_type = Some(value.clone());
        } else if let Some(attr) = name.strip_prefix("ce-") {
            if attr == "data" || attr == "data_base64" || attr == "datacontenttype" {
                return Err(format!("{name}: not an attribute header").into());
            }
            let decoded = percent_decode(value).map_err(|e| format!("{name}: {e}"))?;
            obj.insert(attr.to_string(), Value::String(decoded));
        }
    }
    if let Some(ct) = &content_type {
        obj.insert("datacontenttype".into(), Value::String(ct.clone()));
    }
    let mut event = parse_structured(&Value::Object(obj))?;
    if !body.is_empty() {
        if content_type.as_deref().is_none_or(is_json_type) {
            event.data = Some(crate::json::parse(body).map_err(|e| {
                format!(
                    "data: declared {:?} but the body is not JSON ({e})",
                    content_type.as_deref().unwrap_or("application/json")
                )
            })?);
        } else {
            event.data_base64 = Some(base64::engine::general_purpose::STANDARD.encode(body));
        }
    }
    Ok(event)
}

/// Decode `%XX` escapes of a binary-mode header value (CloudEvents HTTP binding 3.1.3.2).
fn percent_decode(v: &str) -> Result<String, String> {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = v.get(i + 1..i + 3).ok_or("truncated %-escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad %-escape %{hex}"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 after %-decoding".to_string())
}

impl CloudEvent {
    /// The event's JSON encoding (the JSON format), for size checks and storage.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(v: Value) -> CloudEvent {
        parse_structured(&v).unwrap()
    }

    fn err(v: Value) -> String {
        parse_structured(&v).unwrap_err().to_string()
    }

    #[test]
    fn a_full_event_round_trips() {
        let v = json!({"specversion": "1.0", "id": "1", "source": "/crm", "type": "user.created",
            "subject": "alice", "time": "2026-11-27T10:00:00Z", "datacontenttype": "application/json",
            "data": {"plan": "pro"}, "tenant": "acme", "priority": 3});
        let e = ok(v.clone());
        assert_eq!(e.kind, "user.created");
        assert_eq!(e.extensions["tenant"], "acme");
        assert_eq!(e.to_json(), v);
    }

    #[test]
    fn bad_events_name_the_attribute() {
        let base = json!({"specversion": "1.0", "id": "1", "source": "/s", "type": "t"});
        let with = |k: &str, v: Value| {
            let mut e = base.clone();
            e[k] = v;
            e
        };
        let without = |k: &str| {
            let mut e = base.clone();
            e.as_object_mut().unwrap().remove(k);
            e
        };
        assert!(err(without("type")).starts_with("type: required"));
        assert!(err(without("id")).starts_with("id: required"));
        assert!(err(without("source")).starts_with("source: required"));
        assert!(err(without("specversion")).starts_with("specversion: required"));
        assert!(err(with("specversion", json!("0.3"))).contains("\"0.3\" is not supported"));
        assert!(err(with("type", json!(""))).starts_with("type: must not be empty"));
        assert!(err(with("id", json!(5))).starts_with("id: expected a string, got a number"));
        assert!(err(with("time", json!("yesterday"))).starts_with("time:"));
        assert!(err(with("Bad-Name", json!("x"))).contains("lower-case"));
        assert!(err(with("nested", json!({"a": 1}))).contains("strings, numbers or booleans"));
        let both = with("data", json!(1));
        let both = {
            let mut b = both;
            b["data_base64"] = json!("AA==");
            b
        };
        assert!(err(both).contains("not both"));
        let mut declared = with("datacontenttype", json!("application/json"));
        declared["data_base64"] = json!(base64::engine::general_purpose::STANDARD.encode("not json"));
        assert!(err(declared).contains("is not JSON"));
        assert!(err(json!([1])).contains("expected a JSON object"));
        // Control characters and noncharacters, in every string attribute and extension.
        for attr in ["type", "id", "source", "subject", "dataschema", "traceparent"] {
            for bad in [
                "a\u{0}b",
                "esc\u{1b}[31m",
                "tab\tx",
                "nl\n",
                "del\u{7f}",
                "c1\u{85}",
                "non\u{fffe}",
                "non\u{fdd0}",
            ] {
                let e = err(with(attr, json!(bad)));
                assert!(
                    e.starts_with(&format!("{attr}: character U+")),
                    "{attr} {bad:?}: {e}"
                );
            }
        }
        assert!(err(with("subject", json!("x\u{1b}"))).contains("U+001B at byte 1"));
        // Ordinary Unicode passes.
        assert!(parse_structured(&with("subject", json!("Grüße, 世界 🦀"))).is_ok());
    }

    #[test]
    fn binary_mode_reads_headers_and_body() {
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let headers = h(&[
            ("ce-specversion", "1.0"),
            ("ce-id", "42"),
            ("ce-source", "/sensors"),
            ("ce-type", "temp.read"),
            ("ce-subject", "room%2012"),
            ("content-type", "application/json"),
        ]);
        let e = parse_binary(&headers, br#"{"c": 21.5}"#).unwrap();
        assert_eq!(
            (e.subject.as_deref(), &e.data),
            (Some("room 12"), &Some(json!({"c": 21.5})))
        );
        let bad = parse_binary(&headers, b"{nope").unwrap_err();
        assert!(bad.starts_with("data: declared \"application/json\""), "{bad}");
        let mut text = headers.clone();
        text[5].1 = "text/plain".into();
        let e = parse_binary(&text, b"hello").unwrap();
        assert_eq!(e.data_base64.as_deref(), Some("aGVsbG8="));
        assert!(
            parse_binary(&headers[1..], b"")
                .unwrap_err()
                .starts_with("specversion")
        );
    }

    #[test]
    fn base64_data_with_unused_trailing_bits_is_accepted_padding_is_not_optional() {
        let base = json!({"specversion": "1.0", "id": "1", "source": "/s", "type": "t"});
        let with = |b64: &str| {
            let mut v = base.clone();
            v["data_base64"] = json!(b64);
            v
        };
        // "YR==" carries bits the canonical "YQ==" leaves zero: both are "a".
        for b64 in ["YQ==", "YR=="] {
            assert_eq!(ok(with(b64)).data_base64.as_deref(), Some(b64));
        }
        assert!(parse_structured(&with("YQ")).is_err(), "padding is required");
        assert!(parse_structured(&with("Y!==")).is_err());
    }
}

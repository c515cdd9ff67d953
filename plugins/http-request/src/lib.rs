//! `http-request`: a generic HTTP call to a granted host.
//!
//! Params: `{"url": "https://api.example.com/x", "method": "POST", "headers": {"k": "v"},
//! "body": "text" | <any JSON, sent as application/json>, "timeout_ms": 5000,
//! "expect_status": [200, 201], "retry_on_status": [429, 502, 503, 504]}`.
//!
//! Output: `{"status": 200, "headers": {...}, "body": "<text>", "json": <parsed body or null>}`.
//! Fails when the status is not in `expect_status` (default: any 2xx), and says the
//! failure is retryable when the status is in `retry_on_status` or the request failed
//! to connect.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use sundial_sdk::{Action, ActionError, Invocation, http, log};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    url: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    expect_status: Option<Vec<u16>>,
    #[serde(default = "default_retry_on")]
    retry_on_status: Vec<u16>,
}

fn default_retry_on() -> Vec<u16> {
    vec![408, 429, 500, 502, 503, 504]
}

struct HttpRequest;

impl Action for HttpRequest {
    type Params = Params;
    type Output = Value;

    fn run(inv: Invocation, p: Params) -> Result<Value, ActionError> {
        let mut headers: Vec<(String, String)> = p.headers.into_iter().collect();
        let body = match p.body {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(text)) => text.into_bytes(),
            Some(json) => {
                if !headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                {
                    headers.push(("content-type".into(), "application/json".into()));
                }
                json.to_string().into_bytes()
            }
        };
        // Let the receiver deduplicate retries of the same run.
        headers.push(("idempotency-key".into(), inv.run_id.clone()));
        let method = p.method.unwrap_or_else(|| "GET".into());
        log::info(&format!("{method} {}", p.url));
        let response = http::send(&http::Request {
            method,
            url: p.url.clone(),
            headers,
            body,
            timeout_ms: p.timeout_ms,
            max_response_bytes: None,
        })
        .map_err(|e| {
            // A denial (host not granted, address refused) or an invalid request fails
            // for good; a transport error may pass.
            let msg = format!("{}: {e}", p.url);
            if e.is_retryable() {
                ActionError::Retryable(msg)
            } else {
                ActionError::Failed(msg)
            }
        })?;

        let ok = match &p.expect_status {
            Some(list) => list.contains(&response.status),
            None => (200..300).contains(&response.status),
        };
        let text = String::from_utf8_lossy(&response.body).into_owned();
        if !ok {
            let msg = format!("{} answered {}: {}", p.url, response.status, snippet(&text));
            return Err(if p.retry_on_status.contains(&response.status) {
                ActionError::Retryable(msg)
            } else {
                ActionError::Failed(msg)
            });
        }
        let mut header_map = Map::new();
        for (k, v) in response.headers {
            header_map.insert(k, Value::String(v));
        }
        let parsed = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
        Ok(json!({ "status": response.status, "headers": header_map, "body": text, "json": parsed }))
    }
}

fn snippet(text: &str) -> &str {
    match text.char_indices().nth(200) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

sundial_sdk::export_action!(HttpRequest);

//! Webhooks push data to external systems. This module is the pure part: the webhook
//! definition and its validation, and what to do after a delivery attempt. The
//! delivery engine (`engine.rs`) sends, signs and records.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// HTTP method of a webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// POST (default).
    #[default]
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// GET (the body is still sent when the formatter produces one).
    Get,
}

impl Method {
    /// The method as hyper knows it.
    pub fn http(self) -> http::Method {
        match self {
            Method::Post => http::Method::POST,
            Method::Put => http::Method::PUT,
            Method::Patch => http::Method::PATCH,
            Method::Get => http::Method::GET,
        }
    }
}

/// How a webhook authenticates; credentials are secret names, never values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// No credentials (default).
    #[default]
    None,
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// The user name.
        username: String,
        /// Name of the secret holding the password.
        password_secret: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// Name of the secret holding the token.
        token_secret: String,
    },
    /// An API key in a named header.
    ApiKey {
        /// The header, e.g. `X-Api-Key`.
        header: String,
        /// Name of the secret holding the key.
        key_secret: String,
    },
}

/// A header sent with every delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// Retries of a delivery: exponential backoff with jitter. The default schedule (13
/// attempts, 5 s doubling-and-a-half up to 6 h) spans about a day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryRetry {
    /// Attempts in all, 1-50. Default 13.
    pub max_attempts: u32,
    /// Delay before the first retry, in milliseconds. Default 5000.
    pub initial_delay_ms: u64,
    /// Growth per retry, 1.0-10.0. Default 2.5.
    pub multiplier: f64,
    /// Longest delay, in milliseconds. Default 21 600 000 (6 h).
    pub max_delay_ms: u64,
    /// Random spread, 0.0-1.0 (0.2 = ±20 %). Default 0.2.
    pub jitter: f64,
}

impl Default for DeliveryRetry {
    fn default() -> Self {
        DeliveryRetry {
            max_attempts: 13,
            initial_delay_ms: 5000,
            multiplier: 2.5,
            max_delay_ms: 6 * 3_600_000,
            jitter: 0.2,
        }
    }
}

impl DeliveryRetry {
    fn as_task_policy(&self) -> crate::task::RetryPolicy {
        crate::task::RetryPolicy {
            max_attempts: self.max_attempts,
            initial_delay_ms: self.initial_delay_ms,
            multiplier: self.multiplier,
            max_delay_ms: self.max_delay_ms,
            jitter: self.jitter,
            retry_on: Default::default(),
        }
    }

    /// The delay before attempt `next_attempt` (2 = the first retry), `None` when used up.
    pub fn delay_before(&self, next_attempt: u32, unit: f64) -> Option<Duration> {
        self.as_task_policy().delay_before(next_attempt, unit)
    }
}

/// A webhook's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// Unique name (same rules as task names).
    #[schemars(regex(pattern = crate::task::NAME_PATTERN), extend("not" = {"pattern": "^[0-7][0-9a-hjkmnp-tv-z]{25}$"}))]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// `http://` or `https://` URL.
    pub url: String,
    /// Default POST.
    #[serde(default)]
    pub method: Method,
    /// Extra headers, in order.
    #[serde(default)]
    pub headers: Vec<Header>,
    /// Default none.
    #[serde(default)]
    pub auth: Auth,
    /// Formatter plugin that builds the body. Default `json`.
    #[serde(default = "json_formatter")]
    pub formatter: String,
    /// The formatter's configuration (a JSON object). Default `{}`.
    #[serde(default = "empty_object")]
    pub formatter_config: Value,
    /// Message template for template-based formatters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Names of the secrets deliveries are signed with (Standard Webhooks; several
    /// during a rotation). Default none: unsigned.
    #[serde(default)]
    pub signing_secrets: Vec<String>,
    /// Per-attempt timeout in milliseconds, 1000-120000. Default 5000.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Retry policy.
    #[serde(default)]
    pub retry: DeliveryRetry,
    /// Accept any TLS certificate. Default false.
    #[serde(default)]
    pub allow_insecure_tls: bool,
    /// Deliveries in flight to this webhook at once, 1-64. Default 4.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: u32,
    /// Disabled webhooks deliver nothing (a 410 answer disables). Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn json_formatter() -> String {
    "json".into()
}
fn empty_object() -> Value {
    Value::Object(Default::default())
}
fn default_timeout() -> u64 {
    5000
}
fn default_concurrency() -> u32 {
    4
}
fn yes() -> bool {
    true
}

/// Headers Sundial sets itself; a webhook's headers may not override them.
pub const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

impl WebhookSpec {
    /// Check every field, naming the first bad one.
    pub fn validate(&self) -> Result<(), crate::Invalid> {
        crate::task::validate_name("name", &self.name).map_err(|e| e.to_string())?;
        let uri: http::Uri = self.url.parse().map_err(|e| format!("url: {e}"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(format!("url: {:?} must start with http:// or https://", self.url).into());
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err("url: no host".into());
        }
        for (i, h) in self.headers.iter().enumerate() {
            http::HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| format!("headers[{i}].name: {:?} is not a header name", h.name))?;
            http::HeaderValue::from_str(&h.value)
                .map_err(|_| format!("headers[{i}].value: not a valid header value"))?;
            if RESERVED_HEADERS.contains(&h.name.to_ascii_lowercase().as_str()) {
                return Err(format!("headers[{i}].name: {:?} is set by Sundial", h.name).into());
            }
        }
        let secret = |field: &str, name: &str| {
            crate::secret::validate_name(name)
                .map_err(|e| format!("{field}: {}", e.0.trim_start_matches("name: ")))
        };
        match &self.auth {
            Auth::None => {}
            Auth::Basic {
                username,
                password_secret,
            } => {
                if username.contains(':') {
                    return Err("auth.username: must not contain ':'".into());
                }
                secret("auth.password_secret", password_secret)?;
            }
            Auth::Bearer { token_secret } => secret("auth.token_secret", token_secret)?,
            Auth::ApiKey { header, key_secret } => {
                http::HeaderName::from_bytes(header.as_bytes())
                    .map_err(|_| format!("auth.header: {header:?} is not a header name"))?;
                secret("auth.key_secret", key_secret)?;
            }
        }
        for (i, s) in self.signing_secrets.iter().enumerate() {
            secret(&format!("signing_secrets[{i}]"), s)?;
        }
        crate::task::validate_name("formatter", &self.formatter).map_err(|e| e.to_string())?;
        if !self.formatter_config.is_object() {
            return Err("formatter_config: expected a JSON object".into());
        }
        if !(1000..=120_000).contains(&self.timeout_ms) {
            return Err(format!("timeout_ms: {} is outside 1000..=120000", self.timeout_ms).into());
        }
        if !(1..=64).contains(&self.max_concurrency) {
            return Err(format!("max_concurrency: {} is outside 1..=64", self.max_concurrency).into());
        }
        let r = &self.retry;
        if !(1..=50).contains(&r.max_attempts) {
            return Err(format!("retry.max_attempts: {} is outside 1..=50", r.max_attempts).into());
        }
        self.retry
            .as_task_policy()
            .validate()
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// What follows a delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// The receiver took it (2xx).
    Delivered,
    /// Try again after this long.
    RetryIn(Duration),
    /// Give up: the delivery is dead.
    Dead(String),
    /// 410 Gone: the delivery is dead and the webhook is disabled.
    Disable,
}

/// Decide after attempt `attempt`: `status` is the HTTP status (None when no answer came:
/// connect error, timeout), `retry_after` the receiver's `Retry-After`, `unit` a random
/// number in [0, 1) for the jitter. Retries on no answer, 408, 429 and 5xx; any other
/// 4xx (and 3xx: redirects are not followed) is final.
pub fn after_attempt(
    policy: &DeliveryRetry,
    attempt: u32,
    status: Option<u16>,
    retry_after: Option<Duration>,
    unit: f64,
) -> Next {
    let retryable = match status {
        Some(s) if (200..300).contains(&s) => return Next::Delivered,
        Some(410) => return Next::Disable,
        None | Some(408) | Some(429) => true,
        Some(s) => s >= 500,
    };
    if !retryable {
        return Next::Dead(format!("HTTP {} is not retried", status.unwrap_or_default()));
    }
    match policy.delay_before(attempt + 1, unit) {
        Some(backoff) => {
            let cap = Duration::from_millis(policy.max_delay_ms);
            Next::RetryIn(retry_after.map_or(backoff, |r| r.min(cap).max(backoff)))
        }
        None => Next::Dead(format!("gave up after {attempt} attempts")),
    }
}

/// Parse a `Retry-After` header: delay-seconds or an HTTP date, relative to `now`.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (when.with_timezone(&chrono::Utc) - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> Result<WebhookSpec, String> {
        let s: WebhookSpec = serde_json::from_value(v).map_err(|e| e.to_string())?;
        s.validate().map(|_| s).map_err(String::from)
    }

    #[test]
    fn defaults_and_validation() {
        let s = spec(json!({"name": "alerts", "url": "https://example.com/hook"})).unwrap();
        assert_eq!(
            (s.method, s.timeout_ms, s.formatter.as_str(), s.enabled),
            (Method::Post, 5000, "json", true)
        );
        // The default retry schedule spans about a day.
        let total: u64 = (2..=s.retry.max_attempts)
            .map(|n| s.retry.delay_before(n, 0.5).unwrap().as_secs())
            .sum();
        assert!((18 * 3600..30 * 3600).contains(&total), "{total} s");
        let err = |patch: Value| {
            let mut v = json!({"name": "a", "url": "https://example.com/"});
            v.as_object_mut()
                .unwrap()
                .extend(patch.as_object().unwrap().clone());
            spec(v).unwrap_err()
        };
        assert!(err(json!({"url": "ftp://x/"})).starts_with("url:"));
        assert!(err(json!({"url": "not a url"})).starts_with("url:"));
        assert!(err(json!({"timeout_ms": 200})).starts_with("timeout_ms"));
        assert!(
            err(json!({"headers": [{"name": "webhook-signature", "value": "x"}]})).contains("set by Sundial")
        );
        assert!(
            err(json!({"headers": [{"name": "bad header", "value": "x"}]})).starts_with("headers[0].name")
        );
        assert!(
            err(json!({"auth": {"type": "bearer", "token_secret": "bad name"}}))
                .starts_with("auth.token_secret")
        );
        assert!(
            err(json!({"auth": {"type": "basic", "username": "a:b", "password_secret": "p"}}))
                .starts_with("auth.username")
        );
        assert!(err(json!({"auth": {"type": "magic"}})).contains("unknown variant"));
        assert!(err(json!({"method": "DELETE"})).contains("unknown variant"));
        assert!(err(json!({"retry": {"max_attempts": 0}})).starts_with("retry.max_attempts"));
        assert!(err(json!({"formatter_config": []})).starts_with("formatter_config"));
    }

    #[test]
    fn what_follows_an_attempt() {
        let p = DeliveryRetry {
            max_attempts: 3,
            initial_delay_ms: 1000,
            multiplier: 2.0,
            max_delay_ms: 60_000,
            jitter: 0.0,
        };
        let s = Duration::from_secs;
        assert_eq!(after_attempt(&p, 1, Some(204), None, 0.5), Next::Delivered);
        assert_eq!(after_attempt(&p, 1, Some(410), None, 0.5), Next::Disable);
        assert_eq!(after_attempt(&p, 1, None, None, 0.5), Next::RetryIn(s(1)));
        assert_eq!(after_attempt(&p, 2, Some(503), None, 0.5), Next::RetryIn(s(2)));
        assert_eq!(
            after_attempt(&p, 1, Some(429), Some(s(30)), 0.5),
            Next::RetryIn(s(30)),
            "Retry-After wins"
        );
        assert_eq!(
            after_attempt(&p, 1, Some(429), Some(s(3600)), 0.5),
            Next::RetryIn(s(60)),
            "capped"
        );
        assert_eq!(after_attempt(&p, 1, Some(408), None, 0.5), Next::RetryIn(s(1)));
        assert!(
            matches!(after_attempt(&p, 3, Some(500), None, 0.5), Next::Dead(m) if m.contains("3 attempts"))
        );
        assert!(matches!(after_attempt(&p, 1, Some(404), None, 0.5), Next::Dead(m) if m.contains("404")));
        assert!(matches!(
            after_attempt(&p, 1, Some(301), None, 0.5),
            Next::Dead(_)
        ));
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after("120", now), Some(s(120)));
        assert_eq!(
            parse_retry_after("Fri, 27 Nov 2026 10:01:00 GMT", now),
            Some(s(60))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}

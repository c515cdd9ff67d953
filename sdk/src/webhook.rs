//! Standard Webhooks v1 signatures: what Sundial puts on every delivery, and a verifier
//! for receivers written in Rust (plugins or not).
//!
//! A delivery carries three headers: `webhook-id` (unique per message, stable across
//! retries), `webhook-timestamp` (Unix seconds) and `webhook-signature`: one or more
//! space-separated `v1,<base64 of HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`, one
//! per active secret (several during a rotation).
//!
//! ```
//! use sundial_sdk::webhook::{Secret, sign, verify};
//! let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
//! let body = br#"{"type":"user.created"}"#;
//! let signature = sign(&secret, "msg_1", 1_700_000_000, body);
//! verify(&[secret], "msg_1", "1700000000", &signature, body, 1_700_000_010).unwrap();
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 24;
/// Largest accepted difference between the timestamp and now, in seconds (5 minutes).
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// A signing secret (its raw bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret([redacted; {} bytes])", self.0.len())
    }
}

/// Why a secret or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookError {
    /// The secret is shorter than [`MIN_SECRET_BYTES`] or not valid base64 after `whsec_`.
    BadSecret(String),
    /// A header is missing or malformed.
    BadHeader(String),
    /// The timestamp is further from now than the tolerance.
    Stale {
        /// Seconds between the timestamp and now.
        skew: u64,
    },
    /// No `v1` signature matched any secret.
    NoMatch,
}

impl std::fmt::Display for WebhookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebhookError::BadSecret(m) => write!(f, "bad secret: {m}"),
            WebhookError::BadHeader(m) => write!(f, "bad header: {m}"),
            WebhookError::Stale { skew } => write!(f, "timestamp is {skew} s away from now"),
            WebhookError::NoMatch => write!(f, "no signature matches"),
        }
    }
}

impl std::error::Error for WebhookError {}

impl Secret {
    /// A secret from `whsec_<base64>` (the Standard Webhooks form) or, without that
    /// prefix, from the text's own bytes. At least [`MIN_SECRET_BYTES`] bytes.
    pub fn parse(text: &str) -> Result<Secret, WebhookError> {
        let bytes = match text.strip_prefix("whsec_") {
            Some(b64) => STANDARD
                .decode(b64)
                .map_err(|e| WebhookError::BadSecret(format!("whsec_ part is not base64 ({e})")))?,
            None => text.as_bytes().to_vec(),
        };
        Secret::from_bytes(bytes)
    }

    /// A secret from raw bytes (at least [`MIN_SECRET_BYTES`]).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Secret, WebhookError> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(WebhookError::BadSecret(format!(
                "{} bytes; at least {MIN_SECRET_BYTES} are needed",
                bytes.len()
            )));
        }
        Ok(Secret(bytes))
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

/// The `webhook-signature` entry for one secret: `v1,<base64>`.
pub fn sign(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = secret
        .mac(id, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// The whole `webhook-signature` header for several secrets (space-separated).
pub fn sign_all(secrets: &[Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| sign(s, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Verify a delivery: `timestamp` within [`DEFAULT_TOLERANCE_SECS`] of `now` (Unix
/// seconds) and at least one `v1` signature in `signature_header` matching one of
/// `secrets`. Each candidate is compared in constant time and must have the full
/// HMAC-SHA256 length: empty, truncated or prefix signatures never match.
pub fn verify(
    secrets: &[Secret],
    id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
) -> Result<(), WebhookError> {
    verify_with_tolerance(
        secrets,
        id,
        timestamp,
        signature_header,
        body,
        now,
        DEFAULT_TOLERANCE_SECS,
    )
}

/// [`verify`] with a chosen tolerance in seconds.
pub fn verify_with_tolerance(
    secrets: &[Secret],
    id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), WebhookError> {
    if id.is_empty() {
        return Err(WebhookError::BadHeader("webhook-id is empty".into()));
    }
    let ts: i64 = timestamp.trim().parse().map_err(|_| {
        WebhookError::BadHeader(format!("webhook-timestamp {timestamp:?} is not Unix seconds"))
    })?;
    // `abs_diff`: any two i64 timestamps, however far apart, without overflow (found by
    // the `signature` fuzz target).
    let skew = now.abs_diff(ts);
    if skew > u64::try_from(tolerance_secs).unwrap_or(0) {
        return Err(WebhookError::Stale { skew });
    }
    for entry in signature_header.split_whitespace() {
        let Some(b64) = entry.strip_prefix("v1,") else {
            continue; // another scheme (v1a, ...): not ours
        };
        let Ok(tag) = STANDARD.decode(b64) else {
            continue;
        };
        for secret in secrets {
            // `verify_slice` checks the length and compares in constant time.
            if secret.mac(id, timestamp.trim(), body).verify_slice(&tag).is_ok() {
                return Ok(());
            }
        }
    }
    Err(WebhookError::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
    }

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // The example from the Standard Webhooks specification's reference libraries.
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(&secret(), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        verify(
            &[secret()],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            &sig,
            body,
            1614265330,
        )
        .unwrap();
    }

    #[test]
    fn refuses_what_it_must() {
        let body = b"{}";
        let good = sign(&secret(), "m1", 1000, body);
        let check = |header: &str| verify(&[secret()], "m1", "1000", header, body, 1000);
        assert_eq!(check(""), Err(WebhookError::NoMatch), "empty");
        assert_eq!(check("v1,"), Err(WebhookError::NoMatch), "empty signature");
        let truncated = &good[..good.len() - 8];
        assert_eq!(check(truncated), Err(WebhookError::NoMatch), "truncated");
        let prefix_bytes = STANDARD.decode(&good[3..]).unwrap();
        let prefix = format!("v1,{}", STANDARD.encode(&prefix_bytes[..16]));
        assert_eq!(
            check(&prefix),
            Err(WebhookError::NoMatch),
            "a prefix of the right tag"
        );
        assert_eq!(
            check(&good.replace("v1,", "v2,")),
            Err(WebhookError::NoMatch),
            "other scheme"
        );
        assert_eq!(
            check(&format!("v1,AAAA {good}")),
            Ok(()),
            "one good among several"
        );
        assert_eq!(
            verify(&[secret()], "m1", "1000", &good, b"{ }", 1000),
            Err(WebhookError::NoMatch),
            "body changed"
        );
        assert_eq!(
            verify(&[secret()], "m2", "1000", &good, body, 1000),
            Err(WebhookError::NoMatch),
            "id changed"
        );
        assert_eq!(
            verify(&[secret()], "m1", "1000", &good, body, 1000 + 301),
            Err(WebhookError::Stale { skew: 301 })
        );
        assert!(matches!(
            verify(&[secret()], "m1", "soon", &good, body, 1000),
            Err(WebhookError::BadHeader(_))
        ));
    }

    #[test]
    fn extreme_timestamps_are_stale_not_a_panic() {
        // Regression (fuzz/signature): `now - ts` overflowed for far-apart values.
        for (ts, now) in [(i64::MIN, 1), (i64::MAX, -1), (i64::MIN, i64::MAX)] {
            let got = verify(&[secret()], "m", &ts.to_string(), "v1,AAAA", b"x", now);
            assert!(
                matches!(got, Err(WebhookError::Stale { .. })),
                "{ts} {now}: {got:?}"
            );
        }
    }

    #[test]
    fn rotation_signs_with_every_secret_and_verifies_with_any() {
        let old = Secret::parse("an-old-secret-of-24-bytes!").unwrap();
        let new = secret();
        let header = sign_all(&[old.clone(), new.clone()], "m", 5, b"x");
        assert_eq!(header.split(' ').count(), 2);
        verify(&[new], "m", "5", &header, b"x", 5).unwrap();
        verify(&[old], "m", "5", &header, b"x", 5).unwrap();
        let other = Secret::parse("a-third-secret-nobody-has").unwrap();
        assert_eq!(
            verify(&[other], "m", "5", &header, b"x", 5),
            Err(WebhookError::NoMatch)
        );
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(matches!(Secret::parse("short"), Err(WebhookError::BadSecret(_))));
        assert!(matches!(
            Secret::parse("whsec_c2hvcnQ="),
            Err(WebhookError::BadSecret(_))
        ));
        assert!(matches!(
            Secret::parse("whsec_!!"),
            Err(WebhookError::BadSecret(_))
        ));
        assert!(format!("{:?}", secret()).contains("redacted"));
    }
}

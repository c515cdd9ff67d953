//! Dashboard sessions: a login with an API token opens one, kept on the server; the
//! browser holds only a random id in an `HttpOnly; SameSite=Strict` cookie.
//!
//! A session remembers the hash of the token it was opened with, never the token, and
//! every request looks that token up again: revoking the token ends its sessions at
//! once. Sessions live in memory: a restart of the daemon logs everyone out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a session lasts after login: 8 hours.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// Most open sessions at once: 10 000 (the oldest goes first when a login finds it full).
pub const MAX_SESSIONS: usize = 10_000;

/// Most open sessions of one token: 50 (its oldest goes first), so logins with one
/// token cannot push out everyone else's sessions.
pub const MAX_SESSIONS_PER_TOKEN: usize = 50;

/// One logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// sha256 of the token it was opened with (looked up on every request).
    pub token_hash: String,
    /// The anti-CSRF token every state-changing request must carry.
    pub csrf: String,
    /// When it ends.
    expires: Instant,
}

/// The open sessions, by the hash of their cookie id.
#[derive(Debug, Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Open a session for the token with hash `token_hash`; returns the cookie id.
    pub fn open(&self, token_hash: String) -> Result<String, String> {
        let id = random_hex()?;
        let session = Session {
            token_hash,
            csrf: random_hex()?,
            expires: Instant::now() + SESSION_TTL,
        };
        let mut open = self.lock();
        let now = Instant::now();
        open.retain(|_, s| s.expires > now);
        let same_token = open
            .values()
            .filter(|s| s.token_hash == session.token_hash)
            .count();
        let oldest = |open: &HashMap<String, Session>, same: bool| {
            open.iter()
                .filter(|(_, s)| !same || s.token_hash == session.token_hash)
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        };
        let evict = if same_token >= MAX_SESSIONS_PER_TOKEN {
            oldest(&open, true)
        } else if open.len() >= MAX_SESSIONS {
            oldest(&open, false)
        } else {
            None
        };
        if let Some(k) = evict {
            open.remove(&k);
        }
        open.insert(key(&id), session);
        Ok(id)
    }

    /// The session a cookie id names, unless it has expired.
    pub fn find(&self, id: &str) -> Option<Session> {
        let mut open = self.lock();
        let k = key(id);
        match open.get(&k) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                open.remove(&k);
                None
            }
            None => None,
        }
    }

    /// End the session a cookie id names (logout).
    pub fn close(&self, id: &str) {
        self.lock().remove(&key(id));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sessions are kept by the hash of their id: what the map holds cannot be replayed
/// as a cookie.
fn key(id: &str) -> String {
    sundial_core::hash::digest(id.as_bytes())
}

/// 256 random bits as 64 hex digits.
fn random_hex() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compare two secrets in time that depends only on their lengths.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_id_until_it_is_closed() {
        let sessions = Sessions::default();
        let id = sessions.open("hash-a".into()).unwrap();
        assert_eq!(id.len(), 64);
        let s = sessions.find(&id).unwrap();
        assert_eq!(s.token_hash, "hash-a");
        assert_eq!(s.csrf.len(), 64);
        assert_ne!(s.csrf, id);
        assert!(sessions.find("not-an-id").is_none());
        sessions.close(&id);
        assert!(sessions.find(&id).is_none());
    }

    #[test]
    fn one_token_keeps_at_most_its_cap_and_pushes_out_only_its_own() {
        let sessions = Sessions::default();
        let other = sessions.open("hash-b".into()).unwrap();
        let first = sessions.open("hash-a".into()).unwrap();
        let mut last = String::new();
        for _ in 0..MAX_SESSIONS_PER_TOKEN {
            last = sessions.open("hash-a".into()).unwrap();
        }
        assert!(sessions.find(&first).is_none(), "its oldest went");
        assert!(sessions.find(&last).is_some());
        assert!(sessions.find(&other).is_some(), "another token's session stays");
        assert_eq!(sessions.lock().len(), MAX_SESSIONS_PER_TOKEN + 1);
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }
}

//! Secrets at rest: values are sealed with ChaCha20-Poly1305 under a 256-bit key kept
//! outside the database (`SUNDIAL_SECRET_KEY`, else `DATA/secret.key`, mode 0600,
//! created on first start). Each value is bound to its name (associated data), so a
//! sealed value copied under another name does not open.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Environment variable holding the key (base64 of 32 bytes); wins over the key file.
pub const KEY_ENV: &str = "SUNDIAL_SECRET_KEY";
/// Key file name in the data directory.
pub const KEY_FILE: &str = "secret.key";

/// Why a key could not be had, or a value not be sealed or opened. Messages never hold
/// a key or a value.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key text is not base64.
    #[error("{from}: not base64 ({reason})")]
    NotBase64 {
        /// Where the key came from.
        from: String,
        /// What the decoder said.
        reason: String,
    },
    /// The key is not 32 bytes.
    #[error("{from}: the key must be 32 bytes (base64), got {len}")]
    WrongLength {
        /// Where the key came from.
        from: String,
        /// Its length in bytes.
        len: usize,
    },
    /// Sealed secrets exist and no key does.
    #[error(
        "the store holds {sealed} sealed secret(s) but there is no secret key: {path} is missing and {KEY_ENV} is not set. \
         Restore the key they were sealed with (from the backup or wherever you keep it); \
         refusing to start with a new key that could not open them"
    )]
    Missing {
        /// How many secrets are sealed.
        sealed: usize,
        /// The key file looked for.
        path: String,
    },
    /// The key does not open the stored secrets.
    #[error(
        "the secret key from {from} does not open secret {name:?} ({sealed} sealed in the store): \
         it is not the key they were sealed with. Restore the matching key \
         ({KEY_FILE} from the same backup, or {KEY_ENV}); refusing to start"
    )]
    WrongKey {
        /// Where the key came from.
        from: String,
        /// A secret it does not open.
        name: String,
        /// How many secrets are sealed.
        sealed: usize,
    },
    /// The key file could not be read or written.
    #[error("{action} {path}: {source}")]
    File {
        /// `reading` or `writing`.
        action: &'static str,
        /// The key file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The system gave no random bytes.
    #[error("no randomness: {0}")]
    NoRandomness(String),
    /// Encryption failed.
    #[error("sealing failed")]
    Seal,
    /// The stored value is not what sealing writes.
    #[error("corrupt {0}")]
    Corrupt(&'static str),
    /// The value does not open under this name with this key.
    #[error("secret {0:?} does not open with this key (wrong SUNDIAL_SECRET_KEY or secret.key?)")]
    DoesNotOpen(String),
}

/// The key that seals secrets.
#[derive(Clone)]
pub struct SecretKey {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

/// A sealed value as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The 96-bit nonce, base64.
    pub nonce: String,
    /// Ciphertext with its tag, base64.
    pub ciphertext: String,
}

fn parse_key(text: &str, from: &str) -> Result<SecretKey, KeyError> {
    let bytes = STANDARD.decode(text.trim()).map_err(|e| KeyError::NotBase64 {
        from: from.to_string(),
        reason: e.to_string(),
    })?;
    if bytes.len() != 32 {
        return Err(KeyError::WrongLength {
            from: from.to_string(),
            len: bytes.len(),
        });
    }
    Ok(SecretKey {
        cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
    })
}

impl SecretKey {
    /// The key from `SUNDIAL_SECRET_KEY`, else from `dir/secret.key`, creating that file
    /// (mode 0600) with a fresh random key when neither exists and `sealed` is 0. With
    /// `sealed` secrets in the store and no key, it refuses: a new key could never open
    /// them.
    pub fn load_or_create(dir: &Path, sealed: usize) -> Result<SecretKey, KeyError> {
        if let Ok(text) = std::env::var(KEY_ENV) {
            return parse_key(&text, KEY_ENV);
        }
        let path = dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => parse_key(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && sealed > 0 => Err(KeyError::Missing {
                sealed,
                path: path.display().to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes).map_err(|e| KeyError::NoRandomness(e.to_string()))?;
                let text = STANDARD.encode(bytes);
                crate::private_file::write_private(&path, &format!("{text}\n")).map_err(|source| {
                    KeyError::File {
                        action: "writing",
                        path: path.display().to_string(),
                        source,
                    }
                })?;
                parse_key(&text, "new key")
            }
            Err(source) => Err(KeyError::File {
                action: "reading",
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Check that this key opens sealed values of the store (up to three of `sealed`,
    /// `(name, value)`); `from` names where the key came from.
    pub fn verify(&self, sealed: &[(String, Sealed)], from: &str) -> Result<(), KeyError> {
        for (name, value) in sealed.iter().take(3) {
            if self.open(name, value).is_err() {
                return Err(KeyError::WrongKey {
                    from: from.to_string(),
                    name: name.clone(),
                    sealed: sealed.len(),
                });
            }
        }
        Ok(())
    }

    /// Where [`SecretKey::load_or_create`] takes the key from: `SUNDIAL_SECRET_KEY` or
    /// the file's path.
    pub fn source(dir: &Path) -> String {
        if std::env::var_os(KEY_ENV).is_some() {
            KEY_ENV.to_string()
        } else {
            dir.join(KEY_FILE).display().to_string()
        }
    }

    /// The key's text (base64) as [`SecretKey::load_or_create`] reads it, for backups.
    pub fn text(dir: &Path) -> Result<String, KeyError> {
        if let Ok(text) = std::env::var(KEY_ENV) {
            return Ok(text.trim().to_string());
        }
        let path = dir.join(KEY_FILE);
        std::fs::read_to_string(&path)
            .map(|t| t.trim().to_string())
            .map_err(|source| KeyError::File {
                action: "reading",
                path: path.display().to_string(),
                source,
            })
    }

    /// A key from raw bytes (tests).
    pub fn from_bytes(bytes: [u8; 32]) -> SecretKey {
        SecretKey {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
        }
    }

    /// Seal `value` under `name` with a fresh random nonce.
    pub fn seal(&self, name: &str, value: &[u8]) -> Result<Sealed, KeyError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| KeyError::NoRandomness(e.to_string()))?;
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: value,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| KeyError::Seal)?;
        Ok(Sealed {
            nonce: STANDARD.encode(nonce),
            ciphertext: STANDARD.encode(ciphertext),
        })
    }

    /// Open a value sealed under `name`; fails with the wrong key or name, or if the
    /// stored bytes were altered.
    pub fn open(&self, name: &str, sealed: &Sealed) -> Result<Vec<u8>, KeyError> {
        let nonce = STANDARD
            .decode(&sealed.nonce)
            .map_err(|_| KeyError::Corrupt("nonce"))?;
        let ciphertext = STANDARD
            .decode(&sealed.ciphertext)
            .map_err(|_| KeyError::Corrupt("ciphertext"))?;
        if nonce.len() != 12 {
            return Err(KeyError::Corrupt("nonce"));
        }
        self.cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| KeyError::DoesNotOpen(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_what_does_not_open() {
        let key = SecretKey::from_bytes([7; 32]);
        let sealed = key.seal("API_KEY", b"hunter2-hunter2").unwrap();
        // The stored text is base64: the plaintext could never show in it literally.
        // Decode it and look there, and for the plaintext's own base64 in the text.
        let bytes = STANDARD.decode(&sealed.ciphertext).unwrap();
        assert_eq!(
            bytes.len(),
            b"hunter2-hunter2".len() + 16,
            "ciphertext and a 16-byte tag"
        );
        assert!(
            !bytes.windows(7).any(|w| w == b"hunter2"),
            "plaintext in the decoded ciphertext"
        );
        for shift in 0..3 {
            let encoded = STANDARD.encode(&b"hunter2-hunter2"[shift..]);
            let inner = &encoded[..encoded.len() - 4];
            assert!(
                !sealed.ciphertext.contains(inner),
                "the plaintext's base64 is in the stored text"
            );
        }
        assert_eq!(key.open("API_KEY", &sealed).unwrap(), b"hunter2-hunter2");
        assert_ne!(
            key.seal("API_KEY", b"hunter2-hunter2").unwrap().nonce,
            sealed.nonce
        );
        assert!(key.open("OTHER", &sealed).is_err(), "bound to its name");
        assert!(
            SecretKey::from_bytes([8; 32]).open("API_KEY", &sealed).is_err(),
            "wrong key"
        );
        let mut altered = sealed.clone();
        altered.ciphertext = STANDARD.encode(b"garbage-garbage-garbage-garbage");
        assert!(key.open("API_KEY", &altered).is_err());
        assert!(format!("{key:?}").contains("redacted"));
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::load_or_create(dir.path(), 0).unwrap();
        let sealed = key.seal("n", b"value").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = SecretKey::load_or_create(dir.path(), 0).unwrap();
        assert_eq!(again.open("n", &sealed).unwrap(), b"value");
        std::fs::write(dir.path().join(KEY_FILE), "c2hvcnQ=").unwrap();
        let err = SecretKey::load_or_create(dir.path(), 0).unwrap_err();
        assert!(matches!(err, KeyError::WrongLength { len: 5, .. }), "{err}");
        assert!(err.to_string().contains("32 bytes"), "{err}");
        std::fs::write(dir.path().join(KEY_FILE), "not base64!").unwrap();
        let err = SecretKey::load_or_create(dir.path(), 0).unwrap_err();
        assert!(matches!(err, KeyError::NotBase64 { .. }), "{err}");
    }

    #[test]
    fn a_missing_or_wrong_key_is_refused_when_secrets_are_sealed() {
        let dir = tempfile::tempdir().unwrap();
        // No key and sealed secrets: no new key is made.
        let err = SecretKey::load_or_create(dir.path(), 2).unwrap_err();
        assert!(matches!(err, KeyError::Missing { sealed: 2, .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("2 sealed secret(s)") && text.contains("missing"),
            "{err}"
        );
        assert!(!dir.path().join(KEY_FILE).exists());
        let right = SecretKey::from_bytes([7; 32]);
        let wrong = SecretKey::from_bytes([8; 32]);
        let sealed = vec![("API".to_string(), right.seal("API", b"v").unwrap())];
        assert!(right.verify(&sealed, "here").is_ok());
        let err = wrong.verify(&sealed, "DATA/secret.key").unwrap_err().to_string();
        assert!(
            err.contains("DATA/secret.key") && err.contains("not the key they were sealed with"),
            "{err}"
        );
        assert!(wrong.verify(&[], "x").is_ok(), "nothing sealed, nothing to check");
    }
}

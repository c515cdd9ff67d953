//! Content digests: what plugin components and token secrets are known by.

use sha2::{Digest, Sha256};

/// The sha256 of `bytes`, lower-case hex.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

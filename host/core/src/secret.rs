//! Secrets as the domain sees them: their names, their size limit, and how their
//! values are kept out of logs and errors. Sealing at rest is the store's
//! (`sundial_store::sealing`).

/// Largest secret value, in bytes.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;
/// Text that replaces secret values wherever they would show.
pub const REDACTED: &str = "[redacted]";

/// Replace every occurrence of each of `values` in `text` with [`REDACTED`] (values
/// shorter than 4 bytes are left alone: they would redact ordinary text).
pub fn redact(text: &str, values: &[String]) -> String {
    let mut out = text.to_string();
    for v in values.iter().filter(|v| v.len() >= 4) {
        if out.contains(v.as_str()) {
            out = out.replace(v.as_str(), REDACTED);
        }
    }
    out
}

/// Check a secret's name: 1-128 letters, digits, `_`, `-` or `.`.
pub fn validate_name(name: &str) -> Result<(), crate::Invalid> {
    if name.is_empty()
        || name.len() > 128
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(format!("name: {name:?} must be 1-128 letters, digits, '_', '-' or '.'").into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_and_names() {
        assert_eq!(
            redact("token=abcd1234 and abcd1234", &["abcd1234".into()]),
            "token=[redacted] and [redacted]"
        );
        assert_eq!(redact("a b", &["a".into()]), "a b");
        assert!(validate_name("GITHUB_TOKEN").is_ok());
        assert!(validate_name("bad name").is_err());
        assert!(validate_name("").is_err());
    }
}

//! TLS for the API (rustls): `tls_cert` and `tls_key` name PEM files, the certificate
//! chain (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1). Both or neither;
//! with them the daemon speaks only `https://`. The handshake must finish within the
//! header timeout, like a request head.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// A server TLS configuration from the two PEM files, with a message naming the file
/// and what is wrong.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let what = |key: &str, path: &Path| format!("{key} {}", path.display());
    let cert_pem = std::fs::read(cert).map_err(|e| format!("{}: {e}", what("tls_cert", cert)))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", what("tls_cert", cert)))?;
    if chain.is_empty() {
        return Err(format!(
            "{}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            what("tls_cert", cert)
        ));
    }
    let key_pem = std::fs::read(key).map_err(|e| format!("{}: {e}", what("tls_key", key)))?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        format!(
            "{}: no PEM private key in it (PKCS#8, PKCS#1 or SEC1): {e}",
            what("tls_key", key)
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| format!("tls_cert and tls_key do not make a usable pair: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let err = server_config(&missing, &missing).unwrap_err();
        assert!(err.starts_with("tls_cert ") && err.contains("nope.pem"), "{err}");
        let err = server_config(&junk, &junk).unwrap_err();
        assert!(err.contains("no PEM certificate"), "{err}");
    }
}

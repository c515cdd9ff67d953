//! Outbound connections for plugins' HTTP and webhook deliveries: resolve the name,
//! check every resolved address against the operator's [`NetworkPolicy`] (loopback,
//! private, link-local incl. 169.254.169.254, CGNAT, multicast and IPv4-mapped forms
//! are refused unless allowed), and connect to exactly the address that passed, so a
//! name cannot be re-pointed between check and connect (no DNS-rebinding window).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use sundial_core::grants::NetworkPolicy;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Longest a name lookup may take: 10 s.
pub const DNS_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connection was not made.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The name did not resolve.
    #[error("cannot resolve {0}")]
    Dns(String),
    /// The lookup took longer than [`DNS_TIMEOUT`].
    #[error("resolving {0} timed out")]
    DnsTimeout(String),
    /// Every address the name resolved to is in a range the policy refuses.
    #[error("{host} resolves to {addrs}, which the network policy does not allow")]
    Prohibited {
        /// The name.
        host: String,
        /// The refused addresses with their class.
        addrs: String,
    },
    /// The name resolved to no address at all.
    #[error("{0} resolved to no address")]
    NoAddress(String),
    /// The peer refused the connection.
    #[error("connection refused by {0}")]
    Refused(SocketAddr),
    /// Connecting failed otherwise.
    #[error("connecting to {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    /// Connecting (or the TLS handshake) took too long.
    #[error("connecting to {0} timed out")]
    Timeout(SocketAddr),
    /// The TLS handshake failed.
    #[error("TLS with {0}: {1}")]
    Tls(String, std::io::Error),
    /// The host is not a valid TLS server name.
    #[error("{0} is not a valid TLS server name")]
    BadName(String),
}

/// Resolve `host:port` and return the first address the policy allows.
pub async fn resolve_vetted(host: &str, port: u16, policy: &NetworkPolicy) -> Result<SocketAddr, NetError> {
    let resolved = match tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(addrs)) => addrs.collect::<Vec<_>>(),
        Ok(Err(e)) => return Err(NetError::Dns(format!("{host}: {e}"))),
        Err(_) => return Err(NetError::DnsTimeout(host.to_string())),
    };
    let mut refused = Vec::new();
    for addr in &resolved {
        match policy.refusal(addr.ip()) {
            None => return Ok(*addr),
            Some(class) => refused.push(format!("{} ({class})", addr.ip())),
        }
    }
    if refused.is_empty() {
        return Err(NetError::NoAddress(host.to_string()));
    }
    Err(NetError::Prohibited {
        host: host.to_string(),
        addrs: refused.join(", "),
    })
}

/// A connected byte stream (plain TCP or TLS).
pub trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

/// Connect to the vetted `addr`, with TLS for `host` when `tls` (certificates checked
/// against the Mozilla roots unless `insecure`).
pub async fn connect(
    host: &str,
    addr: SocketAddr,
    tls: bool,
    insecure: bool,
    timeout: Duration,
) -> Result<Box<dyn Stream>, NetError> {
    let tcp = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(NetError::Refused(addr));
        }
        Ok(Err(e)) => return Err(NetError::Connect(addr, e)),
        Err(_) => return Err(NetError::Timeout(addr)),
    };
    let _ = tcp.set_nodelay(true);
    if !tls {
        return Ok(Box::new(tcp));
    }
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|_| NetError::BadName(host.to_string()))?;
    let config = if insecure {
        insecure_tls_config()
    } else {
        tls_config()
    };
    let stream = tokio::time::timeout(
        timeout,
        tokio_rustls::TlsConnector::from(config).connect(name, tcp),
    )
    .await
    .map_err(|_| NetError::Timeout(addr))?
    .map_err(|e| NetError::Tls(host.to_string(), e))?;
    Ok(Box::new(stream))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS with certificate checks against the Mozilla roots (webpki-roots).
pub fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let config = rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth())
                .unwrap_or_else(|_| unreachable_tls());
            Arc::new(config)
        })
        .clone()
}

/// TLS that accepts any certificate (a webhook's `allow_insecure_tls`): the connection is
/// encrypted but the peer is not authenticated.
fn insecure_tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let config = rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map(|b| {
                    b.dangerous()
                        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider())))
                        .with_no_client_auth()
                })
                .unwrap_or_else(|_| unreachable_tls());
            Arc::new(config)
        })
        .clone()
}

#[cold]
fn unreachable_tls() -> rustls::ClientConfig {
    // The ring provider always supports the safe default versions.
    panic!("ring provider lacks TLS 1.2/1.3")
}

/// Accepts every certificate; signatures are still checked for the handshake.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_is_refused_unless_allowed_and_the_vetted_address_is_used() {
        let deny = NetworkPolicy::default();
        let err = resolve_vetted("localhost", 80, &deny).await.unwrap_err();
        assert!(matches!(err, NetError::Prohibited { .. }), "{err}");
        assert!(err.to_string().contains("loopback"), "{err}");
        let err = resolve_vetted("169.254.169.254", 80, &deny).await.unwrap_err();
        assert!(err.to_string().contains("link-local"), "{err}");
        let err = resolve_vetted("::ffff:10.0.0.1", 80, &deny).await.unwrap_err();
        assert!(err.to_string().contains("private"), "{err}");
        let allow = NetworkPolicy {
            allow_loopback: true,
            ..NetworkPolicy::default()
        };
        let ranges = NetworkPolicy {
            allow_ranges: vec!["10.0.0.0/24".parse().unwrap(), "::1/128".parse().unwrap()],
            ..NetworkPolicy::default()
        };
        assert!(resolve_vetted("10.0.0.5", 80, &ranges).await.is_ok());
        assert!(
            resolve_vetted("::ffff:10.0.0.5", 80, &ranges).await.is_ok(),
            "mapped form too"
        );
        assert!(resolve_vetted("10.0.1.5", 80, &ranges).await.is_err());
        assert!(resolve_vetted("::1", 80, &ranges).await.is_ok());
        assert!(resolve_vetted("127.0.0.1", 80, &ranges).await.is_err());
        let addr = resolve_vetted("127.0.0.1", 8080, &allow).await.unwrap();
        assert_eq!(addr.to_string(), "127.0.0.1:8080");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let to = listener.local_addr().unwrap();
        connect("127.0.0.1", to, false, false, Duration::from_secs(5))
            .await
            .unwrap();
        drop(listener);
        assert!(matches!(
            connect("127.0.0.1", to, false, false, Duration::from_secs(5)).await,
            Err(NetError::Refused(_))
        ));
    }
}

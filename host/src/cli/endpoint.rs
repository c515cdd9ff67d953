//! Where the CLI's client commands go and with which token: flags, environment, the
//! client config file and the defaults, in that order; and the connection itself,
//! plain or TLS.
//!
//! The client config (TOML) is `$SUNDIAL_CLIENT_CONFIG`, else
//! `$XDG_CONFIG_HOME/sundial/client.toml` (`~/.config/sundial/client.toml`) when it
//! exists:
//!
//! ```toml
//! url = "https://sundial.internal:7780"
//! token_file = "/etc/sundial/operator.token"
//! ca_file = "/etc/sundial/ca.pem"        # trust a private CA (besides the public roots)
//! ```

use super::EXIT_USAGE;
use super::client::Failure;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The default daemon URL.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7780";

/// The client config file's keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The daemon's URL.
    pub url: Option<String>,
    /// A file holding the token.
    pub token_file: Option<PathBuf>,
    /// PEM certificates to trust for an `https://` daemon.
    pub ca_file: Option<PathBuf>,
}

/// The client config's path, if one is named or exists at the default place.
pub fn client_config_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SUNDIAL_CLIENT_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    let path = base.join("sundial").join("client.toml");
    path.is_file().then_some(path)
}

/// Read the client config, if there is one (relative paths in it are relative to it).
pub fn load_client_config() -> Result<Option<(PathBuf, ClientConfig)>, Failure> {
    let Some(path) = client_config_path() else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| (EXIT_USAGE, format!("client config {}: {e}", path.display())))?;
    let mut config: ClientConfig =
        toml::from_str(&text).map_err(|e| (EXIT_USAGE, format!("client config {}: {e}", path.display())))?;
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    for p in [config.token_file.as_mut(), config.ca_file.as_mut()]
        .into_iter()
        .flatten()
    {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
    Ok(Some((path, config)))
}

/// A parsed daemon URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `https://`.
    pub tls: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// The port (default 80 or 443).
    pub port: u16,
    /// `host:port` as the `host` header and the connection use it.
    pub authority: String,
}

/// Parse `http://HOST[:PORT][/]` or `https://...`.
pub fn parse_url(text: &str) -> Result<Url, String> {
    let base = text.trim().trim_end_matches('/');
    let (tls, rest) = if let Some(r) = base.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = base.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("{text:?}: the URL must start with http:// or https://"));
    };
    if rest.is_empty() || rest.contains('/') || rest.contains('@') {
        return Err(format!(
            "{text:?}: expected http(s)://HOST[:PORT], without a path or user"
        ));
    }
    let default = if tls { 443 } else { 80 };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{text:?}: unclosed [ in an IPv6 address"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("{text:?}: bad port {p:?}"))?,
            None if after.is_empty() => default,
            None => return Err(format!("{text:?}: unexpected {after:?} after the address")),
        };
        (h.to_string(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse().map_err(|_| format!("{text:?}: bad port {p:?}"))?,
            ),
            None => (rest.to_string(), default),
        }
    };
    if host.is_empty() {
        return Err(format!("{text:?}: no host"));
    }
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok(Url {
        tls,
        host,
        port,
        authority,
    })
}

/// A token and where it came from, for messages (`the --token flag`, `SUNDIAL_TOKEN`,
/// a file's path).
#[derive(Debug, Clone)]
pub struct Token {
    /// The secret.
    pub secret: String,
    /// Where it came from.
    pub source: String,
}

/// Read a token file: its first line, trimmed.
pub fn read_token_file(path: &Path, what: &str) -> Result<Token, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| (EXIT_USAGE, format!("{what}: cannot read {}: {e}", path.display())))?;
    let secret = text.lines().next().unwrap_or_default().trim().to_string();
    if secret.is_empty() {
        return Err((EXIT_USAGE, format!("{what}: {} is empty", path.display())));
    }
    Ok(Token {
        secret,
        source: format!("{what} {}", path.display()),
    })
}

/// The TLS client configuration: the Mozilla roots, plus the certificates of
/// `ca_file` when given.
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, Failure> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    if let Some(path) = ca_file {
        let what = format!("--ca-file {}", path.display());
        let pem = std::fs::read(path).map_err(|e| (EXIT_USAGE, format!("{what}: {e}")))?;
        let mut n = 0;
        for der in CertificateDer::pem_slice_iter(&pem) {
            let der = der.map_err(|e| (EXIT_USAGE, format!("{what}: {e}")))?;
            roots.add(der).map_err(|e| (EXIT_USAGE, format!("{what}: {e}")))?;
            n += 1;
        }
        if n == 0 {
            return Err((EXIT_USAGE, format!("{what}: no PEM certificate in it")));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| (EXIT_USAGE, format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_default_ports_and_ipv6() {
        let u = parse_url("http://127.0.0.1:7780").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (false, "127.0.0.1", 7780));
        let u = parse_url("https://sundial.internal/").unwrap();
        assert_eq!(
            (u.tls, u.port, u.authority.as_str()),
            (true, 443, "sundial.internal:443")
        );
        let u = parse_url("https://[::1]:8443").unwrap();
        assert_eq!((u.host.as_str(), u.authority.as_str()), ("::1", "[::1]:8443"));
        for bad in [
            "ftp://x",
            "127.0.0.1:7780",
            "http://",
            "http://x/api",
            "http://x:port",
            "http://u@x",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}

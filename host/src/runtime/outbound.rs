//! Outbound HTTP for plugins: every request is checked against the plugin's host
//! grants, its name is resolved, each resolved address is checked against the
//! operator's [`NetworkPolicy`], and the connection goes to exactly the address that
//! passed, so a granted name cannot be re-pointed at a denied address between check
//! and connect (no DNS rebinding window).

use super::grants::{Grants, NetworkPolicy, Scheme};
use super::log::{Level, Origin, SharedLog};
use http_body_util::BodyExt;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// Connect timeout when the plugin sets none: 10 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to the first response byte when the plugin sets none: 60 s.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(60);

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendFuture = Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

/// The `WasiHttpHooks` of one run.
pub(crate) struct OutboundHttp {
    pub(crate) grants: Arc<Grants>,
    pub(crate) policy: NetworkPolicy,
    pub(crate) log: SharedLog,
    pub(crate) contacted: Arc<Mutex<Vec<String>>>,
}

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let grants = self.grants.clone();
        let policy = self.policy;
        let log = self.log.clone();
        let contacted = self.contacted.clone();
        Box::new(async move {
            let target = match authorize(&grants, policy, request.uri()).await {
                Ok(t) => t,
                Err((code, why)) => {
                    log.push(
                        Level::Warn,
                        Origin::Host,
                        &format!("http: {} {} denied: {why}", request.method(), request.uri()),
                    );
                    return Err(code);
                }
            };
            {
                let mut c = contacted.lock().unwrap_or_else(|e| e.into_inner());
                let name = format!("{}:{}", target.host, target.addr.port());
                if !c.contains(&name) {
                    c.push(name);
                }
            }
            let (response, io) = send_to(target, request, options).await?;
            Ok((response, Box::new(io) as IoFuture))
        })
    }
}

/// Where an authorized request goes.
struct Target {
    host: String,
    addr: SocketAddr,
    tls: bool,
}

/// Check grants, resolve, and check the resolved addresses. Errors carry the WASI
/// error code for the guest and a sentence for the run log.
async fn authorize(
    grants: &Grants,
    policy: NetworkPolicy,
    uri: &http::Uri,
) -> Result<Target, (HttpError, String)> {
    let scheme = match uri.scheme_str() {
        Some("https") => Scheme::Https,
        Some("http") => Scheme::Http,
        other => {
            return Err((
                HttpError::HttpProtocolError,
                format!("unsupported scheme {other:?}"),
            ));
        }
    };
    let Some(host) = uri.host() else {
        return Err((HttpError::HttpRequestUriInvalid, "no host in the URL".into()));
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(scheme.default_port());
    if grants.allowed_host(scheme, &host, port).is_none() {
        return Err((
            HttpError::HttpRequestDenied,
            format!("host {host}:{port} is not granted to this plugin"),
        ));
    }
    let resolved = match tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(addrs)) => addrs.collect::<Vec<_>>(),
        Ok(Err(e)) => {
            return Err((
                HttpError::DnsError {
                    rcode: Some(e.to_string()),
                    info_code: None,
                },
                format!("cannot resolve {host}: {e}"),
            ));
        }
        Err(_) => return Err((HttpError::DnsTimeout, format!("resolving {host} timed out"))),
    };
    let mut refused = Vec::new();
    for addr in &resolved {
        match policy.refusal(addr.ip()) {
            None => {
                return Ok(Target {
                    host,
                    addr: *addr,
                    tls: scheme == Scheme::Https,
                });
            }
            Some(class) => refused.push(format!("{} ({class})", addr.ip())),
        }
    }
    if refused.is_empty() {
        return Err((
            HttpError::DestinationNotFound,
            format!("{host} resolved to no address"),
        ));
    }
    Err((
        HttpError::DestinationIpProhibited,
        format!(
            "{host} resolves to {}, which the network policy does not allow",
            refused.join(", ")
        ),
    ))
}

trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth())
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

/// Send `request` to the authorized address (adapted from wasmtime-wasi-http's
/// `default_send_request`, which resolves the name itself).
async fn send_to(
    target: Target,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<
    (
        http::Response<WasiBody>,
        impl Future<Output = Result<(), HttpError>> + Send,
    ),
    HttpError,
> {
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let first_byte_timeout = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(DEFAULT_FIRST_BYTE_TIMEOUT);
    let tcp = match tokio::time::timeout(connect_timeout, TcpStream::connect(target.addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(HttpError::ConnectionRefused);
        }
        Ok(Err(e)) => return Err(HttpError::Connect(e)),
        Err(_) => return Err(HttpError::ConnectionTimeout),
    };
    let stream: Box<dyn Stream> = if target.tls {
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let tls = tokio::time::timeout(
            connect_timeout,
            tokio_rustls::TlsConnector::from(tls_config()).connect(name, tcp),
        )
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(HttpError::Tls)?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)??;
    // Origin-form request target: the authority travels in the Host header.
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;

    let send = async move {
        tokio::time::timeout(first_byte_timeout, sender.send_request(request))
            .await
            .map_err(|_| HttpError::ConnectionReadTimeout)?
            .map_err(HttpError::from)
    };
    let mut send = pin!(send);
    let mut conn = Some(conn);
    // Drive the connection while waiting for the response head.
    let response = poll_fn(|cx| match send.as_mut().poll(cx) {
        Poll::Ready(r) => Poll::Ready(r),
        Poll::Pending => {
            let Some(c) = conn.as_mut() else {
                return Poll::Pending;
            };
            let r = ready!(Pin::new(c).poll(cx));
            conn = None;
            match r {
                Ok(()) => send.as_mut().poll(cx),
                Err(e) => Poll::Ready(Err(HttpError::from(e))),
            }
        }
    })
    .await?;
    let response = response.map(|body| body.map_err(HttpError::from).boxed_unsync());
    Ok((response, async move {
        match conn {
            Some(c) => c.await.map_err(HttpError::from),
            None => Ok(()),
        }
    }))
}

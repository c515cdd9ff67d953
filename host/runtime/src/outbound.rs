//! Outbound HTTP for plugins: every request is checked against the plugin's host
//! grants, its name is resolved, each resolved address is checked against the
//! operator's [`NetworkPolicy`], and the connection goes to exactly the address that
//! passed, so a granted name cannot be re-pointed at a denied address between check
//! and connect (no DNS rebinding window).

use super::grants::{Grants, NetworkPolicy, Scheme};
use super::log::{Level, Origin, SharedLog};
use crate::net::NetError;
use http_body_util::BodyExt;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Poll, ready};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// Connect timeout (TCP and TLS handshake), and the longest a plugin may ask for: 10 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to the first response byte, and the longest a plugin may ask for: 60 s.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest response head (status line and headers) read from a server: 64 KiB.
pub const MAX_RESPONSE_HEAD_BYTES: usize = 64 * 1024;

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendFuture = Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

/// The `WasiHttpHooks` of one run.
pub(crate) struct OutboundHttp {
    /// The plugin making requests: its grants say where it may go.
    pub(crate) plugin: Arc<crate::PluginIdentity>,
    /// The daemon's network policy (shared by every run).
    pub(crate) policy: Arc<NetworkPolicy>,
    pub(crate) log: SharedLog,
    pub(crate) contacted: Arc<Mutex<Vec<String>>>,
    /// This run's open requests (`limits.max_connections` permits).
    pub(crate) run_connections: Arc<Semaphore>,
    pub(crate) max_run_connections: u32,
    /// Every run's open requests (the runtime's `max_outbound` permits).
    pub(crate) all_connections: Arc<Semaphore>,
    pub(crate) max_all_connections: usize,
}

impl OutboundHttp {
    /// Permits for one more open request, or the refusal (logged) when this run or all
    /// runs together have as many open as they may. Held until the response body is
    /// dropped or the connection ends.
    fn admit(&self, request: &http::Request<WasiBody>) -> Result<[OwnedSemaphorePermit; 2], HttpError> {
        let refuse = |why: String| {
            self.log.push(
                Level::Warn,
                Origin::Host,
                &format!("http: {} {} refused: {why}", request.method(), request.uri()),
            );
            HttpError::ConnectionLimitReached
        };
        let run = self.run_connections.clone().try_acquire_owned().map_err(|_| {
            refuse(format!(
                "this run already has {} requests open (limits.max_connections)",
                self.max_run_connections
            ))
        })?;
        let all = self.all_connections.clone().try_acquire_owned().map_err(|_| {
            refuse(format!(
                "plugin runs together have {} requests open, the daemon's limit",
                self.max_all_connections
            ))
        })?;
        Ok([run, all])
    }
}

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let plugin = self.plugin.clone();
        let policy = self.policy.clone();
        let log = self.log.clone();
        let contacted = self.contacted.clone();
        let permits = self.admit(&request);
        // The guest's body stays here until the request is sent, so that a request that
        // fails first (refused, denied, no connection) keeps it open: see `drain`.
        let (parts, body) = request.into_parts();
        let slot = Arc::new(Mutex::new(Some(body)));
        let request = http::Request::from_parts(parts, SharedBody(slot.clone()).boxed_unsync());
        Box::new(async move {
            let sent = send(request, permits, plugin, policy, log, contacted, options).await;
            if sent.is_err() {
                let body = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(body) = body {
                    drain(body).await;
                }
            }
            sent
        })
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        super::limits::MAX_BODY_CHUNK_BYTES
    }

    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        1
    }
}

/// Check `request` and send it: the future [`OutboundHttp::send_request`] answers with.
async fn send(
    request: http::Request<WasiBody>,
    permits: Result<[OwnedSemaphorePermit; 2], HttpError>,
    plugin: Arc<crate::PluginIdentity>,
    policy: Arc<NetworkPolicy>,
    log: SharedLog,
    contacted: Arc<Mutex<Vec<String>>>,
    options: Option<RequestOptions>,
) -> Result<(http::Response<WasiBody>, IoFuture), HttpError> {
    let permits = permits?;
    let target = match authorize(&plugin.grants, &policy, request.uri()).await {
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
    // The permits live as long as the connection's I/O task: until the
    // response body is dropped, the connection ends or the run is over.
    let io = async move {
        let _permits = permits;
        io.await
    };
    Ok((response, Box::new(io) as IoFuture))
}

/// How long the body of a request that failed is still read before the failure is
/// answered: 1 s. A guest that finishes its body sooner (every `fetch` with a body
/// does) gets the answer as soon as it has.
const FAILED_BODY_GRACE: Duration = Duration::from_secs(1);

/// Read what is left of a failed request's body and drop it, until the guest finishes
/// it or for [`FAILED_BODY_GRACE`]. Failing the request at once would close the body
/// under a guest still writing it: ComponentizeJS's engine then aborts the whole run
/// ("event loop error, but no exception is pending") instead of rejecting the `fetch`,
/// depending on which of the two came first, and a plugin would see "stream closed"
/// instead of the reason.
async fn drain(mut body: WasiBody) {
    let rest = async { while let Some(Ok(_)) = body.frame().await {} };
    let _ = tokio::time::timeout(FAILED_BODY_GRACE, rest).await;
}

/// A request body that stays in a shared slot, so that [`OutboundHttp::send_request`]
/// can take it back from a request that failed.
struct SharedBody(Arc<Mutex<Option<WasiBody>>>);

impl hyper::body::Body for SharedBody {
    type Data = bytes::Bytes;
    type Error = HttpError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, HttpError>>> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            // Taken back by a failed request: never read as a complete body.
            None => Poll::Ready(Some(Err(HttpError::InternalError(Some(
                "the request body was taken back".into(),
            ))))),
        }
    }

    fn is_end_stream(&self) -> bool {
        let slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref().is_some_and(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        let slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref().map(|b| b.size_hint()).unwrap_or_default()
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
    policy: &NetworkPolicy,
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
    match crate::net::resolve_vetted(&host, port, policy).await {
        Ok(addr) => Ok(Target {
            host,
            addr,
            tls: scheme == Scheme::Https,
        }),
        Err(e) => {
            let code = match &e {
                NetError::Dns(m) => HttpError::DnsError {
                    rcode: Some(m.clone()),
                    info_code: None,
                },
                NetError::DnsTimeout(_) => HttpError::DnsTimeout,
                NetError::NoAddress(_) => HttpError::DestinationNotFound,
                _ => HttpError::DestinationIpProhibited,
            };
            Err((code, e.to_string()))
        }
    }
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
    // A plugin may shorten the timeouts, never lengthen them.
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .map_or(DEFAULT_CONNECT_TIMEOUT, |t| t.min(DEFAULT_CONNECT_TIMEOUT));
    let first_byte_timeout = options
        .and_then(|o| o.first_byte_timeout)
        .map_or(DEFAULT_FIRST_BYTE_TIMEOUT, |t| t.min(DEFAULT_FIRST_BYTE_TIMEOUT));
    let stream = crate::net::connect(&target.host, target.addr, target.tls, false, connect_timeout)
        .await
        .map_err(|e| match e {
            NetError::Refused(_) => HttpError::ConnectionRefused,
            NetError::Timeout(_) => HttpError::ConnectionTimeout,
            NetError::Connect(_, io) => HttpError::Connect(io),
            NetError::Tls(_, io) => HttpError::Tls(io),
            _ => HttpError::HttpRequestUriInvalid,
        })?;
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::Builder::new()
            .max_buf_size(MAX_RESPONSE_HEAD_BYTES)
            .handshake(TokioIo::new(stream)),
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

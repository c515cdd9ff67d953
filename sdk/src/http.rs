//! Outbound HTTP through `wasi:http/outgoing-handler`, for action plugins.
//!
//! The host only lets a request through when its host (and port) was granted to the
//! plugin and the name resolves to an allowed address; otherwise [`send`] returns an
//! [`HttpError`] saying so. Requests are blocking from the plugin's point of view; the
//! run's wall-clock timeout still applies while one is in flight.

use crate::bindings::action::wasi::http::outgoing_handler;
use crate::bindings::action::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use crate::bindings::action::wasi::io::streams::StreamError;

/// Largest response body [`send`] reads before failing: 16 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// An outbound HTTP request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// HTTP method, for example `GET` or `POST` (default `GET` when empty).
    pub method: String,
    /// Absolute `http://` or `https://` URL.
    pub url: String,
    /// Request headers, in order.
    pub headers: Vec<(String, String)>,
    /// Request body (empty for none).
    pub body: Vec<u8>,
    /// Timeout for connecting and for the first response byte, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Largest response body to accept; [`DEFAULT_MAX_RESPONSE_BYTES`] when `None`.
    pub max_response_bytes: Option<usize>,
}

/// A received HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Response headers, in order (values lossily decoded as UTF-8).
    pub headers: Vec<(String, String)>,
    /// The whole response body.
    pub body: Vec<u8>,
}

/// Why a request failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    message: String,
    retryable: bool,
}

impl HttpError {
    /// The reason, as [`Display`](std::fmt::Display) shows it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the same request may succeed later (a refused or timed-out connection, a
    /// DNS failure, a broken stream). False when it never can: the host is not granted,
    /// the address is refused by the operator's policy, or the request itself is invalid
    /// (URL, header, method); an action should fail for good then, not retry.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

/// An error retrying cannot fix (the request is invalid or not allowed).
fn err(msg: impl Into<String>) -> HttpError {
    HttpError {
        message: msg.into(),
        retryable: false,
    }
}

/// An error of the transport, which may pass.
fn transient(msg: impl Into<String>) -> HttpError {
    HttpError {
        message: msg.into(),
        retryable: true,
    }
}

/// Split an absolute URL into scheme, authority and path-with-query.
fn split_url(url: &str) -> Result<(Scheme, &str, &str), HttpError> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else {
        return Err(err(format!("url {url:?} must start with http:// or https://")));
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() {
        return Err(err(format!("url {url:?} has no host")));
    }
    let path = if path.is_empty() { "/" } else { path };
    Ok((scheme, authority, path))
}

fn method(name: &str) -> Method {
    match name.to_ascii_uppercase().as_str() {
        "" | "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_string()),
    }
}

/// The host's error code as an [`HttpError`]: a denial by grant or policy and an invalid
/// request are final, everything else (connection, DNS, timeouts, protocol) transient.
fn describe(code: &ErrorCode) -> HttpError {
    match code {
        ErrorCode::HttpRequestDenied => err("request denied: host not granted to this plugin"),
        ErrorCode::DestinationIpProhibited => err(
            "request denied: host resolves to a prohibited (private, loopback, link-local or reserved) address",
        ),
        ErrorCode::HttpRequestUriInvalid | ErrorCode::HttpRequestMethodInvalid => err(format!("{code:?}")),
        ErrorCode::InternalError(Some(msg)) => transient(msg.clone()),
        other => transient(format!("{other:?}")),
    }
}

/// Send `req` and read the whole response.
pub fn send(req: &Request) -> Result<Response, HttpError> {
    let (scheme, authority, path) = split_url(&req.url)?;
    let headers = Fields::new();
    for (name, value) in &req.headers {
        headers
            .append(name, value.as_bytes())
            .map_err(|e| err(format!("header {name:?}: {e:?}")))?;
    }
    let request = OutgoingRequest::new(headers);
    request
        .set_method(&method(&req.method))
        .map_err(|()| err(format!("invalid method {:?}", req.method)))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| err("invalid scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| err(format!("invalid host {authority:?}")))?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| err(format!("invalid path {path:?}")))?;
    let options = RequestOptions::new();
    if let Some(ms) = req.timeout_ms {
        let ns = ms.saturating_mul(1_000_000);
        let _ = options.set_connect_timeout(Some(ns));
        let _ = options.set_first_byte_timeout(Some(ns));
    }
    let body = request.body().map_err(|()| err("request body already taken"))?;
    let pending = outgoing_handler::handle(request, Some(options)).map_err(|e| describe(&e))?;
    let written = (|| {
        let stream = body
            .write()
            .map_err(|()| err("request body stream unavailable"))?;
        for chunk in req.body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| transient(format!("writing request body: {e:?}")))?;
        }
        Ok(())
    })();
    if let Err(e) = written {
        // The host closes the body when the request failed (refused, no connection):
        // the reason is the response's, once it is there.
        drop(body);
        pending.subscribe().block();
        return Err(match pending.get() {
            Some(Ok(Err(code))) => describe(&code),
            _ => e,
        });
    }
    OutgoingBody::finish(body, None).map_err(|e| describe(&e))?;

    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(describe(&code)),
        Some(Err(())) => return Err(err("response already taken")),
        None => return Err(err("response not ready")),
    };
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let limit = req.max_response_bytes.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
    let incoming = response
        .consume()
        .map_err(|()| err("response body already taken"))?;
    let mut body = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|()| err("response body stream unavailable"))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    if body.len() + chunk.len() > limit {
                        return Err(err(format!("response body larger than {limit} bytes")));
                    }
                    body.extend_from_slice(&chunk);
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(transient(format!(
                        "reading response body: {}",
                        e.to_debug_string()
                    )));
                }
            }
        }
    }
    let _ = IncomingBody::finish(incoming);
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// `GET url` and read the whole response.
pub fn get(url: &str) -> Result<Response, HttpError> {
    send(&Request {
        url: url.to_string(),
        ..Request::default()
    })
}

//! The delivery engine: takes due deliveries from the durable queue, formats each with
//! its webhook's formatter plugin, signs it (Standard Webhooks), sends it through the
//! SSRF guard, and records the attempt (with the retry or the end) in one commit.
//!
//! Each webhook has its own concurrency limit, so a slow or dead endpoint holds only
//! its own slots; delivery is at least once (a crash mid-attempt repeats the attempt,
//! with the same `webhook-id` for the receiver to deduplicate). Connections are kept
//! alive between deliveries to the same vetted address ([`keepalive`]).

pub mod keepalive;

use crate::lock;
use crate::outbox::{Committed, Outbox};
use crate::plugins::PluginCache;
use bytes::Bytes;
use chrono::Utc;
use http_body_util::{BodyExt, Full};
use keepalive::{Endpoint, KeptConnections, Sender};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use sundial_core::grants::NetworkPolicy;
use sundial_core::invocation::RunError;
use sundial_core::limits::Limits;
use sundial_core::plugin::PluginRecord;
use sundial_core::timestamp::now;
use sundial_core::webhook::{Auth, Next, RESERVED_HEADERS, WebhookSpec, after_attempt, parse_retry_after};
use sundial_runtime::{HostServices, PluginIdentity, Runtime};
use sundial_store::sealing::SecretKey;
use sundial_store::webhooks::{Delivery, DeliveryAttempt, DeliveryStatus, WebhookRecord};
use sundial_store::{SharedStore, StoreError};
use tokio::sync::{Notify, Semaphore};

/// What a delivery's claim holds beyond its attempt's timeout (cluster): 10 s.
const CLAIM_MARGIN: Duration = Duration::from_secs(10);

/// Deliveries in flight at once across all webhooks.
pub const MAX_IN_FLIGHT: usize = 512;
/// Bytes of a response body kept in the attempt record.
pub const RESPONSE_SNIPPET_BYTES: usize = 512;
/// Most bytes of a response body read so that its connection can be kept alive: 64 KiB.
/// A longer body is left unread and its connection closed.
pub const MAX_DRAINED_BYTES: usize = 64 * 1024;
/// Longest the rest of a body (after the kept snippet) is read for the same reason:
/// 250 ms. A body still coming after that is left, and its connection closed; the
/// attempt's outcome was decided by the status already.
pub const DRAIN_GRACE: Duration = Duration::from_millis(250);

/// Handle to the delivery engine (cheap to clone).
#[derive(Clone)]
pub struct Deliverer {
    inner: Arc<Inner>,
}

struct Inner {
    store: SharedStore,
    plugins: PluginCache,
    runtime: Runtime,
    services: Arc<dyn HostServices>,
    key: SecretKey,
    policy: NetworkPolicy,
    outbox: Outbox,
    /// Notified when a commit queued deliveries (the outbox's delivery signal).
    wake: Arc<Notify>,
    inflight: Mutex<HashSet<String>>,
    endpoints: Mutex<HashMap<String, (u32, Arc<Semaphore>)>>,
    global: Arc<Semaphore>,
    /// Idle connections kept for the next delivery to the same address.
    kept: KeptConnections,
}

impl Deliverer {
    /// Start the engine.
    pub fn start(
        store: SharedStore,
        plugins: PluginCache,
        outbox: Outbox,
        services: Arc<dyn HostServices>,
        key: SecretKey,
        policy: NetworkPolicy,
    ) -> Deliverer {
        let d = Deliverer {
            inner: Arc::new(Inner {
                store,
                runtime: plugins.runtime().clone(),
                plugins,
                services,
                key,
                policy,
                wake: outbox.delivery_signal(),
                outbox,
                inflight: Mutex::default(),
                endpoints: Mutex::default(),
                global: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
                kept: KeptConnections::default(),
            }),
        };
        tokio::spawn(d.clone().run());
        tokio::spawn(sweep_kept(Arc::downgrade(&d.inner)));
        d
    }

    async fn run(self) {
        // Scans continue after the last queue key seen (new and retried deliveries sort
        // after it), so deliveries held by a slow endpoint are not re-read on every
        // pass; a full scan from the start runs at least once a second.
        let mut mark: Option<String> = None;
        let mut full_scan = Instant::now();
        loop {
            let next = match self.inner.store.next_delivery_due() {
                Ok(n) => n,
                Err(StoreError::Closed) => return,
                Err(e) => {
                    tracing::warn!("reading the delivery queue failed: {e}");
                    None
                }
            };
            let mut started = 0;
            if next.is_some_and(|due| due <= Utc::now()) {
                if full_scan.elapsed() >= Duration::from_secs(1) {
                    mark = None;
                    full_scan = Instant::now();
                }
                let inflight = &self.inner.inflight;
                let due = match self
                    .inner
                    .store
                    .due_deliveries(Utc::now(), mark.as_deref(), 1024, &|id| {
                        lock(inflight).contains(id)
                    }) {
                    Ok((d, last)) => {
                        if d.len() < 1024 {
                            mark = last; // everything up to here is dispatched or in flight
                        }
                        d
                    }
                    Err(StoreError::Closed) => return,
                    Err(e) => {
                        tracing::warn!("reading due deliveries failed: {e}");
                        Vec::new()
                    }
                };
                for id in due {
                    if !lock(&self.inner.inflight).insert(id.clone()) {
                        continue; // being attempted already
                    }
                    started += 1;
                    let this = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = this.attempt(&id).await {
                            tracing::warn!(delivery = %id, "delivery attempt failed to record: {e}");
                        }
                        lock(&this.inner.inflight).remove(&id);
                        this.inner.wake.notify_one();
                    });
                }
            }
            // Sleep until the next due time, a wake, or (when everything due is in
            // flight) until an attempt ends; at most 30 s between looks.
            let wait = match next {
                Some(due) if started > 0 || due > Utc::now() => (due - Utc::now())
                    .to_std()
                    .unwrap_or_default()
                    .min(Duration::from_secs(30)),
                _ => Duration::from_secs(30),
            };
            // In a cluster other nodes queue deliveries too: look again at least this often.
            let wait = match self.inner.store.leases() {
                Some(_) => wait.min(crate::timers::CLUSTER_POLL),
                None => wait,
            };
            let _ = tokio::time::timeout(wait, self.inner.wake.notified()).await;
        }
    }

    fn endpoint(&self, webhook: &WebhookRecord) -> Arc<Semaphore> {
        let mut map = lock(&self.inner.endpoints);
        let limit = webhook.spec.max_concurrency;
        let entry = map
            .entry(webhook.id.clone())
            .or_insert_with(|| (limit, Arc::new(Semaphore::new(limit as usize))));
        if entry.0 != limit {
            *entry = (limit, Arc::new(Semaphore::new(limit as usize)));
        }
        entry.1.clone()
    }

    async fn attempt(&self, id: &str) -> Result<(), StoreError> {
        let Some(mut delivery) = self.inner.store.delivery(id)? else {
            return Ok(());
        };
        // The scan read the queue before this attempt re-read the delivery: an attempt
        // that ended in between may have settled it or put its retry in the future.
        if delivery.status != DeliveryStatus::Queued
            || delivery.next_attempt_at.is_some_and(|due| due > Utc::now())
        {
            return Ok(());
        }
        let webhook = self.inner.store.webhook(&delivery.webhook_id)?;
        let webhook = match webhook {
            Some(w) if w.spec.enabled => w,
            other => {
                let why = match other {
                    None => "the webhook was deleted",
                    Some(_) => "the webhook is disabled",
                };
                return self.finish(delivery, Next::Dead(why.into()), None).await;
            }
        };
        // The endpoint's own slot first: deliveries waiting for a slow endpoint must not
        // hold the global slots that other endpoints need.
        let slot = self.endpoint(&webhook);
        let Ok(_slot) = slot.acquire_owned().await else {
            return Ok(());
        };
        let Ok(_global) = self.inner.global.clone().acquire_owned().await else {
            return Ok(());
        };
        // In a cluster, the node that claims it sends it; held for the attempt's
        // timeouts (the formatter's run, then the request) and a margin, after which
        // another node retries it if this one died. A hold shorter than the formatter's
        // timeout would let a slow formatter lose every claim and never record an attempt.
        let formatter = self.inner.store.plugin(&webhook.spec.formatter);
        let format_time = match &formatter {
            Ok(Some(record)) => record.limits.timeout(),
            _ => Duration::ZERO,
        };
        let hold = format_time + Duration::from_millis(webhook.spec.timeout_ms) + CLAIM_MARGIN;
        // The record as claimed: another node may have attempted it since it was read.
        let Some(claimed) = self.inner.store.claim_delivery(delivery, hold).await? else {
            return Ok(());
        };
        if claimed.status != DeliveryStatus::Queued {
            return Ok(());
        }
        delivery = claimed;
        let number = delivery.attempts.len() as u32 + 1;
        let at = now();
        let started = Instant::now();
        let outcome = self.send(&webhook, &delivery, number, formatter).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let (status, retry_after, response, error, next) = match outcome {
            Ok(answer) => {
                let next = after_attempt(
                    &webhook.spec.retry,
                    number,
                    Some(answer.status),
                    answer.retry_after,
                    rand_unit(),
                );
                (
                    Some(answer.status),
                    answer.retry_after,
                    Some(answer.snippet),
                    None,
                    next,
                )
            }
            Err(Failure::Final(e)) => (None, None, None, Some(e.clone()), Next::Dead(e)),
            Err(Failure::Transient(e)) => {
                let next = after_attempt(&webhook.spec.retry, number, None, None, rand_unit());
                (None, None, None, Some(e), next)
            }
        };
        let _ = retry_after;
        delivery.attempts.push(DeliveryAttempt {
            number,
            at,
            status_code: status,
            latency_ms,
            response,
            error,
        });
        self.finish(delivery, next, Some(&webhook)).await
    }

    /// Record the outcome of an attempt (or of a delivery that cannot be attempted).
    async fn finish(
        &self,
        mut delivery: Delivery,
        next: Next,
        webhook: Option<&WebhookRecord>,
    ) -> Result<(), StoreError> {
        let mut disable = None;
        let mut kinds: Vec<&str> = Vec::new();
        match &next {
            Next::Delivered => {
                delivery.status = DeliveryStatus::Delivered;
                delivery.next_attempt_at = None;
                delivery.finished_at = Some(now());
            }
            Next::RetryIn(d) => {
                delivery.next_attempt_at =
                    Some(Utc::now() + chrono::Duration::from_std(*d).unwrap_or(chrono::Duration::zero()));
            }
            Next::Dead(why) => {
                delivery.status = DeliveryStatus::Dead;
                delivery.next_attempt_at = None;
                delivery.finished_at = Some(now());
                delivery.error = Some(why.clone());
                kinds.push("sundial.webhook.failed");
            }
            Next::Disable => {
                delivery.status = DeliveryStatus::Dead;
                delivery.next_attempt_at = None;
                delivery.finished_at = Some(now());
                let why = "the receiver answered 410 Gone: the webhook was disabled".to_string();
                delivery.error = Some(why.clone());
                disable = Some(why);
                kinds.extend(["sundial.webhook.disabled", "sundial.webhook.failed"]);
            }
        }
        if let Some(w) = webhook
            && matches!(next, Next::Dead(_))
        {
            tracing::warn!(webhook = %w.spec.name, delivery = %delivery.id, "delivery dead: {}", delivery.error.as_deref().unwrap_or_default());
        }
        let mut events = Vec::new();
        {
            for kind in kinds {
                let data = serde_json::json!({
                    "delivery": delivery.id, "webhook": delivery.webhook_name, "webhook_id": delivery.webhook_id,
                    "attempts": delivery.attempts.len(), "error": delivery.error, "event": delivery.event_seq,
                    "last_status": delivery.attempts.last().and_then(|a| a.status_code),
                });
                let event = sundial_core::event::internal(kind, &delivery.webhook_name, data, &now());
                let origin = crate::router::Origin {
                    root: delivery.root.clone(),
                    ..crate::router::Origin::at_depth(delivery.depth + 1)
                };
                events.push(self.inner.outbox.plan(event, origin)?);
            }
        }
        let store = &self.inner.store;
        self.inner
            .outbox
            .commit(async {
                let (_, stored) = store.save_delivery(delivery, disable, events).await?;
                Ok(Committed::new(()).events(stored))
            })
            .await?;
        Ok(())
    }

    /// Format, sign and send one attempt.
    async fn send(
        &self,
        webhook: &WebhookRecord,
        delivery: &Delivery,
        number: u32,
        formatter: Result<Option<PluginRecord>, StoreError>,
    ) -> Result<Answer, Failure> {
        let spec = &webhook.spec;
        let body = self.format(spec, delivery, number, formatter).await?;
        let uri: http::Uri = spec
            .url
            .parse()
            .map_err(|e| Failure::Final(format!("url: {e}")))?;
        let tls = uri.scheme_str() == Some("https");
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let timeout = Duration::from_millis(spec.timeout_ms);
        let addr = sundial_runtime::net::resolve_vetted(&host, port, &self.inner.policy)
            .await
            .map_err(|e| match e {
                sundial_runtime::net::NetError::Prohibited { .. } => {
                    tracing::warn!(webhook = %spec.name, "delivery refused by the network policy (SSRF guard): {e}");
                    Failure::Final(format!("refused by the network policy: {e}"))
                }
                other => Failure::Transient(other.to_string()),
            })?;
        let mut request = http::Request::builder()
            .method(spec.method.http())
            .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
            .header(
                http::header::HOST,
                uri.authority().map(|a| a.as_str()).unwrap_or(&host),
            )
            .header(http::header::CONTENT_TYPE, body.content_type.as_str())
            .header(
                http::header::USER_AGENT,
                concat!("sundial/", env!("CARGO_PKG_VERSION")),
            );
        for h in &spec.headers {
            request = request.header(h.name.as_str(), h.value.as_str());
        }
        for (name, value) in &body.headers {
            if !RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                request = request.header(name.as_str(), value.as_str());
            }
        }
        if let Some((name, value)) = self.auth_header(&spec.auth)? {
            request = request.header(name, value);
        }
        let timestamp = Utc::now().timestamp();
        request = request
            .header("webhook-id", delivery.id.as_str())
            .header("webhook-timestamp", timestamp.to_string());
        if !spec.signing_secrets.is_empty() {
            let mut secrets = Vec::new();
            for name in &spec.signing_secrets {
                let value = self.secret(name)?;
                secrets.push(
                    sundial_sdk::webhook::Secret::parse(&value)
                        .map_err(|e| Failure::Final(format!("signing secret {name:?}: {e}")))?,
                );
            }
            request = request.header(
                "webhook-signature",
                sundial_sdk::webhook::sign_all(&secrets, &delivery.id, timestamp, &body.body),
            );
        }
        let (head, ()) = request
            .body(())
            .map_err(|e| Failure::Final(format!("building the request: {e}")))?
            .into_parts();
        let body = Bytes::from(body.body);
        // The request as often as it is sent: again when a kept connection turns out closed.
        let request = || {
            let mut r = http::Request::new(Full::new(body.clone()));
            *r.method_mut() = head.method.clone();
            *r.uri_mut() = head.uri.clone();
            *r.headers_mut() = head.headers.clone();
            r
        };
        let endpoint = Endpoint {
            host,
            addr,
            tls,
            insecure: spec.allow_insecure_tls,
        };
        // Within the attempt's timeout: the answer's head and the start of its body
        // (kept in the attempt record).
        let exchange = async {
            let (sender, response) = self.exchange(&endpoint, request, timeout, &spec.name).await?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, Utc::now()));
            let mut body = response.into_body();
            let mut snippet = Vec::new();
            let mut ended = false;
            while snippet.len() < RESPONSE_SNIPPET_BYTES {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            snippet.extend_from_slice(data);
                        }
                    }
                    Some(Err(_)) => break,
                    None => {
                        ended = true;
                        break;
                    }
                }
            }
            Ok::<_, Failure>((status, retry_after, snippet, ended, sender, body))
        };
        let (status, retry_after, mut snippet, ended, sender, body) =
            match tokio::time::timeout(timeout, exchange).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(Failure::Transient(format!(
                        "timed out after {} ms",
                        spec.timeout_ms
                    )));
                }
            };
        // The outcome is decided. The rest of the body is read, briefly and up to a
        // bound, only so that the connection can serve the next delivery.
        let complete = ended
            || (snippet.len() >= RESPONSE_SNIPPET_BYTES
                && tokio::time::timeout(DRAIN_GRACE, drain(body, snippet.len()))
                    .await
                    .unwrap_or(false));
        if complete {
            self.inner.kept.park(&endpoint, sender);
        }
        snippet.truncate(RESPONSE_SNIPPET_BYTES);
        Ok(Answer {
            status,
            retry_after,
            snippet: String::from_utf8_lossy(&snippet).into_owned(),
        })
    }

    /// Send one request to `endpoint` on a kept connection if there is one, else on a
    /// new one, and return the connection with the response head. A kept connection
    /// found closed before the request went out on it (the receiver closed it while it
    /// was idle) is not the receiver's failure: the request goes at once on a new
    /// connection, and the other kept connections to that endpoint are let go. Once the
    /// request may have been written, a failure is the attempt's, recorded and retried
    /// as any other: so a receiver never sees a delivery more often than its attempts.
    async fn exchange(
        &self,
        endpoint: &Endpoint,
        request: impl Fn() -> http::Request<Full<Bytes>>,
        timeout: Duration,
        webhook: &str,
    ) -> Result<(Sender, http::Response<hyper::body::Incoming>), Failure> {
        if let Some(mut kept) = self.inner.kept.take(endpoint) {
            let closed = match kept.ready().await {
                Err(e) => e,
                Ok(()) => match kept.try_send_request(request()).await {
                    Ok(response) => return Ok((kept, response)),
                    // Handed back: it never went out.
                    Err(e) if e.message().is_some() => e.into_error(),
                    Err(e) => return Err(Failure::Transient(format!("sending: {}", e.error()))),
                },
            };
            tracing::debug!(%webhook, "a kept connection was closed before the request went out ({closed}): sending on a new one");
            self.inner.kept.forget(endpoint);
        }
        let mut sender = open(endpoint, timeout).await?;
        match sender.send_request(request()).await {
            Ok(response) => Ok((sender, response)),
            Err(e) => Err(Failure::Transient(format!("sending: {e}"))),
        }
    }

    async fn format(
        &self,
        spec: &WebhookSpec,
        d: &Delivery,
        number: u32,
        formatter: Result<Option<PluginRecord>, StoreError>,
    ) -> Result<sundial_core::invocation::HttpBody, Failure> {
        let final_err = |m: String| Failure::Final(format!("formatter {:?}: {m}", spec.formatter));
        let record = formatter
            .map_err(|e| Failure::Transient(e.to_string()))?
            .ok_or_else(|| final_err("not installed".into()))?;
        let plugin = self.inner.plugins.load(&record).await.map_err(|e| match e {
            crate::plugins::LoadFailure::Refused(m) => final_err(m),
            crate::plugins::LoadFailure::Unavailable(m) => {
                Failure::Transient(format!("formatter {:?}: {m}", spec.formatter))
            }
        })?;
        if plugin.world != sundial_core::plugin::World::Formatter {
            // Retrying cannot make an action a formatter.
            return Err(final_err(format!(
                "is {}, not a formatter",
                plugin.world.as_str()
            )));
        }
        let identity = Arc::new(PluginIdentity {
            name: record.name.clone(),
            grants: record.grants.clone(),
        });
        let input = sundial_core::invocation::Delivery {
            id: d.id.clone(),
            webhook: d.webhook_name.clone(),
            attempt: number,
            timestamp: d.created_at.clone(),
            event: d.event.clone(),
            run: d.run.clone(),
            config: spec.formatter_config.clone(),
            template: spec.template.clone(),
        };
        let limits: Limits = record.limits;
        let report = self
            .inner
            .runtime
            .run_formatter(&plugin, identity, &limits, self.inner.services.clone(), &input)
            .await;
        report.result.map_err(|e| formatter_failure(&spec.formatter, e))
    }

    fn secret(&self, name: &str) -> Result<String, Failure> {
        let record = self
            .inner
            .store
            .secret(name)
            .map_err(|e| Failure::Transient(e.to_string()))?
            .ok_or_else(|| Failure::Final(format!("secret {name:?} does not exist")))?;
        let bytes = self
            .inner
            .key
            .open(name, &record.sealed)
            .map_err(|e| Failure::Final(e.to_string()))?;
        String::from_utf8(bytes).map_err(|_| Failure::Final(format!("secret {name:?} is not UTF-8")))
    }

    fn auth_header(&self, auth: &Auth) -> Result<Option<(String, String)>, Failure> {
        use base64::Engine;
        Ok(match auth {
            Auth::None => None,
            Auth::Basic {
                username,
                password_secret,
            } => {
                let pass = self.secret(password_secret)?;
                let token = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{pass}"));
                Some(("authorization".into(), format!("Basic {token}")))
            }
            Auth::Bearer { token_secret } => Some((
                "authorization".into(),
                format!("Bearer {}", self.secret(token_secret)?),
            )),
            Auth::ApiKey { header, key_secret } => Some((header.clone(), self.secret(key_secret)?)),
        })
    }
}

/// The receiver's answer.
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    snippet: String,
}

/// Why an attempt got no answer.
enum Failure {
    /// Retrying cannot help (configuration, policy).
    Final(String),
    /// Worth retrying (network, timeout).
    Transient(String),
}

/// A formatter run's error as the attempt's failure: worth retrying when trying again
/// may help, as for an action's run ([`RunError::is_retryable`]: it timed out, or it
/// could not start, such as when every instance of the pool was busy, or the host
/// failed under it); final otherwise (the formatter refused the delivery, trapped, or
/// broke a limit). A plugin that is not a formatter is refused before this.
fn formatter_failure(formatter: &str, e: RunError) -> Failure {
    let message = format!("formatter {formatter:?}: {e}");
    match e.is_retryable() {
        true => Failure::Transient(message),
        false => Failure::Final(message),
    }
}

fn rand_unit() -> f64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// Read the rest of a response body (`read` bytes of it read already) to its end, up
/// to [`MAX_DRAINED_BYTES`] in all: whether it ended.
async fn drain(mut body: hyper::body::Incoming, mut read: usize) -> bool {
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                read += frame.data_ref().map_or(0, |d| d.len());
                if read > MAX_DRAINED_BYTES {
                    return false;
                }
            }
            Some(Err(_)) => return false,
            None => return true,
        }
    }
}

/// Connect to `endpoint` through the SSRF guard's connect (its vetted address, TLS as the
/// webhook says) and start the connection's I/O on a task of its own.
async fn open(endpoint: &Endpoint, timeout: Duration) -> Result<Sender, Failure> {
    let stream = sundial_runtime::net::connect(
        &endpoint.host,
        endpoint.addr,
        endpoint.tls,
        endpoint.insecure,
        timeout,
    )
    .await
    .map_err(|e| Failure::Transient(e.to_string()))?;
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|e| Failure::Transient(format!("HTTP handshake: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Close kept connections once they have idled [`keepalive::IDLE_TIMEOUT`] (looked
/// over every [`keepalive::SWEEP_EVERY`]), until the deliverer is gone.
async fn sweep_kept(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(keepalive::SWEEP_EVERY).await;
        match inner.upgrade() {
            Some(inner) => inner.kept.sweep(),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_formatter_that_could_not_start_or_timed_out_is_retried_and_one_that_refused_is_not() {
        for e in [
            RunError::Instantiate("instance pool exhausted".into()),
            RunError::Timeout("5 s".into()),
        ] {
            match formatter_failure("json", e) {
                Failure::Transient(m) => assert!(m.starts_with("formatter \"json\": "), "{m}"),
                Failure::Final(m) => panic!("final: {m}"),
            }
        }
        for e in [
            RunError::Failed("no template".into()),
            RunError::Trap("unreachable".into()),
            RunError::MemoryLimit("64 MiB".into()),
            RunError::OutputTooLarge("2 MiB".into()),
        ] {
            assert!(matches!(formatter_failure("json", e), Failure::Final(_)));
        }
    }
}

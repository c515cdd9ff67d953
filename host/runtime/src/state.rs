//! The data of one run's `Store`: WASI context (deny-by-default), HTTP hooks, the
//! memory limiter, the log, and the implementation of the `sundial:plugin/host` and
//! `sundial:plugin/mail` interfaces with their grant checks.

use super::bindings::action::sundial::plugin::host as wit_host;
use super::bindings::action::sundial::plugin::mail as wit_mail;
use super::grants::Grants;
use super::log::{Level, Origin, SharedLog};
use super::outbound::OutboundHttp;
use super::services::{HostServices, MAX_KV_KEY_BYTES, MAX_KV_VALUE_BYTES};
use bytes::Bytes;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use sundial_core::invocation::EmittedEvent;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Most events one run may emit.
pub const MAX_EVENTS_PER_RUN: usize = 100;
/// Largest `data` of an emitted event, in bytes.
pub const MAX_EVENT_DATA_BYTES: usize = 256 * 1024;

/// Identity and capabilities of the plugin a store runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginIdentity {
    /// Installed name (the key-value namespace and the event source).
    pub name: String,
    /// What it may do.
    pub grants: Grants,
}

/// Memory accounting for one store; denies growth past the cap and remembers it did.
#[derive(Debug)]
pub(crate) struct Limiter {
    cap: usize,
    total: usize,
    pub(crate) peak: usize,
    pub(crate) hit: bool,
}

impl Limiter {
    pub(crate) fn new(cap: u64) -> Limiter {
        Limiter {
            cap: usize::try_from(cap).unwrap_or(usize::MAX),
            total: 0,
            peak: 0,
            hit: false,
        }
    }
}

impl Limiter {
    /// Bytes of linear memory the store has now.
    pub(crate) fn total(&self) -> usize {
        self.total
    }

    /// Start a new run on a store kept from an earlier one: its memory stays, the
    /// cap is the new run's, the peak starts at what it has.
    pub(crate) fn rearm(&mut self, cap: u64) {
        self.cap = usize::try_from(cap).unwrap_or(usize::MAX);
        self.peak = self.total;
        self.hit = false;
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.total.saturating_sub(current).saturating_add(desired);
        if total > self.cap {
            self.hit = true;
            return Ok(false);
        }
        self.total = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        8
    }
}

/// Everything a plugin's store owns for one run.
pub(crate) struct RunState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) http: WasiHttpCtx,
    pub(crate) hooks: OutboundHttp,
    pub(crate) limiter: Limiter,
    pub(crate) log: SharedLog,
    /// Where stdout and stderr go: the current run's log.
    pub(crate) stdio: StdioLog,
    pub(crate) plugin: Arc<PluginIdentity>,
    pub(crate) services: Arc<dyn HostServices>,
    pub(crate) events: Vec<EmittedEvent>,
    /// Secret values this store's runs read, each once: redacted from the log, errors,
    /// output and events of this run and of every later run of the same instance (which
    /// may still hold them in memory).
    pub(crate) secrets_read: Vec<String>,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RunState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl RunState {
    fn denied(&self, what: &str) -> String {
        let msg = format!("{what} is not granted to plugin {:?}", self.plugin.name);
        self.log.push(Level::Warn, Origin::Host, &msg);
        msg
    }

    fn check_kv(&self, key: &str) -> Result<(), String> {
        if !self.plugin.grants.kv {
            return Err(self.denied("key-value access"));
        }
        if key.is_empty() || key.len() > MAX_KV_KEY_BYTES {
            return Err(format!(
                "key must be 1..={MAX_KV_KEY_BYTES} bytes, got {}",
                key.len()
            ));
        }
        Ok(())
    }
}

impl wit_host::Host for RunState {
    fn log(&mut self, level: wit_host::Level, message: String) {
        let level = match level {
            wit_host::Level::Trace => Level::Trace,
            wit_host::Level::Debug => Level::Debug,
            wit_host::Level::Info => Level::Info,
            wit_host::Level::Warn => Level::Warn,
            wit_host::Level::Error => Level::Error,
        };
        self.log.push(level, Origin::Plugin, &message);
    }

    fn emit_event(&mut self, kind: String, subject: Option<String>, data: String) -> Result<(), String> {
        if !self.plugin.grants.emit_events {
            return Err(self.denied("emitting events"));
        }
        let valid_kind = !kind.is_empty()
            && kind.len() <= 256
            && kind
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !valid_kind {
            return Err(format!(
                "event type {kind:?} must be 1..=256 characters of [A-Za-z0-9._-]"
            ));
        }
        if kind.starts_with("sundial.") {
            return Err(format!(
                "event type {kind:?}: the `sundial.` prefix is reserved for the daemon"
            ));
        }
        if data.len() > MAX_EVENT_DATA_BYTES {
            return Err(format!(
                "event data is {} bytes, over {MAX_EVENT_DATA_BYTES}",
                data.len()
            ));
        }
        let data = sundial_core::json::parse_str(&data)
            .map_err(|e| format!("event data is not accepted JSON: {e}"))?;
        if self.events.len() >= MAX_EVENTS_PER_RUN {
            return Err(format!("a run may emit at most {MAX_EVENTS_PER_RUN} events"));
        }
        self.events.push(EmittedEvent { kind, subject, data });
        Ok(())
    }

    async fn kv_get(&mut self, key: String) -> Result<Option<Vec<u8>>, String> {
        self.check_kv(&key)?;
        self.services.kv_get(&self.plugin.name, &key).await
    }

    async fn kv_set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        self.check_kv(&key)?;
        if value.len() > MAX_KV_VALUE_BYTES {
            return Err(format!(
                "value is {} bytes, over {MAX_KV_VALUE_BYTES}",
                value.len()
            ));
        }
        self.services.kv_set(&self.plugin.name, &key, value).await
    }

    async fn kv_delete(&mut self, key: String) -> Result<(), String> {
        self.check_kv(&key)?;
        self.services.kv_delete(&self.plugin.name, &key).await
    }

    async fn secret(&mut self, name: String) -> Option<String> {
        if !self.plugin.grants.secrets.contains(&name) {
            self.denied(&format!("secret {name:?}"));
            return None;
        }
        let value = self.services.secret(&name).await;
        if let Some(v) = &value
            && !self.secrets_read.contains(v)
        {
            self.secrets_read.push(v.clone());
        }
        value
    }
}

impl wit_mail::Host for RunState {
    async fn send(&mut self, m: wit_mail::Message) -> Result<String, wit_mail::MailError> {
        if !self.plugin.grants.mail {
            return Err(wit_mail::MailError::Denied(self.denied("sending mail")));
        }
        let recipients = m.to.len() + m.cc.len() + m.bcc.len();
        let message = crate::mail::Message {
            from: m.from,
            to: m.to,
            cc: m.cc,
            bcc: m.bcc,
            reply_to: m.reply_to,
            subject: m.subject,
            body: m.body,
            html: m.html,
        };
        let result = self.services.send_mail(&self.plugin.name, message).await;
        match &result {
            Ok(answer) => self.log.push(
                Level::Info,
                Origin::Host,
                &format!("mail to {recipients} recipients accepted by the relay: {answer}"),
            ),
            Err(e) => self
                .log
                .push(Level::Warn, Origin::Host, &format!("mail not sent: {e}")),
        }
        result.map_err(|e| match e {
            crate::mail::MailError::Denied(m) => wit_mail::MailError::Denied(m),
            crate::mail::MailError::Invalid(m) => wit_mail::MailError::Invalid(m),
            crate::mail::MailError::Rejected(m) => wit_mail::MailError::Rejected(m),
            crate::mail::MailError::Unavailable(m) => wit_mail::MailError::Unavailable(m),
        })
    }
}

/// The plugin's stdout or stderr: every byte goes to the run log (bounded there);
/// writes never fail, so a chatty plugin is truncated rather than crashed.
///
/// The log it writes to is the current run's: an instance kept for another run
/// (`limits.runs_per_instance`) keeps its streams, and the host points them at the
/// next run's log.
#[derive(Clone)]
pub(crate) struct LogStream {
    pub(crate) log: StdioLog,
    pub(crate) origin: Origin,
}

/// The run log a store's stdout and stderr write to, replaceable between runs.
#[derive(Clone)]
pub(crate) struct StdioLog(Arc<std::sync::Mutex<SharedLog>>);

impl StdioLog {
    pub(crate) fn new(log: SharedLog) -> StdioLog {
        StdioLog(Arc::new(std::sync::Mutex::new(log)))
    }

    /// Send what is written from now on to `log`.
    pub(crate) fn set(&self, log: SharedLog) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = log;
    }

    fn write(&self, origin: Origin, bytes: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write_stream(origin, bytes);
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.log.write(self.origin, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.log.write(self.origin, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

//! # sundial-sdk: write Sundial plugins in Rust
//!
//! A Sundial plugin is a WebAssembly component that implements the `action` world
//! (the body of a task) or the `formatter` world (turns a webhook delivery into an HTTP
//! body) of the WIT package `sundial:plugin@0.1.0` (see `wit/sundial.wit`). This crate
//! hides the bindings: you write a struct, implement one trait method that takes typed
//! (serde) parameters, and call one export macro.
//!
//! ## A complete action plugin
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "hello"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! sundial-sdk = { path = "../sdk" }
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```no_run
//! use serde::Deserialize;
//! use sundial_sdk::{Action, ActionError, Invocation, log};
//!
//! #[derive(Deserialize)]
//! struct Params {
//!     name: String,
//! }
//!
//! struct Hello;
//!
//! impl Action for Hello {
//!     type Params = Params;
//!     type Output = serde_json::Value;
//!
//!     fn run(inv: Invocation, params: Params) -> Result<Self::Output, ActionError> {
//!         log::info(&format!("run {} greets {}", inv.run_id, params.name));
//!         Ok(serde_json::json!({ "greeting": format!("Hello, {}!", params.name) }))
//!     }
//! }
//!
//! sundial_sdk::export_action!(Hello);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2` and try it with
//! `sundial plugin run target/wasm32-wasip2/release/hello.wasm --params '{"name":"Ada"}'`.
//!
//! ## What a plugin can reach
//!
//! Only what the operator granted: [`log`] always; [`emit_event`], [`kv`],
//! [`secret`] and [`mail`] when granted; [`http`] only to granted hosts. There is no filesystem,
//! no environment and no sockets. `println!`/`eprintln!` output is captured into the
//! run's log (as `info` and `warn` lines), so a panic message shows up there too.

#![warn(missing_docs)]

pub mod config;
pub mod http;
pub mod message;
pub mod template;
pub mod webhook;

/// Raw bindings generated from `wit/sundial.wit`. Plugin authors normally use the
/// re-exports at the crate root instead.
#[doc(hidden)]
pub mod bindings {
    /// Bindings of the `action` world (also home of the shared types and host imports).
    pub mod action {
        wit_bindgen::generate!({
            path: "../wit",
            world: "sundial:plugin/action",
            pub_export_macro: true,
            export_macro_name: "__export_action_world",
            default_bindings_module: "sundial_sdk::bindings::action",
            generate_all,
        });
    }
    /// Bindings of the `formatter` world; reuses the action world's types and imports.
    pub mod formatter {
        wit_bindgen::generate!({
            path: "../wit",
            world: "sundial:plugin/formatter",
            pub_export_macro: true,
            export_macro_name: "__export_formatter_world",
            default_bindings_module: "sundial_sdk::bindings::formatter",
            with: {
                "sundial:plugin/types@0.1.0": crate::bindings::action::sundial::plugin::types,
                "sundial:plugin/host@0.1.0": crate::bindings::action::sundial::plugin::host,
            },
        });
    }
}

use bindings::action::sundial::plugin::host as raw_host;
pub use bindings::action::sundial::plugin::types::{
    ActionError, Cause, Delivery, Event, HttpBody, Invocation,
};
use serde::{Serialize, de::DeserializeOwned};

/// The body of a task. Implement this for a unit struct and export it with
/// [`export_action!`].
pub trait Action {
    /// The task's parameters. They arrive as JSON and are deserialized with serde;
    /// a mismatch fails the run with [`ActionError::InvalidParams`] before `run`.
    type Params: DeserializeOwned;
    /// The run's output, serialized to JSON and stored in the task log.
    type Output: Serialize;
    /// Run once. Return [`ActionError::Retryable`] for transient failures.
    fn run(inv: Invocation, params: Self::Params) -> Result<Self::Output, ActionError>;
}

/// A webhook formatter. Implement this and export it with [`export_formatter!`].
pub trait Formatter {
    /// Turn the delivery into the body to send, or explain why it cannot be sent.
    fn format(delivery: Delivery) -> Result<HttpBody, String>;
}

/// Glue used by [`export_action!`]: decodes params, calls the action, encodes output.
#[doc(hidden)]
pub fn __run_action<A: Action>(inv: Invocation) -> Result<String, ActionError> {
    let params: A::Params =
        serde_json::from_str(&inv.params).map_err(|e| ActionError::InvalidParams(format!("params: {e}")))?;
    let output = A::run(inv, params)?;
    serde_json::to_string(&output)
        .map_err(|e| ActionError::Failed(format!("output is not serializable to JSON: {e}")))
}

/// What an action's `run` export returns to the host.
#[doc(hidden)]
pub type __ActionResult = Result<String, ActionError>;

/// What a formatter's `format` export returns to the host.
#[doc(hidden)]
pub type __FormatterResult = Result<HttpBody, String>;

/// Export a type implementing [`Action`] as this component's `run` function.
///
/// Call it once, at the crate root of a `cdylib` crate built for `wasm32-wasip2`.
#[macro_export]
macro_rules! export_action {
    ($ty:ty) => {
        $crate::__export_world!(action, __export_action_world, run(inv: $crate::Invocation) -> $crate::__ActionResult {
            $crate::__run_action::<$ty>(inv)
        });
    };
}

/// Export a type implementing [`Formatter`] as this component's `format` function.
#[macro_export]
macro_rules! export_formatter {
    ($ty:ty) => {
        $crate::__export_world!(formatter, __export_formatter_world, format(d: $crate::Delivery) -> $crate::__FormatterResult {
            <$ty as $crate::Formatter>::format(d)
        });
    };
}

/// Glue used by [`export_action!`] and [`export_formatter!`]: implement the world's
/// `Guest` trait with the one function given and export it through the bindings.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_world {
    ($world:ident, $export:ident, $f:ident($arg:ident: $in:ty) -> $out:ty $body:block) => {
        const _: () = {
            struct __SundialExport;
            impl $crate::bindings::$world::Guest for __SundialExport {
                fn $f($arg: $in) -> $out $body
            }
            $crate::bindings::$world::$export!(__SundialExport with_types_in $crate::bindings::$world);
        };
    };
}

/// Leveled logging into the run's log. Always allowed; lines past the plugin's log
/// limits are dropped by the host and the log is marked truncated.
pub mod log {
    use super::raw_host::{self, Level};

    /// Log at `trace` level.
    pub fn trace(message: &str) {
        raw_host::log(Level::Trace, message)
    }
    /// Log at `debug` level.
    pub fn debug(message: &str) {
        raw_host::log(Level::Debug, message)
    }
    /// Log at `info` level.
    pub fn info(message: &str) {
        raw_host::log(Level::Info, message)
    }
    /// Log at `warn` level.
    pub fn warn(message: &str) {
        raw_host::log(Level::Warn, message)
    }
    /// Log at `error` level.
    pub fn error(message: &str) {
        raw_host::log(Level::Error, message)
    }
}

/// Emit an event of type `kind` (needs the `emit-events` grant). `data` is serialized
/// to JSON. The host sets the event's source and records which run emitted it.
pub fn emit_event(kind: &str, subject: Option<&str>, data: &impl Serialize) -> Result<(), String> {
    let data = serde_json::to_string(data).map_err(|e| format!("event data: {e}"))?;
    raw_host::emit_event(kind, subject, &data)
}

/// The value of a secret granted to this plugin, or `None` (not granted or not set).
pub fn secret(name: &str) -> Option<String> {
    raw_host::secret(name)
}

/// Mail through the SMTP relay the operator configured (needs the `mail` grant).
pub mod mail {
    pub use super::bindings::action::sundial::plugin::mail::{MailError, Message};

    /// Send one message; the relay's answer (`250 ...`) on success.
    pub fn send(message: &Message) -> Result<String, MailError> {
        super::bindings::action::sundial::plugin::mail::send(message)
    }

    /// A one-line description of `e` for logs and run errors.
    pub fn describe(e: &MailError) -> String {
        match e {
            MailError::Denied(m) => format!("denied: {m}"),
            MailError::Invalid(m) => format!("invalid: {m}"),
            MailError::Rejected(m) => format!("rejected by the relay: {m}"),
            MailError::Unavailable(m) => format!("relay unavailable: {m}"),
        }
    }
}

/// The plugin's own persistent key-value namespace (needs the `kv` grant).
pub mod kv {
    use super::raw_host;

    /// Read a key; `Ok(None)` when it is absent.
    pub fn get(key: &str) -> Result<Option<Vec<u8>>, String> {
        raw_host::kv_get(key)
    }
    /// Write a key (keys up to 256 bytes, values up to 1 MiB).
    pub fn set(key: &str, value: &[u8]) -> Result<(), String> {
        raw_host::kv_set(key, value)
    }
    /// Delete a key; deleting an absent key is not an error.
    pub fn delete(key: &str) -> Result<(), String> {
        raw_host::kv_delete(key)
    }
}

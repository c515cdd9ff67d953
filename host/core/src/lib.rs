//! Sundial's domain, pure: the nouns (tasks, runs, triggers, events, schedules,
//! calendars, webhooks, plugin records), the limits and grants a plugin runs under,
//! and the data that passes between the engine and a plugin run (invocations, run
//! errors, run logs). Decisions take time and randomness as arguments.
//!
//! Rule of this layer: no I/O crate (no tokio, redb, wasmtime, hyper or axum); every
//! other Sundial crate depends on this one. See `docs/ARCHITECTURE.md`.

#![warn(missing_docs)]

pub mod activity;
pub mod address;
pub mod calendar;
pub mod event;
pub mod grants;
pub mod hash;
pub mod ids;
pub mod invocation;
pub mod json;
pub mod limits;
pub mod log;
pub mod metrics;
pub mod plugin;
pub mod run;
pub mod schedule;
pub mod secret;
pub mod task;
pub mod timestamp;
pub mod trigger;
pub mod webhook;

/// A value the domain refuses, with a message that names the field or part and says
/// what is wrong (`on.filter.all[0].gt: expected a number`). Every validation and
/// parse at this crate's boundary answers with it; the API turns it into a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<String> for Invalid {
    fn from(message: String) -> Invalid {
        Invalid(message)
    }
}

/// The message, to read or match on.
impl std::ops::Deref for Invalid {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Where errors end as text (the command line prints them).
impl From<Invalid> for String {
    fn from(e: Invalid) -> String {
        e.0
    }
}

impl From<&str> for Invalid {
    fn from(message: &str) -> Invalid {
        Invalid(message.to_string())
    }
}

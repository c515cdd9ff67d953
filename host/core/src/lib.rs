//! Sundial's domain, pure: the nouns (tasks, runs, triggers, events, schedules,
//! calendars, webhooks, plugin records), the limits and grants a plugin runs under,
//! and the data that passes between the engine and a plugin run (invocations, run
//! errors, run logs). Decisions take time and randomness as arguments.
//!
//! Rule of this layer: no I/O crate (no tokio, redb, wasmtime, hyper or axum); every
//! other Sundial crate depends on this one. See `docs/ARCHITECTURE.md`.

#![warn(missing_docs)]

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

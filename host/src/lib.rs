#![recursion_limit = "512"]
//! Sundial: an automation runtime that runs every task action as a sandboxed
//! WebAssembly component. See `docs/ARCHITECTURE.md` for the module map.

#![warn(missing_docs)]

pub mod api;
pub mod backup;
pub mod bundled;
pub mod calendar;
pub mod cli;
pub mod clock;
pub mod daemon;
pub mod declarative;
pub mod event;
pub mod executor;
pub mod fdlimit;
pub mod ids;
pub mod json;
pub mod mail;
pub mod metrics;
pub mod net;
pub mod plugin;
pub mod retention;
pub mod router;
pub mod run;
pub mod runtime;
pub mod schedule;
pub mod scheduler;
pub mod secrets;
pub mod store;
pub mod task;
pub mod timestamp;
pub mod trigger;
pub mod webhook;

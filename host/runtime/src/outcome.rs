//! Turning how a call ended into a [`RunError`]: deadline, fuel, memory cap, the kind
//! of trap (quoting a panic message from stderr), and previews of bad output.

use super::limits::{self, Limits};
use super::log::SharedLog;
use super::state::RunState;
use sundial_core::invocation::RunError;
use wasmtime::Trap;

/// Marker error the epoch callback raises when a run's deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
pub(super) struct DeadlineExceeded;

pub(super) fn timeout_error(limits: &Limits) -> RunError {
    RunError::Timeout(format!(
        "the run exceeded its {} ms wall-clock limit",
        limits.timeout_ms
    ))
}

/// Turn a wasmtime error into the reason the run failed.
pub(super) fn classify(e: &wasmtime::Error, state: &RunState, limits: &Limits, log: &SharedLog) -> RunError {
    if e.is::<DeadlineExceeded>() {
        return timeout_error(limits);
    }
    let trap = e.downcast_ref::<Trap>().copied();
    if trap == Some(Trap::OutOfFuel) {
        return RunError::FuelExhausted(format!(
            "used all {} units of fuel",
            limits.fuel.unwrap_or(u64::MAX)
        ));
    }
    if trap == Some(Trap::Interrupt) {
        return timeout_error(limits);
    }
    if state.limiter.hit {
        return RunError::MemoryLimit(format!(
            "the plugin tried to grow its memory past its {} MiB cap and stopped ({})",
            limits.memory_bytes / limits::MIB,
            trap.map(|t| t.to_string()).unwrap_or_else(|| format!("{e}"))
        ));
    }
    if let Some(why) = resource_limit(e, limits) {
        return RunError::ResourceLimit(why);
    }
    let Some(trap) = trap else {
        // Not a trap: a failure during instantiation or in a host call.
        return RunError::Instantiate(format!("{e:#}"));
    };
    let stderr = log.stderr_tail(4);
    let mut message = match trap {
        Trap::StackOverflow => "stack overflow: the plugin exhausted its call stack".to_string(),
        Trap::MemoryOutOfBounds => {
            "out-of-bounds memory access (a bug in the plugin, or its shadow stack overflowed)".to_string()
        }
        Trap::UnreachableCodeReached if stderr.contains("panicked at") => "the plugin panicked".to_string(),
        other => other.to_string(),
    };
    if !stderr.is_empty() {
        message.push_str(": ");
        message.push_str(stderr.trim());
    }
    RunError::Trap(message)
}

/// The host-side limit `e` reports, if it reports one: the resource table or the
/// guest's handle table is full (`limits.max_resources`), or a header map outgrew
/// [`limits::MAX_FIELDS_BYTES`].
fn resource_limit(e: &wasmtime::Error, limits: &Limits) -> Option<String> {
    use wasmtime::component::ResourceTableError;
    use wasmtime_wasi_http::FieldMapError;
    let table_full = matches!(
        e.downcast_ref::<ResourceTableError>(),
        Some(ResourceTableError::Full)
    ) || format!("{e:#}").contains("store handle limit exceeded");
    if table_full {
        return Some(format!(
            "the plugin held more than {} host resources at once (HTTP header maps, requests, bodies, streams; limits.max_resources)",
            limits.max_resources
        ));
    }
    match e.downcast_ref::<FieldMapError>() {
        Some(FieldMapError::TotalSizeTooBig | FieldMapError::TooManyFields) => Some(format!(
            "the plugin built an HTTP header map larger than {} KiB",
            limits::MAX_FIELDS_BYTES / 1024
        )),
        _ => None,
    }
}

pub(super) fn preview(text: &str) -> &str {
    let mut end = text.len().min(120);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

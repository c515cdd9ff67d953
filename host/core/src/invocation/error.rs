//! Typed errors of the runtime: why a component could not be loaded, and why a run
//! did not produce output. Every plugin misbehaviour ends up as one of these.

use serde::{Deserialize, Serialize};

/// Why a component could not be loaded (validated, compiled, linked).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly file: it does not start with the `\\0asm` magic bytes")]
    NotWasm,
    /// A core module rather than a component.
    #[error(
        "this is a core WebAssembly module, not a component: build the plugin for \
         `wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    /// The component failed to validate or compile.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// It exports neither world's function.
    #[error(
        "the component implements neither Sundial world: an action exports `run`, a \
         formatter exports `format` (it exports: {exports})"
    )]
    UnknownWorld {
        /// The component's exports, comma-separated.
        exports: String,
    },
    /// It has the right export names but the wrong types or imports.
    #[error("incompatible {world} component: {reason}")]
    Incompatible {
        /// The world it looked like.
        world: &'static str,
        /// What the linker or type check said.
        reason: String,
    },
    /// The caller asked for one world and the component implements the other.
    #[error("expected an {expected} plugin, but this component is a {found}")]
    WrongWorld {
        /// The world the caller needs.
        expected: &'static str,
        /// The world the component implements.
        found: &'static str,
    },
    /// Reading the file or the compile cache failed.
    #[error("{0}")]
    Io(String),
    /// The compiler process ended without an answer (crashed, killed, too slow): says
    /// nothing about the component, and a later load may succeed.
    #[error("compiling failed: {0}")]
    Compiler(String),
}

impl LoadError {
    /// Whether loading the same bytes again may succeed (the failure was not the
    /// component's).
    pub fn is_transient(&self) -> bool {
        matches!(self, LoadError::Io(_) | LoadError::Compiler(_))
    }
}

/// Why a run produced no output. Serialized as `{"kind": "...", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error, schemars::JsonSchema)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum RunError {
    /// The plugin rejected its parameters (`action-error::invalid-params`).
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// The plugin reported a failure (`action-error::failed`, or a formatter's error).
    #[error("failed: {0}")]
    Failed(String),
    /// The plugin reported a transient failure (`action-error::retryable`).
    #[error("retryable: {0}")]
    Retryable(String),
    /// The wall-clock deadline passed.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The plugin hit its memory cap and died of it.
    #[error("memory limit: {0}")]
    MemoryLimit(String),
    /// The fuel budget ran out.
    #[error("fuel exhausted: {0}")]
    FuelExhausted(String),
    /// The plugin held more host-side resources than its limits allow (HTTP header
    /// maps, requests, bodies, streams: `limits.max_resources`, header map size).
    #[error("resource limit: {0}")]
    ResourceLimit(String),
    /// The output is larger than allowed.
    #[error("output too large: {0}")]
    OutputTooLarge(String),
    /// The output is not valid JSON.
    #[error("bad output: {0}")]
    BadOutput(String),
    /// The plugin trapped: a panic, `unreachable`, stack overflow, bad memory access.
    #[error("trapped: {0}")]
    Trap(String),
    /// Instantiation failed (for example the instance pool is exhausted).
    #[error("could not start the plugin: {0}")]
    Instantiate(String),
}

impl RunError {
    /// The same error with its message passed through `f`.
    pub fn map_message(&self, f: impl FnOnce(&str) -> String) -> RunError {
        use RunError::*;
        match self {
            InvalidParams(m) => InvalidParams(f(m)),
            Failed(m) => Failed(f(m)),
            Retryable(m) => Retryable(f(m)),
            Timeout(m) => Timeout(f(m)),
            MemoryLimit(m) => MemoryLimit(f(m)),
            FuelExhausted(m) => FuelExhausted(f(m)),
            ResourceLimit(m) => ResourceLimit(f(m)),
            OutputTooLarge(m) => OutputTooLarge(f(m)),
            BadOutput(m) => BadOutput(f(m)),
            Trap(m) => Trap(f(m)),
            Instantiate(m) => Instantiate(f(m)),
        }
    }

    /// True when a resource limit stopped the run (timeout, memory, fuel, host
    /// resources, output).
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            RunError::Timeout(_)
                | RunError::MemoryLimit(_)
                | RunError::FuelExhausted(_)
                | RunError::ResourceLimit(_)
                | RunError::OutputTooLarge(_)
        )
    }

    /// True when trying again may help: the plugin said so, or it timed out.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            RunError::Retryable(_) | RunError::Timeout(_) | RunError::Instantiate(_)
        )
    }

    /// The snake_case name of the variant, as serialized.
    pub fn kind(&self) -> &'static str {
        match self {
            RunError::InvalidParams(_) => "invalid_params",
            RunError::Failed(_) => "failed",
            RunError::Retryable(_) => "retryable",
            RunError::Timeout(_) => "timeout",
            RunError::MemoryLimit(_) => "memory_limit",
            RunError::FuelExhausted(_) => "fuel_exhausted",
            RunError::ResourceLimit(_) => "resource_limit",
            RunError::OutputTooLarge(_) => "output_too_large",
            RunError::BadOutput(_) => "bad_output",
            RunError::Trap(_) => "trap",
            RunError::Instantiate(_) => "instantiate",
        }
    }
}

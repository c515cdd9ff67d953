//! Sundial: an automation runtime that runs every task action as a sandboxed
//! WebAssembly component. This crate is the `sundial` binary's: the command line,
//! the daemon's assembly, `apply`, and the plugins bundled into the binary. The layers
//! below it are crates of their own (`sundial-core`, `-store`, `-runtime`, `-engine`,
//! `-server`); `docs/ARCHITECTURE.md` draws the graph.

#![warn(missing_docs)]

pub mod bundled;
pub mod cli;
pub mod daemon;
pub mod declarative;
pub mod fdlimit;
pub mod node;

//! Sundial's engines: the [`executor`] runs queued runs through the plugin runtime,
//! the [`scheduler`] fires schedule slots, the [`router`] turns events into runs and
//! deliveries, the [`deliverer`] sends webhook deliveries, [`retention`] prunes old
//! records; [`services`] are what plugins may ask of the host; [`clock`] is the one
//! time source they share.
//!
//! Rule of this layer: engines talk to persistence through `sundial-store` and to
//! plugins through `sundial-runtime`; nothing here knows HTTP routes or the CLI.
//! See `docs/ARCHITECTURE.md`.

#![warn(missing_docs)]

pub mod clock;
pub mod deliverer;
pub mod executor;
pub mod retention;
pub mod router;
pub mod scheduler;
pub mod services;

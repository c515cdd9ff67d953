//! The plugins shipped inside the binary, built from `plugins/` by `build.rs`.

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// The component bytes of bundled plugin `name` (`echo`, `http-request`, and the
/// formatters `json`, `template`, `slack`, `teams`, `pagerduty`).
pub fn get(name: &str) -> Option<&'static [u8]> {
    BUNDLED.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// The bundled formatters: Rust components that keep no state between calls.
const FORMATTERS: &[&str] = &["json", "template", "slack", "teams", "pagerduty"];

/// Runs one instance of a bundled formatter serves: 1 000. A delivery's formatter call
/// is then a call on a kept instance instead of an instantiation (about 15 % more
/// deliveries per second, `docs/BENCHMARKS.md`); they hold no state, so nothing passes
/// from one delivery to the next.
pub const FORMATTER_RUNS_PER_INSTANCE: u32 = 1_000;

/// The limits bundled plugin `name` is installed with: the defaults, and for the
/// formatters an instance kept for [`FORMATTER_RUNS_PER_INSTANCE`] runs. An operator
/// may change them like any plugin's; an upgrade keeps what is installed.
pub fn limits(name: &str) -> sundial_core::limits::Limits {
    let mut limits = sundial_core::limits::Limits::default();
    if FORMATTERS.contains(&name) {
        limits.runs_per_instance = FORMATTER_RUNS_PER_INSTANCE;
    }
    limits
}

//! The plugins shipped inside the binary, built from `plugins/` by `build.rs`.

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// The component bytes of bundled plugin `name` (`echo`, `http-request`, and the
/// formatters `json`, `template`, `slack`, `teams`, `pagerduty`).
pub fn get(name: &str) -> Option<&'static [u8]> {
    BUNDLED.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

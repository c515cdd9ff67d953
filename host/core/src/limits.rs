//! Per-plugin resource limits, their documented defaults, and parsing of the human
//! units operators type (`64MiB`, `30s`). Pure: no I/O.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One mebibyte, in bytes.
pub const MIB: u64 = 1024 * 1024;

/// Limits applied to every run of a plugin. Each field's default is documented on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Cap on the plugin's linear memory (all memories together), in bytes.
    /// Default 64 MiB. Growing past it fails inside the plugin; a plugin that then
    /// dies is reported as `memory_limit`.
    #[schemars(range(min = 1_048_576, max = 4_294_967_296u64))]
    pub memory_bytes: u64,
    /// Wall-clock deadline for one run, in milliseconds, covering instantiation,
    /// guest code and time blocked in host calls (HTTP, key-value). Default 30 000.
    #[schemars(range(min = 1, max = 86_400_000))]
    pub timeout_ms: u64,
    /// Optional fuel budget (roughly one unit per wasm instruction). Default: none.
    #[schemars(range(min = 1))]
    pub fuel: Option<u64>,
    /// Largest accepted output (the JSON returned by `run`), in bytes. Default 1 MiB.
    #[schemars(range(min = 1, max = 268_435_456))]
    pub max_output_bytes: u64,
    /// Most log lines kept per run (host `log` calls plus stdout/stderr lines).
    /// Default 1000; later lines are dropped and the log is flagged truncated.
    #[schemars(range(max = 1_000_000))]
    pub max_log_lines: u32,
    /// Most log bytes kept per run. Default 256 KiB; each line is also cut at 8 KiB.
    #[schemars(range(max = 67_108_864))]
    pub max_log_bytes: u64,
    /// Most keys in the plugin's key-value namespace. Default 10 000; a `kv-set` of a new
    /// key beyond it is refused.
    #[schemars(range(max = 10_000_000))]
    pub kv_max_keys: u64,
    /// Most bytes (keys and values) in the plugin's key-value namespace. Default 16 MiB;
    /// a `kv-set` that would go beyond it is refused.
    #[schemars(range(max = 4_294_967_296u64))]
    pub kv_max_bytes: u64,
    /// Most outbound HTTP requests one run has open at once (from sending the request
    /// until its response body is dropped). Default 16; one more fails inside the
    /// plugin with `connection-limit-reached`.
    #[schemars(range(min = 1, max = 1024))]
    pub max_connections: u32,
    /// Most host-side resources one run holds at once: HTTP header maps, requests,
    /// responses, bodies, streams and pollables (each in the host's memory, not the
    /// plugin's). Default 256; one more fails the run with `resource_limit`. With each
    /// header map capped at [`MAX_FIELDS_BYTES`] and each unsent body chunk at
    /// [`MAX_BODY_CHUNK_BYTES`], this bounds what a run can hold in host memory.
    #[schemars(range(min = 32, max = 100_000))]
    pub max_resources: u32,
    /// How many runs one instance of the plugin may serve. Default 1: every run gets a
    /// fresh instance, so nothing a run leaves in the plugin's memory reaches the next.
    /// Above 1, an instance that finished a run cleanly is kept (idle, at most
    /// [`MAX_RUNS_PER_INSTANCE`] runs) and the next run of the same plugin, installed
    /// under the same name with the same grants, calls it again instead of
    /// instantiating: an interpreter plugin (Python, JavaScript) then skips its start-up
    /// on each run, at the price of its globals living on between runs. An instance
    /// whose run trapped, timed out or hit its memory cap, or that still holds an
    /// outbound connection, is never reused.
    #[schemars(range(min = 1, max = 100_000))]
    pub runs_per_instance: u32,
}

/// Largest HTTP header map (names, values and per-entry overhead) a plugin may build:
/// 16 KiB. Building a larger one fails the run with `resource_limit`.
pub const MAX_FIELDS_BYTES: usize = 16 * 1024;
/// Size of one buffered chunk of an outgoing request body: 16 KiB (a body holds at
/// most two before the connection takes them).
pub const MAX_BODY_CHUNK_BYTES: usize = 16 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 * MIB,
            timeout_ms: 30_000,
            fuel: None,
            max_output_bytes: MIB,
            max_log_lines: 1000,
            max_log_bytes: 256 * 1024,
            kv_max_keys: 10_000,
            kv_max_bytes: 16 * MIB,
            max_connections: 16,
            max_resources: 256,
            runs_per_instance: 1,
        }
    }
}

/// Bounds that every [`Limits`] value must respect.
pub const MAX_MEMORY_BYTES: u64 = 4096 * MIB;
/// Smallest memory cap that can run a Rust component at all.
pub const MIN_MEMORY_BYTES: u64 = MIB;
/// Most runs one instance may serve (`limits.runs_per_instance`).
pub const MAX_RUNS_PER_INSTANCE: u32 = 100_000;
/// Longest allowed run: 24 hours.
pub const MAX_TIMEOUT_MS: u64 = 24 * 3600 * 1000;

/// A limit that is out of its allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct LimitError {
    /// Which field is wrong.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl Limits {
    /// The wall-clock timeout as a [`Duration`].
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Check every field against its bounds, naming the first bad one.
    pub fn validate(&self) -> Result<(), LimitError> {
        let bad = |field, message: String| Err(LimitError { field, message });
        if !(MIN_MEMORY_BYTES..=MAX_MEMORY_BYTES).contains(&self.memory_bytes) {
            return bad(
                "memory_bytes",
                format!("{} is outside 1 MiB..=4 GiB", self.memory_bytes),
            );
        }
        if !(1..=MAX_TIMEOUT_MS).contains(&self.timeout_ms) {
            return bad(
                "timeout_ms",
                format!("{} is outside 1..=86400000 ms", self.timeout_ms),
            );
        }
        if self.fuel == Some(0) {
            return bad("fuel", "must be positive when set".into());
        }
        if !(1..=256 * MIB).contains(&self.max_output_bytes) {
            return bad(
                "max_output_bytes",
                format!("{} is outside 1..=256 MiB", self.max_output_bytes),
            );
        }
        if self.max_log_lines > 1_000_000 {
            return bad("max_log_lines", format!("{} is over 1000000", self.max_log_lines));
        }
        if self.max_log_bytes > 64 * MIB {
            return bad("max_log_bytes", format!("{} is over 64 MiB", self.max_log_bytes));
        }
        if self.kv_max_keys > 10_000_000 {
            return bad("kv_max_keys", format!("{} is over 10000000", self.kv_max_keys));
        }
        if self.kv_max_bytes > 4096 * MIB {
            return bad("kv_max_bytes", format!("{} is over 4 GiB", self.kv_max_bytes));
        }
        if !(1..=1024).contains(&self.max_connections) {
            return bad(
                "max_connections",
                format!("{} is outside 1..=1024", self.max_connections),
            );
        }
        if !(32..=100_000).contains(&self.max_resources) {
            return bad(
                "max_resources",
                format!("{} is outside 32..=100000", self.max_resources),
            );
        }
        if !(1..=MAX_RUNS_PER_INSTANCE).contains(&self.runs_per_instance) {
            return bad(
                "runs_per_instance",
                format!(
                    "{} is outside 1..={MAX_RUNS_PER_INSTANCE}",
                    self.runs_per_instance
                ),
            );
        }
        Ok(())
    }
}

/// Split `text` into its leading whole number and the rest, the unit (trimmed,
/// lower-case); `what` names the expected value in the error.
fn number_and_unit(text: &str, what: &str) -> Result<(u64, String), crate::Invalid> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{text:?} is not {what}"))?;
    Ok((n, unit.trim().to_ascii_lowercase()))
}

/// Parse a byte size: a number with an optional unit `B`, `KB`/`KiB`, `MB`/`MiB`,
/// `GB`/`GiB` (case-insensitive; the `KB`-style units are also powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, crate::Invalid> {
    let (n, unit) = number_and_unit(text, "a size (try 64MiB, 512KiB or 1048576)")?;
    let mult = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => 1024 * MIB,
        other => {
            return Err(format!("{text:?}: unknown size unit {other:?} (use B, KiB, MiB, GiB)").into());
        }
    };
    Ok(n.checked_mul(mult)
        .ok_or_else(|| format!("{text:?} is too large"))?)
}

/// Parse a duration: a number with unit `ms`, `s`, `m` or `h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, crate::Invalid> {
    let (n, unit) = number_and_unit(text, "a duration (try 500ms, 30s, 5m or 1h)")?;
    // One syntax everywhere: `2h` and `2 hours` alike.
    let ms = match unit.as_str() {
        "ms" | "millisecond" | "milliseconds" => Some(n),
        "" | "s" | "sec" | "secs" | "second" | "seconds" => n.checked_mul(1000),
        "m" | "min" | "mins" | "minute" | "minutes" => n.checked_mul(60_000),
        "h" | "hr" | "hrs" | "hour" | "hours" => n.checked_mul(3_600_000),
        "d" | "day" | "days" => n.checked_mul(86_400_000),
        "w" | "week" | "weeks" => n.checked_mul(7 * 86_400_000),
        other => {
            return Err(format!(
                "{text:?}: unknown duration unit {other:?} (use ms, s, m, h, d, w or their names: 2h, 2 hours)"
            ).into());
        }
    };
    Ok(ms
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too large"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Limits::default().validate().unwrap();
    }

    #[test]
    fn durations_take_letters_and_words() {
        for (text, secs) in [
            ("90", 90),
            ("30s", 30),
            ("5m", 300),
            ("2h", 7200),
            ("2 hours", 7200),
            ("1 hour", 3600),
            ("45 minutes", 2700),
            ("3 days", 259_200),
            ("1 week", 604_800),
            ("10 Seconds", 10),
        ] {
            assert_eq!(parse_duration(text).unwrap().as_secs(), secs, "{text}");
        }
        assert_eq!(parse_duration("250 ms").unwrap().as_millis(), 250);
        assert!(parse_duration("2 fortnights").unwrap_err().contains("2 hours"));
        assert!(parse_duration("hours").is_err());
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 * MIB);
        assert_eq!(parse_size("512 kb").unwrap(), 512 * 1024);
        assert_eq!(parse_size("1048576").unwrap(), MIB);
        assert_eq!(parse_size("2G").unwrap(), 2048 * MIB);
        assert!(
            parse_size("12 parsecs")
                .unwrap_err()
                .contains("unknown size unit")
        );
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("5 fortnights").is_err());
    }

    #[test]
    fn validation_names_the_bad_field() {
        let l = Limits {
            memory_bytes: 10,
            ..Limits::default()
        };
        assert_eq!(l.validate().unwrap_err().field, "memory_bytes");
        let l = Limits {
            timeout_ms: 0,
            ..Limits::default()
        };
        assert_eq!(l.validate().unwrap_err().field, "timeout_ms");
        let l = Limits {
            fuel: Some(0),
            ..Limits::default()
        };
        assert_eq!(l.validate().unwrap_err().field, "fuel");
    }
}

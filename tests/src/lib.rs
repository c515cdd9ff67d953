//! Helpers for Sundial's workspace-level integration tests: where the real binary and
//! the real compiled plugins are, a shared runtime, the daemon as a process, and small
//! loopback HTTP servers.

mod binary;
pub mod browser;
pub mod cluster;
pub mod cluster_chaos;
pub mod daemon;
mod http;
pub mod pg;
pub mod smtp;
pub mod vergeos;

pub use binary::{sundial_bin, wasm, workspace_root};
pub use daemon::Daemon;
pub use http::*;
use std::sync::{Arc, OnceLock};
use sundial_core::grants::{Grants, NetworkPolicy};
use sundial_core::invocation::{Invocation, RunReport};
use sundial_core::limits::Limits;
use sundial_runtime::{MemoryServices, Plugin, PluginIdentity, Runtime, RuntimeConfig};

/// `libfuzzer_sys::fuzz_target!` for the fuzz targets in `fuzz/fuzz_targets` compiled
/// into a test of this workspace (`tests/tooling.rs` names this crate `libfuzzer_sys`):
/// the target's body becomes `run_one(bytes)`, which runs it on one input as libFuzzer
/// would (a typed input is built with `arbitrary` from all the bytes; bytes that do not
/// make one are skipped). The test's crate needs `arbitrary`.
#[macro_export]
macro_rules! fuzz_target {
    (|$data:ident: &[u8]| $body:block) => {
        /// The fuzz target's body on one input.
        pub fn run_one($data: &[u8]) {
            $body
        }
    };
    (|$input:ident: $ty:ty| $body:block) => {
        /// The fuzz target's body on the input `arbitrary` makes of `bytes`.
        pub fn run_one(bytes: &[u8]) {
            if let Ok($input) =
                <$ty as arbitrary::Arbitrary>::arbitrary_take_rest(arbitrary::Unstructured::new(bytes))
            {
                $body
            }
        }
    };
}

/// One runtime per test process (as the daemon has one), loopback allowed or not.
pub fn runtime(allow_loopback: bool) -> Runtime {
    static DENY: OnceLock<Runtime> = OnceLock::new();
    static ALLOW: OnceLock<Runtime> = OnceLock::new();
    let cell = if allow_loopback { &ALLOW } else { &DENY };
    cell.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            network: NetworkPolicy {
                allow_loopback,
                ..NetworkPolicy::default()
            },
            max_instances: 16,
            ..RuntimeConfig::default()
        })
        .expect("runtime")
    })
    .clone()
}

/// Load a compiled plugin into `runtime`.
pub fn load(runtime: &Runtime, package: &str) -> Plugin {
    runtime.load_file(&wasm(package)).expect("plugin loads")
}

/// Run an action once with the given grants and limits and in-memory services.
pub async fn run(
    runtime: &Runtime,
    plugin: &Plugin,
    grants: Grants,
    limits: Limits,
    params: serde_json::Value,
) -> RunReport<serde_json::Value> {
    let identity = Arc::new(PluginIdentity {
        name: "test".into(),
        grants,
    });
    let services = Arc::new(MemoryServices::with_secrets([(
        "token".to_string(),
        "s3cret".to_string(),
    )]));
    let inv = Invocation::manual("test-task", params);
    runtime
        .run_action(plugin, identity, &limits, services, &inv)
        .await
}

/// A timestamp of an API answer as an instant (panics, naming it, when it is not
/// RFC 3339): compare instants, not strings.
pub fn instant(value: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("expected an RFC 3339 timestamp, got {value}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
        .with_timezone(&chrono::Utc)
}

/// Resident memory of process `pid` in KiB (`VmRSS` of `/proc/PID/status`). Panics
/// when it cannot be read: a memory bound must not pass on a missing measurement.
pub fn rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmRSS")
}

/// The most resident memory process `pid` ever had, in KiB (`VmHWM`): a peak between
/// two samples is not missed. Panics when it cannot be read.
pub fn peak_rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmHWM")
}

/// Start measuring [`peak_rss_kib`] from now (Linux: `5` into `/proc/PID/clear_refs`).
pub fn reset_peak_rss(pid: u32) {
    let path = format!("/proc/{pid}/clear_refs");
    std::fs::write(&path, "5").unwrap_or_else(|e| panic!("resetting the peak in {path}: {e}"));
}

/// CPU time process `pid` has used (user + system), in seconds (`/proc/PID/stat`).
pub fn cpu_seconds(pid: u32) -> f64 {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    ticks_of(&stat) as f64 / clock_ticks()
}

/// CPU time all PostgreSQL server processes on this machine have used, in seconds
/// (every `/proc/*/stat` whose command is `postgres`): compare two readings.
pub fn postgres_cpu_seconds() -> f64 {
    let mut ticks = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat"))
            && stat.contains(" (postgres) ")
        {
            ticks += ticks_of(&stat);
        }
    }
    ticks as f64 / clock_ticks()
}

/// utime + stime of a `/proc/PID/stat` line (fields 14 and 15, after the command).
fn ticks_of(stat: &str) -> u64 {
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or(stat);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": field 3 (state) is fields[0], so utime (14) is fields[11].
    let n = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{path} has no {field} line:\n{status}"))
}

/// Where `value` shows in `haystack` (a file, a response), if anywhere: as it is, as
/// its base64 (standard or URL-safe, at any of the three alignments it can take inside
/// longer base64 text), or inside any base64 run of `haystack` once decoded. `None`
/// when it shows nowhere.
pub fn find_secret(haystack: &[u8], value: &str) -> Option<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let contains =
        |h: &[u8], needle: &[u8]| !needle.is_empty() && h.windows(needle.len()).any(|w| w == needle);
    let v = value.as_bytes();
    assert!(
        v.len() >= 8,
        "a secret of at least 8 bytes is needed to search for it"
    );
    if contains(haystack, v) {
        return Some("as plaintext".into());
    }
    for shift in 0..3 {
        for (name, engine) in [("base64", &STANDARD), ("url-safe base64", &URL_SAFE)] {
            let encoded = engine.encode(&v[shift..]);
            // The last 4 symbols may mix with what follows the value.
            let inner = &encoded.as_bytes()[..encoded.len() - 4];
            if contains(haystack, inner) {
                return Some(format!("as {name} (offset {shift})"));
            }
        }
    }
    let is_b64 = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_');
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    for run in haystack.split(|b| !is_b64(b)).filter(|r| r.len() >= 12) {
        let standard: Vec<u8> = run
            .iter()
            .map(|b| match b {
                b'-' => b'+',
                b'_' => b'/',
                other => *other,
            })
            .collect();
        for start in 0..4.min(standard.len()) {
            let mut part = &standard[start..];
            if part.len() % 4 == 1 {
                part = &part[..part.len() - 1];
            }
            if let Ok(decoded) = lenient.decode(part)
                && contains(&decoded, v)
            {
                return Some(format!(
                    "inside a decoded base64 run starting {:?}",
                    String::from_utf8_lossy(&run[..run.len().min(16)])
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::find_secret;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    #[test]
    fn a_secret_is_found_however_it_is_encoded() {
        let value = "s3cr3t-Value-9f8e7d6c";
        assert_eq!(find_secret(b"nothing to see here, nothing at all", value), None);
        assert!(find_secret(format!("x{value}y").as_bytes(), value).is_some());
        for prefix in ["", "a", "ab", "abc"] {
            let text = format!(
                "{{\"ciphertext\":\"{}\"}}",
                STANDARD.encode(format!("{prefix}{value}tail"))
            );
            assert!(find_secret(text.as_bytes(), value).is_some(), "{text}");
        }
        // A sealed value (ciphertext of the same length) is not found.
        let noise = STANDARD.encode([0x5au8; 37]);
        assert_eq!(find_secret(noise.as_bytes(), value), None);
    }
}

/// Sum of every Prometheus sample in `text` whose line starts with `name` (all label
/// sets of a metric, or one when `name` includes its labels).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The items of a JSON list (panics, showing the value, when it is not a list).
#[track_caller]
pub fn items(list: &serde_json::Value) -> &Vec<serde_json::Value> {
    list.as_array()
        .unwrap_or_else(|| panic!("expected a JSON list, got {list}"))
}

/// The string at `path` (field names joined by `.`, e.g. `event.type`) of every item of
/// the JSON list `list`, in order (panics, showing the item, where one is not a string).
#[track_caller]
pub fn column<'a>(list: &'a serde_json::Value, path: &str) -> Vec<&'a str> {
    items(list)
        .iter()
        .map(|item| {
            path.split('.')
                .fold(item, |v, field| &v[field])
                .as_str()
                .unwrap_or_else(|| panic!("no string at {path} in {item}"))
        })
        .collect()
}

/// The `error.message` of an API error answer (panics, showing the answer, when absent).
#[track_caller]
pub fn message(answer: &serde_json::Value) -> &str {
    answer["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error message in {answer}"))
}

/// Poll `ok` every 50 ms until it holds; panics naming `what` after `secs` seconds.
#[track_caller]
pub fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The message of a run's error, which must be of `kind` (`RunError::kind`); panics,
/// showing the report, otherwise.
#[track_caller]
pub fn error_message<T: std::fmt::Debug>(report: &RunReport<T>, kind: &str) -> String {
    match &report.result {
        Err(e) if e.kind() == kind => {
            let mut text = String::new();
            e.map_message(|m| {
                text = m.to_string();
                String::new()
            });
            text
        }
        other => panic!("expected a {kind} error, got {other:?}\n{report:#?}"),
    }
}

/// The value at `path` (as for [`column`]) of every item of the JSON list `list`, cloned.
#[track_caller]
pub fn pluck(list: &serde_json::Value, path: &str) -> Vec<serde_json::Value> {
    items(list)
        .iter()
        .map(|item| path.split('.').fold(item, |v, field| &v[field]).clone())
        .collect()
}

//! The per-run log buffer: host `log` calls and the plugin's stdout/stderr, bounded by
//! the plugin's log limits. Lines past the limits are dropped and the log is flagged.

use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Longest single log line kept, in bytes; longer lines are cut and marked.
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// Severity of a log line (mirrors the WIT `level` enum).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal progress (also: plugin stdout).
    Info,
    /// Something odd (also: plugin stderr, denied capability use).
    Warn,
    /// Something failed.
    Error,
}

impl Level {
    /// Lowercase name, as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The plugin's `host.log` call.
    Plugin,
    /// The plugin's stdout.
    Stdout,
    /// The plugin's stderr (panic messages land here).
    Stderr,
    /// Sundial itself, about the plugin (denied requests, limits).
    Host,
}

/// One line of a run's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogLine {
    /// Milliseconds since the run started.
    pub at_ms: u64,
    /// Severity.
    pub level: Level,
    /// Where it came from.
    pub origin: Origin,
    /// The text (at most [`MAX_LINE_BYTES`]).
    pub message: String,
}

/// The collected log of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunLog {
    /// The kept lines, in order.
    pub lines: Vec<LogLine>,
    /// True when lines were dropped or cut because of the log limits.
    pub truncated: bool,
    /// How many lines were dropped.
    pub dropped_lines: u64,
}

#[derive(Debug)]
struct Inner {
    log: RunLog,
    bytes: u64,
    max_lines: u32,
    max_bytes: u64,
    started: Instant,
    partial_stdout: Vec<u8>,
    partial_stderr: Vec<u8>,
}

/// A cheaply clonable handle to one run's log, shared by the host interface, the
/// stdout/stderr streams and the HTTP hooks.
#[derive(Debug, Clone)]
pub struct SharedLog(Arc<Mutex<Inner>>);

impl SharedLog {
    /// A new, empty log with the given limits.
    pub fn new(max_lines: u32, max_bytes: u64) -> SharedLog {
        SharedLog(Arc::new(Mutex::new(Inner {
            log: RunLog::default(),
            bytes: 0,
            max_lines,
            max_bytes,
            started: Instant::now(),
            partial_stdout: Vec::new(),
            partial_stderr: Vec::new(),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-push; the data is
        // still a valid log, so keep going rather than propagate the panic.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Append a line, enforcing the limits.
    pub fn push(&self, level: Level, origin: Origin, message: &str) {
        self.lock().push(level, origin, message);
    }

    /// Feed raw bytes the plugin wrote to stdout or stderr; complete lines are logged.
    pub fn write_stream(&self, origin: Origin, bytes: &[u8]) {
        let mut inner = self.lock();
        let level = if origin == Origin::Stderr {
            Level::Warn
        } else {
            Level::Info
        };
        let mut pending = std::mem::take(match origin {
            Origin::Stderr => &mut inner.partial_stderr,
            _ => &mut inner.partial_stdout,
        });
        pending.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(pos) = pending[start..].iter().position(|b| *b == b'\n') {
            let line = String::from_utf8_lossy(&pending[start..start + pos]).into_owned();
            inner.push(level, origin, &line);
            start += pos + 1;
        }
        pending.drain(..start);
        // Never buffer more than one line's worth: flush an endless line as it comes.
        if pending.len() > MAX_LINE_BYTES {
            let line = String::from_utf8_lossy(&pending).into_owned();
            inner.push(level, origin, &line);
            pending.clear();
        }
        *match origin {
            Origin::Stderr => &mut inner.partial_stderr,
            _ => &mut inner.partial_stdout,
        } = pending;
    }

    /// Time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.lock().started.elapsed()
    }

    /// The last `n` stderr lines joined (for explaining traps: a Rust panic prints
    /// its message there before aborting).
    pub fn stderr_tail(&self, n: usize) -> String {
        let inner = self.lock();
        let mut lines: Vec<&str> = inner
            .log
            .lines
            .iter()
            .rev()
            .filter(|l| l.origin == Origin::Stderr)
            .filter(|l| {
                !l.message.trim().is_empty() && !l.message.starts_with("note: run with `RUST_BACKTRACE")
            })
            .take(n)
            .map(|l| l.message.as_str())
            .collect();
        lines.reverse();
        let mut text = lines.join("\n");
        if !inner.partial_stderr.is_empty() {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&String::from_utf8_lossy(&inner.partial_stderr));
        }
        text
    }

    /// A copy of the complete lines from the `from`-th on (none once the log was
    /// taken by [`SharedLog::finish`]): what a live tail has not shown yet.
    pub fn lines_from(&self, from: usize) -> Vec<LogLine> {
        self.lock()
            .log
            .lines
            .get(from..)
            .map(<[LogLine]>::to_vec)
            .unwrap_or_default()
    }

    /// Flush partial lines and take the finished log.
    pub fn finish(&self) -> RunLog {
        let mut inner = self.lock();
        for origin in [Origin::Stdout, Origin::Stderr] {
            let rest = std::mem::take(match origin {
                Origin::Stderr => &mut inner.partial_stderr,
                _ => &mut inner.partial_stdout,
            });
            if !rest.is_empty() {
                let level = if origin == Origin::Stderr {
                    Level::Warn
                } else {
                    Level::Info
                };
                inner.push(level, origin, &String::from_utf8_lossy(&rest));
            }
        }
        std::mem::take(&mut inner.log)
    }
}

impl Inner {
    fn push(&mut self, level: Level, origin: Origin, message: &str) {
        let mut text = message;
        let mut cut = false;
        if text.len() > MAX_LINE_BYTES {
            let mut end = MAX_LINE_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text = &text[..end];
            cut = true;
        }
        let size = text.len() as u64;
        if self.log.lines.len() as u64 >= u64::from(self.max_lines) || self.bytes + size > self.max_bytes {
            self.log.truncated = true;
            self.log.dropped_lines += 1;
            return;
        }
        self.bytes += size;
        self.log.truncated |= cut;
        let mut message = text.to_string();
        if cut {
            message.push_str(" …[line cut]");
        }
        self.log.lines.push(LogLine {
            at_ms: self.started.elapsed().as_millis() as u64,
            level,
            origin,
            message,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_bytes_become_lines() {
        let log = SharedLog::new(100, 10_000);
        log.write_stream(Origin::Stdout, b"hel");
        log.write_stream(Origin::Stdout, b"lo\nwor");
        log.write_stream(Origin::Stderr, b"oops\n");
        let out = log.finish();
        let msgs: Vec<_> = out.lines.iter().map(|l| (l.origin, l.message.as_str())).collect();
        assert_eq!(
            msgs,
            vec![
                (Origin::Stdout, "hello"),
                (Origin::Stderr, "oops"),
                (Origin::Stdout, "wor")
            ]
        );
        assert!(!out.truncated);
    }

    #[test]
    fn limits_drop_and_flag() {
        let log = SharedLog::new(3, 10_000);
        for i in 0..10 {
            log.push(Level::Info, Origin::Plugin, &format!("line {i}"));
        }
        let out = log.finish();
        assert_eq!(out.lines.len(), 3);
        assert!(out.truncated);
        assert_eq!(out.dropped_lines, 7);

        let log = SharedLog::new(100, 10);
        log.push(Level::Info, Origin::Plugin, "0123456789");
        log.push(Level::Info, Origin::Plugin, "x");
        assert_eq!(log.finish().lines.len(), 1);
    }

    #[test]
    fn long_lines_are_cut_on_char_boundaries() {
        let log = SharedLog::new(10, 1 << 20);
        log.push(Level::Info, Origin::Plugin, &"é".repeat(MAX_LINE_BYTES));
        let out = log.finish();
        assert!(out.truncated);
        assert!(out.lines[0].message.ends_with("[line cut]"));
    }

    #[test]
    fn stderr_tail_includes_partial_line() {
        let log = SharedLog::new(10, 1 << 20);
        log.write_stream(Origin::Stderr, b"panicked at src/lib.rs:3:5:\nboom");
        assert_eq!(log.stderr_tail(5), "panicked at src/lib.rs:3:5:\nboom");
    }
}

//! Runs: one execution of a task, the unit of the task log. Pure: the record, its
//! status machine and the retry decision; no I/O or clock (times are passed in).

use crate::invocation::{Event, Resources, RunError};
use crate::log::RunLog;
use crate::task::{RetryOn, RetryPolicy};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Accepted and durably queued, waiting for a worker (or for its retry time).
    Queued,
    /// A worker is executing it.
    Running,
    /// The plugin returned output.
    Succeeded,
    /// The plugin returned an error, trapped, or hit a limit other than time.
    Failed,
    /// The wall-clock limit stopped it.
    TimedOut,
    /// Cancelled through the API (or replaced by a newer run).
    Cancelled,
    /// Not run because of the task's overlap policy.
    Skipped,
    /// The daemon stopped while it was running.
    Interrupted,
}

impl RunStatus {
    /// True once the run can no longer change.
    pub fn is_terminal(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }

    /// Every status, in lifecycle order (for metrics and filters).
    pub const ALL: [RunStatus; 8] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::TimedOut,
        RunStatus::Cancelled,
        RunStatus::Skipped,
        RunStatus::Interrupted,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::TimedOut => "timed_out",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Skipped => "skipped",
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// Parse the snake_case name.
    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// Why a run started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunCause {
    /// Started by hand through the API or CLI.
    Manual,
    /// A schedule fired.
    Schedule {
        /// The schedule's id.
        schedule: String,
        /// The slot time, RFC 3339.
        slot: String,
        /// When it was due: the slot plus the schedule's jitter, RFC 3339 (absent in
        /// runs recorded before this field existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due: Option<String>,
    },
    /// An event matched a trigger.
    Event {
        /// The event's seq (Sundial's id for it).
        event: String,
        /// The trigger that matched.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trigger: Option<String>,
        /// The timer that delayed the run, when the trigger has a delay.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timer: Option<String>,
    },
}

impl RunCause {
    /// The snake_case kind name, as used in filters.
    pub fn kind(&self) -> &'static str {
        match self {
            RunCause::Manual => "manual",
            RunCause::Schedule { .. } => "schedule",
            RunCause::Event { .. } => "event",
        }
    }
}

/// One attempt of a run (a run has one, or more when retried).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Attempt {
    /// Attempt number, from 1.
    pub number: u32,
    /// When it started, RFC 3339.
    pub started_at: String,
    /// When it ended, RFC 3339 (absent while running).
    pub finished_at: Option<String>,
    /// How it ended.
    pub error: Option<RunError>,
}

/// A run as stored and served: the task log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Run {
    /// Run id (ULID); also the plugin's idempotency key.
    pub id: String,
    /// The task's id.
    pub task_id: String,
    /// The task's name when the run was created.
    pub task_name: String,
    /// Why it started.
    pub cause: RunCause,
    /// Token name of whoever started it (`sundial` for the daemon itself).
    pub started_by: String,
    /// Current status.
    pub status: RunStatus,
    /// Current (or last) attempt number; 0 before the first attempt starts.
    pub attempt: u32,
    /// Params used (the task's, or the per-run override).
    pub params: Value,
    /// The causing event, if any.
    pub event: Option<Event>,
    /// Causal depth: the depth of the event that started it (0 for manual and
    /// scheduled runs). Events about the run get one more.
    #[serde(default)]
    pub depth: u32,
    /// The causal chain it belongs to: the first event or run it descends from (absent:
    /// it starts one). The chain's budget is `max_chain` runs, timers and deliveries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// The run this one retries (`sundial run retry`): same task, params, cause and
    /// event, started again. Absent for a first run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
    /// When it was queued, RFC 3339.
    pub queued_at: String,
    /// When the current attempt started.
    pub started_at: Option<String>,
    /// When it reached a terminal status.
    pub finished_at: Option<String>,
    /// Not before this time (RFC 3339): set while waiting for a retry.
    pub not_before: Option<String>,
    /// Output of a successful run.
    pub output: Option<Value>,
    /// Why it did not succeed.
    pub error: Option<RunError>,
    /// The plugin's log of the last attempt.
    pub log: RunLog,
    /// Resources the last attempt used.
    pub resources: Resources,
    /// Every attempt so far.
    pub attempts: Vec<Attempt>,
}

impl Run {
    /// Move this queued run to running with a new attempt started `now` (the store's
    /// start of a run, on every backend).
    pub fn begin_attempt(&mut self, now: String) {
        self.status = RunStatus::Running;
        self.attempt += 1;
        self.started_at = Some(now.clone());
        self.not_before = None;
        self.attempts.push(Attempt {
            number: self.attempt,
            started_at: now,
            finished_at: None,
            error: None,
        });
    }

    /// The same run, counted in causal chain `chain` (see [`Run::root`]).
    pub fn in_chain(mut self, chain: &str) -> Run {
        self.root = Some(chain.to_string());
        self
    }

    /// The causal chain what this run causes belongs to: its own, or itself when it
    /// starts one.
    pub fn chain(&self) -> &str {
        self.root.as_deref().unwrap_or(&self.id)
    }

    /// A new queued run of task `task_id` (named `task_name`), started by Sundial.
    pub fn queued(
        task_id: &str,
        task_name: &str,
        cause: RunCause,
        params: Value,
        event: Option<Event>,
        depth: u32,
        now: String,
    ) -> Run {
        Run {
            id: crate::ids::new_id(),
            task_id: task_id.to_string(),
            task_name: task_name.to_string(),
            cause,
            started_by: "sundial".into(),
            status: RunStatus::Queued,
            attempt: 0,
            params,
            event,
            depth,
            root: None,
            retry_of: None,
            queued_at: now,
            started_at: None,
            finished_at: None,
            not_before: None,
            output: None,
            error: None,
            log: Default::default(),
            resources: Default::default(),
            attempts: Vec::new(),
        }
    }

    /// A new queued run that retries this finished one: the same task, params, cause,
    /// event and causal depth, started by `by` and linked back by `retry_of`. It starts
    /// a causal chain of its own (an operator's retry is a new start, not one more
    /// step of the chain that failed).
    pub fn retry(&self, by: &str, now: String) -> Run {
        let mut run = Run::queued(
            &self.task_id,
            &self.task_name,
            self.cause.clone(),
            self.params.clone(),
            self.event.clone(),
            self.depth,
            now,
        );
        run.started_by = by.to_string();
        run.retry_of = Some(self.id.clone());
        run
    }

    /// Turn a new run into a `skipped` one whose log says why (a host warning).
    pub fn skipped(mut self, reason: String) -> Run {
        self.status = RunStatus::Skipped;
        self.finished_at = Some(self.queued_at.clone());
        self.log.lines.push(crate::log::LogLine {
            at_ms: 0,
            level: crate::log::Level::Warn,
            origin: crate::log::Origin::Host,
            message: reason,
        });
        self
    }
}

/// What to do after an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Give up with this terminal status.
    Finish(RunStatus),
    /// Try again after this many milliseconds.
    RetryAfterMs(u64),
}

/// The terminal status an error maps to.
pub fn status_for(error: &RunError) -> RunStatus {
    match error {
        RunError::Timeout(_) => RunStatus::TimedOut,
        _ => RunStatus::Failed,
    }
}

fn retried_by(on: &RetryOn, error: &RunError) -> bool {
    match error {
        RunError::Retryable(_) | RunError::Instantiate(_) => on.retryable,
        RunError::Timeout(_) => on.timeout,
        RunError::Failed(_) => on.failed,
        RunError::Trap(_)
        | RunError::MemoryLimit(_)
        | RunError::FuelExhausted(_)
        | RunError::ResourceLimit(_) => on.crash,
        RunError::InvalidParams(_) | RunError::OutputTooLarge(_) | RunError::BadOutput(_) => false,
    }
}

/// Decide what follows a failed attempt number `attempt` under `policy`. `unit` is a
/// uniform random number in `[0, 1)` for the jitter. `interrupted` means the daemon
/// died during the attempt rather than the plugin failing.
pub fn after_failure(
    policy: &RetryPolicy,
    attempt: u32,
    error: Option<&RunError>,
    interrupted: bool,
    unit: f64,
) -> AfterFailure {
    let (retry, terminal) = match (interrupted, error) {
        (true, _) => (policy.retry_on.interrupted, RunStatus::Interrupted),
        (false, Some(e)) => (retried_by(&policy.retry_on, e), status_for(e)),
        (false, None) => (false, RunStatus::Failed),
    };
    match (retry, policy.delay_before(attempt + 1, unit)) {
        (true, Some(delay)) => AfterFailure::RetryAfterMs(delay.as_millis() as u64),
        _ => AfterFailure::Finish(terminal),
    }
}

/// Which of a task's runs retention deletes. `runs` are (id, status, finished_at)
/// newest first; queued and running runs are never deleted and do not count. A run is
/// deleted when `keep_last` newer finished runs exist, or when it finished before
/// `cutoff` (RFC 3339, compared as text: both are UTC with the same format).
pub fn prunable<'a>(
    runs: &[(&'a str, RunStatus, Option<&str>)],
    keep_last: usize,
    cutoff: &str,
) -> Vec<&'a str> {
    let mut kept = 0;
    let mut out = Vec::new();
    for (id, status, finished) in runs {
        if !status.is_terminal() {
            continue;
        }
        let too_old = finished.is_some_and(|f| f < cutoff);
        if kept >= keep_last || too_old {
            out.push(*id);
        } else {
            kept += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_begins_numbered_after_the_last_and_clears_the_backoff() {
        let mut run = Run::queued(
            "t1",
            "t",
            RunCause::Manual,
            serde_json::Value::Null,
            None,
            0,
            "q".into(),
        );
        run.not_before = Some("later".into());
        run.begin_attempt("a1".into());
        run.status = RunStatus::Queued; // a retry goes back to the queue
        run.begin_attempt("a2".into());
        assert_eq!(
            (run.status, run.attempt, run.not_before),
            (RunStatus::Running, 2, None)
        );
        assert_eq!(run.started_at.as_deref(), Some("a2"));
        let numbers: Vec<(u32, &str)> = run
            .attempts
            .iter()
            .map(|a| (a.number, a.started_at.as_str()))
            .collect();
        assert_eq!(numbers, vec![(1, "a1"), (2, "a2")]);
    }

    #[test]
    fn retention_keeps_the_newest_finished_runs() {
        let s = RunStatus::Succeeded;
        let runs = vec![
            ("r6", RunStatus::Running, None),
            ("r5", s, Some("2026-11-05T00:00:00.000Z")),
            ("r4", RunStatus::Failed, Some("2026-11-04T00:00:00.000Z")),
            ("r3", RunStatus::Queued, None),
            ("r2", s, Some("2026-11-02T00:00:00.000Z")),
            ("r1", s, Some("2026-11-01T00:00:00.000Z")),
        ];
        assert_eq!(prunable(&runs, 2, "2000-01-01T00:00:00.000Z"), vec!["r2", "r1"]);
        assert_eq!(prunable(&runs, 10, "2026-11-03T00:00:00.000Z"), vec!["r2", "r1"]);
        assert_eq!(
            prunable(&runs, 1, "2026-11-03T00:00:00.000Z"),
            vec!["r4", "r2", "r1"]
        );
        assert!(prunable(&runs, 10, "2000-01-01T00:00:00.000Z").is_empty());
    }

    #[test]
    fn statuses_round_trip_and_terminality() {
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert!(!RunStatus::Queued.is_terminal());
        assert!(RunStatus::Interrupted.is_terminal());
        assert_eq!(RunStatus::parse("exploded"), None);
    }

    #[test]
    fn retry_decisions_follow_the_policy() {
        let p = RetryPolicy {
            max_attempts: 3,
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        let retryable = RunError::Retryable("503".into());
        assert_eq!(
            after_failure(&p, 1, Some(&retryable), false, 0.5),
            AfterFailure::RetryAfterMs(1000)
        );
        assert_eq!(
            after_failure(&p, 2, Some(&retryable), false, 0.5),
            AfterFailure::RetryAfterMs(2000)
        );
        assert_eq!(
            after_failure(&p, 3, Some(&retryable), false, 0.5),
            AfterFailure::Finish(RunStatus::Failed)
        );
        let timeout = RunError::Timeout("slow".into());
        assert_eq!(
            after_failure(&p, 1, Some(&timeout), false, 0.5),
            AfterFailure::RetryAfterMs(1000)
        );
        let failed = RunError::Failed("no".into());
        assert_eq!(
            after_failure(&p, 1, Some(&failed), false, 0.5),
            AfterFailure::Finish(RunStatus::Failed)
        );
        let bad = RunError::InvalidParams("x".into());
        assert_eq!(
            after_failure(&p, 1, Some(&bad), false, 0.5),
            AfterFailure::Finish(RunStatus::Failed)
        );
        assert_eq!(
            after_failure(&p, 1, None, true, 0.5),
            AfterFailure::RetryAfterMs(1000)
        );
        let once = RetryPolicy { max_attempts: 1, ..p };
        assert_eq!(
            after_failure(&once, 1, None, true, 0.5),
            AfterFailure::Finish(RunStatus::Interrupted)
        );
        let last = after_failure(&p, 3, Some(&timeout), false, 0.5);
        assert_eq!(last, AfterFailure::Finish(RunStatus::TimedOut));
    }
}

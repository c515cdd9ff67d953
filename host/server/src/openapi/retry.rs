//! The OpenAPI operations of retrying runs (one or many), cancelling many, and the
//! agenda (`/v1/upcoming`).

use super::{body, ok, op, path_param, query, r};
use serde_json::{Value, json};

/// (method, path, operation) of `/v1/runs/{id}/retry`, `/v1/runs/retry` and
/// `/v1/runs/cancel`.
pub(super) fn ops() -> Vec<(&'static str, &'static str, Value)> {
    let filter = |what: &str| {
        body(
            json!({ "type": "object", "additionalProperties": false, "description": format!(
            "the runs to {what}: at least one of task, status, cause, since, until; newest first, at most limit"),
            "properties": {
                "task": { "type": "string", "description": "task name or id" },
                "status": { "enum": ["queued", "running", "succeeded", "failed", "timed_out", "cancelled", "skipped", "interrupted"] },
                "cause": { "enum": ["manual", "schedule", "event"] },
                "since": { "type": "string", "format": "date-time", "description": "queued at or after" },
                "until": { "type": "string", "format": "date-time", "description": "queued before" },
                "limit": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 },
                "dry_run": { "type": "boolean", "default": false, "description": "list what would be done, do nothing" } } }),
        )
    };
    let answer = |count: &str, item: Value| {
        json!({ "type": "object", "properties": {
            "dry_run": { "type": "boolean" }, "matched": { "type": "integer" }, count: { "type": "integer" },
            "more": { "type": "boolean", "description": "more runs matched than limit" },
            "runs": { "type": "array", "items": item } } })
    };
    let conflict = || {
        (
            "409".into(),
            json!({ "description": "the run is still queued or running, or its task is disabled" }),
        )
    };
    let queue_full = || {
        (
            "429".into(),
            json!({ "description": "max_queued_runs runs wait for a worker" }),
        )
    };
    vec![
        (
            "post",
            "/v1/runs/{id}/retry",
            op(
                "Retry (or replay) a finished run: a new run of the same task with the same params, cause and event, linked by retry_of",
                "admin, operator",
                vec![
                    path_param("id", "run id"),
                    query("wait", "wait (up to 5 minutes) for the result", "boolean"),
                ],
                None,
                vec![
                    ok("202", "queued", r("Run")),
                    ok("200", "finished (wait=true)", r("Run")),
                    conflict(),
                    queue_full(),
                ],
            ),
        ),
        (
            "post",
            "/v1/runs/retry",
            op(
                "Retry every finished run matching a filter",
                "admin, operator",
                vec![],
                Some(filter("retry")),
                vec![
                    ok(
                        "200",
                        "what was retried (or would be, with dry_run)",
                        answer(
                            "retried",
                            json!({ "type": "object", "properties": {
                            "run": { "type": "string" }, "task": { "type": "string" },
                            "retry": { "type": "string", "description": "the new run" },
                            "skipped": { "type": "string", "description": "why it was not retried" } } }),
                        ),
                    ),
                    queue_full(),
                ],
            ),
        ),
        (
            "post",
            "/v1/runs/cancel",
            op(
                "Cancel every queued or running run matching a filter",
                "admin, operator",
                vec![],
                Some(filter("cancel")),
                vec![ok(
                    "200",
                    "what was cancelled (or would be, with dry_run)",
                    answer(
                        "cancelled",
                        json!({ "type": "object", "properties": {
                        "run": { "type": "string" }, "task": { "type": "string" }, "status": { "type": "string" },
                        "skipped": { "type": "string" } } }),
                    ),
                )],
            ),
        ),
    ]
}

/// (method, path, operation) of `/v1/upcoming`.
pub(super) fn agenda_ops() -> Vec<(&'static str, &'static str, Value)> {
    let entry = json!({ "type": "object", "properties": {
        "at": { "type": "string", "format": "date-time" }, "local": { "type": "string" }, "timezone": { "type": "string" },
        "kind": { "enum": ["schedule", "timer"] }, "name": { "type": "string", "description": "the schedule, or the timer's trigger" },
        "tasks": { "type": "array", "items": { "type": "string" } },
        "dst": { "enum": [null, "moved_out_of_gap", "first_of_repeated"] }, "timer": { "type": "string" },
        "excluded": { "type": "string", "description": "in a calendar's excluded window or maintenance: skipped or deferred, and why" } } });
    let transition = json!({ "type": "object", "properties": {
        "timezone": { "type": "string" }, "at": { "type": "string", "format": "date-time" },
        "from": { "type": "string" }, "to": { "type": "string" } } });
    vec![(
        "get",
        "/v1/upcoming",
        op(
            "The agenda: every schedule's fires and every pending timer in the next hours, in time order, with DST changes",
            "admin, operator, viewer",
            vec![
                query("hours", "window, 1-744 (default 24)", "integer"),
                query("task", "only what starts this task (name or id)", "string"),
                query("limit", "most entries, 1-10000 (default 200)", "integer"),
            ],
            None,
            vec![ok(
                "200",
                "the agenda",
                json!({ "type": "object", "properties": {
                    "from": { "type": "string", "format": "date-time" }, "until": { "type": "string", "format": "date-time" },
                    "entries": { "type": "array", "items": entry }, "more": { "type": "boolean" },
                    "transitions": { "type": "array", "items": transition } } }),
            )],
        ),
    )]
}

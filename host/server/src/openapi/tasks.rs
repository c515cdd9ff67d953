//! The OpenAPI operations and schemas of plugins, tasks, runs, schedules, tokens, the
//! audit log and the clock (part of the document `mod.rs` assembles).

use super::{body, name_schema, ok, op, path_param, query, r, retry_schema, secret_name_schema};
use serde_json::{Map, Value, json};

/// (method, path, operation) of the plugin, task, run, schedule, token, audit and
/// clock endpoints, and of `/healthz`, `/metrics` and `/openapi.json`.
pub(super) fn ops() -> Vec<(&'static str, &'static str, Value)> {
    let id = path_param("id", "id (ULID) or name");
    let name = path_param("name", "plugin name");
    let page = || {
        vec![
            query("limit", "page size, 1-1000 (default 50)", "limit"),
            query("cursor", "next_cursor of the previous page", "cursor"),
        ]
    };
    let mut runs_params = vec![
        query("task", "task id or name", "string"),
        query(
            "status",
            "queued, running, succeeded, failed, timed_out, cancelled, skipped, interrupted",
            "enum:queued|running|succeeded|failed|timed_out|cancelled|skipped|interrupted",
        ),
        query("cause", "manual, schedule, event", "enum:manual|schedule|event"),
        query("since", "queued at or after (RFC 3339)", "date-time"),
        query("until", "queued before (RFC 3339)", "date-time"),
    ];
    runs_params.extend(page());
    let mut audit_params = vec![
        query("noun", "plugin, task, token", "string"),
        query("actor", "token name", "string"),
        query("target", "id or name of the thing changed", "string"),
        query("since", "at or after (RFC 3339)", "date-time"),
        query("until", "before (RFC 3339)", "date-time"),
    ];
    audit_params.extend(page());
    let list = |key: &str, schema: &str| json!({ "type": "object", "properties": { key: { "type": "array", "items": r(schema) } } });
    let page_of = |key: &str, schema: &str| json!({ "type": "object", "properties": { key: { "type": "array", "items": r(schema) }, "next_cursor": { "type": ["string", "null"] } } });
    let clock = json!({ "type": "object", "properties": {
        "now": { "type": "string", "format": "date-time" }, "manual": { "type": "boolean" } } });
    vec![
        (
            "get",
            "/healthz",
            json!({ "summary": "Liveness", "security": [], "responses": { "200": { "description": "ok" } } }),
        ),
        (
            "get",
            "/metrics",
            op(
                "Prometheus metrics",
                "admin, operator, viewer",
                vec![],
                None,
                vec![(
                    "200".into(),
                    json!({ "description": "text/plain Prometheus exposition" }),
                )],
            ),
        ),
        (
            "get",
            "/openapi.json",
            json!({ "summary": "This document", "description": "Roles: admin, operator, viewer (an ingest token may post events and nothing else).",
                    "responses": { "200": { "description": "OpenAPI 3.1" }, "401": { "description": "missing or unknown token" },
                                   "403": { "description": "the token's role may not do this" } } }),
        ),
        (
            "get",
            "/v1/plugins",
            op(
                "List plugins",
                "admin, operator, viewer",
                vec![],
                None,
                vec![ok("200", "plugins", list("plugins", "Plugin"))],
            ),
        ),
        (
            "post",
            "/v1/plugins",
            op(
                "Install a plugin (validated and compiled first)",
                "admin",
                vec![],
                Some(body(r("PluginInstall"))),
                vec![
                    ok("201", "installed", r("Plugin")),
                    ("409".into(), json!({ "description": "name taken" })),
                    ("413".into(), json!({ "description": "body over 64 MiB" })),
                    ("415".into(), json!({ "description": "not application/json" })),
                ],
            ),
        ),
        (
            "get",
            "/v1/plugins/{name}",
            op(
                "Get a plugin",
                "admin, operator, viewer",
                vec![name.clone()],
                None,
                vec![ok(
                    "200",
                    "the plugin, with its key-value usage and quota",
                    json!({ "allOf": [r("Plugin"), { "type": "object", "properties": { "kv": { "type": "object", "properties": {
                        "keys": { "type": "integer" }, "bytes": { "type": "integer" },
                        "max_keys": { "type": "integer" }, "max_bytes": { "type": "integer" } } } } }] }),
                )],
            ),
        ),
        (
            "patch",
            "/v1/plugins/{name}",
            op(
                "Change grants, limits or description",
                "admin",
                vec![name.clone()],
                Some(body(r("PluginUpdate"))),
                vec![ok("200", "changed", r("Plugin"))],
            ),
        ),
        (
            "delete",
            "/v1/plugins/{name}",
            op(
                "Remove a plugin (refused while tasks use it)",
                "admin",
                vec![name],
                None,
                vec![
                    ("204".into(), json!({ "description": "removed" })),
                    ("409".into(), json!({ "description": "used by tasks (named)" })),
                ],
            ),
        ),
        (
            "get",
            "/v1/tasks",
            op(
                "List tasks, oldest first (follow next_cursor)",
                "admin, operator, viewer",
                page(),
                None,
                vec![ok("200", "a page of tasks", page_of("tasks", "Task"))],
            ),
        ),
        (
            "post",
            "/v1/tasks",
            op(
                "Create a task",
                "admin, operator",
                vec![],
                Some(body(r("TaskSpec"))),
                vec![
                    ok("201", "created", r("Task")),
                    (
                        "409".into(),
                        json!({ "description": "name taken, or the plugin is not an action" }),
                    ),
                ],
            ),
        ),
        (
            "get",
            "/v1/tasks/{id}",
            op(
                "Get a task",
                "admin, operator, viewer",
                vec![id.clone()],
                None,
                vec![ok("200", "the task", r("Task"))],
            ),
        ),
        (
            "patch",
            "/v1/tasks/{id}",
            op(
                "Change fields of a task (top-level JSON merge, then full validation)",
                "admin, operator",
                vec![id.clone()],
                Some(body(
                    json!({ "type": "object", "description": "any TaskSpec fields; null resets one" }),
                )),
                vec![ok("200", "changed", r("Task"))],
            ),
        ),
        (
            "delete",
            "/v1/tasks/{id}",
            op(
                "Delete a task (its runs stay until retention)",
                "admin, operator",
                vec![id.clone()],
                None,
                vec![("204".into(), json!({ "description": "deleted" }))],
            ),
        ),
        (
            "post",
            "/v1/tasks/{id}/enable",
            op(
                "Enable a task",
                "admin, operator",
                vec![id.clone()],
                None,
                vec![ok("200", "enabled", r("Task"))],
            ),
        ),
        (
            "post",
            "/v1/tasks/{id}/disable",
            op(
                "Disable a task (new runs are refused)",
                "admin, operator",
                vec![id.clone()],
                None,
                vec![ok("200", "disabled", r("Task"))],
            ),
        ),
        (
            "post",
            "/v1/tasks/{id}/run",
            op(
                "Start a run; 202 once it is durably queued, 200 with the result when ?wait=true",
                "admin, operator",
                vec![
                    id.clone(),
                    query("wait", "wait (up to 5 minutes) for the result", "boolean"),
                ],
                Some(
                    json!({ "required": false, "content": { "application/json": { "schema": { "type": "object", "additionalProperties": false, "properties": { "params": { "type": ["object", "null"], "description": "instead of the task's params (null: the task's)" } } } } } }),
                ),
                vec![
                    ok("202", "queued", r("Run")),
                    ok("200", "finished (wait=true)", r("Run")),
                    ("409".into(), json!({ "description": "task disabled" })),
                    (
                        "429".into(),
                        json!({ "description": "max_queued_runs runs wait for a worker; Retry-After says when to try again" }),
                    ),
                ],
            ),
        ),
        (
            "get",
            "/v1/runs",
            op(
                "List runs (the task log), newest first",
                "admin, operator, viewer",
                runs_params,
                None,
                vec![ok("200", "a page of runs", page_of("runs", "Run"))],
            ),
        ),
        (
            "get",
            "/v1/runs/{id}",
            op(
                "Get a run with its plugin log",
                "admin, operator, viewer",
                vec![id.clone()],
                None,
                vec![ok("200", "the run", r("Run"))],
            ),
        ),
        (
            "post",
            "/v1/runs/{id}/cancel",
            op(
                "Cancel a queued or running run",
                "admin, operator",
                vec![id.clone()],
                None,
                vec![
                    ok("200", "cancelled", r("Run")),
                    ("409".into(), json!({ "description": "already finished" })),
                ],
            ),
        ),
        (
            "get",
            "/v1/tokens",
            op(
                "List tokens (never secrets)",
                "admin",
                vec![],
                None,
                vec![ok("200", "tokens", list("tokens", "Token"))],
            ),
        ),
        (
            "post",
            "/v1/tokens",
            op(
                "Create a token; the secret is in this answer only",
                "admin",
                vec![],
                Some(body(
                    json!({ "type": "object", "required": ["name", "role"], "additionalProperties": false, "properties": { "name": name_schema(), "role": { "enum": ["admin", "operator", "viewer", "ingest"] } } }),
                )),
                vec![
                    ok("201", "created (with `secret`)", r("Token")),
                    ("409".into(), json!({ "description": "name taken" })),
                ],
            ),
        ),
        (
            "delete",
            "/v1/tokens/{id}",
            op(
                "Revoke a token (by id or name)",
                "admin",
                vec![id.clone()],
                None,
                vec![
                    ("204".into(), json!({ "description": "revoked" })),
                    (
                        "409".into(),
                        json!({ "description": "the last admin token, or the token making the request" }),
                    ),
                ],
            ),
        ),
        (
            "get",
            "/v1/audit",
            op(
                "The audit log, newest first",
                "admin, operator, viewer",
                audit_params,
                None,
                vec![ok("200", "a page of entries", page_of("entries", "AuditEntry"))],
            ),
        ),
        (
            "get",
            "/v1/clock",
            op(
                "The scheduler's clock (manual when the daemon runs with --test-clock)",
                "admin, operator, viewer",
                vec![],
                None,
                vec![ok("200", "the clock", clock.clone())],
            ),
        ),
        (
            "post",
            "/v1/clock",
            op(
                "Move a manual test clock forward; returns once every slot due by then is recorded (409 on the system clock)",
                "admin",
                vec![],
                Some(body(
                    json!({ "type": "object", "additionalProperties": false, "description": "give exactly one of to or advance_seconds",
                    "oneOf": [
                        { "required": ["to"], "properties": { "to": { "type": "string" }, "advance_seconds": { "type": "null" } } },
                        { "required": ["advance_seconds"], "properties": { "advance_seconds": { "type": "integer" }, "to": { "type": "null" } } }
                    ],
                    "properties": {
                    "to": { "type": ["string", "null"], "format": "date-time" },
                    "advance_seconds": { "type": ["integer", "null"], "minimum": 0, "maximum": 3162240000u64 } } }),
                )),
                vec![
                    ok("200", "the clock after the move", clock),
                    (
                        "409".into(),
                        json!({ "description": "the daemon runs on the system clock", "content": { "application/json": { "schema": r("Error") } } }),
                    ),
                ],
            ),
        ),
        (
            "post",
            "/v1/schedules/preview",
            op(
                "Preview the fire times of an unsaved rule (each in UTC and the zone, with DST notes)",
                "admin, operator, viewer",
                vec![],
                Some(body(
                    json!({ "type": "object", "required": ["rule"], "properties": {
            "rule": { "description": "{\"cron\": \"0 2 * * *\"} | {\"calendar\": {every, unit, weekdays, day_of_month, at, window}} | {\"at\": RFC 3339}" },
            "timezone": { "type": "string", "default": "UTC" }, "start": { "type": "string" }, "end": { "type": "string" },
            "from": { "type": "string" }, "count": { "type": "integer", "default": 10, "maximum": 1440 } } }),
                )),
                vec![ok(
                    "200",
                    "fire times",
                    json!({ "type": "object", "properties": { "timezone": { "type": "string" }, "summary": { "type": "string", "description": "the rule in words" }, "slots": { "type": "array", "items": { "type": "object", "properties": {
                "utc": { "type": "string" }, "local": { "type": "string" }, "dst": { "enum": [null, "moved_out_of_gap", "first_of_repeated"] } } } } } }),
                )],
            ),
        ),
        (
            "get",
            "/v1/schedules",
            op(
                "List schedules with their tasks and next slot, oldest first (follow next_cursor)",
                "admin, operator, viewer",
                page(),
                None,
                vec![ok("200", "a page of schedules", page_of("schedules", "Schedule"))],
            ),
        ),
        (
            "post",
            "/v1/schedules",
            op(
                "Create a schedule",
                "admin, operator",
                vec![],
                Some(body(r("ScheduleSpec"))),
                vec![
                    ok("201", "created", r("Schedule")),
                    ("409".into(), json!({ "description": "name taken" })),
                ],
            ),
        ),
        (
            "get",
            "/v1/schedules/{id}",
            op(
                "Get a schedule",
                "admin, operator, viewer",
                vec![id.clone()],
                None,
                vec![ok("200", "the schedule", r("Schedule"))],
            ),
        ),
        (
            "patch",
            "/v1/schedules/{id}",
            op(
                "Change fields of a schedule (top-level JSON merge, then full validation)",
                "admin, operator",
                vec![id.clone()],
                Some(body(json!({ "type": "object" }))),
                vec![ok("200", "changed", r("Schedule"))],
            ),
        ),
        (
            "delete",
            "/v1/schedules/{id}",
            op(
                "Delete a schedule; 409 naming the tasks it drives unless ?force=true detaches them",
                "admin, operator",
                vec![
                    id.clone(),
                    query("force", "detach its tasks and delete", "boolean"),
                ],
                None,
                vec![
                    ("204".into(), json!({ "description": "deleted" })),
                    ("409".into(), json!({ "description": "it drives tasks (named)" })),
                ],
            ),
        ),
        (
            "post",
            "/v1/schedules/{id}/pause",
            op(
                "Pause a schedule",
                "admin, operator",
                vec![id.clone()],
                None,
                vec![ok("200", "paused", r("Schedule"))],
            ),
        ),
        (
            "post",
            "/v1/schedules/{id}/resume",
            op(
                "Resume a schedule",
                "admin, operator",
                vec![id.clone()],
                None,
                vec![ok("200", "resumed", r("Schedule"))],
            ),
        ),
        (
            "get",
            "/v1/schedules/{id}/preview",
            op(
                "Next fire times of a saved schedule",
                "admin, operator, viewer",
                vec![
                    id.clone(),
                    query("count", "1-1440 (default 10)", "count"),
                    query("from", "after this instant (RFC 3339, default now)", "date-time"),
                ],
                None,
                vec![ok("200", "fire times", json!({ "type": "object" }))],
            ),
        ),
        (
            "get",
            "/v1/schedules/{id}/tasks",
            op(
                "Tasks a schedule drives",
                "admin, operator, viewer",
                vec![id.clone()],
                None,
                vec![ok(
                    "200",
                    "task ids",
                    json!({ "type": "object", "properties": { "tasks": { "type": "array", "items": { "type": "string" } } } }),
                )],
            ),
        ),
        (
            "post",
            "/v1/schedules/{id}/tasks",
            op(
                "Attach a task",
                "admin, operator",
                vec![id.clone()],
                Some(body(
                    json!({ "type": "object", "required": ["task"], "additionalProperties": false, "properties": { "task": { "type": "string", "description": "task id or name" } } }),
                )),
                vec![ok("200", "task ids now attached", json!({ "type": "object" }))],
            ),
        ),
        (
            "delete",
            "/v1/schedules/{id}/tasks/{task}",
            op(
                "Detach a task",
                "admin, operator",
                vec![id.clone(), path_param("task", "task id or name")],
                None,
                vec![ok("200", "task ids still attached", json!({ "type": "object" }))],
            ),
        ),
    ]
}

/// The component schemas of those endpoints (and the shared `Error`).
pub(super) fn schemas() -> Map<String, Value> {
    let limits = json!({ "type": "object", "additionalProperties": false, "properties": {
        "memory_bytes": { "type": "integer", "minimum": 1048576, "maximum": 4294967296u64, "default": 67108864 },
        "timeout_ms": { "type": "integer", "minimum": 1, "maximum": 86400000, "default": 30000 },
        "fuel": { "type": ["integer", "null"], "minimum": 1, "maximum": u64::MAX },
        "max_output_bytes": { "type": "integer", "minimum": 1, "maximum": 268435456, "default": 1048576 },
        "max_log_lines": { "type": "integer", "minimum": 0, "maximum": 1000000, "default": 1000 },
        "max_log_bytes": { "type": "integer", "minimum": 0, "maximum": 67108864, "default": 262144 },
        "kv_max_keys": { "type": "integer", "minimum": 0, "maximum": 10000000, "default": 10000 },
        "kv_max_bytes": { "type": "integer", "minimum": 0, "maximum": 4294967296u64, "default": 16777216 },
        "max_connections": { "type": "integer", "minimum": 1, "maximum": 1024, "default": 16, "description": "outbound HTTP requests one run has open at once" },
        "max_resources": { "type": "integer", "minimum": 32, "maximum": 100000, "default": 256, "description": "host-side resources (HTTP header maps, requests, bodies, streams) one run holds at once" } } });
    let grants = json!({ "type": "object", "additionalProperties": false, "properties": {
        "hosts": { "type": "array", "items": { "type": "string" }, "description": "[scheme://]host[:port|:*], *.suffix" },
        "kv": { "type": "boolean" }, "emit_events": { "type": "boolean" }, "secrets": { "type": "array", "items": secret_name_schema() }, "mail": { "type": "boolean" } } });
    let all = json!({
                "Error": { "type": "object", "properties": { "error": { "type": "object", "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } } },
                "Limits": limits,
                "Grants": grants,
                "PluginInstall": { "type": "object", "required": ["name", "wasm_base64"], "additionalProperties": false, "properties": {
                    "name": name_schema(), "wasm_base64": { "type": "string", "contentEncoding": "base64", "description": "the component (a WebAssembly component of the action or formatter world)" },
                    "grants": r("Grants"), "limits": r("Limits"), "description": { "type": "string" } } },
                "PluginUpdate": { "type": "object", "additionalProperties": false, "description": "null resets a field to its default",
                    "properties": { "grants": { "anyOf": [r("Grants"), { "type": "null" }] }, "limits": { "anyOf": [r("Limits"), { "type": "null" }] },
                    "description": { "type": ["string", "null"] },
                    "pinned": { "type": ["boolean", "null"], "description": "keep a bundled plugin's bytes when a newer Sundial ships different ones" } } },
                "Plugin": { "type": "object", "properties": {
                    "name": { "type": "string" }, "digest": { "type": "string" }, "world": { "enum": ["action", "formatter"] },
                    "size_bytes": { "type": "integer" }, "imports": { "type": "array", "items": { "type": "string" } },
                    "grants": r("Grants"), "limits": r("Limits"), "description": { "type": "string" }, "bundled": { "type": "boolean" },
                    "pinned": { "type": "boolean" }, "installed_at": { "type": "string" }, "updated_at": { "type": "string" } } },
                "TaskSpec": { "type": "object", "required": ["name"], "additionalProperties": false,
                    "description": "give plugin or webhook as the action",
                    "oneOf": [
                        { "required": ["plugin"], "properties": { "plugin": name_schema(), "webhook": { "type": "null" } } },
                        { "required": ["webhook"], "properties": { "webhook": { "type": "string", "minLength": 1 }, "plugin": { "const": "" } } }
                    ],
                    "properties": {
                    "name": name_schema(), "description": { "type": "string", "maxLength": 4096 },
                    "plugin": { "type": "string", "description": "the installed action plugin (by name)" },
                    "webhook": { "type": ["string", "null"], "description": "instead of plugin: each run queues a delivery to this webhook (name or id)" },
                    "params": { "type": "object" }, "timeout_ms": { "type": ["integer", "null"], "minimum": 1, "maximum": 86400000 },
                    "retry": retry_schema(3, 1000, 2.0, 300000, true),
                    "overlap": { "enum": ["allow", "forbid", "replace", "queue"] },
                    "retention": { "type": "object", "additionalProperties": false, "properties": {
                        "keep_last": { "type": ["integer", "null"], "minimum": 1, "maximum": 4294967295u64 },
                        "max_age_days": { "type": ["integer", "null"], "minimum": 1, "maximum": 4294967295u64 } } },
                    "enabled": { "type": "boolean", "default": true }, "delete_after_run": { "type": "boolean", "default": false },
                    "notify": { "type": "array", "maxItems": 16, "items": { "type": "object", "required": ["webhook"], "additionalProperties": false, "properties": {
                        "webhook": { "type": "string", "minLength": 1 }, "on": { "type": "array", "minItems": 1, "items": { "enum": ["succeeded", "failed"] }, "default": ["failed"] } } } } } },
                "Task": { "allOf": [r("TaskSpec"), { "type": "object", "properties": { "id": { "type": "string" }, "created_at": { "type": "string" }, "updated_at": { "type": "string" } } }] },
                "Run": { "type": "object", "properties": {
                    "id": { "type": "string" }, "task_id": { "type": "string" }, "task_name": { "type": "string" },
                    "cause": { "type": "object", "properties": { "kind": { "enum": ["manual", "schedule", "event"] } } },
                    "started_by": { "type": "string" },
                    "status": { "enum": ["queued", "running", "succeeded", "failed", "timed_out", "cancelled", "skipped", "interrupted"] },
                    "attempt": { "type": "integer" }, "params": { "type": "object" }, "event": { "type": ["object", "null"] },
                    "depth": { "type": "integer" }, "root": { "type": "string", "description": "the causal chain the run belongs to (absent: it starts one)" },
                    "retry_of": { "type": "string", "description": "the run this one retries (absent for a first run)" },
                    "queued_at": { "type": "string" }, "started_at": { "type": ["string", "null"] }, "finished_at": { "type": ["string", "null"] },
                    "not_before": { "type": ["string", "null"] }, "output": {},
                    "error": { "type": ["object", "null"], "properties": { "kind": { "type": "string" }, "message": { "type": "string" } } },
                    "log": { "type": "object", "properties": { "lines": { "type": "array", "items": { "type": "object", "properties": {
                        "at_ms": { "type": "integer" }, "level": { "type": "string" }, "origin": { "type": "string" }, "message": { "type": "string" } } } },
                        "truncated": { "type": "boolean" }, "dropped_lines": { "type": "integer" } } },
                    "resources": { "type": "object", "properties": { "duration_us": { "type": "integer" }, "peak_memory_bytes": { "type": "integer" },
                        "fuel_consumed": { "type": ["integer", "null"] }, "hosts_contacted": { "type": "array", "items": { "type": "string" } } } },
                    "attempts": { "type": "array", "items": { "type": "object" } } } },
                "ScheduleSpec": { "type": "object", "required": ["name", "rule"], "properties": {
                    "name": name_schema(), "description": { "type": "string" },
                    "rule": { "description": "{\"cron\": expr} | {\"calendar\": {every, unit, weekdays, day_of_month, at, window}} | {\"at\": RFC 3339}; see docs/scheduling.md" },
                    "timezone": { "type": "string", "default": "UTC" }, "start": { "type": "string", "format": "date-time" }, "end": { "type": ["string", "null"], "format": "date-time" },
                    "enabled": { "type": "boolean", "default": true }, "jitter_ms": { "type": "integer", "default": 0 },
                    "misfire": { "type": "object", "properties": { "policy": { "enum": ["skip", "run_once", "run_all"] }, "max": { "type": "integer" } } },
                    "calendars": { "type": "array", "maxItems": 16, "items": { "type": "string" }, "description": "calendars whose excluded days it does not fire in" },
                    "excluded": { "enum": ["skip", "defer"], "default": "skip", "description": "a slot in an excluded window: recorded as skipped, or fired when the window ends" } } },
                "Schedule": { "allOf": [r("ScheduleSpec"), { "type": "object", "properties": { "id": { "type": "string" }, "created_at": { "type": "string" },
                    "updated_at": { "type": "string" }, "last_slot": { "type": ["string", "null"], "format": "date-time" },
                    "next_slot": { "type": ["string", "null"], "format": "date-time", "description": "the next fire, UTC" },
                    "next_slot_local": { "type": ["string", "null"], "description": "the next fire on the schedule's wall clock, with its offset" },
                    "summary": { "type": "string", "description": "the rule in words, in the schedule's zone, e.g. `every week on Mon-Fri at 18:00 (Europe/Berlin)`" },
                    "tasks": { "type": "array", "items": { "type": "string" }, "description": "ids of the attached tasks" },
                    "task_names": { "type": "array", "items": { "type": "string" }, "description": "their names, in the same order" } } }] },
                "Token": { "type": "object", "properties": { "id": { "type": "string" }, "name": { "type": "string" },
                    "role": { "enum": ["admin", "operator", "viewer", "ingest"] }, "created_at": { "type": "string" }, "secret": { "type": "string", "description": "only when created" } } },
                "AuditEntry": { "type": "object", "properties": { "id": { "type": "string" }, "at": { "type": "string" }, "actor": { "type": "string" },
                    "action": { "enum": ["create", "update", "delete"] }, "noun": { "type": "string" }, "target": { "type": "string" }, "before": {}, "after": {} } }
    });
    match all {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

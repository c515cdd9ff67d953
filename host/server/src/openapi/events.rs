//! The OpenAPI operations and schemas of events, triggers, timers, secrets, webhooks and
//! deliveries (part of the document `mod.rs` assembles).

use super::{name_schema, ok, op, path_param, query, r, secret_name_schema};
use serde_json::{Value, json};

/// (method, path, operation) of the event, trigger and timer endpoints.
pub(super) fn ops() -> Vec<(&'static str, &'static str, Value)> {
    let id = path_param("id", "id (ULID) or name");
    let page = || {
        vec![
            query("limit", "page size, 1-1000 (default 50)", "limit"),
            query("cursor", "next_cursor of the previous page", "cursor"),
        ]
    };
    let mut event_params = vec![
        query("type", "event type, exact or glob (`sync.*`)", "string"),
        query("source", "event source (exact)", "string"),
        query("subject", "event subject, exact or glob", "string"),
        query("since", "received at or after (RFC 3339)", "date-time"),
        query("until", "received before (RFC 3339)", "date-time"),
    ];
    event_params.extend(page());
    let mut timer_params = vec![
        query("trigger", "only timers of this trigger (id or name)", "string"),
        query("task", "only timers of this task (id or name)", "string"),
    ];
    timer_params.extend(page());
    let page_of = |key: &str, schema: &str| json!({ "type": "object", "properties": { key: { "type": "array", "items": r(schema) }, "next_cursor": { "type": ["string", "null"] } } });
    let outcome = json!({ "type": "object", "required": ["seq", "id", "source", "type", "duplicate"], "properties": {
        "seq": { "type": "string" }, "id": { "type": "string" }, "source": { "type": "string" }, "type": { "type": "string" },
        "duplicate": { "type": "boolean" }, "triggers": { "type": "array", "items": r("Matched") }, "stopped": { "type": ["string", "null"] } } });
    let ingest_body = json!({ "required": true, "content": {
        "application/cloudevents+json": { "schema": r("CloudEvent") },
        "application/json": { "schema": { "oneOf": [r("CloudEvent"), { "type": "array", "items": r("CloudEvent"), "minItems": 1, "maxItems": 1000 }] } },
        "application/cloudevents-batch+json": { "schema": { "type": "array", "items": r("CloudEvent"), "minItems": 1, "maxItems": 1000 } } } });
    let mut ingest = op(
        "Post a CloudEvent (structured), a batch, or one event in binary mode (ce-* headers); 202 once it is stored with the runs and timers it started",
        "admin, operator, ingest",
        vec![],
        Some(ingest_body),
        vec![ok(
            "202",
            "accepted: the outcome (a batch: {\"events\": [outcomes]})",
            json!({ "oneOf": [outcome.clone(), { "type": "object", "required": ["events"], "properties": { "events": { "type": "array", "items": outcome } } }] }),
        )],
    );
    ingest["responses"]["413"] =
        json!({ "description": "an event over max_event_size, or a body over 16 MiB" });
    ingest["responses"]["415"] = json!({ "description": "unsupported content type" });
    ingest["responses"]["429"] = json!({ "description": "max_queued_runs runs wait for a worker; Retry-After says when to try again" });
    let trigger_body =
        || json!({ "required": true, "content": { "application/json": { "schema": r("TriggerSpec") } } });
    vec![
        ("post", "/v1/events", ingest),
        (
            "get",
            "/v1/events",
            op(
                "The event log, newest first, with what each event caused",
                "admin, operator, viewer",
                event_params,
                None,
                vec![ok("200", "a page of events", page_of("events", "EventRecord"))],
            ),
        ),
        (
            "get",
            "/v1/events/{seq}",
            op(
                "One event by its seq",
                "admin, operator, viewer",
                vec![path_param("seq", "the event's seq (Sundial's id for it)")],
                None,
                vec![ok("200", "the event", r("EventRecord"))],
            ),
        ),
        (
            "get",
            "/v1/triggers",
            op(
                "List triggers, oldest first (follow next_cursor)",
                "admin, operator, viewer",
                page(),
                None,
                vec![ok("200", "a page of triggers", page_of("triggers", "Trigger"))],
            ),
        ),
        (
            "post",
            "/v1/triggers",
            op(
                "Create a trigger",
                "admin, operator",
                vec![],
                Some(trigger_body()),
                vec![
                    ok("201", "created", r("Trigger")),
                    ("409".into(), json!({ "description": "name taken" })),
                ],
            ),
        ),
        (
            "get",
            "/v1/triggers/{id}",
            op(
                "One trigger",
                "admin, operator, viewer",
                vec![id.clone()],
                None,
                vec![ok("200", "the trigger", r("Trigger"))],
            ),
        ),
        (
            "patch",
            "/v1/triggers/{id}",
            op(
                "Change fields of a trigger (top-level JSON merge; the result is validated again)",
                "admin, operator",
                vec![id.clone()],
                Some(
                    json!({ "required": true, "content": { "application/json": { "schema": { "type": "object" } } } }),
                ),
                vec![
                    ok("200", "the trigger", r("Trigger")),
                    ("409".into(), json!({ "description": "name taken" })),
                ],
            ),
        ),
        (
            "delete",
            "/v1/triggers/{id}",
            op(
                "Delete a trigger (its pending timers stay; cancel them under /v1/timers)",
                "admin, operator",
                vec![id.clone()],
                None,
                vec![("204".into(), json!({ "description": "deleted" }))],
            ),
        ),
        (
            "post",
            "/v1/triggers/{id}/enable",
            op(
                "Enable a trigger",
                "admin, operator",
                vec![id.clone()],
                None,
                vec![ok("200", "the trigger", r("Trigger"))],
            ),
        ),
        (
            "post",
            "/v1/triggers/{id}/disable",
            op(
                "Disable a trigger",
                "admin, operator",
                vec![id],
                None,
                vec![ok("200", "the trigger", r("Trigger"))],
            ),
        ),
        (
            "get",
            "/v1/timers",
            op(
                "Pending delayed trigger targets, oldest first",
                "admin, operator, viewer",
                timer_params,
                None,
                vec![ok("200", "a page of timers", page_of("timers", "Timer"))],
            ),
        ),
        (
            "get",
            "/v1/secrets",
            op(
                "Secret names with sizes and timestamps (never values)",
                "admin, operator",
                vec![],
                None,
                vec![ok(
                    "200",
                    "secrets",
                    json!({ "type": "object", "properties": { "secrets": { "type": "array", "items": r("SecretInfo") } } }),
                )],
            ),
        ),
        (
            "get",
            "/v1/secrets/{name}",
            op(
                "One secret's metadata (never its value)",
                "admin, operator",
                vec![path_param("name", "secret name")],
                None,
                vec![ok("200", "the secret", r("SecretInfo"))],
            ),
        ),
        (
            "put",
            "/v1/secrets/{name}",
            op(
                "Set a secret (write-only; sealed with the daemon's key)",
                "admin",
                vec![
                    json!({ "name": "name", "in": "path", "required": true, "description": "secret name: 1-128 letters, digits, _ - .", "schema": secret_name_schema() }),
                ],
                Some(
                    json!({ "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["value"], "additionalProperties": false, "properties": { "value": { "type": "string", "minLength": 1, "maxLength": 65536 } } } } } }),
                ),
                vec![
                    ok("201", "created", r("SecretInfo")),
                    ok("200", "replaced", r("SecretInfo")),
                ],
            ),
        ),
        (
            "delete",
            "/v1/secrets/{name}",
            op(
                "Delete a secret",
                "admin",
                vec![path_param("name", "secret name")],
                None,
                vec![("204".into(), json!({ "description": "deleted" }))],
            ),
        ),
        (
            "get",
            "/v1/webhooks",
            op(
                "List webhooks, oldest first (follow next_cursor)",
                "admin, operator, viewer",
                page(),
                None,
                vec![ok("200", "a page of webhooks", page_of("webhooks", "Webhook"))],
            ),
        ),
        (
            "post",
            "/v1/webhooks",
            op(
                "Create a webhook (its formatter must be an installed formatter plugin and its secrets must exist)",
                "admin, operator",
                vec![],
                Some(
                    json!({ "required": true, "content": { "application/json": { "schema": r("WebhookSpec") } } }),
                ),
                vec![
                    ok("201", "created", r("Webhook")),
                    ("409".into(), json!({ "description": "name taken" })),
                ],
            ),
        ),
        (
            "get",
            "/v1/webhooks/{id}",
            op(
                "One webhook",
                "admin, operator, viewer",
                vec![path_param("id", "id (ULID) or name")],
                None,
                vec![ok("200", "the webhook", r("Webhook"))],
            ),
        ),
        (
            "patch",
            "/v1/webhooks/{id}",
            op(
                "Change fields of a webhook (top-level JSON merge, validated again; enabling clears disabled_reason)",
                "admin, operator",
                vec![path_param("id", "id (ULID) or name")],
                Some(
                    json!({ "required": true, "content": { "application/json": { "schema": { "type": "object" } } } }),
                ),
                vec![
                    ok("200", "the webhook", r("Webhook")),
                    ("409".into(), json!({ "description": "name taken" })),
                ],
            ),
        ),
        (
            "delete",
            "/v1/webhooks/{id}",
            op(
                "Delete a webhook (its queued deliveries die)",
                "admin, operator",
                vec![path_param("id", "id (ULID) or name")],
                None,
                vec![("204".into(), json!({ "description": "deleted" }))],
            ),
        ),
        (
            "post",
            "/v1/webhooks/{id}/test",
            op(
                "Queue a delivery of a sample event (sundial.webhook.test)",
                "admin, operator",
                vec![path_param("id", "id (ULID) or name")],
                None,
                vec![ok("202", "the queued delivery", r("Delivery"))],
            ),
        ),
        (
            "get",
            "/v1/deliveries",
            op(
                "Deliveries, newest first",
                "admin, operator, viewer",
                {
                    let mut p = vec![
                        query("webhook", "only this webhook (id or name)", "string"),
                        query(
                            "status",
                            "queued, delivered or dead",
                            "enum:queued|delivered|dead",
                        ),
                    ];
                    p.extend(page());
                    p
                },
                None,
                vec![ok(
                    "200",
                    "a page of deliveries",
                    page_of("deliveries", "Delivery"),
                )],
            ),
        ),
        (
            "get",
            "/v1/deliveries/{id}",
            op(
                "One delivery with its attempts",
                "admin, operator, viewer",
                vec![path_param("id", "delivery id")],
                None,
                vec![ok("200", "the delivery", r("Delivery"))],
            ),
        ),
        (
            "post",
            "/v1/deliveries/{id}/retry",
            op(
                "Queue a dead delivery again, or make a queued one due now (409 when delivered)",
                "admin, operator",
                vec![path_param("id", "delivery id")],
                None,
                vec![
                    ok("202", "the delivery", r("Delivery")),
                    ("409".into(), json!({ "description": "already delivered" })),
                ],
            ),
        ),
        (
            "delete",
            "/v1/timers/{id}",
            op(
                "Cancel a pending timer",
                "admin, operator",
                vec![path_param("id", "timer id")],
                None,
                vec![("204".into(), json!({ "description": "cancelled" }))],
            ),
        ),
    ]
}

/// Schemas of events, triggers and timers.
pub(super) fn schemas() -> Vec<(&'static str, Value)> {
    vec![
        (
            "CloudEvent",
            json!({ "type": "object", "required": ["specversion", "id", "source", "type"], "properties": {
                "specversion": { "const": "1.0" }, "id": { "type": "string", "minLength": 1 },
                "source": { "type": "string", "minLength": 1, "description": "`sundial` and `sundial/...` are reserved for events Sundial emits",
                            "not": { "pattern": "^sundial(/|$)" } },
                "type": { "type": "string", "minLength": 1 },
                "subject": { "type": ["string", "null"], "minLength": 1 }, "time": { "type": ["string", "null"], "format": "date-time" },
                "datacontenttype": { "type": ["string", "null"], "minLength": 1 }, "dataschema": { "type": ["string", "null"], "minLength": 1 }, "data": {},
"data_base64": { "type": ["string", "null"], "minLength": 1, "pattern": "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$" } },
                "not": { "required": ["data", "data_base64"], "properties": { "data": { "not": { "type": "null" } }, "data_base64": { "type": "string" } } },
                "propertyNames": { "pattern": "^([a-z0-9]{1,20}|data_base64)$", "description": "extension attributes: 1-20 lower-case letters or digits" },
                "additionalProperties": { "type": ["string", "number", "boolean", "null"] } }),
        ),
        (
            "CloudEventStored",
            json!({ "type": "object", "description": "a stored event (also the ones Sundial emits, from the reserved sources)",
                "required": ["specversion", "id", "source", "type"], "properties": {
                "specversion": { "const": "1.0" }, "id": { "type": "string" }, "source": { "type": "string" }, "type": { "type": "string" },
                "subject": { "type": "string" }, "time": { "type": "string" }, "datacontenttype": { "type": "string" },
                "dataschema": { "type": "string" }, "data": {}, "data_base64": { "type": "string" } },
                "additionalProperties": { "type": ["string", "number", "boolean"] } }),
        ),
        (
            "Matched",
            json!({ "type": "object", "properties": { "trigger": { "type": "string" }, "name": { "type": "string" },
                "runs": { "type": "array", "items": { "type": "string" } }, "timers": { "type": "array", "items": { "type": "string" } },
                "skipped": { "type": "array", "items": { "type": "string" } } } }),
        ),
        (
            "EventRecord",
            json!({ "type": "object", "properties": { "seq": { "type": "string" }, "event": r("CloudEventStored"),
                "received_at": { "type": "string" }, "depth": { "type": "integer" }, "caused_by": { "type": ["string", "null"] },
                "triggers": { "type": "array", "items": r("Matched") }, "stopped": { "type": ["string", "null"] },
                "root": { "type": "string", "description": "the causal chain the event belongs to (absent: it starts one)" } } }),
        ),
        (
            "TriggerSpec",
            json!({ "type": "object", "required": ["name", "on", "targets"], "properties": {
                "name": name_schema(), "description": { "type": "string", "maxLength": 4096 }, "enabled": { "type": "boolean", "default": true },
                "on": { "type": "object", "description": "give type (with optional source, subject, filter) or schedule (with optional filter)", "properties": {
                    "type": { "type": "string", "description": "exact or glob (* and ?)" }, "source": { "type": "string" }, "subject": { "type": "string" },
                    "schedule": { "type": "string", "description": "a schedule by name or id: react to each slot it fires (sundial.schedule.fired)" },
                    "filter": { "type": "object", "description": "{\"all\"|\"any\": [..]}, {\"not\": ..} or {\"path\": \"data.x\", OP: value} with OP in eq, ne, in, glob, exists, gt, gte, lt, lte, contains; see docs/events.md" } } },
                "targets": { "type": "array", "minItems": 1, "maxItems": 100, "items": { "type": "object", "description": "exactly one of task or webhook", "properties": { "task": { "type": "string" }, "webhook": { "type": "string" } } } },
                "context": { "type": "object", "description": "merged over each target task's params" },
                "delay": { "type": "string", "description": "e.g. 90m, 30d, 2w, 2 hours" },
                "calendars": { "type": "array", "maxItems": 16, "items": { "type": "string" }, "description": "calendars whose excluded windows it starts nothing in" },
                "excluded": { "enum": ["skip", "defer"], "default": "skip", "description": "an event in an excluded window: noted and skipped, or its targets start when the window ends" } } }),
        ),
        (
            "Trigger",
            json!({ "allOf": [r("TriggerSpec"), { "type": "object", "properties": { "id": { "type": "string" },
                "created_at": { "type": "string" }, "updated_at": { "type": "string" } } }] }),
        ),
        (
            "WebhookSpec",
            json!({ "type": "object", "required": ["name", "url"], "properties": {
                "name": name_schema(), "description": { "type": "string" }, "url": { "type": "string" },
                "method": { "enum": ["POST", "PUT", "PATCH", "GET"], "default": "POST" },
                "headers": { "type": "array", "items": { "type": "object", "properties": { "name": { "type": "string" }, "value": { "type": "string" } } } },
                "auth": { "type": "object", "description": "{type: none} | {type: basic, username, password_secret} | {type: bearer, token_secret} | {type: api_key, header, key_secret}" },
                "formatter": { "type": "string", "default": "json" }, "formatter_config": { "type": "object" }, "template": { "type": "string" },
                "signing_secrets": { "type": "array", "items": { "type": "string" } },
                "timeout_ms": { "type": "integer", "default": 5000 }, "max_concurrency": { "type": "integer", "default": 4 },
                "retry": { "type": "object", "properties": { "max_attempts": { "type": "integer", "default": 13 }, "initial_delay_ms": { "type": "integer", "default": 5000 },
                    "multiplier": { "type": "number", "default": 2.5 }, "max_delay_ms": { "type": "integer", "default": 21600000 }, "jitter": { "type": "number", "default": 0.2 } } },
                "allow_insecure_tls": { "type": "boolean", "default": false }, "enabled": { "type": "boolean", "default": true } } }),
        ),
        (
            "Webhook",
            json!({ "allOf": [r("WebhookSpec"), { "type": "object", "properties": { "id": { "type": "string" },
                "created_at": { "type": "string" }, "updated_at": { "type": "string" }, "disabled_reason": { "type": ["string", "null"] } } }] }),
        ),
        (
            "Delivery",
            json!({ "type": "object", "properties": { "id": { "type": "string" }, "webhook_id": { "type": "string" }, "webhook_name": { "type": "string" },
                "status": { "enum": ["queued", "delivered", "dead"] }, "created_at": { "type": "string" }, "finished_at": { "type": ["string", "null"] },
                "next_attempt_at": { "type": ["string", "null"] }, "cause": { "type": "string" }, "error": { "type": ["string", "null"] },
                "attempts": { "type": "array", "items": { "type": "object", "properties": { "number": { "type": "integer" }, "at": { "type": "string" },
                    "status_code": { "type": ["integer", "null"] }, "latency_ms": { "type": "integer" }, "response": { "type": "string" }, "error": { "type": "string" } } } } } }),
        ),
        (
            "SecretInfo",
            json!({ "type": "object", "properties": { "name": { "type": "string" }, "created_at": { "type": "string" },
                "updated_at": { "type": "string" }, "size": { "type": "integer" } } }),
        ),
        (
            "Timer",
            json!({ "type": "object", "description": "A delayed trigger target: a task's run (task_id, task_name, params) or a webhook's delivery (webhook).",
                "properties": { "id": { "type": "string" }, "due": { "type": "string" }, "created_at": { "type": "string" },
                "trigger": { "type": "string" }, "trigger_name": { "type": "string" }, "event": { "type": "string" },
                "task_id": { "type": "string" }, "task_name": { "type": "string" }, "params": {},
                "webhook": { "type": "object", "properties": { "id": { "type": "string" }, "name": { "type": "string" } } },
                "payload": { "type": "object" }, "depth": { "type": "integer" }, "root": { "type": "string" } } }),
        ),
    ]
}

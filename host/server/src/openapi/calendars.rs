//! The OpenAPI operations of calendars and maintenance windows.

use super::{body, ok, op, path_param, query};
use serde_json::{Value, json};

/// (method, path, operation) of `/v1/calendars...` and `/v1/maintenance...`.
pub(super) fn ops() -> Vec<(&'static str, &'static str, Value)> {
    let entry = json!({ "oneOf": [
        { "type": "object", "required": ["date"], "additionalProperties": false, "properties": {
            "date": { "type": "string", "format": "date" }, "note": { "type": "string" } } },
        { "type": "object", "required": ["yearly"], "additionalProperties": false, "properties": {
            "yearly": { "type": "string", "pattern": "^[0-9]{2}-[0-9]{2}$", "description": "MM-DD" }, "note": { "type": "string" } } },
        { "type": "object", "required": ["from", "to"], "additionalProperties": false, "properties": {
            "from": { "type": "string", "description": "a date, a wall time (2026-12-24T18:00) or an RFC 3339 instant" },
            "to": { "type": "string", "description": "a date (included), a wall time or an instant (excluded)" },
            "note": { "type": "string" } } } ] });
    let calendar = json!({ "type": "object", "required": ["name"], "additionalProperties": false, "properties": {
        "name": { "type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]*$", "maxLength": 64 },
        "description": { "type": "string" },
        "timezone": { "type": "string", "description": "zone of its dates and wall times; empty: the schedule's" },
        "exclude": { "type": "array", "maxItems": 10000, "items": entry },
        "ics": { "type": "string", "maxLength": 1048576, "description": "an iCalendar file's text; its events are excluded (see docs/scheduling.md)" } } });
    let maintenance = json!({ "type": "object", "properties": {
        "id": { "type": "string" }, "from": { "type": "string", "format": "date-time" }, "until": { "type": "string", "format": "date-time" },
        "schedules": { "type": "array", "items": { "type": "string" } }, "reason": { "type": "string" },
        "by": { "type": "string" }, "active": { "type": "boolean" } } });
    let name = || path_param("name", "calendar name");
    vec![
        (
            "get",
            "/v1/calendars",
            op(
                "List calendars",
                "admin, operator, viewer",
                vec![],
                None,
                vec![ok(
                    "200",
                    "calendars",
                    json!({ "type": "object", "properties": { "calendars": { "type": "array", "items": calendar.clone() } } }),
                )],
            ),
        ),
        (
            "post",
            "/v1/calendars",
            op(
                "Create a calendar: excluded days and ranges schedules honour",
                "admin, operator",
                vec![],
                Some(body(calendar.clone())),
                vec![
                    ok("201", "created", calendar.clone()),
                    (
                        "409".into(),
                        json!({ "description": "a calendar of that name exists" }),
                    ),
                ],
            ),
        ),
        (
            "get",
            "/v1/calendars/{name}",
            op(
                "Get a calendar",
                "admin, operator, viewer",
                vec![name()],
                None,
                vec![ok("200", "the calendar", calendar.clone())],
            ),
        ),
        (
            "put",
            "/v1/calendars/{name}",
            op(
                "Replace a calendar (same name)",
                "admin, operator",
                vec![name()],
                Some(body(calendar.clone())),
                vec![ok("200", "replaced", calendar.clone())],
            ),
        ),
        (
            "delete",
            "/v1/calendars/{name}",
            op(
                "Delete a calendar (409 while schedules name it)",
                "admin, operator",
                vec![name()],
                None,
                vec![
                    ("204".into(), json!({ "description": "deleted" })),
                    ("409".into(), json!({ "description": "schedules use it" })),
                ],
            ),
        ),
        (
            "get",
            "/v1/calendars/{name}/check",
            op(
                "Whether an instant is excluded, and by which window",
                "admin, operator, viewer",
                vec![
                    name(),
                    query("at", "the instant (default now)", "date-time"),
                    query(
                        "timezone",
                        "zone for a calendar without one (default the daemon's)",
                        "string",
                    ),
                ],
                None,
                vec![ok(
                    "200",
                    "the answer",
                    json!({ "type": "object", "properties": {
                    "at": { "type": "string" }, "excluded": { "type": "boolean" },
                    "window": { "type": ["object", "null"], "properties": { "start": { "type": "string" }, "end": { "type": "string" }, "reason": { "type": "string" } } } } }),
                )],
            ),
        ),
        (
            "get",
            "/v1/maintenance",
            op(
                "List maintenance windows (ended ones are kept 30 days)",
                "admin, operator, viewer",
                vec![],
                None,
                vec![ok(
                    "200",
                    "windows",
                    json!({ "type": "object", "properties": { "windows": { "type": "array", "items": maintenance.clone() } } }),
                )],
            ),
        ),
        (
            "post",
            "/v1/maintenance",
            op(
                "Start a maintenance window: schedules (all, or those named) do not fire in it",
                "admin, operator",
                vec![],
                Some(body(
                    json!({ "type": "object", "required": ["for"], "additionalProperties": false, "properties": {
                    "for": { "type": "string", "description": "how long: 30m, 2h, 1d (1 minute to 30 days)" },
                    "from": { "type": "string", "format": "date-time", "description": "default now" },
                    "schedules": { "type": "array", "items": { "type": "string" }, "description": "names or ids; empty: all" },
                    "reason": { "type": "string", "maxLength": 1000 } } }),
                )),
                vec![ok("201", "started (or planned)", maintenance.clone())],
            ),
        ),
        (
            "post",
            "/v1/maintenance/{id}/end",
            op(
                "End a maintenance window now",
                "admin, operator",
                vec![path_param("id", "window id")],
                None,
                vec![
                    ok("200", "ended", maintenance),
                    ("409".into(), json!({ "description": "already ended" })),
                ],
            ),
        ),
    ]
}

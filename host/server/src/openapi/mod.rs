//! `GET /openapi.json`: the API described as OpenAPI 3.1. A test checks that the document
//! describes exactly the routes the router serves ([`super::ROUTES`]), both ways.

use serde_json::{Value, json};

mod admin;
mod calendars;
mod events;
mod retry;
mod tasks;

pub(super) fn r(schema: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{schema}") })
}

pub(super) fn body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

pub(super) fn ok(code: &str, what: &str, schema: Value) -> (String, Value) {
    (
        code.to_string(),
        json!({ "description": what, "content": { "application/json": { "schema": schema } } }),
    )
}

pub(super) fn op(
    summary: &str,
    roles: &str,
    params: Vec<Value>,
    request: Option<Value>,
    responses: Vec<(String, Value)>,
) -> Value {
    let mut resp = serde_json::Map::new();
    for (code, v) in responses {
        resp.insert(code, v);
    }
    for (code, what) in [
        ("400", "invalid input (the message names the field)"),
        ("401", "missing or unknown token"),
        ("403", "the token's role may not do this"),
        ("404", "not found"),
        (
            "503",
            "overloaded (max_requests in progress) or the data disk is failing; Retry-After says when to try again",
        ),
    ] {
        resp.entry(code.to_string()).or_insert_with(
            || json!({ "description": what, "content": { "application/json": { "schema": r("Error") } } }),
        );
    }
    let mut o = json!({ "summary": summary, "description": format!("Roles: {roles}."), "parameters": params, "responses": resp });
    if let Some(b) = request {
        o["requestBody"] = b;
        o["responses"]["408"] = json!({ "description": "the body did not arrive within body_timeout", "content": { "application/json": { "schema": r("Error") } } });
    }
    o
}

pub(super) fn path_param(name: &str, what: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": what, "schema": { "type": "string" } })
}

/// A ULID, as ids and cursors are.
const ULID: &str = "^[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$";

/// The name rule of tasks, schedules, triggers, webhooks, plugins and tokens
/// (`task::validate_name`): 1-64 of `[a-z0-9._-]` starting with a letter or digit, and not
/// shaped like an id.
pub(super) fn name_schema() -> Value {
    json!({ "type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$",
            "not": { "pattern": "^[0-7][0-9a-hjkmnp-tv-z]{25}$" } })
}

/// A retry policy (`task::RetryPolicy`, `webhook::DeliveryRetry`) with its defaults;
/// `retry_on` only for tasks.
pub(super) fn retry_schema(
    attempts: u32,
    initial_ms: u64,
    multiplier: f64,
    max_ms: u64,
    retry_on: bool,
) -> Value {
    let mut s = json!({ "type": "object", "additionalProperties": false, "properties": {
        "max_attempts": { "type": "integer", "minimum": 1, "maximum": 100, "default": attempts },
        "initial_delay_ms": { "type": "integer", "minimum": 0, "maximum": 86400000, "default": initial_ms },
        "multiplier": { "type": "number", "minimum": 1.0, "maximum": 10.0, "default": multiplier },
        "max_delay_ms": { "type": "integer", "minimum": 0, "maximum": 604800000u64, "default": max_ms, "description": "cap on every delay (below initial_delay_ms: every delay is the cap)" },
        "jitter": { "type": "number", "minimum": 0.0, "maximum": 1.0, "default": 0.2 } } });
    if retry_on {
        let flag = json!({ "type": "boolean" });
        s["properties"]["retry_on"] = json!({ "type": "object", "additionalProperties": false, "properties": {
            "retryable": flag, "timeout": flag, "failed": flag, "crash": flag, "interrupted": flag } });
    }
    s
}

/// A secret name (`secrets::validate_name`): 1-128 letters, digits, `_`, `-`, `.`.
pub(super) fn secret_name_schema() -> Value {
    json!({ "type": "string", "pattern": "^[A-Za-z0-9_.-]{1,128}$" })
}

/// An optional query parameter. `ty` is a JSON type, or one of the constrained kinds
/// the handlers check: `limit` (1-1000), `count` (1-1440), `cursor` (a ULID),
/// `date-time` (RFC 3339), `enum:a|b|c`.
pub(super) fn query(name: &str, what: &str, ty: &str) -> Value {
    let schema = match ty {
        "limit" => json!({ "type": "integer", "minimum": 1, "maximum": 1000 }),
        "count" => json!({ "type": "integer", "minimum": 1, "maximum": 1440 }),
        "cursor" => json!({ "type": "string", "pattern": ULID }),
        "date-time" => json!({ "type": "string", "format": "date-time" }),
        t if t.starts_with("enum:") => {
            json!({ "type": "string", "enum": t[5..].split('|').collect::<Vec<_>>() })
        }
        t => json!({ "type": t }),
    };
    json!({ "name": name, "in": "query", "required": false, "description": what, "schema": schema })
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, o) in tasks::ops()
        .into_iter()
        .chain(events::ops())
        .chain(retry::ops())
        .chain(retry::agenda_ops())
        .chain(calendars::ops())
        .chain(admin::ops())
    {
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[method] = o;
    }
    let mut schemas = tasks::schemas();
    for (name, schema) in events::schemas() {
        schemas.insert(name.to_string(), schema);
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Sundial API", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Errors are {\"error\": {\"code\", \"message\"}}. Authenticate with `Authorization: Bearer <token>`." },
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": schemas
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    #[test]
    fn the_document_describes_exactly_the_routes_the_router_serves() {
        let doc = super::document();
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(move |method| (method.clone(), path.clone()))
            })
            .collect();
        let served: BTreeSet<(String, String)> = crate::ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(served.len(), crate::ROUTES.len(), "a route is declared twice");
        let undocumented: Vec<_> = served.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "served but missing from openapi.json: {undocumented:?}"
        );
        let phantom: Vec<_> = documented.difference(&served).collect();
        assert!(phantom.is_empty(), "in openapi.json but not served: {phantom:?}");
    }
}

//! `GET /openapi.json`: the API described as OpenAPI 3.1, generated, not written.
//!
//! aide builds each operation from its handler's types while `routes!` (in `lib.rs`)
//! adds the route: the role gate gives the security requirement, the roles and the
//! 401/403 answers; path, query and body extractors give the parameters and the request
//! body (with its 408/413/415 answers); the answer type gives the success status and
//! schema ([`crate::answer`]); [`crate::ApiError`] gives the error answers. The schemas
//! come from the types themselves (schemars), with the bounds the daemon checks written
//! on the fields. `routes!` adds each route's summary and the answers only its handler
//! knows (a 409 and why). A route can only be added through `routes!`, so none exists
//! without its documentation; a test checks that the router's routes and the document's
//! operations are the same set.

use aide::openapi::OpenApi;
use serde_json::{Value, json};

/// What `routes!` says of one route beside its handler: a summary, and the answers its
/// handler gives beyond those its types declare (status, why).
pub struct RouteDoc {
    /// `get`, `post`, ...
    pub method: &'static str,
    /// The path template.
    pub path: &'static str,
    /// One line.
    pub summary: &'static str,
    /// Extra answers: (status, when).
    pub answers: &'static [(u16, &'static str)],
}

/// What each path parameter is, by its name in the template.
fn path_parameter(name: &str) -> &'static str {
    match name {
        "id" => "id (ULID) or name",
        "name" => "name",
        "seq" => "the event's seq (Sundial's id for it)",
        "task" => "task id or name",
        "table" => "table name (as GET /v1/admin/unreadable lists it)",
        "key" => "the record's key",
        _ => "",
    }
}

/// The final document: aide's operations and schemas, with the summaries and extra
/// answers of [`RouteDoc`], a parameter for every `{name}` of a path that no
/// extractor described, and the document's info and security scheme.
pub fn document(api: OpenApi, docs: &[RouteDoc]) -> Value {
    let mut doc = serde_json::to_value(api).unwrap_or_else(|e| json!({ "error": e.to_string() }));
    doc["openapi"] = json!("3.1.0");
    doc["info"] = json!({
        "title": "Sundial API",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Errors are {\"error\": {\"code\", \"message\"}}. Authenticate with `Authorization: Bearer <token>`.",
    });
    doc["components"]["securitySchemes"] = json!({ "bearer": { "type": "http", "scheme": "bearer" } });
    let error = json!({ "$ref": "#/components/schemas/ErrorBody" });
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                add_path_parameters(path, op);
                let Some(d) = docs.iter().find(|d| d.path == path && d.method == method) else {
                    continue;
                };
                op["summary"] = json!(d.summary);
                for (status, when) in d.answers {
                    op["responses"][status.to_string()] = json!({
                        "description": when,
                        "content": { "application/json": { "schema": error.clone() } },
                    });
                }
            }
        }
    }
    doc
}

/// Add `{name}` of `path` as a string parameter unless an extractor described it.
fn add_path_parameters(path: &str, op: &mut Value) {
    let names: Vec<&str> = path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .collect();
    if !op["parameters"].is_array() {
        op["parameters"] = json!([]);
    }
    let Some(params) = op["parameters"].as_array_mut() else {
        return;
    };
    for name in names {
        let known = params.iter().any(|p| p["in"] == "path" && p["name"] == name);
        if !known {
            params.push(json!({
                "name": name, "in": "path", "required": true,
                "description": path_parameter(name), "schema": { "type": "string" },
            }));
        }
    }
}

/// `#[schemars(transform = ...)]` for a view that flattens a spec refusing unknown
/// fields: the view has more fields than the spec, so it does not close the object.
pub fn open_object(schema: &mut schemars::Schema) {
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("additionalProperties");
        obj.remove("unevaluatedProperties");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    #[test]
    fn the_document_describes_exactly_the_routes_the_router_serves() {
        let (_, doc) = crate::documented_routes();
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| *k != "parameters")
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

    #[test]
    fn every_operation_has_a_summary_a_success_answer_and_its_path_parameters() {
        let (_, doc) = crate::documented_routes();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                assert!(op["summary"].is_string(), "{method} {path}: no summary");
                let responses = op["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|k| k.starts_with('2')),
                    "{method} {path}: no success answer: {responses:?}"
                );
                for name in path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                {
                    let params = op["parameters"].as_array().unwrap();
                    assert!(
                        params.iter().any(|p| p["in"] == "path" && p["name"] == name),
                        "{method} {path}: parameter {name} undocumented"
                    );
                }
            }
        }
    }
}

//! Operations of the admin area: unreadable records, backups.

use super::{ok, op, path_param, query, r};
use serde_json::{Value, json};

pub(super) fn ops() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "get",
            "/v1/admin/backup",
            op(
                "A consistent backup of the running daemon: a tar of the store, its secret key and the admin token file (see docs/operations.md)",
                "admin",
                vec![],
                None,
                vec![(
                    "200".into(),
                    json!({ "description": "the backup", "content": { "application/x-tar": { "schema": { "type": "string", "format": "binary" } } } }),
                )],
            ),
        ),
        (
            "get",
            "/v1/admin/unreadable",
            op(
                "Stored records that do not decode (lists, pages and start-up skip them)",
                "admin",
                vec![query("limit", "most records (default 100)", "limit")],
                None,
                vec![ok(
                    "200",
                    "the unreadable records, and how often one was skipped since start",
                    json!({ "type": "object", "properties": {
                        "records": { "type": "array", "items": { "type": "object", "properties": {
                            "table": { "type": "string" }, "key": { "type": "string" },
                            "error": { "type": "string" }, "bytes": { "type": "integer" } } } },
                        "skipped_total": { "type": "integer" } } }),
                )],
            ),
        ),
        (
            "delete",
            "/v1/admin/unreadable/{table}/{key}",
            op(
                "Delete an unreadable record and the index entries that point to it (409 if it reads)",
                "admin",
                vec![
                    path_param("table", "the table (tasks, runs, triggers, ...)"),
                    path_param("key", "the record's key"),
                ],
                None,
                vec![
                    ("204".into(), json!({ "description": "deleted" })),
                    (
                        "409".into(),
                        json!({ "description": "the record reads; delete it through its own API",
                                "content": { "application/json": { "schema": r("Error") } } }),
                    ),
                ],
            ),
        ),
    ]
}

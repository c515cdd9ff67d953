//! A stand-in VergeOS v4 API on loopback: VMs, tenants, users and update settings in
//! memory; every request is checked against the shape Verge.io documents (method,
//! path, query, JSON body, `Authorization: Bearer` API key) and recorded. A request
//! that does not match gets the API's own kind of answer (401, 404, 422 with
//! `{"err": ...}`), so a plugin bug shows up as a failed run.

use crate::{Answer, Received, serve_http_on};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// A recorded request.
#[derive(Debug, Clone)]
pub struct Call {
    /// Method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The query, percent-decoded.
    pub query: String,
    /// The JSON body (`null` when none).
    pub body: Value,
    /// What the stand-in answered.
    pub status: u16,
}

/// One row of a table: key, name, and its on/enabled state.
#[derive(Debug, Clone)]
pub struct Row {
    /// `$key`.
    pub key: u64,
    /// `name`.
    pub name: String,
    /// Running (VMs, tenants) or enabled (users).
    pub on: bool,
}

#[derive(Default)]
struct State {
    tables: Vec<(&'static str, Vec<Row>)>,
    update_source: u64,
    update_actions: Vec<String>,
    fail_next: VecDeque<u16>,
    calls: Vec<Call>,
}

/// The running stand-in.
pub struct VergeOs {
    /// Base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
    _runtime: tokio::runtime::Runtime,
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn reply(status: u16, body: Value) -> (u16, Value) {
    (status, body)
}

fn err(status: u16, message: &str) -> (u16, Value) {
    reply(status, json!({ "err": message }))
}

/// The table a `*_actions` row field points into.
fn table_of(field: &str) -> Option<&'static str> {
    match field {
        "vm" => Some("vms"),
        "tenant" => Some("tenants"),
        "user" => Some("users"),
        _ => None,
    }
}

impl State {
    fn rows(&mut self, table: &str) -> Option<&mut Vec<Row>> {
        self.tables.iter_mut().find(|(t, _)| *t == table).map(|(_, r)| r)
    }

    fn handle(&mut self, api_key: &str, req: &Received, query: &str, body: &Value) -> (u16, Value) {
        if req.header("authorization") != Some(&format!("Bearer {api_key}")) {
            return err(401, "Login required");
        }
        if let Some(status) = self.fail_next.pop_front() {
            return err(status, "Service temporarily unavailable");
        }
        let path = req.path.split('?').next().unwrap_or_default();
        let Some(rest) = path.strip_prefix("/api/v4/") else {
            return err(404, "Resource not found");
        };
        match (req.method.as_str(), rest) {
            ("GET", "update_settings/1") => reply(
                200,
                json!({ "$key": 1, "source": self.update_source, "branch": 1 }),
            ),
            ("GET", table @ ("vms" | "tenants" | "users")) => {
                // Only the documented lookup: filter=name eq '<name>'.
                let params: Vec<(&str, &str)> = query.split('&').filter_map(|p| p.split_once('=')).collect();
                let filter = params.iter().find(|(k, _)| *k == "filter").map(|(_, v)| *v);
                let Some(name) = filter
                    .and_then(|f| f.strip_prefix("name eq '"))
                    .and_then(|f| f.strip_suffix('\''))
                else {
                    return err(400, &format!("unsupported filter {filter:?}"));
                };
                let rows = self.rows(table).cloned().unwrap_or_default();
                let found: Vec<Value> = rows
                    .iter()
                    .filter(|r| r.name == name)
                    .map(|r| json!({ "$key": r.key, "name": r.name }))
                    .collect();
                reply(200, Value::Array(found))
            }
            ("POST", "update_actions") => {
                let Some(obj) = body.as_object() else {
                    return err(422, "body must be a JSON object");
                };
                if obj
                    .keys()
                    .any(|k| !matches!(k.as_str(), "source" | "action" | "force"))
                {
                    return err(422, "Validation error: unknown field");
                }
                if obj.get("source").and_then(Value::as_u64) != Some(self.update_source) {
                    return err(422, "Validation error on field: 'source'");
                }
                let Some(action) = obj
                    .get("action")
                    .and_then(Value::as_str)
                    .filter(|a| matches!(*a, "refresh" | "download" | "install" | "all"))
                else {
                    return err(422, "Validation error on field: 'action'");
                };
                self.update_actions.push(action.to_string());
                let n = self.update_actions.len();
                reply(
                    201,
                    json!({ "location": format!("/v4/update_actions/{n}"), "$key": n.to_string() }),
                )
            }
            ("POST", actions) if actions.ends_with("_actions") => {
                let field = actions.trim_end_matches("_actions");
                let Some(table) = table_of(field) else {
                    return err(404, "Resource not found");
                };
                let Some(obj) = body.as_object() else {
                    return err(422, "body must be a JSON object");
                };
                if obj
                    .keys()
                    .any(|k| !matches!(k.as_str(), "action" | "params") && k != field)
                {
                    return err(422, "Validation error: unknown field");
                }
                if obj.get("params").is_some_and(|p| !p.is_object()) {
                    return err(422, "Validation error on field: 'params'");
                }
                // vm_actions: the key as a string (as documented); others: a number.
                let key = match (field, obj.get(field)) {
                    ("vm", Some(Value::String(s))) => s.parse::<u64>().ok(),
                    ("vm", _) => None,
                    (_, Some(v)) => v.as_u64(),
                    _ => None,
                };
                let Some(key) = key else {
                    return err(422, &format!("Validation error on field: '{field}'"));
                };
                let action = obj
                    .get("action")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let valid = match field {
                    "vm" => ["poweron", "poweroff", "kill", "reset"].contains(&action.as_str()),
                    "tenant" => ["poweron", "poweroff", "reset"].contains(&action.as_str()),
                    _ => ["enable", "disable"].contains(&action.as_str()),
                };
                if !valid {
                    return err(422, "Validation error on field: 'action'");
                }
                let Some(row) = self
                    .rows(table)
                    .and_then(|rows| rows.iter_mut().find(|r| r.key == key))
                else {
                    return err(404, &format!("{table}/{key} not found"));
                };
                match action.as_str() {
                    "poweron" if row.on => return err(409, "Cannot power on: already in running state"),
                    "poweron" | "enable" => row.on = true,
                    "poweroff" | "kill" | "disable" => row.on = false,
                    _ => {}
                }
                reply(
                    201,
                    json!({ "location": format!("/v4/{actions}/1"), "dbpath": format!("{actions}/1"), "$row": 1, "$key": "1" }),
                )
            }
            _ => err(404, "Resource not found"),
        }
    }
}

impl VergeOs {
    /// Start with these rows, update source 1, accepting `api_key`.
    pub fn start(
        api_key: &str,
        vms: &[(u64, &str)],
        tenants: &[(u64, &str)],
        users: &[(u64, &str)],
    ) -> VergeOs {
        VergeOs::start_on(0, api_key, vms, tenants, users)
    }

    /// [`VergeOs::start`] on a given port (0: any free one).
    pub fn start_on(
        port: u16,
        api_key: &str,
        vms: &[(u64, &str)],
        tenants: &[(u64, &str)],
        users: &[(u64, &str)],
    ) -> VergeOs {
        let rows = |list: &[(u64, &str)], on: bool| -> Vec<Row> {
            list.iter()
                .map(|(key, name)| Row {
                    key: *key,
                    name: name.to_string(),
                    on,
                })
                .collect()
        };
        let state = Arc::new(Mutex::new(State {
            tables: vec![
                ("vms", rows(vms, false)),
                ("tenants", rows(tenants, true)),
                ("users", rows(users, true)),
            ],
            update_source: 1,
            ..State::default()
        }));
        let (s, key) = (state.clone(), api_key.to_string());
        let (addr, runtime) = serve_http_on(
            port,
            Arc::new(move |req: Received| {
                let query = decode(req.path.split_once('?').map(|(_, q)| q).unwrap_or_default());
                let body: Value = if req.body.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&req.body).unwrap_or(json!("<not JSON>"))
                };
                let mut state = s.lock().expect("state");
                let (status, answer) =
                    if !req.body.is_empty() && req.header("content-type") != Some("application/json") {
                        err(415, "content-type must be application/json")
                    } else {
                        state.handle(&key, &req, &query, &body)
                    };
                state.calls.push(Call {
                    method: req.method.clone(),
                    path: req.path.split('?').next().unwrap_or_default().to_string(),
                    query,
                    body,
                    status,
                });
                Answer {
                    status,
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: answer.to_string().into_bytes(),
                    hang: false,
                    delay_ms: 0,
                }
            }),
        );
        VergeOs {
            url: format!("http://{addr}"),
            state,
            _runtime: runtime,
        }
    }

    /// Every request so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().expect("state").calls.clone()
    }

    /// The accepted calls (2xx) that changed something: `(path, body)`.
    pub fn actions(&self) -> Vec<(String, Value)> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == "POST" && (200..300).contains(&c.status))
            .map(|c| (c.path, c.body))
            .collect()
    }

    /// Whether the row `name` of `table` is on (running or enabled).
    pub fn is_on(&self, table: &str, name: &str) -> bool {
        let mut state = self.state.lock().expect("state");
        state
            .rows(table)
            .and_then(|rows| rows.iter().find(|r| r.name == name).map(|r| r.on))
            .unwrap_or(false)
    }

    /// Answer the next requests with these statuses (an outage).
    pub fn fail_next(&self, statuses: &[u16]) {
        self.state.lock().expect("state").fail_next.extend(statuses);
    }

    /// The update actions accepted, in order (`refresh`, `download`, ...).
    pub fn update_actions(&self) -> Vec<String> {
        self.state.lock().expect("state").update_actions.clone()
    }
}

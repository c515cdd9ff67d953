//! `vergeos`: operate a VergeOS system through its v4 REST API (`/api/v4`), the
//! actions of the VergeOS Task Engine examples: power VMs and tenants on and off,
//! disable and enable users, check for, download and install system updates.
//!
//! Params:
//!
//! ```json
//! {"url": "https://vergeos.example.com", "api_key_secret": "vergeos-api-key",
//!  "action": "vm.poweron", "target": "gpu-workstation-1", "timeout_ms": 30000}
//! ```
//!
//! - `url`: the system's address; grant the plugin its host (`sundial plugin update`).
//! - `api_key_secret`: the name of a secret granted to the plugin, holding an API key;
//!   sent as `Authorization: Bearer KEY`.
//! - `action`: one of `vm.poweron`, `vm.poweroff` (graceful ACPI), `vm.kill` (forced
//!   off), `vm.reset`, `tenant.poweron`, `tenant.poweroff`, `tenant.reset`,
//!   `user.disable`, `user.enable`, `updates.check`, `updates.download`,
//!   `updates.install`, or a list of them run in order (`["updates.check",
//!   "updates.download"]`).
//! - `target` (VM, tenant and user actions): the row's key (a number, or `{"key": 42}`)
//!   or its name (a string, or `{"name": "..."}`), looked up with
//!   `GET /api/v4/<table>?filter=name eq '<name>'`. Strings are templates
//!   (`"${event.data.user}"`, see `sundial_sdk::template`).
//!
//! Output: `{"target": {"table", "key", "name"}, "calls": [{"action", "method", "path",
//! "status", "response"}]}`. The API's errors come back as failed runs with its message;
//! 5xx, 408, 429, timeouts and connection errors are retryable. Which calls each action
//! makes, and where that is documented: `docs/plugins/vergeos.md`.

use serde::Deserialize;
use serde_json::{Value, json};
use sundial_sdk::{Action, ActionError, Invocation, http, log, template};

/// Default per-request timeout.
const DEFAULT_TIMEOUT_MS: u64 = 30_000;

#[derive(Deserialize)]
#[serde(untagged)]
enum Actions {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Target {
    Key(u64),
    Name(String),
    ByKey { key: u64 },
    ByName { name: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    url: String,
    api_key_secret: String,
    action: Actions,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// What an action does: which table's `*_actions` row it posts, or an update action.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    /// `POST /api/v4/<table>_actions` with the row's key.
    Row {
        table: &'static str,
        field: &'static str,
        verb: &'static str,
    },
    /// `POST /api/v4/update_actions` with the configured update source.
    Update { verb: &'static str },
}

fn op(action: &str) -> Option<Op> {
    let row = |table, field, verb| Some(Op::Row { table, field, verb });
    match action {
        "vm.poweron" => row("vms", "vm", "poweron"),
        "vm.poweroff" => row("vms", "vm", "poweroff"),
        "vm.kill" => row("vms", "vm", "kill"),
        "vm.reset" => row("vms", "vm", "reset"),
        "tenant.poweron" => row("tenants", "tenant", "poweron"),
        "tenant.poweroff" => row("tenants", "tenant", "poweroff"),
        "tenant.reset" => row("tenants", "tenant", "reset"),
        "user.disable" => row("users", "user", "disable"),
        "user.enable" => row("users", "user", "enable"),
        // The API calls "check for updates" `refresh`.
        "updates.check" => Some(Op::Update { verb: "refresh" }),
        "updates.download" => Some(Op::Update { verb: "download" }),
        "updates.install" => Some(Op::Update { verb: "install" }),
        _ => None,
    }
}

/// Percent-encode a query value (RFC 3986 unreserved characters stay).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The API's error message from a body: `{"err": ...}` or `{"error": ...}`, else the text.
fn api_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => v
            .get("err")
            .or_else(|| v.get("error"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| text.chars().take(500).collect()),
        Err(_) => text.chars().take(500).collect(),
    }
}

/// A row key as the API gives it (`$key` is a number or a numeric string).
fn key_of(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

struct Api {
    base: String,
    key: String,
    timeout_ms: u64,
}

impl Api {
    /// One request; 2xx gives the parsed body, anything else an error saying whether a
    /// retry can help.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), ActionError> {
        let mut headers = vec![
            ("authorization".to_string(), format!("Bearer {}", self.key)),
            ("accept".to_string(), "application/json".to_string()),
        ];
        let bytes = match body {
            Some(b) => {
                headers.push(("content-type".into(), "application/json".into()));
                b.to_string().into_bytes()
            }
            None => Vec::new(),
        };
        log::info(&format!("{method} {path}"));
        let url = format!("{}{path}", self.base);
        let response = http::send(&http::Request {
            method: method.to_string(),
            url,
            headers,
            body: bytes,
            timeout_ms: Some(self.timeout_ms),
            max_response_bytes: Some(4 * 1024 * 1024),
        })
        .map_err(|e| {
            // A denial (host not granted, address refused) or an invalid request fails
            // for good; a transport error may pass.
            let msg = format!("{method} {path}: {e}");
            if e.is_retryable() {
                ActionError::Retryable(msg)
            } else {
                ActionError::Failed(msg)
            }
        })?;
        let status = response.status;
        if (200..300).contains(&status) {
            let parsed = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
            return Ok((status, parsed));
        }
        let msg = format!(
            "VergeOS answered {status} to {method} {path}: {}",
            api_message(&response.body)
        );
        if status >= 500 || status == 408 || status == 429 {
            Err(ActionError::Retryable(msg))
        } else {
            Err(ActionError::Failed(msg))
        }
    }

    /// The key and name of the row `target` names in `table`.
    fn resolve(&self, table: &str, target: &Target, inv: &Invocation) -> Result<(u64, String), ActionError> {
        let name = match target {
            Target::Key(k) | Target::ByKey { key: k } => return Ok((*k, String::new())),
            Target::Name(n) | Target::ByName { name: n } => template::render_run(n, inv, false),
        };
        if let Ok(k) = name.trim().parse::<u64>() {
            return Ok((k, String::new()));
        }
        if name.is_empty() || name.contains('\'') {
            return Err(ActionError::InvalidParams(format!(
                "target: {name:?}: give a name without quotes, or the key"
            )));
        }
        let filter = encode(&format!("name eq '{name}'"));
        let path = format!("/api/v4/{table}?filter={filter}&fields=%24key%2Cname");
        let (_, rows) = self.call("GET", &path, None)?;
        let rows = rows.as_array().cloned().unwrap_or_default();
        let matching: Vec<&Value> = rows.iter().filter(|r| r["name"] == name.as_str()).collect();
        match matching.as_slice() {
            [] => Err(ActionError::Failed(format!("{table}: no row named {name:?}"))),
            [row] => {
                let key = key_of(&row["$key"])
                    .ok_or_else(|| ActionError::Failed(format!("{table}: row {name:?} has no $key")))?;
                Ok((key, name))
            }
            _ => Err(ActionError::Failed(format!(
                "{table}: {} rows are named {name:?}; give the key",
                matching.len()
            ))),
        }
    }
}

struct VergeOs;

impl Action for VergeOs {
    type Params = Params;
    type Output = Value;

    fn run(inv: Invocation, p: Params) -> Result<Value, ActionError> {
        let names = match p.action {
            Actions::One(a) => vec![a],
            Actions::Many(v) => v,
        };
        if names.is_empty() || names.len() > 10 {
            return Err(ActionError::InvalidParams("action: 1-10 actions".into()));
        }
        let mut ops = Vec::new();
        for n in &names {
            ops.push(op(n).ok_or_else(|| {
                ActionError::InvalidParams(format!(
                    "action: {n:?} is not one of vm.poweron, vm.poweroff, vm.kill, vm.reset, tenant.poweron, \
                     tenant.poweroff, tenant.reset, user.disable, user.enable, updates.check, \
                     updates.download, updates.install"
                ))
            })?);
        }
        let tables: Vec<&str> = ops
            .iter()
            .filter_map(|o| match o {
                Op::Row { table, .. } => Some(*table),
                Op::Update { .. } => None,
            })
            .collect();
        if tables.windows(2).any(|w| w[0] != w[1]) {
            return Err(ActionError::InvalidParams(
                "action: a list of actions must act on one kind of row".into(),
            ));
        }
        let url = p.url.trim_end_matches('/').to_string();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ActionError::InvalidParams(format!(
                "url: {url:?} must start with https:// (or http://)"
            )));
        }
        let key = sundial_sdk::secret(&p.api_key_secret).ok_or_else(|| {
            ActionError::Failed(format!(
                "api_key_secret: secret {:?} is not granted to this plugin or does not exist",
                p.api_key_secret
            ))
        })?;
        let api = Api {
            base: url,
            key,
            timeout_ms: p.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
        };
        let target = match tables.first() {
            None => None,
            Some(table) => {
                let t = p.target.as_ref().ok_or_else(|| {
                    ActionError::InvalidParams(format!("target: required for {}", names[0]))
                })?;
                let (key, name) = api.resolve(table, t, &inv)?;
                Some((*table, key, name))
            }
        };
        let mut calls = Vec::new();
        let mut update_source = None;
        for (name, op) in names.iter().zip(ops) {
            let (path, body) = match op {
                Op::Row { table, field, verb } => {
                    let (_, key, _) = target.as_ref().expect("resolved above");
                    // vm_actions takes the VM key as a string (Verge.io's VM power
                    // management guide); tenant and user actions take a number.
                    let row = if table == "vms" {
                        json!(key.to_string())
                    } else {
                        json!(key)
                    };
                    let path = format!("/api/v4/{field}_actions");
                    (path, json!({ field: row, "action": verb, "params": {} }))
                }
                Op::Update { verb } => {
                    let source = match update_source {
                        Some(s) => s,
                        None => {
                            let (_, settings) =
                                api.call("GET", "/api/v4/update_settings/1?fields=source", None)?;
                            let s = key_of(&settings["source"]).filter(|s| *s > 0).ok_or_else(|| {
                                ActionError::Failed("update_settings: no update source is configured".into())
                            })?;
                            update_source = Some(s);
                            s
                        }
                    };
                    (
                        "/api/v4/update_actions".to_string(),
                        json!({ "source": source, "action": verb }),
                    )
                }
            };
            let (status, response) = api.call("POST", &path, Some(&body))?;
            calls.push(json!({ "action": name, "method": "POST", "path": path, "status": status, "response": response }));
        }
        Ok(json!({
            "target": target.map(|(table, key, name)| json!({ "table": table, "key": key, "name": name })),
            "calls": calls,
        }))
    }
}

sundial_sdk::export_action!(VergeOs);

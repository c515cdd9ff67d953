//! Declarative configuration (pure): the TOML file `sundial apply -f` reads and
//! `sundial export` writes, and the plan that brings a daemon to it.
//!
//! ```toml
//! [[secret]]                       # secrets the file relies on (values never here)
//! name = "vergeos-api-key"
//!
//! [[plugin]]                       # grants and limits of installed plugins
//! name = "vergeos"
//! grants = { hosts = ["https://vergeos.example.com"], secrets = ["vergeos-api-key"] }
//!
//! [[webhook]]                      # the webhook spec (docs/webhooks.md)
//! [[task]]                         # the task spec (docs/api)
//! [[schedule]]                     # the schedule spec, plus `tasks = ["name", ...]`
//! [[trigger]]                      # the trigger spec, with names for tasks, webhooks, schedules
//! ```
//!
//! Everything is identified by name. Each entry is checked with the same types the API
//! uses, so an error names the entry and the field (`task[2].retry.max_attempts: ...`).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use sundial_core::grants::Grants;
use sundial_core::limits::Limits;
use sundial_core::schedule::spec::ScheduleSpec;
use sundial_core::task::TaskSpec;
use sundial_core::trigger::TriggerSpec;
use sundial_core::webhook::WebhookSpec;

/// A secret the configuration relies on.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretRef {
    /// Its name.
    pub name: String,
}

/// An installed plugin's grants and limits.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginEntry {
    /// Installed name.
    pub name: String,
    /// Grants (replaced as a whole). Default: none.
    pub grants: Grants,
    /// Limits; none = leave them as they are.
    pub limits: Option<Limits>,
    /// A component file to install it from when it is not installed (relative to the
    /// configuration file). Bundled plugins need none.
    pub wasm: Option<String>,
}

/// A schedule and the tasks it drives.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleEntry {
    /// The schedule.
    pub spec: ScheduleSpec,
    /// Names of the tasks it drives.
    pub tasks: Vec<String>,
}

/// A whole configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// `[[secret]]`
    pub secrets: Vec<SecretRef>,
    /// `[[plugin]]`
    pub plugins: Vec<PluginEntry>,
    /// `[[webhook]]`
    pub webhooks: Vec<WebhookSpec>,
    /// `[[task]]`
    pub tasks: Vec<TaskSpec>,
    /// `[[schedule]]`
    pub schedules: Vec<ScheduleEntry>,
    /// `[[trigger]]`
    pub triggers: Vec<TriggerSpec>,
}

const SECTIONS: &[&str] = &["secret", "plugin", "webhook", "task", "schedule", "trigger"];

/// TOML to JSON (datetimes become RFC 3339 strings).
fn to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => json!(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(to_json).collect()),
        toml::Value::Table(t) => Value::Object(t.into_iter().map(|(k, v)| (k, to_json(v))).collect()),
    }
}

/// JSON to TOML (nulls dropped: TOML has none, and every null field is a default).
fn to_toml(v: &Value) -> Option<toml::Value> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => toml::Value::String(s.clone()),
        Value::Array(a) => toml::Value::Array(a.iter().filter_map(to_toml).collect()),
        Value::Object(m) => toml::Value::Table(
            m.iter()
                .filter_map(|(k, v)| to_toml(v).map(|t| (k.clone(), t)))
                .collect(),
        ),
    })
}

fn typed<T: DeserializeOwned>(at: &str, v: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            format!("{at}: {}", e.inner())
        } else {
            format!("{at}.{path}: {}", e.inner())
        }
    })
}

fn take_object(at: &str, v: Value) -> Result<Map<String, Value>, String> {
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(format!("{at}: expected a table")),
    }
}

fn string_list(at: &str, v: Option<Value>) -> Result<Vec<String>, String> {
    match v {
        None => Ok(Vec::new()),
        Some(v) => typed(at, v),
    }
}

impl Config {
    /// The names this configuration has of a noun `apply --prune` may delete.
    pub fn names(&self, noun: &str) -> Vec<&String> {
        match noun {
            "trigger" => self.triggers.iter().map(|t| &t.name).collect(),
            "schedule" => self.schedules.iter().map(|s| &s.spec.name).collect(),
            "task" => self.tasks.iter().map(|t| &t.name).collect(),
            "webhook" => self.webhooks.iter().map(|w| &w.name).collect(),
            _ => Vec::new(),
        }
    }

    /// Parse a configuration file, checking every entry.
    pub fn parse(text: &str) -> Result<Config, String> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        if let Some(k) = table.keys().find(|k| !SECTIONS.contains(&k.as_str())) {
            return Err(format!(
                "{k}: unknown section; use [[secret]], [[plugin]], [[webhook]], [[task]], [[schedule]] or [[trigger]]"
            ));
        }
        let section = |name: &str| -> Result<Vec<(String, Value)>, String> {
            match table.get(name) {
                None => Ok(Vec::new()),
                Some(toml::Value::Array(a)) => Ok(a
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (format!("{name}[{i}]"), to_json(v.clone())))
                    .collect()),
                Some(_) => Err(format!("{name}: write it as [[{name}]] entries")),
            }
        };
        let mut config = Config::default();
        for (at, v) in section("secret")? {
            let mut m = take_object(&at, v)?;
            let name: String = typed(&format!("{at}.name"), m.remove("name").unwrap_or(Value::Null))?;
            if let Some(k) = m.keys().next() {
                return Err(format!(
                    "{at}.{k}: unknown field (a secret entry names a secret; values never go in the file)"
                ));
            }
            config.secrets.push(SecretRef { name });
        }
        for (at, v) in section("plugin")? {
            let mut m = take_object(&at, v)?;
            let name: String = typed(&format!("{at}.name"), m.remove("name").unwrap_or(Value::Null))?;
            let grants = match m.remove("grants") {
                None => Grants::default(),
                Some(g) => typed(&format!("{at}.grants"), g)?,
            };
            let limits = match m.remove("limits") {
                None => None,
                Some(l) => Some(typed::<Limits>(&format!("{at}.limits"), l)?),
            };
            if let Some(l) = &limits {
                l.validate().map_err(|e| format!("{at}.limits.{e}"))?;
            }
            let wasm = match m.remove("wasm") {
                None => None,
                Some(w) => Some(typed(&format!("{at}.wasm"), w)?),
            };
            if let Some(k) = m.keys().next() {
                return Err(format!("{at}.{k}: unknown field (name, grants, limits, wasm)"));
            }
            config.plugins.push(PluginEntry {
                name,
                grants,
                limits,
                wasm,
            });
        }
        for (at, v) in section("webhook")? {
            let spec: WebhookSpec = typed(&at, v)?;
            spec.validate().map_err(|e| format!("{at}.{e}"))?;
            config.webhooks.push(spec);
        }
        for (at, v) in section("task")? {
            let spec: TaskSpec = typed(&at, v)?;
            spec.validate().map_err(|e| format!("{at}.{e}"))?;
            config.tasks.push(spec);
        }
        for (at, v) in section("schedule")? {
            let mut m = take_object(&at, v)?;
            let tasks = string_list(&format!("{at}.tasks"), m.remove("tasks"))?;
            let spec: ScheduleSpec = typed(&at, Value::Object(m))?;
            config.schedules.push(ScheduleEntry { spec, tasks });
        }
        for (at, v) in section("trigger")? {
            let spec: TriggerSpec = typed(&at, v)?;
            spec.compile("").map_err(|e| format!("{at}.{e}"))?;
            config.triggers.push(spec);
        }
        config.check_names()?;
        Ok(config)
    }

    /// Names are unique per section.
    fn check_names(&self) -> Result<(), String> {
        fn unique<'a>(section: &str, names: impl Iterator<Item = &'a str>) -> Result<(), String> {
            let mut seen = std::collections::BTreeSet::new();
            for n in names {
                if !seen.insert(n) {
                    return Err(format!("{section}: {n:?} is defined twice"));
                }
            }
            Ok(())
        }
        unique("secret", self.secrets.iter().map(|s| s.name.as_str()))?;
        unique("plugin", self.plugins.iter().map(|s| s.name.as_str()))?;
        unique("webhook", self.webhooks.iter().map(|s| s.name.as_str()))?;
        unique("task", self.tasks.iter().map(|s| s.name.as_str()))?;
        unique("schedule", self.schedules.iter().map(|s| s.spec.name.as_str()))?;
        unique("trigger", self.triggers.iter().map(|s| s.name.as_str()))
    }

    /// The configuration as a TOML file.
    pub fn to_toml(&self) -> Result<String, String> {
        let mut root = toml::Table::new();
        let mut put = |name: &str, items: Vec<Value>| {
            if !items.is_empty() {
                root.insert(
                    name.to_string(),
                    toml::Value::Array(items.iter().filter_map(to_toml).collect()),
                );
            }
        };
        put(
            "secret",
            self.secrets.iter().map(|s| json!({ "name": s.name })).collect(),
        );
        put(
            "plugin",
            self.plugins
                .iter()
                .map(|p| json!({ "name": p.name, "grants": p.grants, "limits": p.limits, "wasm": p.wasm }))
                .collect(),
        );
        put("webhook", self.webhooks.iter().map(json_of).collect());
        put("task", self.tasks.iter().map(json_of).collect());
        put(
            "schedule",
            self.schedules
                .iter()
                .map(|s| {
                    let mut v = json_of(&s.spec);
                    v["tasks"] = json!(s.tasks);
                    v
                })
                .collect(),
        );
        put("trigger", self.triggers.iter().map(json_of).collect());
        toml::to_string(&root).map_err(|e| e.to_string())
    }
}

/// The spec part of an API answer: its JSON without the record's own fields.
pub fn spec_of(view: &Value, record_fields: &[&str]) -> Value {
    let mut v = view.clone();
    if let Value::Object(m) = &mut v {
        for k in record_fields {
            m.remove(*k);
        }
    }
    v
}

/// A trigger as the API shows it, back in spec form with names: targets `{task}` /
/// `{webhook}` and `on.schedule` by name.
pub fn trigger_spec_of(view: &Value) -> Result<TriggerSpec, String> {
    let mut v = spec_of(view, &["id", "created_at", "updated_at"]);
    if let Some(targets) = v.get_mut("targets").and_then(Value::as_array_mut) {
        for t in targets.iter_mut() {
            *t = match (t.get("task"), t.get("webhook")) {
                (Some(task), _) => json!({ "task": task }),
                (_, Some(hook)) => json!({ "webhook": hook }),
                _ => t.clone(),
            };
        }
    }
    if let Some(on) = v.get_mut("on").and_then(Value::as_object_mut)
        && on.contains_key("schedule")
    {
        on.remove("schedule_id");
        on.remove("missing");
    }
    typed("trigger", v)
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Install a plugin from a file.
    Install {
        /// Plugin name.
        name: String,
    },
    /// Create a noun from its spec.
    Create {
        /// `webhook`, `task`, `schedule` or `trigger`.
        noun: &'static str,
        /// Its name.
        name: String,
        /// The spec as JSON.
        body: Value,
    },
    /// Change some fields of a noun.
    Change {
        /// `plugin`, `webhook`, `task`, `schedule` or `trigger`.
        noun: &'static str,
        /// Its name.
        name: String,
        /// The fields that differ.
        fields: Vec<String>,
        /// The merge patch to send (fields to reset are `null`).
        patch: Value,
    },
    /// Attach a task to a schedule.
    Attach {
        /// Schedule name.
        schedule: String,
        /// Task name.
        task: String,
    },
    /// Detach a task from a schedule.
    Detach {
        /// Schedule name.
        schedule: String,
        /// Task name.
        task: String,
    },
    /// Delete a noun that is not in the file (`--prune`).
    Delete {
        /// `trigger`, `schedule`, `task` or `webhook`.
        noun: &'static str,
        /// Its name.
        name: String,
    },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Install { name } => write!(f, "+ install plugin {name}"),
            Step::Create { noun, name, .. } => write!(f, "+ create {noun} {name}"),
            Step::Change {
                noun, name, fields, ..
            } => {
                write!(f, "~ change {noun} {name}: {}", fields.join(", "))
            }
            Step::Attach { schedule, task } => write!(f, "+ attach task {task} to schedule {schedule}"),
            Step::Detach { schedule, task } => write!(f, "- detach task {task} from schedule {schedule}"),
            Step::Delete { noun, name } => write!(f, "- delete {noun} {name}"),
        }
    }
}

/// The fields in which `want` differs from `have` (both spec JSON), and the merge patch
/// that turns `have` into `want`.
pub fn diff(want: &Value, have: &Value) -> (Vec<String>, Value) {
    let (empty_a, empty_b) = (Map::new(), Map::new());
    let w = want.as_object().unwrap_or(&empty_a);
    let h = have.as_object().unwrap_or(&empty_b);
    let mut fields = Vec::new();
    let mut patch = Map::new();
    for (k, v) in w {
        if h.get(k) != Some(v) {
            fields.push(k.clone());
            patch.insert(k.clone(), v.clone());
        }
    }
    for k in h.keys() {
        if !w.contains_key(k) && !h[k].is_null() {
            fields.push(k.clone());
            patch.insert(k.clone(), Value::Null);
        }
    }
    fields.sort();
    (fields, Value::Object(patch))
}

/// Plan the change of one named noun: create it, change it, or nothing.
pub fn plan_one(noun: &'static str, name: &str, want: Value, have: Option<Value>) -> Option<Step> {
    match have {
        None => Some(Step::Create {
            noun,
            name: name.to_string(),
            body: want,
        }),
        Some(have) => {
            let (fields, patch) = diff(&want, &have);
            (!fields.is_empty()).then(|| Step::Change {
                noun,
                name: name.to_string(),
                fields,
                patch,
            })
        }
    }
}

/// A schedule spec as it would be stored: the file may leave out the time zone (the
/// daemon's default) and the start (the creation time); take them from `have`.
pub fn settle_schedule(want: &ScheduleSpec, have: Option<&ScheduleSpec>) -> ScheduleSpec {
    let mut s = want.clone();
    if let Some(h) = have {
        if s.timezone.is_empty() {
            s.timezone = h.timezone.clone();
        }
        if s.start.is_none() {
            s.start = h.start;
        }
    }
    s
}

/// JSON of a spec (for plans and patches).
pub fn json_of<T: serde::Serialize>(spec: &T) -> Value {
    serde_json::to_value(spec).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[secret]]
name = "api-key"

[[plugin]]
name = "vergeos"
grants = { hosts = ["https://v.example.com"], secrets = ["api-key"] }

[[task]]
name = "power-on"
plugin = "vergeos"
params = { action = "vm.poweron", target = "gpu-1" }

[[schedule]]
name = "friday"
rule = { cron = "0 18 * * 5" }
timezone = "Europe/Berlin"
tasks = ["power-on"]

[[schedule]]
name = "new-year"
rule = { at = 2026-12-31T23:00:00Z }

[[trigger]]
name = "login"
on = { type = "user.login", filter = { path = "data.user", eq = "jt" } }
targets = [{ task = "power-on" }]
"#;

    #[test]
    fn a_file_parses_round_trips_and_names_bad_fields() {
        let c = Config::parse(FILE).unwrap();
        assert_eq!(c.tasks[0].name, "power-on");
        assert_eq!(c.schedules[0].tasks, ["power-on"]);
        assert_eq!(c.plugins[0].grants.secrets, ["api-key"]);
        let again = Config::parse(&c.to_toml().unwrap()).unwrap();
        assert_eq!(again, c, "export format = apply format");
        let err = |text: &str| Config::parse(text).unwrap_err();
        assert!(
            err("[[task]]\nname = \"x\"\nplugin = \"echo\"\nretry = { max_attempts = \"3\" }")
                .starts_with("task[0].retry.max_attempts: invalid type")
        );
        assert!(err("[[taks]]\nname = \"x\"").starts_with("taks: unknown section"));
        assert!(err("[[secret]]\nname = \"a\"\nvalue = \"x\"").starts_with("secret[0].value: unknown field"));
        assert!(
            err("[[task]]\nname = \"x\"\nplugin = \"echo\"\n[[task]]\nname = \"x\"\nplugin = \"echo\"")
                .contains("defined twice")
        );
        assert!(
            err("[[trigger]]\nname = \"t\"\non = {}\ntargets = [{ task = \"a\" }]")
                .starts_with("trigger[0].on")
        );
    }

    #[test]
    fn diff_lists_changed_and_reset_fields() {
        let have = json!({"name": "t", "description": "old", "retry": {"max_attempts": 3}, "delay": "1d"});
        let want = json!({"name": "t", "description": "new", "retry": {"max_attempts": 3}});
        let (fields, patch) = diff(&want, &have);
        assert_eq!(fields, ["delay", "description"]);
        assert_eq!(patch, json!({"description": "new", "delay": null}));
        assert_eq!(plan_one("task", "t", have.clone(), Some(have.clone())), None);
    }
}

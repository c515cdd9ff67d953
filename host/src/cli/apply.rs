//! `sundial apply -f FILE` and `sundial export`: bring a daemon to a declarative
//! configuration (plan, `--dry-run`, idempotent), and write the current one in the same
//! format. The file format and the planning are in `crate::declarative` (pure); this
//! module reads the daemon's state over the API and carries the plan out.

use super::EXIT_USAGE;
use super::client::{Failure, Remote};
use super::noun::set;
use crate::declarative::{
    Config, PluginEntry, ScheduleEntry, SecretRef, Step, json_of, plan_one, settle_schedule, spec_of,
    trigger_spec_of,
};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use sundial_core::schedule::spec::ScheduleSpec;
use sundial_core::task::TaskSpec;
use sundial_core::webhook::WebhookSpec;

/// Record fields of each noun's API answer that are not part of its spec.
const TASK_FIELDS: &[&str] = &["id", "created_at", "updated_at"];
const WEBHOOK_FIELDS: &[&str] = &["id", "created_at", "updated_at", "disabled_reason"];
const SCHEDULE_FIELDS: &[&str] = sundial_core::schedule::spec::VIEW_FIELDS;

/// The steps that bring every item of one noun to `want` (matched by name).
fn plan_named<T: serde::Serialize>(
    noun: &'static str,
    want: &[T],
    have: &BTreeMap<String, T>,
    name: fn(&T) -> &String,
) -> Vec<Step> {
    want.iter()
        .filter_map(|w| plan_one(noun, name(w), json_of(w), have.get(name(w)).map(json_of)))
        .collect()
}

/// What the daemon has now, by name.
struct Current {
    secrets: BTreeSet<String>,
    plugins: BTreeMap<String, Value>,
    webhooks: BTreeMap<String, WebhookSpec>,
    tasks: BTreeMap<String, TaskSpec>,
    task_names: BTreeMap<String, String>,
    schedules: BTreeMap<String, (ScheduleSpec, Vec<String>)>,
    triggers: BTreeMap<String, sundial_core::trigger::TriggerSpec>,
}

impl Current {
    /// The names the daemon has of a noun `apply --prune` may delete.
    fn names(&self, noun: &str) -> Vec<&String> {
        match noun {
            "trigger" => self.triggers.keys().collect(),
            "schedule" => self.schedules.keys().collect(),
            "task" => self.tasks.keys().collect(),
            "webhook" => self.webhooks.keys().collect(),
            _ => Vec::new(),
        }
    }
}

fn bad_state(what: &str, e: impl std::fmt::Display) -> Failure {
    (
        super::client::EXIT_API_ERROR,
        format!("reading {what} from the daemon: {e}"),
    )
}

fn items(v: &Value, key: &str) -> Vec<Value> {
    v[key].as_array().cloned().unwrap_or_default()
}

fn named(v: &Value) -> String {
    v["name"].as_str().unwrap_or_default().to_string()
}

fn typed<T: serde::de::DeserializeOwned>(what: &str, v: Value) -> Result<T, Failure> {
    serde_json::from_value(v).map_err(|e| bad_state(what, e))
}

async fn current(remote: &Remote) -> Result<Current, Failure> {
    let secrets = remote.call("GET", "/v1/secrets", None).await?;
    let plugins = remote.call("GET", "/v1/plugins", None).await?;
    let webhooks = remote.call_all("/v1/webhooks", "webhooks").await?;
    let tasks = remote.call_all("/v1/tasks", "tasks").await?;
    let schedules = remote.call_all("/v1/schedules", "schedules").await?;
    let triggers = remote.call_all("/v1/triggers", "triggers").await?;
    let mut c = Current {
        secrets: items(&secrets, "secrets").iter().map(named).collect(),
        plugins: items(&plugins, "plugins")
            .into_iter()
            .map(|p| (named(&p), p))
            .collect(),
        webhooks: BTreeMap::new(),
        tasks: BTreeMap::new(),
        task_names: BTreeMap::new(),
        schedules: BTreeMap::new(),
        triggers: BTreeMap::new(),
    };
    for w in items(&webhooks, "webhooks") {
        c.webhooks
            .insert(named(&w), typed("webhooks", spec_of(&w, WEBHOOK_FIELDS))?);
    }
    for t in items(&tasks, "tasks") {
        c.task_names
            .insert(t["id"].as_str().unwrap_or_default().to_string(), named(&t));
        c.tasks
            .insert(named(&t), typed("tasks", spec_of(&t, TASK_FIELDS))?);
    }
    for s in items(&schedules, "schedules") {
        // A set: sorted by name so exports compare.
        let mut linked: Vec<String> = s["tasks"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter_map(Value::as_str)
                    .map(|id| c.task_names.get(id).cloned().unwrap_or_else(|| id.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        linked.sort();
        c.schedules.insert(
            named(&s),
            (typed("schedules", spec_of(&s, SCHEDULE_FIELDS))?, linked),
        );
    }
    for t in items(&triggers, "triggers") {
        c.triggers.insert(
            named(&t),
            trigger_spec_of(&t).map_err(|e| bad_state("triggers", e))?,
        );
    }
    Ok(c)
}

/// The steps that bring `have` to `want` (deletions only with `prune`), or the
/// problems that stop it.
fn plan(want: &Config, have: &Current, prune: bool) -> Result<Vec<Step>, Vec<String>> {
    let mut problems = Vec::new();
    for SecretRef { name } in &want.secrets {
        if !have.secrets.contains(name) {
            problems.push(format!(
                "secret {name:?} is not set: `sundial secret set {name}` (values never go in the file)"
            ));
        }
    }
    let mut steps = Vec::new();
    for p in &want.plugins {
        match have.plugins.get(&p.name) {
            None if p.wasm.is_some() => steps.push(Step::Install { name: p.name.clone() }),
            None => problems.push(format!(
                "plugin {:?} is not installed and the file gives no `wasm` to install it from",
                p.name
            )),
            Some(cur) => {
                let mut w = json!({ "grants": p.grants });
                let mut h = json!({ "grants": cur["grants"] });
                if let Some(l) = &p.limits {
                    w["limits"] = json!(l);
                    h["limits"] = cur["limits"].clone();
                }
                // Compare through the types, so defaults written out or left out agree.
                let h_grants: sundial_core::grants::Grants =
                    serde_json::from_value(h["grants"].clone()).unwrap_or_default();
                h["grants"] = json!(h_grants);
                steps.extend(plan_one("plugin", &p.name, w, Some(h)));
            }
        }
    }
    steps.extend(plan_named("webhook", &want.webhooks, &have.webhooks, |w| &w.name));
    steps.extend(plan_named("task", &want.tasks, &have.tasks, |t| &t.name));
    for ScheduleEntry { spec, tasks } in &want.schedules {
        let cur = have.schedules.get(&spec.name);
        let settled = settle_schedule(spec, cur.map(|(s, _)| s));
        steps.extend(plan_one(
            "schedule",
            &spec.name,
            json_of(&settled),
            cur.map(|(s, _)| json_of(s)),
        ));
        let linked: Vec<String> = cur.map(|(_, l)| l.clone()).unwrap_or_default();
        for t in tasks.iter().filter(|t| !linked.contains(t)) {
            steps.push(Step::Attach {
                schedule: spec.name.clone(),
                task: t.clone(),
            });
        }
        for t in linked.iter().filter(|t| !tasks.contains(t)) {
            steps.push(Step::Detach {
                schedule: spec.name.clone(),
                task: t.clone(),
            });
        }
    }
    steps.extend(plan_named("trigger", &want.triggers, &have.triggers, |t| &t.name));
    if prune {
        // Dependents first: triggers and schedules name tasks, tasks name webhooks.
        for noun in ["trigger", "schedule", "task", "webhook"] {
            let keep = want.names(noun);
            let gone = have.names(noun).into_iter().filter(|n| !keep.contains(n));
            steps.extend(gone.map(|n| Step::Delete {
                noun,
                name: n.clone(),
            }));
        }
    }
    if problems.is_empty() {
        Ok(steps)
    } else {
        Err(problems)
    }
}

fn path_of(noun: &str) -> &'static str {
    match noun {
        "plugin" => "/v1/plugins",
        "webhook" => "/v1/webhooks",
        "task" => "/v1/tasks",
        "schedule" => "/v1/schedules",
        _ => "/v1/triggers",
    }
}

async fn carry_out(remote: &Remote, step: &Step, want: &Config, base: &Path) -> Result<(), Failure> {
    match step {
        Step::Install { name } => {
            let entry: &PluginEntry = want
                .plugins
                .iter()
                .find(|p| &p.name == name)
                .ok_or_else(|| (EXIT_USAGE, format!("plugin {name}: not in the file")))?;
            let file = base.join(entry.wasm.as_deref().unwrap_or_default());
            let bytes = std::fs::read(&file)
                .map_err(|e| (EXIT_USAGE, format!("plugin {name}: {}: {e}", file.display())))?;
            let mut body = json!({
                "name": name,
                "wasm_base64": base64::engine::general_purpose::STANDARD.encode(bytes),
                "grants": entry.grants,
            });
            set(&mut body, "limits", entry.limits.as_ref());
            remote.call("POST", "/v1/plugins", Some(&body)).await?;
        }
        Step::Create { noun, body, .. } => {
            remote.call("POST", path_of(noun), Some(body)).await?;
        }
        Step::Change {
            noun, name, patch, ..
        } => {
            remote
                .call("PATCH", &format!("{}/{name}", path_of(noun)), Some(patch))
                .await?;
        }
        Step::Attach { schedule, task } => {
            remote
                .call(
                    "POST",
                    &format!("/v1/schedules/{schedule}/tasks"),
                    Some(&json!({ "task": task })),
                )
                .await?;
        }
        Step::Detach { schedule, task } => {
            remote
                .call("DELETE", &format!("/v1/schedules/{schedule}/tasks/{task}"), None)
                .await?;
        }
        Step::Delete { noun, name } => {
            let force = if *noun == "schedule" { "?force=true" } else { "" };
            remote
                .call("DELETE", &format!("{}/{name}{force}", path_of(noun)), None)
                .await?;
        }
    }
    Ok(())
}

/// `sundial apply -f FILE [--dry-run] [--prune]`.
pub(crate) async fn apply(remote: &Remote, file: &Path, dry_run: bool, prune: bool) -> Result<(), Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| (EXIT_USAGE, format!("{}: {e}", file.display())))?;
    let want = Config::parse(&text).map_err(|e| (EXIT_USAGE, format!("{}: {e}", file.display())))?;
    let have = current(remote).await?;
    let steps = plan(&want, &have, prune).map_err(|problems| {
        (
            super::client::EXIT_API_ERROR,
            format!("cannot apply {}:\n  {}", file.display(), problems.join("\n  ")),
        )
    })?;
    let count = |f: fn(&Step) -> bool| steps.iter().filter(|s| f(s)).count();
    let created = count(|s| {
        matches!(
            s,
            Step::Create { .. } | Step::Install { .. } | Step::Attach { .. }
        )
    });
    let changed = count(|s| matches!(s, Step::Change { .. }));
    let deleted = count(|s| matches!(s, Step::Delete { .. } | Step::Detach { .. }));
    if steps.is_empty() {
        println!("no changes: the daemon matches {}", file.display());
        return Ok(());
    }
    for s in &steps {
        println!("{s}");
    }
    let summary = format!("{created} to create, {changed} to change, {deleted} to delete");
    if dry_run {
        println!("dry run: {summary}; nothing was changed");
        return Ok(());
    }
    let base: PathBuf = file.parent().map(Path::to_path_buf).unwrap_or_default();
    for (i, s) in steps.iter().enumerate() {
        carry_out(remote, s, &want, &base).await.map_err(|(code, msg)| {
            (
                code,
                format!(
                    "{s}: {msg} ({i} of {} steps were carried out; fix and apply again)",
                    steps.len()
                ),
            )
        })?;
    }
    println!("applied: {summary}");
    Ok(())
}

/// `sundial export [-o FILE]`: the current configuration in the `apply` format.
pub(crate) async fn export(remote: &Remote, out: Option<&Path>) -> Result<(), Failure> {
    let have = current(remote).await?;
    let config = Config {
        secrets: have
            .secrets
            .iter()
            .map(|n| SecretRef { name: n.clone() })
            .collect(),
        plugins: have
            .plugins
            .values()
            .map(|p| PluginEntry {
                name: named(p),
                grants: serde_json::from_value(p["grants"].clone()).unwrap_or_default(),
                limits: serde_json::from_value(p["limits"].clone()).ok(),
                wasm: (p["bundled"] != true).then(|| format!("{}.wasm", named(p))),
            })
            .collect(),
        webhooks: have.webhooks.values().cloned().collect(),
        tasks: have.tasks.values().cloned().collect(),
        schedules: have
            .schedules
            .values()
            .map(|(spec, tasks)| ScheduleEntry {
                spec: spec.clone(),
                tasks: tasks.clone(),
            })
            .collect(),
        triggers: have.triggers.values().cloned().collect(),
    };
    let body = config
        .to_toml()
        .map_err(|e| (EXIT_USAGE, format!("writing TOML: {e}")))?;
    let text = format!(
        "# Sundial configuration, exported by `sundial export` from {}.\n\
         # Apply with `sundial apply -f FILE`. Secrets are names only: set their values with\n\
         # `sundial secret set NAME`. Plugins that are not bundled are installed from the\n\
         # `wasm` file named (relative to this file) when missing.\n\n{body}",
        remote.server_url()
    );
    match out {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| (EXIT_USAGE, format!("{}: {e}", path.display())))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

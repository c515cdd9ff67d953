//! The pages of what the daemon holds besides the task engine: plugins (digest, world,
//! grants, limits, the tasks and webhooks that use each), secrets (names only;
//! operators and admins, as in the API), tokens (admins) and the audit log with each
//! change's before/after difference.

use super::{Browser, Chrome, page_error, refused, render};
use crate::ApiError;
use crate::error::Found;
use crate::extract::{ADMINS, OPERATORS, role_name};
use askama::Template;
use axum::extract::{Path, Query};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use sundial_core::plugin::PluginRecord;
use sundial_store::audit::AuditFilter;
use sundial_store::secrets::SecretInfo;

/// Items on one page of a list.
const PAGE: usize = 50;
/// Most tasks and webhooks a plugin's page reads to find its users.
const USERS_SCAN: usize = 1000;

#[derive(Template)]
#[template(path = "plugins.html")]
struct PluginsPage {
    chrome: Option<Chrome>,
    rows: Vec<PluginRecord>,
    next: Option<String>,
}

/// `?after=` of a list keyed by name: the last name of the page before.
#[derive(Deserialize)]
pub(super) struct AfterName {
    after: Option<String>,
}

/// `GET /plugins`, by name, [`PAGE`] to a page.
pub(super) async fn plugins(browser: Browser, Query(q): Query<AfterName>) -> Response {
    match browser.state.store.plugins_page(q.after.as_deref(), PAGE) {
        Ok((rows, next)) => render(&PluginsPage {
            chrome: Some(browser.chrome("plugins")),
            rows,
            next,
        }),
        Err(e) => page_error(e.into()),
    }
}

#[derive(Template)]
#[template(path = "plugin.html")]
struct PluginPage {
    chrome: Option<Chrome>,
    p: PluginRecord,
    grants: String,
    limits: String,
    tasks: Vec<(String, String)>,
    webhooks: Vec<(String, String)>,
    scanned_all: bool,
}

/// `GET /plugins/{name}`.
pub(super) async fn plugin(browser: Browser, Path(name): Path<String>) -> Response {
    let state = &browser.state;
    let page = (|| -> Result<PluginPage, ApiError> {
        let p = state.store.plugin(&name)?.found("plugin", &name)?;
        let (tasks, more_tasks) = state.store.tasks_page(None, USERS_SCAN)?;
        let (hooks, more_hooks) = state.store.webhooks_page(None, USERS_SCAN)?;
        Ok(PluginPage {
            chrome: Some(browser.chrome("plugins")),
            grants: serde_json::to_string_pretty(&p.grants).unwrap_or_default(),
            limits: serde_json::to_string_pretty(&p.limits).unwrap_or_default(),
            tasks: tasks
                .into_iter()
                .filter(|t| t.spec.webhook.is_none() && t.spec.plugin == p.name)
                .map(|t| (t.id, t.spec.name))
                .collect(),
            webhooks: hooks
                .into_iter()
                .filter(|h| h.spec.formatter == p.name)
                .map(|h| (h.id, h.spec.name))
                .collect(),
            scanned_all: more_tasks.is_none() && more_hooks.is_none(),
            p,
        })
    })();
    page.map_or_else(page_error, |p| render(&p))
}

#[derive(Template)]
#[template(path = "secrets.html")]
struct SecretsPage {
    chrome: Option<Chrome>,
    rows: Vec<SecretInfo>,
    next: Option<String>,
}

/// `GET /secrets`: names, sizes and times, by name, [`PAGE`] to a page; never a
/// value. Operators and admins.
pub(super) async fn secrets(browser: Browser, Query(q): Query<AfterName>) -> Response {
    if !OPERATORS.contains(&browser.caller.token.role) {
        return refused("secrets are listed to operators and admins");
    }
    match browser.state.store.secrets_page(q.after.as_deref(), PAGE) {
        Ok((rows, next)) => render(&SecretsPage {
            chrome: Some(browser.chrome("secrets")),
            rows,
            next,
        }),
        Err(e) => page_error(e.into()),
    }
}

/// A token as a row: never its secret (the store keeps only a hash).
struct TokenRow {
    id: String,
    name: String,
    role: &'static str,
    created_at: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    chrome: Option<Chrome>,
    rows: Vec<TokenRow>,
}

/// `GET /tokens`: admins only. All of them: tokens are keyed by their hash, which no
/// URL may carry, and an installation has a handful.
pub(super) async fn tokens(browser: Browser) -> Response {
    if !ADMINS.contains(&browser.caller.token.role) {
        return refused("tokens are listed to admins");
    }
    match browser.state.store.tokens() {
        Ok(tokens) => render(&TokensPage {
            chrome: Some(browser.chrome("tokens")),
            rows: tokens
                .into_iter()
                .map(|t| TokenRow {
                    role: role_name(t.role),
                    id: t.id,
                    name: t.name,
                    created_at: t.created_at,
                })
                .collect(),
        }),
        Err(e) => page_error(e.into()),
    }
}

/// One changed field of an audit entry: its path, before and after (compact JSON;
/// empty when absent).
struct Change {
    path: String,
    before: String,
    after: String,
}

/// Flatten a JSON value into (path, leaf) pairs: objects by key (`a.b`), everything
/// else (arrays included) as one leaf.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, v, out);
            }
        }
        leaf => out.push((prefix.to_string(), leaf.to_string())),
    }
}

/// The fields that differ between `before` and `after`, in path order.
fn diff(before: Option<&Value>, after: Option<&Value>) -> Vec<Change> {
    let mut b = Vec::new();
    let mut a = Vec::new();
    if let Some(v) = before {
        flatten("", v, &mut b);
    }
    if let Some(v) = after {
        flatten("", v, &mut a);
    }
    let before: std::collections::BTreeMap<String, String> = b.into_iter().collect();
    let after: std::collections::BTreeMap<String, String> = a.into_iter().collect();
    let mut paths: Vec<&String> = before.keys().chain(after.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter(|p| before.get(*p) != after.get(*p))
        .map(|p| Change {
            path: if p.is_empty() { "(whole)".into() } else { p.clone() },
            before: before.get(p).cloned().unwrap_or_default(),
            after: after.get(p).cloned().unwrap_or_default(),
        })
        .collect()
}

/// An audit entry with its difference.
pub(super) struct AuditRow {
    pub(super) at: String,
    pub(super) actor: String,
    pub(super) action: String,
    pub(super) noun: String,
    pub(super) target: String,
    changes: Vec<Change>,
}

impl AuditRow {
    pub(super) fn of(e: sundial_store::audit::AuditEntry) -> AuditRow {
        AuditRow {
            changes: diff(e.before.as_ref(), e.after.as_ref()),
            at: e.at,
            actor: e.actor,
            action: e.action,
            noun: e.noun,
            target: e.target,
        }
    }
}

/// The audit log's filters and position.
#[derive(Deserialize, Default)]
pub(super) struct AuditQuery {
    #[serde(default)]
    noun: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    target: String,
    before: Option<String>,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Option<Chrome>,
    noun: String,
    actor: String,
    target: String,
    rows: Vec<AuditRow>,
    next: Option<String>,
    filters: String,
}

/// `GET /audit`.
pub(super) async fn audit(browser: Browser, Query(q): Query<AuditQuery>) -> Response {
    let state = &browser.state;
    let given = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
    let page = (|| -> Result<AuditPage, ApiError> {
        crate::extract::check_cursor(&q.before)?;
        let filter = AuditFilter {
            noun: given(&q.noun),
            actor: given(&q.actor),
            target: given(&q.target),
            since: None,
            until: None,
        };
        let (entries, next) = state.store.audit(&filter, q.before.as_deref(), PAGE)?;
        let mut filters = String::new();
        for (k, v) in [("noun", &q.noun), ("actor", &q.actor), ("target", &q.target)] {
            if !v.is_empty() {
                filters.push_str(&format!("&{k}={}", sundial_core::address::percent_encode(v)));
            }
        }
        Ok(AuditPage {
            chrome: Some(browser.chrome("audit")),
            rows: entries.into_iter().map(AuditRow::of).collect(),
            next,
            filters,
            noun: q.noun.clone(),
            actor: q.actor.clone(),
            target: q.target.clone(),
        })
    })();
    page.map_or_else(page_error, |p| render(&p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_names_each_changed_leaf() {
        let before =
            json!({"name": "a", "spec": {"enabled": true, "rule": {"cron": "* * * * *"}}, "same": 1});
        let after = json!({"name": "a", "spec": {"enabled": false, "rule": {"cron": "0 * * * *"}}, "same": 1, "new": [1]});
        let changes = diff(Some(&before), Some(&after));
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["new", "spec.enabled", "spec.rule.cron"]);
        assert_eq!(changes[1].before, "true");
        assert_eq!(changes[1].after, "false");
        assert_eq!(changes[0].before, "");
        // A creation shows every field as new; a deletion every field as gone.
        assert_eq!(diff(None, Some(&json!({"x": 1})))[0].after, "1");
        assert_eq!(diff(Some(&json!({"x": 1})), None)[0].before, "1");
        assert!(diff(Some(&before), Some(&before)).is_empty());
    }
}

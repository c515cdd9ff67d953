//! The redb store's copies of tasks, plugins and tokens ([`crate::cache`]) follow every
//! change at once. The copies here live an hour, so a copy that a change failed to
//! drop would still be served when the test looks: only the drop can end it.

use crate::cache::ReadCache;
use crate::plugins::PluginStore;
use crate::tasks::{TaskRecord, TaskStore};
use crate::tokens::{Role, TokenRecord, TokenStore, token_hash};
use crate::{Store, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use sundial_core::plugin::{PluginRecord, PluginUpdate, World};

/// A store whose copies live an hour.
fn store(dir: &std::path::Path) -> Store {
    let mut store = Store::open(dir, 64).unwrap();
    store.cache = Arc::new(ReadCache::with_ttl(Duration::from_secs(3600)));
    store
}

/// An admin token (so `ops` is not the last one) and an operator token `ops`; returns
/// the hash `ops` is looked up by.
async fn admin_and_ops(store: &Store) -> String {
    for (secret, name, role) in [
        ("admin-secret", "admin", Role::Admin),
        ("ops-secret", "ops", Role::Operator),
    ] {
        let record = TokenRecord {
            id: sundial_core::ids::new_id(),
            name: name.into(),
            role,
            created_at: sundial_core::timestamp::now(),
        };
        store.insert_token(secret, record, "t").await.unwrap();
    }
    token_hash("ops-secret")
}

fn plugin(name: &str) -> PluginRecord {
    PluginRecord {
        name: name.into(),
        digest: format!("sha256:{}", "ab".repeat(32)),
        world: World::Action,
        size_bytes: 3,
        imports: Vec::new(),
        grants: Default::default(),
        limits: Default::default(),
        description: String::new(),
        bundled: false,
        pinned: false,
        installed_at: sundial_core::timestamp::now(),
        updated_at: sundial_core::timestamp::now(),
    }
}

fn task(name: &str, plugin: &str) -> TaskRecord {
    TaskRecord {
        id: sundial_core::ids::new_id(),
        created_at: String::new(),
        updated_at: String::new(),
        spec: serde_json::from_value(serde_json::json!({"name": name, "plugin": plugin})).unwrap(),
    }
}

#[tokio::test]
async fn every_change_of_a_token_plugin_or_task_is_read_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());

    // Tokens: a revoked token stops authenticating as soon as the revoke returns.
    assert!(
        store.token_by_hash(&token_hash("ops-secret")).unwrap().is_none(),
        "not created yet (an absence is not kept)"
    );
    let ops = admin_and_ops(&store).await;
    assert_eq!(store.token_by_hash(&ops).unwrap().unwrap().name, "ops");
    assert_eq!(store.token_by_hash(&ops).unwrap().unwrap().name, "ops");
    store.revoke_token("ops", "t").await.unwrap();
    assert!(store.token_by_hash(&ops).unwrap().is_none(), "revoked");

    // Plugins: new limits and a removal are read at once.
    store
        .insert_plugin(plugin("act"), b"abc".to_vec(), "t")
        .await
        .unwrap();
    let before = store.plugin("act").unwrap().unwrap().limits;
    assert_eq!(store.plugin("act").unwrap().unwrap().limits, before);
    let mut limits = before;
    limits.timeout_ms = before.timeout_ms + 1;
    let update = PluginUpdate {
        limits: Some(limits),
        ..Default::default()
    };
    store
        .update_plugin("act", update, sundial_core::timestamp::now(), "t")
        .await
        .unwrap();
    assert_eq!(store.plugin("act").unwrap().unwrap().limits, limits);

    // Tasks, by name and by id: a change, a rename and a delete are read at once.
    let record = store.insert_task(task("job", "act"), "t").await.unwrap();
    assert!(store.task("job").unwrap().unwrap().spec.enabled);
    assert!(store.task(&record.id).unwrap().unwrap().spec.enabled);
    store
        .update_task("job", Box::new(|s| s.enabled = false), String::new(), "t")
        .await
        .unwrap();
    assert!(!store.task("job").unwrap().unwrap().spec.enabled);
    assert!(!store.task(&record.id).unwrap().unwrap().spec.enabled);
    store
        .update_task("job", Box::new(|s| s.name = "renamed".into()), String::new(), "t")
        .await
        .unwrap();
    assert!(store.task("job").unwrap().is_none(), "the old name is free");
    assert_eq!(store.task("renamed").unwrap().unwrap().id, record.id);
    store.delete_task("renamed", "t").await.unwrap();
    assert!(store.task(&record.id).unwrap().is_none(), "deleted");
    assert!(store.task("renamed").unwrap().is_none(), "deleted");

    store.remove_plugin("act", "t").await.unwrap();
    assert!(store.plugin("act").unwrap().is_none(), "removed");

    // A refused change leaves what the copies hold right.
    store
        .insert_plugin(plugin("act"), b"abc".to_vec(), "t")
        .await
        .unwrap();
    store.insert_task(task("job", "act"), "t").await.unwrap();
    assert!(store.plugin("act").unwrap().is_some());
    let refused = store.remove_plugin("act", "t").await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
    assert!(store.plugin("act").unwrap().is_some(), "still installed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_caller_stopped_waiting_still_drops_the_copies() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let ops = admin_and_ops(&store).await;
    assert!(store.token_by_hash(&ops).unwrap().is_some(), "copied");

    // The caller polls the revoke once (it is handed to the writer) and goes away, as
    // an HTTP request does when its client hangs up.
    let mut revoke = Box::pin(store.revoke_token("ops", "t"));
    assert!(futures::poll!(revoke.as_mut()).is_pending(), "not committed yet");
    drop(revoke);

    // The revoke commits all the same; then its copy must go, though nobody waited.
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.tokens().unwrap().iter().any(|t| t.name == "ops") {
        assert!(Instant::now() < deadline, "the revoke never committed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    while store.token_by_hash(&ops).unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "the revoked token is still served from the copies"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

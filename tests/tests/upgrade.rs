//! Upgrades: a bundled plugin whose bytes differ from the binary's is updated on start,
//! keeping the operator's settings, unless it is pinned or was replaced. The "older
//! version" is made by writing other bytes into the stopped daemon's store.

use serde_json::json;
use sundial_core::plugin::PluginRecord;
use sundial_store::prelude::*;
use sundial_tests::{Daemon, column, wasm};

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", sundial_core::hash::digest(bytes))
}

#[test]
fn bundled_plugins_follow_the_binary_unless_pinned_or_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = Daemon::start(&data, &[]);
    d.patch("/v1/plugins/echo", json!({"description": "mine"}));
    let (s, v) = d.call("PATCH", "/v1/plugins/json", Some(&json!({"pinned": true})));
    assert_eq!((s, &v["pinned"]), (200, &json!(true)), "{v}");
    d.expect(204, "DELETE", "/v1/plugins/template", None);
    let (s, v) = d.install_plugin("template", "sundial-fixture-hello", json!({}));
    assert_eq!(s, 201, "{v}");
    d.kill9();

    // Make the store look like an older version's: other bytes under echo and json.
    let old = std::fs::read(wasm("sundial-fixture-hello")).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = sundial_store::Store::open(&data, 64).unwrap();
        for name in ["echo", "json"] {
            let record: PluginRecord = store.plugin(name).unwrap().unwrap();
            let older = PluginRecord {
                digest: sha(&old),
                size_bytes: old.len() as u64,
                ..record
            };
            store
                .replace_plugin_bytes(older, old.clone(), "test")
                .await
                .unwrap();
        }
        // Released before the daemon starts again (a dropped store lets go of the file
        // only when its writer thread ends).
        store.close();
    });
    drop(runtime);

    let d = Daemon::start(&data, &[]);
    let plugin = |name: &str| d.call("GET", &format!("/v1/plugins/{name}"), None).1;
    let echo = plugin("echo");
    assert_eq!(
        echo["digest"],
        sha(sundial::bundled::get("echo").unwrap()),
        "updated: {echo}"
    );
    assert_eq!(echo["description"], "mine", "the operator's settings stay");
    assert_eq!(plugin("json")["digest"], sha(&old), "pinned: kept");
    let template = plugin("template");
    assert_eq!(
        (template["bundled"].clone(), template["digest"].clone()),
        (json!(false), json!(sha(&old)))
    );
    // The updated plugin runs.
    let (s, v) = d.call("POST", "/v1/tasks", Some(&json!({"name": "t", "plugin": "echo"})));
    assert_eq!(s, 201, "{v}");
    let (_, run) = d.call("POST", "/v1/tasks/t/run?wait=true", None);
    assert_eq!(run["status"], "succeeded", "{run}");
    // Recorded in the audit log as the upgrade's doing.
    let (_, audit) = d.call("GET", "/v1/audit?noun=plugin&actor=sundial%20upgrade", None);
    let targets = column(&audit["entries"], "target");
    assert_eq!(targets, vec!["echo"], "{audit}");
}

//! Secrets through the real daemon: write-only API, encrypted at rest, granted to
//! plugins by name, and redacted everywhere a run could show them.

use serde_json::json;
use sundial_tests::Daemon;

const VALUE: &str = "s3cr3t-Value-9f8e7d6c";

#[test]
fn secrets_are_write_only_sealed_granted_and_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    // Set, replace, read metadata: the value never comes back.
    let (status, v) = d.call(
        "PUT",
        "/v1/secrets/token",
        Some(&json!({"value": "first-version-of-it"})),
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = d.call("PUT", "/v1/secrets/token", Some(&json!({"value": VALUE})));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["size"], VALUE.len());
    for (status, body, want) in [
        d.call("PUT", "/v1/secrets/bad%20name", Some(&json!({"value": "x"}))),
        d.call("PUT", "/v1/secrets/empty", Some(&json!({"value": ""}))),
        d.call("PUT", "/v1/secrets/typo", Some(&json!({"valeu": "x"}))),
    ]
    .into_iter()
    .zip(["name:", "value: must be", "unknown field"])
    .map(|((s, b), w)| (s, b, w))
    {
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(want),
            "{body}"
        );
    }
    // The limit counts characters (as the published schema's maxLength does).
    let wide = "é".repeat(65536);
    let (status, v) = d.call("PUT", "/v1/secrets/wide", Some(&json!({"value": wide})));
    assert_eq!(status, 201, "65 536 two-byte characters fit: {v}");
    assert_eq!(v["size"], 131072);
    let (status, v) = d.call(
        "PUT",
        "/v1/secrets/long",
        Some(&json!({"value": "e".repeat(65537)})),
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(d.call("DELETE", "/v1/secrets/wide", None).0, 204);
    let (_, list) = d.call("GET", "/v1/secrets", None);
    assert_eq!(list["secrets"][0]["name"], "token");
    assert_eq!(d.call("GET", "/v1/secrets/nope", None).0, 404);

    // A viewer cannot even list them; an operator can list but not set.
    for (name, role) in [("view", "viewer"), ("ops", "operator")] {
        let (_, t) = d.call("POST", "/v1/tokens", Some(&json!({"name": name, "role": role})));
        let secret = t["secret"].as_str().unwrap().to_string();
        let list = d.call_as(Some(&secret), "GET", "/v1/secrets", None).0;
        let set = d
            .call_as(
                Some(&secret),
                "PUT",
                "/v1/secrets/x",
                Some(&json!({"value": "y"})),
            )
            .0;
        assert_eq!(
            (role, list, set),
            (role, if role == "viewer" { 403 } else { 200 }, 403)
        );
    }

    // A plugin granted the secret reads it; everything the run shows is redacted.
    let grants = json!({"grants": {"secrets": ["token"], "emit_events": true}});
    assert_eq!(
        d.install_plugin("hostile", "sundial-fixture-hostile", grants).0,
        201
    );
    assert_eq!(
        d.install_plugin("ungranted", "sundial-fixture-hostile", json!({}))
            .0,
        201
    );
    for (name, plugin, mode) in [
        ("probe", "hostile", "probe"),
        ("leak", "hostile", "leak"),
        ("denied", "ungranted", "probe"),
    ] {
        let spec =
            json!({"name": name, "plugin": plugin, "params": {"mode": mode}, "retry": {"max_attempts": 1}});
        assert_eq!(d.call("POST", "/v1/tasks", Some(&spec)).0, 201);
    }
    let (_, probe) = d.call("POST", "/v1/tasks/probe/run?wait=true", None);
    assert_eq!(probe["output"]["secret"], "[redacted]", "{probe}");
    let (_, leak) = d.call("POST", "/v1/tasks/leak/run?wait=true", None);
    assert_eq!(leak["status"], "failed");
    assert_eq!(leak["error"]["message"], "leaking [redacted] in an error");
    let log = leak["log"].to_string();
    assert!(
        log.contains("the token is [redacted]") && log.contains("stdout: [redacted]"),
        "{log}"
    );
    let (_, denied) = d.call("POST", "/v1/tasks/denied/run?wait=true", None);
    assert_eq!(
        denied["output"]["secret"],
        json!(null),
        "not granted: reads as none"
    );

    // Nowhere in the API, the daemon's log or the database file.
    let mut seen = String::new();
    for path in [
        "/v1/secrets",
        "/v1/secrets/token",
        "/v1/audit?limit=1000",
        "/v1/events?limit=1000",
        "/v1/runs?limit=1000",
    ] {
        seen.push_str(&d.call("GET", path, None).1.to_string());
    }
    seen.push_str(&d.stderr_text());
    assert!(seen.contains("token"), "the secret's name shows");
    assert!(!seen.contains(VALUE), "the value leaked: {seen}");
    let dbfile = std::fs::read(dir.path().join("sundial.redb")).unwrap();
    assert!(
        !dbfile.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()),
        "plaintext in the store file"
    );

    // The key lives outside the database; the value survives a restart; delete works.
    assert!(dir.path().join("secret.key").exists());
    d.kill9();
    let d = Daemon::start(dir.path(), &[]);
    let (_, probe) = d.call("POST", "/v1/tasks/probe/run?wait=true", None);
    assert_eq!(
        probe["output"]["secret"], "[redacted]",
        "still opens after a restart: {probe}"
    );
    assert_eq!(d.call("DELETE", "/v1/secrets/token", None).0, 204);
    let (_, probe) = d.call("POST", "/v1/tasks/probe/run?wait=true", None);
    assert_eq!(probe["output"]["secret"], json!(null));
}

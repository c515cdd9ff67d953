//! Secrets through the real daemon: write-only API, encrypted at rest, granted to
//! plugins by name, and redacted everywhere a run could show them.

use serde_json::{Value, json};
use sundial_tests::{Daemon, find_secret, items, message};

const VALUE: &str = "s3cr3t-Value-9f8e7d6c";

/// Start the daemon on `dir` with `env`, check that the `probe` task reads the sealed
/// secret (redacted) and kill it again; `why` names the case.
fn assert_opens(dir: &std::path::Path, env: &[(&str, &str)], why: &str) {
    let d = Daemon::start_with_env(dir, &[], env);
    assert_eq!(probe_secret(&d, "probe"), "[redacted]", "{why}");
    d.kill9();
}

/// What the daemon on `dir` with `env` says when it refuses to start; panics with
/// `started` when it starts.
fn start_refused(dir: &std::path::Path, env: &[(&str, &str)], started: &str) -> String {
    match Daemon::try_start(dir, &[], env) {
        Ok(_) => panic!("{started}"),
        Err(log) => log,
    }
}

#[test]
fn secrets_are_write_only_sealed_granted_and_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    // Set, replace, read metadata: the value never comes back.
    d.put_secret(201, "token", "first-version-of-it");
    let v = d.put_secret(200, "token", VALUE);
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
        assert!(message(&body).contains(want), "{body}");
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
    d.expect(204, "DELETE", "/v1/secrets/wide", None);
    let (_, list) = d.call("GET", "/v1/secrets", None);
    assert_eq!(list["secrets"][0]["name"], "token");
    d.expect(404, "GET", "/v1/secrets/nope", None);

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
    d.install_hostile(json!({"grants": {"secrets": ["token"], "emit_events": true}}));
    d.install_ok("ungranted", "sundial-fixture-hostile", json!({}));
    for (name, plugin, mode) in [
        ("probe", "hostile", "probe"),
        ("leak", "hostile", "leak"),
        ("denied", "ungranted", "probe"),
    ] {
        let spec =
            json!({"name": name, "plugin": plugin, "params": {"mode": mode}, "retry": {"max_attempts": 1}});
        d.expect(201, "POST", "/v1/tasks", Some(&spec));
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
    let denied = probe_secret(&d, "denied");
    assert_eq!(denied, json!(null), "not granted: reads as none");

    // Nowhere in the API, the daemon's log or the database file.
    let mut seen = String::new();
    for (_, v) in d.read_all(&[
        "/v1/secrets",
        "/v1/secrets/token",
        "/v1/audit?limit=1000",
        "/v1/events?limit=1000",
        "/v1/runs?limit=1000",
    ]) {
        seen.push_str(&v.to_string());
    }
    seen.push_str(&d.stderr_text());
    let (_, list) = d.call("GET", "/v1/secrets", None);
    let names: Vec<&Value> = items(&list["secrets"]).iter().map(|s| &s["name"]).collect();
    assert_eq!(names, [&json!("token")], "the secret is listed by name: {list}");
    assert_eq!(
        find_secret(seen.as_bytes(), VALUE),
        None,
        "the value leaked: {seen}"
    );
    // The store keeps the sealed value as base64 text: plaintext could never show
    // there literally, so the search decodes every base64 run and looks for the
    // value's own base64 too.
    let dbfile = std::fs::read(dir.path().join("sundial.redb")).unwrap();
    assert_eq!(
        find_secret(&dbfile, VALUE),
        None,
        "the value is readable in the store file"
    );
    assert_eq!(
        find_secret(&dbfile, "first-version-of-it"),
        None,
        "the replaced value is readable in the store file"
    );

    // The key lives outside the database; the value survives a restart; delete works.
    assert!(dir.path().join("secret.key").exists());
    d.kill9();
    let d = Daemon::start(dir.path(), &[]);
    assert_eq!(
        probe_secret(&d, "probe"),
        "[redacted]",
        "still opens after a restart"
    );
    d.expect(204, "DELETE", "/v1/secrets/token", None);
    assert_eq!(probe_secret(&d, "probe"), json!(null), "deleted: reads as none");
}

/// Run task `task` (the hostile fixture's `probe` mode) and return what it read as the
/// secret `token`: `"[redacted]"` when it read the value (the whole output is the value,
/// redacted), null when it read none. The run must succeed.
fn probe_secret(d: &Daemon, task: &str) -> Value {
    let (status, run) = d.call("POST", &format!("/v1/tasks/{task}/run?wait=true"), None);
    assert_eq!((status, &run["status"]), (200, &json!("succeeded")), "{run}");
    let output = run["output"]
        .as_object()
        .unwrap_or_else(|| panic!("no output: {run}"));
    assert!(
        output.contains_key("secret") && output["kv_set"].is_string(),
        "{run}"
    );
    output["secret"].clone()
}

/// Base64 of 32 bytes of `b`, a valid `SUNDIAL_SECRET_KEY`.
fn key(b: u8) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode([b; 32])
}

#[test]
fn the_key_from_sundial_secret_key_wins_and_a_wrong_key_opens_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let k1 = key(1);
    let env = [("SUNDIAL_SECRET_KEY", k1.as_str())];
    let d = Daemon::start_with_env(dir.path(), &[], &env);
    assert!(
        !dir.path().join("secret.key").exists(),
        "with SUNDIAL_SECRET_KEY no key file is written"
    );
    d.put_secret(201, "token", VALUE);
    d.install_hostile(json!({"grants": {"secrets": ["token"], "kv": true}}));
    let spec = json!({"name": "probe", "plugin": "hostile", "params": {"mode": "probe"}, "retry": {"max_attempts": 1}});
    d.expect(201, "POST", "/v1/tasks", Some(&spec));
    assert_eq!(probe_secret(&d, "probe"), "[redacted]");

    // The same key after a restart opens it.
    d.kill9();
    assert_opens(dir.path(), &env, "the same key opens it after a restart");

    // Another valid key does not open the sealed secret: the daemon refuses to start,
    // says why, and changes nothing stored (it used to start and fail runs later).
    let k2 = key(2);
    let err = start_refused(
        dir.path(),
        &[("SUNDIAL_SECRET_KEY", k2.as_str())],
        "a wrong key is refused at start",
    );
    assert!(
        err.contains("SUNDIAL_SECRET_KEY") && err.contains("not the key they were sealed with"),
        "{err}"
    );

    // Without the variable there is no key: no new key file is made, the start refused.
    let err = start_refused(dir.path(), &[], "no key is refused");
    assert!(err.contains("there is no secret key"), "{err}");
    assert!(!dir.path().join("secret.key").exists(), "no new key was made");
    // A key file that does not match is refused too; the variable, set again, wins.
    std::fs::write(dir.path().join("secret.key"), format!("{k2}\n")).unwrap();
    let err = start_refused(dir.path(), &[], "a wrong key file is refused");
    assert!(err.contains("secret.key") && err.contains("not the key"), "{err}");
    assert_opens(dir.path(), &env, "SUNDIAL_SECRET_KEY wins over secret.key");

    // A malformed key stops the daemon at start with a message that names it.
    for (bad, want) in [("not base64!", "not base64"), ("c2hvcnQ=", "32 bytes")] {
        let started = format!("the daemon started with SUNDIAL_SECRET_KEY={bad:?}");
        let err = start_refused(dir.path(), &[("SUNDIAL_SECRET_KEY", bad)], &started);
        assert!(
            err.contains("SUNDIAL_SECRET_KEY") && err.contains(want),
            "{bad}: {err}"
        );
    }
}

//! `sundial apply -f` and `sundial export` against real daemons: the VergeOS example
//! file on an empty daemon, again (no changes), a dry run of an edited file, pruning,
//! and export → apply on a fresh daemon giving the same configuration.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use sundial::declarative::Config;
use sundial_tests::{Daemon, items, sundial_bin};

fn cli(d: &Daemon, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(sundial_bin())
        .args(args)
        .env("SUNDIAL_URL", format!("http://{}", d.addr))
        .env("SUNDIAL_TOKEN", &d.token)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run sundial");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// Write `toml` to `file` and `sundial apply -f` it, which must exit with `code`; its
/// stderr.
fn apply_failing(d: &Daemon, file: &Path, toml: &str, code: i32) -> String {
    std::fs::write(file, toml).unwrap();
    let out = cli(d, &["apply", "-f", file.to_str().unwrap()], None);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{err}");
    err
}

fn ok(d: &Daemon, args: &[&str]) -> String {
    let out = cli(d, args, None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/vergeos.toml")
}

fn with_secrets(dir: &Path) -> Daemon {
    let d = Daemon::start(dir, &[]);
    for name in ["vergeos-api-key", "pagerduty-routing"] {
        let out = cli(&d, &["secret", "set", name], Some("a-secret-value\n"));
        assert!(out.status.success());
    }
    d
}

/// The configuration a daemon exports, parsed.
fn exported(d: &Daemon, file: &Path) -> Config {
    ok(d, &["export", "-o", file.to_str().unwrap()]);
    Config::parse(&std::fs::read_to_string(file).unwrap()).unwrap()
}

#[test]
fn apply_the_vergeos_example_idempotently_and_round_trip_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let file = example();
    let file = file.to_str().unwrap();

    // Secrets first: apply names the missing ones and changes nothing.
    let bare = Daemon::start(&dir.path().join("bare"), &[]);
    let out = cli(&bare, &["apply", "-f", file], None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("secret \"vergeos-api-key\" is not set"), "{err}");
    let (_, tasks) = bare.call("GET", "/v1/tasks", None);
    assert_eq!(tasks["tasks"], serde_json::json!([]));

    let d = with_secrets(&dir.path().join("one"));
    let plan = ok(&d, &["apply", "-f", file, "--dry-run"]);
    assert!(plan.contains("+ create task power-on-gpu"), "{plan}");
    assert!(plan.contains("~ change plugin vergeos: grants"), "{plan}");
    assert!(
        plan.ends_with("dry run: 23 to create, 2 to change, 0 to delete; nothing was changed\n"),
        "{plan}"
    );
    let (_, tasks) = d.call("GET", "/v1/tasks", None);
    assert_eq!(tasks["tasks"], serde_json::json!([]), "a dry run changes nothing");

    let applied = ok(&d, &["apply", "-f", file]);
    assert!(
        applied.ends_with("applied: 23 to create, 2 to change, 0 to delete\n"),
        "{applied}"
    );
    assert_eq!(
        ok(&d, &["apply", "-f", file]),
        format!("no changes: the daemon matches {file}\n"),
        "applying twice changes nothing"
    );
    let (_, schedule) = d.call("GET", "/v1/schedules/fridays-18", None);
    assert_eq!(schedule["tasks"].as_array().unwrap().len(), 3);
    let (_, trigger) = d.call("GET", "/v1/triggers/disable-new-users-after-30-days", None);
    assert_eq!(trigger["delay"], "30d");

    // An edited file: a changed task, a schedule with one task less, a trigger gone.
    let text = std::fs::read_to_string(file).unwrap();
    let edited = text
        .replace(
            "target = \"gpu-workstation-1\" }\n\n# (4)",
            "target = \"gpu-workstation-9\" }\n\n# (4)",
        )
        .replace(
            "tasks = [\"power-off-gpu-1\", \"power-off-gpu-2\", \"power-off-build-runner\"]",
            "tasks = [\"power-off-gpu-1\", \"power-off-gpu-2\"]",
        );
    let cut = edited.find("[[trigger]]\nname = \"node-offline\"").unwrap();
    let end = cut + edited[cut..].find("\n\n").unwrap();
    let edited = format!("{}{}", &edited[..cut], &edited[end + 2..]);
    let edited_path = dir.path().join("edited.toml");
    std::fs::write(&edited_path, &edited).unwrap();
    let edited_path = edited_path.to_str().unwrap();
    let plan = ok(&d, &["apply", "-f", edited_path, "--dry-run", "--prune"]);
    assert_eq!(
        plan,
        "~ change task power-on-gpu: params\n\
         - detach task power-off-build-runner from schedule fridays-18\n\
         - delete trigger node-offline\n\
         dry run: 0 to create, 1 to change, 2 to delete; nothing was changed\n"
    );
    let without_prune = ok(&d, &["apply", "-f", edited_path, "--dry-run"]);
    assert!(!without_prune.contains("delete trigger"), "{without_prune}");
    ok(&d, &["apply", "-f", edited_path, "--prune"]);
    d.expect(404, "GET", "/v1/triggers/node-offline", None);
    let (_, task) = d.call("GET", "/v1/tasks/power-on-gpu", None);
    assert_eq!(task["params"]["target"], "gpu-workstation-9");
    // And back.
    let back = ok(&d, &["apply", "-f", file]);
    assert!(
        back.contains("+ create trigger node-offline")
            && back.contains("+ attach task power-off-build-runner"),
        "{back}"
    );

    // Export, apply the export on a fresh daemon: the same configuration.
    let first = exported(&d, &dir.path().join("export-1.toml"));
    let fresh = with_secrets(&dir.path().join("two"));
    ok(
        &fresh,
        &["apply", "-f", dir.path().join("export-1.toml").to_str().unwrap()],
    );
    let second = exported(&fresh, &dir.path().join("export-2.toml"));
    assert_eq!(second, first, "export -> apply -> export is stable");
    assert_eq!(first.tasks.len(), 8);
    assert_eq!(first.triggers.len(), 6);
    assert_eq!(
        ok(&fresh, &["apply", "-f", file]),
        format!("no changes: the daemon matches {file}\n"),
        "the fresh daemon matches the original file too"
    );
}

#[test]
fn apply_names_the_bad_field_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let bad = dir.path().join("bad.toml");
    let err = apply_failing(
        &d,
        &bad,
        "[[task]]\nname = \"ok\"\nplugin = \"echo\"\n\n[[task]]\nname = \"t\"\nplugin = \"echo\"\nretry = { max_attempts = \"three\" }\n",
        2,
    );
    assert!(err.contains("task[1].retry.max_attempts: invalid type"), "{err}");
    let tasks = |d: &Daemon| -> Vec<String> {
        let v = d.expect(200, "GET", "/v1/tasks", None);
        items(&v["tasks"])
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(tasks(&d).is_empty(), "a file that does not parse changes nothing");
    // A reference the daemon refuses stops the apply at that step, saying how far it got.
    let err = apply_failing(
        &d,
        &bad,
        "[[task]]\nname = \"ok\"\nplugin = \"echo\"\n\n[[trigger]]\nname = \"t\"\non = { type = \"x\" }\ntargets = [{ task = \"missing\" }]\n",
        1,
    );
    assert!(
        err.contains(
            "+ create trigger t: 404 not_found: targets[0].task: task \"missing\" not found (1 of 2 steps"
        ),
        "{err}"
    );
    // It got exactly as far as it says: the task of step 1, no trigger.
    assert_eq!(tasks(&d), ["ok"]);
    let (_, triggers) = d.call("GET", "/v1/triggers", None);
    assert!(triggers["triggers"].as_array().unwrap().is_empty(), "{triggers}");
}

//! Running the daemon as an operator does: backup and restore, a secret key that does
//! not match, lost admin tokens, TLS, the client config, the config file lookup, logs,
//! and a port conflict. Every command is the real binary.

use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};
use sundial_tests::{Daemon, items, sundial_bin};

fn sundial(d: Option<&Daemon>, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(sundial_bin());
    c.args(args).env_remove("SUNDIAL_TOKEN").env_remove("SUNDIAL_URL");
    // No client config unless a test names one.
    c.env_remove("SUNDIAL_CLIENT_CONFIG")
        .env("XDG_CONFIG_HOME", "/nonexistent");
    if let Some(d) = d {
        c.env("SUNDIAL_URL", format!("http://{}", d.addr))
            .env("SUNDIAL_TOKEN", &d.token);
    }
    c.envs(env.iter().copied()).output().expect("run sundial")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> String {
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    stdout(&o)
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn backup_and_restore_bring_a_daemon_back_and_a_wrong_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let d = Daemon::start(&a, &[]);
    d.create("/v1/tasks", json!({"name": "nightly", "plugin": "echo"}));
    let (s, v) = d.call(
        "PUT",
        "/v1/secrets/API_KEY",
        Some(&json!({"value": "hunter2-hunter2"})),
    );
    assert!(s == 201 || s == 200, "{v}");
    d.create(
        "/v1/schedules",
        json!({"name": "daily", "rule": {"cron": "0 3 * * *"}}),
    );
    // A viewer may not take backups.
    let v = d.create("/v1/tokens", json!({"name": "v", "role": "viewer"}));
    let (s, _) = d.call_as(v["secret"].as_str(), "GET", "/v1/admin/backup", None);
    assert_eq!(s, 403);

    let file = tmp.path().join("backup.tar");
    let out = ok(sundial(Some(&d), &["backup", file.to_str().unwrap()], &[]));
    assert!(out.contains("keep it as safe as the data directory"), "{out}");
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);
    // Nothing is left in the data directory but what was there.
    let leftovers: Vec<String> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("backup-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let again = sundial(Some(&d), &["backup", file.to_str().unwrap()], &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("it exists"), "{}", stderr(&again));
    // Writes made after the backup are not in it; the daemon goes on.
    let (s, _) = d.call(
        "POST",
        "/v1/tasks",
        Some(&json!({"name": "later", "plugin": "echo"})),
    );
    assert_eq!(s, 201);
    d.kill9();

    // Restore into an empty directory, then start there.
    let b = tmp.path().join("b");
    let out = ok(sundial(
        None,
        &["restore", file.to_str().unwrap(), "--data", b.to_str().unwrap()],
        &[],
    ));
    assert!(
        out.contains("1 tasks, 1 schedules, 1 secrets; the key opens them"),
        "{out}"
    );
    #[cfg(unix)]
    assert_eq!(mode(&b.join("secret.key")), 0o600);
    let refused = sundial(
        None,
        &["restore", file.to_str().unwrap(), "--data", b.to_str().unwrap()],
        &[],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("already holds a store"),
        "{}",
        stderr(&refused)
    );
    let c = tmp.path().join("c");
    std::fs::create_dir_all(&c).unwrap();
    for f in ["sundial.redb", "secret.key", "admin.token"] {
        std::fs::copy(b.join(f), c.join(f)).unwrap();
    }
    {
        let d = Daemon::start(&b, &[]);
        d.expect(200, "GET", "/v1/tasks/nightly", None);
        assert_eq!(
            d.call("GET", "/v1/tasks/later", None).0,
            404,
            "made after the backup"
        );
        d.expect(200, "GET", "/v1/schedules/daily", None);
        let (_, secrets) = d.call("GET", "/v1/secrets", None);
        assert_eq!(secrets["secrets"][0]["name"], "API_KEY", "{secrets}");
    }

    // A key that does not open the sealed secrets, or none at all: no start, and no
    // new key made.
    std::fs::write(
        c.join("secret.key"),
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
    )
    .unwrap();
    let err = Daemon::try_start(&c, &[], &[]).err().expect("refused");
    assert!(err.contains("not the key they were sealed with"), "{err}");
    std::fs::remove_file(c.join("secret.key")).unwrap();
    let err = Daemon::try_start(&c, &[], &[]).err().expect("refused");
    assert!(
        err.contains("sealed secret(s) but there is no secret key"),
        "{err}"
    );
    assert!(!c.join("secret.key").exists(), "no new key was made");

    // Not a backup.
    let junk = tmp.path().join("junk.tar");
    std::fs::write(&junk, b"not a tar").unwrap();
    let out = sundial(
        None,
        &[
            "restore",
            junk.to_str().unwrap(),
            "--data",
            tmp.path().join("e").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn a_lost_admin_token_is_reset_and_a_401_says_where_the_token_came_from() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = Daemon::start(&data, &[]);
    let old = d.token.clone();
    // --write-file keeps the secret off the terminal.
    let file = tmp.path().join("ops.token");
    let out = ok(sundial(
        Some(&d),
        &[
            "token",
            "create",
            "ops",
            "--role",
            "operator",
            "--write-file",
            file.to_str().unwrap(),
        ],
        &[],
    ));
    assert!(out.contains("its secret is in") && !out.contains("sdl_"), "{out}");
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);
    let secret = std::fs::read_to_string(&file).unwrap();
    assert!(secret.starts_with("sdl_"));
    let exists = sundial(
        Some(&d),
        &[
            "token",
            "create",
            "ops2",
            "--role",
            "viewer",
            "--write-file",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(exists.status.code(), Some(2));
    assert_eq!(
        items(&d.call("GET", "/v1/tokens", None).1["tokens"]).len(),
        2,
        "nothing made"
    );

    // A 401 names the token's source.
    let url = format!("http://{}", d.addr);
    let bad = "sdl_0000000000000000000000000000000000000000000000000000000000000000";
    let o = sundial(None, &["task", "list", "--server", &url, "--token", bad], &[]);
    assert!(
        stderr(&o).contains("401") && stderr(&o).contains("the --token flag"),
        "{}",
        stderr(&o)
    );
    let o = sundial(
        None,
        &["task", "list", "--server", &url],
        &[("SUNDIAL_TOKEN", bad)],
    );
    assert!(
        stderr(&o).contains("(the token came from SUNDIAL_TOKEN)"),
        "{}",
        stderr(&o)
    );
    let wrong = tmp.path().join("wrong-data");
    std::fs::create_dir_all(&wrong).unwrap();
    std::fs::write(wrong.join("admin.token"), format!("{bad}\n")).unwrap();
    let o = sundial(
        None,
        &["task", "list", "--server", &url],
        &[("SUNDIAL_DATA", wrong.to_str().unwrap())],
    );
    assert!(
        stderr(&o).contains(&wrong.join("admin.token").display().to_string()),
        "{}",
        stderr(&o)
    );

    // With the daemon running the store is locked: reset refuses.
    let o = sundial(None, &["token", "reset", "--data", data.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Stop it first"), "{}", stderr(&o));
    d.kill9();
    std::fs::remove_file(data.join("admin.token")).unwrap();
    let out = ok(sundial(
        None,
        &["token", "reset", "--data", data.to_str().unwrap()],
        &[],
    ));
    assert!(out.contains("wrote a new admin token"), "{out}");
    let d = Daemon::start(&data, &[]);
    assert_ne!(d.token, old);
    assert_eq!(
        d.call("GET", "/v1/tokens", None).0,
        200,
        "the new token is an admin"
    );
    // A second reset revokes the token the file held.
    let first = d.token.clone();
    d.kill9();
    ok(sundial(
        None,
        &["token", "reset", "--data", data.to_str().unwrap()],
        &[],
    ));
    let d = Daemon::start(&data, &[]);
    assert_eq!(d.call_as(Some(&first), "GET", "/v1/tokens", None).0, 401);
    d.expect(200, "GET", "/v1/tokens", None);
    let o = sundial(
        None,
        &[
            "token",
            "reset",
            "--data",
            tmp.path().join("nowhere").to_str().unwrap(),
        ],
        &[],
    );
    assert!(stderr(&o).contains("holds no Sundial store"), "{}", stderr(&o));
}

/// A certificate for localhost and 127.0.0.1: (cert PEM, key PEM).
fn certificate() -> (String, String) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    (cert.pem(), signing_key.serialize_pem())
}

#[test]
fn the_api_speaks_tls_and_the_cli_follows_its_client_config() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = certificate();
    let cert_file = tmp.path().join("cert.pem");
    let key_file = tmp.path().join("key.pem");
    std::fs::write(&cert_file, &cert).unwrap();
    std::fs::write(&key_file, &key).unwrap();
    let data = tmp.path().join("data");
    let d = Daemon::start(
        &data,
        &[
            "--tls-cert",
            cert_file.to_str().unwrap(),
            "--tls-key",
            key_file.to_str().unwrap(),
        ],
    );
    assert!(
        d.stderr_text().contains("sundial listening on https://"),
        "{}",
        d.stderr_text()
    );
    let port = d.addr.rsplit(':').next().unwrap().to_string();
    let url = format!("https://localhost:{port}");
    let token_env = [("SUNDIAL_TOKEN", d.token.as_str())];
    // Trusted through --ca-file: a table comes back.
    let out = ok(sundial(
        None,
        &[
            "plugin",
            "list",
            "--server",
            &url,
            "--ca-file",
            cert_file.to_str().unwrap(),
        ],
        &token_env,
    ));
    assert!(out.contains("echo"), "{out}");
    // Without the CA the certificate is refused, clearly.
    let o = sundial(None, &["plugin", "list", "--server", &url], &token_env);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("TLS with"), "{}", stderr(&o));
    // Plain HTTP to a TLS port gets no API answer.
    let plain = sundial_tests::try_raw_http(&d.addr, "GET", "/healthz", "", b"");
    assert!(plain.map(|(s, _)| s != 200).unwrap_or(true));

    // The client config names the URL, a token file and the CA (paths relative to it).
    let conf_dir = tmp.path().join("conf");
    std::fs::create_dir_all(&conf_dir).unwrap();
    std::fs::write(conf_dir.join("token"), format!("{}\n", d.token)).unwrap();
    std::fs::copy(&cert_file, conf_dir.join("ca.pem")).unwrap();
    let conf = conf_dir.join("client.toml");
    std::fs::write(
        &conf,
        format!("url = \"{url}\"\ntoken_file = \"token\"\nca_file = \"ca.pem\"\n"),
    )
    .unwrap();
    let env = [("SUNDIAL_CLIENT_CONFIG", conf.to_str().unwrap())];
    let out = ok(sundial(None, &["task", "list"], &env));
    assert!(out.starts_with("NAME"), "{out}");
    // A bad key in it is named.
    std::fs::write(&conf, "url = \"http://x\"\ncolour = 1\n").unwrap();
    let o = sundial(None, &["task", "list"], &env);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("colour"), "{}", stderr(&o));

    // Half a TLS configuration is refused before anything is made.
    let half = tmp.path().join("half");
    let err = Daemon::try_start(&half, &["--tls-cert", cert_file.to_str().unwrap()], &[])
        .err()
        .unwrap();
    assert!(err.contains("tls_cert is set but tls_key is not"), "{err}");
    let err = Daemon::try_start(
        &half,
        &[
            "--tls-cert",
            key_file.to_str().unwrap(),
            "--tls-key",
            key_file.to_str().unwrap(),
        ],
        &[],
    )
    .err()
    .unwrap();
    assert!(err.contains("no PEM certificate"), "{err}");
    assert!(!half.exists(), "no data directory was made");
}

#[test]
fn a_busy_port_leaves_no_data_directory_and_logs_are_plain_or_json() {
    let tmp = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let data = tmp.path().join("data");
    let out = Command::new(sundial_bin())
        .args(["serve", "--data", data.to_str().unwrap(), "--listen", &addr])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains(&format!("cannot listen on {addr}")),
        "{}",
        stderr(&out)
    );
    assert!(!data.exists(), "a port conflict made {}", data.display());

    // Text logs to a pipe carry no colour codes; JSON logs are JSON, every line.
    let d = Daemon::start(&tmp.path().join("text"), &[]);
    assert!(!d.stderr_text().contains('\u{1b}'), "{}", d.stderr_text());
    d.expect(200, "GET", "/v1/tasks", None);
    drop(d);
    let d = Daemon::start(&tmp.path().join("json"), &["--log-format", "json"]);
    d.expect(404, "POST", "/v1/tasks/none/run", None);
    let text = d.stderr_text();
    let mut lines = 0;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
        lines += 1;
    }
    assert!(lines >= 2, "{text}");
    assert!(text.contains("created an admin token"), "{text}");
}

#[test]
fn the_config_file_is_found_in_the_working_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    std::fs::write(
        tmp.path().join("sundial.toml"),
        format!("data = \"here\"\nlisten = \"127.0.0.1:{port}\"\nworkers = 2\n"),
    )
    .unwrap();
    let mut child = Command::new(sundial_bin())
        .arg("serve")
        .current_dir(tmp.path())
        .env_remove("SUNDIAL_CONFIG")
        .env_remove("SUNDIAL_DATA")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
        let line = line.unwrap();
        let done = sundial_tests::daemon::listening_address(&line);
        seen.push(line);
        if let Some(a) = done {
            assert_eq!(a, format!("127.0.0.1:{port}"));
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let all = seen.join("\n");
    assert!(
        all.contains("read the config file") && all.contains("sundial.toml"),
        "{all}"
    );
    assert!(tmp.path().join("here").join("sundial.redb").exists(), "{all}");
}

#[test]
fn logs_carry_the_run_id_and_follow_reconnects_after_a_restart() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = Daemon::start(&data, &[]);
    let addr = d.addr.clone();
    d.create("/v1/tasks", json!({"name": "hello", "plugin": "echo"}));
    let (_, first) = d.call("POST", "/v1/tasks/hello/run?wait=true", None);
    let first_id = first["id"].as_str().unwrap().to_string();
    let text = ok(sundial(Some(&d), &["logs", "--task", "hello"], &[]));
    let head = text.lines().next().unwrap();
    assert!(
        head.contains(" hello succeeded attempt 1 run ") && head.ends_with(&first_id),
        "{text}"
    );
    for line in text.lines().skip(1) {
        assert!(
            line.trim_start().starts_with(&first_id),
            "a log line without its run: {line}\n{text}"
        );
    }

    let mut follower = Command::new(sundial_bin())
        .args(["logs", "--follow", "--task", "hello"])
        .env("SUNDIAL_URL", format!("http://{addr}"))
        .env("SUNDIAL_TOKEN", &d.token)
        .env_remove("SUNDIAL_CLIENT_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let out = follower.stdout.take().unwrap();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx2.send(format!("out: {line}"));
        }
    });
    let err = follower.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(format!("err: {line}"));
        }
    });
    let seen = std::cell::RefCell::new(Vec::<String>::new());
    // A line already seen counts too: stdout and stderr arrive through separate pipes,
    // so the new run's line may come before the "reconnected" that precedes it.
    let wait_for = |what: &str| -> String {
        if let Some(line) = seen.borrow().iter().find(|l| l.contains(what)) {
            return line.clone();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("never saw {what:?}; saw {:?}", seen.borrow()));
            seen.borrow_mut().push(line.clone());
            if line.contains(what) {
                return line;
            }
        }
    };
    wait_for(&first_id);
    d.kill9();
    wait_for("lost the daemon");
    let d = Daemon::start(&data, &["--listen", &addr]);
    let (_, again) = d.call("POST", "/v1/tasks/hello/run?wait=true", None);
    let again_id = again["id"].as_str().unwrap().to_string();
    wait_for("reconnected");
    let line = wait_for(&again_id);
    assert!(
        line.starts_with("out: ") && line.contains("hello succeeded"),
        "{line}"
    );
    let _ = follower.kill();
    let _ = follower.wait();
}

#[test]
fn every_command_answers_as_a_table_or_json_and_serve_help_is_the_servers() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("data"), &[]);
    let help = ok(sundial(None, &["serve", "--help"], &[]));
    for client in ["--server", "--token", "--ca-file", "--json"] {
        assert!(!help.contains(client), "serve --help lists {client}:\n{help}");
    }
    assert!(help.contains("--tls-cert") && help.contains("--listen"), "{help}");
    let task_help = ok(sundial(None, &["task", "--help"], &[]));
    assert!(
        task_help.contains("--server") && task_help.contains("--json"),
        "{task_help}"
    );

    ok(sundial(
        Some(&d),
        &["task", "create", "t", "--plugin", "echo"],
        &[],
    ));
    ok(sundial(
        Some(&d),
        &["schedule", "create", "s", "--cron", "0 3 * * *"],
        &[],
    ));
    ok(sundial(Some(&d), &["schedule", "attach", "s", "t"], &[]));
    // `get` is a key/value view by default (names beside ids), JSON with --json.
    let view = ok(sundial(Some(&d), &["schedule", "get", "s"], &[]));
    assert!(
        view.lines()
            .any(|l| l.starts_with("task_names") && l.contains("[\"t\"]")),
        "{view}"
    );
    assert!(
        view.lines()
            .any(|l| l.starts_with("summary") && l.contains("at 03:00")),
        "{view}"
    );
    let json: Value =
        serde_json::from_str(&ok(sundial(Some(&d), &["schedule", "get", "s", "--json"], &[]))).unwrap();
    assert_eq!(json["task_names"], json!(["t"]));
    // Changes report as a line, or as JSON.
    let out: Value =
        serde_json::from_str(&ok(sundial(Some(&d), &["schedule", "pause", "s", "--json"], &[]))).unwrap();
    assert_eq!(out, json!({"paused": "schedule", "name": "s"}));
    assert_eq!(
        ok(sundial(Some(&d), &["schedule", "resume", "s"], &[])),
        "resumed schedule s\n"
    );
    // The audit names what changed.
    let audit = ok(sundial(Some(&d), &["audit", "--noun", "task"], &[]));
    assert!(audit.lines().nth(1).is_some_and(|l| l.contains(" t ")), "{audit}");
}

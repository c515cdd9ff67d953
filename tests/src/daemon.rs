//! A `sundial serve` process under test: started on a loopback port with its own data
//! directory, driven over HTTP with its admin token, killed with SIGKILL.

use crate::{raw_http, sundial_bin, wasm};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The compile cache the suite's daemons share: beside the `sundial` binary under
/// test, so `cargo clean` removes it.
pub fn shared_compile_cache() -> PathBuf {
    sundial_bin().with_file_name("test-compile-cache")
}

/// A `sundial serve` process on a loopback port with its own data directory.
pub struct Daemon {
    /// The child process.
    pub child: std::process::Child,
    /// `127.0.0.1:PORT` it listens on.
    pub addr: String,
    /// The admin token it created.
    pub token: String,
    /// Its data directory.
    pub data: PathBuf,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// Start the daemon on `data` (created if needed) and wait until it listens.
    pub fn start(data: &Path, extra: &[&str]) -> Daemon {
        Daemon::start_with_env(data, extra, &[])
    }

    /// [`Daemon::start`] with extra environment variables for the daemon process.
    pub fn start_with_env(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::try_start(data, extra, env).unwrap_or_else(|log| panic!("the daemon did not start:\n{log}"))
    }

    /// Start the daemon; when it exits before listening, what it wrote to stderr.
    pub fn try_start(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Result<Daemon, String> {
        Daemon::spawn(data, extra, env, None)
    }

    /// [`Daemon::start`] with its open-file limit (`RLIMIT_NOFILE`) set to `soft` and
    /// `hard` before it runs.
    pub fn start_with_nofile(data: &Path, extra: &[&str], soft: u64, hard: u64) -> Daemon {
        Daemon::spawn(data, extra, &[], Some((soft, hard)))
            .unwrap_or_else(|log| panic!("the daemon did not start:\n{log}"))
    }

    fn spawn(
        data: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        nofile: Option<(u64, u64)>,
    ) -> Result<Daemon, String> {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let mut command = std::process::Command::new(sundial_bin());
        command.args(["serve", "--data"]).arg(data);
        // A free port unless the test names one.
        if !extra.contains(&"--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        // The PostgreSQL pass: a database per data directory, unless the test names a store.
        if crate::pg::postgres_pass() && !extra.contains(&"--store") {
            command.args(["--store", &crate::pg::database_for(data)]);
        }
        // One compile cache for every daemon of the suite, so each plugin is compiled
        // once per suite instead of at every new data directory's first start (its
        // entries are named by digest and engine fingerprint and written atomically).
        // A test of the cache itself names its own, by flag or environment.
        if !extra.contains(&"--compile-cache") && !env.iter().any(|(k, _)| *k == "SUNDIAL_COMPILE_CACHE") {
            command.arg("--compile-cache").arg(shared_compile_cache());
        }
        command
            .args(extra)
            .envs(env.iter().copied())
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null());
        if let Some((soft, hard)) = nofile {
            let limit = libc::rlimit {
                rlim_cur: soft as libc::rlim_t,
                rlim_max: hard as libc::rlim_t,
            };
            // SAFETY: between fork and exec only setrlimit runs, which is
            // async-signal-safe and touches nothing of the parent.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = command.spawn().expect("start sundial serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = std::io::BufReader::new(stderr).lines();
        let mut addr = None;
        let mut early = Vec::new();
        for line in lines.by_ref() {
            let line = line.expect("read daemon stderr");
            if let Some(found) = listening_address(&line) {
                addr = Some(found);
                early.push(line);
                break;
            }
            early.push(line);
        }
        let Some(addr) = addr else {
            let status = child.wait().expect("reap the daemon");
            return Err(format!("{}\n(exit: {status})", early.join("\n")));
        };
        // Keep draining stderr (so the daemon never blocks on a full pipe) into a buffer
        // tests can read.
        let stderr_lines = Arc::new(Mutex::new(early));
        let sink = stderr_lines.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().expect("stderr buffer").push(line);
            }
        });
        let token = std::fs::read_to_string(data.join("admin.token"))
            .expect("admin token")
            .trim()
            .to_string();
        Ok(Daemon {
            child,
            addr,
            token,
            data: data.to_path_buf(),
            stderr: stderr_lines,
        })
    }

    /// Send a request with the admin token; returns (status, JSON body or Null).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.call_as(Some(&self.token), method, path, body)
    }

    /// Send a request with `token` (or none); returns (status, JSON body, null for an
    /// empty body, or the text of one that is not JSON).
    pub fn call_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut headers = String::new();
        if let Some(t) = token {
            headers.push_str(&format!("authorization: Bearer {t}\r\n"));
        }
        if !body.is_empty() {
            headers.push_str("content-type: application/json\r\n");
        }
        let (status, text) = raw_http(&self.addr, method, path, &headers, body.as_bytes());
        // An empty body is null; a body that is not JSON comes back as a string (never
        // silently as null, which would pass any "field is absent" check).
        let value = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        (status, value)
    }

    /// Send a request with the admin token; asserts the answer has exactly `status`
    /// (showing the request and body when not) and returns its body.
    #[track_caller]
    pub fn expect(
        &self,
        status: u16,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> serde_json::Value {
        let (got, value) = self.call(method, path, body);
        assert_eq!(got, status, "{method} {path}: {value}");
        value
    }

    /// POST `spec` to `path` (a collection such as `/v1/tasks`), which must answer 201
    /// Created; returns what was created.
    #[track_caller]
    pub fn create(&self, path: &str, spec: serde_json::Value) -> serde_json::Value {
        self.expect(201, "POST", path, Some(&spec))
    }

    /// PATCH `path` with `changes`, which must answer 200 OK; returns the updated object.
    #[track_caller]
    pub fn patch(&self, path: &str, changes: serde_json::Value) -> serde_json::Value {
        self.expect(200, "PATCH", path, Some(&changes))
    }

    /// Plugins the daemon loaded from `from` (`compile`, `disk`) since it started: its
    /// `sundial_plugin_loads_total{from}` on `/metrics`.
    pub fn plugin_loads(&self, from: &str) -> f64 {
        let (_, text) = self.call("GET", "/metrics", None);
        let text = text.as_str().map(str::to_string).unwrap_or_default();
        crate::metric(&text, &format!("sundial_plugin_loads_total{{from=\"{from}\"}}"))
    }

    /// Start a manual run of `task` with `params` and wait for it (must answer 200).
    #[track_caller]
    pub fn run_wait(&self, task: &str, params: serde_json::Value) -> serde_json::Value {
        let body = serde_json::json!({ "params": params });
        self.expect(
            200,
            "POST",
            &format!("/v1/tasks/{task}/run?wait=true"),
            Some(&body),
        )
    }

    /// Install the component built from `package` as plugin `name`; `extra` adds fields
    /// to the request (grants, limits). Returns (status, body).
    pub fn install_plugin(
        &self,
        name: &str,
        package: &str,
        extra: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        use base64::Engine as _;
        let bytes = std::fs::read(wasm(package)).expect("built component");
        let mut body = serde_json::json!({
            "name": name,
            "wasm_base64": base64::engine::general_purpose::STANDARD.encode(bytes),
        });
        if let (serde_json::Value::Object(b), serde_json::Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        self.call("POST", "/v1/plugins", Some(&body))
    }

    /// GET each of `paths`, which must all answer 200; (path, body) of each, in order.
    #[track_caller]
    pub fn read_all<'a>(&self, paths: &[&'a str]) -> Vec<(&'a str, serde_json::Value)> {
        paths
            .iter()
            .map(|path| (*path, self.expect(200, "GET", path, None)))
            .collect()
    }

    /// Set secret `name` to `value`, which must answer `status` (201 when new, 200 when
    /// replaced); returns its metadata.
    #[track_caller]
    pub fn put_secret(&self, status: u16, name: &str, value: &str) -> serde_json::Value {
        let body = serde_json::json!({ "value": value });
        self.expect(status, "PUT", &format!("/v1/secrets/{name}"), Some(&body))
    }

    /// Attach `task` to `schedule` (must answer 200).
    #[track_caller]
    pub fn attach(&self, schedule: &str, task: &str) -> serde_json::Value {
        let body = serde_json::json!({ "task": task });
        self.expect(
            200,
            "POST",
            &format!("/v1/schedules/{schedule}/tasks"),
            Some(&body),
        )
    }

    /// [`Daemon::install_plugin`] that must answer 201 Created; returns the plugin.
    #[track_caller]
    pub fn install_ok(&self, name: &str, package: &str, extra: serde_json::Value) -> serde_json::Value {
        let (status, plugin) = self.install_plugin(name, package, extra);
        assert_eq!(status, 201, "installing {name} from {package}: {plugin}");
        plugin
    }

    /// Install the hostile test fixture as plugin `hostile` ([`Daemon::install_ok`]).
    #[track_caller]
    pub fn install_hostile(&self, extra: serde_json::Value) -> serde_json::Value {
        self.install_ok("hostile", "sundial-fixture-hostile", extra)
    }

    /// Every run matching `query` (e.g. `task=t&cause=schedule`), following cursors.
    pub fn all_runs(&self, query: &str) -> Vec<serde_json::Value> {
        self.all_pages(&format!("/v1/runs?{query}"), "runs")
    }

    /// Every item of the paginated list at `path` (`key` holds a page's items),
    /// following cursors, a thousand at a time.
    pub fn all_pages(&self, path: &str, key: &str) -> Vec<serde_json::Value> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        let sep = if path.contains('?') { '&' } else { '?' };
        loop {
            let page_path = match &cursor {
                Some(c) => format!("{path}{sep}limit=1000&cursor={c}"),
                None => format!("{path}{sep}limit=1000"),
            };
            let (status, page) = self.call("GET", &page_path, None);
            assert_eq!(status, 200, "GET {page_path}: {page}");
            all.extend(page[key].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return all,
            }
        }
    }

    /// Move the daemon's test clock (`--test-clock`) to `to`; returns once every slot and
    /// timer due by then is recorded.
    pub fn set_clock(&self, to: &str) {
        let (status, v) = self.call("POST", "/v1/clock", Some(&serde_json::json!({ "to": to })));
        assert_eq!(status, 200, "POST /v1/clock to {to}: {v}");
        assert_eq!(v["manual"], true, "{v}");
        assert_eq!(
            crate::instant(&v["now"]),
            crate::instant(&serde_json::json!(to)),
            "the clock stands where it was moved: {v}"
        );
    }

    /// (slot, status) of every scheduled run of `task`, oldest slot first.
    pub fn schedule_slots(&self, task: &str) -> Vec<(chrono::DateTime<chrono::Utc>, String)> {
        let mut out: Vec<_> = self
            .all_runs(&format!("task={task}&cause=schedule"))
            .iter()
            .map(|r| {
                (
                    crate::instant(&r["cause"]["slot"]),
                    r["status"].as_str().expect("status").to_string(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Slots of `task` whose scheduled runs were started (not skipped), oldest first.
    pub fn fired(&self, task: &str) -> Vec<chrono::DateTime<chrono::Utc>> {
        self.slots_where(task, |status| status != "skipped")
    }

    /// Slots of `task` recorded as skipped (missed), oldest first.
    pub fn skipped(&self, task: &str) -> Vec<chrono::DateTime<chrono::Utc>> {
        self.slots_where(task, |status| status == "skipped")
    }

    fn slots_where(&self, task: &str, keep: impl Fn(&str) -> bool) -> Vec<chrono::DateTime<chrono::Utc>> {
        self.schedule_slots(task)
            .into_iter()
            .filter(|(_, status)| keep(status))
            .map(|(slot, _)| slot)
            .collect()
    }

    /// What the daemon wrote to stderr so far (its log).
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Run the `sundial` CLI against this daemon (its URL and admin token).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(sundial_bin())
            .args(args)
            .env("SUNDIAL_URL", format!("http://{}", self.addr))
            .env("SUNDIAL_TOKEN", &self.token)
            .output()
            .expect("run sundial")
    }

    /// [`Daemon::cli`] that must succeed; its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM the daemon and wait (up to 30 s) until it has exited.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon did not stop on SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// SIGKILL the daemon and reap it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in the daemon's `sundial listening on http(s)://ADDR` log line (text or
/// JSON format), if this is that line.
pub fn listening_address(line: &str) -> Option<String> {
    let at = line.find("sundial listening on ")? + "sundial listening on ".len();
    let url = &line[at..];
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"')
        .unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

//! PostgreSQL for the suites. `scripts/test` runs the suites that matter for semantics
//! a second time with `SUNDIAL_TEST_STORE=postgres`: then every daemon a test starts
//! stores in a database of its own on the PostgreSQL server at `SUNDIAL_TEST_PG`
//! (default `postgres://postgres@127.0.0.1:5432`), one per data directory, so a
//! daemon restarted on the same directory finds its state. The databases are dropped
//! when the test binary exits.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Mutex, Once};

/// The environment variable that selects the backend of a pass: `postgres`, or unset
/// (redb).
pub const STORE_ENV: &str = "SUNDIAL_TEST_STORE";

/// True on the PostgreSQL pass.
pub fn postgres_pass() -> bool {
    std::env::var(STORE_ENV).is_ok_and(|v| v == "postgres")
}

/// True, with a note on stderr, on the PostgreSQL pass: for a test of something only
/// the redb store has (its file, a full disk, a backup archive), which returns early.
pub fn redb_only(what: &str) -> bool {
    let skip = postgres_pass();
    if skip {
        eprintln!("not on the PostgreSQL pass: {what} is redb's");
    }
    skip
}

/// The server's URL, without a database.
pub fn server_url() -> String {
    std::env::var("SUNDIAL_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

static CREATED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
static AT_EXIT: Once = Once::new();

/// Run `sql` on the server's `postgres` database with psql; panics with psql's
/// message when it fails.
pub fn psql(sql: &str) -> String {
    psql_at(&format!("{}/postgres", server_url()), sql)
}

/// Run `sql` on the database at `url` with psql; panics with psql's message when it
/// fails.
pub fn psql_at(url: &str, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-tAqc", sql])
        .output()
        .expect("run psql (PostgreSQL's client)");
    assert!(
        out.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A fresh database (created now) that nothing else uses; dropped at exit.
pub fn fresh_database(tag: &str) -> String {
    let name = format!("sundial_t_{tag}_{}", sundial_core::ids::new_id().to_lowercase());
    create(&name);
    format!("{}/{name}", server_url())
}

/// The URL of the database of the daemon data directory `data`, created on first use.
pub fn database_for(data: &Path) -> String {
    let digest = sundial_core::hash::digest(data.to_string_lossy().as_bytes());
    let name = format!("sundial_t_{}", &digest[..20]);
    if !CREATED.lock().unwrap().contains(&name) {
        let exists = psql(&format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"));
        if exists != "1" {
            create(&name);
        }
    }
    format!("{}/{name}", server_url())
}

fn create(name: &str) {
    psql(&format!("CREATE DATABASE {name}"));
    CREATED.lock().unwrap().insert(name.to_string());
    AT_EXIT.call_once(|| {
        // SAFETY: registers a plain `extern "C" fn` with no captured state.
        unsafe {
            libc::atexit(drop_created);
        }
    });
}

/// Drop every database this process created (daemons still connected are cut off).
extern "C" fn drop_created() {
    let names: Vec<String> = CREATED
        .lock()
        .map(|c| c.iter().cloned().collect())
        .unwrap_or_default();
    for name in names {
        let _ = std::process::Command::new("psql")
            .arg(format!("{}/postgres", server_url()))
            .args(["-tAqc", &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")])
            .output();
    }
}

/// A PostgreSQL server of a test's own (Debian's `initdb` and `pg_ctl`, found under
/// `/usr/lib/postgresql/*/bin`), for tests that stop and start the server. Its data
/// lives in a temporary directory; it listens on a free loopback port and is stopped
/// when this is dropped.
pub struct PrivateServer {
    bin: std::path::PathBuf,
    data: tempfile::TempDir,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl PrivateServer {
    /// Make and start one.
    pub fn start() -> PrivateServer {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("Debian's PostgreSQL server binaries under /usr/lib/postgresql")
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let data = tempfile::tempdir().expect("a directory for the server");
        // As root, the server runs as the postgres user (initdb refuses root).
        if as_root() {
            std::process::Command::new("chown")
                .args(["-R", "postgres"])
                .arg(data.path())
                .status()
                .expect("chown");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = PrivateServer { bin, data, port };
        server.run(
            "initdb",
            &["-D", &server.pgdata(), "-U", "postgres", "--auth=trust", "-N"],
        );
        server.up();
        server
    }

    fn pgdata(&self) -> String {
        self.data.path().join("pg").to_string_lossy().into_owned()
    }

    fn command(&self, tool: &str) -> std::process::Command {
        let program = self.bin.join(tool);
        if as_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            std::process::Command::new(&program)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self
            .command(tool)
            .args(args)
            .output()
            .expect("run a PostgreSQL tool");
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Start the server (again) and wait until it answers.
    pub fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on",
            self.port,
            self.data.path().display()
        );
        let log = self.data.path().join("server.log").to_string_lossy().into_owned();
        self.run(
            "pg_ctl",
            &["-D", &self.pgdata(), "-l", &log, "-w", "-o", &options, "start"],
        );
    }

    /// Stop the server the way a crash does (`pg_ctl stop -m immediate`: no shutdown
    /// checkpoint, connections cut; the next start recovers from the WAL).
    pub fn crash(&self) {
        self.run("pg_ctl", &["-D", &self.pgdata(), "-m", "immediate", "stop"]);
    }

    /// The URL of database `db` on it.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", &self.pgdata(), "-m", "immediate", "stop"])
            .output();
    }
}

fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

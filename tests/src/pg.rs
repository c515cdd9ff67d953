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
    let out = std::process::Command::new("psql")
        .arg(format!("{}/postgres", server_url()))
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

//! Where the artifacts under test are: the compiled wasm plugins and the `sundial`
//! binary, which is checked to be at least as new as every source it is built from, so
//! a test never passes against old code (`cargo test -p sundial-tests --test chaos`
//! does not rebuild the binary by itself).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

/// Path of a compiled wasm plugin by crate name, e.g. `sundial-fixture-hostile`.
pub fn wasm(package: &str) -> PathBuf {
    let path = PathBuf::from(env!("SUNDIAL_WASM_DIR")).join(format!("{}.wasm", package.replace('-', "_")));
    assert!(
        path.exists(),
        "{} is missing: the tests crate's build script builds it",
        path.display()
    );
    path
}

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

/// What the `sundial` binary is built from, relative to the workspace root: `host`
/// holds the binary and every crate it is made of (core, store, runtime, engine,
/// server with its templates and assets).
const BINARY_INPUTS: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    "host",
    "sdk/Cargo.toml",
    "sdk/src",
    // The Python and JavaScript SDKs are embedded for `sundial plugin build`.
    "sdk/python/sundial",
    "sdk/js/index.js",
    "sdk/js/index.d.ts",
    "sdk/js/package.json",
    "wit",
    "plugins",
];

/// The newest modification time under `path` (a file or a directory, recursively,
/// skipping `target` directories), with the file it belongs to.
fn newest(path: &Path) -> Option<(SystemTime, PathBuf)> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return Some((meta.modified().ok()?, path.to_path_buf()));
    }
    let mut best: Option<(SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(path).ok()?.flatten() {
        if entry.file_name() == "target" {
            continue;
        }
        if let Some(found) = newest(&entry.path())
            && best.as_ref().is_none_or(|(t, _)| found.0 > *t)
        {
            best = Some(found);
        }
    }
    best
}

/// The source file newer than `bin`, if any.
fn newer_source(bin: &Path) -> Option<PathBuf> {
    let built = std::fs::metadata(bin).and_then(|m| m.modified()).ok()?;
    let root = workspace_root();
    BINARY_INPUTS
        .iter()
        .filter_map(|p| newest(&root.join(p)))
        .filter(|(t, _)| *t > built)
        .max()
        .map(|(_, p)| p)
}

/// Path of the `sundial` binary in the profile directory of the running test (or
/// tool), built by `cargo test` at the workspace root. When it is missing or older than
/// a source file it is built from, it is built here with `cargo build -p sundial` in
/// the same profile, so what the test runs is the code in the tree.
pub fn sundial_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        let name = format!("sundial{}", std::env::consts::EXE_SUFFIX);
        // target/<profile>/deps/<test> or target/<profile>/<tool>
        let dirs: Vec<&Path> = exe.ancestors().skip(1).take(2).collect();
        let profile_dir = dirs
            .iter()
            .find(|d| d.join(&name).exists())
            .or_else(|| {
                dirs.iter()
                    .find(|d| d.file_name().is_some_and(|n| n != "deps" && n != "examples"))
            })
            .expect("a profile directory")
            .to_path_buf();
        let bin = profile_dir.join(&name);
        let reason = if !bin.exists() {
            Some(format!("{} is missing", bin.display()))
        } else {
            newer_source(&bin).map(|src| format!("{} is older than {}", bin.display(), src.display()))
        };
        if let Some(reason) = reason {
            build(&profile_dir, &reason);
            // Cargo decides what is fresh; a file newer than the binary that is no
            // input of it (cargo rebuilt nothing) must not trigger this again in every
            // test process.
            if newer_source(&bin).is_some() {
                std::fs::File::options()
                    .write(true)
                    .open(&bin)
                    .and_then(|f| f.set_modified(SystemTime::now()))
                    .unwrap_or_else(|e| panic!("marking {} current: {e}", bin.display()));
            }
        }
        bin
    })
    .clone()
}

/// Build the binary into `profile_dir` (`target/debug`, `target/release`, ...).
fn build(profile_dir: &Path, reason: &str) {
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => "dev",
    };
    let target_dir = profile_dir.parent().expect("target directory");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("sundial-tests: {reason}; running `cargo build -p sundial --bin sundial --profile {profile}`");
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "-p", "sundial", "--bin", "sundial", "--profile", profile])
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .expect("run cargo build");
    assert!(
        status.success(),
        "{reason}, and `cargo build -p sundial` failed ({status}): the tests cannot run against it"
    );
}

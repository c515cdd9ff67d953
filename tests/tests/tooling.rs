//! What lives outside the test command's own build but must not rot: the cargo-fuzz
//! targets in `fuzz/` (their own workspace) compile, and every committed seed corpus
//! holds seeds. (The criterion benches run once each in `cargo test`: `test = true`.)

use std::process::Command;
use sundial_tests::workspace_root;

#[test]
fn the_fuzz_targets_compile() {
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Its own target directory: the outer build's is in use by this very test run.
    let target = root.join("target").join("fuzz-check");
    eprintln!("checking the fuzz targets: cargo check --manifest-path fuzz/Cargo.toml --bins --locked");
    let out = Command::new(cargo)
        .current_dir(&root)
        .args([
            "check",
            "--manifest-path",
            "fuzz/Cargo.toml",
            "--bins",
            "--locked",
            "--target-dir",
        ])
        .arg(&target)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("run cargo check");
    assert!(
        out.status.success(),
        "the fuzz targets do not compile (fix them, or `cargo update --manifest-path fuzz/Cargo.toml` \
         after a dependency change):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_fuzz_target_has_committed_seeds() {
    let root = workspace_root().join("fuzz");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let targets: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("path = \"fuzz_targets/"))
        .filter_map(|l| l.strip_suffix(".rs\""))
        .collect();
    assert!(targets.len() >= 6, "{targets:?}");
    for target in targets {
        let dir = root.join("corpus").join(target);
        let seeds: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter(|e| e.metadata().is_ok_and(|m| m.is_file() && m.len() > 0))
            .collect();
        assert!(!seeds.is_empty(), "fuzz/corpus/{target} holds no seed");
    }
}

//! What lives outside the test command's own build but must not rot: the cargo-fuzz
//! targets in `fuzz/` (their own workspace) compile against today's crates and pass on
//! every committed seed, every target has seeds, and `fuzz/Cargo.lock` is current.
//! (The criterion benches run once each in `cargo test`: `test = true`.)
//!
//! The targets are compiled here, in this workspace's build, with a stand-in for
//! `libfuzzer_sys::fuzz_target!` ([`sundial_tests::fuzz_target`]): checking the fuzz
//! workspace itself (`cargo check --manifest-path fuzz/Cargo.toml`) built every
//! dependency again in check mode, seven minutes of the suite on this machine, to learn
//! less than running the targets does.
#![allow(unused_attributes)] // each target's `#![no_main]`, here a module's

// The fuzz targets' `use libfuzzer_sys::fuzz_target;` finds the stand-in.
extern crate sundial_tests as libfuzzer_sys;

use std::path::Path;
use std::process::Command;
use sundial_tests::workspace_root;

#[rustfmt::skip] // formatted in its own workspace
#[path = "../../fuzz/fuzz_targets/cloudevent.rs"]
mod cloudevent;
#[rustfmt::skip] // formatted in its own workspace
#[path = "../../fuzz/fuzz_targets/declarative.rs"]
mod declarative;
#[rustfmt::skip] // formatted in its own workspace
#[path = "../../fuzz/fuzz_targets/filter.rs"]
mod filter;
#[rustfmt::skip] // formatted in its own workspace
#[path = "../../fuzz/fuzz_targets/plugin.rs"]
mod plugin;
#[rustfmt::skip] // formatted in its own workspace
#[path = "../../fuzz/fuzz_targets/schedule.rs"]
mod schedule;
#[rustfmt::skip] // formatted in its own workspace
#[path = "../../fuzz/fuzz_targets/signature.rs"]
mod signature;

/// Every target, by the name `fuzz/Cargo.toml` gives its file.
const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("cloudevent", cloudevent::run_one),
    ("declarative", declarative::run_one),
    ("filter", filter::run_one),
    ("plugin", plugin::run_one),
    ("schedule", schedule::run_one),
    ("signature", signature::run_one),
];

/// The targets `fuzz/Cargo.toml` declares.
fn declared_targets(fuzz: &Path) -> Vec<String> {
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
    manifest
        .lines()
        .filter_map(|l| l.strip_prefix("path = \"fuzz_targets/"))
        .filter_map(|l| l.strip_suffix(".rs\""))
        .map(str::to_string)
        .collect()
}

/// The committed seeds of `target`: non-empty files in `fuzz/corpus/TARGET`.
fn seeds(fuzz: &Path, target: &str) -> Vec<std::path::PathBuf> {
    let dir = fuzz.join("corpus").join(target);
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| e.metadata().is_ok_and(|m| m.is_file() && m.len() > 0))
        .map(|e| e.path())
        .collect();
    seeds.sort();
    seeds
}

#[test]
fn every_fuzz_target_passes_on_each_of_its_committed_seeds() {
    let fuzz = workspace_root().join("fuzz");
    let mut declared = declared_targets(&fuzz);
    declared.sort();
    let here: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        declared, here,
        "fuzz/Cargo.toml and this test's TARGETS list different targets: add the new one here"
    );
    for (target, run_one) in TARGETS {
        let seeds = seeds(&fuzz, target);
        assert!(!seeds.is_empty(), "fuzz/corpus/{target} holds no seed");
        for seed in seeds {
            let bytes = std::fs::read(&seed).unwrap();
            // A panic names the seed: the target failed on committed input.
            eprintln!("fuzz target {target}: {}", seed.display());
            run_one(&bytes);
        }
    }
}

#[test]
fn the_fuzz_workspace_lock_file_is_current() {
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // `fetch --locked` resolves the fuzz workspace and fails when its Cargo.lock would
    // change (after a dependency change in the crates it uses), without compiling.
    let out = Command::new(cargo)
        .current_dir(&root)
        .args(["fetch", "--locked", "--manifest-path", "fuzz/Cargo.toml"])
        .output()
        .expect("run cargo fetch");
    assert!(
        out.status.success(),
        "fuzz/Cargo.lock is not current (run `cargo update --manifest-path fuzz/Cargo.toml --workspace`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

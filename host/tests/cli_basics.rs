//! The binary's own basics: version, help and usage errors. (Being an integration test
//! of this package also makes `cargo test` build `target/<profile>/sundial`, which the
//! workspace-level tests in `tests/` drive.)

use std::process::Command;

fn sundial(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sundial"))
        .args(args)
        .output()
        .expect("run sundial")
}

#[test]
fn version_and_help_exit_0() {
    let out = sundial(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = sundial(&["plugin", "run", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--allow-host"));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["frobnicate"][..],
        &["plugin", "run"],
        &["plugin", "run", "echo", "--fuel", "lots"],
    ] {
        let out = sundial(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?} explains itself");
    }
}

#[test]
fn bundled_plugins_are_embedded() {
    let out = sundial(&["plugin", "inspect", "echo", "--no-cache"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sundial:plugin/action@0.1.0"));
}

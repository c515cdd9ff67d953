//! Runs the built component with `sundial plugin run` (the real sandbox). Build first
//! (`sundial plugin build`), then `cargo test`. The `sundial` binary is taken from
//! $SUNDIAL, else from PATH.

use std::process::{Command, Output};

fn run(params: &str) -> Output {
    let wasm = concat!(env!("CARGO_MANIFEST_DIR"), "/build/{{name}}.wasm");
    let sundial = std::env::var("SUNDIAL").unwrap_or_else(|_| "sundial".into());
    Command::new(sundial)
        .args(["plugin", "run", wasm, "--params", params])
        .output()
        .expect("run sundial")
}

#[test]
fn greets_by_name() {
    let out = run(r#"{"name": "Ada"}"#);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"greeting": "hello, Ada"}));
    assert!(stderr.contains("greeting Ada"), "{stderr}");
}

#[test]
fn refuses_a_name_that_is_not_a_string() {
    let out = run(r#"{"name": 7}"#);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid"));
}

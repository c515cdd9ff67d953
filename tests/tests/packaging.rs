//! The systemd unit in `packaging/`: checked by `systemd-analyze verify` where it is
//! installed (with ExecStart pointed at the built binary), and its hardening options
//! present either way.

use std::process::Command;
use sundial_tests::{sundial_bin, workspace_root};

fn unit() -> String {
    std::fs::read_to_string(workspace_root().join("packaging/sundial.service"))
        .expect("packaging/sundial.service")
}

/// What `systemd-analyze verify` says about `text` (None when it is not installed).
fn verify(text: &str) -> Option<(bool, String)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sundial.service");
    std::fs::write(
        &path,
        text.replace("/usr/local/bin/sundial", &sundial_bin().display().to_string()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .ok()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), said))
}

#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let text = unit();
    for needed in [
        "ExecStart=/usr/local/bin/sundial serve",
        "DynamicUser=yes",
        "StateDirectory=sundial",
        "Environment=SUNDIAL_DATA=/var/lib/sundial",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "LimitNOFILE=",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(text.contains(needed), "the unit lacks {needed:?}");
    }
    assert!(
        !text.lines().any(|l| l.starts_with("MemoryDenyWriteExecute")),
        "wasmtime needs to write machine code"
    );
    match verify(&text) {
        None => eprintln!("systemd-analyze is not installed: only the options were checked"),
        Some((ok, said)) => {
            assert!(ok && said.trim().is_empty(), "systemd-analyze verify: {said}");
            // The check can fail: a misspelt key is reported.
            let (_, said) = verify(&text.replace("ProtectSystem=strict", "ProtectSistem=strict")).unwrap();
            assert!(said.contains("ProtectSistem"), "{said}");
        }
    }
}

// Shared by host/build.rs and tests/build.rs (through `include!`): compiles workspace
// crates to `wasm32-wasip2` components with a nested cargo, installing the target
// with rustup first when it is missing. Nobody has to run a separate script.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The wasm target every plugin is built for.
const WASM_TARGET: &str = "wasm32-wasip2";
/// Cargo profile (defined in the workspace Cargo.toml) used for plugins.
const WASM_PROFILE: &str = "plugin";

/// The workspace root: the parent of the crate running this build script.
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    manifest.parent().expect("crate lives inside the workspace").to_path_buf()
}

/// Install the wasm target with rustup when the toolchain lacks it.
fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if libdir.as_deref().is_some_and(|d| d.join("libstd").exists() || has_std(d)) {
        return;
    }
    // Said only here, when the target is really missing (cargo repeats a build
    // script's warnings on later builds until the script runs again).
    eprintln!("installing the {WASM_TARGET} target with rustup (it was missing)");
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .unwrap_or_else(|e| panic!("could not run `rustup target add {WASM_TARGET}`: {e}"));
    assert!(status.success(), "`rustup target add {WASM_TARGET}` failed with {status}");
    println!("cargo:warning=installed the {WASM_TARGET} target with rustup (it was missing)");
}

fn has_std(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
    })
}

/// Build `packages` for wasm32-wasip2 and return the directory holding the
/// `.wasm` files (named after the crate, with `-` turned into `_`).
fn build_wasm_packages(packages: &[&str], watch: &[&str]) -> PathBuf {
    let root = workspace_root();
    for path in watch {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    for path in ["sdk", "wit", "Cargo.toml", "Cargo.lock", "host/build/wasm.rs"] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("wasm");
    // host/build.rs and tests/build.rs may run at the same time: serialize them so two
    // `rustup target add` never race (the nested cargos would serialize anyway).
    std::fs::create_dir_all(&target_dir).expect("create target/wasm");
    let lock = std::fs::File::create(target_dir.join(".sundial-build.lock")).expect("create build lock");
    lock.lock().expect("lock target/wasm");
    ensure_wasm_target();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--target", WASM_TARGET, "--profile", WASM_PROFILE])
        .arg("--target-dir")
        .arg(&target_dir);
    for p in packages {
        cmd.args(["-p", p]);
    }
    // The outer build's flags (coverage, sanitizers, native target) must not leak in.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_LLVM_COV",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build the wasm plugins: {e}"));
    assert!(status.success(), "building the wasm plugins {packages:?} failed with {status}");
    target_dir.join(WASM_TARGET).join(WASM_PROFILE)
}

/// The path of the component built from crate `package`.
fn wasm_artifact(dir: &Path, package: &str) -> PathBuf {
    let path = dir.join(format!("{}.wasm", package.replace('-', "_")));
    assert!(path.exists(), "expected {} after building {package}", path.display());
    path
}

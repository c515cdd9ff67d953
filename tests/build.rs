//! Builds the test fixture plugins (and the bundled ones) for wasm32-wasip2 and tells
//! the tests where they are through `SUNDIAL_WASM_DIR`.

include!("../host/build/wasm.rs");

fn main() {
    let packages = [
        "sundial-fixture-hostile",
        "sundial-fixture-hello",
        "sundial-fixture-compat",
        "sundial-plugin-echo",
        "sundial-plugin-http-request",
        "sundial-plugin-json-formatter",
    ];
    let dir = build_wasm_packages(&packages, &["tests/fixtures", "plugins"]);
    for package in packages {
        wasm_artifact(&dir, package);
    }
    println!("cargo:rustc-env=SUNDIAL_WASM_DIR={}", dir.display());
}

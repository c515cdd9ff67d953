//! Builds the bundled plugins in `plugins/` for wasm32-wasip2 and embeds them in the
//! binary (see `src/bundled.rs`), so `sundial` ships with them and needs no files.

include!("build/wasm.rs");

/// (name the plugin is installed under, crate that builds it)
const BUNDLED: &[(&str, &str)] = &[
    ("echo", "sundial-plugin-echo"),
    ("email", "sundial-plugin-email"),
    ("http-request", "sundial-plugin-http-request"),
    ("json", "sundial-plugin-json-formatter"),
    ("template", "sundial-plugin-template-formatter"),
    ("slack", "sundial-plugin-slack-formatter"),
    ("teams", "sundial-plugin-teams-formatter"),
    ("vergeos", "sundial-plugin-vergeos"),
    ("pagerduty", "sundial-plugin-pagerduty-formatter"),
];

fn main() {
    let crates: Vec<&str> = BUNDLED.iter().map(|(_, c)| *c).collect();
    let dir = build_wasm_packages(&crates, &["plugins"]);
    let mut src = String::from(
        "/// Bundled plugins: (name, component bytes).\npub const BUNDLED: &[(&str, &[u8])] = &[\n",
    );
    for (name, krate) in BUNDLED {
        let path = wasm_artifact(&dir, krate);
        src.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    src.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("bundled.rs");
    std::fs::write(out, src).expect("write bundled.rs");
}

//! What `sundial plugin new` and `sundial plugin build` write: the project templates,
//! and the WIT contract and SDKs of this binary's version (so a project needs nothing
//! from the Sundial repository).

/// A file to write: its path inside the target folder, and its text.
pub(super) type File = (&'static str, &'static str);

macro_rules! files {
    ($($path:literal => $src:literal),* $(,)?) => {
        &[$(($path, include_str!($src))),*]
    };
}

/// `sundial:plugin@0.1.0` and the WASI packages it uses, into `.sundial/wit`.
pub(super) const WIT: &[File] = files! {
    "sundial.wit" => "../../../../wit/sundial.wit",
    "deps/cli.wit" => "../../../../wit/deps/cli.wit",
    "deps/clocks.wit" => "../../../../wit/deps/clocks.wit",
    "deps/filesystem.wit" => "../../../../wit/deps/filesystem.wit",
    "deps/http.wit" => "../../../../wit/deps/http.wit",
    "deps/io.wit" => "../../../../wit/deps/io.wit",
    "deps/random.wit" => "../../../../wit/deps/random.wit",
    "deps/sockets.wit" => "../../../../wit/deps/sockets.wit",
};

/// The Python SDK (`sdk/python`), into `.sundial/python`.
pub(super) const PYTHON_SDK: &[File] = files! {
    "sundial/__init__.py" => "../../../../sdk/python/sundial/__init__.py",
    "sundial/http.py" => "../../../../sdk/python/sundial/http.py",
    "sundial/py.typed" => "../../../../sdk/python/sundial/py.typed",
};

/// The JavaScript SDK (`sdk/js`), into `.sundial/js`.
pub(super) const JS_SDK: &[File] = files! {
    "package.json" => "../../../../sdk/js/package.json",
    "index.js" => "../../../../sdk/js/index.js",
    "index.d.ts" => "../../../../sdk/js/index.d.ts",
};

/// The Rust SDK (`sdk`), into `.sundial/rust` (with a manifest of its own: the
/// repository's inherits from the workspace).
pub(super) const RUST_SDK: &[File] = files! {
    "Cargo.toml" => "../../../templates/rust-sdk/Cargo.toml",
    "src/lib.rs" => "../../../../sdk/src/lib.rs",
    "src/config.rs" => "../../../../sdk/src/config.rs",
    "src/http.rs" => "../../../../sdk/src/http.rs",
    "src/message.rs" => "../../../../sdk/src/message.rs",
    "src/template.rs" => "../../../../sdk/src/template.rs",
    "src/webhook.rs" => "../../../../sdk/src/webhook.rs",
};

/// The Python project template (`{{name}}` is replaced by the plugin's name).
pub(super) const PYTHON_TEMPLATE: &[File] = files! {
    "sundial-plugin.toml" => "../../../templates/python/sundial-plugin.toml",
    "app.py" => "../../../templates/python/app.py",
    "test_app.py" => "../../../templates/python/test_app.py",
    ".gitignore" => "../../../templates/python/.gitignore",
};

/// The JavaScript project template.
pub(super) const JS_TEMPLATE: &[File] = files! {
    "sundial-plugin.toml" => "../../../templates/js/sundial-plugin.toml",
    "package.json" => "../../../templates/js/package.json",
    "src/index.js" => "../../../templates/js/src/index.js",
    "test/run.test.mjs" => "../../../templates/js/test/run.test.mjs",
    ".gitignore" => "../../../templates/js/.gitignore",
};

/// The Rust project template.
pub(super) const RUST_TEMPLATE: &[File] = files! {
    "sundial-plugin.toml" => "../../../templates/rust/sundial-plugin.toml",
    "Cargo.toml" => "../../../templates/rust/Cargo.toml",
    "src/lib.rs" => "../../../templates/rust/src/lib.rs",
    "tests/run.rs" => "../../../templates/rust/tests/run.rs",
    ".gitignore" => "../../../templates/rust/.gitignore",
};

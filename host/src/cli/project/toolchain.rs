//! The toolchains `sundial plugin build` drives, installing what is missing and saying
//! so on stderr:
//!
//! - **Python**: componentize-py [`COMPONENTIZE_PY`], installed with pip into a venv
//!   of its own under the toolchain folder (shared by every project).
//! - **JavaScript**: ComponentizeJS [`COMPONENTIZE_JS`] and jco [`JCO`] (pinned in the
//!   project's `package.json`; jco 1.35 fails with "failed to get path metadata"), and
//!   esbuild to bundle the sources with the SDK, installed with npm into the project.
//! - **Rust**: cargo with the wasm32-wasip2 target (added with rustup when missing).
//!
//! The toolchain folder is `$SUNDIAL_TOOLCHAINS`, else `$XDG_CACHE_HOME/sundial/
//! toolchains`, else `~/.cache/sundial/toolchains`.

use super::Manifest;
use std::path::{Path, PathBuf};
use std::process::Command;

/// componentize-py's version, from PyPI.
pub(crate) const COMPONENTIZE_PY: &str = "0.25.1";
/// ComponentizeJS's version, from npm (pinned in the JavaScript template).
pub(crate) const COMPONENTIZE_JS: &str = "0.23.0";
/// jco's version, from npm (pinned in the JavaScript template).
pub(crate) const JCO: &str = "1.34.0";

/// The ComponentizeJS version jco runs in project `dir`: its own nested copy when npm
/// nested one (jco 1.34 asks for ^0.22, so without the template's `overrides` it
/// gets 0.22 whatever the project pins), else the project's.
fn componentize_js_used(dir: &Path) -> Option<String> {
    let modules = dir.join("node_modules/@bytecodealliance");
    let nested = modules.join("jco/node_modules/@bytecodealliance/componentize-js/package.json");
    let manifest = std::fs::read(&nested)
        .or_else(|_| std::fs::read(modules.join("componentize-js/package.json")))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&manifest).ok()?;
    v["version"].as_str().map(str::to_string)
}

/// Where toolchains live.
pub(crate) struct Toolchains {
    dir: PathBuf,
}

fn say(msg: &str) {
    eprintln!("sundial plugin build: {msg}");
}

/// Run `cmd`, failing with what it printed when it fails.
fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: could not run {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Without the backtrace frames some tools print (`  12: symbol`, `at file:line`),
    // which would push the error itself out of the tail.
    let frame = |l: &&str| {
        let t = l.trim_start();
        t.starts_with("at ")
            || t.split_once(": ")
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let tail: Vec<&str> = text.lines().filter(|l| !frame(l)).rev().take(40).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!("{what} failed ({}):\n{}", out.status, tail.join("\n")))
}

/// An exclusive lock on `path` for as long as the returned file is open: two builds
/// installing one toolchain at once take turns.
fn lock(path: &Path) -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns; no memory is shared.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(format!(
            "locking {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(file)
}

impl Toolchains {
    /// The toolchain folder the environment names (see the module's doc).
    pub(crate) fn from_env() -> Toolchains {
        let dir = std::env::var_os("SUNDIAL_TOOLCHAINS")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("sundial/toolchains"))
            })
            .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/sundial/toolchains")))
            .unwrap_or_else(|| PathBuf::from(".sundial/toolchains"));
        // Absolute: the tools run with the project as their working directory.
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        Toolchains { dir }
    }

    /// componentize-py, installed into a venv when missing.
    fn componentize_py(&self) -> Result<PathBuf, String> {
        let venv = self.dir.join(format!("componentize-py-{COMPONENTIZE_PY}"));
        let bin = venv.join("bin/componentize-py");
        let done = venv.join(".installed");
        if done.exists() && bin.exists() {
            return Ok(bin);
        }
        let _lock = lock(&self.dir.join("componentize-py.lock"))?;
        if done.exists() && bin.exists() {
            return Ok(bin); // another build installed it meanwhile
        }
        let python = std::env::var("SUNDIAL_PYTHON").unwrap_or_else(|_| "python3".into());
        say(&format!(
            "componentize-py {COMPONENTIZE_PY} is missing: installing it with pip (from PyPI) into {}",
            venv.display()
        ));
        let _ = std::fs::remove_dir_all(&venv);
        run(
            Command::new(&python).args(["-m", "venv"]).arg(&venv),
            &format!("{python} -m venv (Python 3.11 or later with venv is needed)"),
        )?;
        run(
            Command::new(venv.join("bin/pip")).args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                &format!("componentize-py=={COMPONENTIZE_PY}"),
            ]),
            "pip install componentize-py",
        )?;
        std::fs::write(&done, COMPONENTIZE_PY).map_err(|e| format!("{}: {e}", done.display()))?;
        Ok(bin)
    }

    /// Build a Python project with componentize-py.
    pub(crate) fn build_python(&self, dir: &Path, m: &Manifest, output: &Path) -> Result<(), String> {
        let tool = self.componentize_py()?;
        let entry = m.plugin.entry.as_deref().unwrap_or("app");
        say(&format!(
            "componentize-py {COMPONENTIZE_PY}: {entry} -> {}",
            output.display()
        ));
        run(
            Command::new(tool)
                .current_dir(dir)
                .args(["-d", ".sundial/wit", "-w"])
                .arg(format!("sundial:plugin/{}", m.plugin.world.as_str()))
                .args(["componentize", entry, "-p", ".", "-p", ".sundial/python", "-o"])
                .arg(absolute(output)?),
            "componentize-py",
        )
    }

    /// Build a JavaScript (or TypeScript) project: npm install when the tools are
    /// missing, esbuild bundles the sources with the SDK, jco componentizes the bundle.
    pub(crate) fn build_js(&self, dir: &Path, m: &Manifest, output: &Path) -> Result<(), String> {
        let bin = dir.join("node_modules/.bin");
        let tools = ["jco", "esbuild"];
        if !tools.iter().all(|t| bin.join(t).exists()) {
            say(&format!(
                "installing the project's npm packages (ComponentizeJS {COMPONENTIZE_JS}, jco {JCO}, esbuild) with npm into {}",
                dir.join("node_modules").display()
            ));
            run(
                Command::new("npm").current_dir(dir).args([
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                ]),
                "npm install (Node.js 18 or later with npm is needed)",
            )?;
        }
        if let Some(found) = componentize_js_used(dir).filter(|v| v != COMPONENTIZE_JS) {
            say(&format!(
                "warning: jco uses ComponentizeJS {found}, not {COMPONENTIZE_JS}: an import call (log, kv, secret, a clock) \
                 costs about 0.09 ms under 0.22 against 0.004 ms under 0.23. Add \
                 \"overrides\": {{\"@bytecodealliance/componentize-js\": \"{COMPONENTIZE_JS}\"}} to package.json \
                 (as `sundial plugin new` writes it) and run npm install"
            ));
        }
        let entry = m.plugin.entry.as_deref().unwrap_or("src/index.js");
        let bundle = ".sundial/bundle.js";
        run(
            Command::new(bin.join("esbuild"))
                .current_dir(dir)
                .args([
                    entry,
                    "--bundle",
                    "--format=esm",
                    "--platform=neutral",
                    "--log-level=warning",
                    "--alias:sundial-plugin=./.sundial/js/index.js",
                    "--external:sundial:*",
                    "--external:wasi:*",
                ])
                .arg(format!("--outfile={bundle}")),
            "esbuild (bundling the sources)",
        )?;
        say(&format!(
            "jco componentize {JCO}: {entry} -> {}",
            output.display()
        ));
        let mut jco = Command::new(bin.join("jco"));
        jco.current_dir(dir).args([
            "componentize",
            bundle,
            "--wit",
            ".sundial/wit",
            "-n",
            m.plugin.world.as_str(),
        ]);
        if m.plugin.world == sundial_core::plugin::World::Formatter {
            // The engine's fetch imports wasi:http, which formatters are not given.
            jco.args(["--disable", "http", "fetch-event"]);
        }
        run(jco.arg("-o").arg(absolute(output)?), "jco componentize")
    }

    /// Build a Rust project with cargo for wasm32-wasip2.
    pub(crate) fn build_rust(&self, dir: &Path, _m: &Manifest, output: &Path) -> Result<(), String> {
        const TARGET: &str = "wasm32-wasip2";
        let installed = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| l.trim() == TARGET)
            })
            .unwrap_or(true); // no rustup: let cargo say what is missing
        if !installed {
            say(&format!(
                "the {TARGET} target is missing: installing it with rustup"
            ));
            run(
                Command::new("rustup").args(["target", "add", TARGET]),
                "rustup target add",
            )?;
        }
        let cargo_toml = std::fs::read_to_string(dir.join("Cargo.toml"))
            .map_err(|e| format!("{}: {e}", dir.join("Cargo.toml").display()))?;
        let doc: toml::Table = toml::from_str(&cargo_toml).map_err(|e| format!("Cargo.toml: {e}"))?;
        let krate = doc
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .ok_or("Cargo.toml: no package.name")?
            .replace('-', "_");
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.join("target"));
        say(&format!(
            "cargo build --release --target {TARGET} -> {}",
            output.display()
        ));
        run(
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .current_dir(dir)
                .args(["build", "--release", "--target", TARGET, "--quiet"])
                .arg("--target-dir")
                .arg(&target_dir),
            "cargo build",
        )?;
        let built = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{krate}.wasm"));
        std::fs::copy(&built, output).map_err(|e| format!("{}: {e}", built.display()))?;
        Ok(())
    }
}

fn absolute(p: &Path) -> Result<PathBuf, String> {
    std::path::absolute(p).map_err(|e| format!("{}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(dir: &Path, at: &str, version: &str) {
        let path = dir.join(at);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            path,
            format!(r#"{{"name": "@bytecodealliance/componentize-js", "version": "{version}"}}"#),
        )
        .unwrap();
    }

    #[test]
    fn the_componentize_js_jco_runs_is_its_nested_copy_when_there_is_one() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(componentize_js_used(dir.path()), None, "nothing installed");
        manifest(
            dir.path(),
            "node_modules/@bytecodealliance/componentize-js/package.json",
            "0.23.0",
        );
        assert_eq!(componentize_js_used(dir.path()).as_deref(), Some("0.23.0"));
        // What npm does for jco 1.34 without the template's override.
        manifest(
            dir.path(),
            "node_modules/@bytecodealliance/jco/node_modules/@bytecodealliance/componentize-js/package.json",
            "0.22.0",
        );
        assert_eq!(componentize_js_used(dir.path()).as_deref(), Some("0.22.0"));
    }
}

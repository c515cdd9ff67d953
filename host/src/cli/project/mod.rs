//! Plugin projects: `sundial plugin new NAME --lang rust|python|js` writes a ready
//! project (manifest with limits and grants, source, a test), `sundial plugin build`
//! builds the one in the current folder with its language's toolchain, installing what
//! is missing (see [`toolchain`]). `sundial plugin install` with no file installs the
//! built component with the manifest's grants and limits.

mod embedded;
pub(crate) mod toolchain;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use sundial_core::grants::Grants;
use sundial_core::limits::Limits;
use sundial_core::plugin::World;

/// The manifest's file name, at the root of a project.
pub(crate) const MANIFEST: &str = "sundial-plugin.toml";

/// A plugin's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Lang {
    /// Rust, with the `sundial-sdk` crate (cargo, wasm32-wasip2).
    Rust,
    /// Python, with the `sundial` package (componentize-py).
    Python,
    /// JavaScript or TypeScript, with the `sundial-plugin` package (ComponentizeJS).
    Js,
}

/// `sundial-plugin.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    pub plugin: PluginSection,
    #[serde(default)]
    pub grants: Grants,
    #[serde(default)]
    pub limits: Limits,
}

/// `[plugin]` of the manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PluginSection {
    /// The name it is installed under.
    pub name: String,
    pub language: Lang,
    /// `action` or `formatter`.
    #[serde(default = "action")]
    pub world: World,
    #[serde(default)]
    pub description: String,
    /// The component's path, relative to the manifest [default: build/NAME.wasm].
    pub output: Option<PathBuf>,
    /// The source the build starts from [default: `app` (the Python module),
    /// `src/index.js` (JavaScript; `.ts` works too), the crate (Rust)].
    pub entry: Option<String>,
}

fn action() -> World {
    World::Action
}

impl Manifest {
    /// Read and check the manifest of the project at `dir`.
    pub(crate) fn load(dir: &Path) -> Result<Manifest, String> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "{}: {e} (run this in a plugin project, made with `sundial plugin new NAME --lang rust|python|js`)",
                path.display()
            )
        })?;
        let m: Manifest = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        sundial_core::task::validate_name("plugin.name", &m.plugin.name)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        m.grants
            .validate()
            .map_err(|e| format!("{}: grants.{e}", path.display()))?;
        m.limits
            .validate()
            .map_err(|e| format!("{}: limits.{e}", path.display()))?;
        // Paths stay inside the project, and nothing passed to a tool reads as an option.
        if let Some(out) = &m.plugin.output
            && (out.is_absolute()
                || out
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir)))
        {
            return Err(format!(
                "{}: plugin.output {:?} must be a path inside the project",
                path.display(),
                out.display()
            ));
        }
        if let Some(entry) = &m.plugin.entry
            && (entry.is_empty() || entry.starts_with('-') || entry.contains(".."))
        {
            return Err(format!(
                "{}: plugin.entry {entry:?} must name a module or file inside the project",
                path.display()
            ));
        }
        Ok(m)
    }

    /// Where the built component goes.
    pub(crate) fn output(&self, dir: &Path) -> PathBuf {
        match &self.plugin.output {
            Some(p) => dir.join(p),
            None => dir.join("build").join(format!("{}.wasm", self.plugin.name)),
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct NewArgs {
    /// The plugin's name (also the folder's, unless --dir says otherwise).
    name: String,
    /// Its language.
    #[arg(long, value_enum, default_value = "rust")]
    lang: Lang,
    /// The folder to create [default: ./NAME].
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// The project folder [default: the current one].
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

/// `sundial plugin new`.
pub(crate) fn new(args: NewArgs) -> Result<u8, (u8, String)> {
    let usage = |m: String| (super::EXIT_USAGE, m);
    sundial_core::task::validate_name("name", &args.name).map_err(|e| usage(e.to_string()))?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(usage(format!(
            "{}: exists and is not empty; choose another name or --dir",
            dir.display()
        )));
    }
    let template = match args.lang {
        Lang::Rust => embedded::RUST_TEMPLATE,
        Lang::Python => embedded::PYTHON_TEMPLATE,
        Lang::Js => embedded::JS_TEMPLATE,
    };
    let krate = crate_name(&args.name);
    for (path, text) in template {
        let text = text.replace("{{name}}", &args.name).replace("{{crate}}", &krate);
        write(&dir.join(path), &text).map_err(usage)?;
    }
    write_support(&dir, args.lang).map_err(usage)?;
    let (build, test) = match args.lang {
        Lang::Rust => ("sundial plugin build", "cargo test"),
        Lang::Python => ("sundial plugin build", "python3 -m unittest"),
        Lang::Js => ("sundial plugin build", "npm test"),
    };
    println!(
        "created {} plugin {} in {}\n  cd {}\n  {build}        # writes build/{}.wasm\n  {test}\n  sundial plugin install  # on the daemon, with the manifest's grants and limits",
        match args.lang {
            Lang::Rust => "a Rust",
            Lang::Python => "a Python",
            Lang::Js => "a JavaScript",
        },
        args.name,
        dir.display(),
        dir.display(),
        args.name,
    );
    Ok(0)
}

/// A Cargo package name for plugin `name` (Cargo refuses dots and a leading digit).
fn crate_name(name: &str) -> String {
    let name = name.replace('.', "-");
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("plugin-{name}")
    } else {
        name
    }
}

/// `.sundial/`: the WIT contract and this language's SDK, as this binary has them
/// (written again on every build, so a project follows the `sundial` it is built with).
fn write_support(dir: &Path, lang: Lang) -> Result<(), String> {
    let support = dir.join(".sundial");
    for (path, text) in embedded::WIT {
        write(&support.join("wit").join(path), text)?;
    }
    let (sub, files) = match lang {
        Lang::Rust => ("rust", embedded::RUST_SDK),
        Lang::Python => ("python", embedded::PYTHON_SDK),
        Lang::Js => ("js", embedded::JS_SDK),
    };
    for (path, text) in files {
        write(&support.join(sub).join(path), text)?;
    }
    Ok(())
}

/// Write `text` to `path` unless it already holds exactly that, making folders.
fn write(path: &Path, text: &str) -> Result<(), String> {
    if std::fs::read_to_string(path).is_ok_and(|t| t == text) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `sundial plugin build`.
pub(crate) fn build(args: BuildArgs) -> Result<u8, (u8, String)> {
    // Absolute: the tools run with the project as their working directory.
    let dir = &std::path::absolute(&args.dir)
        .map_err(|e| (super::EXIT_USAGE, format!("{}: {e}", args.dir.display())))?;
    let manifest = Manifest::load(dir).map_err(|e| (super::EXIT_USAGE, e))?;
    write_support(dir, manifest.plugin.language).map_err(|e| (super::EXIT_USAGE, e))?;
    let output = manifest.output(dir);
    if let Some(parent) = output.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| (super::EXIT_USAGE, format!("{}: {e}", parent.display())))?;
    }
    let started = std::time::Instant::now();
    let tools = toolchain::Toolchains::from_env();
    match manifest.plugin.language {
        Lang::Python => tools.build_python(dir, &manifest, &output),
        Lang::Js => tools.build_js(dir, &manifest, &output),
        Lang::Rust => tools.build_rust(dir, &manifest, &output),
    }
    .map_err(|e| (super::EXIT_PLUGIN_ERROR, e))?;
    let size = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
    println!(
        "built {} ({} bytes) in {:.1}s",
        output.display(),
        size,
        started.elapsed().as_secs_f64()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_manifest_parses_and_names_its_language() {
        for (lang, files) in [
            (Lang::Rust, embedded::RUST_TEMPLATE),
            (Lang::Python, embedded::PYTHON_TEMPLATE),
            (Lang::Js, embedded::JS_TEMPLATE),
        ] {
            let dir = tempfile::tempdir().unwrap();
            for (path, text) in files {
                let text = text
                    .replace("{{name}}", "greeter")
                    .replace("{{crate}}", "greeter");
                write(&dir.path().join(path), &text).unwrap();
            }
            let m = Manifest::load(dir.path()).unwrap();
            assert_eq!((m.plugin.language, m.plugin.name.as_str()), (lang, "greeter"));
            assert_eq!(m.output(dir.path()), dir.path().join("build/greeter.wasm"));
            let filled = |t: &str| t.replace("{{name}}", "x").replace("{{crate}}", "x");
            assert!(files.iter().all(|(_, t)| !filled(t).contains("{{")));
        }
    }

    #[test]
    fn crate_names_are_what_cargo_accepts() {
        assert_eq!(crate_name("hello"), "hello");
        assert_eq!(crate_name("my.plugin_x"), "my-plugin_x");
        assert_eq!(crate_name("9lives"), "plugin-9lives");
    }

    #[test]
    fn a_bad_manifest_is_refused_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("[plugin]\nname = \"x\"\nlanguage = \"cobol\"\n", "language"),
            (
                "[plugin]\nname = \"no spaces\"\nlanguage = \"js\"\n",
                "plugin.name",
            ),
            (
                "[plugin]\nname = \"x\"\nlanguage = \"js\"\n[limits]\nmemory_bytes = 1\n",
                "limits.memory_bytes",
            ),
            (
                "[plugin]\nname = \"x\"\nlanguage = \"js\"\nsurprise = 1\n",
                "surprise",
            ),
        ];
        for (text, needle) in cases {
            std::fs::write(dir.path().join(MANIFEST), text).unwrap();
            let e = Manifest::load(dir.path()).unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }
}

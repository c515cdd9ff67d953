//! Loading a plugin: validate the component, compile it (or fetch it from the compile
//! cache), find its world and imports, and pre-link it for fast instantiation.

use crate::cache::{CacheOutcome, digest};
use crate::compile::{ChildFailure, Compiler, EngineSettings, compile_in_child};

use crate::*;
use std::time::Instant;
use wasmtime::component::{Component, types::ComponentItem};

impl Runtime {
    /// Read and [`load`](Self::load) a component file.
    pub fn load_file(&self, path: &std::path::Path) -> Result<Plugin, LoadError> {
        let bytes = std::fs::read(path).map_err(|e| LoadError::Io(format!("{}: {e}", path.display())))?;
        self.load(&bytes)
    }

    /// Make sure the compile cache holds `bytes` compiled, without loading it into
    /// this process: compiles (where [`RuntimeConfig::compiler`](crate::RuntimeConfig)
    /// says) when the cache lacks it. `Hit` when it was there, `Miss` when compiled,
    /// `Disabled` (nothing done) without a cache. Blocking, like [`load`](Self::load).
    pub fn precompile(&self, bytes: &[u8]) -> Result<CacheOutcome, LoadError> {
        check_component(bytes)?;
        let Some(cache) = &self.inner.cache else {
            return Ok(CacheOutcome::Disabled);
        };
        let digest = digest(bytes);
        if cache.holds(&digest) {
            return Ok(CacheOutcome::Hit);
        }
        let (component, serialized) = self.compile(bytes)?;
        cache.keep(&digest, &component, serialized);
        Ok(CacheOutcome::Miss)
    }

    /// Validate, compile (or fetch from the compile cache) and pre-link a component.
    /// CPU-heavy on a cache miss: call it from a blocking context in async code.
    pub fn load(&self, bytes: &[u8]) -> Result<Plugin, LoadError> {
        let started = Instant::now();
        check_component(bytes)?;
        let digest = digest(bytes);
        let engine = &self.inner.engine;
        let (component, cache) = match &self.inner.cache {
            Some(c) => c.load(engine, &digest, || self.compile(bytes)),
            None => self.compile(bytes).map(|(c, _)| (c, CacheOutcome::Disabled)),
        }?;

        let image = component.image_range();
        let code_bytes = (image.end as usize).saturating_sub(image.start as usize);
        let ty = component.component_type();
        let imports: Vec<String> = ty.imports(engine).map(|(name, _)| name.to_string()).collect();
        let export_items: Vec<(String, bool)> = ty
            .exports(engine)
            .map(|(name, item)| {
                (
                    name.to_string(),
                    matches!(item.ty, ComponentItem::ComponentFunc(_)),
                )
            })
            .collect();
        let exports: Vec<String> = export_items.iter().map(|(n, _)| n.clone()).collect();
        let has_func = |name: &str| export_items.iter().any(|(n, f)| n == name && *f);
        let world = if has_func("run") {
            World::Action
        } else if has_func("format") {
            World::Formatter
        } else {
            let list = if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            };
            return Err(LoadError::UnknownWorld { exports: list });
        };
        let incompatible = |e: wasmtime::Error| LoadError::Incompatible {
            world: world.as_str(),
            reason: format!("{e:#}"),
        };
        let linker = match world {
            World::Action => &self.inner.action_linker,
            World::Formatter => &self.inner.formatter_linker,
        };
        let ip = linker.instantiate_pre(&component).map_err(incompatible)?;
        let pre = match world {
            World::Action => Pre::Action(bindings::action::ActionPre::new(ip).map_err(incompatible)?),
            World::Formatter => {
                Pre::Formatter(bindings::formatter::FormatterPre::new(ip).map_err(incompatible)?)
            }
        };
        Ok(Plugin {
            digest,
            world,
            imports,
            exports,
            cache,
            load_time: started.elapsed(),
            code_bytes,
            pre,
        })
    }
}

/// Refuse what is not a component at all before compiling.
fn check_component(bytes: &[u8]) -> Result<(), LoadError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(LoadError::NotWasm);
    }
    if wasmparser::Parser::is_core_wasm(bytes) {
        return Err(LoadError::CoreModule);
    }
    Ok(())
}

impl Runtime {
    /// Compile `bytes` where [`RuntimeConfig::compiler`](crate::RuntimeConfig) says:
    /// the component, and its serialized form when the compile produced one.
    fn compile(&self, bytes: &[u8]) -> Result<(Component, Option<Vec<u8>>), LoadError> {
        let engine = &self.inner.engine;
        let in_process = || {
            let component =
                Component::new(engine, bytes).map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
            release_compile_memory();
            Ok((component, None))
        };
        let Compiler::Child { program, args } = &self.inner.config.compiler else {
            return in_process();
        };
        let settings = EngineSettings::of(&self.inner.config);
        match compile_in_child(program, args, &settings, bytes) {
            // SAFETY: the bytes are `Component::serialize`'s output, made by
            // the configured compiler program (the daemon's own executable) for these
            // engine settings; wasmtime checks version and configuration compatibility.
            Ok(blob) => match unsafe { Component::deserialize(engine, &blob) } {
                Ok(component) => Ok((component, Some(blob))),
                Err(e) => {
                    tracing::warn!(
                        "the compiler process's code does not fit this engine ({e:#}); compiling in this process"
                    );
                    in_process()
                }
            },
            Err(ChildFailure::Unavailable(why)) => {
                tracing::warn!("cannot start the compiler process ({why}); compiling in this process");
                in_process()
            }
            Err(ChildFailure::Refused(why)) => Err(LoadError::Invalid(why)),
            Err(ChildFailure::Died(why)) => Err(LoadError::Compiler(why)),
        }
    }
}

/// Hand the memory a compile freed back to the system. Compiling an interpreter
/// component (Python, JavaScript) allocates hundreds of MB across Cranelift's threads,
/// which glibc's per-thread arenas would otherwise keep for the life of the process.
/// The `sundial` binary allocates with jemalloc, which gives freed pages back by itself
/// after about a second (`host/src/main.rs`), so there this finds nothing to do; it
/// serves programs that run the runtime on glibc's malloc.
fn release_compile_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap memory to the system; it touches no
    // memory in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

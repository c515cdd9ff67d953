//! Loading a plugin: validate the component, compile it (or fetch it from the compile
//! cache), find its world and imports, and pre-link it for fast instantiation.

use crate::cache::{CacheOutcome, digest};

use crate::*;
use std::time::Instant;
use wasmtime::component::{Component, types::ComponentItem};

impl Runtime {
    /// Read and [`load`](Self::load) a component file.
    pub fn load_file(&self, path: &std::path::Path) -> Result<Plugin, LoadError> {
        let bytes = std::fs::read(path).map_err(|e| LoadError::Io(format!("{}: {e}", path.display())))?;
        self.load(&bytes)
    }

    /// Validate, compile (or fetch from the compile cache) and pre-link a component.
    /// CPU-heavy on a cache miss: call it from a blocking context in async code.
    pub fn load(&self, bytes: &[u8]) -> Result<Plugin, LoadError> {
        let started = Instant::now();
        if !bytes.starts_with(b"\0asm") {
            return Err(LoadError::NotWasm);
        }
        if wasmparser::Parser::is_core_wasm(bytes) {
            return Err(LoadError::CoreModule);
        }
        let digest = digest(bytes);
        let engine = &self.inner.engine;
        let (component, cache) = match &self.inner.cache {
            Some(c) => c.load(engine, &digest, bytes),
            None => Component::new(engine, bytes).map(|c| (c, CacheOutcome::Disabled)),
        }
        .map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        if cache != CacheOutcome::Hit {
            release_compile_memory();
        }

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

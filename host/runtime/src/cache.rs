//! On-disk cache of compiled components, keyed by the component's sha256 digest and a
//! fingerprint of the engine configuration, so loading an unchanged plugin again
//! (including after a restart) deserializes native code instead of recompiling.
//!
//! The cache directory must be trusted: its files are native code. Sundial creates it
//! with mode 0700 and writes entries atomically (temp file, then rename).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Whether a load compiled or came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheOutcome {
    /// Deserialized from the disk cache.
    Hit,
    /// Compiled (and stored in the cache).
    Miss,
    /// Compiled; no cache configured.
    Disabled,
}

pub use sundial_core::hash::digest;

/// A directory of compiled components.
#[derive(Debug, Clone)]
pub(crate) struct CompileCache {
    dir: PathBuf,
    engine_tag: String,
}

impl CompileCache {
    /// Open (creating) the cache directory for `engine`.
    pub(crate) fn open(dir: &Path, engine: &Engine) -> std::io::Result<CompileCache> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Ok(CompileCache {
            dir: dir.to_path_buf(),
            engine_tag: format!("{:016x}", h.finish()),
        })
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_tag))
    }

    /// Load the compiled form of the component of `digest`, calling `compile` on a
    /// miss (it returns the component and, when it has it, its serialized form).
    pub(crate) fn load<E>(
        &self,
        engine: &Engine,
        digest: &str,
        compile: impl FnOnce() -> Result<(Component, Option<Vec<u8>>), E>,
    ) -> Result<(Component, CacheOutcome), E> {
        let path = self.path(digest);
        // Read into memory rather than mmap the file: a cache file truncated or
        // rewritten in place while in use must not be able to crash the host (SIGBUS).
        if let Ok(blob) = std::fs::read(&path) {
            // SAFETY: the file was written by `Component::serialize` of this engine
            // configuration, here or in the compiler process (the name carries its
            // fingerprint), into a directory only this user can write; wasmtime also
            // checks version and config compatibility.
            match unsafe { Component::deserialize(engine, &blob) } {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "discarding unusable compile cache entry: {e}")
                }
            }
        }
        let (component, serialized) = compile()?;
        self.keep(digest, &component, serialized);
        Ok((component, CacheOutcome::Miss))
    }

    /// Whether an entry for the component of `digest` exists (it is checked when
    /// loaded: an unusable one is discarded and compiled again then).
    pub(crate) fn holds(&self, digest: &str) -> bool {
        self.path(digest).is_file()
    }

    /// Write the entry of `digest`: `serialized` when the compile gave it, else
    /// `component` serialized. A failure is logged; the next load compiles again.
    pub(crate) fn keep(&self, digest: &str, component: &Component, serialized: Option<Vec<u8>>) {
        let path = self.path(digest);
        match serialized.map_or_else(|| component.serialize(), Ok) {
            Ok(blob) => {
                if let Err(e) = write_atomic(&path, &blob) {
                    tracing::warn!(path = %path.display(), "could not write compile cache entry: {e}");
                }
            }
            Err(e) => tracing::warn!("could not serialize compiled component: {e}"),
        }
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    // A temporary name of this write alone: two writers of one entry (two threads, or
    // two processes sharing the directory) never write into each other's file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

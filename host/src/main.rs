//! The `sundial` binary: see [`sundial::cli`].
//!
//! Its allocator is jemalloc, configured by [`MALLOC_CONF`]: ARCHITECTURE.md says why.

/// The process's allocator (not on musl, where jemalloc is not built).
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main` (the environment's `_RJEM_MALLOC_CONF` is
/// applied after them); the rest are jemalloc's defaults (four arenas per CPU; decayed
/// pages returned to the kernel outright, not kept lazily freed):
/// - `background_thread:true`: a jemalloc thread gives unused pages back to the kernel,
///   so no request pays for it;
/// - `tcache_max:1024`: each thread caches freed blocks of up to 1 KiB for itself (the
///   default is 32 KiB, which kept about 5 MiB more resident under load);
/// - `dirty_decay_ms:1000`: freed pages are given back after about a second (the
///   default is 10 s).
///
/// Not `percpu_arena`: where the CPUs a process may use differ from those online (a
/// cpuset, `taskset`), jemalloc turns it off and says so on stderr, which would break
/// JSON-only logs; measured, it was no faster here.
#[cfg(all(unix, not(target_env = "musl")))]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8; 59] = b"background_thread:true,tcache_max:1024,dirty_decay_ms:1000\0";

fn main() -> std::process::ExitCode {
    sundial::cli::main()
}

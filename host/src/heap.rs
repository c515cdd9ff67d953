//! The daemon's heap and the kernel: how many glibc malloc arenas the daemon's threads
//! spread over, and handing freed heap pages back.
//!
//! glibc gives every thread that allocates while the others hold their arenas an arena
//! of its own, up to eight per core, and keeps what is freed in each one for later. In
//! a daemon whose threads (the async runtime's, the run pool's, the store writer) all
//! allocate, that is tens of MiB resident that nothing uses: the plugin compiler's
//! memory after the bundled plugins are compiled at the first start, and the
//! fragments a load leaves in each arena. So the daemon
//! - caps the arenas at [`ARENAS_PER_CORE`] per core, unless `MALLOC_ARENA_MAX` is set;
//! - gives free pages back ([`trim`]) once it has started, and every
//!   [`TRIM_INTERVAL`] after that.
//!
//! Only on glibc; elsewhere these do nothing. ARCHITECTURE.md says why this and not
//! another allocator.

use std::time::Duration;

/// Arenas per core when `MALLOC_ARENA_MAX` is not set (glibc's default is 8 per core on
/// 64-bit systems).
pub const ARENAS_PER_CORE: usize = 2;

/// How often the daemon hands freed heap pages back to the kernel: 10 s.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(10);

/// Cap glibc's arenas at [`ARENAS_PER_CORE`] per core, unless the operator set
/// `MALLOC_ARENA_MAX` (then glibc's own reading of it stands). Call it before any
/// thread but the main one starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let arenas = cores.saturating_mul(ARENAS_PER_CORE).clamp(1, 64) as libc::c_int;
        // SAFETY: mallopt only sets a tunable of the allocator; no other thread
        // allocates yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// Hand the free pages of every arena back to the kernel (`malloc_trim(0)`): they stay
/// in the address space and fault back in when used again.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the arenas' own locks; it is safe from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// [`trim`] now and every [`TRIM_INTERVAL`] on a blocking thread, for as long as the
/// async runtime runs.
pub fn spawn_trimmer() {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(TRIM_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if tokio::task::spawn_blocking(trim).await.is_err() {
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn trimming_gives_freed_pages_back() {
        let resident = || {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("RssAnon:")).unwrap();
            line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap()
        };
        // 64 MiB in small blocks (below the mmap threshold, so they come from an arena),
        // touched; one in 16 stays, as a daemon's live data does among its garbage, so
        // freeing the others leaves holes that only trimming gives back.
        let mut blocks: Vec<Vec<u8>> = (0..16 * 1024).map(|i| vec![i as u8 | 1; 4000]).collect();
        let mut i = 0;
        blocks.retain(|_| {
            i += 1;
            i % 16 == 0
        });
        let freed = resident();
        trim();
        let trimmed = resident();
        assert!(
            trimmed + 32 * 1024 < freed,
            "RssAnon {freed} KiB after freeing 64 MiB, {trimmed} KiB after trimming"
        );
        drop(blocks);
    }
}

//! Instances kept between runs: a plugin whose `limits.runs_per_instance` is above 1
//! leaves its instance here after a clean run, and the next run of the same plugin
//! (same component, installed under the same name with the same grants) calls it
//! again instead of instantiating. What it saves is the plugin's start-up: for an
//! interpreter (componentize-py, ComponentizeJS) the instantiation and the first
//! call's page faults, most of a fresh run's cost (`docs/BENCHMARKS.md`).
//!
//! Bounded three ways: at most `max_idle` idle instances in all (the oldest is
//! dropped first; they hold slots of the pooling allocator, at most a quarter of it,
//! and their memory), none idle longer than [`MAX_IDLE`] (a thread of the runtime
//! sweeps once a second), and none serving more runs than its limit. An instance
//! still holding an outbound connection is not kept.

use crate::bindings;
use crate::state::{PluginIdentity, RunState};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use sundial_core::limits::Limits;
use wasmtime::Store;

/// Longest an instance stays idle before it is dropped: 60 s.
pub const MAX_IDLE: Duration = Duration::from_secs(60);

/// An instantiated plugin, ready to be called.
pub(crate) enum Live {
    Action(bindings::action::Action),
    Formatter(bindings::formatter::Formatter),
}

/// An instance between two runs, with its store.
pub(crate) struct Warm {
    pub(crate) store: Store<RunState>,
    pub(crate) live: Live,
    /// Runs it has served.
    pub(crate) runs: u32,
    /// Digest of the component it instantiates.
    pub(crate) digest: String,
    idle_since: Instant,
}

impl Warm {
    pub(crate) fn new(store: Store<RunState>, live: Live, runs: u32, digest: String) -> Warm {
        Warm {
            store,
            live,
            runs,
            digest,
            idle_since: Instant::now(),
        }
    }

    fn fits(&self, digest: &str, identity: &PluginIdentity, limits: &Limits) -> bool {
        let state = self.store.data();
        self.digest == digest
            && *state.plugin == *identity
            && self.runs < limits.runs_per_instance
            && state.limiter.total() as u64 <= limits.memory_bytes
    }
}

/// The idle instances of every plugin, oldest first.
pub(crate) struct WarmPool {
    idle: Mutex<VecDeque<Warm>>,
    max_idle: usize,
}

impl WarmPool {
    /// A pool keeping at most `max_idle` idle instances (0: none).
    pub(crate) fn new(max_idle: usize) -> WarmPool {
        WarmPool {
            idle: Mutex::new(VecDeque::new()),
            max_idle,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Warm>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently used idle instance of the plugin `digest` run as `identity`
    /// that `limits` allow (fewer runs than `runs_per_instance`, memory within
    /// `memory_bytes`), taken out of the pool.
    pub(crate) fn take(&self, digest: &str, identity: &PluginIdentity, limits: &Limits) -> Option<Warm> {
        let (found, expired) = {
            let mut idle = self.lock();
            let expired = expire(&mut idle);
            let at = idle.iter().rposition(|w| w.fits(digest, identity, limits));
            (at.and_then(|i| idle.remove(i)), expired)
        };
        drop(expired); // dropping a store unmaps memory: not under the lock
        found
    }

    /// Keep `warm` for a later run, dropping the oldest idle instance if the pool is full.
    pub(crate) fn put(&self, mut warm: Warm) {
        if self.max_idle == 0 {
            return;
        }
        warm.idle_since = Instant::now();
        let dropped = {
            let mut idle = self.lock();
            let mut dropped = expire(&mut idle);
            idle.push_back(warm);
            while idle.len() > self.max_idle {
                dropped.extend(idle.pop_front());
            }
            dropped
        };
        drop(dropped);
    }

    /// Drop the instances idle longer than [`MAX_IDLE`].
    pub(crate) fn expire(&self) {
        let expired = expire(&mut self.lock());
        drop(expired);
    }

    /// Drop every idle instance; how many there were.
    pub(crate) fn clear(&self) -> usize {
        let all: Vec<Warm> = self.lock().drain(..).collect();
        all.len()
    }

    /// Idle instances now.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

fn expire(idle: &mut VecDeque<Warm>) -> Vec<Warm> {
    let mut out = Vec::new();
    while idle.front().is_some_and(|w| w.idle_since.elapsed() > MAX_IDLE) {
        out.extend(idle.pop_front());
    }
    out
}

//! A node's copies of the records every run reads and operators rarely change: tasks,
//! plugins and tokens. Without them each manual run read its token, its task and its
//! plugin from the store: on PostgreSQL more statements than its writes, on redb a read
//! transaction, three table opens and a JSON decode each (about 8 % of the daemon's CPU
//! under the manual-run load of `scripts/bench-limit.sh`; docs/BENCHMARKS.md, "Flame
//! graphs of the request paths").
//!
//! **Freshness.** A copy is used for at most [`CACHE_TTL`]. A change made through this
//! node drops the noun's copies once it commits, so a node reads its own writes. On
//! redb every change is made through this node, so once a change has returned no copy
//! is older than it (a read racing the change, between its commit and the drop, may
//! still get the old copy, as if it had come first), and the time limit only bounds a
//! drop some write might lack. On PostgreSQL a
//! change made by another node drops them when its notice arrives (the `tasks`,
//! `plugins` and `tokens` topics of [`crate::pg::listen`], within milliseconds), and all
//! copies go when the listening connection was lost (`resync`). A change on another
//! node is thus seen within a notice's delay, and within [`CACHE_TTL`] even if the
//! notice is lost. Only records found are kept: a record created on another node is
//! never hidden by a remembered absence.
//!
//! **Races.** A read that started before a change committed must not put the old
//! record back after the change dropped the copies: each shelf has a generation, bumped
//! by every drop, and a read's result is kept only if the generation it saw before
//! reading is still current. A drop comes after the change's commit, never inside it:
//! dropped before the commit, a read in between would keep the old record.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use sundial_core::plugin::PluginRecord;

use crate::tasks::TaskRecord;
use crate::tokens::TokenRecord;

/// How long a copy is used without a notice: 1 s.
pub const CACHE_TTL: Duration = Duration::from_secs(1);

/// Most copies a shelf keeps (it is emptied when full): 4096.
const CAPACITY: usize = 4096;

/// Copies of one noun's records, by the key they were read with.
pub(crate) struct Shelf<T> {
    copies: Mutex<HashMap<String, (Instant, T)>>,
    generation: AtomicU64,
    /// How long a copy is used: [`CACHE_TTL`] (tests make it longer, so that only a
    /// drop can end a copy).
    ttl: Duration,
}

impl<T: Clone> Shelf<T> {
    pub(crate) fn new() -> Shelf<T> {
        Shelf::with_ttl(CACHE_TTL)
    }

    fn with_ttl(ttl: Duration) -> Shelf<T> {
        Shelf {
            copies: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            ttl,
        }
    }

    /// The copy of `key` if it is fresh.
    fn get(&self, key: &str) -> Option<T> {
        let copies = self.copies.lock().unwrap_or_else(|e| e.into_inner());
        copies
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    /// The record `key`: the fresh copy, else what `read` finds (kept when found and no
    /// change came in between).
    pub fn read<E>(&self, key: &str, read: impl FnOnce() -> Result<Option<T>, E>) -> Result<Option<T>, E> {
        if let Some(copy) = self.get(key) {
            return Ok(Some(copy));
        }
        let seen = self.generation.load(Ordering::Acquire);
        let found = read()?;
        if let Some(record) = &found {
            let mut copies = self.copies.lock().unwrap_or_else(|e| e.into_inner());
            if self.generation.load(Ordering::Acquire) == seen {
                if copies.len() >= CAPACITY {
                    copies.clear();
                }
                copies.insert(key.to_string(), (Instant::now(), record.clone()));
            }
        }
        Ok(found)
    }

    /// Drop every copy (a record of this noun changed).
    pub fn drop_all(&self) {
        let mut copies = self.copies.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        copies.clear();
    }
}

/// The shelves of a store ([`crate::Store`] or [`crate::pg::PgStore`]).
pub(crate) struct ReadCache {
    pub tasks: Shelf<TaskRecord>,
    pub plugins: Shelf<PluginRecord>,
    pub tokens: Shelf<TokenRecord>,
}

impl ReadCache {
    pub fn new() -> ReadCache {
        ReadCache {
            tasks: Shelf::new(),
            plugins: Shelf::new(),
            tokens: Shelf::new(),
        }
    }

    /// Shelves whose copies live `ttl` (tests).
    #[cfg(test)]
    pub fn with_ttl(ttl: Duration) -> ReadCache {
        ReadCache {
            tasks: Shelf::with_ttl(ttl),
            plugins: Shelf::with_ttl(ttl),
            tokens: Shelf::with_ttl(ttl),
        }
    }

    /// Take up a change notice: drop the copies of the noun it names, or all of them
    /// after notices may have been missed.
    pub fn notice(&self, topic: &str) {
        match topic {
            "tasks" => self.tasks.drop_all(),
            "plugins" => self.plugins.drop_all(),
            "tokens" => self.tokens.drop_all(),
            crate::pg::listen::RESYNC => {
                self.tasks.drop_all();
                self.plugins.drop_all();
                self.tokens.drop_all();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let shelf: Shelf<String> = Shelf::new();
        let got: Result<_, ()> = shelf.read("k", || {
            shelf.drop_all(); // a change commits while the read is under way
            Ok(Some("old".to_string()))
        });
        assert_eq!(got, Ok(Some("old".to_string())));
        let mut reads = 0;
        let again: Result<_, ()> = shelf.read("k", || {
            reads += 1;
            Ok(Some("new".to_string()))
        });
        assert_eq!((again, reads), (Ok(Some("new".to_string())), 1));
        let cached: Result<_, ()> = shelf.read("k", || panic!("read again"));
        assert_eq!(cached, Ok(Some("new".to_string())));
    }

    #[test]
    fn absence_and_errors_are_not_kept_and_a_drop_empties() {
        let shelf: Shelf<String> = Shelf::new();
        assert_eq!(shelf.read::<()>("k", || Ok(None)), Ok(None));
        assert_eq!(shelf.read("k", || Err("down")), Err("down"));
        assert_eq!(
            shelf.read::<()>("k", || Ok(Some("v".into()))),
            Ok(Some("v".into()))
        );
        shelf.drop_all();
        assert_eq!(
            shelf.read::<()>("k", || Ok(Some("w".into()))),
            Ok(Some("w".into()))
        );
        let cache = ReadCache::new();
        cache.tokens.read::<()>("h", || Ok(None)).unwrap();
        cache.notice(crate::pg::listen::RESYNC);
        assert_eq!(cache.tasks.generation.load(Ordering::Relaxed), 1);
        assert_eq!(cache.plugins.generation.load(Ordering::Relaxed), 1);
        assert_eq!(cache.tokens.generation.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_copy_is_read_again_after_its_time() {
        let shelf: Shelf<String> = Shelf::new();
        shelf.read::<()>("k", || Ok(Some("v".into()))).unwrap();
        std::thread::sleep(CACHE_TTL + Duration::from_millis(50));
        assert_eq!(
            shelf.read::<()>("k", || Ok(Some("w".into()))),
            Ok(Some("w".into()))
        );
    }
}

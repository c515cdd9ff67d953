//! The open database behind the store, and getting it back after an I/O error.
//!
//! redb latches an I/O error (a full disk, a failing device): every later operation on
//! that `Database` fails until it is closed and opened again. The handle does exactly
//! that: the writer reports a failed commit with [`DbHandle::fail`], the handle drops
//! the database, and the next reader or writer that needs it reopens the file (redb
//! repairs it from the last commit, so nothing acknowledged is lost). While the file
//! cannot be reopened every store operation answers [`StoreError::Unavailable`], which
//! the API turns into 503, and a new attempt is made at most every
//! [`REOPEN_INTERVAL`]: the daemon recovers by itself once space returns.

use super::StoreError;
use redb::Database;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Least time between two attempts to reopen the file: 250 ms.
pub const REOPEN_INTERVAL: Duration = Duration::from_millis(250);

/// How the file is opened.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// The redb file.
    pub path: PathBuf,
    /// redb page cache, in bytes.
    pub cache_bytes: usize,
    /// Testing hook: while this file exists, writes fail with ENOSPC
    /// (see [`super::faults`]).
    pub disk_full_switch: Option<PathBuf>,
}

impl OpenOptions {
    /// Open (or create) the database file.
    pub fn open(&self) -> Result<Database, StoreError> {
        let builder = {
            let mut b = Database::builder();
            b.set_cache_size(self.cache_bytes);
            b
        };
        match &self.disk_full_switch {
            None => Ok(builder.create(&self.path)?),
            Some(switch) => {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&self.path)
                    .map_err(|e| StoreError::Io(format!("{}: {e}", self.path.display())))?;
                let backend = super::faults::DiskFullSwitch::new(file, switch.clone())?;
                Ok(builder.create_with_backend(backend)?)
            }
        }
    }
}

/// The database, or the reason it is closed.
pub struct DbHandle {
    options: OpenOptions,
    db: RwLock<Option<Arc<Database>>>,
    /// When the last reopen failed, and why.
    reopen: Mutex<Option<(Instant, String)>>,
    /// Closed for good ([`DbHandle::close`]): nothing reopens it.
    closed: AtomicBool,
}

impl DbHandle {
    /// Wrap an opened database.
    pub fn new(db: Database, options: OpenOptions) -> DbHandle {
        DbHandle {
            options,
            db: RwLock::new(Some(Arc::new(db))),
            reopen: Mutex::new(None),
            closed: AtomicBool::new(false),
        }
    }

    /// The redb file.
    pub fn path(&self) -> &std::path::Path {
        &self.options.path
    }

    /// The open database, reopening it if an I/O error closed it.
    pub fn get(&self) -> Result<Arc<Database>, StoreError> {
        if let Some(db) = self.current() {
            return Ok(db);
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let mut last = self.reopen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(db) = self.current() {
            return Ok(db); // another caller reopened it meanwhile
        }
        // Closed while this caller waited: no reopening after `close`.
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        if let Some((at, why)) = last.as_ref()
            && at.elapsed() < REOPEN_INTERVAL
        {
            return Err(StoreError::Unavailable(why.clone()));
        }
        match self.options.open() {
            Ok(db) => {
                let db = Arc::new(db);
                *self.db.write().unwrap_or_else(|e| e.into_inner()) = Some(db.clone());
                *last = None;
                tracing::warn!("the data file is writable again: store reopened");
                Ok(db)
            }
            Err(e) => {
                let why = match e {
                    StoreError::Unavailable(m) => m,
                    other => format!("the data file cannot be reopened: {other}"),
                };
                *last = Some((Instant::now(), why.clone()));
                Err(StoreError::Unavailable(why))
            }
        }
    }

    /// Close the database after `error` (an I/O error redb latched); the next
    /// [`DbHandle::get`] reopens it.
    pub fn fail(&self, error: &StoreError) {
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        if db.take().is_some() {
            tracing::error!("store write failed, closing the data file to reopen it: {error}");
            // Dated one interval back, so the next caller tries to reopen at once.
            let at = Instant::now()
                .checked_sub(REOPEN_INTERVAL)
                .unwrap_or_else(Instant::now);
            *self.reopen.lock().unwrap_or_else(|e| e.into_inner()) = Some((at, error.to_string()));
        }
    }

    /// Close the database for good and wait (up to `wait`) until no commit or other
    /// holder of the `Database` has it, so that redb closes the file cleanly: its next
    /// open then needs no repair, which on a large file takes seconds per GiB (every
    /// page's checksum is verified and the allocator rebuilt). Operations after this
    /// answer [`StoreError::Closed`]; a read transaction begun before may fail (redb's
    /// transactions do not hold the `Database`). True when the file was closed cleanly.
    pub fn close(&self, wait: Duration) -> bool {
        // Under the reopen lock, so that a reopen in progress either lands before (and
        // is closed here) or sees `closed` and gives up.
        let db = {
            let _reopen = self.reopen.lock().unwrap_or_else(|e| e.into_inner());
            self.closed.store(true, Ordering::Release);
            self.db.write().unwrap_or_else(|e| e.into_inner()).take()
        };
        let Some(mut db) = db else {
            return false;
        };
        let deadline = Instant::now() + wait;
        loop {
            match Arc::try_unwrap(db) {
                Ok(db) => {
                    drop(db);
                    return true;
                }
                Err(shared) if Instant::now() < deadline => {
                    db = shared;
                    std::thread::sleep(Duration::from_millis(5));
                }
                // Still in use: the last holder closes it, as far as the process lives.
                Err(_) => return false,
            }
        }
    }

    fn current(&self) -> Option<Arc<Database>> {
        self.db.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

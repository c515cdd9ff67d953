//! A testing hook for the disk-full path: a file backend that fails every write with
//! "No space left on device" (ENOSPC) while a switch file exists.
//!
//! `sundial serve --inject-disk-full PATH` opens the store through it. Creating `PATH`
//! makes the data disk "full": redb's writes, file growth and fsyncs fail with the same
//! error a full filesystem gives; removing `PATH` gives the space back. Reads always
//! work. Without the flag the store uses redb's plain file backend and none of this
//! runs. The chaos and resource tests use it, since a real small filesystem needs
//! privileges a test machine may not grant.

use redb::StorageBackend;
use redb::backends::FileBackend;
use std::ops::Bound;
use std::path::PathBuf;

/// A [`FileBackend`] whose writes fail with ENOSPC while `switch` exists.
#[derive(Debug)]
pub struct DiskFullSwitch {
    inner: FileBackend,
    switch: PathBuf,
}

impl DiskFullSwitch {
    /// Wrap the file backend of `file`; `switch` is the file whose existence means full.
    pub fn new(file: std::fs::File, switch: PathBuf) -> Result<DiskFullSwitch, redb::DatabaseError> {
        Ok(DiskFullSwitch {
            inner: FileBackend::new(file)?,
            switch,
        })
    }

    fn check(&self) -> Result<(), std::io::Error> {
        if self.switch.exists() {
            // ENOSPC, exactly what a full filesystem answers.
            Err(std::io::Error::from_raw_os_error(28))
        } else {
            Ok(())
        }
    }
}

impl StorageBackend for DiskFullSwitch {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        if len > self.inner.len()? {
            self.check()?;
        }
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.check()?;
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.check()?;
        self.inner.write(offset, data)
    }

    fn close(&self) -> Result<(), std::io::Error> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, redb::BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, redb::BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), redb::BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), redb::BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), redb::BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, redb::BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

//! A cluster node's name and its hold on its data directory. On a shared (PostgreSQL)
//! store each node owns the runs it executes under its name; the name is kept in
//! `DATA/node.id` so a restarted node finds the runs it was executing when it died and
//! settles them at once instead of waiting for their leases to expire. Two processes
//! on one data directory would share that name, so the directory is locked
//! (`DATA/node.lock`, `flock`) while a node runs.

use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// Lock `dir` for this process and return its node name (made on first use:
/// `HOSTNAME-ULID`). The lock lasts as long as the process.
pub fn claim(dir: &Path) -> Result<String, String> {
    let lock_path = dir.join("node.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("opening {}: {e}", lock_path.display()))?;
    // SAFETY: flock on a descriptor this function owns; no memory is shared.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(format!(
            "another sundial process uses the data directory {}; each node needs its own",
            dir.display()
        ));
    }
    // Held until the process ends.
    std::mem::forget(lock);
    let path = dir.join("node.id");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let name = text.trim();
        if valid(name) {
            return Ok(name.to_string());
        }
        return Err(format!(
            "{} holds {name:?}, not a node name (letters, digits, '-', '_', '.'; at most 100); fix or delete it",
            path.display()
        ));
    }
    let name = format!("{}-{}", hostname(), sundial_core::ids::new_id().to_lowercase());
    let mut file = std::fs::File::create(&path).map_err(|e| format!("writing {}: {e}", path.display()))?;
    file.write_all(format!("{name}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(name)
}

fn valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// This machine's host name, cut to what a node name allows (`node` if none).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let raw = if ok {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    let name: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(60)
        .collect();
    if name.is_empty() { "node".into() } else { name }
}

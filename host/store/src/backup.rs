//! Backups: one tar file holding what a daemon needs to come back elsewhere.
//!
//! | entry | what |
//! |---|---|
//! | `sundial-backup.json` | `{"format": 1, "created_at", "sundial": version}` |
//! | `sundial.redb` | a consistent copy of the store ([`crate::MetaStore::snapshot`]) |
//! | `secret.key` | the key secrets are sealed with (from `secret.key` or `SUNDIAL_SECRET_KEY`) |
//! | `admin.token` | the data directory's admin token file, when there is one |
//!
//! The compile cache is left out (it is rebuilt on use). A backup is as sensitive as
//! the data directory: it holds the secret key. [`restore`] unpacks one into an empty
//! data directory, taking only these names (no paths), and checks the key opens the
//! sealed secrets before it says done.

use serde_json::json;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The manifest's `format`.
pub const FORMAT: u64 = 1;
/// The names a backup may hold.
const NAMES: [&str; 4] = ["sundial-backup.json", "sundial.redb", "secret.key", "admin.token"];
/// Largest `secret.key`, `admin.token` or manifest entry read: 64 KiB.
const MAX_SMALL: u64 = 64 << 10;

/// Create `path` as a new file only its owner can read and write.
pub fn new_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Write the archive to `out` (a new file, mode 0600): the store copy `db`, the key
/// text and the admin token file's text.
pub fn write_archive(
    out: &Path,
    db: &Path,
    key: &str,
    admin_token: Option<&str>,
    created_at: &str,
) -> std::io::Result<()> {
    let file = new_private_file(out)?;
    let mut tar = tar::Builder::new(file);
    let small = |tar: &mut tar::Builder<std::fs::File>, name: &str, text: &str| {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
        header.set_cksum();
        tar.append_data(&mut header, name, text.as_bytes())
    };
    let manifest =
        json!({ "format": FORMAT, "created_at": created_at, "sundial": env!("CARGO_PKG_VERSION") });
    small(&mut tar, "sundial-backup.json", &format!("{manifest}\n"))?;
    let mut db_file = std::fs::File::open(db)?;
    tar.append_file("sundial.redb", &mut db_file)?;
    small(&mut tar, "secret.key", &format!("{key}\n"))?;
    if let Some(t) = admin_token {
        small(&mut tar, "admin.token", t)?;
    }
    let file = tar.into_inner()?;
    file.sync_all()
}

/// What a restore put where.
#[derive(Debug)]
pub struct Restored {
    /// The backup's manifest.
    pub manifest: serde_json::Value,
    /// The files written, in the data directory.
    pub files: Vec<PathBuf>,
}

/// Unpack `archive` into `data`, which must not hold a store yet (created if missing).
/// Only the backup's own names are taken; a missing `sundial.redb` or `secret.key`, an
/// unknown format or anything else is an error naming it, and nothing is left behind.
pub fn restore(archive: &Path, data: &Path) -> Result<Restored, String> {
    if data.join("sundial.redb").exists() {
        return Err(format!(
            "{} already holds a store (sundial.redb); restore into an empty data directory",
            data.display()
        ));
    }
    let file = std::fs::File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let made_dir = !data.exists();
    std::fs::create_dir_all(data).map_err(|e| format!("{}: {e}", data.display()))?;
    let mut written: Vec<PathBuf> = Vec::new();
    let result = (|| {
        let mut tar = tar::Archive::new(file);
        let mut manifest = None;
        let entries = tar
            .entries()
            .map_err(|e| format!("{}: not a tar file: {e}", archive.display()))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| format!("{}: {e}", archive.display()))?;
            let name = entry
                .path()
                .map_err(|e| format!("{}: {e}", archive.display()))?
                .to_string_lossy()
                .into_owned();
            if !NAMES.contains(&name.as_str()) || entry.header().entry_type() != tar::EntryType::Regular {
                return Err(format!(
                    "{}: unexpected entry {name:?}; not a Sundial backup",
                    archive.display()
                ));
            }
            if name == "sundial-backup.json" {
                let mut text = String::new();
                entry
                    .by_ref()
                    .take(MAX_SMALL)
                    .read_to_string(&mut text)
                    .map_err(|e| format!("{}: manifest: {e}", archive.display()))?;
                let m: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| format!("{}: manifest: {e}", archive.display()))?;
                if m["format"] != json!(FORMAT) {
                    return Err(format!(
                        "{}: backup format {} is not {FORMAT}; use the Sundial version that made it ({})",
                        archive.display(),
                        m["format"],
                        m["sundial"]
                    ));
                }
                manifest = Some(m);
                continue;
            }
            if name != "sundial.redb" && entry.header().size().unwrap_or(0) > MAX_SMALL {
                return Err(format!("{}: {name} is too large", archive.display()));
            }
            let dest = data.join(&name);
            let mut out = new_private_file(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
            written.push(dest.clone());
            std::io::copy(&mut entry, &mut out).map_err(|e| format!("{}: {e}", dest.display()))?;
            out.sync_all().map_err(|e| format!("{}: {e}", dest.display()))?;
        }
        let manifest = manifest.ok_or_else(|| {
            format!(
                "{}: no sundial-backup.json; not a Sundial backup",
                archive.display()
            )
        })?;
        for needed in ["sundial.redb", "secret.key"] {
            if !data.join(needed).exists() {
                return Err(format!("{}: the backup has no {needed}", archive.display()));
            }
        }
        Ok(manifest)
    })();
    match result {
        Ok(manifest) => Ok(Restored {
            manifest,
            files: written,
        }),
        Err(e) => {
            for f in &written {
                let _ = std::fs::remove_file(f);
            }
            if made_dir {
                let _ = std::fs::remove_dir(data);
            }
            Err(e)
        }
    }
}

/// Remove what a backup interrupted by a crash left in the data directory
/// (`backup-*` working directories holding a store copy); at start.
pub fn clean_leftovers(data: &Path) {
    let Ok(entries) = std::fs::read_dir(data) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("backup-") && e.path().is_dir() {
            match std::fs::remove_dir_all(e.path()) {
                Ok(()) => tracing::info!(dir = %name, "removed an interrupted backup's working directory"),
                Err(err) => {
                    tracing::warn!(dir = %name, "could not remove an interrupted backup's working directory: {err}")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_round_trips_and_foreign_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::write(&db, b"redb bytes").unwrap();
        let archive = dir.path().join("b.tar");
        write_archive(&archive, &db, "KEY", Some("sdl_x\n"), "2026-12-03T00:00:00Z").unwrap();
        let data = dir.path().join("data");
        let r = restore(&archive, &data).unwrap();
        assert_eq!(r.manifest["format"], 1);
        assert_eq!(std::fs::read(data.join("sundial.redb")).unwrap(), b"redb bytes");
        assert_eq!(std::fs::read_to_string(data.join("secret.key")).unwrap(), "KEY\n");
        assert_eq!(
            std::fs::read_to_string(data.join("admin.token")).unwrap(),
            "sdl_x\n"
        );
        // Not into a directory that has a store.
        let err = restore(&archive, &data).unwrap_err();
        assert!(err.contains("already holds a store"), "{err}");
        // A tar with other names is not a backup, and leaves nothing behind.
        let evil = dir.path().join("evil.tar");
        {
            let mut t = tar::Builder::new(std::fs::File::create(&evil).unwrap());
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            h.set_cksum();
            t.append_data(&mut h, "secret.key", &b"k"[..]).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            h.set_cksum();
            t.append_data(&mut h, "../escape", &b"x"[..]).unwrap_or(());
            t.finish().unwrap();
        }
        let fresh = dir.path().join("fresh");
        let err = restore(&evil, &fresh).unwrap_err();
        assert!(
            err.contains("not a Sundial backup") || err.contains("unexpected entry"),
            "{err}"
        );
        assert!(!fresh.join("secret.key").exists(), "nothing is left behind");
        assert!(!dir.path().join("escape").exists());
        std::fs::write(dir.path().join("junk.tar"), b"junk").unwrap();
        assert!(restore(&dir.path().join("junk.tar"), &dir.path().join("f2")).is_err());
    }
}

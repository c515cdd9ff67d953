//! `sundial backup FILE` (from a running daemon, admin token) and `sundial restore FILE
//! --data DIR` (into an empty data directory, daemon stopped). See [`sundial_store::backup`].

use super::EXIT_USAGE;
use super::client::{Failure, Remote};
use std::path::Path;
use sundial_store::prelude::*;

/// `sundial backup FILE`.
pub(crate) async fn backup(remote: &Remote, file: &Path) -> Result<(), Failure> {
    if file.exists() {
        return Err((
            EXIT_USAGE,
            format!("{}: it exists; choose another name or remove it", file.display()),
        ));
    }
    let part = file.with_extension("part");
    let _ = std::fs::remove_file(&part);
    let result = remote.download("/v1/admin/backup", &part).await;
    let size = match result {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    std::fs::rename(&part, file).map_err(|e| (EXIT_USAGE, format!("{}: {e}", file.display())))?;
    println!(
        "wrote {} ({size} bytes): the store, the secret key and the admin token file. \
         It opens every secret: keep it as safe as the data directory.",
        file.display()
    );
    Ok(())
}

/// `sundial restore FILE --data DIR`.
pub(crate) async fn restore(file: &Path, data: &Path) -> Result<(), Failure> {
    let fail = |m: String| (EXIT_USAGE, m);
    let restored = sundial_store::backup::restore(file, data).map_err(fail)?;
    let undo = |files: &[std::path::PathBuf]| {
        for f in files {
            let _ = std::fs::remove_file(f);
        }
    };
    // The store must open, and the key must open its secrets, before we say done.
    let checked = (|| -> Result<(usize, usize, usize), String> {
        let store = sundial_store::Store::open(data, 64)
            .map_err(|e| format!("the restored store does not open: {e}"))?;
        let sealed = store.sealed_secrets().map_err(|e| e.to_string())?;
        let key = sundial_store::sealing::SecretKey::load_or_create(data, sealed.len())
            .map_err(|e| e.to_string())?;
        key.verify(&sealed, &sundial_store::sealing::SecretKey::source(data))
            .map_err(|e| e.to_string())?;
        let tasks = store
            .tasks_page(None, 100_000)
            .map_err(|e| e.to_string())?
            .0
            .len();
        let schedules = store
            .schedules_page(None, 100_000)
            .map_err(|e| e.to_string())?
            .0
            .len();
        Ok((tasks, schedules, sealed.len()))
    })();
    match checked {
        Ok((tasks, schedules, secrets)) => {
            println!(
                "restored {} into {} (made {} by Sundial {}): {tasks} tasks, {schedules} schedules, {secrets} secrets; \
                 the key opens them. Start it with: sundial serve --data {}",
                file.display(),
                data.display(),
                restored.manifest["created_at"].as_str().unwrap_or("?"),
                restored.manifest["sundial"].as_str().unwrap_or("?"),
                data.display()
            );
            Ok(())
        }
        Err(e) => {
            undo(&restored.files);
            Err(fail(format!("{e}; nothing was restored")))
        }
    }
}

//! `GET /v1/admin/backup` (admin): a consistent backup of the running daemon as a tar
//! stream (see [`sundial_store::backup`]). The store is copied while writes wait; the archive is
//! built in the data directory, unlinked, and streamed from the open file, so nothing
//! is left behind however the download ends.

use super::{Admin, ApiError, ApiResult};
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;

/// Bytes read from the archive per body chunk: 64 KiB.
const CHUNK: usize = 64 << 10;

/// A backup archive streamed as it is read.
pub(super) struct Archive(Response);

impl axum::response::IntoResponse for Archive {
    fn into_response(self) -> Response {
        self.0
    }
}

crate::answer::raw_answer!(
    Archive,
    "application/x-tar",
    "the backup: a tar of the store, its secret key and the admin token file",
    { "type": "string", "format": "binary" }
);

pub(super) async fn backup(Admin(state, caller): Admin) -> ApiResult<Archive> {
    let dir = state.data_dir.clone();
    let work = dir.join(format!("backup-{}", sundial_core::ids::new_id()));
    std::fs::create_dir(&work).map_err(|e| ApiError::internal(format!("{}: {e}", work.display())))?;
    let cleanup = |work: &std::path::Path| {
        let _ = std::fs::remove_dir_all(work);
    };
    let db = work.join("sundial.redb");
    if let Err(e) = state.store.snapshot(db.clone()).await {
        cleanup(&work);
        return Err(e.into());
    }
    let key = match sundial_store::sealing::SecretKey::text(&dir) {
        Ok(k) => k,
        Err(e) => {
            cleanup(&work);
            return Err(e.into());
        }
    };
    let token = std::fs::read_to_string(dir.join("admin.token")).ok();
    let archive = work.join("backup.tar");
    let created = sundial_core::timestamp::now();
    let (a, d) = (archive.clone(), db.clone());
    let built = tokio::task::spawn_blocking(move || {
        sundial_store::backup::write_archive(&a, &d, &key, token.as_deref(), &created)
    })
    .await;
    let file = match built {
        Ok(Ok(())) => std::fs::File::open(&archive),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(std::io::Error::other(e.to_string())),
    };
    // The open file keeps the archive readable after the directory is gone.
    cleanup(&work);
    let file = file.map_err(|e| ApiError::internal(format!("building the backup: {e}")))?;
    let size = file.metadata().map(|m| m.len()).ok();
    let file = tokio::fs::File::from_std(file);
    let stream = futures::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"sundial-backup.tar\""),
    );
    if let Some(n) = size
        && let Ok(v) = HeaderValue::from_str(&n.to_string())
    {
        headers.insert(header::CONTENT_LENGTH, v);
    }
    tracing::info!(bytes = size, by = %caller.who(), "backup made");
    Ok(Archive(response))
}

//! Changes made for a request, carried through whatever becomes of the request.
//!
//! A client that hangs up makes hyper drop its request's future where it stands. A
//! change awaited there could land in the store and then miss what follows it in
//! memory: runs committed but never handed to the workers, a trigger stored but not
//! indexed (or deleted but still matching), a schedule saved but not timed, until the
//! next start. [`detached`] runs the store write and its follow-up on a task of their
//! own; the request waits for that task, and a dropped request no longer stops it.

use std::future::Future;
use sundial_store::StoreError;
use tracing::Instrument;

/// Run `work` on a task of its own and wait for it. A panic in it is the caller's
/// panic; a task cancelled because the runtime shuts down is [`StoreError::Closed`].
pub async fn detached<T: Send + 'static>(
    work: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::spawn(work.in_current_span()).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StoreError::Closed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn the_work_finishes_when_the_caller_stops_waiting() {
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let done = Arc::new(AtomicBool::new(false));
        let finished = done.clone();
        let mut caller = Box::pin(detached(async move {
            let _ = wait.await;
            finished.store(true, Ordering::SeqCst);
            Ok(())
        }));
        // The caller waits a moment, then is dropped (a client that hung up).
        assert!(
            tokio::time::timeout(Duration::from_millis(20), &mut caller)
                .await
                .is_err()
        );
        drop(caller);
        go.send(()).unwrap();
        for _ in 0..500 {
            if done.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the work stopped with its caller");
    }

    #[tokio::test]
    async fn results_and_panics_reach_the_caller() {
        assert_eq!(detached(async { Ok(7) }).await.unwrap(), 7);
        let e = detached::<()>(async { Err(StoreError::Storage("disk".into())) }).await;
        assert!(matches!(e, Err(StoreError::Storage(m)) if m == "disk"));
        let panicked = tokio::spawn(detached::<()>(async { panic!("inside") })).await;
        assert!(panicked.unwrap_err().is_panic());
    }
}

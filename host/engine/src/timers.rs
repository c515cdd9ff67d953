//! The timer loop: fires the durable timers that delayed trigger targets set (see
//! [`crate::router`]), each in one commit that deletes it and queues its run, as fast as
//! the run queue has room. It sleeps until the earliest due timer on the engines'
//! [`Clock`], or until a commit sets a new one.

use crate::clock::Clock;
use crate::outbox::{Committed, Outbox};
use std::sync::Arc;
use sundial_store::{SharedStore, StoreError};
use tokio::sync::{Notify, mpsc, oneshot};

/// Most timers fired in one commit.
const TIMER_BATCH: usize = 1000;

/// Handle to the timer loop (cheap to clone).
#[derive(Clone)]
pub struct Timers {
    settle: mpsc::UnboundedSender<oneshot::Sender<()>>,
}

impl Timers {
    /// Start the loop: it fires through `outbox`, woken by its timer signal.
    pub fn start(store: SharedStore, clock: Clock, outbox: Outbox) -> Timers {
        let (settle, settle_rx) = mpsc::unbounded_channel();
        let wake = outbox.timer_signal();
        tokio::spawn(timer_loop(Loop { store, clock, outbox }, wake, settle_rx));
        Timers { settle }
    }

    /// Wait until every timer due by the clock's time has fired.
    pub async fn settle(&self) {
        let (done, wait) = oneshot::channel();
        if self.settle.send(done).is_ok() {
            let _ = wait.await;
        }
    }
}

struct Loop {
    store: SharedStore,
    clock: Clock,
    outbox: Outbox,
}

impl Loop {
    /// Fire the due timers: tasks' timers as many as the run queue has room for,
    /// webhooks' timers all (a delivery takes no run slot). `Ok(false)` when tasks'
    /// timers stay due because the queue is full (they fire once there is room).
    async fn fire_due(&self) -> Result<bool, StoreError> {
        loop {
            let room = self.outbox.queue().room().min(TIMER_BATCH);
            let fired = self
                .outbox
                .commit(async {
                    let fired = self
                        .store
                        .fire_due_timers(self.clock.now(), TIMER_BATCH, room)
                        .await?;
                    let seen = (fired.removed, fired.held);
                    let committed = Committed::new(seen).runs(fired.runs);
                    Ok(if fired.deliveries > 0 {
                        committed.deliveries()
                    } else {
                        committed
                    })
                })
                .await?;
            let (removed, held) = fired.value;
            if held > 0 {
                return Ok(false);
            }
            if removed < TIMER_BATCH {
                return Ok(true);
            }
        }
    }
}

/// How often a node of a cluster looks for timers other nodes set: 1 s.
pub const CLUSTER_POLL: std::time::Duration = std::time::Duration::from_secs(1);

async fn timer_loop(
    timers: Loop,
    wake: Arc<Notify>,
    mut settle: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
) {
    loop {
        let next = match timers.store.next_timer_due() {
            Ok(n) => n,
            Err(StoreError::Closed) => return,
            Err(e) => {
                tracing::warn!("reading timers failed: {e}");
                None
            }
        };
        let clock = timers.clock.clone();
        // In a cluster other nodes set timers too: look again at least this often.
        let shared = timers.store.leases().is_some();
        let result = tokio::select! {
            _ = wake.notified() => Ok(true),
            _ = tokio::time::sleep(CLUSTER_POLL), if shared => Ok(true),
            done = settle.recv() => match done {
                Some(done) => {
                    let r = timers.fire_due().await;
                    let _ = done.send(());
                    r
                }
                None => return,
            },
            _ = clock.sleep_until(next.unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)), if next.is_some() => {
                if next.is_some_and(|due| clock.now() >= due) {
                    timers.fire_due().await
                } else {
                    Ok(true)
                }
            }
        };
        match result {
            Ok(true) => {}
            // Due timers wait for room in the run queue.
            Ok(false) => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
            Err(StoreError::Closed) => return,
            Err(e) => {
                tracing::warn!("firing timers failed: {e}");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

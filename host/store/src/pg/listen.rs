//! Change notices between the nodes of a cluster: a write that others must take up
//! (a trigger, a schedule, a calendar, a timer, a delivery; a task, a plugin or a token,
//! which the nodes keep copies of, `crate::cache`) sends
//! `pg_notify('sundial', TOPIC)` in its transaction, so the notice goes out when it
//! commits; every node LISTENs on a connection of its own and hands the topics to its
//! engines ([`crate::MetaStore::changes`]). After that connection was lost and made
//! again, `resync` says that notices may have been missed. The engines also look by
//! themselves now and then (polling), so a lost notice delays, never loses, a change.

use super::exec;
use crate::StoreError;
use crate::cache::ReadCache;
use deadpool_postgres::GenericClient;
use futures::StreamExt;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// The channel the notices go on.
pub const CHANNEL: &str = "sundial";

/// The topic sent after the listening connection was made again.
pub const RESYNC: &str = "resync";

/// Notices kept for a slow receiver before it misses some (it then resyncs).
const BACKLOG: usize = 1024;

/// Send `topic` when the transaction `c` commits.
pub(crate) async fn notify(c: &impl GenericClient, topic: &str) -> Result<(), StoreError> {
    exec(c, "SELECT pg_notify('sundial', $1)", &[&topic]).await?;
    Ok(())
}

/// The sender notices are handed to; the listener stops once it is dropped.
pub(crate) type Notices = Arc<broadcast::Sender<String>>;

/// Start listening with `config`; each notice drops what `cache` holds of the noun it
/// names, then goes to the returned sender's receivers.
pub(crate) fn start(config: tokio_postgres::Config, cache: Arc<ReadCache>) -> Notices {
    let (tx, _) = broadcast::channel(BACKLOG);
    let tx = Arc::new(tx);
    let weak = Arc::downgrade(&tx);
    tokio::spawn(listen(config, weak, cache));
    tx
}

async fn listen(
    config: tokio_postgres::Config,
    notices: Weak<broadcast::Sender<String>>,
    cache: Arc<ReadCache>,
) {
    let mut first = true;
    loop {
        if notices.strong_count() == 0 {
            return;
        }
        if let Ok((client, mut connection)) = config.connect(tokio_postgres::NoTls).await {
            let (found, mut received) = mpsc::unbounded_channel::<String>();
            let driver = tokio::spawn(async move {
                let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(Ok(message)) = messages.next().await {
                    if let tokio_postgres::AsyncMessage::Notification(n) = message
                        && found.send(n.payload().to_string()).is_err()
                    {
                        return;
                    }
                }
            });
            if client.batch_execute(&format!("LISTEN {CHANNEL}")).await.is_ok() {
                if !first && let Some(tx) = notices.upgrade() {
                    cache.notice(RESYNC);
                    let _ = tx.send(RESYNC.into());
                }
                first = false;
                loop {
                    tokio::select! {
                        topic = received.recv() => match (topic, notices.upgrade()) {
                            (Some(topic), Some(tx)) => {
                                cache.notice(&topic);
                                let _ = tx.send(topic);
                            }
                            (None, _) => break, // the connection ended
                            (_, None) => { driver.abort(); return; }
                        },
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {
                            if notices.strong_count() == 0 {
                                driver.abort();
                                return;
                            }
                        }
                    }
                }
            }
            driver.abort();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

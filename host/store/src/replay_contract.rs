//! What every backend must do when an operator replays a delivery
//! ([`WebhookStore::requeue_delivery`]), run against redb here and against PostgreSQL
//! in `pg::tests`.

use crate::StoreError;
use crate::webhooks::{Delivery, DeliveryAttempt, DeliveryStatus, WebhookRecord, WebhookStore};
use chrono::{DateTime, Duration, Utc};

pub(crate) fn delivery(status: DeliveryStatus, due: Option<DateTime<Utc>>, attempts: u32) -> Delivery {
    let mut d = Delivery {
        id: sundial_core::ids::new_id(),
        webhook_id: "hook-1".into(),
        webhook_name: "hook".into(),
        status,
        created_at: sundial_core::timestamp::now(),
        finished_at: None,
        next_attempt_at: due,
        attempts: Vec::new(),
        event: None,
        event_seq: None,
        run: None,
        trigger: None,
        cause: "test".into(),
        depth: 0,
        root: None,
        error: None,
    };
    for _ in 0..attempts {
        attempt(&mut d, 500);
    }
    if status != DeliveryStatus::Queued {
        d.finished_at = Some(sundial_core::timestamp::now());
    }
    if status == DeliveryStatus::Dead {
        d.error = Some("gave up".into());
    }
    d
}

fn attempt(d: &mut Delivery, status: u16) {
    d.attempts.push(DeliveryAttempt {
        number: d.attempts.len() as u32 + 1,
        at: sundial_core::timestamp::now(),
        status_code: Some(status),
        latency_ms: 1,
        response: None,
        error: None,
    });
}

/// Ids due by `at`, each as often as the queue holds it.
fn due<S: WebhookStore + ?Sized>(store: &S, at: DateTime<Utc>) -> Vec<String> {
    store.due_deliveries(at, None, 1000, &|_| false).unwrap().0
}

fn webhook(id: &str, name: &str, enabled: bool) -> WebhookRecord {
    let spec = serde_json::json!({"name": name, "url": "https://example.com/hook", "enabled": enabled});
    WebhookRecord {
        id: id.into(),
        created_at: sundial_core::timestamp::now(),
        updated_at: sundial_core::timestamp::now(),
        spec: serde_json::from_value(spec).unwrap(),
        disabled_reason: None,
    }
}

/// The replay contract, on a store with no webhooks or deliveries yet.
pub(crate) async fn check<S: WebhookStore + ?Sized>(store: &S) {
    let now = Utc::now();
    store
        .insert_webhook(webhook("hook-1", "hook", true), "test")
        .await
        .unwrap();
    store
        .insert_webhook(webhook("hook-2", "off", false), "test")
        .await
        .unwrap();
    let millis = |t: DateTime<Utc>| t.timestamp_millis();
    match store.requeue_delivery("no-such-delivery", now).await {
        Err(StoreError::NotFound(m)) => assert!(m.contains("no-such-delivery"), "{m}"),
        other => panic!("replaying nothing: {other:?}"),
    }

    // Dead: queued again with its attempts, due now, in the queue once.
    let dead = delivery(DeliveryStatus::Dead, None, 2);
    store.enqueue_deliveries(vec![dead.clone()]).await.unwrap();
    let back = store.requeue_delivery(&dead.id, now).await.unwrap();
    assert_eq!(back.status, DeliveryStatus::Queued);
    assert_eq!(back.attempts, dead.attempts);
    assert_eq!((back.error.as_deref(), back.finished_at.as_deref()), (None, None));
    assert_eq!(back.next_attempt_at.map(millis), Some(millis(now)));
    assert_eq!(store.delivery(&dead.id).unwrap().unwrap(), back);
    let later = now + Duration::hours(2);
    assert_eq!(due(store, later).iter().filter(|id| **id == dead.id).count(), 1);

    // Queued for an hour from now: due now, its old place in the queue gone.
    let waiting = delivery(DeliveryStatus::Queued, Some(now + Duration::hours(1)), 1);
    store.enqueue_deliveries(vec![waiting.clone()]).await.unwrap();
    assert!(!due(store, now).contains(&waiting.id));
    let back = store.requeue_delivery(&waiting.id, now).await.unwrap();
    assert_eq!(back.next_attempt_at.map(millis), Some(millis(now)));
    assert!(due(store, now).contains(&waiting.id));
    assert_eq!(
        due(store, later).iter().filter(|id| **id == waiting.id).count(),
        1
    );

    // Delivered: refused, unchanged, not queued.
    let mut done = delivery(DeliveryStatus::Delivered, None, 0);
    attempt(&mut done, 200);
    store.enqueue_deliveries(vec![done.clone()]).await.unwrap();
    match store.requeue_delivery(&done.id, now).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("delivered already"), "{m}"),
        other => panic!("a delivered delivery was replayed: {other:?}"),
    }
    assert_eq!(store.delivery(&done.id).unwrap().unwrap(), done);
    assert!(!due(store, later).contains(&done.id));

    // Dead, its webhook deleted or disabled: refused, unchanged (the next attempt would
    // only kill it again, in place of the error it died of).
    for (hook, why) in [("hook-gone", "was deleted"), ("hook-2", "is disabled")] {
        let mut orphan = delivery(DeliveryStatus::Dead, None, 1);
        orphan.webhook_id = hook.into();
        store.enqueue_deliveries(vec![orphan.clone()]).await.unwrap();
        match store.requeue_delivery(&orphan.id, now).await {
            Err(StoreError::Conflict(m)) => assert!(m.contains(why), "{m}"),
            other => panic!("replayed to {hook}: {other:?}"),
        }
        assert_eq!(store.delivery(&orphan.id).unwrap().unwrap(), orphan);
    }

    // Replays racing the attempt that records "delivered": whichever commits first, the
    // delivery ends delivered with its one attempt and out of the queue. The attempt's
    // write is issued first, so a replay that read before it and wrote after it (not one
    // transaction) would leave the delivery queued. The claim's hold is zero, so on a
    // shared store the replays are not left to the claim holder but take the same path.
    for _ in 0..5 {
        let racing = delivery(DeliveryStatus::Queued, Some(now - Duration::seconds(1)), 0);
        store.enqueue_deliveries(vec![racing.clone()]).await.unwrap();
        let mut sent = store
            .claim_delivery(racing.clone(), std::time::Duration::ZERO)
            .await
            .unwrap()
            .expect("due and queued");
        attempt(&mut sent, 200);
        sent.status = DeliveryStatus::Delivered;
        sent.next_attempt_at = None;
        sent.finished_at = Some(sundial_core::timestamp::now());
        let replays =
            futures::future::join_all((0..8).map(|_| store.requeue_delivery(&racing.id, Utc::now())));
        let (saved, replays) = tokio::join!(store.save_delivery(sent, None, Vec::new()), replays);
        saved.unwrap();
        for r in replays {
            match r {
                Ok(d) => assert_eq!(d.status, DeliveryStatus::Queued),
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("replay failed: {e}"),
            }
        }
        let end = store.delivery(&racing.id).unwrap().unwrap();
        assert_eq!(end.status, DeliveryStatus::Delivered, "{end:?}");
        assert_eq!(end.attempts.len(), 1);
        assert!(!due(store, later).contains(&racing.id));
    }
}

#[tokio::test]
async fn redb_replays_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::Store::open(dir.path(), 64).unwrap();
    check(&store).await;
}

//! Webhook records (named) and deliveries: the task log of webhooks, with a durable
//! queue of pending deliveries keyed by due time.

use super::StoreError;
use super::batch::Hot;
use super::named::{Named, named_store};
use super::tables::{
    Json, Paged, Scan, due_by, due_id, due_key, encode_record, first_due, get_json, newest_first,
    put_encoded, put_json,
};
use crate::schema::*;
use chrono::{DateTime, Utc};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::ops::Bound;
use sundial_core::webhook::WebhookSpec;

const NAMED: Named<WebhookRecord> = Named {
    records: WEBHOOKS,
    names: WEBHOOK_NAMES,
    noun: "webhook",
    on_put: crate::named::no_hook,
    on_delete: crate::named::no_hook,
    copies: None,
};

/// A webhook as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookRecord {
    /// Id (ULID).
    pub id: String,
    /// Created, RFC 3339.
    pub created_at: String,
    /// Last changed, RFC 3339.
    pub updated_at: String,
    /// The definition.
    pub spec: WebhookSpec,
    /// Why it was disabled by Sundial (a 410 answer), if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
}

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its (next) attempt.
    Queued,
    /// Delivered (2xx).
    Delivered,
    /// Gave up: a final answer, the attempts ran out, or the webhook is gone.
    Dead,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeliveryAttempt {
    /// 1, 2, ...
    pub number: u32,
    /// When it was sent, RFC 3339.
    pub at: String,
    /// The HTTP status, when an answer came.
    pub status_code: Option<u16>,
    /// From sending to the answer (or the error), in milliseconds.
    pub latency_ms: u64,
    /// The first bytes of the answer's body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// What went wrong, when something did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The part of a stored [`Delivery`] that places it in the queue, read when the record
/// is replaced (the rest, its event above all, is skipped, not built).
#[derive(Deserialize)]
struct QueueEntry {
    #[serde(default, with = "sundial_core::timestamp::serde_millis_opt")]
    next_attempt_at: Option<DateTime<Utc>>,
}

/// A delivery: one payload for one webhook, with its attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Delivery {
    /// Id (ULID); also the `webhook-id` header, the same on every attempt.
    pub id: String,
    /// The webhook's id.
    pub webhook_id: String,
    /// Its name then.
    pub webhook_name: String,
    /// Status.
    pub status: DeliveryStatus,
    /// Created, RFC 3339.
    pub created_at: String,
    /// When it reached `delivered` or `dead`.
    #[serde(default)]
    pub finished_at: Option<String>,
    /// When the next attempt is due (while queued).
    #[serde(default, with = "sundial_core::timestamp::serde_millis_opt")]
    #[schemars(with = "Option<chrono::DateTime<chrono::Utc>>")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Attempts so far.
    #[serde(default)]
    pub attempts: Vec<DeliveryAttempt>,
    /// The event being delivered, as plugins see events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<sundial_core::invocation::Event>,
    /// The event's seq, when an event caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_seq: Option<String>,
    /// The run being reported, when a run caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Value>,
    /// The trigger that caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// Who caused it: `trigger`, `test` (by hand) or a run.
    pub cause: String,
    /// Causal depth of what caused it (events about it are one deeper).
    #[serde(default)]
    pub depth: u32,
    /// The causal chain of what caused it (see [`sundial_core::run::Run::root`]); events about
    /// the delivery belong to it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Why it is dead, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Delivery {
    /// A new queued delivery to `webhook`, due now.
    pub fn queued(webhook: &WebhookRecord, cause: &str, depth: u32) -> Delivery {
        Delivery {
            id: sundial_core::ids::new_id(),
            webhook_id: webhook.id.clone(),
            webhook_name: webhook.spec.name.clone(),
            status: DeliveryStatus::Queued,
            created_at: sundial_core::timestamp::now(),
            finished_at: None,
            next_attempt_at: Some(Utc::now()),
            attempts: Vec::new(),
            event: None,
            event_seq: None,
            run: None,
            trigger: None,
            cause: cause.to_string(),
            depth,
            root: None,
            error: None,
        }
    }

    /// This delivery queued again by an operator's replay, due `now`: a dead one keeps
    /// its attempts, a queued one is made due now. One already delivered is refused
    /// ([`StoreError::Conflict`]): it is never sent again.
    pub fn requeued(mut self, now: DateTime<Utc>) -> Result<Delivery, StoreError> {
        if self.status == DeliveryStatus::Delivered {
            return Err(StoreError::Conflict(format!(
                "delivery {} was delivered already",
                self.id
            )));
        }
        self.status = DeliveryStatus::Queued;
        // To the millisecond, as it is stored.
        self.next_attempt_at = Some(sundial_core::timestamp::millis(now));
        self.finished_at = None;
        self.error = None;
        Ok(self)
    }
}

/// Store new deliveries (queued, due now) in the hot tables.
pub(crate) fn insert_deliveries(hot: &mut Hot<'_>, deliveries: &[Delivery]) -> Result<(), StoreError> {
    insert_encoded_deliveries(hot, deliveries, &encode_deliveries(deliveries)?)
}

/// Each of `deliveries` encoded for [`insert_encoded_deliveries`] (before the write
/// transaction, so the writer thread only copies bytes).
pub(crate) fn encode_deliveries(deliveries: &[Delivery]) -> Result<Vec<Json<'static, Delivery>>, StoreError> {
    deliveries.iter().map(|d| encode_record(&d.id, d)).collect()
}

/// [`insert_deliveries`] with the records encoded beforehand (`encoded[i]` is
/// `deliveries[i]`).
pub(crate) fn insert_encoded_deliveries(
    hot: &mut Hot<'_>,
    deliveries: &[Delivery],
    encoded: &[Json<'static, Delivery>],
) -> Result<(), StoreError> {
    debug_assert_eq!(deliveries.len(), encoded.len(), "one encoding per delivery");
    for (d, json) in deliveries.iter().zip(encoded) {
        put_encoded(&mut hot.deliveries, &d.id, json)?;
        if let Some(due) = d.next_attempt_at {
            hot.delivery_queue.insert(due_key(due, &d.id).as_str(), ())?;
        }
    }
    Ok(())
}

/// Whether `delivery` may be replayed to `webhook` (its webhook as stored now): not
/// once its webhook is deleted or disabled.
pub(crate) fn replayable(delivery: &Delivery, webhook: Option<&WebhookRecord>) -> Result<(), StoreError> {
    match webhook {
        None => Err(StoreError::Conflict(format!(
            "delivery {}: its webhook {:?} was deleted",
            delivery.id, delivery.webhook_name
        ))),
        Some(w) if !w.spec.enabled => Err(StoreError::Conflict(format!(
            "delivery {}: webhook {:?} is disabled; enable it, then retry",
            delivery.id, w.spec.name
        ))),
        Some(_) => Ok(()),
    }
}

/// Which deliveries to list.
#[derive(Debug, Default, Clone)]
pub struct DeliveryFilter {
    /// Only this webhook id.
    pub webhook_id: Option<String>,
    /// Only this status.
    pub status: Option<DeliveryStatus>,
}

impl DeliveryFilter {
    pub(crate) fn matches(&self, d: &Delivery) -> bool {
        self.webhook_id.as_deref().is_none_or(|w| w == d.webhook_id)
            && self.status.is_none_or(|s| s == d.status)
    }
}

named_store! {
    /// Webhooks, their deliveries and the delivery queue.
    pub trait WebhookStore: Named<WebhookRecord> = NAMED {
        /// Create a webhook; the name must be free.
        fn insert_webhook;
        /// One webhook by id or name.
        fn webhook;
        /// A page of webhooks, oldest first.
        fn webhooks_page;
        /// Replace a webhook's spec (validated by the caller); `disabled_reason` is cleared
        /// when the spec enables it. Returns (before, after).
        fn update_webhook(spec: WebhookSpec) = |_, w| {
            if spec.enabled {
                w.disabled_reason = None;
            }
            w.spec = spec;
            Ok(())
        };
        /// Delete a webhook (its queued deliveries die when they come due).
        fn delete_webhook;
    }
    also {
        /// Queue deliveries (one commit).
        async fn enqueue_deliveries(&self, deliveries: Vec<Delivery>) -> Result<Vec<Delivery>, StoreError> {
            self.write_batch(move |batch| {
                insert_deliveries(batch.hot()?, &deliveries)?;
                Ok(deliveries)
            })
            .await
        }

        /// One delivery.
        fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
            self.get_record(DELIVERIES, id)
        }

        /// The earliest due time in the delivery queue.
        fn next_delivery_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
            self.read_table(DELIVERY_QUEUE, |queue| first_due(queue, "delivery queue"))
        }

        /// Ids of up to `limit` deliveries due at `now` for which `skip` is false, oldest due
        /// first, scanning the queue after key `after` (from the start when `None`).
        /// Returns them with the last queue key scanned, to continue from next time.
        fn due_deliveries(
            &self,
            now: DateTime<Utc>,
            after: Option<&str>,
            limit: usize,
            skip: &(dyn for<'s> Fn(&'s str) -> bool + Sync),
        ) -> Result<Paged<String>, StoreError> {
            self.read_table(DELIVERY_QUEUE, |queue| {
                let hi = due_by(now);
                let due = (after.map_or(Bound::Unbounded, Bound::Excluded), Bound::Excluded(hi.as_str()));
                let mut out = Vec::new();
                let mut last = after.map(str::to_string);
                for entry in queue.range::<&str>(due)? {
                    let (k, _) = entry?;
                    last = Some(k.value().to_string());
                    let id = due_id(k.value());
                    if skip(id) {
                        continue;
                    }
                    out.push(id.to_string());
                    if out.len() >= limit {
                        break;
                    }
                }
                Ok((out, last))
            })
        }

        /// Take delivery `id` for one attempt, if it is still queued and due, and return
        /// it as it now is: in a store several nodes share, it is not due again for
        /// `hold` (another node then attempts it only if this one died), so two nodes
        /// never send it at once, and the attempt starts from the latest record. A
        /// single-node store has nobody to keep out, and only the attempt in flight
        /// changes a queued delivery (the deliverer attempts each once at a time): it
        /// returns `read`, the record the attempt read, without reading it again.
        async fn claim_delivery(
            &self,
            read: Delivery,
            hold: std::time::Duration,
        ) -> Result<Option<Delivery>, StoreError> {
            let _ = hold;
            Ok(Some(read))
        }

        /// Record an attempt's outcome: the delivery's new state replaces the old one and
        /// its queue entry moves (or goes); `disable` also disables its webhook with a
        /// reason; `events` (`sundial.webhook.*`) commit with it.
        async fn save_delivery(
            &self,
            delivery: Delivery,
            disable: Option<String>,
            events: Vec<super::events::Planned>,
        ) -> Result<(Delivery, Vec<super::events::Stored>), StoreError> {
            let events = super::events::encode_events(events)?;
            let json = encode_record(&delivery.id, &delivery)?;
            self.write_batch(move |batch| {
                let hot = batch.hot()?;
                // Of the old record only its queue entry matters: read just that.
                let old = match hot.deliveries.get(delivery.id.as_str())? {
                    Some(v) => Some(v.value().decode_as::<QueueEntry>().map_err(|e| {
                        StoreError::Unreadable(format!("record {:?} cannot be read ({e})", delivery.id))
                    })?),
                    None => None,
                };
                if let Some(due) = old.and_then(|o| o.next_attempt_at) {
                    hot.delivery_queue.remove(due_key(due, &delivery.id).as_str())?;
                }
                if let (DeliveryStatus::Queued, Some(due)) = (delivery.status, delivery.next_attempt_at) {
                    hot.delivery_queue.insert(due_key(due, &delivery.id).as_str(), ())?;
                }
                put_encoded(&mut hot.deliveries, &delivery.id, &json)?;
                if let Some(reason) = disable {
                    let mut hooks = batch.txn().open_table(WEBHOOKS)?;
                    if let Some(mut w) = get_json::<WebhookRecord>(&hooks, &delivery.webhook_id)? {
                        w.spec.enabled = false;
                        w.disabled_reason = Some(reason);
                        put_json(&mut hooks, &w.id, &w)?;
                    }
                }
                let stored = super::events::apply_events(batch.hot()?, events)?;
                Ok((delivery, stored))
            })
            .await
        }

        /// Queue delivery `id` again for an operator ([`Delivery::requeued`]), the read and
        /// the write in one transaction, so an attempt that recorded "delivered" first is
        /// seen and the replay refused. Refused too ([`StoreError::Conflict`]) while its
        /// webhook is deleted or disabled: the attempt would only kill it again. An attempt still in flight records its outcome over
        /// this one: that attempt is the retry asked for. A store several nodes share leaves
        /// the due time of a delivery a live claim holds (another node is attempting it).
        async fn requeue_delivery(&self, id: &str, now: DateTime<Utc>) -> Result<Delivery, StoreError> {
            let id = id.to_string();
            self.write(move |txn| {
                let mut table = txn.open_table(DELIVERIES)?;
                let mut queue = txn.open_table(DELIVERY_QUEUE)?;
                let Some(old) = get_json::<Delivery>(&table, &id)? else {
                    return Err(StoreError::NotFound(format!("delivery {id:?} not found")));
                };
                let due_before = old.next_attempt_at;
                let delivery = old.requeued(now)?;
                let hooks = txn.open_table(WEBHOOKS)?;
                replayable(&delivery, get_json::<WebhookRecord>(&hooks, &delivery.webhook_id)?.as_ref())?;
                if let Some(due) = due_before {
                    queue.remove(due_key(due, &id).as_str())?;
                }
                queue.insert(due_key(now, &id).as_str(), ())?;
                put_json(&mut table, &id, &delivery)?;
                Ok(delivery)
            })
            .await
        }

        /// Deliveries matching `filter`, newest first, after id `cursor`.
        fn list_deliveries(
            &self,
            filter: &DeliveryFilter,
            cursor: Option<&str>,
            limit: usize,
        ) -> Result<Paged<Delivery>, StoreError> {
            self.read_table(DELIVERIES, |table| {
                newest_first(table, "deliveries", cursor, limit, |d| Scan::take_if(filter.matches(d)))
            })
        }
    }
}

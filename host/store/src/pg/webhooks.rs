//! Webhooks on PostgreSQL: named records in `webhooks`, and their deliveries in
//! `deliveries`, as [`crate::webhooks`] stores them on redb. redb's `delivery_queue` is
//! the partial index `deliveries_due` on the `due` column (a queued delivery's next
//! attempt, cut to the millisecond; NULL once it is delivered or dead).
//!
//! Listing due deliveries claims nothing (as on redb, the deliverer reads the queue,
//! then attempts each delivery and records the outcome with
//! [`WebhookStore::save_delivery`], which locks the delivery's row). The cursor of
//! [`WebhookStore::due_deliveries`] is redb's queue key, `{due ms:016x}/{id}`.

use super::named::PgNamed;
use super::rows::{delivery_status, insert_deliveries, put_delivery};
use super::{PgStore, db_error, decode_listed, decode_one, encode, exec, row, rows};
use crate::StoreError;
use crate::events::{Planned, Stored};
use crate::tables::{Paged, Pager, due_key};
use crate::webhooks::{Delivery, DeliveryFilter, WebhookRecord, WebhookStore};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sundial_core::webhook::WebhookSpec;
use tokio_postgres::types::ToSql;

/// Webhooks as named records.
const NAMED: PgNamed = PgNamed {
    table: "webhooks",
    noun: "webhook",
};

/// How many rows a scan of the queue or of the deliveries reads per statement.
const SCAN_BATCH: i64 = 500;

/// The position a queue key names: its due time and the delivery's id.
fn parse_queue_key(key: &str) -> Result<(DateTime<Utc>, &str), StoreError> {
    let bad = || StoreError::Invalid(format!("bad delivery queue cursor {key:?}"));
    let (due, id) = key.split_once('/').ok_or_else(bad)?;
    let ms = i64::from_str_radix(due, 16).map_err(|_| bad())?;
    Ok((DateTime::from_timestamp_millis(ms).ok_or_else(bad)?, id))
}

/// The statement listing deliveries newest first: the id bound and the filters the
/// call has, as `$1`, `$2`, ... in that order, and the batch size last.
fn list_sql(cursor: bool, webhook: bool, status: bool) -> String {
    let mut conditions = Vec::new();
    let bounds = [
        (cursor, "id", "<"),
        (webhook, "webhook_id", "="),
        (status, "status", "="),
    ];
    for (present, column, op) in bounds {
        if present {
            conditions.push(format!("{column} {op} ${}", conditions.len() + 1));
        }
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    format!(
        "SELECT id, doc FROM deliveries {filter} ORDER BY id DESC LIMIT ${}",
        conditions.len() + 1
    )
}

/// Whether `node` may write `new` over `stored`, whose attempt under way is `claimed_by`'s;
/// true when `new` records an attempt. The attempts `new` carries must begin with the
/// stored ones (else another node recorded an attempt since this one read the
/// delivery), and a new attempt is only recorded from the node that claimed it: a node
/// paused past its claim, whose attempt another node has made again meanwhile, gets
/// [`StoreError::Stale`] and writes nothing. (A replay asked through the API adds no
/// attempt and may be written at any time.)
fn fence(
    stored: &Delivery,
    claimed_by: Option<String>,
    new: &Delivery,
    node: &str,
) -> Result<bool, StoreError> {
    if !new.attempts.starts_with(&stored.attempts) {
        return Err(StoreError::Stale(format!(
            "delivery {} has {} attempt(s) recorded that this write ({node}) does not know of; it was not recorded",
            new.id,
            stored.attempts.len()
        )));
    }
    if new.attempts.len() == stored.attempts.len() {
        return Ok(false);
    }
    match claimed_by.as_deref() {
        Some(owner) if owner == node => Ok(true),
        other => Err(StoreError::Stale(format!(
            "delivery {}: this node ({node}) no longer holds the claim on its attempt ({}); the attempt was not recorded",
            new.id,
            match other {
                Some(o) => format!("{o} claimed it since"),
                None => "it is not claimed".to_string(),
            }
        ))),
    }
}

#[async_trait]
impl WebhookStore for PgStore {
    async fn insert_webhook(&self, record: WebhookRecord, actor: &str) -> Result<WebhookRecord, StoreError> {
        self.insert_named(NAMED, record, actor).await
    }

    fn webhook(&self, key: &str) -> Result<Option<WebhookRecord>, StoreError> {
        self.get_named(NAMED, key)
    }

    fn webhooks_page(&self, after: Option<&str>, limit: usize) -> Result<Paged<WebhookRecord>, StoreError> {
        self.page_named(NAMED, after, limit)
    }

    async fn update_webhook(
        &self,
        key: &str,
        spec: WebhookSpec,
        now: String,
        actor: &str,
    ) -> Result<(WebhookRecord, WebhookRecord), StoreError> {
        self.update_named(NAMED, key, now, actor, |w: &mut WebhookRecord| {
            if spec.enabled {
                w.disabled_reason = None;
            }
            w.spec = spec;
            Ok(())
        })
        .await
    }

    async fn delete_webhook(&self, key: &str, actor: &str) -> Result<WebhookRecord, StoreError> {
        self.delete_named(NAMED, key, actor).await
    }

    async fn enqueue_deliveries(&self, deliveries: Vec<Delivery>) -> Result<Vec<Delivery>, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        insert_deliveries(&t, &deliveries).await?;
        self.commit(t).await?;
        Ok(deliveries)
    }

    fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        self.block(async {
            let client = self.client().await?;
            match row(&client, "SELECT doc FROM deliveries WHERE id = $1", &[&id]).await? {
                None => Ok(None),
                Some(r) => decode_one("deliveries", id, &r.get::<_, String>(0)).map(Some),
            }
        })
    }

    fn next_delivery_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.block(async {
            let client = self.client().await?;
            let first = row(
                &client,
                "SELECT due FROM deliveries WHERE due IS NOT NULL ORDER BY due, id LIMIT 1",
                &[],
            )
            .await?;
            Ok(first.map(|r| sundial_core::timestamp::millis(r.get(0))))
        })
    }

    async fn claim_delivery(
        &self,
        read: Delivery,
        hold: std::time::Duration,
    ) -> Result<Option<Delivery>, StoreError> {
        let id = read.id.as_str();
        let client = self.client().await?;
        let claimed = row(
            &client,
            "UPDATE deliveries SET due = now() + make_interval(secs => $2), claimed_by = $3
             WHERE id = $1 AND status = 'queued' AND due IS NOT NULL AND due <= now() RETURNING doc",
            &[&id, &hold.as_secs_f64(), &self.node()],
        )
        .await?;
        match claimed {
            Some(r) => decode_one("deliveries", id, r.get(0)).map(Some),
            None => Ok(None),
        }
    }

    fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        after: Option<&str>,
        limit: usize,
        skip: &(dyn for<'s> Fn(&'s str) -> bool + Sync),
    ) -> Result<Paged<String>, StoreError> {
        // Due at `now` to the millisecond, as redb's queue keys compare: due < this.
        let end = sundial_core::timestamp::millis(now) + Duration::milliseconds(1);
        let mut position = match after {
            Some(key) => Some(parse_queue_key(key).map(|(due, id)| (due, id.to_string()))?),
            None => None,
        };
        self.block(async {
            let client = self.client().await?;
            let mut out = Vec::new();
            let mut last = after.map(str::to_string);
            loop {
                let batch = match &position {
                    None => {
                        rows(
                            &client,
                            "SELECT due, id FROM deliveries WHERE due IS NOT NULL AND due < $1
                             ORDER BY due, id LIMIT $2",
                            &[&end, &SCAN_BATCH],
                        )
                        .await?
                    }
                    Some((due, id)) => {
                        rows(
                            &client,
                            "SELECT due, id FROM deliveries WHERE due IS NOT NULL AND due < $1
                             AND (due, id) > ($2::timestamptz, $3::text) ORDER BY due, id LIMIT $4",
                            &[&end, &due, &id, &SCAN_BATCH],
                        )
                        .await?
                    }
                };
                let n = batch.len() as i64;
                for r in &batch {
                    let (due, id): (DateTime<Utc>, &str) = (r.get(0), r.get(1));
                    last = Some(due_key(due, id));
                    position = Some((due, id.to_string()));
                    if skip(id) {
                        continue;
                    }
                    out.push(id.to_string());
                    if out.len() >= limit {
                        return Ok((out, last));
                    }
                }
                if n < SCAN_BATCH {
                    return Ok((out, last));
                }
            }
        })
    }

    async fn save_delivery(
        &self,
        delivery: Delivery,
        disable: Option<String>,
        events: Vec<Planned>,
    ) -> Result<(Delivery, Vec<Stored>), StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let old = row(
            &t,
            "SELECT doc, claimed_by FROM deliveries WHERE id = $1 FOR UPDATE",
            &[&delivery.id],
        )
        .await?;
        match old {
            Some(r) => {
                // As on redb, a stored delivery that does not decode is not overwritten.
                let stored: Delivery = decode_one("deliveries", &delivery.id, &r.get::<_, String>(0))?;
                let attempt = fence(&stored, r.get(1), &delivery, self.node())?;
                put_delivery(&t, &delivery, attempt).await?;
            }
            None => insert_deliveries(&t, std::slice::from_ref(&delivery)).await?,
        }
        if let Some(reason) = disable {
            let hook = row(
                &t,
                "SELECT doc FROM webhooks WHERE id = $1 FOR UPDATE",
                &[&delivery.webhook_id],
            )
            .await?;
            if let Some(r) = hook {
                let doc: String = r.get(0);
                let mut w: WebhookRecord = decode_one("webhooks", &delivery.webhook_id, &doc)?;
                w.spec.enabled = false;
                w.disabled_reason = Some(reason);
                exec(
                    &t,
                    "UPDATE webhooks SET doc = $2 WHERE id = $1",
                    &[&delivery.webhook_id, &encode(&w)?],
                )
                .await?;
            }
        }
        let stored = super::events::apply_events(&t, events).await?;
        self.commit(t).await?;
        Ok((delivery, stored))
    }

    async fn requeue_delivery(&self, id: &str, now: DateTime<Utc>) -> Result<Delivery, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let old = row(
            &t,
            "SELECT doc, COALESCE(claimed_by IS NOT NULL AND due > now(), false)
             FROM deliveries WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?;
        let Some(r) = old else {
            return Err(StoreError::NotFound(format!("delivery {id:?} not found")));
        };
        let stored: Delivery = decode_one("deliveries", id, &r.get::<_, String>(0))?;
        let claimed: bool = r.get(1);
        // Refused (delivered, webhook deleted or disabled) on every path, as on redb.
        let delivery = stored.clone().requeued(now)?;
        let hook = row(
            &t,
            "SELECT doc FROM webhooks WHERE id = $1",
            &[&delivery.webhook_id],
        )
        .await?;
        let webhook = match hook {
            Some(h) => Some(decode_one::<WebhookRecord>(
                "webhooks",
                &delivery.webhook_id,
                &h.get::<_, String>(0),
            )?),
            None => None,
        };
        crate::webhooks::replayable(&delivery, webhook.as_ref())?;
        if claimed && stored.status == crate::webhooks::DeliveryStatus::Queued {
            // A node is attempting it now: that attempt is the retry asked for. Making it
            // due would let another node send it beside that one.
            return Ok(stored);
        }
        put_delivery(&t, &delivery, false).await?;
        self.commit(t).await?;
        Ok(delivery)
    }

    fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Paged<Delivery>, StoreError> {
        let status = filter.status.map(delivery_status);
        self.block(async {
            let client = self.client().await?;
            let mut pager = Pager::new(limit);
            let mut before = cursor.map(str::to_string);
            loop {
                let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
                if let Some(b) = &before {
                    params.push(b);
                }
                if let Some(w) = &filter.webhook_id {
                    params.push(w);
                }
                if let Some(s) = &status {
                    params.push(s);
                }
                params.push(&SCAN_BATCH);
                let sql = list_sql(before.is_some(), filter.webhook_id.is_some(), status.is_some());
                let batch = rows(&client, &sql, &params).await?;
                let n = batch.len() as i64;
                let mut next = None;
                for r in batch {
                    let (id, doc): (String, String) = (r.get(0), r.get(1));
                    next = Some(id.clone());
                    let Some(d) = decode_listed::<Delivery>("deliveries", &id, &doc) else {
                        continue;
                    };
                    if filter.matches(&d) && pager.push(&id, d) {
                        return Ok(pager.finish());
                    }
                }
                if n < SCAN_BATCH {
                    return Ok(pager.finish());
                }
                before = next;
            }
        })
    }
}

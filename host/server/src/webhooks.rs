//! `/v1/webhooks` (create, list, get, update, delete, test) and `/v1/deliveries` (the
//! webhooks' task log: list, get, retry).

use super::{ApiError, ApiResult, AppState, Operator, Reader};
use crate::answer::Accepted;
use crate::error::Found;
use crate::extract::{Page, QueryParams};
use crate::resource::{Resource, Stamped};
use axum::Json;
use axum::extract::Path;
use serde::Serialize;
use serde_json::json;
use sundial_core::webhook::{Auth, WebhookSpec};
use sundial_engine::outbox::Committed;
use sundial_store::webhooks::{Delivery, DeliveryFilter, DeliveryStatus, WebhookRecord};

/// `GET /v1/deliveries`: one page, newest first.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct DeliveryPage {
    deliveries: Vec<Delivery>,
    next_cursor: Option<String>,
}

/// Validate a spec against the store too: its formatter is an installed formatter
/// plugin and every secret it names exists.
fn check(state: &AppState, spec: &WebhookSpec) -> ApiResult<()> {
    spec.validate().map_err(ApiError::invalid_field)?;
    match state.store.plugin(&spec.formatter)? {
        None => {
            return Err(ApiError::invalid_field(format!(
                "formatter: plugin {:?} is not installed",
                spec.formatter
            )));
        }
        Some(p) if p.world != sundial_core::plugin::World::Formatter => {
            return Err(ApiError::invalid_field(format!(
                "formatter: plugin {:?} is not a formatter",
                spec.formatter
            )));
        }
        Some(_) => {}
    }
    let mut names: Vec<(String, &String)> = spec
        .signing_secrets
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("signing_secrets[{i}]"), s))
        .collect();
    match &spec.auth {
        Auth::None => {}
        Auth::Basic { password_secret, .. } => names.push(("auth.password_secret".into(), password_secret)),
        Auth::Bearer { token_secret } => names.push(("auth.token_secret".into(), token_secret)),
        Auth::ApiKey { key_secret, .. } => names.push(("auth.key_secret".into(), key_secret)),
    }
    for (field, name) in names {
        if state.store.secret(name)?.is_none() {
            return Err(ApiError::invalid_field(format!(
                "{field}: secret {name:?} does not exist (set it under /v1/secrets)"
            )));
        }
    }
    Ok(())
}

/// The webhook noun.
pub(crate) struct Webhooks;

/// A webhook as the API shows it: the spec's fields, id, timestamps, and why it was
/// disabled (a 410 from its receiver), if it was.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct WebhookView {
    #[serde(flatten)]
    stamped: Stamped<WebhookSpec>,
    disabled_reason: Option<String>,
}

impl Resource for Webhooks {
    type Record = WebhookRecord;
    type Spec = WebhookSpec;
    type View = WebhookView;
    const NOUN: &'static str = "webhook";
    const PLURAL: &'static str = "webhooks";
    const FIXED: &'static [&'static str] = &["id", "created_at", "updated_at", "disabled_reason"];

    crate::resource::store_accessors!(WebhookRecord, webhook, webhooks_page);

    fn check(state: &AppState, spec: WebhookSpec, _: Option<&WebhookRecord>) -> ApiResult<WebhookSpec> {
        check(state, &spec)?;
        Ok(spec)
    }

    async fn insert(state: &AppState, spec: WebhookSpec, who: &str) -> ApiResult<WebhookRecord> {
        let stamp = sundial_core::timestamp::now();
        let record = WebhookRecord {
            id: sundial_core::ids::new_id(),
            created_at: stamp.clone(),
            updated_at: stamp,
            spec,
            disabled_reason: None,
        };
        Ok(state.store.insert_webhook(record, who).await?)
    }

    async fn update(state: &AppState, id: &str, spec: WebhookSpec, who: &str) -> ApiResult<WebhookRecord> {
        let (_, after) = state
            .store
            .update_webhook(id, spec, sundial_core::timestamp::now(), who)
            .await?;
        Ok(after)
    }

    async fn toggle(state: &AppState, key: &str, enabled: bool, who: &str) -> ApiResult<WebhookRecord> {
        crate::resource::toggle_checked::<Self>(state, key, enabled, who).await
    }

    async fn delete(state: &AppState, key: &str, who: &str) -> ApiResult<()> {
        state.store.delete_webhook(key, who).await?;
        Ok(())
    }

    fn view(_: &AppState, record: WebhookRecord) -> ApiResult<WebhookView> {
        Ok(WebhookView {
            stamped: Stamped {
                spec: record.spec,
                id: record.id,
                created_at: record.created_at,
                updated_at: record.updated_at,
            },
            disabled_reason: record.disabled_reason,
        })
    }
}

/// `POST /v1/webhooks/{id}/test`: queue a delivery of a sample event.
pub(super) async fn test(
    Operator(state, caller): Operator,
    Path(id): Path<String>,
) -> ApiResult<Accepted<Delivery>> {
    send_test(&state, &id, caller.who()).await.map(Accepted)
}

/// Queue a delivery of a sample event to webhook `key` (id or name), sent by `who`.
pub(crate) async fn send_test(state: &AppState, key: &str, who: &str) -> ApiResult<Delivery> {
    let hook = Webhooks::get(state, key)?;
    let mut d = sundial_store::webhooks::Delivery::queued(&hook, "test", 0);
    d.event = Some(sundial_core::invocation::Event {
        id: sundial_core::ids::new_id(),
        kind: "sundial.webhook.test".into(),
        source: sundial_core::event::INTERNAL_SOURCE.into(),
        subject: Some(hook.spec.name.clone()),
        time: sundial_core::timestamp::now(),
        data: json!({ "message": "a test delivery from Sundial", "by": who }),
    });
    let mut stored = state
        .engines
        .outbox
        .commit_detached(|store| async move {
            Ok(Committed::new(store.enqueue_deliveries(vec![d]).await?).deliveries())
        })
        .await?
        .value;
    Ok(stored.remove(0))
}

crate::extract::list_query! {
    /// `GET /v1/deliveries`.
    pub(super) struct DeliveryQuery {
        /// Only this webhook (id or name).
        webhook: Option<String>,
        /// queued, delivered or dead.
        #[schemars(extend("enum" = ["queued", "delivered", "dead", null], "type" = ["string", "null"]))]
        status: Option<String>,
    }
}

pub(super) async fn deliveries(
    Reader(state, _): Reader,
    QueryParams(q): QueryParams<DeliveryQuery>,
) -> ApiResult<Json<DeliveryPage>> {
    let page = Page::new(q.limit, q.cursor)?;
    let status = match q.status.as_deref() {
        None => None,
        Some("queued") => Some(DeliveryStatus::Queued),
        Some("delivered") => Some(DeliveryStatus::Delivered),
        Some("dead") => Some(DeliveryStatus::Dead),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "status: {other:?} is not one of queued, delivered, dead"
            )));
        }
    };
    let webhook_id = match &q.webhook {
        Some(w) => Some(Webhooks::get(&state, w)?.id),
        None => None,
    };
    let filter = DeliveryFilter { webhook_id, status };
    let (deliveries, next_cursor) =
        state
            .store
            .list_deliveries(&filter, page.cursor.as_deref(), page.limit)?;
    Ok(Json(DeliveryPage {
        deliveries,
        next_cursor,
    }))
}

pub(super) async fn delivery(Reader(state, _): Reader, Path(id): Path<String>) -> ApiResult<Json<Delivery>> {
    let d = state.store.delivery(&id)?.found("delivery", &id)?;
    Ok(Json(d))
}

/// `POST /v1/deliveries/{id}/retry`: a dead delivery is queued again (its attempts
/// kept); a queued one is made due now; a delivered one, or one whose webhook was
/// deleted or is disabled, is refused with 409.
pub(super) async fn retry(
    Operator(state, _): Operator,
    Path(id): Path<String>,
) -> ApiResult<Accepted<Delivery>> {
    replay(&state, &id).await.map(Accepted)
}

/// Queue delivery `id` again: a dead one with its attempts kept, a queued one due now;
/// a delivered one, or one whose webhook was deleted or is disabled, is refused with 409. The store checks and writes in one transaction
/// ([`sundial_store::webhooks::WebhookStore::requeue_delivery`]), so an attempt that
/// records "delivered" meanwhile is never overwritten and sent again.
pub(crate) async fn replay(state: &AppState, id: &str) -> ApiResult<Delivery> {
    let id = id.to_string();
    let d = state
        .engines
        .outbox
        .commit_detached(|store| async move {
            let d = store.requeue_delivery(&id, chrono::Utc::now()).await?;
            Ok(Committed::new(d).deliveries())
        })
        .await?
        .value;
    Ok(d)
}

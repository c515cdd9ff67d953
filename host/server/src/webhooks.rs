//! `/v1/webhooks` (create, list, get, update, delete, test) and `/v1/deliveries` (the
//! webhooks' task log: list, get, retry).

use super::{ApiError, ApiResult, AppState, Operator, Reader};
use crate::extract::{JsonBody, Page, Patch, QueryParams};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sundial_core::webhook::{Auth, WebhookSpec};
use sundial_engine::outbox::Committed;
use sundial_store::webhooks::{DeliveryFilter, DeliveryStatus, WebhookRecord};

fn invalid(message: String) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_field",
        message,
    }
}

/// Validate a spec against the store too: its formatter is an installed formatter
/// plugin and every secret it names exists.
fn check(state: &AppState, spec: &WebhookSpec) -> ApiResult<()> {
    spec.validate().map_err(invalid)?;
    match state.store.plugin(&spec.formatter)? {
        None => {
            return Err(invalid(format!(
                "formatter: plugin {:?} is not installed",
                spec.formatter
            )));
        }
        Some(p) if p.world != sundial_core::plugin::World::Formatter => {
            return Err(invalid(format!(
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
            return Err(invalid(format!(
                "{field}: secret {name:?} does not exist (set it under /v1/secrets)"
            )));
        }
    }
    Ok(())
}

fn view(record: &WebhookRecord) -> Value {
    let mut v = serde_json::to_value(&record.spec).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("id".into(), json!(record.id));
        m.insert("created_at".into(), json!(record.created_at));
        m.insert("updated_at".into(), json!(record.updated_at));
        m.insert("disabled_reason".into(), json!(record.disabled_reason));
    }
    v
}

fn find(state: &AppState, id: &str) -> ApiResult<WebhookRecord> {
    state
        .store
        .webhook(id)?
        .ok_or_else(|| ApiError::not_found(format!("webhook {id:?} not found")))
}

pub(super) async fn create(
    State(state): State<AppState>,
    Operator(caller): Operator,
    JsonBody(spec): JsonBody<WebhookSpec>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    check(&state, &spec)?;
    let stamp = sundial_core::timestamp::now();
    let record = WebhookRecord {
        id: sundial_core::ids::new_id(),
        created_at: stamp.clone(),
        updated_at: stamp,
        spec,
        disabled_reason: None,
    };
    let record = state.store.insert_webhook(record, caller.who()).await?;
    Ok((StatusCode::CREATED, Json(view(&record))))
}

pub(super) async fn list(State(state): State<AppState>, _: Reader, page: Page) -> ApiResult<Json<Value>> {
    let (records, next) = state.store.webhooks_page(page.cursor.as_deref(), page.limit)?;
    Ok(Json(
        json!({ "webhooks": records.iter().map(view).collect::<Vec<_>>(), "next_cursor": next }),
    ))
}

pub(super) async fn get(
    State(state): State<AppState>,
    _: Reader,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(view(&find(&state, &id)?)))
}

pub(super) async fn update(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
    Patch(patch): Patch,
) -> ApiResult<Json<Value>> {
    let current = find(&state, &id)?;
    let spec: WebhookSpec = super::merge_patch(
        &current.spec,
        patch,
        &["id", "created_at", "updated_at", "disabled_reason"],
    )?;
    check(&state, &spec)?;
    let (_, after) = state
        .store
        .update_webhook(&current.id, spec, sundial_core::timestamp::now(), caller.who())
        .await?;
    Ok(Json(view(&after)))
}

pub(super) async fn delete(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_webhook(&id, caller.who()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/webhooks/{id}/test`: queue a delivery of a sample event.
pub(super) async fn test(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let hook = find(&state, &id)?;
    let mut d = sundial_store::webhooks::Delivery::queued(&hook, "test", 0);
    d.event = Some(sundial_core::invocation::Event {
        id: sundial_core::ids::new_id(),
        kind: "sundial.webhook.test".into(),
        source: sundial_core::event::INTERNAL_SOURCE.into(),
        subject: Some(hook.spec.name.clone()),
        time: sundial_core::timestamp::now(),
        data: json!({ "message": "a test delivery from Sundial", "by": caller.who() }),
    });
    let store = &state.store;
    let mut stored = state
        .engines
        .outbox
        .commit(async { Ok(Committed::new(store.enqueue_deliveries(vec![d]).await?).deliveries()) })
        .await?
        .value;
    let d = stored.remove(0);
    Ok((StatusCode::ACCEPTED, Json(json!(d))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeliveryQuery {
    webhook: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

pub(super) async fn deliveries(
    State(state): State<AppState>,
    _: Reader,
    QueryParams(q): QueryParams<DeliveryQuery>,
) -> ApiResult<Json<Value>> {
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
        Some(w) => Some(find(&state, w)?.id),
        None => None,
    };
    let filter = DeliveryFilter { webhook_id, status };
    let (deliveries, next) = state
        .store
        .list_deliveries(&filter, page.cursor.as_deref(), page.limit)?;
    Ok(Json(json!({ "deliveries": deliveries, "next_cursor": next })))
}

pub(super) async fn delivery(
    State(state): State<AppState>,
    _: Reader,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let d = state
        .store
        .delivery(&id)?
        .ok_or_else(|| ApiError::not_found(format!("delivery {id:?} not found")))?;
    Ok(Json(json!(d)))
}

/// `POST /v1/deliveries/{id}/retry`: a dead delivery is queued again (its attempts
/// kept); a queued one is made due now; a delivered one is refused with 409.
pub(super) async fn retry(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut d = state
        .store
        .delivery(&id)?
        .ok_or_else(|| ApiError::not_found(format!("delivery {id:?} not found")))?;
    if d.status == DeliveryStatus::Delivered {
        return Err(ApiError::conflict(format!("delivery {id} was delivered already")));
    }
    d.status = DeliveryStatus::Queued;
    d.next_attempt_at = Some(chrono::Utc::now());
    d.finished_at = None;
    d.error = None;
    let store = &state.store;
    let d = state
        .engines
        .outbox
        .commit(async { Ok(Committed::new(store.save_delivery(d, None, Vec::new()).await?.0).deliveries()) })
        .await?
        .value;
    Ok((StatusCode::ACCEPTED, Json(json!(d))))
}

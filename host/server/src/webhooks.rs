//! `/v1/webhooks` (create, list, get, update, delete, test) and `/v1/deliveries` (the
//! webhooks' task log: list, get, retry).

use super::{
    ApiError, ApiResult, AppState, Caller, MAX_BODY_BYTES, OPERATORS, READERS, parse_json, read_body,
};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
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
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(OPERATORS, "create webhooks")?;
    let body = read_body(body, MAX_BODY_BYTES).await?;
    let spec: WebhookSpec = parse_json(&headers, &body)?;
    check(&state, &spec)?;
    let stamp = sundial_core::timestamp::now();
    let record = WebhookRecord {
        id: sundial_core::ids::new_id(),
        created_at: stamp.clone(),
        updated_at: stamp,
        spec,
        disabled_reason: None,
    };
    let record = state.store.insert_webhook(record, &caller.token.name).await?;
    Ok((StatusCode::CREATED, Json(view(&record))))
}

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<super::PageQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    caller.require(READERS, "read webhooks")?;
    let (cursor, limit) = super::PageQuery::check(query)?;
    let (records, next) = state.store.webhooks_page(cursor.as_deref(), limit)?;
    Ok(Json(
        json!({ "webhooks": records.iter().map(view).collect::<Vec<_>>(), "next_cursor": next }),
    ))
}

pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(READERS, "read webhooks")?;
    Ok(Json(view(&find(&state, &id)?)))
}

pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    caller.require(OPERATORS, "change webhooks")?;
    let body = read_body(body, MAX_BODY_BYTES).await?;
    let Value::Object(patch) = parse_json::<Value>(&headers, &body)? else {
        return Err(ApiError::bad_request(
            "request body: expected a JSON object of fields to change",
        ));
    };
    let current = find(&state, &id)?;
    let spec: WebhookSpec = super::merge_patch(
        &current.spec,
        patch,
        &["id", "created_at", "updated_at", "disabled_reason"],
    )?;
    check(&state, &spec)?;
    let (_, after) = state
        .store
        .update_webhook(
            &current.id,
            spec,
            sundial_core::timestamp::now(),
            &caller.token.name,
        )
        .await?;
    Ok(Json(view(&after)))
}

pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(OPERATORS, "delete webhooks")?;
    state.store.delete_webhook(&id, &caller.token.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/webhooks/{id}/test`: queue a delivery of a sample event.
pub(super) async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(OPERATORS, "test webhooks")?;
    let hook = find(&state, &id)?;
    let mut d = sundial_store::webhooks::Delivery::queued(&hook, "test", 0);
    d.event = Some(sundial_core::invocation::Event {
        id: sundial_core::ids::new_id(),
        kind: "sundial.webhook.test".into(),
        source: sundial_core::event::INTERNAL_SOURCE.into(),
        subject: Some(hook.spec.name.clone()),
        time: sundial_core::timestamp::now(),
        data: json!({ "message": "a test delivery from Sundial", "by": caller.token.name }),
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
    caller: Caller,
    query: Result<Query<DeliveryQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    caller.require(READERS, "read deliveries")?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(format!("query: {}", e.body_text())))?;
    let (cursor, limit) = super::PageQuery::check(Ok(Query(super::PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    })))?;
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
    let (page, next) = state.store.list_deliveries(&filter, cursor.as_deref(), limit)?;
    Ok(Json(json!({ "deliveries": page, "next_cursor": next })))
}

pub(super) async fn delivery(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(READERS, "read deliveries")?;
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
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(OPERATORS, "retry deliveries")?;
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

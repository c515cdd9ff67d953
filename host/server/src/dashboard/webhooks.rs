//! The webhook pages: endpoints with their health (success rate over the latest
//! deliveries, the last error, disabled after a 410), one endpoint with its deliveries,
//! one delivery with its attempts, request and response; replay a delivery, send a test.

use super::tasks::After;
use super::{Act, Browser, Chrome, page_error, render};
use crate::error::Found;
use crate::resource::Resource;
use crate::webhooks::Webhooks;
use crate::{ApiError, AppState};
use askama::Template;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;
use sundial_store::webhooks::{Delivery, DeliveryFilter, DeliveryStatus, WebhookRecord};

/// Webhooks on one page of the list.
const PAGE: usize = 50;
/// Deliveries a webhook's health is computed over: its latest 50...
const HEALTH_OVER: usize = 50;
/// ...among the latest 5,000 deliveries of all webhooks (in lists; a webhook's own
/// page reads its latest 50 wherever they are).
const HEALTH_SCAN: usize = 5000;
/// Deliveries shown on a webhook's page.
const LATEST: usize = 50;

/// The word of a delivery status.
fn status_word(s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Queued => "queued",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Dead => "dead",
    }
}

/// A webhook with its health.
pub(super) struct HookRow {
    pub(super) id: String,
    pub(super) name: String,
    url: String,
    formatter: String,
    enabled: bool,
    pub(super) disabled_reason: String,
    /// Delivered among the finished latest deliveries, as a percentage ("" when none).
    pub(super) success: String,
    pub(super) finished: usize,
    pub(super) last_error: String,
    /// In trouble: disabled by an answer, or fewer than 90% delivered.
    pub(super) trouble: bool,
}

/// The latest deliveries of a webhook, newest first.
fn latest(state: &AppState, webhook_id: &str, limit: usize) -> Result<Vec<Delivery>, ApiError> {
    let filter = DeliveryFilter {
        webhook_id: Some(webhook_id.to_string()),
        status: None,
    };
    Ok(state.store.list_deliveries(&filter, None, limit)?.0)
}

impl HookRow {
    fn of(hook: WebhookRecord, deliveries: &[Delivery]) -> HookRow {
        let finished: Vec<&Delivery> = deliveries
            .iter()
            .filter(|d| d.status != DeliveryStatus::Queued)
            .collect();
        let delivered = finished
            .iter()
            .filter(|d| d.status == DeliveryStatus::Delivered)
            .count();
        let rate = (!finished.is_empty()).then(|| delivered * 100 / finished.len());
        let last_error = deliveries
            .iter()
            .find_map(|d| d.error.clone())
            .unwrap_or_default();
        HookRow {
            trouble: hook.disabled_reason.is_some() || rate.is_some_and(|r| r < 90),
            success: rate.map(|r| format!("{r}%")).unwrap_or_default(),
            finished: finished.len(),
            last_error,
            disabled_reason: hook.disabled_reason.unwrap_or_default(),
            enabled: hook.spec.enabled,
            formatter: hook.spec.formatter,
            url: hook.spec.url,
            name: hook.spec.name,
            id: hook.id,
        }
    }
}

/// The latest deliveries of every webhook (at most [`HEALTH_OVER`] each) among the
/// latest [`HEALTH_SCAN`] deliveries: one bounded scan for a whole list.
fn recent_by_hook(state: &AppState) -> Result<HashMap<String, Vec<Delivery>>, ApiError> {
    let (deliveries, _) = state
        .store
        .list_deliveries(&DeliveryFilter::default(), None, HEALTH_SCAN)?;
    let mut by_hook: HashMap<String, Vec<Delivery>> = HashMap::new();
    for d in deliveries {
        let mine = by_hook.entry(d.webhook_id.clone()).or_default();
        if mine.len() < HEALTH_OVER {
            mine.push(d);
        }
    }
    Ok(by_hook)
}

/// The webhooks of one list page with their health, and the next page's cursor.
pub(super) fn hooks(
    state: &AppState,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<HookRow>, Option<String>), ApiError> {
    let (records, next) = state.store.webhooks_page(after, limit)?;
    let recent = recent_by_hook(state)?;
    let rows = records
        .into_iter()
        .map(|hook| {
            let deliveries = recent.get(&hook.id).map(Vec::as_slice).unwrap_or_default();
            HookRow::of(hook, deliveries)
        })
        .collect();
    Ok((rows, next))
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    chrome: Option<Chrome>,
    rows: Vec<HookRow>,
    next: Option<String>,
}

/// `GET /webhooks`.
pub(super) async fn list(browser: Browser, Query(q): Query<After>) -> Response {
    let state = &browser.state;
    let page = (|| -> Result<WebhooksPage, ApiError> {
        crate::extract::check_cursor(&q.after)?;
        let (rows, next) = hooks(state, q.after.as_deref(), PAGE)?;
        Ok(WebhooksPage {
            chrome: Some(browser.chrome("webhooks")),
            rows,
            next,
        })
    })();
    page.map_or_else(page_error, |p| render(&p))
}

/// A delivery as a row.
struct DeliveryRow {
    id: String,
    status: &'static str,
    cause: String,
    at: String,
    attempts: usize,
    error: String,
}

impl DeliveryRow {
    fn of(d: &Delivery) -> DeliveryRow {
        DeliveryRow {
            id: d.id.clone(),
            status: status_word(d.status),
            cause: d.cause.clone(),
            at: d.created_at.clone(),
            attempts: d.attempts.len(),
            error: d.error.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "webhook.html")]
struct WebhookPage {
    chrome: Option<Chrome>,
    hook: HookRow,
    rows: Vec<DeliveryRow>,
    config: String,
}

/// `GET /webhooks/{id}` (an id or a name).
pub(super) async fn show(browser: Browser, Path(key): Path<String>) -> Response {
    let state = &browser.state;
    let page = (|| -> Result<WebhookPage, ApiError> {
        let hook = Webhooks::get(state, &key)?;
        let deliveries = latest(state, &hook.id, LATEST.max(HEALTH_OVER))?;
        Ok(WebhookPage {
            chrome: Some(browser.chrome("webhooks")),
            rows: deliveries.iter().take(LATEST).map(DeliveryRow::of).collect(),
            // As the API shows it: auth names secrets, it holds none.
            config: serde_json::to_string_pretty(&hook.spec).unwrap_or_default(),
            hook: HookRow::of(hook, &deliveries),
        })
    })();
    page.map_or_else(page_error, |p| render(&p))
}

#[derive(Template)]
#[template(path = "delivery.html")]
struct DeliveryPage {
    chrome: Option<Chrome>,
    d: Delivery,
    status: &'static str,
    event: String,
}

/// `GET /deliveries/{id}`.
pub(super) async fn delivery(browser: Browser, Path(id): Path<String>) -> Response {
    let state = &browser.state;
    let page = (|| -> Result<DeliveryPage, ApiError> {
        let d = state.store.delivery(&id)?.found("delivery", &id)?;
        Ok(DeliveryPage {
            chrome: Some(browser.chrome("webhooks")),
            status: status_word(d.status),
            event: d
                .event
                .as_ref()
                .map(|e| serde_json::to_string_pretty(e).unwrap_or_default())
                .unwrap_or_default(),
            d,
        })
    })();
    page.map_or_else(page_error, |p| render(&p))
}

/// `POST /deliveries/{id}/replay`: queue it again; then to it.
pub(super) async fn replay(Path(id): Path<String>, act: Act) -> Response {
    match crate::webhooks::replay(&act.browser.state, &id).await {
        Ok(d) => Redirect::to(&format!("/deliveries/{}", d.id)).into_response(),
        Err(e) => page_error(e),
    }
}

/// `POST /webhooks/{id}/test`: queue a test delivery; then to it.
pub(super) async fn test(Path(key): Path<String>, act: Act) -> Response {
    match crate::webhooks::send_test(&act.browser.state, &key, act.browser.caller.who()).await {
        Ok(d) => Redirect::to(&format!("/deliveries/{}", d.id)).into_response(),
        Err(e) => page_error(e),
    }
}

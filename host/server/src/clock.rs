//! `/v1/clock`: read the scheduler's clock; move it when the daemon runs on a manual
//! test clock (`sundial serve --test-clock TIME`). Moving it returns once every slot and
//! every delayed trigger target due by the new time has been recorded, so tests can
//! assert on runs right away.

use super::{Admin, ApiError, ApiResult, AppState, Reader};
use crate::extract::JsonBody;
use axum::Json;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sundial_engine::clock::ClockError;

/// Longest single advance: 100 years, in seconds.
pub const MAX_ADVANCE_SECONDS: u64 = 100 * 366 * 24 * 3600;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    { "required": ["to"], "properties": { "to": { "type": "string" }, "advance_seconds": { "type": "null" } } },
    { "required": ["advance_seconds"], "properties": { "advance_seconds": { "type": "integer" }, "to": { "type": "null" } } }
]))]
pub(super) struct MoveRequest {
    /// Move to this instant (RFC 3339, kept to the millisecond).
    #[serde(default, with = "sundial_core::timestamp::serde_millis_opt")]
    #[schemars(with = "Option<chrono::DateTime<chrono::Utc>>")]
    to: Option<DateTime<Utc>>,
    /// Or move forward by this many seconds.
    #[schemars(range(max = 3_162_240_000u64))]
    advance_seconds: Option<u64>,
}

/// The scheduler's clock: its time, and whether it is a test clock.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct ClockView {
    now: String,
    manual: bool,
}

fn view(state: &AppState) -> ClockView {
    let clock = state.engines.scheduler.clock();
    ClockView {
        now: sundial_core::timestamp::text(clock.now()),
        manual: clock.is_manual(),
    }
}

pub(super) async fn get(Reader(state, _): Reader) -> ApiResult<Json<ClockView>> {
    Ok(Json(view(&state)))
}

pub(super) async fn set(
    Admin(state, _): Admin,
    JsonBody(req): JsonBody<MoveRequest>,
) -> ApiResult<Json<ClockView>> {
    let clock = state.engines.scheduler.clock();
    let to = match (req.to, req.advance_seconds) {
        (Some(to), None) => to,
        (None, Some(secs)) => {
            if secs > MAX_ADVANCE_SECONDS {
                return Err(ApiError::bad_request(format!(
                    "advance_seconds: {secs} is more than {MAX_ADVANCE_SECONDS} (100 years)"
                )));
            }
            clock
                .now()
                .checked_add_signed(chrono::TimeDelta::seconds(secs as i64))
                .ok_or_else(|| ApiError::bad_request("advance_seconds: the result is out of range"))?
        }
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of `to` (RFC 3339) or `advance_seconds`",
            ));
        }
    };
    clock.set(to).map_err(|e| match e {
        ClockError::NotManual => ApiError {
            status: StatusCode::CONFLICT,
            code: "system_clock",
            message: e.to_string(),
        },
        ClockError::Backwards { .. } => ApiError::conflict(format!("to: {e}")),
    })?;
    state.engines.scheduler.settle().await;
    state.engines.timers.settle().await;
    Ok(Json(view(&state)))
}

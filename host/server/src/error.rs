//! API errors: every failure is `{"error": {"code", "message"}}` with a precise status.

use crate::answer::Answers;
use aide::generate::GenContext;
use aide::openapi::Operation;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sundial_store::StoreError;

/// An error answer of the API.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `invalid_field`, `not_found`.
    pub code: &'static str,
    /// What went wrong, for a human.
    pub message: String,
}

/// What the store answers with an `Option`: None becomes 404 `{noun} {key:?} not found`.
pub(crate) trait Found<T> {
    /// The value, or a 404 naming the noun and the key asked for.
    fn found(self, noun: &str, key: &str) -> ApiResult<T>;
}

impl<T> Found<T> for Option<T> {
    fn found(self, noun: &str, key: &str) -> ApiResult<T> {
        self.ok_or_else(|| ApiError::not_found(format!("{noun} {key:?} not found")))
    }
}

impl ApiError {
    /// 400 with code `invalid_field`: a value the domain refuses, its message naming
    /// the field.
    pub fn invalid_field(message: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_field",
            message: message.to_string(),
        }
    }
    /// 400 with code `bad_request`.
    pub fn bad_request(message: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.to_string(),
        }
    }
    /// 404 with code `not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
        }
    }
    /// 401 with code `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.into(),
        }
    }
    /// 403 with code `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: message.into(),
        }
    }
    /// 409 with code `conflict`.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: message.into(),
        }
    }
    /// 415 with code `unsupported_media_type`.
    pub fn media_type(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
            message: message.into(),
        }
    }
    /// 500 with code `internal`.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: message.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Conflict(m) | StoreError::Stale(m) => ApiError::conflict(m),
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Invalid(m) => ApiError::bad_request(m),
            StoreError::Closed => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "shutting_down",
                message: "the daemon is shutting down".into(),
            },
            StoreError::Unavailable(m) => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "storage_unavailable",
                message: format!("{m}; nothing was changed, retry later"),
            },
            e @ StoreError::Unreadable(_) => ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "unreadable_record",
                message: e.to_string(),
            },
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<sundial_store::sealing::KeyError> for ApiError {
    fn from(e: sundial_store::sealing::KeyError) -> ApiError {
        ApiError::internal(e.to_string())
    }
}

impl From<sundial_core::Invalid> for ApiError {
    fn from(e: sundial_core::Invalid) -> ApiError {
        ApiError::invalid_field(e)
    }
}

impl From<sundial_core::task::FieldError> for ApiError {
    fn from(e: sundial_core::task::FieldError) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_field",
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE || self.status == StatusCode::TOO_MANY_REQUESTS {
            // Clients should come back, not hammer: a second is the store's reopen pace.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

/// Result of an API handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// The body of every error answer.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// `code` for programs, `message` for people (it names the field or the thing).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct ErrorDetail {
    /// A stable code such as `invalid_field`, `not_found`, `conflict`.
    pub code: String,
    /// What went wrong, naming the field or the thing.
    pub message: String,
}

/// Every handler may answer these (the role gates and body extractors add theirs).
impl aide::OperationOutput for ApiError {
    type Inner = ErrorBody;

    fn inferred_responses(ctx: &mut GenContext, _: &mut Operation) -> Answers {
        let mut answer = |status, when| crate::answer::error_answer(ctx, status, when);
        vec![
            answer(400, "invalid input (the message names the field)"),
            answer(404, "not found (the message names what)"),
            answer(
                503,
                "overloaded (max_requests in progress) or the data disk is failing; Retry-After says when to try again",
            ),
        ]
    }
}

//! Request extractors: every handler's input is parsed and checked here, before the
//! handler runs, so a handler only decodes typed values, calls the engine or store and
//! encodes the answer.
//!
//! Order matters and follows the argument order of a handler (axum runs extractors
//! left to right): the role gate first (401 unauthenticated, 403 wrong role, before
//! the body is read), then [`QueueRoom`] (429 before a body is read), then the path
//! and query ([`QueryParams`], [`Page`]: 400 naming the parameter), then the body
//! ([`JsonBody`], [`OptionalJsonBody`], [`Patch`]: 413, 408, 415, 400 naming the field).

use crate::{ApiError, ApiResult, AppState, MAX_BODY_BYTES, read_body};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sundial_store::tokens::{Role, TokenRecord, token_hash};

/// The authenticated caller of a request (any role). Handlers take one of the role
/// gates ([`Reader`], [`Operator`], [`Admin`], [`Ingester`]) instead.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Token record.
    pub token: TokenRecord,
}

impl Caller {
    /// The name recorded as "who" in runs and the audit log.
    pub fn who(&self) -> &str {
        &self.token.name
    }

    /// Refuse with 403 unless the caller has one of `roles`, naming the request.
    fn admit(self, roles: &[Role], parts: &Parts) -> ApiResult<Caller> {
        if roles.contains(&self.token.role) {
            return Ok(self);
        }
        let needed: Vec<&str> = roles.iter().map(|r| role_name(*r)).collect();
        Err(ApiError::forbidden(format!(
            "token {:?} has role {}, which may not {} {}: that needs the role {}",
            self.token.name,
            role_name(self.token.role),
            parts.method,
            parts.uri.path(),
            needed.join(" or ")
        )))
    }
}

/// A role as the API and the dashboard name it.
pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Operator => "operator",
        Role::Viewer => "viewer",
        Role::Ingest => "ingest",
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <token>` header"))?;
        let secret = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <token>`"))?;
        // Looked up by sha256: the secret itself is never stored or compared.
        match state.store.token_by_hash(&token_hash(secret))? {
            Some(token) => Ok(Caller { token }),
            None => Err(ApiError::unauthorized("unknown or revoked token")),
        }
    }
}

/// Roles that may read.
pub const READERS: &[Role] = &[Role::Admin, Role::Operator, Role::Viewer];
/// Roles that may change tasks, runs, schedules, triggers, webhooks and calendars.
pub const OPERATORS: &[Role] = &[Role::Admin, Role::Operator];
/// Roles that may manage plugins, tokens, secrets' values, backups and the clock.
pub const ADMINS: &[Role] = &[Role::Admin];
/// Roles that may post events.
pub const INGESTERS: &[Role] = &[Role::Admin, Role::Operator, Role::Ingest];

macro_rules! role_gate {
    ($(#[$doc:meta])* $name:ident = $roles:expr) => {
        $(#[$doc])*
        ///
        /// It carries the daemon's state beside the caller, so a handler takes one
        /// argument for both: `Reader(state, _): Reader`.
        #[derive(Clone)]
        pub struct $name(pub AppState, pub Caller);

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<$name, ApiError> {
                let caller = Caller::from_request_parts(parts, state).await?;
                Ok($name(state.clone(), caller.admit($roles, parts)?))
            }
        }
    };
}

role_gate!(
    /// A caller who may read: admin, operator or viewer (403 for ingest).
    Reader = READERS
);
role_gate!(
    /// A caller who may change things: admin or operator.
    Operator = OPERATORS
);
role_gate!(
    /// A caller with the admin role.
    Admin = ADMINS
);
role_gate!(
    /// A caller who may post events: admin, operator or ingest.
    Ingester = INGESTERS
);

/// Room in the run queue: 429 when `max_queued_runs` are waiting, before the body is
/// read (requests that would queue runs take it).
pub struct QueueRoom;

impl FromRequestParts<AppState> for QueueRoom {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<QueueRoom, ApiError> {
        state
            .admission
            .check_queue(state.engines.outbox.queue().backlog())?;
        Ok(QueueRoom)
    }
}

/// The query string parsed into `T` (unknown parameters refused where `T` says so):
/// 400 `query: ...` naming the parameter.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<QueryParams<T>, ApiError> {
        let Query(q) = Query::<T>::try_from_uri(&parts.uri)
            .map_err(|e| ApiError::bad_request(format!("query: {}", e.body_text())))?;
        Ok(QueryParams(q))
    }
}

/// Declares the query of a paginated list: its own fields, then (with `time = "What"`)
/// `since`/`until` as RFC 3339 instants, then `limit` (1-1000) and `cursor` (an id), as
/// [`Page`] checks them; unknown parameters are refused.
macro_rules! list_query {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($fields:tt)* } time = $what:literal) => {
        $crate::extract::list_query! {
            $(#[$meta])* $vis struct $name {
                $($fields)*
                #[doc = concat!($what, " at or after this instant (RFC 3339).")]
                #[schemars(with = "Option<chrono::DateTime<chrono::Utc>>")]
                since: Option<String>,
                #[doc = concat!($what, " before this instant (RFC 3339).")]
                #[schemars(with = "Option<chrono::DateTime<chrono::Utc>>")]
                until: Option<String>,
            }
        }
    };
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($fields:tt)* }) => {
        $(#[$meta])*
        #[derive(serde::Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        $vis struct $name {
            $($fields)*
            /// Page size, 1-1000. Default 50.
            #[schemars(range(min = 1, max = 1000))]
            limit: Option<usize>,
            /// Continue after this id (the previous page's `next_cursor`).
            #[schemars(regex(pattern = r"^[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$"))]
            cursor: Option<String>,
        }
    };
}
pub(crate) use list_query;

list_query! {
    /// `?limit=N&cursor=ID` of the paginated lists.
    pub struct PageQuery {}
}

/// A checked page request: a cursor that is an id, a limit in 1..=1000 (default 50).
#[derive(Debug, Clone)]
pub struct Page {
    /// Continue after this id.
    pub cursor: Option<String>,
    /// Most items.
    pub limit: usize,
}

impl Page {
    /// Check `limit` and `cursor` as every paginated list does.
    pub fn new(limit: Option<usize>, cursor: Option<String>) -> ApiResult<Page> {
        let limit = Page::limit(limit, 50)?;
        check_cursor(&cursor)?;
        Ok(Page { cursor, limit })
    }

    /// Check a `limit` query parameter (1..=1000); `default` when it is absent.
    pub fn limit(limit: Option<usize>, default: usize) -> ApiResult<usize> {
        let limit = limit.unwrap_or(default);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "limit: {limit} is outside 1..=1000"
            )));
        }
        Ok(limit)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Page {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Page, ApiError> {
        let QueryParams(q) = QueryParams::<PageQuery>::from_request_parts(parts, state).await?;
        Page::new(q.limit, q.cursor)
    }
}

/// Refuse a `cursor` that is not an id (every paginated list takes the previous page's
/// `next_cursor`, an id).
pub fn check_cursor(cursor: &Option<String>) -> ApiResult<()> {
    match cursor {
        Some(c) if ulid::Ulid::from_string(c).is_err() => {
            Err(ApiError::bad_request(format!("cursor: {c:?} is not an id")))
        }
        _ => Ok(()),
    }
}

/// A JSON body of at most `LIMIT` bytes parsed into `T`: 413 beyond the limit, 408
/// when it does not arrive in time, 415 for another content type, 400 naming the field
/// (see [`crate::parse_json`]).
pub struct JsonBody<T, const LIMIT: usize = MAX_BODY_BYTES>(pub T);

impl<T: DeserializeOwned, const LIMIT: usize> FromRequest<AppState> for JsonBody<T, LIMIT> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &AppState) -> Result<JsonBody<T, LIMIT>, ApiError> {
        let (headers, body) = body_bytes(req, LIMIT).await?;
        Ok(JsonBody(crate::parse_json(&headers, &body)?))
    }
}

/// Like [`JsonBody`], but an empty body is `T::default()`.
pub struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &AppState) -> Result<OptionalJsonBody<T>, ApiError> {
        let (headers, body) = body_bytes(req, MAX_BODY_BYTES).await?;
        if body.is_empty() {
            return Ok(OptionalJsonBody(T::default()));
        }
        Ok(OptionalJsonBody(crate::parse_json(&headers, &body)?))
    }
}

/// A PATCH body: a JSON object of the top-level fields to change (RFC 7386 merge; see
/// [`crate::merge_patch`]).
pub struct Patch(pub serde_json::Map<String, Value>);

impl FromRequest<AppState> for Patch {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Patch, ApiError> {
        let JsonBody(value) = JsonBody::<Value>::from_request(req, state).await?;
        match value {
            Value::Object(map) => Ok(Patch(map)),
            _ => Err(ApiError::bad_request(
                "request body: expected a JSON object of fields to change",
            )),
        }
    }
}

/// The headers and the whole body of `req` (at most `limit` bytes).
pub async fn body_bytes(req: Request, limit: usize) -> ApiResult<(HeaderMap, axum::body::Bytes)> {
    let (parts, body) = req.into_parts();
    let bytes = read_body(body, limit).await?;
    Ok((parts.headers, bytes))
}

// How each extractor describes itself in the OpenAPI document (see `openapi.rs`).

use crate::answer::Answers;
use aide::OperationInput;
use aide::generate::GenContext;
use aide::openapi::{Operation, RequestBody};
use aide::operation::{ParamLocation, add_parameters, parameters_from_schema, set_body};

use crate::answer::error_answer as error;

macro_rules! document_gate {
    ($name:ident, $roles:literal) => {
        impl OperationInput for $name {
            fn operation_input(_: &mut GenContext, operation: &mut Operation) {
                operation.description = Some(concat!("Roles: ", $roles, ".").to_string());
                operation.security = vec![[("bearer".to_string(), Vec::new())].into_iter().collect()];
            }

            fn inferred_early_responses(ctx: &mut GenContext, _: &mut Operation) -> Answers {
                vec![
                    error(ctx, 401, "missing or unknown token"),
                    error(
                        ctx,
                        403,
                        concat!("the token's role may not do this (it needs ", $roles, ")"),
                    ),
                ]
            }
        }
    };
}

document_gate!(Reader, "admin, operator, viewer");
document_gate!(Operator, "admin, operator");
document_gate!(Admin, "admin");
document_gate!(Ingester, "admin, operator, ingest");

impl OperationInput for QueueRoom {
    fn inferred_early_responses(ctx: &mut GenContext, _: &mut Operation) -> Answers {
        vec![error(
            ctx,
            429,
            "max_queued_runs runs wait for a worker; Retry-After says when to try again",
        )]
    }
}

/// The fields of `T` as query parameters.
fn query_parameters<T: schemars::JsonSchema>(ctx: &mut GenContext, operation: &mut Operation) {
    let schema = ctx.schema.subschema_for::<T>();
    let params = parameters_from_schema(ctx, schema, ParamLocation::Query);
    add_parameters(ctx, operation, params);
}

impl<T: schemars::JsonSchema> OperationInput for QueryParams<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        query_parameters::<T>(ctx, operation);
    }
}

impl OperationInput for Page {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        query_parameters::<PageQuery>(ctx, operation);
    }
}

/// A JSON request body of type `T`.
fn json_body<T: schemars::JsonSchema>(ctx: &mut GenContext, operation: &mut Operation, required: bool) {
    let body = RequestBody {
        description: None,
        content: crate::answer::json_content::<T>(ctx),
        required,
        extensions: Default::default(),
    };
    set_body(ctx, operation, body);
}

/// What reading a body may answer before the handler runs.
fn body_errors(ctx: &mut GenContext) -> Answers {
    vec![
        error(ctx, 408, "the body did not arrive within body_timeout"),
        error(ctx, 413, "the body is over the size limit"),
        error(ctx, 415, "not application/json"),
    ]
}

impl<T: schemars::JsonSchema, const LIMIT: usize> OperationInput for JsonBody<T, LIMIT> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        json_body::<T>(ctx, operation, true);
    }

    fn inferred_early_responses(ctx: &mut GenContext, _: &mut Operation) -> Answers {
        body_errors(ctx)
    }
}

impl<T: schemars::JsonSchema> OperationInput for OptionalJsonBody<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        json_body::<T>(ctx, operation, false);
    }

    fn inferred_early_responses(ctx: &mut GenContext, _: &mut Operation) -> Answers {
        body_errors(ctx)
    }
}

/// A PATCH body: any fields of the noun's spec; `null` resets one to its default.
#[derive(schemars::JsonSchema)]
#[schemars(rename = "Patch")]
#[allow(dead_code)]
struct PatchDoc(serde_json::Map<String, Value>);

impl OperationInput for Patch {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        json_body::<PatchDoc>(ctx, operation, true);
    }

    fn inferred_early_responses(ctx: &mut GenContext, _: &mut Operation) -> Answers {
        body_errors(ctx)
    }
}

//! Typed answers whose status is part of the type, so the OpenAPI document states it:
//! [`Created`] (201), [`Accepted`] (202), [`Deleted`] (204), and the two answers whose
//! status depends on what happened, [`Upserted`] (201 or 200) and [`Started`] (202 or
//! 200). A plain `Json<T>` is 200. Errors are [`crate::ApiError`].

use aide::OperationOutput;
use aide::generate::GenContext;
use aide::openapi::{MediaType, Operation, Response, SchemaObject, StatusCode as Code};
use axum::Json;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Serialize;

/// What an answer type or extractor adds to an operation's responses: (status, response).
pub type Answers = Vec<(Option<Code>, Response)>;

/// `application/json` content of type `T` (of an answer or a request body).
pub(crate) fn json_content<T: JsonSchema>(ctx: &mut GenContext) -> IndexMap<String, MediaType> {
    let json_schema = ctx.schema.subschema_for::<T>();
    let media = MediaType {
        schema: Some(SchemaObject {
            json_schema,
            example: None,
            external_docs: None,
        }),
        ..Default::default()
    };
    [("application/json".to_string(), media)].into_iter().collect()
}

/// The documentation of a JSON answer of type `T`.
pub(crate) fn json_response<T: JsonSchema>(ctx: &mut GenContext, description: &str) -> Response {
    Response {
        description: description.to_string(),
        content: json_content::<T>(ctx),
        ..Default::default()
    }
}

/// Content whose schema is written by hand (for the few bodies not derived).
pub(crate) fn media(schema: serde_json::Value) -> MediaType {
    MediaType {
        schema: Some(SchemaObject {
            json_schema: schemars::Schema::try_from(schema).unwrap_or_default(),
            example: None,
            external_docs: None,
        }),
        ..Default::default()
    }
}

/// An error answer: `status`, with the `ErrorBody` schema, and when it is given.
pub(crate) fn error_answer(ctx: &mut GenContext, status: u16, when: &str) -> (Option<Code>, Response) {
    (
        Some(Code::Code(status)),
        json_response::<crate::error::ErrorBody>(ctx, when),
    )
}

/// Document a handler answer type whose body is not JSON: a 200 of media type `$media`
/// described as `$what`, its body's JSON Schema given as `json!` tokens.
macro_rules! raw_answer {
    ($ty:ty, $media:literal, $what:literal, $schema:tt) => {
        impl aide::OperationOutput for $ty {
            type Inner = ();

            fn inferred_responses(
                _: &mut aide::generate::GenContext,
                _: &mut aide::openapi::Operation,
            ) -> $crate::answer::Answers {
                $crate::answer::raw_ok($media, $what, serde_json::json!($schema))
            }
        }
    };
}
pub(crate) use raw_answer;

/// The documentation of a 200 answer of another media type (its body is `schema`).
pub(crate) fn raw_ok(media_type: &str, description: &str, schema: serde_json::Value) -> Answers {
    let ok = Response {
        description: description.to_string(),
        content: [(media_type.to_string(), media(schema))].into_iter().collect(),
        ..Default::default()
    };
    vec![(Some(Code::Code(200)), ok)]
}

macro_rules! fixed_status {
    ($(#[$doc:meta])* $name:ident = $status:ident, $code:literal, $what:literal) => {
        $(#[$doc])*
        pub struct $name<T>(pub T);

        impl<T: Serialize> IntoResponse for $name<T> {
            fn into_response(self) -> axum::response::Response {
                (StatusCode::$status, Json(self.0)).into_response()
            }
        }

        impl<T: JsonSchema> OperationOutput for $name<T> {
            type Inner = T;

            fn inferred_responses(ctx: &mut GenContext, _: &mut Operation) -> Answers {
                vec![(Some(Code::Code($code)), json_response::<T>(ctx, $what))]
            }
        }
    };
}

fixed_status!(
    /// 201 with the new thing.
    Created = CREATED, 201, "created"
);
fixed_status!(
    /// 202: stored; the work it starts happens later.
    Accepted = ACCEPTED, 202, "accepted"
);

/// 204, no body.
pub struct Deleted;

impl IntoResponse for Deleted {
    fn into_response(self) -> axum::response::Response {
        StatusCode::NO_CONTENT.into_response()
    }
}

impl OperationOutput for Deleted {
    type Inner = ();

    fn inferred_responses(_: &mut GenContext, _: &mut Operation) -> Answers {
        let done = Response {
            description: "done (no body)".into(),
            ..Default::default()
        };
        vec![(Some(Code::Code(204)), done)]
    }
}

macro_rules! two_statuses {
    ($(#[$doc:meta])* $name:ident { $(#[$doc_a:meta])* $a:ident = $status_a:ident, $code_a:literal, $what_a:literal;
                                    $(#[$doc_b:meta])* $b:ident = $status_b:ident, $code_b:literal, $what_b:literal }) => {
        $(#[$doc])*
        pub enum $name<T> {
            $(#[$doc_a])*
            $a(T),
            $(#[$doc_b])*
            $b(T),
        }

        impl<T: Serialize> IntoResponse for $name<T> {
            fn into_response(self) -> axum::response::Response {
                match self {
                    $name::$a(v) => (StatusCode::$status_a, Json(v)).into_response(),
                    $name::$b(v) => (StatusCode::$status_b, Json(v)).into_response(),
                }
            }
        }

        impl<T: JsonSchema> OperationOutput for $name<T> {
            type Inner = T;

            fn inferred_responses(ctx: &mut GenContext, _: &mut Operation) -> Answers {
                vec![
                    (Some(Code::Code($code_a)), json_response::<T>(ctx, $what_a)),
                    (Some(Code::Code($code_b)), json_response::<T>(ctx, $what_b)),
                ]
            }
        }
    };
}

two_statuses!(
    /// A PUT's answer: 201 when it created the thing, 200 when it replaced it.
    Upserted {
        /// 201.
        Created = CREATED, 201, "created";
        /// 200.
        Replaced = OK, 200, "replaced"
    }
);
two_statuses!(
    /// A run request's answer: 202 once the run is durably queued, 200 with the
    /// finished run when the caller asked to wait and it finished in time.
    Started {
        /// 202.
        Queued = ACCEPTED, 202, "queued (or still running when the wait ended)";
        /// 200.
        Finished = OK, 200, "finished (wait=true)"
    }
);

//! The named nouns (tasks, triggers, webhooks, schedules) are served by one set of
//! handlers: create, list, get, update (a JSON merge of top-level fields), enable,
//! disable, delete. A noun says how it is found, checked against the store, stored and
//! shown by implementing [`Resource`]; its file keeps only what is its own.

use crate::answer::{Created, Deleted};
use crate::error::Found;
use crate::extract::{JsonBody, Page, Patch};
use crate::{ApiResult, AppState, Operator, Reader};
use axum::Json;
use axum::extract::Path;
use serde::de::DeserializeOwned;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use std::future::Future;

/// A noun with a name and an id, stored as a record around a spec.
pub(crate) trait Resource: Send + Sync + 'static {
    /// The stored record.
    type Record: Send + Sync + 'static;
    /// What a create takes and a PATCH merges into.
    type Spec: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    /// How the API shows a record.
    type View: Serialize + schemars::JsonSchema + Send + 'static;

    /// The noun in messages: `task`.
    const NOUN: &'static str;
    /// The key of a list page: `tasks`.
    const PLURAL: &'static str;
    /// Keys of the view that a PATCH may not set (they belong to the record).
    const FIXED: &'static [&'static str];

    /// A record by id or name.
    fn find(state: &AppState, key: &str) -> ApiResult<Option<Self::Record>>;
    /// A page of records in id order.
    fn page(state: &AppState, page: &Page) -> ApiResult<(Vec<Self::Record>, Option<String>)>;
    /// Its id.
    fn id(record: &Self::Record) -> &str;
    /// Its spec.
    fn spec(record: &Self::Record) -> &Self::Spec;
    /// Switch a spec on or off.
    fn set_enabled(spec: &mut Self::Spec, enabled: bool);
    /// Validate a spec and check it against the store (referenced objects exist; names
    /// may be resolved to ids). `current` is the record a change replaces.
    fn check(state: &AppState, spec: Self::Spec, current: Option<&Self::Record>) -> ApiResult<Self::Spec>;
    /// Store a new record made of `spec`.
    fn insert(
        state: &AppState,
        spec: Self::Spec,
        who: &str,
    ) -> impl Future<Output = ApiResult<Self::Record>> + Send;
    /// Replace the spec of record `id`: the record after.
    fn update(
        state: &AppState,
        id: &str,
        spec: Self::Spec,
        who: &str,
    ) -> impl Future<Output = ApiResult<Self::Record>> + Send;
    /// Switch a record (by id or name) on or off: the record after. Most nouns check
    /// the switched spec as any change ([`toggle_checked`]); a task only flips the
    /// flag, so it can be disabled even when what it refers to is gone.
    fn toggle(
        state: &AppState,
        key: &str,
        enabled: bool,
        who: &str,
    ) -> impl Future<Output = ApiResult<Self::Record>> + Send;
    /// Delete a record by id or name.
    fn delete(state: &AppState, key: &str, who: &str) -> impl Future<Output = ApiResult<()>> + Send;
    /// The API's view of a record.
    fn view(state: &AppState, record: Self::Record) -> ApiResult<Self::View>;

    /// A record by id or name, or 404 naming it.
    fn get(state: &AppState, key: &str) -> ApiResult<Self::Record> {
        Self::find(state, key)?.found(Self::NOUN, key)
    }
}

/// The accessors every named noun has alike: `find` and `page` by the store's
/// `$get` and `$page`, the record's `id` and `spec`, and the spec's `enabled`.
macro_rules! store_accessors {
    ($record:ty, $get:ident, $page:ident) => {
        fn find(state: &AppState, key: &str) -> ApiResult<Option<$record>> {
            Ok(state.store.$get(key)?)
        }

        fn page(state: &AppState, page: &crate::extract::Page) -> ApiResult<(Vec<$record>, Option<String>)> {
            Ok(state.store.$page(page.cursor.as_deref(), page.limit)?)
        }

        fn id(record: &$record) -> &str {
            &record.id
        }

        fn spec(record: &$record) -> &Self::Spec {
            &record.spec
        }

        fn set_enabled(spec: &mut Self::Spec, enabled: bool) {
            spec.enabled = enabled;
        }
    };
}
pub(crate) use store_accessors;

/// A page of a noun's list: `{"<plural>": [...], "next_cursor": ...}`.
pub(crate) struct ListPage<R: Resource> {
    items: Vec<R::View>,
    next_cursor: Option<String>,
}

impl<R: Resource> Serialize for ListPage<R> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry(R::PLURAL, &self.items)?;
        map.serialize_entry("next_cursor", &self.next_cursor)?;
        map.end()
    }
}

/// `{"<plural>": [View], "next_cursor": string | null}`, named after the view.
impl<R: Resource> schemars::JsonSchema for ListPage<R> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("{}Page", R::View::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let items = generator.subschema_for::<Vec<R::View>>();
        schemars::json_schema!({
            "type": "object",
            "required": [R::PLURAL, "next_cursor"],
            "properties": {
                R::PLURAL: items,
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "pass as ?cursor= for the next page; null on the last"
                }
            }
        })
    }
}

/// `POST /v1/<nouns>`: 201 with the new record.
pub(crate) async fn create<R: Resource>(
    Operator(state, caller): Operator,
    JsonBody(spec): JsonBody<R::Spec>,
) -> ApiResult<Created<R::View>> {
    let spec = R::check(&state, spec, None)?;
    let record = R::insert(&state, spec, caller.who()).await?;
    Ok(Created(R::view(&state, record)?))
}

/// `GET /v1/<nouns>?limit=&cursor=`.
pub(crate) async fn list<R: Resource>(Reader(state, _): Reader, page: Page) -> ApiResult<Json<ListPage<R>>> {
    let (records, next_cursor) = R::page(&state, &page)?;
    let items = records
        .into_iter()
        .map(|r| R::view(&state, r))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(ListPage { items, next_cursor }))
}

/// `GET /v1/<nouns>/{id}` (id or name).
pub(crate) async fn get<R: Resource>(
    Reader(state, _): Reader,
    Path(key): Path<String>,
) -> ApiResult<Json<R::View>> {
    Ok(Json(R::view(&state, R::get(&state, &key)?)?))
}

/// `PATCH /v1/<nouns>/{id}`: top-level fields merged over the current spec (null
/// restores a default), checked as a create is.
pub(crate) async fn update<R: Resource>(
    Operator(state, caller): Operator,
    Path(key): Path<String>,
    Patch(patch): Patch,
) -> ApiResult<Json<R::View>> {
    let current = R::get(&state, &key)?;
    let spec: R::Spec = crate::merge_patch(R::spec(&current), patch, R::FIXED)?;
    change::<R>(&state, current, spec, caller.who()).await
}

async fn change<R: Resource>(
    state: &AppState,
    current: R::Record,
    spec: R::Spec,
    who: &str,
) -> ApiResult<Json<R::View>> {
    let spec = R::check(state, spec, Some(&current))?;
    let after = R::update(state, R::id(&current), spec, who).await?;
    Ok(Json(R::view(state, after)?))
}

/// A toggle that checks the switched spec as any change does.
pub(crate) async fn toggle_checked<R: Resource>(
    state: &AppState,
    key: &str,
    enabled: bool,
    who: &str,
) -> ApiResult<R::Record> {
    let current = R::get(state, key)?;
    let mut spec = R::spec(&current).clone();
    R::set_enabled(&mut spec, enabled);
    let spec = R::check(state, spec, Some(&current))?;
    R::update(state, R::id(&current), spec, who).await
}

async fn set_enabled<R: Resource>(
    state: &AppState,
    key: &str,
    enabled: bool,
    who: &str,
) -> ApiResult<Json<R::View>> {
    let after = R::toggle(state, key, enabled, who).await?;
    Ok(Json(R::view(state, after)?))
}

/// `POST /v1/<nouns>/{id}/enable` (schedules: `resume`).
pub(crate) async fn enable<R: Resource>(
    Operator(state, caller): Operator,
    Path(key): Path<String>,
) -> ApiResult<Json<R::View>> {
    set_enabled::<R>(&state, &key, true, caller.who()).await
}

/// `POST /v1/<nouns>/{id}/disable` (schedules: `pause`).
pub(crate) async fn disable<R: Resource>(
    Operator(state, caller): Operator,
    Path(key): Path<String>,
) -> ApiResult<Json<R::View>> {
    set_enabled::<R>(&state, &key, false, caller.who()).await
}

/// `DELETE /v1/<nouns>/{id}`: 204.
pub(crate) async fn delete<R: Resource>(
    Operator(state, caller): Operator,
    Path(key): Path<String>,
) -> ApiResult<Deleted> {
    R::delete(&state, &key, caller.who()).await?;
    Ok(Deleted)
}

/// The fields every record adds to its spec in the API's view. Its schema is named
/// after the noun: `Task` for `Stamped<TaskSpec>`.
#[derive(Serialize)]
pub(crate) struct Stamped<S> {
    /// The spec's fields.
    #[serde(flatten)]
    pub spec: S,
    /// Id (ULID).
    pub id: String,
    /// Created, RFC 3339.
    pub created_at: String,
    /// Last changed, RFC 3339.
    pub updated_at: String,
}

// The shape of `Stamped`, derived (its description is the document's).
#[derive(schemars::JsonSchema)]
#[schemars(
    transform = crate::openapi::open_object,
    description = "A record: its spec's fields with its id and timestamps."
)]
#[allow(dead_code)]
struct StampedShape<S> {
    #[serde(flatten)]
    spec: S,
    /// Id (ULID).
    id: String,
    /// Created, RFC 3339.
    created_at: String,
    /// Last changed, RFC 3339.
    updated_at: String,
}

impl<S: schemars::JsonSchema> schemars::JsonSchema for Stamped<S> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        let spec = S::schema_name();
        spec.strip_suffix("Spec").unwrap_or(&spec).to_string().into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        StampedShape::<S>::json_schema(generator)
    }
}

//! The web dashboard, served by the daemon at `/` (the API stays under `/v1/`).
//!
//! Server-rendered HTML (askama templates compiled into the binary, `templates/`) and
//! one embedded stylesheet; no script is needed to read. Login takes an API token (the
//! same tokens and roles as the API) and opens a server-side session
//! ([`session::Sessions`]) named by an `HttpOnly; SameSite=Strict` cookie (`Secure`
//! under TLS). Every state-changing request carries the session's CSRF token, and every
//! answer carries a strict Content-Security-Policy (no inline script or style) and
//! refuses framing. See `docs/dashboard.md`.

mod admin;
mod events;
mod feeds;
mod overview;
mod runs;
mod schedules;
pub mod session;
pub mod tail;
mod tasks;
mod webhooks;

use crate::extract::{Caller, READERS};
use crate::{ApiError, AppState};
use askama::Template;
use axum::Router;
use axum::extract::{Form, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use session::{SESSION_TTL, Sessions, same_secret};
use std::sync::Arc;
use sundial_store::tokens::{Role, token_hash};

/// The session cookie's name.
pub const COOKIE: &str = "sundial_session";

/// Every dashboard answer's Content-Security-Policy: nothing but this origin's own
/// scripts, styles and images; no framing, no plugins, forms post only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The stylesheet, embedded.
const APP_CSS: &str = include_str!("../../assets/app.css");
/// The one script (live log tail, live lists, theme switch), embedded. Every page
/// works without it.
const APP_JS: &str = include_str!("../../assets/app.js");

/// What the dashboard keeps: its sessions, its open live tails, and whether cookies
/// are marked `Secure`.
#[derive(Debug, Default)]
pub struct Dashboard {
    /// The open sessions.
    pub sessions: Sessions,
    /// The open live log tails, counted against their limits.
    pub tails: Arc<tail::Tails>,
    /// Mark the session cookie `Secure` (the daemon serves TLS).
    pub secure_cookies: bool,
}

impl Dashboard {
    /// A dashboard with no sessions; `secure_cookies` when the daemon serves TLS.
    pub fn new(secure_cookies: bool) -> Dashboard {
        Dashboard {
            sessions: Sessions::default(),
            tails: Arc::default(),
            secure_cookies,
        }
    }
}

/// The dashboard's routes, with their security headers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::overview))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/theme", post(switch_theme))
        .route("/runs", get(runs::list))
        .route("/runs/find", get(runs::find))
        .route("/runs/bulk", post(runs::bulk))
        .route("/runs/{id}", get(runs::show))
        .route("/runs/{id}/retry", post(runs::retry))
        .route("/runs/{id}/cancel", post(runs::cancel))
        .route("/runs/{id}/tail", get(tail::tail))
        .route("/tasks", get(tasks::list).post(tasks::create))
        .route("/tasks/new", get(tasks::new_task))
        .route("/tasks/{id}", get(tasks::show))
        .route("/tasks/{id}/run", post(tasks::run_now))
        .route(
            "/tasks/{id}/delete",
            get(tasks::confirm_delete).post(tasks::delete),
        )
        .route("/tasks/{id}/{verb}", post(tasks::toggle))
        .route("/schedules", get(schedules::list))
        .route("/schedules/preview", get(schedules::preview))
        .route("/schedules/{id}", get(schedules::show))
        .route("/schedules/{id}/{verb}", post(schedules::toggle))
        .route("/events", get(events::list))
        .route("/events/{seq}", get(events::show))
        .route("/triggers", get(events::triggers))
        .route("/timers", get(events::timers))
        .route("/timers/{id}/cancel", post(events::cancel_timer))
        .route("/webhooks", get(webhooks::list))
        .route("/webhooks/{id}", get(webhooks::show))
        .route("/webhooks/{id}/test", post(webhooks::test))
        .route("/deliveries/{id}", get(webhooks::delivery))
        .route("/deliveries/{id}/replay", post(webhooks::replay))
        .route("/plugins", get(admin::plugins))
        .route("/plugins/{name}", get(admin::plugin))
        .route("/secrets", get(admin::secrets))
        .route("/tokens", get(admin::tokens))
        .route("/audit", get(admin::audit))
        .route(
            "/assets/app.css",
            get(|| asset("text/css; charset=utf-8", APP_CSS)),
        )
        .route(
            "/assets/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .layer(axum::middleware::map_response(security_headers))
}

/// Headers on every dashboard answer: CSP, no framing, no sniffing, no caching of pages.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// A logged-in browser: its session's cookie id, the session and the token's caller.
/// Without a valid session a page answers with a redirect to the login page.
pub struct Browser {
    /// The daemon's state.
    state: AppState,
    /// The cookie id (to end the session on logout).
    id: String,
    /// The CSRF token pages put in their forms.
    csrf: String,
    /// Who is logged in.
    caller: Caller,
    /// The theme the browser chose (`light`, `dark`; `auto` follows the system).
    theme: Theme,
    /// The path and query of the page asked for (the theme switch comes back to it).
    path: String,
}

/// A colour theme: the system's (`auto`), or one chosen with the header's switch and
/// kept in the `sundial_theme` cookie.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Theme {
    Auto,
    Light,
    Dark,
}

impl Theme {
    /// The cookie that keeps the choice.
    const COOKIE: &'static str = "sundial_theme";

    fn parse(s: &str) -> Option<Theme> {
        match s {
            "auto" => Some(Theme::Auto),
            "light" => Some(Theme::Light),
            "dark" => Some(Theme::Dark),
            _ => None,
        }
    }

    /// The word in the cookie and in `<html data-theme>`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Theme::Auto => "auto",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    /// What the switch changes to: auto, then dark, then light.
    pub(crate) fn next(self) -> Theme {
        match self {
            Theme::Auto => Theme::Dark,
            Theme::Dark => Theme::Light,
            Theme::Light => Theme::Auto,
        }
    }
}

impl Browser {
    /// True when the logged-in role may change things (admin, operator).
    fn may_change(&self) -> bool {
        matches!(self.caller.token.role, Role::Admin | Role::Operator)
    }

    /// What every page's header shows of this session; `current` names the page's
    /// section in the navigation.
    fn chrome(&self, current: &'static str) -> Chrome {
        Chrome {
            who: self.caller.who().to_string(),
            role: crate::extract::role_name(self.caller.token.role),
            csrf: self.csrf.clone(),
            may_change: self.may_change(),
            current,
            theme: self.theme,
            path: self.path.clone(),
        }
    }

    /// Refuse with 403 unless this session may change things, the form carries its
    /// CSRF token and the request comes from this site.
    fn may_act(&self, headers: &HeaderMap, form_csrf: &str) -> Result<(), Response> {
        self.check_csrf(headers, form_csrf)?;
        if !self.may_change() {
            return Err(refused(&format!(
                "token {:?} has the role {}, which reads and changes nothing",
                self.caller.who(),
                crate::extract::role_name(self.caller.token.role)
            )));
        }
        Ok(())
    }

    /// Refuse with 403 unless the form's `csrf` is this session's token and the request
    /// comes from this site.
    fn check_csrf(&self, headers: &HeaderMap, form_csrf: &str) -> Result<(), Response> {
        if !same_site(headers) || !same_secret(form_csrf, &self.csrf) {
            return Err(refused(
                "the form is stale or came from another site: reload the page and try again",
            ));
        }
        Ok(())
    }
}

impl FromRequestParts<AppState> for Browser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Browser, Response> {
        let to_login = || Redirect::to("/login").into_response();
        let id = cookie(&parts.headers, COOKIE).ok_or_else(to_login)?;
        let session = state.dashboard.sessions.find(&id).ok_or_else(to_login)?;
        // The token is looked up again on every request: revoking it ends the session.
        let token = match state.store.token_by_hash(&session.token_hash) {
            Ok(Some(token)) => token,
            Ok(None) => {
                state.dashboard.sessions.close(&id);
                return Err(to_login());
            }
            Err(e) => return Err(ApiError::from(e).into_response()),
        };
        Ok(Browser {
            state: state.clone(),
            id,
            csrf: session.csrf,
            caller: Caller { token },
            theme: cookie(&parts.headers, Theme::COOKIE)
                .and_then(|t| Theme::parse(&t))
                .unwrap_or(Theme::Auto),
            path: parts
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
        })
    }
}

/// A form that carries the session's CSRF token.
pub(super) trait WithCsrf {
    /// The CSRF token the form carries.
    fn csrf(&self) -> &str;
}

/// The form of most actions: the session's CSRF token, and for a run its params
/// as JSON text (empty: the task's own).
#[derive(Deserialize)]
pub(super) struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pub(super) params: String,
}

impl WithCsrf for ActionForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// An action of a session that may change things, from this site, with the
/// session's CSRF token: the request is refused (403 page) before the handler otherwise.
pub(super) struct Act<F = ActionForm> {
    pub(super) browser: Browser,
    pub(super) form: F,
}

impl<F: serde::de::DeserializeOwned + WithCsrf + Send> FromRequest<AppState> for Act<F> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Act<F>, Response> {
        let (mut parts, body) = req.into_parts();
        let browser = Browser::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let form = match Form::<F>::from_request(Request::from_parts(parts, body), state).await {
            Ok(Form(form)) => form,
            Err(e) => {
                // Check the CSRF token before saying what is wrong with the form.
                let csrf = String::new();
                browser.may_act(&headers, &csrf)?;
                return Err(message(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Not done",
                    &e.body_text(),
                ));
            }
        };
        browser.may_act(&headers, form.csrf())?;
        Ok(Act { browser, form })
    }
}

/// What the header of every logged-in page shows: who, with what role, the logout
/// form's CSRF token, and where in the navigation the page is.
pub(crate) struct Chrome {
    who: String,
    role: &'static str,
    csrf: String,
    may_change: bool,
    current: &'static str,
    theme: Theme,
    path: String,
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Whether a state-changing request comes from this site: `Sec-Fetch-Site` (when the
/// browser sends it) is `same-origin` or `none`, and `Origin` (when sent) names the
/// host the request was made to.
fn same_site(headers: &HeaderMap) -> bool {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site.is_some_and(|s| s != "same-origin" && s != "none") {
        return false;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            host.is_some_and(|h| h == authority)
        }
    }
}

/// A 403 page.
fn refused(why: &str) -> Response {
    message(StatusCode::FORBIDDEN, "Refused", why)
}

/// An error of the API layer as a page with the same status and message.
fn page_error(e: ApiError) -> Response {
    let title = match e.status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::CONFLICT => "Not now",
        s if s.is_client_error() => "Not done",
        _ => "Something went wrong",
    };
    message(e.status, title, &e.message)
}

/// A page that says one thing, with `status`.
fn message(status: StatusCode, title: &str, message: &str) -> Response {
    let page = MessagePage {
        chrome: None,
        title,
        message,
    };
    (status, render(&page)).into_response()
}

/// Render a template; a template error is a 500 page naming it.
fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("rendering the page failed: {e}"),
        )
            .into_response(),
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    chrome: Option<Chrome>,
    title: &'a str,
    message: &'a str,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    chrome: Option<Chrome>,
    error: Option<&'a str>,
}

async fn login_page() -> Response {
    render(&LoginPage {
        chrome: None,
        error: None,
    })
}

/// The login form.
#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

/// Check the token, open a session, set its cookie, go to the overview.
async fn login(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    if !same_site(&headers) {
        return refused("a login must come from this site's own login page");
    }
    let failed = |status, why| {
        (
            status,
            render(&LoginPage {
                chrome: None,
                error: Some(why),
            }),
        )
            .into_response()
    };
    let hash = token_hash(form.token.trim());
    let token = match state.store.token_by_hash(&hash) {
        Ok(Some(token)) => token,
        Ok(None) => return failed(StatusCode::UNAUTHORIZED, "unknown or revoked token"),
        Err(e) => return ApiError::from(e).into_response(),
    };
    if !READERS.contains(&token.role) {
        return failed(
            StatusCode::FORBIDDEN,
            "an ingest token may only post events; log in with an admin, operator or viewer token",
        );
    }
    let id = match state.dashboard.sessions.open(hash) {
        Ok(id) => id,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    };
    let mut cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    if state.dashboard.secure_cookies {
        cookie.push_str("; Secure");
    }
    let mut response = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// A form that carries only the CSRF token (logout, and every button of an action).
#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// End the session and clear its cookie.
async fn logout(browser: Browser, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    if let Err(refusal) = browser.check_csrf(&headers, &form.csrf) {
        return refusal;
    }
    browser.state.dashboard.sessions.close(&browser.id);
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("sundial_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

/// The theme switch's form.
#[derive(Deserialize)]
struct ThemeForm {
    #[serde(default)]
    csrf: String,
    theme: String,
    /// The page to go back to (a path of this site).
    #[serde(default)]
    back: String,
}

/// `POST /theme`: keep the chosen theme in a cookie for a year; then back to the page.
async fn switch_theme(browser: Browser, headers: HeaderMap, Form(form): Form<ThemeForm>) -> Response {
    if let Err(refusal) = browser.check_csrf(&headers, &form.csrf) {
        return refusal;
    }
    let Some(theme) = Theme::parse(&form.theme) else {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not done",
            &format!("theme must be auto, light or dark, not {:?}", form.theme),
        );
    };
    // Only a path of this site: never an open redirect.
    let path_only = form.back.starts_with('/')
        && !form.back.starts_with("//")
        && form.back.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    let back = if path_only { form.back.as_str() } else { "/" };
    let mut response = Redirect::to(back).into_response();
    let cookie = format!(
        "{}={}; Path=/; SameSite=Strict; Max-Age=31536000",
        Theme::COOKIE,
        theme.as_str()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// An embedded asset, cacheable for an hour.
async fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

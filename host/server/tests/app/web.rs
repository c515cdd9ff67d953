//! Helpers of the dashboard's tests: requests as a browser on this site sends them,
//! a login, pages and forms of a session, stand-in data.

use super::App;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};

/// A request to the dashboard as a browser on this site sends it.
pub fn request(method: Method, path: &str, cookie: Option<&str>, form: Option<&str>) -> Request<Body> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "127.0.0.1:7780");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, format!("sundial_session={c}"));
    }
    if form.is_some() {
        req = req
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ORIGIN, "http://127.0.0.1:7780")
            .header("sec-fetch-site", "same-origin");
    }
    req.body(form.map_or_else(Body::empty, |f| Body::from(f.to_string())))
        .unwrap()
}

/// Post the login form with `token`.
pub async fn post_login(app: &App, token: &str) -> (StatusCode, HeaderMap, String) {
    let form = format!("token={token}");
    app.raw(request(Method::POST, "/login", None, Some(&form))).await
}

/// Log in with `token`; the session cookie's value.
pub async fn login(app: &App, token: &str) -> String {
    let (status, headers, body) = post_login(app, token).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(headers[header::LOCATION], "/");
    let set = headers[header::SET_COOKIE].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(!set.contains("Secure"), "no TLS here: {set}");
    set.strip_prefix("sundial_session=")
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_string()
}

/// The overview page of a session, which must answer 200 with the security headers.
pub async fn overview(app: &App, cookie: &str) -> (HeaderMap, String) {
    let (status, headers, page) = app.raw(request(Method::GET, "/", Some(cookie), None)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_secure_headers(&headers);
    (headers, page)
}

/// The CSRF token a page carries in its forms.
pub fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a csrf field")
        + 19;
    page[at..at + 64].to_string()
}

pub fn assert_secure_headers(headers: &HeaderMap) {
    // Only this origin's own scripts and styles (no inline ones), no framing.
    let expected = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    assert_eq!(headers[header::CONTENT_SECURITY_POLICY], expected);
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}

/// Install a stand-in plugin record `name` of `world` (its bytes are never loaded by
/// these tests' checks: a run of it fails to load).
pub async fn stand_in_plugin(app: &App, name: &str, world: sundial_core::plugin::World) {
    if app.state.store.plugin(name).unwrap().is_some() {
        return;
    }
    let now = sundial_core::timestamp::now();
    let record = sundial_core::plugin::PluginRecord {
        name: name.into(),
        digest: "sha256:00".into(),
        world,
        size_bytes: 4,
        imports: Vec::new(),
        grants: Default::default(),
        limits: Default::default(),
        description: String::new(),
        bundled: false,
        pinned: false,
        installed_at: now.clone(),
        updated_at: now,
    };
    app.state
        .store
        .insert_plugin(record, b"\0asm".to_vec(), "test")
        .await
        .unwrap();
}

/// Create a task `name` on a stand-in `echo` plugin through the API; the task's id.
pub async fn add_task(app: &App, name: &str) -> String {
    stand_in_plugin(app, "echo", sundial_core::plugin::World::Action).await;
    let body = serde_json::json!({ "name": name, "plugin": "echo" });
    let (status, task) = app.send(Method::POST, "/v1/tasks", "sdl_admin", body).await;
    assert_eq!(status, StatusCode::CREATED, "{task}");
    task["id"].as_str().unwrap().to_string()
}

/// Send `body` to the API as the admin; the answer, which must be a 2xx.
pub async fn admin(app: &App, method: Method, path: &str, body: serde_json::Value) -> serde_json::Value {
    let (status, answer) = app.send(method, path, "sdl_admin", body).await;
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

/// Wait (up to a minute) until run `id` is finished.
pub async fn finished(app: &App, id: &str) -> sundial_core::run::Run {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let run = app.state.store.run(id).unwrap().unwrap();
        if run.status.is_terminal() {
            return run;
        }
        assert!(std::time::Instant::now() < deadline, "run {id} never finished");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A page of a session, which must answer `status`.
pub async fn page(app: &App, cookie: &str, path: &str, status: StatusCode) -> String {
    let (got, headers, page) = app.raw(request(Method::GET, path, Some(cookie), None)).await;
    assert_eq!(got, status, "GET {path}: {page}");
    assert_secure_headers(&headers);
    assert_no_inline_code(&page);
    page
}

/// Post a form of a session; the status and the redirect's target, if any.
pub async fn post(app: &App, cookie: &str, path: &str, form: &str) -> (StatusCode, Option<String>, String) {
    let (status, headers, page) = app
        .raw(request(Method::POST, path, Some(cookie), Some(form)))
        .await;
    let location = headers
        .get(header::LOCATION)
        .map(|l| l.to_str().unwrap().to_string());
    (status, location, page)
}

/// No inline script or style: the CSP would block it. The one script is the site's own.
pub fn assert_no_inline_code(page: &str) {
    for (at, _) in page.match_indices("<script") {
        assert!(
            page[at..].starts_with("<script src=\"/assets/app.js\" defer></script>"),
            "an inline script: {page}"
        );
    }
    assert!(!page.contains("style="), "an inline style: {page}");
    for handler in ["onclick=", "onload=", "onerror=", "onsubmit=", "onchange="] {
        assert!(!page.contains(handler), "an inline event handler: {page}");
    }
}

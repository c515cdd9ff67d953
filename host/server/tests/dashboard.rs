//! In-process tests of the web dashboard: login, the session cookie, CSRF, the
//! security headers, roles and revocation. (Browser tests drive a real Chromium.)

use axum::http::{Method, StatusCode, header};

mod app;
use app::App;
use app::web::*;

#[tokio::test]
async fn without_a_session_every_page_sends_to_the_login_page() {
    let app = App::new().await;
    for cookie in [None, Some("0000"), Some("")] {
        let (status, headers, _) = app.raw(request(Method::GET, "/", cookie, None)).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{cookie:?}");
        assert_eq!(headers[header::LOCATION], "/login");
        assert_secure_headers(&headers);
    }
    let (status, headers, page) = app.raw(request(Method::GET, "/login", None, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_secure_headers(&headers);
    assert!(
        page.contains("<form class=\"login\" method=\"post\" action=\"/login\">"),
        "{page}"
    );
    assert_no_inline_code(&page);
}

#[tokio::test]
async fn a_login_opens_a_session_and_a_logout_ends_it() {
    let app = App::new().await;
    let cookie = login(&app, "sdl_admin").await;
    let (headers, page) = overview(&app, &cookie).await;
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert!(page.contains("<h1>Overview</h1>"), "{page}");
    assert!(page.contains("admin (admin)"), "{page}");
    // The audit shows the tokens made for the test.
    assert!(page.contains("create token"), "{page}");
    let csrf = csrf_of(&page);

    // A logout without the session's CSRF token, or from another site, is refused.
    for (form, cross_site) in [
        ("csrf=", false),
        ("csrf=0123", false),
        (&*format!("csrf={csrf}"), true),
    ] {
        let mut req = request(Method::POST, "/logout", Some(&cookie), Some(form));
        if cross_site {
            req.headers_mut()
                .insert("sec-fetch-site", "cross-site".parse().unwrap());
        }
        let (status, headers, page) = app.raw(req).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{form} {cross_site}: {page}");
        assert_secure_headers(&headers);
    }
    let (status, _, _) = app.raw(request(Method::GET, "/", Some(&cookie), None)).await;
    assert_eq!(status, StatusCode::OK, "a refused logout leaves the session");

    let (status, headers, _) = app
        .raw(request(
            Method::POST,
            "/logout",
            Some(&cookie),
            Some(&format!("csrf={csrf}")),
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (status, headers, _) = app.raw(request(Method::GET, "/", Some(&cookie), None)).await;
    assert_eq!(
        (status, &headers[header::LOCATION]),
        (StatusCode::SEE_OTHER, &"/login".parse().unwrap())
    );
}

#[tokio::test]
async fn bad_tokens_and_ingest_tokens_do_not_log_in() {
    let app = App::new().await;
    for (token, status, says) in [
        ("sdl_nobody", StatusCode::UNAUTHORIZED, "unknown or revoked token"),
        ("", StatusCode::UNAUTHORIZED, "unknown or revoked token"),
        (
            "sdl_ingest",
            StatusCode::FORBIDDEN,
            "an ingest token may only post events",
        ),
    ] {
        let (got, headers, page) = post_login(&app, token).await;
        assert_eq!(got, status, "{token}: {page}");
        assert!(page.contains(says), "{token}: {page}");
        assert!(headers.get(header::SET_COOKIE).is_none(), "{token}");
    }
    // A form without the token is a 422 naming the field, and opens nothing.
    let (status, headers, body) = app
        .raw(request(Method::POST, "/login", None, Some("nothing=1")))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("token"), "{body}");
    assert!(headers.get(header::SET_COOKIE).is_none());
    // A login posted from another site is refused before the token is looked at.
    let mut req = request(Method::POST, "/login", None, Some("token=sdl_admin"));
    req.headers_mut()
        .insert(header::ORIGIN, "http://evil.example".parse().unwrap());
    let (status, headers, _) = app.raw(req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(headers.get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn a_viewer_sees_no_controls_and_revoking_its_token_ends_its_session() {
    let app = App::new().await;
    let cookie = login(&app, "sdl_viewer").await;
    let (_, page) = overview(&app, &cookie).await;
    assert!(page.contains("viewer (viewer)"), "{page}");
    assert!(page.contains("Your role reads; it changes nothing."), "{page}");

    let viewer = app
        .state
        .store
        .tokens()
        .unwrap()
        .into_iter()
        .find(|t| t.name == "viewer")
        .unwrap();
    app.state.store.revoke_token(&viewer.id, "test").await.unwrap();
    let (status, headers, _) = app.raw(request(Method::GET, "/", Some(&cookie), None)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "a revoked token's session is over");
    assert_eq!(headers[header::LOCATION], "/login");
}

#[tokio::test]
async fn the_stylesheet_is_served_and_the_api_is_unchanged() {
    let app = App::new().await;
    let (status, headers, css) = app.raw(request(Method::GET, "/assets/app.css", None, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
    assert!(css.contains("prefers-color-scheme: dark"));
    // The API keeps its JSON 404 for what it does not serve.
    let (status, _, body) = app.raw(request(Method::GET, "/v1/nothing", None, None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("no such endpoint"), "{body}");
}

/// An app with one task `backup`, logged in with `token`, and that task's page.
async fn task_page(token: &str) -> (App, String, String, String) {
    let app = App::new().await;
    let id = add_task(&app, "backup").await;
    let cookie = login(&app, token).await;
    let task = page(&app, &cookie, &format!("/tasks/{id}"), StatusCode::OK).await;
    (app, id, cookie, task)
}

/// Post the form of a task action.
async fn act(
    app: &App,
    cookie: &str,
    id: &str,
    action: &str,
    form: &str,
) -> (StatusCode, Option<String>, String) {
    post(app, cookie, &format!("/tasks/{id}/{action}"), form).await
}

#[tokio::test]
async fn the_tasks_list_pages_and_links_each_task_with_its_last_run() {
    let app = App::new().await;
    let first = add_task(&app, "backup").await;
    add_task(&app, "cleanup").await;
    let cookie = login(&app, "sdl_viewer").await;
    let list = page(&app, &cookie, "/tasks", StatusCode::OK).await;
    assert!(
        list.contains(&format!("<a href=\"/tasks/{first}\">backup</a>")),
        "{list}"
    );
    assert!(list.contains("cleanup") && list.contains("plugin echo"), "{list}");
    assert!(list.contains("never"), "no run yet: {list}");
    assert!(!list.contains("rel=\"next\""), "two tasks fit one page: {list}");
    // The next page starts after a task id; a cursor that is no id is refused.
    let rest = page(&app, &cookie, &format!("/tasks?after={first}"), StatusCode::OK).await;
    assert!(!rest.contains("backup") && rest.contains("cleanup"), "{rest}");
    let bad = page(&app, &cookie, "/tasks?after=%3Cb%3E", StatusCode::BAD_REQUEST).await;
    assert!(bad.contains("cursor") && !bad.contains("<b>"), "escaped: {bad}");
    page(&app, &cookie, "/tasks/nope", StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_viewer_sees_no_action_and_is_refused_one_anyway() {
    let (app, id, cookie, task) = task_page("sdl_viewer").await;
    assert!(task.contains("Task backup"), "{task}");
    assert!(
        !task.contains("Run now") && !task.contains("Disable") && !task.contains("Delete"),
        "{task}"
    );
    let with_csrf = format!("csrf={}", csrf_of(&task));
    for action in ["run", "disable", "delete"] {
        let (status, _, body) = act(&app, &cookie, &id, action, &with_csrf).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action}: {body}");
    }
    page(
        &app,
        &cookie,
        &format!("/tasks/{id}/delete"),
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(app.state.store.task(&id).unwrap().unwrap().spec.enabled);
}

#[tokio::test]
async fn an_operator_runs_disables_and_deletes_a_task_with_the_csrf_token_only() {
    let (app, id, cookie, task) = task_page("sdl_operator").await;
    assert!(task.contains("Run now") && task.contains("Disable"), "{task}");
    let csrf = csrf_of(&task);
    let with_csrf = format!("csrf={csrf}");
    let runs = |app: &App| {
        let filter = sundial_store::runs::RunFilter::default();
        app.state.store.list_runs(&filter, None, 10).unwrap().0
    };

    // Without the token nothing happens.
    let (status, _, _) = act(&app, &cookie, &id, "run", "csrf=").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(runs(&app).is_empty());

    // Run now, with params of its own; bad params are a 400 page naming them.
    let form = format!("csrf={csrf}&params=%7B%22vm%22%3A%22web-1%22%7D");
    let (status, to, body) = act(&app, &cookie, &id, "run", &form).await;
    assert_eq!(
        (status, to.as_deref()),
        (StatusCode::SEE_OTHER, Some(&*format!("/tasks/{id}"))),
        "{body}"
    );
    let queued = runs(&app);
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].params, serde_json::json!({"vm": "web-1"}));
    assert_eq!(queued[0].started_by, "operator");
    let (status, _, body) = act(&app, &cookie, &id, "run", &format!("csrf={csrf}&params=%5B1%5D")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("params: must be a JSON object"), "{body}");

    // Disabled, it refuses runs (409) and offers Enable.
    let (status, _, _) = act(&app, &cookie, &id, "disable", &with_csrf).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(!app.state.store.task(&id).unwrap().unwrap().spec.enabled);
    let (status, _, body) = act(&app, &cookie, &id, "run", &with_csrf).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        page(&app, &cookie, &format!("/tasks/{id}"), StatusCode::OK)
            .await
            .contains(">Enable<")
    );
    assert_eq!(runs(&app).len(), 1);

    // Delete asks first, then deletes; the run stays in the task log.
    let ask = page(&app, &cookie, &format!("/tasks/{id}/delete"), StatusCode::OK).await;
    assert!(ask.contains("Delete task backup?"), "{ask}");
    let (status, to, _) = act(&app, &cookie, &id, "delete", &with_csrf).await;
    assert_eq!((status, to.as_deref()), (StatusCode::SEE_OTHER, Some("/tasks")));
    assert!(app.state.store.task(&id).unwrap().is_none());
    assert_eq!(runs(&app).len(), 1);
}

#[tokio::test]
async fn the_task_log_filters_in_the_url_and_shows_each_run() {
    let app = App::new().await;
    let id = add_task(&app, "backup").await;
    let body = serde_json::json!({ "params": { "vm": "<web-1>" } });
    let path = format!("/v1/tasks/{id}/run");
    let (status, run) = app.send(Method::POST, &path, "sdl_operator", body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let run_id = run["id"].as_str().unwrap().to_string();
    let cookie = login(&app, "sdl_viewer").await;

    let all = page(&app, &cookie, "/runs", StatusCode::OK).await;
    assert!(all.contains(&format!("<a href=\"/runs/{run_id}\">")), "{all}");
    let mine = page(&app, &cookie, "/runs?task=backup&cause=manual", StatusCode::OK).await;
    assert!(mine.contains(&run_id), "{mine}");
    assert!(
        mine.contains("value=\"backup\""),
        "the filter stays in the form: {mine}"
    );
    let none = page(&app, &cookie, "/runs?cause=schedule", StatusCode::OK).await;
    assert!(
        none.contains("No runs match.") && !none.contains(&run_id),
        "{none}"
    );
    let bad = page(&app, &cookie, "/runs?status=bogus", StatusCode::BAD_REQUEST).await;
    assert!(bad.contains("status"), "{bad}");
    page(&app, &cookie, "/runs?task=nope", StatusCode::NOT_FOUND).await;

    let one = page(&app, &cookie, &format!("/runs/{run_id}"), StatusCode::OK).await;
    assert!(
        one.contains(&format!("<a href=\"/tasks/{id}\">backup</a>")),
        "{one}"
    );
    assert!(one.contains("operator"), "started by: {one}");
    assert!(
        one.contains("&#60;web-1&#62;") && !one.contains("<web-1>"),
        "params, escaped: {one}"
    );
    page(&app, &cookie, "/runs/nope", StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn an_operator_retries_a_finished_run_and_a_viewer_may_not() {
    let app = App::new().await;
    let id = add_task(&app, "backup").await;
    let path = format!("/v1/tasks/{id}/run");
    let (status, run) = app
        .send(Method::POST, &path, "sdl_operator", serde_json::json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let run_id = run["id"].as_str().unwrap().to_string();
    // The stand-in plugin cannot load: the run fails, and then it is finished.
    finished(&app, &run_id).await;

    let viewer = login(&app, "sdl_viewer").await;
    let seen = page(&app, &viewer, &format!("/runs/{run_id}"), StatusCode::OK).await;
    assert!(!seen.contains(">Retry<"), "{seen}");
    let form = format!("csrf={}", csrf_of(&seen));
    let (status, _, _) = post(&app, &viewer, &format!("/runs/{run_id}/retry"), &form).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let operator = login(&app, "sdl_operator").await;
    let seen = page(&app, &operator, &format!("/runs/{run_id}"), StatusCode::OK).await;
    assert!(seen.contains(">Retry<") && !seen.contains(">Cancel<"), "{seen}");
    let form = format!("csrf={}", csrf_of(&seen));
    let (status, to, body) = post(&app, &operator, &format!("/runs/{run_id}/retry"), &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let new_id = to.unwrap().strip_prefix("/runs/").unwrap().to_string();
    let new = app.state.store.run(&new_id).unwrap().unwrap();
    assert_eq!(new.retry_of.as_deref(), Some(run_id.as_str()));
    assert_eq!(new.started_by, "operator");
    // A finished run cannot be cancelled: 409, said on the page.
    let (status, _, body) = post(&app, &operator, &format!("/runs/{run_id}/cancel"), &form).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("already finished"), "{body}");
}

//! In-process tests of the dashboard's pages beyond tasks and runs (schedules, events,
//! triggers, timers, webhooks, deliveries, plugins, secrets, tokens, audit), the runs
//! page's lookup and bulk actions, the live tail, the theme switch, and every action's
//! authorisation: a viewer sees no mutating control and is refused anyway, a form
//! without the session's CSRF token or from another site is refused, nothing changes.

use axum::http::{Method, StatusCode, header};
use serde_json::json;
use sundial_core::plugin::World;

mod app;
use app::App;
use app::web::*;

/// What the world holds: ids of a task, a schedule, an event, a timer, a webhook, a
/// delivery and a failed run.
struct World1 {
    task: String,
    schedule: String,
    event: String,
    timer: String,
    webhook: String,
    delivery: String,
    run: String,
}

/// One of every noun, made through the API.
async fn world(app: &App) -> World1 {
    let task = add_task(app, "backup").await;
    stand_in_plugin(app, "json", World::Formatter).await;
    let post = |path: &'static str, body: serde_json::Value| admin(app, Method::POST, path, body);
    let id = |answer: serde_json::Value, key: &str| {
        let id = answer[key].as_str();
        id.unwrap_or_else(|| panic!("no {key} in {answer}")).to_string()
    };
    let nightly = json!({"name": "nightly", "rule": {"cron": "30 2 * * *"}, "timezone": "Europe/Berlin"});
    let schedule = id(post("/v1/schedules", nightly).await, "id");
    post("/v1/schedules/nightly/tasks", json!({"task": "backup"})).await;
    let later =
        json!({"name": "later", "on": {"type": "x.later"}, "targets": [{"task": "backup"}], "delay": "1h"});
    post("/v1/triggers", later).await;
    let hook = json!({"name": "hook", "url": "http://127.0.0.1:9/never"});
    let webhook = id(post("/v1/webhooks", hook).await, "id");
    let secret = json!({"value": "s3cr3t-value"});
    admin(app, Method::PUT, "/v1/secrets/db-password", secret).await;
    let e1 = json!({"specversion": "1.0", "id": "e1", "source": "/test", "type": "x.later"});
    let event = id(post("/v1/events", e1).await, "seq");
    let timers = app.state.store.timers_page(None, None, None, 10).unwrap().0;
    let test = format!("/v1/webhooks/{webhook}/test");
    let delivery = id(admin(app, Method::POST, &test, json!({})).await, "id");
    let run = id(post("/v1/tasks/backup/run", json!({})).await, "id");
    finished(app, &run).await;
    World1 {
        task,
        schedule,
        event,
        timer: timers[0].id.clone(),
        webhook,
        delivery,
        run,
    }
}

/// The path of the world's schedule's page.
fn schedule_path(w: &World1) -> String {
    format!("/schedules/{}", w.schedule)
}

/// Every page a reader may open, with text each must show.
fn pages(w: &World1) -> Vec<(String, Vec<&'static str>)> {
    vec![
        // The chart counts the failed run; the next fire is the schedule's.
        (
            "/".into(),
            vec![
                "<h1>Overview</h1>",
                ">1 failed</a>",
                ">nightly</a>",
                "Webhooks in trouble",
            ],
        ),
        (
            "/tasks".into(),
            vec!["backup", ">nightly</a>", "later", "+01:00</time>"],
        ),
        (
            format!("/tasks/{}", w.task),
            vec!["Task backup", "schedule <a href=", "trigger later, after 1h"],
        ),
        ("/runs".into(), vec!["failed"]),
        (format!("/runs/{}", w.run), vec!["started by hand", "Attempts"]),
        ("/schedules".into(), vec!["nightly", "Europe/Berlin", "backup"]),
        (
            format!("/schedules/{}", w.schedule),
            vec!["Next fires", "02:30:00.000+01:00"],
        ),
        ("/schedules/preview".into(), vec!["Preview a rule"]),
        ("/events".into(), vec!["x.later", "1 timers"]),
        (format!("/events/{}", w.event), vec!["later", "What it started"]),
        ("/triggers".into(), vec!["later", "x.later"]),
        ("/timers".into(), vec!["later", "backup"]),
        ("/webhooks".into(), vec!["hook", "http://127.0.0.1:9/never"]),
        (
            format!("/webhooks/{}", w.webhook),
            vec!["Latest deliveries", "test"],
        ),
        (
            format!("/deliveries/{}", w.delivery),
            vec!["sundial.webhook.test"],
        ),
        ("/plugins".into(), vec!["echo", "json", "formatter"]),
        ("/plugins/echo".into(), vec!["task <a href=", "Grants", "Limits"]),
        ("/audit".into(), vec!["create", "schedule", "nightly"]),
    ]
}

#[tokio::test]
async fn every_page_renders_for_every_reading_role_and_a_viewer_sees_no_control() {
    let app = App::new().await;
    let w = world(&app).await;
    for token in ["sdl_viewer", "sdl_operator", "sdl_admin"] {
        let cookie = login(&app, token).await;
        for (path, shows) in pages(&w) {
            let html = page(&app, &cookie, &path, StatusCode::OK).await;
            for text in shows {
                assert!(html.contains(text), "{token} GET {path}: no {text:?} in {html}");
            }
            // A viewer's page posts nothing but the theme switch and the logout.
            let forms = html.matches("method=\"post\"").count();
            if token == "sdl_viewer" {
                assert_eq!(forms, 2, "{path}: {html}");
            }
        }
    }
    // Secrets are listed to operators and admins (names only), tokens to admins.
    let viewer = login(&app, "sdl_viewer").await;
    page(&app, &viewer, "/secrets", StatusCode::FORBIDDEN).await;
    page(&app, &viewer, "/tokens", StatusCode::FORBIDDEN).await;
    let operator = login(&app, "sdl_operator").await;
    let secrets = page(&app, &operator, "/secrets", StatusCode::OK).await;
    assert!(
        secrets.contains("db-password") && !secrets.contains("s3cr3t-value"),
        "{secrets}"
    );
    page(&app, &operator, "/tokens", StatusCode::FORBIDDEN).await;
    let admin_cookie = login(&app, "sdl_admin").await;
    let tokens = page(&app, &admin_cookie, "/tokens", StatusCode::OK).await;
    for name in ["admin", "operator", "viewer", "ingest"] {
        assert!(tokens.contains(&format!("<td>{name}</td>")), "{tokens}");
    }
    assert!(!tokens.contains("sdl_admin"), "never a token's secret: {tokens}");
    // What is not there is a 404 page; a bad cursor a 400 page.
    for path in [
        "/schedules/nope",
        "/events/nope",
        "/webhooks/nope",
        "/deliveries/nope",
        "/plugins/nope",
    ] {
        page(&app, &viewer, path, StatusCode::NOT_FOUND).await;
    }
    for path in [
        "/schedules?after=x",
        "/events?before=x",
        "/audit?before=x",
        "/webhooks?after=x",
    ] {
        page(&app, &viewer, path, StatusCode::BAD_REQUEST).await;
    }
}

/// Every action: (path, form beyond the CSRF token).
fn actions(w: &World1) -> Vec<(String, &'static str)> {
    vec![
        ("/tasks".into(), "&name=forged&plugin=echo"),
        (format!("/tasks/{}/run", w.task), ""),
        (format!("/tasks/{}/disable", w.task), ""),
        (format!("/tasks/{}/delete", w.task), ""),
        (format!("/runs/{}/retry", w.run), ""),
        (format!("/runs/{}/cancel", w.run), ""),
        ("/runs/bulk".into(), "&status=failed&action=retry&confirm=yes"),
        (format!("/schedules/{}/pause", w.schedule), ""),
        (format!("/timers/{}/cancel", w.timer), ""),
        (format!("/webhooks/{}/test", w.webhook), ""),
        (format!("/deliveries/{}/replay", w.delivery), ""),
    ]
}

/// What the actions would change, read from the store.
fn snapshot(app: &App) -> (usize, usize, usize, bool, usize) {
    let s = &app.state.store;
    let runs = s.list_runs(&Default::default(), None, 1000).unwrap().0.len();
    let timers = s.timers_page(None, None, None, 100).unwrap().0.len();
    let deliveries = s.list_deliveries(&Default::default(), None, 100).unwrap().0.len();
    let enabled = s.tasks_page(None, 10).unwrap().0.iter().all(|t| t.spec.enabled)
        && s.schedules_page(None, 10)
            .unwrap()
            .0
            .iter()
            .all(|t| t.spec.enabled);
    let tasks = s.tasks_page(None, 10).unwrap().0.len();
    (runs, timers, deliveries, enabled, tasks)
}

#[tokio::test]
async fn every_action_refuses_viewers_missing_or_wrong_csrf_tokens_and_other_sites() {
    let app = App::new().await;
    let w = world(&app).await;
    let before = snapshot(&app);
    let viewer = login(&app, "sdl_viewer").await;
    let viewer_csrf = csrf_of(&page(&app, &viewer, "/", StatusCode::OK).await);
    let operator = login(&app, "sdl_operator").await;
    let operator_csrf = csrf_of(&page(&app, &operator, "/", StatusCode::OK).await);
    for (path, rest) in actions(&w) {
        // A viewer, with its own valid token.
        let (status, _, body) = post(&app, &viewer, &path, &format!("csrf={viewer_csrf}{rest}")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "viewer {path}: {body}");
        // An operator without the token, with another session's, with a forged one.
        for csrf in ["", viewer_csrf.as_str(), &"0".repeat(64)] {
            let (status, _, body) = post(&app, &operator, &path, &format!("csrf={csrf}{rest}")).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "operator {path} csrf {csrf:?}: {body}"
            );
        }
        // An operator's valid token, sent from another site.
        for (name, value) in [
            ("origin", "http://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ] {
            let mut req = request(
                Method::POST,
                &path,
                Some(&operator),
                Some(&format!("csrf={operator_csrf}{rest}")),
            );
            req.headers_mut().insert(name, value.parse().unwrap());
            let (status, _, body) = app.raw(req).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{name} {path}: {body}");
        }
        // Without a session: to the login page.
        let (status, to, _) = post(&app, "nope", &path, &format!("csrf={operator_csrf}{rest}")).await;
        assert_eq!(
            (status, to.as_deref()),
            (StatusCode::SEE_OTHER, Some("/login")),
            "{path}"
        );
    }
    assert_eq!(snapshot(&app), before, "a refused action changed something");
    // The theme switch and the logout check the token too.
    for path in ["/theme", "/logout"] {
        let (status, _, _) = post(&app, &viewer, path, "csrf=&theme=dark").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
}

#[tokio::test]
async fn an_operator_pauses_and_resumes_a_schedule_cancels_a_timer_tests_and_replays() {
    let app = App::new().await;
    let w = world(&app).await;
    let cookie = login(&app, "sdl_operator").await;
    let shown = page(&app, &cookie, &schedule_path(&w), StatusCode::OK).await;
    assert!(shown.contains(">Pause<"), "{shown}");
    let form = format!("csrf={}", csrf_of(&shown));
    let enabled = |app: &App| {
        app.state
            .store
            .schedule(&w.schedule)
            .unwrap()
            .unwrap()
            .spec
            .enabled
    };
    let (status, to, body) = post(&app, &cookie, &format!("/schedules/{}/pause", w.schedule), &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(to.unwrap(), format!("/schedules/{}", w.schedule));
    assert!(!enabled(&app));
    let shown = page(&app, &cookie, &schedule_path(&w), StatusCode::OK).await;
    assert!(shown.contains(">Resume<") && shown.contains("paused"), "{shown}");
    post(&app, &cookie, &format!("/schedules/{}/resume", w.schedule), &form).await;
    assert!(enabled(&app));
    let (status, _, _) = post(
        &app,
        &cookie,
        &format!("/schedules/{}/explode", w.schedule),
        &form,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, to, body) = post(&app, &cookie, &format!("/timers/{}/cancel", w.timer), &form).await;
    assert_eq!(
        (status, to.as_deref()),
        (StatusCode::SEE_OTHER, Some("/timers")),
        "{body}"
    );
    assert!(
        app.state
            .store
            .timers_page(None, None, None, 10)
            .unwrap()
            .0
            .is_empty()
    );
    let (status, _, _) = post(&app, &cookie, &format!("/timers/{}/cancel", w.timer), &form).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a timer is cancelled once");

    let (status, to, body) = post(&app, &cookie, &format!("/webhooks/{}/test", w.webhook), &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let new = to.unwrap().strip_prefix("/deliveries/").unwrap().to_string();
    assert!(app.state.store.delivery(&new).unwrap().is_some());
    let (status, to, body) = post(
        &app,
        &cookie,
        &format!("/deliveries/{}/replay", w.delivery),
        &form,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(to.unwrap(), format!("/deliveries/{}", w.delivery));
    // The audit shows each change's fields before and after.
    let audit = page(&app, &cookie, "/audit?noun=schedule", StatusCode::OK).await;
    assert!(
        audit.contains("<code>spec.enabled</code>") || audit.contains("<code>enabled</code>"),
        "{audit}"
    );
    assert!(
        audit.contains("<del>true</del>") && audit.contains("<ins>false</ins>"),
        "{audit}"
    );
}

#[tokio::test]
async fn the_preview_marks_daylight_saving_gaps_and_repeats_and_names_bad_rules() {
    let app = App::new().await;
    let cookie = login(&app, "sdl_viewer").await;
    // Sundays in March at 02:30 in Berlin: the last one's 02:30 does not exist.
    let gap = page(
        &app,
        &cookie,
        "/schedules/preview?rule=30+2+*+3+SUN&timezone=Europe%2FBerlin",
        StatusCode::OK,
    )
    .await;
    assert!(gap.contains("moved: this wall time does not exist"), "{gap}");
    assert!(gap.contains("03:00:00.000+02:00"), "moved out of the gap: {gap}");
    // Sundays in October at 02:30: the last one's 02:30 happens twice.
    let repeat = page(
        &app,
        &cookie,
        "/schedules/preview?rule=30+2+*+10+SUN&timezone=Europe%2FBerlin",
        StatusCode::OK,
    )
    .await;
    assert!(repeat.contains("happens twice"), "{repeat}");
    let json_rule = "/schedules/preview?rule=%7B%22cron%22%3A%22%40daily%22%7D&timezone=UTC";
    assert!(
        page(&app, &cookie, json_rule, StatusCode::OK)
            .await
            .contains("T00:00:00.000+00:00")
    );
    for bad in [
        "rule=not+a+rule",
        "rule=%7Bnope",
        "rule=*+*+*+*+*&timezone=Mars%2FOlympus",
    ] {
        let html = page(
            &app,
            &cookie,
            &format!("/schedules/preview?{bad}"),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(html.contains("class=\"error\""), "{bad}: {html}");
    }
}

#[tokio::test]
async fn runs_are_found_by_id_or_event_and_filtered_by_time_and_error_text() {
    let app = App::new().await;
    let w = world(&app).await;
    let cookie = login(&app, "sdl_viewer").await;
    let find = |id: &str| format!("/runs/find?id={id}");
    let (status, headers, _) = app
        .raw(request(Method::GET, &find(&w.run), Some(&cookie), None))
        .await;
    assert_eq!(
        (status, &headers[header::LOCATION]),
        (
            StatusCode::SEE_OTHER,
            &format!("/runs/{}", w.run).parse().unwrap()
        )
    );
    let (status, headers, _) = app
        .raw(request(Method::GET, &find(&w.event), Some(&cookie), None))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], format!("/events/{}", w.event));
    page(
        &app,
        &cookie,
        &find("01JZZZZZZZZZZZZZZZZZZZZZZZ"),
        StatusCode::NOT_FOUND,
    )
    .await;
    page(&app, &cookie, &find(""), StatusCode::BAD_REQUEST).await;

    let error = app
        .state
        .store
        .run(&w.run)
        .unwrap()
        .unwrap()
        .error
        .unwrap()
        .to_string();
    let word: String = error
        .split_whitespace()
        .last()
        .unwrap()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    let hit = page(
        &app,
        &cookie,
        &format!("/runs?q={}", word.to_uppercase()),
        StatusCode::OK,
    )
    .await;
    assert!(hit.contains(&w.run), "{word}: {hit}");
    let miss = page(&app, &cookie, "/runs?q=no-such-error-text", StatusCode::OK).await;
    assert!(miss.contains("No runs match."), "{miss}");
    // A date-time field's value (UTC, no seconds) and RFC 3339 both work.
    let past = page(&app, &cookie, "/runs?since=2000-01-01T00%3A00", StatusCode::OK).await;
    assert!(past.contains(&w.run), "{past}");
    let future = page(
        &app,
        &cookie,
        "/runs?since=2999-01-01T00%3A00%3A00Z",
        StatusCode::OK,
    )
    .await;
    assert!(!future.contains(&w.run), "{future}");
    page(&app, &cookie, "/runs?until=yesterday", StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn bulk_retry_lists_first_then_retries_what_matches_and_cancel_refuses_finished_runs() {
    let app = App::new().await;
    let w = world(&app).await;
    let mut failed = vec![w.run.clone()];
    for _ in 0..4 {
        let run = admin(&app, Method::POST, "/v1/tasks/backup/run", json!({})).await;
        let id = run["id"].as_str().unwrap().to_string();
        finished(&app, &id).await;
        failed.push(id);
    }
    let cookie = login(&app, "sdl_operator").await;
    let list = page(&app, &cookie, "/runs?status=failed&task=backup", StatusCode::OK).await;
    assert!(list.contains("Retry all finished runs that match"), "{list}");
    let csrf = csrf_of(&list);
    let form = format!("csrf={csrf}&task=backup&status=failed&action=retry");
    let (status, _, dry) = post(&app, &cookie, "/runs/bulk", &form).await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert!(
        dry.contains("5 runs match") && dry.contains("Nothing was done yet"),
        "{dry}"
    );
    let count = |app: &App| {
        app.state
            .store
            .list_runs(&Default::default(), None, 1000)
            .unwrap()
            .0
            .len()
    };
    assert_eq!(count(&app), 5, "a listing changes nothing");
    let (status, _, done) = post(&app, &cookie, "/runs/bulk", &format!("{form}&confirm=yes")).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done.contains("Retried 5 of 5 runs"), "{done}");
    assert_eq!(count(&app), 10);
    for id in &failed {
        assert!(done.contains(id.as_str()), "{id} listed: {done}");
    }
    // Cancel takes no finished runs; a bulk action needs a filter; the action is named.
    let refused = [
        (
            format!("csrf={csrf}&status=failed&action=cancel&confirm=yes"),
            "cancel takes no failed runs",
        ),
        (
            format!("csrf={csrf}&action=retry&confirm=yes"),
            "give at least one filter",
        ),
        (
            format!("csrf={csrf}&task=backup&action=explode"),
            "is not retry or cancel",
        ),
        (
            format!("csrf={csrf}&task=backup&since=soon&action=retry"),
            "since",
        ),
    ];
    for (form, says) in refused {
        let (status, _, body) = post(&app, &cookie, "/runs/bulk", &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form}: {body}");
        assert!(body.contains(says), "{form}: {body}");
    }
    // The retried run's page shows its retry chain.
    let retries = app.state.store.list_runs(&Default::default(), None, 5).unwrap().0;
    let retry = retries.iter().find(|r| r.retry_of.is_some()).unwrap();
    let shown = page(&app, &cookie, &format!("/runs/{}", retry.id), StatusCode::OK).await;
    assert!(
        shown.contains("Retry of") && shown.contains(retry.retry_of.as_deref().unwrap()),
        "{shown}"
    );
}

#[tokio::test]
async fn the_tail_of_a_finished_run_sends_its_lines_and_ends() {
    let app = App::new().await;
    let w = world(&app).await;
    let cookie = login(&app, "sdl_viewer").await;
    let (status, headers, body) = app
        .raw(request(
            Method::GET,
            &format!("/runs/{}/tail", w.run),
            Some(&cookie),
            None,
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "text/event-stream");
    let run = app.state.store.run(&w.run).unwrap().unwrap();
    assert!(
        body.starts_with(&format!("event: attempt\ndata: {}\n", run.attempt)),
        "{body}"
    );
    assert_eq!(body.matches("event: line").count(), run.log.lines.len(), "{body}");
    assert!(body.ends_with("event: end\ndata: failed\n\n"), "{body}");
    // A reconnecting browser resumes after the last line it got: nothing is sent twice.
    if !run.log.lines.is_empty() {
        let mut req = request(Method::GET, &format!("/runs/{}/tail", w.run), Some(&cookie), None);
        let last = format!("{}:{}", run.attempt, run.log.lines.len() - 1);
        req.headers_mut().insert("last-event-id", last.parse().unwrap());
        let (_, _, again) = app.raw(req).await;
        assert_eq!(again.matches("event: line").count(), 0, "{again}");
    }
    page(&app, &cookie, "/runs/nope/tail", StatusCode::NOT_FOUND).await;
    let (status, _, _) = app
        .raw(request(Method::GET, &format!("/runs/{}/tail", w.run), None, None))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "no session, no tail");
}

#[tokio::test]
async fn the_theme_switch_keeps_the_choice_and_only_goes_back_to_this_site() {
    let app = App::new().await;
    let cookie = login(&app, "sdl_viewer").await;
    let home = page(&app, &cookie, "/", StatusCode::OK).await;
    assert!(home.contains("data-theme=\"auto\""), "{home}");
    let csrf = csrf_of(&home);
    let (status, headers, _) = app
        .raw(request(
            Method::POST,
            "/theme",
            Some(&cookie),
            Some(&format!("csrf={csrf}&theme=dark&back=%2Ftasks")),
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/tasks");
    let set = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set.starts_with("sundial_theme=dark;") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let mut req = request(Method::GET, "/", Some(&cookie), None);
    req.headers_mut().insert(
        header::COOKIE,
        format!("sundial_session={cookie}; sundial_theme=dark")
            .parse()
            .unwrap(),
    );
    let (_, _, dark) = app.raw(req).await;
    assert!(
        dark.contains("data-theme=\"dark\"") && dark.contains("Theme: dark"),
        "{dark}"
    );
    // A tab inside `/\t/host` is dropped by browsers, which then follow `//host`.
    for back in [
        "%2F%09%2Fevil.example",
        "%2F%2Fevil.example",
        "https%3A%2F%2Fevil.example",
        "%2F%5Cevil.example",
    ] {
        let form = format!("csrf={csrf}&theme=light&back={back}");
        let (status, to, _) = post(&app, &cookie, "/theme", &form).await;
        assert_eq!(
            (status, to.as_deref()),
            (StatusCode::SEE_OTHER, Some("/")),
            "{back}"
        );
    }
    let (status, _, body) = post(&app, &cookie, "/theme", &format!("csrf={csrf}&theme=neon")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn the_script_is_served_and_every_page_loads_it_from_this_site() {
    let app = App::new().await;
    let (status, headers, js) = app.raw(request(Method::GET, "/assets/app.js", None, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert!(js.contains("EventSource") && !js.contains("eval("), "{js}");
}

#[tokio::test]
async fn an_operator_creates_a_task_from_the_form_with_the_apis_checks() {
    let app = App::new().await;
    stand_in_plugin(&app, "echo", World::Action).await;
    stand_in_plugin(&app, "json", World::Formatter).await;
    let viewer = login(&app, "sdl_viewer").await;
    let tasks = page(&app, &viewer, "/tasks", StatusCode::OK).await;
    assert!(!tasks.contains("New task"), "{tasks}");
    page(&app, &viewer, "/tasks/new", StatusCode::FORBIDDEN).await;

    let cookie = login(&app, "sdl_operator").await;
    let form = page(&app, &cookie, "/tasks/new", StatusCode::OK).await;
    assert!(
        form.contains("<option value=\"echo\"") && !form.contains("value=\"json\""),
        "actions only: {form}"
    );
    let csrf = csrf_of(&form);
    let good = format!("csrf={csrf}&name=nightly-backup&plugin=echo&description=d&params=%7B%22vm%22%3A1%7D");
    let (status, to, body) = post(&app, &cookie, "/tasks", &good).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let task = app.state.store.task("nightly-backup").unwrap().unwrap();
    assert_eq!(to.unwrap(), format!("/tasks/{}", task.id));
    assert_eq!(task.spec.params, json!({"vm": 1}));
    // Refusals name the field, keep what was typed and create nothing.
    let refused = [
        ("name=bad%20name&plugin=echo", StatusCode::BAD_REQUEST, "name"),
        (
            "name=nightly-backup&plugin=echo",
            StatusCode::CONFLICT,
            "nightly-backup",
        ),
        (
            "name=x&plugin=json",
            StatusCode::CONFLICT,
            "a task needs an action plugin",
        ),
        ("name=x&plugin=nope", StatusCode::NOT_FOUND, "nope"),
        ("name=x&plugin=echo&params=%5B", StatusCode::BAD_REQUEST, "params"),
    ];
    for (fields, code, says) in refused {
        let (status, _, body) = post(&app, &cookie, "/tasks", &format!("csrf={csrf}&{fields}")).await;
        assert_eq!(status, code, "{fields}: {body}");
        assert!(
            body.contains("role=\"alert\"") && body.contains(says),
            "{fields}: {body}"
        );
    }
    let kept = post(
        &app,
        &cookie,
        "/tasks",
        &format!("csrf={csrf}&name=bad%20name&plugin=echo"),
    )
    .await
    .2;
    assert!(kept.contains("value=\"bad name\""), "{kept}");
    assert_eq!(app.state.store.tasks_page(None, 10).unwrap().0.len(), 1);
}

#[tokio::test]
async fn plugins_and_secrets_are_listed_by_name_fifty_to_a_page() {
    let app = App::new().await;
    for i in 0..52 {
        stand_in_plugin(&app, &format!("p{i:02}"), World::Action).await;
        let path = format!("/v1/secrets/s{i:02}");
        admin(&app, Method::PUT, &path, json!({"value": "v"})).await;
    }
    let cookie = login(&app, "sdl_admin").await;
    for (list, item) in [("/plugins", "p"), ("/secrets", "s")] {
        let first = page(&app, &cookie, list, StatusCode::OK).await;
        assert!(
            first.contains(&format!(">{item}49<")) && !first.contains(&format!(">{item}50<")),
            "{first}"
        );
        let more = format!("href=\"{list}?after={item}49\"");
        let main = &first[first.find("<main").unwrap()..];
        assert!(main.contains(&more), "the link is in the page's content: {first}");
        let rest = page(&app, &cookie, &format!("{list}?after={item}49"), StatusCode::OK).await;
        assert!(
            rest.contains(&format!(">{item}50<")) && rest.contains(&format!(">{item}51<")),
            "{rest}"
        );
        assert!(
            !rest.contains(&format!(">{item}49<")) && !rest.contains("rel=\"next\""),
            "{rest}"
        );
    }
}

#[tokio::test]
async fn a_schedules_heatmap_counts_its_runs_by_day_and_hour_and_their_failures() {
    let app = App::new().await;
    let w = world(&app).await;
    let template = app.state.store.run(&w.run).unwrap().unwrap();
    let slot = chrono::Utc::now() - chrono::Duration::hours(2);
    let mut runs = Vec::new();
    for failed in [true, false, false] {
        let mut run = template.clone();
        run.id = sundial_core::ids::new_id();
        run.cause = sundial_core::run::RunCause::Schedule {
            schedule: w.schedule.clone(),
            slot: sundial_core::timestamp::text(slot),
            due: None,
        };
        if !failed {
            run.status = sundial_core::run::RunStatus::Succeeded;
            run.error = None;
        }
        runs.push(run);
    }
    app.state.store.enqueue_runs(runs).await.unwrap();
    let cookie = login(&app, "sdl_viewer").await;
    let html = page(&app, &cookie, &schedule_path(&w), StatusCode::OK).await;
    assert!(html.contains("3 runs; each cell says runs/failed"), "{html}");
    let cell = format!("{}:00: 3 runs, 1 failed\">3/1<", slot.format("%-H"));
    assert!(
        html.contains("class=\"heat-bad\"") && html.contains(&cell),
        "{cell}: {html}"
    );
}

//! The dashboard over a large task log: the runs page filtered by task and status, and
//! a bulk retry of 1,000 runs from the page, through the real router, engines and redb
//! store (in process, no socket).
//!
//! Run: `SUNDIAL_BENCH_RUNS=1000000 cargo bench -p sundial-server --bench dashboard`
//! (runs in the log; default 5,000). One run in a hundred failed; the log holds two
//! tasks' runs interleaved. Under `cargo bench` it also prints the p50/p95/max of 200
//! renderings of the filtered page.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use std::time::{Duration, Instant};
use sundial_core::run::RunStatus;
use tower::ServiceExt;

#[path = "../tests/app/mod.rs"]
mod app;
use app::App;
use app::web::{add_task, finished, login};

/// Runs in the log.
fn runs_wanted() -> usize {
    std::env::var("SUNDIAL_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000)
}

/// A request of the logged-in browser.
fn get(path: &str, cookie: &str) -> Request<Body> {
    Request::builder()
        .uri(path)
        .header(header::HOST, "127.0.0.1:7780")
        .header(header::COOKIE, format!("sundial_session={cookie}"))
        .body(Body::empty())
        .unwrap()
}

/// Fill the log with `n` finished runs of tasks `backup` and `other` (every 100th
/// failed), cloned from a real failed run with fresh, increasing ids.
async fn fill(app: &App, n: usize) {
    let backup = add_task(app, "backup").await;
    let other = add_task(app, "other").await;
    let (status, run) = app
        .send(
            Method::POST,
            "/v1/tasks/backup/run",
            "sdl_admin",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let template = finished(app, run["id"].as_str().unwrap()).await;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(5000);
    for i in 0..n {
        let mut run = template.clone();
        run.id = sundial_core::ids::new_id();
        (run.task_id, run.task_name) = if i % 2 == 0 {
            (backup.clone(), "backup".into())
        } else {
            (other.clone(), "other".into())
        };
        if i % 100 != 0 {
            run.status = RunStatus::Succeeded;
            run.error = None;
        }
        batch.push(run);
        if batch.len() == 5000 || i + 1 == n {
            app.state
                .store
                .enqueue_runs(std::mem::take(&mut batch))
                .await
                .unwrap();
        }
    }
    eprintln!("filled the log with {n} runs in {:.1?}", started.elapsed());
}

fn dashboard(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let n = runs_wanted();
    let (app, cookie) = rt.block_on(async {
        // Room for the bulk retries' runs.
        let app = App::with_queue(100_000).await;
        fill(&app, n).await;
        let cookie = login(&app, "sdl_operator").await;
        (app, cookie)
    });
    let router = sundial_server::router(app.state.clone());
    let page = "/runs?task=backup&status=failed";
    let render = |router: axum::Router, cookie: String| async move {
        let resp = router.oneshot(get(page, &cookie)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(body.len() > 1000);
    };
    let mut group = c.benchmark_group(format!("dashboard_{n}_runs"));
    group.bench_function("runs_page_by_task_and_status", |b| {
        b.to_async(&rt).iter(|| render(router.clone(), cookie.clone()))
    });
    if std::env::args().any(|a| a == "--bench") {
        let mut samples: Vec<Duration> = (0..200)
            .map(|_| {
                let t = Instant::now();
                rt.block_on(render(router.clone(), cookie.clone()));
                t.elapsed()
            })
            .collect();
        samples.sort();
        eprintln!(
            "runs page over {n} runs, 200 renderings: p50 {:.1?}, p95 {:.1?}, max {:.1?}",
            samples[100], samples[190], samples[199]
        );
    }
    // Each bulk retry queues 1,000 new runs (of a stand-in plugin, which fail at once).
    let csrf = rt.block_on(async {
        let resp = router.clone().oneshot(get("/runs", &cookie)).await.unwrap();
        let html = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
        html[at..at + 64].to_string()
    });
    group.sample_size(10);
    group.bench_function("bulk_retry_1000_runs", |b| {
        b.to_async(&rt).iter(|| {
            let router = router.clone();
            let form = format!("csrf={csrf}&task=backup&status=failed&action=retry&confirm=yes");
            let req = Request::builder()
                .method(Method::POST)
                .uri("/runs/bulk")
                .header(header::HOST, "127.0.0.1:7780")
                .header(header::COOKIE, format!("sundial_session={cookie}"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header("sec-fetch-site", "same-origin")
                .body(Body::from(form))
                .unwrap();
            async move {
                let resp = router.oneshot(req).await.unwrap();
                let status = resp.status();
                let html = resp.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&html));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, dashboard);
criterion_main!(benches);

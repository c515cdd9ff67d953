//! The overview: health (queue, running runs, counts), runs per minute and failures
//! over the last day as a chart drawn on the server (SVG, no script), the next fires,
//! the webhook endpoints in trouble and the latest changes.

use super::admin::AuditRow;
use super::webhooks::{HookRow, hooks};
use super::{Browser, Chrome, page_error, render};
use crate::ApiError;
use askama::Template;
use axum::response::Response;
use std::fmt::Write;
use sundial_core::activity::{MINUTES, Minute};
use sundial_engine::scheduler::NextFire;

/// The overview counts items up to this many (a page of the store), then says "1000+".
const COUNT_UP_TO: usize = 1000;
/// Fires shown.
const NEXT_FIRES: usize = 10;
/// Webhooks looked at for trouble.
const HOOKS_CHECKED: usize = 100;
/// Changes shown.
const CHANGES: usize = 10;
/// The chart's height in its own units (its width is one unit a minute).
const CHART_HEIGHT: u32 = 100;

/// A page's size as a count, "N+" when there are more.
fn count<T>((items, more): (Vec<T>, Option<String>)) -> String {
    format!("{}{}", items.len(), if more.is_some() { "+" } else { "" })
}

/// The last day drawn: two step lines (finished and failed runs per minute), with
/// totals, the peak and an hourly table for those who do not see the chart.
pub(super) struct Chart {
    finished_points: String,
    failed_points: String,
    total: u32,
    failed: u32,
    peak: u32,
    /// (hour label, finished, failed), oldest first.
    hours: Vec<(String, u32, u32)>,
}

/// SVG polyline points of a per-minute series scaled to `peak`: a point where the
/// value changes (and the one before it, to keep the steps), so a quiet day is a
/// handful of points rather than 1,440.
fn points(values: &[u32], peak: u32) -> String {
    let y = |v: u32| CHART_HEIGHT - v * CHART_HEIGHT / peak.max(1);
    let mut out = String::new();
    let mut previous: Option<u32> = None;
    let mut written: Option<usize> = None;
    for (x, &v) in values.iter().enumerate() {
        let last = x + 1 == values.len();
        if previous != Some(v) || last {
            if let Some(p) = previous
                && p != v
                && written != Some(x - 1)
            {
                let _ = write!(out, "{},{} ", x - 1, y(p));
            }
            let _ = write!(out, "{x},{} ", y(v));
            written = Some(x);
        }
        previous = Some(v);
    }
    out.trim_end().to_string()
}

impl Chart {
    pub(super) fn of(minutes: &[Minute]) -> Chart {
        let finished: Vec<u32> = minutes.iter().map(|m| m.finished).collect();
        let failed: Vec<u32> = minutes.iter().map(|m| m.failed).collect();
        let peak = finished.iter().copied().max().unwrap_or(0);
        // By clock hour (UTC): the first and last rows are the parts of their hours
        // inside the last day.
        let hours = minutes
            .chunk_by(|a, b| a.minute.div_euclid(60) == b.minute.div_euclid(60))
            .map(|hour| {
                let start = chrono::DateTime::from_timestamp(hour[0].minute * 60, 0).unwrap_or_default();
                (
                    start.format("%H:00").to_string(),
                    hour.iter().map(|m| m.finished).sum(),
                    hour.iter().map(|m| m.failed).sum(),
                )
            })
            .collect();
        Chart {
            finished_points: points(&finished, peak),
            failed_points: points(&failed, peak),
            total: finished.iter().sum(),
            failed: failed.iter().sum(),
            peak,
            hours,
        }
    }

    /// The chart's width in its own units: a minute each.
    fn width(&self) -> usize {
        MINUTES
    }
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Option<Chrome>,
    queue_depth: u64,
    running: usize,
    tasks: String,
    schedules: String,
    chart: Chart,
    next: Vec<NextFire>,
    trouble: Vec<HookRow>,
    hooks_checked_all: bool,
    audit: Vec<AuditRow>,
}

/// `GET /`: the overview.
pub(super) async fn overview(browser: Browser) -> Response {
    let state = &browser.state;
    let next = state.engines.scheduler.next_fires(NEXT_FIRES).await;
    let now = chrono::Utc::now().timestamp();
    let page = (|| -> Result<OverviewPage, ApiError> {
        let filter = sundial_store::audit::AuditFilter::default();
        let (entries, _) = state.store.audit(&filter, None, CHANGES)?;
        let (hooks, more_hooks) = hooks(state, None, HOOKS_CHECKED)?;
        Ok(OverviewPage {
            chrome: Some(browser.chrome("overview")),
            queue_depth: state.store.queue_depth()?,
            running: state.engines.executor.running_count(),
            tasks: count(state.store.tasks_page(None, COUNT_UP_TO)?),
            schedules: count(state.store.schedules_page(None, COUNT_UP_TO)?),
            chart: Chart::of(&state.engines.executor.activity().last_day(now)),
            next,
            trouble: hooks.into_iter().filter(|h| h.trouble).collect(),
            hooks_checked_all: more_hooks.is_none(),
            audit: entries.into_iter().map(AuditRow::of).collect(),
        })
    })();
    page.map_or_else(page_error, |p| render(&p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_becomes_steps_with_a_point_where_it_changes() {
        assert_eq!(points(&[0, 0, 0, 0], 0), "0,100 3,100");
        assert_eq!(points(&[0, 2, 2, 1], 2), "0,100 1,0 2,0 3,50");
        let quiet = vec![0; MINUTES];
        assert_eq!(points(&quiet, 0).split(' ').count(), 2);
    }

    #[test]
    fn the_chart_sums_hours_and_finds_the_peak() {
        let minutes: Vec<Minute> = (0..MINUTES as i64)
            .map(|i| Minute {
                minute: 29_000_000 + i,
                finished: u32::from(i % 60 == 0) * 3,
                failed: u32::from(i == 0),
            })
            .collect();
        let chart = Chart::of(&minutes);
        assert_eq!((chart.total, chart.failed, chart.peak), (72, 1, 3));
        // 29,000,000 minutes is 20 minutes past an hour: 25 rows, the first of 40
        // minutes (one run at its first minute), each whole hour one.
        assert_eq!(29_000_000 % 60, 20);
        assert_eq!(chart.hours.len(), 25);
        assert_eq!(chart.hours[0].1, 3);
        assert_eq!(chart.hours[1].1, 3);
        assert_eq!(chart.hours.iter().map(|h| h.1).sum::<u32>(), 72);
        assert_eq!(chart.width(), 1440);
    }
}

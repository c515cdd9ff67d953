//! The schedules pages: the list (rule in words, zone, next fire), one schedule (its
//! agenda of the next fires on its own wall clock with DST gaps and repeats marked, a
//! heatmap of its runs over the last week, the tasks it drives), pause and resume, and
//! a preview of a rule before it is saved.

use super::tasks::After;
use super::{Act, Browser, Chrome, page_error, render};
use crate::resource::Resource;
use crate::schedules::{ScheduleView, Schedules};
use crate::{ApiError, AppState};
use askama::Template;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use serde::Deserialize;
use sundial_core::run::{RunCause, RunStatus};
use sundial_core::schedule::{DstNote, Rule, Slot, Timing};
use sundial_store::runs::RunFilter;

/// Schedules on one page of the list.
const PAGE: usize = 50;
/// Fires shown in a schedule's agenda and in a preview.
const AGENDA: usize = 24;
/// Days the heatmap covers.
const HEAT_DAYS: i64 = 7;
/// Most runs the heatmap reads, shared among the attached tasks.
const HEAT_MAX_RUNS: usize = 5000;

/// One fire of an agenda: its wall time, UTC instant and DST note.
struct Fire {
    local: String,
    utc: String,
    dst: &'static str,
}

impl Fire {
    fn of(slot: Slot) -> Fire {
        Fire {
            local: slot.local,
            utc: sundial_core::timestamp::text(slot.at),
            dst: match slot.dst {
                Some(DstNote::MovedOutOfGap) => "moved: this wall time does not exist (clocks go forward)",
                Some(DstNote::FirstOfRepeated) => {
                    "this wall time happens twice (clocks go back): fires at the first"
                }
                None => "",
            },
        }
    }
}

#[derive(Template)]
#[template(path = "schedules.html")]
struct SchedulesPage {
    chrome: Option<Chrome>,
    rows: Vec<ScheduleView>,
    next: Option<String>,
}

/// `GET /schedules`.
pub(super) async fn list(browser: Browser, Query(q): Query<After>) -> Response {
    let state = &browser.state;
    let page = (|| -> Result<SchedulesPage, ApiError> {
        crate::extract::check_cursor(&q.after)?;
        let (records, next) = state.store.schedules_page(q.after.as_deref(), PAGE)?;
        let rows = records
            .into_iter()
            .map(|r| Schedules::view(state, r))
            .collect::<Result<_, _>>()?;
        Ok(SchedulesPage {
            chrome: Some(browser.chrome("schedules")),
            rows,
            next,
        })
    })();
    page.map_or_else(page_error, |p| render(&p))
}

/// One day of the heatmap: its date and, per hour, (runs, failed runs).
struct HeatDay {
    date: String,
    hours: Vec<(u32, usize, usize)>,
}

#[derive(Template)]
#[template(path = "schedule.html")]
struct SchedulePage {
    chrome: Option<Chrome>,
    s: ScheduleView,
    agenda: Vec<Fire>,
    agenda_error: Option<String>,
    heat: Vec<HeatDay>,
    heat_runs: usize,
    /// The misfire policy's word (`run_once`).
    misfire: String,
}

/// The schedule's runs per day and hour over the last [`HEAT_DAYS`] days (UTC),
/// newest day first: (days, runs counted).
fn heatmap(
    state: &AppState,
    view: &ScheduleView,
    now: DateTime<Utc>,
) -> Result<(Vec<HeatDay>, usize), ApiError> {
    let today = now.date_naive();
    let first = today - Duration::days(HEAT_DAYS - 1);
    let mut cells = vec![vec![(0usize, 0usize); 24]; HEAT_DAYS as usize];
    let mut counted = 0;
    let since = sundial_core::timestamp::text(first.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    let per_task = (HEAT_MAX_RUNS / view.tasks.len().max(1)).max(1);
    for task in &view.tasks {
        let filter = RunFilter {
            task_id: Some(task.clone()),
            cause: Some("schedule".into()),
            since: Some(since.clone()),
            ..RunFilter::default()
        };
        let (runs, _) = state.store.list_runs(&filter, None, per_task)?;
        for run in runs {
            let RunCause::Schedule { schedule, slot, .. } = &run.cause else {
                continue;
            };
            let Ok(at) = sundial_core::timestamp::parse(slot) else {
                continue;
            };
            if *schedule != view.id || at.date_naive() < first {
                continue;
            }
            let day = (at.date_naive() - first).num_days() as usize;
            if let Some(cell) = cells.get_mut(day).and_then(|d| d.get_mut(at.hour() as usize)) {
                cell.0 += 1;
                if matches!(
                    run.status,
                    RunStatus::Failed | RunStatus::TimedOut | RunStatus::Interrupted
                ) {
                    cell.1 += 1;
                }
                counted += 1;
            }
        }
    }
    let days = cells
        .into_iter()
        .enumerate()
        .rev()
        .map(|(i, hours)| {
            let date = first + Duration::days(i as i64);
            HeatDay {
                date: format!("{} {:02}-{:02}", date.weekday(), date.month(), date.day()),
                hours: hours
                    .into_iter()
                    .enumerate()
                    .map(|(h, (n, f))| (h as u32, n, f))
                    .collect(),
            }
        })
        .collect();
    Ok((days, counted))
}

/// `GET /schedules/{id}` (an id or a name).
pub(super) async fn show(browser: Browser, Path(key): Path<String>) -> Response {
    let state = &browser.state;
    let page = (|| -> Result<SchedulePage, ApiError> {
        let record = Schedules::get(state, &key)?;
        let now = state.engines.scheduler.clock().now();
        let (_, timing) = crate::schedules::timing(&record.spec, now);
        let after = record.last_slot.unwrap_or(now).max(now);
        let (agenda, agenda_error) = match timing {
            Ok(t) => (t.preview(after, AGENDA).into_iter().map(Fire::of).collect(), None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let view = Schedules::view(state, record)?;
        let (heat, heat_runs) = heatmap(state, &view, now)?;
        Ok(SchedulePage {
            chrome: Some(browser.chrome("schedules")),
            misfire: super::runs::word(&view.spec.misfire),
            s: view,
            agenda,
            agenda_error,
            heat,
            heat_runs,
        })
    })();
    page.map_or_else(page_error, |p| render(&p))
}

/// `POST /schedules/{id}/pause` and `/resume`.
pub(super) async fn toggle(Path((key, verb)): Path<(String, String)>, act: Act) -> Response {
    let enabled = match verb.as_str() {
        "resume" => true,
        "pause" => false,
        _ => {
            return page_error(ApiError::not_found(
                "no such action on a schedule: pause or resume",
            ));
        }
    };
    match Schedules::toggle(&act.browser.state, &key, enabled, act.browser.caller.who()).await {
        Ok(s) => Redirect::to(&format!("/schedules/{}", s.id)).into_response(),
        Err(e) => page_error(e),
    }
}

/// The preview form: a rule (a cron expression, or a rule as JSON) and a zone.
#[derive(Deserialize, Default)]
pub(super) struct PreviewQuery {
    #[serde(default)]
    rule: String,
    #[serde(default)]
    timezone: String,
}

#[derive(Template)]
#[template(path = "preview.html")]
struct PreviewPage {
    chrome: Option<Chrome>,
    rule: String,
    timezone: String,
    summary: String,
    fires: Vec<Fire>,
    error: Option<String>,
}

/// A rule as typed: JSON (`{"calendar": {...}}`) when it starts with `{`, else a cron
/// expression.
fn parse_rule(text: &str) -> Result<Rule, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("give a rule: a cron expression such as 0 9 * * MON-FRI, or a rule as JSON".into());
    }
    if text.starts_with('{') {
        serde_json::from_str(text).map_err(|e| format!("rule: not a rule as JSON: {e}"))
    } else {
        Ok(Rule::Cron(text.to_string()))
    }
}

/// `GET /schedules/preview?rule=&timezone=`: the next fires of a rule, nothing saved.
pub(super) async fn preview(browser: Browser, Query(q): Query<PreviewQuery>) -> Response {
    let state = &browser.state;
    let timezone = match q.timezone.trim() {
        "" => state.default_timezone.clone(),
        tz => tz.to_string(),
    };
    let mut page = PreviewPage {
        chrome: Some(browser.chrome("schedules")),
        rule: q.rule.clone(),
        timezone: timezone.clone(),
        summary: String::new(),
        fires: Vec::new(),
        error: None,
    };
    if !q.rule.trim().is_empty() {
        let now = state.engines.scheduler.clock().now();
        let previewed = parse_rule(&q.rule)
            .and_then(|rule| Timing::new(&rule, &timezone, now, None, now).map(|t| (rule, t)));
        match previewed {
            Ok((rule, timing)) => {
                page.summary = sundial_core::schedule::words::describe(&rule, &timezone, now);
                page.fires = timing.preview(now, AGENDA).into_iter().map(Fire::of).collect();
            }
            Err(e) => page.error = Some(e),
        }
    }
    let status = if page.error.is_some() {
        axum::http::StatusCode::BAD_REQUEST
    } else {
        axum::http::StatusCode::OK
    };
    (status, render(&page)).into_response()
}

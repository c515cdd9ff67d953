//! `sundial calendar ...` (excluded days for schedules) and `sundial maintenance ...`
//! (one-off windows in which schedules do not fire).

use super::EXIT_USAGE;
use super::client::{Failure, Remote, columns, text};
use super::remote::q;
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Debug, Subcommand)]
pub(crate) enum CalendarCommand {
    /// Create a calendar from dates, yearly dates, ranges and an iCalendar file.
    Create {
        /// Calendar name.
        name: String,
        /// An excluded day, YYYY-MM-DD (repeatable).
        #[arg(long = "date")]
        dates: Vec<String>,
        /// A day excluded every year, MM-DD (repeatable).
        #[arg(long = "yearly")]
        yearly: Vec<String>,
        /// An excluded range FROM..TO: dates (both included), wall times
        /// (2026-12-24T18:00..2026-12-27T06:00, end excluded) or RFC 3339 (repeatable).
        #[arg(long = "range")]
        ranges: Vec<String>,
        /// An iCalendar (.ics) file whose events are excluded (public holidays).
        #[arg(long)]
        ics: Option<std::path::PathBuf>,
        /// IANA zone of its dates [default: the zone of each schedule using it].
        #[arg(long)]
        tz: Option<String>,
        /// Free text.
        #[arg(long)]
        description: Option<String>,
    },
    /// List calendars.
    List,
    /// Show a calendar.
    Get { name: String },
    /// Delete a calendar (refused while schedules use it).
    Delete { name: String },
    /// Is this time excluded, and by what?
    Check {
        name: String,
        /// The time, RFC 3339 [default: now].
        #[arg(long)]
        at: Option<String>,
        /// Zone for a calendar without one [default: the daemon's].
        #[arg(long)]
        tz: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum MaintenanceCommand {
    /// Start a maintenance window: schedules (all, or those named) do not fire in it.
    Start {
        /// How long: 30m, 2h, 1d, "2 hours" (1 minute to 30 days).
        #[arg(long = "for")]
        duration: String,
        /// Only these schedules, comma-separated [default: all].
        #[arg(long, value_delimiter = ',')]
        schedules: Vec<String>,
        /// Why (shown in the skipped runs' logs).
        #[arg(long)]
        reason: Option<String>,
        /// When it starts, RFC 3339 [default: now].
        #[arg(long)]
        from: Option<String>,
    },
    /// List maintenance windows.
    List,
    /// End a maintenance window now.
    End { id: String },
}

fn entries(dates: Vec<String>, yearly: Vec<String>, ranges: Vec<String>) -> Result<Vec<Value>, Failure> {
    let mut out: Vec<Value> = dates.into_iter().map(|d| json!({ "date": d })).collect();
    out.extend(yearly.into_iter().map(|y| json!({ "yearly": y })));
    for r in ranges {
        let (from, to) = r.split_once("..").ok_or_else(|| {
            (
                EXIT_USAGE,
                format!("--range {r:?}: expected FROM..TO, e.g. 2026-12-24..2026-12-26"),
            )
        })?;
        out.push(json!({ "from": from, "to": to }));
    }
    Ok(out)
}

fn describe(c: &Value) -> String {
    let mut out = format!("calendar {}", text(&c["name"]));
    if let Some(tz) = c["timezone"].as_str().filter(|t| !t.is_empty()) {
        out.push_str(&format!(" ({tz})"));
    }
    out.push('\n');
    for e in c["exclude"].as_array().into_iter().flatten() {
        let what = if let Some(d) = e["date"].as_str() {
            d.to_string()
        } else if let Some(y) = e["yearly"].as_str() {
            format!("every {y}")
        } else {
            format!("{} to {}", text(&e["from"]), text(&e["to"]))
        };
        match e["note"].as_str() {
            Some(n) => out.push_str(&format!("  {what}  {}\n", text(&Value::String(n.to_string())))),
            None => out.push_str(&format!("  {what}\n")),
        }
    }
    if c["ics"].is_string() {
        out.push_str("  and the events of its iCalendar file\n");
    }
    out
}

pub(crate) async fn calendar(remote: &Remote, cmd: CalendarCommand) -> Result<(), Failure> {
    match cmd {
        CalendarCommand::Create {
            name,
            dates,
            yearly,
            ranges,
            ics,
            tz,
            description,
        } => {
            let mut body = json!({ "name": name, "exclude": entries(dates, yearly, ranges)? });
            if let Some(path) = ics {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| (EXIT_USAGE, format!("--ics {}: {e}", path.display())))?;
                body["ics"] = json!(text);
            }
            if let Some(tz) = tz {
                body["timezone"] = json!(tz);
            }
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            let v = remote.call("POST", "/v1/calendars", Some(&body)).await?;
            remote.print(&v, |c| format!("created {}", describe(c)));
        }
        CalendarCommand::List => {
            let v = remote.call("GET", "/v1/calendars", None).await?;
            remote.print(&v, |v| {
                let mut v = v.clone();
                for c in v["calendars"].as_array_mut().into_iter().flatten() {
                    let n = c["exclude"].as_array().map_or(0, Vec::len);
                    c["entries"] = json!(n);
                    c["has_ics"] = json!(c["ics"].is_string());
                }
                columns(
                    &v,
                    "calendars",
                    &[
                        ("NAME", "name"),
                        ("ZONE", "timezone"),
                        ("ENTRIES", "entries"),
                        ("ICS", "has_ics"),
                    ],
                )
            });
        }
        CalendarCommand::Get { name } => {
            let v = remote
                .call("GET", &format!("/v1/calendars/{}", q(&name)), None)
                .await?;
            remote.print(&v, describe);
        }
        CalendarCommand::Delete { name } => {
            remote
                .call("DELETE", &format!("/v1/calendars/{}", q(&name)), None)
                .await?;
            remote.done(
                json!({"deleted": "calendar", "name": name}),
                &format!("deleted calendar {name}"),
            );
        }
        CalendarCommand::Check { name, at, tz } => {
            let mut path = format!("/v1/calendars/{}/check?", q(&name));
            if let Some(at) = at {
                path.push_str(&format!("at={}&", q(&at)));
            }
            if let Some(tz) = tz {
                path.push_str(&format!("timezone={}", q(&tz)));
            }
            let v = remote
                .call("GET", path.trim_end_matches(['&', '?']), None)
                .await?;
            remote.print(&v, |v| {
                if v["excluded"] == true {
                    format!(
                        "{} is excluded by {}, from {} to {}\n",
                        text(&v["at"]),
                        text(&v["window"]["reason"]),
                        text(&v["window"]["start"]),
                        text(&v["window"]["end"])
                    )
                } else {
                    format!("{} is not excluded\n", text(&v["at"]))
                }
            });
        }
    }
    Ok(())
}

pub(crate) async fn maintenance(remote: &Remote, cmd: MaintenanceCommand) -> Result<(), Failure> {
    let row = |m: &Value| {
        let scope = match m["schedules"].as_array() {
            Some(s) if !s.is_empty() => s.iter().map(text).collect::<Vec<_>>().join(","),
            _ => "all schedules".into(),
        };
        format!(
            "maintenance {} from {} until {} for {}{}\n",
            text(&m["id"]),
            text(&m["from"]),
            text(&m["until"]),
            scope,
            if m["active"] == true { " (active)" } else { "" }
        )
    };
    match cmd {
        MaintenanceCommand::Start {
            duration,
            schedules,
            reason,
            from,
        } => {
            sundial_core::limits::parse_duration(&duration)
                .map_err(|e| (EXIT_USAGE, format!("--for {e}")))?;
            let mut body = json!({ "for": duration, "schedules": schedules });
            if let Some(r) = reason {
                body["reason"] = json!(r);
            }
            if let Some(f) = from {
                body["from"] = json!(f);
            }
            let v = remote.call("POST", "/v1/maintenance", Some(&body)).await?;
            remote.print(&v, |m| format!("started {}", row(m)));
        }
        MaintenanceCommand::List => {
            let v = remote.call("GET", "/v1/maintenance", None).await?;
            remote.print(&v, |v| {
                let mut v = v.clone();
                for m in v["windows"].as_array_mut().into_iter().flatten() {
                    let scope = match m["schedules"].as_array() {
                        Some(s) if !s.is_empty() => s.iter().map(text).collect::<Vec<_>>().join(","),
                        _ => "all".into(),
                    };
                    m["scope"] = json!(scope);
                }
                columns(
                    &v,
                    "windows",
                    &[
                        ("ID", "id"),
                        ("FROM", "from"),
                        ("UNTIL", "until"),
                        ("SCHEDULES", "scope"),
                        ("ACTIVE", "active"),
                        ("BY", "by"),
                        ("REASON", "reason"),
                    ],
                )
            });
        }
        MaintenanceCommand::End { id } => {
            let v = remote
                .call("POST", &format!("/v1/maintenance/{}/end", q(&id)), None)
                .await?;
            remote.print(&v, |m| format!("ended {}", row(m)));
        }
    }
    Ok(())
}

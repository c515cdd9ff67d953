//! `sundial calendar ...`: excluded days and ranges (holidays) that schedules honour.

use super::EXIT_USAGE;
use super::client::{Failure, Remote, columns, text};
use super::noun::{Noun, Toggle, q, set};
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

/// Calendars, by name (listed whole, with how many entries each holds).
pub(crate) const CALENDARS: Noun = Noun {
    name: "calendar",
    path: "/v1/calendars",
    key: "calendars",
    columns: &[
        ("NAME", "name"),
        ("ZONE", "timezone"),
        ("ENTRIES", "entries"),
        ("ICS", "has_ics"),
    ],
    toggle: Toggle::Patch,
};

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
            set(&mut body, "timezone", tz);
            set(&mut body, "description", description);
            let v = remote.call("POST", CALENDARS.path, Some(&body)).await?;
            remote.print(&v, |c| format!("created {}", describe(c)));
        }
        CalendarCommand::List => {
            let v = remote.call("GET", CALENDARS.path, None).await?;
            remote.print(&v, |v| {
                let mut v = v.clone();
                for c in v["calendars"].as_array_mut().into_iter().flatten() {
                    let n = c["exclude"].as_array().map_or(0, Vec::len);
                    c["entries"] = json!(n);
                    c["has_ics"] = json!(c["ics"].is_string());
                }
                columns(&v, CALENDARS.key, CALENDARS.columns)
            });
        }
        CalendarCommand::Get { name } => {
            let v = remote.call("GET", &CALENDARS.item(&name), None).await?;
            remote.print(&v, describe);
        }
        CalendarCommand::Delete { name } => CALENDARS.delete(remote, &name).await?,
        CalendarCommand::Check { name, at, tz } => {
            let mut path = format!("{}/check?", CALENDARS.item(&name));
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

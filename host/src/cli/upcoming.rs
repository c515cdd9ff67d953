//! `sundial upcoming`: the agenda of schedules and timers, with the DST changes ahead.

use super::client::{Failure, Remote, text};
use serde_json::Value;

/// `sundial upcoming`: the agenda as a table, then the DST changes in the window.
pub(crate) async fn upcoming(
    remote: &Remote,
    hours: u32,
    task: Option<String>,
    limit: usize,
) -> Result<(), Failure> {
    let mut path = format!("/v1/upcoming?hours={hours}&limit={limit}");
    if let Some(t) = &task {
        path.push_str(&format!("&task={}", super::noun::q(t)));
    }
    let v = remote.call("GET", &path, None).await?;
    remote.print(&v, agenda_text);
    Ok(())
}

fn agenda_text(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let mut tasks: Vec<String> = e["tasks"].as_array().into_iter().flatten().map(text).collect();
            if let Some(hook) = e["webhook"].as_str() {
                tasks.push(format!("webhook {hook}"));
            }
            let note = match e["dst"].as_str() {
                _ if e["excluded"].is_string() => text(&e["excluded"]),
                Some("moved_out_of_gap") => "DST: moved past the skipped hour".to_string(),
                Some("first_of_repeated") => "DST: first of the repeated hour".to_string(),
                _ => e["timer"]
                    .as_str()
                    .map(|t| format!("timer {t}"))
                    .unwrap_or_default(),
            };
            vec![
                text(&e["local"]),
                text(&e["timezone"]),
                text(&e["kind"]),
                text(&e["name"]),
                tasks.join(", "),
                note,
            ]
        })
        .collect();
    let mut out = if rows.is_empty() {
        format!("nothing until {}\n", text(&v["until"]))
    } else {
        super::client::table(&["WHEN", "ZONE", "KIND", "NAME", "TASKS", "NOTE"], rows)
    };
    if v["more"] == true {
        out.push_str("more fall in the window: raise --limit or narrow with --task\n");
    }
    for t in v["transitions"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "DST: {} changes from {} to {} at {}\n",
            text(&t["timezone"]),
            text(&t["from"]),
            text(&t["to"]),
            text(&t["at"])
        ));
    }
    out
}

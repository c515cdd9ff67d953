//! `sundial event ...`: post events and read the event log.

use super::client::{Failure, Remote, columns, text};
use super::noun::{json_arg, query, set};
use clap::Subcommand;
use serde_json::json;

/// `sundial event ...`
#[derive(Debug, Subcommand)]
pub(crate) enum EventCommand {
    /// Post an event (a CloudEvent built from the flags).
    Emit {
        /// Event type, e.g. user.created.
        #[arg(value_name = "TYPE")]
        kind: String,
        /// Event data, as JSON.
        #[arg(long)]
        data: Option<String>,
        /// What the event is about.
        #[arg(long)]
        subject: Option<String>,
        /// Who produced it [default: sundial-cli].
        #[arg(long, default_value = "sundial-cli")]
        source: String,
        /// Its id; a resend with the same id and source is accepted once [default: a new ULID].
        #[arg(long)]
        id: Option<String>,
    },
    /// The event log, newest first.
    List {
        /// Only this type (exact or glob, e.g. 'sync.*').
        #[arg(long = "type")]
        kind: Option<String>,
        /// Only this subject (exact or glob).
        #[arg(long)]
        subject: Option<String>,
        /// Most events to show (1-1000).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One event with what it caused.
    Get {
        /// The event's seq.
        seq: String,
    },
}

pub(crate) async fn event(remote: &Remote, cmd: EventCommand) -> Result<(), Failure> {
    match cmd {
        EventCommand::Emit {
            kind,
            data,
            subject,
            source,
            id,
        } => {
            let mut body = json!({
                "specversion": "1.0",
                "id": id.unwrap_or_else(sundial_core::ids::new_id),
                "source": source,
                "type": kind,
            });
            if let Some(d) = data {
                body["data"] = json_arg("--data", &d)?;
                body["datacontenttype"] = json!("application/json");
            }
            set(&mut body, "subject", subject);
            let v = remote.call("POST", "/v1/events", Some(&body)).await?;
            remote.print(&v, |v| {
                let runs: usize = v["triggers"]
                    .as_array()
                    .map(|t| t.iter().map(|m| m["runs"].as_array().map_or(0, Vec::len)).sum())
                    .unwrap_or(0);
                let timers: usize = v["triggers"]
                    .as_array()
                    .map(|t| t.iter().map(|m| m["timers"].as_array().map_or(0, Vec::len)).sum())
                    .unwrap_or(0);
                format!(
                    "event {} {}: {} triggers matched, {runs} runs started, {timers} timers set{}\n",
                    text(&v["seq"]),
                    if v["duplicate"] == true {
                        "(duplicate, ignored)"
                    } else {
                        "stored"
                    },
                    v["triggers"].as_array().map_or(0, Vec::len),
                    v["stopped"]
                        .as_str()
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default()
                )
            });
        }
        EventCommand::List { kind, subject, limit } => {
            let path = format!(
                "/v1/events?limit={limit}{}",
                query(&[("type", &kind), ("subject", &subject)])
            );
            let v = remote.call("GET", &path, None).await?;
            remote.print(&v, |v| {
                let mut flat = v.clone();
                if let Some(events) = flat["events"].as_array_mut() {
                    for e in events {
                        let matched = e["triggers"].as_array().map_or(0, Vec::len);
                        e["type"] = e["event"]["type"].clone();
                        e["subject"] = e["event"]["subject"].clone();
                        e["source"] = e["event"]["source"].clone();
                        e["matched"] = json!(matched);
                    }
                }
                columns(
                    &flat,
                    "events",
                    &[
                        ("RECEIVED", "received_at"),
                        ("TYPE", "type"),
                        ("SUBJECT", "subject"),
                        ("SOURCE", "source"),
                        ("TRIGGERS", "matched"),
                        ("SEQ", "seq"),
                    ],
                )
            });
        }
        EventCommand::Get { seq } => remote.show(&format!("/v1/events/{seq}")).await?,
    }
    Ok(())
}

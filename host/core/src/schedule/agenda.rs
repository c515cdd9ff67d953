//! The agenda: every schedule's next fires and every pending timer in a window, merged
//! into one list in time order, each in its zone, with the DST changes that fall in
//! the window (`sundial upcoming`, `GET /v1/upcoming`). Pure: the API gathers the
//! schedules and timers and hands them in.

use super::spec::ScheduleSpec;
use super::{Timing, zone};
use chrono::{DateTime, Duration, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use std::collections::BTreeSet;

/// One thing that will happen.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Entry {
    /// When, RFC 3339 UTC.
    pub at: String,
    /// The same instant on its zone's wall clock, with the offset.
    pub local: String,
    /// The zone: the schedule's, or UTC for a timer.
    pub timezone: String,
    /// `schedule` (a slot) or `timer` (a delayed trigger run).
    #[schemars(extend("enum" = ["schedule", "timer"]))]
    pub kind: &'static str,
    /// The schedule's name, or the trigger's for a timer.
    pub name: String,
    /// The tasks it starts (a schedule's attached tasks; a timer's one task).
    pub tasks: Vec<String>,
    /// The webhook a timer sends its event to (instead of a task).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// How DST moved this slot, if it did (`moved_out_of_gap`, `first_of_repeated`).
    pub dst: Option<zone::DstNote>,
    /// The timer's id (to cancel it), for timers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timer: Option<String>,
    /// A slot in an excluded window (calendar or maintenance): what will happen and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excluded: Option<String>,
}

/// A change of a zone's UTC offset inside the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Transition {
    /// The zone.
    pub timezone: String,
    /// The first instant on the new offset, RFC 3339 UTC.
    pub at: String,
    /// The offset before, `+01:00`.
    pub from: String,
    /// The offset after.
    pub to: String,
}

/// The agenda of a window.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Agenda {
    /// Window start (now), RFC 3339 UTC.
    pub from: String,
    /// Window end, RFC 3339 UTC.
    pub until: String,
    /// What happens, in time order (ties: schedules before timers, then by name).
    pub entries: Vec<Entry>,
    /// True when more than `limit` entries fall in the window (the first `limit` are
    /// listed).
    pub more: bool,
    /// DST changes in the window, for the zones of the listed schedules.
    pub transitions: Vec<Transition>,
}

/// A schedule with the names of its attached tasks.
pub struct Scheduled<'a> {
    /// The schedule's definition.
    pub spec: &'a ScheduleSpec,
    /// The last slot it fired or recorded (it resumes after it).
    pub last_slot: Option<DateTime<Utc>>,
    /// Its tasks' names.
    pub tasks: Vec<String>,
}

/// A pending timer: a trigger's delayed run.
pub struct Pending<'a> {
    /// The timer's id.
    pub id: &'a str,
    /// When the run starts.
    pub due: DateTime<Utc>,
    /// The trigger that set it.
    pub trigger: &'a str,
    /// The task it starts, or
    pub task: Option<&'a str>,
    /// the webhook it sends the event to.
    pub webhook: Option<&'a str>,
}

/// Build the agenda of `(from, until]`: paused schedules and those without tasks fire
/// nothing and are left out; at most `limit` entries.
pub fn agenda(
    schedules: &[Scheduled<'_>],
    timers: &[Pending<'_>],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: usize,
) -> Agenda {
    let mut entries: Vec<(DateTime<Utc>, Entry)> = Vec::new();
    let mut over = false;
    let mut zones = BTreeSet::new();
    for s in schedules {
        let spec = s.spec;
        if !spec.enabled || s.tasks.is_empty() {
            continue;
        }
        let start = spec.start.unwrap_or(from);
        let Ok(timing) = Timing::new(
            &spec.rule,
            &spec.timezone,
            start,
            spec.end,
            DateTime::<Utc>::MIN_UTC,
        ) else {
            continue;
        };
        let mut t = s.last_slot.unwrap_or(from).max(from);
        // One more than the limit per schedule is enough to know there are more.
        for _ in 0..=limit {
            let Some(slot) = timing.next_after(t) else { break };
            if slot.at > until {
                break;
            }
            zones.insert(spec.timezone.clone());
            entries.push((
                slot.at,
                Entry {
                    at: crate::timestamp::text(slot.at),
                    local: slot.local.clone(),
                    timezone: spec.timezone.clone(),
                    kind: "schedule",
                    name: spec.name.clone(),
                    tasks: s.tasks.clone(),
                    webhook: None,
                    dst: slot.dst,
                    timer: None,
                    excluded: None,
                },
            ));
            t = slot.at;
        }
        // Memory stays near the limit however many schedules there are: keep the
        // earliest `limit` whenever the list grows past four times that.
        if entries.len() > 4 * limit.max(1) {
            entries.sort_by(|(a, x), (b, y)| a.cmp(b).then(x.kind.cmp(y.kind)).then(x.name.cmp(&y.name)));
            entries.truncate(limit);
            over = true;
        }
    }
    for timer in timers {
        if timer.due > until {
            continue;
        }
        entries.push((
            timer.due,
            Entry {
                at: crate::timestamp::text(timer.due),
                local: crate::timestamp::local_text(&timer.due.with_timezone(&Tz::UTC)),
                timezone: "UTC".into(),
                kind: "timer",
                name: timer.trigger.to_string(),
                tasks: timer.task.map(str::to_string).into_iter().collect(),
                webhook: timer.webhook.map(str::to_string),
                dst: None,
                timer: Some(timer.id.to_string()),
                excluded: None,
            },
        ));
    }
    entries.sort_by(|(a, x), (b, y)| a.cmp(b).then(x.kind.cmp(y.kind)).then(x.name.cmp(&y.name)));
    if entries.len() > limit {
        entries.truncate(limit);
        over = true;
    }
    let transitions = zones
        .iter()
        .filter_map(|z| zone::parse_tz(z).ok().map(|tz| (z, tz)))
        .flat_map(|(name, tz)| transitions(name, tz, from, until))
        .collect();
    Agenda {
        from: crate::timestamp::text(from),
        until: crate::timestamp::text(until),
        entries: entries.into_iter().map(|(_, e)| e).collect(),
        more: over,
        transitions,
    }
}

fn offset_text(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let secs = secs.abs();
    format!("{sign}{:02}:{:02}", secs / 3600, (secs % 3600) / 60)
}

/// The offset changes of `tz` in `(from, until]`: found hour by hour, then to the
/// second by bisection.
pub fn transitions(name: &str, tz: Tz, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<Transition> {
    let offset = |t: DateTime<Utc>| {
        tz.offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc()
    };
    let mut out = Vec::new();
    let mut t = from;
    while t < until {
        let next = (t + Duration::hours(1)).min(until);
        let (a, b) = (offset(t), offset(next));
        if a != b {
            // The first instant on the new offset, in (t, next].
            let (mut lo, mut hi) = (t, next);
            while hi - lo > Duration::seconds(1) {
                let mid = lo + (hi - lo) / 2;
                if offset(mid) == a { lo = mid } else { hi = mid }
            }
            out.push(Transition {
                timezone: name.to_string(),
                at: crate::timestamp::text(hi),
                from: offset_text(a),
                to: offset_text(b),
            });
        }
        t = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::spec::ScheduleSpec;
    use serde_json::json;

    fn utc(s: &str) -> DateTime<Utc> {
        crate::timestamp::parse(s).unwrap()
    }

    fn schedule(name: &str, rule: serde_json::Value, tz: &str, enabled: bool) -> ScheduleSpec {
        serde_json::from_value(json!({
            "name": name, "rule": rule, "timezone": tz, "enabled": enabled,
            "start": "2026-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    fn timer<'a>(id: &'a str, due: &str, task: &'a str) -> Pending<'a> {
        Pending {
            id,
            due: utc(due),
            trigger: "late-orders",
            task: Some(task),
            webhook: None,
        }
    }

    fn on<'a>(spec: &'a ScheduleSpec, tasks: &[&str]) -> Scheduled<'a> {
        Scheduled {
            spec,
            last_slot: None,
            tasks: tasks.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn schedules_and_timers_merge_in_time_order_across_a_dst_change() {
        // Berlin springs forward on Sun 2026-03-29 at 01:00 UTC (02:00 -> 03:00).
        let berlin = schedule("daily", json!({"cron": "30 2 * * *"}), "Europe/Berlin", true);
        let ny = schedule("ny", json!({"cron": "0 9 * * *"}), "America/New_York", true);
        let paused = schedule("paused", json!({"cron": "* * * * *"}), "UTC", false);
        let lonely = schedule("lonely", json!({"cron": "* * * * *"}), "UTC", true);
        let list = [
            on(&berlin, &["backup"]),
            on(&ny, &["report", "mail"]),
            on(&paused, &["x"]),
            on(&lonely, &[]),
        ];
        let timers = [
            timer("T1", "2026-03-29T05:00:00.000Z", "page"),
            timer("T2", "2026-04-05T00:00:00.000Z", "late"),
        ];
        let a = agenda(
            &list,
            &timers,
            utc("2026-03-28T00:00:00Z"),
            utc("2026-03-30T00:00:00Z"),
            100,
        );
        let got: Vec<(&str, &str, &str, Option<zone::DstNote>)> = a
            .entries
            .iter()
            .map(|e| (e.at.as_str(), e.local.as_str(), e.name.as_str(), e.dst))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "2026-03-28T01:30:00.000Z",
                    "2026-03-28T02:30:00.000+01:00",
                    "daily",
                    None
                ),
                (
                    "2026-03-28T13:00:00.000Z",
                    "2026-03-28T09:00:00.000-04:00",
                    "ny",
                    None
                ),
                // 02:30 does not exist on the 29th in Berlin: the slot moves to 03:00.
                (
                    "2026-03-29T01:00:00.000Z",
                    "2026-03-29T03:00:00.000+02:00",
                    "daily",
                    Some(zone::DstNote::MovedOutOfGap)
                ),
                (
                    "2026-03-29T05:00:00.000Z",
                    "2026-03-29T05:00:00.000+00:00",
                    "late-orders",
                    None
                ),
                (
                    "2026-03-29T13:00:00.000Z",
                    "2026-03-29T09:00:00.000-04:00",
                    "ny",
                    None
                ),
            ]
        );
        assert_eq!(a.entries[3].kind, "timer");
        assert_eq!(a.entries[3].timer.as_deref(), Some("T1"));
        assert_eq!(a.entries[1].tasks, vec!["report".to_string(), "mail".to_string()]);
        assert!(!a.more);
        assert_eq!(
            a.transitions,
            vec![Transition {
                timezone: "Europe/Berlin".into(),
                at: "2026-03-29T01:00:00.000Z".into(),
                from: "+01:00".into(),
                to: "+02:00".into(),
            }]
        );
        // The limit cuts the list and says so.
        let a = agenda(
            &list,
            &timers,
            utc("2026-03-28T00:00:00Z"),
            utc("2026-03-30T00:00:00Z"),
            2,
        );
        assert_eq!(a.entries.len(), 2);
        assert!(a.more);
    }

    #[test]
    fn a_schedule_resumes_after_its_last_slot_and_stops_at_its_end() {
        let mut s = schedule("hourly", json!({"cron": "0 * * * *"}), "UTC", true);
        s.end = Some(utc("2026-05-01T05:30:00Z"));
        let list = [Scheduled {
            last_slot: Some(utc("2026-05-01T03:00:00Z")),
            ..on(&s, &["t"])
        }];
        let a = agenda(
            &list,
            &[],
            utc("2026-05-01T02:10:00Z"),
            utc("2026-05-02T00:00:00Z"),
            100,
        );
        let at: Vec<&str> = a.entries.iter().map(|e| e.at.as_str()).collect();
        assert_eq!(at, vec!["2026-05-01T04:00:00.000Z", "2026-05-01T05:00:00.000Z"]);
        assert!(a.transitions.is_empty());
    }

    #[test]
    fn transitions_are_found_to_the_second() {
        let tz = zone::parse_tz("America/New_York").unwrap();
        // Fall back: Sun 2026-11-01 06:00 UTC (02:00 EDT -> 01:00 EST).
        let t = transitions(
            "America/New_York",
            tz,
            utc("2026-10-31T00:00:00Z"),
            utc("2026-11-02T00:00:00Z"),
        );
        assert_eq!(
            t,
            vec![Transition {
                timezone: "America/New_York".into(),
                at: "2026-11-01T06:00:00.000Z".into(),
                from: "-04:00".into(),
                to: "-05:00".into(),
            }]
        );
        assert!(
            transitions(
                "UTC",
                Tz::UTC,
                utc("2026-01-01T00:00:00Z"),
                utc("2026-12-31T00:00:00Z")
            )
            .is_empty()
        );
    }
}

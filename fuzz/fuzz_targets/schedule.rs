//! Schedule rules (cron, calendar, at) in any zone: parsing and next-fire computation
//! never panic, each next fire is strictly after the instant asked about, and fires
//! strictly increase.
#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use sundial_core::schedule::spec::ScheduleSpec;

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "America/Santiago",
    "Africa/Casablanca",
];

/// Characters cron fields are made of.
const CRON: &[u8] = b"0123456789*/-,?LW#JANFEBMONSUN";
const UNITS: &[&str] = &["minutes", "hours", "days", "weeks", "months", "years"];
const DAYS: &[&str] = &["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

#[derive(arbitrary::Arbitrary, Debug)]
enum RuleIn {
    /// 5 or 6 fields drawn from the cron alphabet.
    Cron(Vec<Vec<u8>>),
    Calendar {
        every: u16,
        unit: u8,
        weekdays: Vec<u8>,
        day_of_month: Option<u8>,
        at: Option<(u8, u8, u8)>,
        window: Option<((u8, u8), (u8, u8))>,
    },
    /// Minutes from now.
    At(i32),
    /// Anything as JSON.
    Json(String),
}

impl RuleIn {
    fn json(&self) -> Option<serde_json::Value> {
        let time = |h: u8, m: u8, s: u8| format!("{:02}:{:02}:{:02}", h % 25, m % 61, s % 61);
        Some(match self {
            RuleIn::Cron(fields) => {
                let expr: Vec<String> = fields
                    .iter()
                    .take(7)
                    .map(|f| {
                        f.iter()
                            .take(12)
                            .map(|b| CRON[*b as usize % CRON.len()] as char)
                            .collect()
                    })
                    .collect();
                serde_json::json!({ "cron": expr.join(" ") })
            }
            RuleIn::Calendar {
                every,
                unit,
                weekdays,
                day_of_month,
                at,
                window,
            } => {
                let mut c = serde_json::json!({
                    "every": every % 1000,
                    "unit": UNITS[*unit as usize % UNITS.len()],
                    "weekdays": weekdays.iter().take(7).map(|d| DAYS[*d as usize % 7]).collect::<Vec<_>>(),
                });
                if let Some(d) = day_of_month {
                    c["day_of_month"] = match d % 4 {
                        0 => serde_json::json!("first"),
                        1 => serde_json::json!("last"),
                        2 => serde_json::json!("start"),
                        _ => serde_json::json!({ "day": u32::from(*d % 33) }),
                    };
                }
                if let Some((h, m, s)) = at {
                    c["at"] = serde_json::json!(time(*h, *m, *s));
                }
                if let Some(((h1, m1), (h2, m2))) = window {
                    c["window"] = serde_json::json!([time(*h1, *m1, 0), time(*h2, *m2, 0)]);
                }
                serde_json::json!({ "calendar": c })
            }
            RuleIn::At(_) => return None,
            RuleIn::Json(text) => serde_json::from_str(text).ok()?,
        })
    }
}

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    /// Seconds around 2026 (within about ±68 years).
    now: i32,
    zone: u8,
    steps: u8,
    rule: RuleIn,
    /// Optional start and end offsets from now, in minutes.
    start: Option<i32>,
    end: Option<i32>,
}

fuzz_target!(|input: Input| {
    let now = DateTime::<Utc>::from_timestamp(1_795_000_000 + i64::from(input.now), 0).unwrap();
    let rule = match &input.rule {
        RuleIn::At(m) => serde_json::json!({ "at": now + chrono::Duration::minutes(i64::from(*m)) }),
        other => match other.json() {
            Some(r) => r,
            None => return,
        },
    };
    let mut spec = serde_json::json!({
        "name": "fuzz",
        "rule": rule,
        "timezone": ZONES[input.zone as usize % ZONES.len()],
    });
    if let Some(m) = input.start {
        spec["start"] = serde_json::json!(now + chrono::Duration::minutes(i64::from(m)));
    }
    if let Some(m) = input.end {
        spec["end"] = serde_json::json!(now + chrono::Duration::minutes(i64::from(m)));
    }
    let Ok(spec) = serde_json::from_value::<ScheduleSpec>(spec) else {
        return;
    };
    let Ok(timing) = spec.timing(now) else {
        return;
    };
    let mut t = now;
    for _ in 0..(input.steps % 32) {
        match timing.next_after(t) {
            Some(slot) => {
                assert!(slot.at > t, "next fire {} is not after {t} for {spec:?}", slot.at);
                t = slot.at;
            }
            None => break,
        }
    }
});

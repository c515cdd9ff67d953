//! Wall-clock time to instants in an IANA time zone, with Sundial's DST rules:
//! a wall time skipped by a spring-forward jump fires at the first instant after the
//! gap; a wall time that occurs twice fires once, at its first occurrence.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

/// How a DST transition changed a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DstNote {
    /// The wall time does not exist (spring forward); the slot moved to the first
    /// instant after the gap.
    MovedOutOfGap,
    /// The wall time occurs twice (fall back); the slot fires at the first occurrence.
    FirstOfRepeated,
}

/// Map a wall time in `tz` to the instant it fires at, with a note when DST mattered.
pub fn resolve(tz: Tz, wall: NaiveDateTime) -> (DateTime<Utc>, Option<DstNote>) {
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(t) => (t.with_timezone(&Utc), None),
        LocalResult::Ambiguous(first, _) => (first.with_timezone(&Utc), Some(DstNote::FirstOfRepeated)),
        LocalResult::None => {
            // Find the first wall minute after the gap; the instant it maps to is the
            // end of the gap (transitions fall on whole minutes in every current zone).
            let mut probe = wall;
            for _ in 0..(26 * 60) {
                probe += Duration::minutes(1);
                let probe_floor = probe
                    .date()
                    .and_hms_opt(
                        chrono::Timelike::hour(&probe),
                        chrono::Timelike::minute(&probe),
                        0,
                    )
                    .unwrap_or(probe);
                match tz.from_local_datetime(&probe_floor) {
                    LocalResult::Single(t) => return (t.with_timezone(&Utc), Some(DstNote::MovedOutOfGap)),
                    LocalResult::Ambiguous(t, _) => {
                        return (t.with_timezone(&Utc), Some(DstNote::MovedOutOfGap));
                    }
                    LocalResult::None => {}
                }
            }
            // No zone has a gap longer than a day; treat the wall time as UTC.
            (Utc.from_utc_datetime(&wall), Some(DstNote::MovedOutOfGap))
        }
    }
}

/// Parse an IANA zone name with a clear error.
pub fn parse_tz(name: &str) -> Result<Tz, crate::Invalid> {
    Ok(name
        .parse::<Tz>()
        .map_err(|_| format!("{name:?} is not an IANA time zone (for example Europe/Berlin, UTC)"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn berlin_spring_forward_moves_to_the_end_of_the_gap() {
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        let tz = parse_tz("Europe/Berlin").unwrap();
        let (t, note) = resolve(tz, wall("2026-03-29 02:30"));
        assert_eq!(t.to_rfc3339(), "2026-03-29T01:00:00+00:00");
        assert_eq!(note, Some(DstNote::MovedOutOfGap));
        assert_eq!(
            resolve(tz, wall("2026-03-29 01:59")).0.to_rfc3339(),
            "2026-03-29T00:59:00+00:00"
        );
    }

    #[test]
    fn berlin_fall_back_fires_at_the_first_occurrence() {
        // 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
        let tz = parse_tz("Europe/Berlin").unwrap();
        let (t, note) = resolve(tz, wall("2026-10-25 02:30"));
        assert_eq!(t.to_rfc3339(), "2026-10-25T00:30:00+00:00");
        assert_eq!(note, Some(DstNote::FirstOfRepeated));
    }

    #[test]
    fn new_york_transitions() {
        let tz = parse_tz("America/New_York").unwrap();
        // 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC).
        assert_eq!(
            resolve(tz, wall("2026-03-08 02:15")).0.to_rfc3339(),
            "2026-03-08T07:00:00+00:00"
        );
        // 2026-11-01 02:00 EDT -> 01:00 EST; 01:30 first occurs at 05:30 UTC.
        assert_eq!(
            resolve(tz, wall("2026-11-01 01:30")).0.to_rfc3339(),
            "2026-11-01T05:30:00+00:00"
        );
    }

    #[test]
    fn unknown_zones_are_refused() {
        assert!(parse_tz("Mars/Olympus").unwrap_err().contains("IANA"));
        assert!(parse_tz("UTC").is_ok());
    }
}

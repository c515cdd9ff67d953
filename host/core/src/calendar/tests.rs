use super::*;
use serde_json::json;

fn utc(s: &str) -> DateTime<Utc> {
    crate::timestamp::parse(s).unwrap()
}

fn cal(v: serde_json::Value) -> CalendarSpec {
    let mut v = v;
    v["name"] = json!("holidays");
    let c: CalendarSpec = serde_json::from_value(v).unwrap();
    c.validate().unwrap();
    c
}

fn berlin() -> Tz {
    crate::schedule::zone::parse_tz("Europe/Berlin").unwrap()
}

#[test]
fn dates_yearly_days_and_ranges_in_the_schedules_zone() {
    let c = cal(json!({"exclude": [
        {"date": "2026-12-25", "note": "Christmas"},
        {"yearly": "01-01", "note": "New Year"},
        {"from": "2026-12-31T14:00", "to": "2026-12-31T18:00"},
        {"from": "2027-04-02", "to": "2027-04-05", "note": "Easter"},
    ]}));
    let tz = berlin();
    // (instant, excluded?, window start, window end)
    let table = [
        // 08:00 Berlin on Christmas Day is 07:00 UTC.
        (
            "2026-12-25T07:00:00Z",
            Some(("2026-12-24T23:00:00.000Z", "2026-12-25T23:00:00.000Z")),
        ),
        // 23:30 UTC on the 24th is already the 25th in Berlin.
        (
            "2026-12-24T23:30:00Z",
            Some(("2026-12-24T23:00:00.000Z", "2026-12-25T23:00:00.000Z")),
        ),
        ("2026-12-24T22:59:59Z", None),
        ("2026-12-25T23:00:00Z", None),
        // Every year, across the year boundary.
        (
            "2027-01-01T07:00:00Z",
            Some(("2026-12-31T23:00:00.000Z", "2027-01-01T23:00:00.000Z")),
        ),
        (
            "2031-01-01T11:00:00Z",
            Some(("2030-12-31T23:00:00.000Z", "2031-01-01T23:00:00.000Z")),
        ),
        // Wall times, the end excluded.
        (
            "2026-12-31T13:00:00Z",
            Some(("2026-12-31T13:00:00.000Z", "2026-12-31T17:00:00.000Z")),
        ),
        ("2026-12-31T17:00:00Z", None),
        // Whole days, both ends included; Berlin is on summer time by 5 April.
        (
            "2027-04-05T21:59:00Z",
            Some(("2027-04-01T22:00:00.000Z", "2027-04-05T22:00:00.000Z")),
        ),
        ("2027-04-05T22:00:00Z", None),
        ("2027-04-01T21:59:00Z", None),
    ];
    for (at, want) in table {
        let got = c
            .window_at(utc(at), tz)
            .map(|w| (crate::timestamp::text(w.start), crate::timestamp::text(w.end)));
        let want = want.map(|(a, b)| (a.to_string(), b.to_string()));
        assert_eq!(got, want, "{at}");
    }
    let w = c.window_at(utc("2026-12-25T07:00:00Z"), tz).unwrap();
    assert_eq!(w.reason, "calendar holidays: 2026-12-25 (Christmas)");
    // The calendar's own zone wins over the schedule's.
    let mut ny = c.clone();
    ny.timezone = "America/New_York".into();
    assert!(
        ny.window_at(utc("2026-12-25T04:00:00Z"), tz).is_none(),
        "still the 24th in New York"
    );
    assert!(ny.window_at(utc("2026-12-25T05:00:00Z"), tz).is_some());
}

#[test]
fn leap_day_yearly_only_in_leap_years() {
    let c = cal(json!({"exclude": [{"yearly": "02-29"}]}));
    assert!(c.window_at(utc("2028-02-29T12:00:00Z"), Tz::UTC).is_some());
    assert!(c.window_at(utc("2027-03-01T00:00:00Z"), Tz::UTC).is_none());
    assert!(c.window_at(utc("2027-02-28T23:59:59Z"), Tz::UTC).is_none());
}

#[test]
fn bad_entries_name_the_field() {
    let bad = |v: serde_json::Value| {
        let mut v = v;
        v["name"] = json!("c");
        match serde_json::from_value::<CalendarSpec>(v) {
            Ok(c) => c.validate().unwrap_err().to_string(),
            Err(e) => e.to_string(),
        }
    };
    assert!(bad(json!({"exclude": [{"yearly": "13-01"}]})).contains("exclude[0].yearly"));
    assert!(bad(json!({"exclude": [{"yearly": "02-30"}]})).contains("not a day of the year"));
    assert!(bad(json!({"exclude": [{"from": "2026-12-26", "to": "2026-12-24"}]})).contains("exclude[0].to"));
    assert!(bad(json!({"exclude": [{"from": "yesterday", "to": "2026-12-24"}]})).contains("exclude[0].from"));
    assert!(bad(json!({"timezone": "Mars/Olympus"})).contains("timezone"));
    assert!(bad(json!({"exclude": [{"date": "2026-12-25", "colour": "red"}]})).contains("did not match"));
    assert!(bad(json!({"ics": "hello"})).contains("ics: not an iCalendar file"));
    // Dates at the edge of chrono's range would overflow day arithmetic: refused.
    assert!(bad(json!({"exclude": [{"date": "+262142-12-31"}]})).contains("exclude[0].date: year"));
    assert!(
        bad(json!({"exclude": [{"from": "1900-01-01", "to": "1900-01-02"}]}))
            .contains("exclude[0].from: year")
    );
}

#[test]
fn touching_windows_defer_to_the_end_of_all_of_them_and_maintenance_applies_by_name() {
    let c = cal(json!({"exclude": [{"date": "2026-12-24"}, {"date": "2026-12-25"}, {"date": "2026-12-26"}]}));
    let w = excluded_at(utc("2026-12-24T10:00:00Z"), "daily", Tz::UTC, &[&c], &[]).unwrap();
    assert_eq!(crate::timestamp::text(w.end), "2026-12-27T00:00:00.000Z");
    let m = Maintenance {
        id: "01M".into(),
        from: utc("2026-06-01T10:00:00Z"),
        until: utc("2026-06-01T12:00:00Z"),
        schedules: vec!["backup".into()],
        reason: "disk swap".into(),
        by: "admin".into(),
    };
    let at = utc("2026-06-01T11:00:00Z");
    let w = excluded_at(at, "backup", Tz::UTC, &[], std::slice::from_ref(&m)).unwrap();
    assert_eq!(w.reason, "maintenance 01M by admin (disk swap)");
    assert!(excluded_at(at, "report", Tz::UTC, &[], std::slice::from_ref(&m)).is_none());
    let all = Maintenance {
        schedules: vec![],
        ..m
    };
    assert!(excluded_at(at, "report", Tz::UTC, &[], &[all.clone()]).is_some());
    assert!(excluded_at(utc("2026-06-01T12:00:00Z"), "report", Tz::UTC, &[], &[all]).is_none());
}

const HOLIDAYS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n\
BEGIN:VEVENT\r\nUID:1\r\nDTSTART;VALUE=DATE:20261225\r\nDTEND;VALUE=DATE:20261226\r\nSUMMARY:Christmas Day\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:2\r\nDTSTART;VALUE=DATE:20260101\r\nRRULE:FREQ=YEARLY\r\nSUMMARY:New Year\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:3\r\nDTSTART;VALUE=DATE:20261224\r\nDTEND;VALUE=DATE:20261227\r\nSUMMARY:Office closed\\, all\r\n  hands off\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:4\r\nDTSTART;TZID=Europe/Berlin:20261231T140000\r\nDTEND;TZID=Europe/Berlin:20261231T180000\r\nSUMMARY:Early close\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:5\r\nDTSTART:20260601T100000Z\r\nDTEND:20260601T120000Z\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:6\r\nDTSTART;VALUE=DATE:20260501\r\nDURATION:P2D\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

#[test]
fn an_icalendar_file_becomes_exclusions() {
    let got = ics::parse(HOLIDAYS).unwrap();
    let want: Vec<Exclusion> = serde_json::from_value(json!([
        {"date": "2026-12-25", "note": "Christmas Day"},
        {"yearly": "01-01", "note": "New Year"},
        {"from": "2026-12-24", "to": "2026-12-26", "note": "Office closed, all hands off"},
        {"from": "2026-12-31T14:00:00", "to": "2026-12-31T18:00:00", "note": "Early close"},
        {"from": "2026-06-01T10:00:00Z", "to": "2026-06-01T12:00:00Z"},
        {"from": "2026-05-01", "to": "2026-05-02"},
    ]))
    .unwrap();
    assert_eq!(got, want);
    let c = cal(json!({"ics": HOLIDAYS}));
    assert!(c.window_at(utc("2030-01-01T09:00:00Z"), berlin()).is_some());
    assert!(c.window_at(utc("2026-06-01T11:59:00Z"), berlin()).is_some());
}

#[test]
fn icalendar_recurrences_it_cannot_read_are_refused() {
    let wrap = |body: &str| format!("BEGIN:VCALENDAR\nBEGIN:VEVENT\n{body}\nEND:VEVENT\nEND:VCALENDAR\n");
    for (body, needle) in [
        ("DTSTART;VALUE=DATE:20260105\nRRULE:FREQ=WEEKLY;BYDAY=MO", "RRULE"),
        (
            "DTSTART;VALUE=DATE:20260105\nEXDATE;VALUE=DATE:20260112",
            "EXDATE",
        ),
        ("SUMMARY:no start", "no DTSTART"),
        ("DTSTART:2026-01-05", "not a date-time"),
        (
            "DTSTART;VALUE=DATE:20260105\nDTEND;VALUE=DATE:20260101",
            "DTEND must come after",
        ),
        ("DTSTART;VALUE=DATE:20260105\nDURATION:P1é", "DURATION"),
        (
            "DTSTART;VALUE=DATE:20260105\nDURATION:P9999999999999999W",
            "DURATION",
        ),
        ("DTSTART;VALUE=DATE:99991231", "year 9999"),
    ] {
        let err = ics::parse(&wrap(body)).unwrap_err();
        assert!(err.contains(needle), "{body}: {err}");
    }
    assert!(ics::parse("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20260101\n").is_err());
}

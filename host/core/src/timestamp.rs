//! The one timestamp format of API answers and stored records: RFC 3339 in UTC with
//! exactly three fractional digits and `Z`, such as `2026-11-27T12:00:00.000Z`. Fixed
//! width, so timestamps also sort correctly as text. Input accepts any RFC 3339 time
//! (any offset, any number of fractional digits) and is kept to the millisecond.
//!
//! The exceptions, by design: a CloudEvent's own `time` is the producer's attribute and
//! is passed on as it was sent; fields named `local` or `*_local` show an instant on a
//! schedule's wall clock, with its offset (the same fixed width, `+02:00` for `Z`).

use chrono::{DateTime, FixedOffset, SecondsFormat, SubsecRound, TimeZone, Utc};

/// `t` in the API's format.
pub fn text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `t` on another clock (a schedule's zone), with its offset and milliseconds.
pub fn local_text<Tz: TimeZone>(t: &DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    t.to_rfc3339_opts(SecondsFormat::Millis, false)
}

/// The current time in the API's format.
pub fn now() -> String {
    text(Utc::now())
}

/// `t` cut to the millisecond (what the format can show).
pub fn millis(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(3)
}

/// Parse an RFC 3339 time, cut to the millisecond.
pub fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::<FixedOffset>::parse_from_rfc3339(text).map(|t| millis(t.with_timezone(&Utc)))
}

/// `#[serde(with = "crate::timestamp::serde_millis")]` for `DateTime<Utc>` fields: written
/// in the API's format, read from any RFC 3339 time and cut to the millisecond.
pub mod serde_millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Write `t` as [`super::text`].
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::text(*t))
    }

    /// Read any RFC 3339 time, cut to the millisecond.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        DateTime::<Utc>::deserialize(d).map(super::millis)
    }
}

/// [`serde_millis`] for `Option<DateTime<Utc>>` fields (`null` when absent).
pub mod serde_millis_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Write `t` as [`super::text`], or `null`.
    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::text(*t)),
            None => s.serialize_none(),
        }
    }

    /// Read any RFC 3339 time (or `null`), cut to the millisecond.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<DateTime<Utc>>::deserialize(d).map(|t| t.map(super::millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_fixed_width_format_whatever_the_precision_or_offset() {
        for input in [
            "2026-11-27T12:00:00Z",
            "2026-11-27T12:00:00.000Z",
            "2026-11-27T13:00:00+01:00",
            "2026-11-27T12:00:00.000999999Z",
            "2026-11-27 12:00:00Z",
        ] {
            assert_eq!(text(parse(input).unwrap()), "2026-11-27T12:00:00.000Z", "{input}");
        }
        assert_eq!(
            text(parse("2026-11-27T12:00:00.5Z").unwrap()),
            "2026-11-27T12:00:00.500Z"
        );
        // Sorting as text is sorting in time, which the variable-width form breaks.
        let (a, b) = (
            parse("2026-11-27T12:00:00Z").unwrap(),
            parse("2026-11-27T12:00:00.5Z").unwrap(),
        );
        assert!(text(a) < text(b));
        assert!(
            a.to_rfc3339_opts(SecondsFormat::AutoSi, true) > b.to_rfc3339_opts(SecondsFormat::AutoSi, true)
        );
        let berlin = a.with_timezone(&chrono_tz::Europe::Berlin);
        assert_eq!(local_text(&berlin), "2026-11-27T13:00:00.000+01:00");
        assert_eq!(now().len(), "2026-11-27T12:00:00.000Z".len());
    }

    #[test]
    fn serde_writes_the_format_and_reads_any_rfc_3339() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct T {
            #[serde(with = "serde_millis")]
            at: DateTime<Utc>,
            #[serde(default, with = "serde_millis_opt")]
            maybe: Option<DateTime<Utc>>,
        }
        let t: T = serde_json::from_str(r#"{"at": "2026-11-27T13:00:00.123456+01:00"}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"at":"2026-11-27T12:00:00.123Z","maybe":null}"#
        );
        let back: T = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }
}

//! Humane durations (`500ms`, `15s`, `1m`, `7d`) and RFC 3339 instants, as typed on the
//! command line, in the config file and in the admin API's JSON.
//!
//! Every instant is within [`EARLIEST_MS`]..=[`LATEST_MS`] (1970 to the year 9999) and every
//! duration at most [`LONGEST_MS`], the whole span between them: what RFC 3339's four-digit
//! years can write and what unix milliseconds hold with room to add one to the other, so
//! that no sum of a start and a duration wraps or is shown as another year.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer};

/// The earliest instant taken: the unix epoch, 1970-01-01T00:00:00Z.
pub const EARLIEST_MS: i64 = 0;

/// The latest instant taken: 9999-12-31T23:59:59.999Z, the last that RFC 3339 writes.
pub const LATEST_MS: i64 = 253_402_300_799_999;

/// The longest duration taken: from the earliest instant to the latest (about 8,030 years).
pub const LONGEST_MS: i64 = LATEST_MS - EARLIEST_MS;

/// The range of instants, as messages say it.
pub const INSTANT_RANGE: &str = "1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z";

/// Parses a humane duration; the error says what was expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!("`{text}` is negative; durations are positive"));
    }
    let duration = humantime::parse_duration(text).map_err(|e| {
        format!("`{text}` is not a duration ({e}); write it like 500ms, 15s, 1m, 2h or 7d")
    })?;
    if duration.as_millis() > LONGEST_MS as u128 {
        return Err(format!(
            "`{text}` is longer than any span of time fleetsim represents ({INSTANT_RANGE}, \
             about 8,030 years)"
        ));
    }
    Ok(duration)
}

/// A duration parsed by [`parse_duration`] in whole milliseconds (exact: it is at most
/// [`LONGEST_MS`]).
pub fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Parses a duration that must be above zero (steps, ticks).
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err(format!("`{text}` is zero; it must be above zero"));
    }
    Ok(d)
}

/// Parses an RFC 3339 instant (`2026-11-24T12:00:00Z`, or with an offset) to unix
/// milliseconds, from 1970 to 9999 ([`INSTANT_RANGE`]).
pub fn parse_instant(text: &str) -> Result<i64, String> {
    let ms = DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            format!("`{text}` is not an RFC 3339 time ({e}); write it like 2026-11-24T12:00:00Z")
        })?;
    check_instant(ms).map_err(|range| format!("`{}` is {range}", text.trim()))
}

/// `Err` with what to say when `ms` is outside [`INSTANT_RANGE`]: "before 1970-01-01..."
/// or "after 9999-12-31...", with the range.
pub fn check_instant(ms: i64) -> Result<i64, String> {
    if ms < EARLIEST_MS {
        Err(format!(
            "before 1970-01-01T00:00:00Z; times are {INSTANT_RANGE}"
        ))
    } else if ms > LATEST_MS {
        Err(format!(
            "after 9999-12-31T23:59:59Z; times are {INSTANT_RANGE}"
        ))
    } else {
        Ok(ms)
    }
}

/// A time where either form is taken (an incident's `start`): an RFC 3339 instant, or a
/// duration after some origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstantOrDuration {
    /// Unix milliseconds, within [`INSTANT_RANGE`].
    Instant(i64),
    /// Milliseconds after the origin, at most [`LONGEST_MS`].
    After(i64),
}

/// Parses an instant or a duration; the error says which form was meant when the text is
/// one of them but out of range, and both forms when it is neither.
pub fn parse_instant_or_duration(text: &str) -> Result<InstantOrDuration, String> {
    let text = text.trim();
    if DateTime::parse_from_rfc3339(text).is_ok() {
        return parse_instant(text).map(InstantOrDuration::Instant);
    }
    if humantime::parse_duration(text).is_ok() {
        return parse_duration(text).map(|d| InstantOrDuration::After(duration_ms(d)));
    }
    if text.starts_with('-') {
        return Err(format!(
            "`{text}` is negative; write a time like 2026-11-24T12:00:00Z or a duration after the start of the run like 2h"
        ));
    }
    Err(format!(
        "`{text}` is neither an RFC 3339 time (like 2026-11-24T12:00:00Z) nor a duration after the start of the run (like 2h)"
    ))
}

/// Formats unix milliseconds as RFC 3339 UTC, to the second when the time is whole.
pub fn format_instant(unix_ms: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp_millis(unix_ms).unwrap_or_default();
    let precision = if unix_ms % 1000 == 0 {
        SecondsFormat::Secs
    } else {
        SecondsFormat::Millis
    };
    t.to_rfc3339_opts(precision, true)
}

/// A duration as written in the config file: deserialised from a humane string.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Humane(pub Duration);

impl<'de> Deserialize<'de> for Humane {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Humane;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"15s\", \"10m\" or \"7d\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Humane, E> {
                parse_duration(v).map(Humane).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humane_durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert!(parse_duration("-1s").unwrap_err().contains("negative"));
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(parse_positive_duration("0s").unwrap_err().contains("zero"));
    }

    #[test]
    fn instants_round_trip() {
        let ms = parse_instant("2026-11-24T12:00:00Z").unwrap();
        assert_eq!(format_instant(ms), "2026-11-24T12:00:00Z");
        assert_eq!(parse_instant("2026-11-24T13:00:00+01:00"), Ok(ms));
        assert!(parse_instant("yesterday").is_err());
    }

    #[test]
    fn instants_are_1970_to_9999() {
        assert_eq!(parse_instant("1970-01-01T00:00:00Z"), Ok(EARLIEST_MS));
        assert_eq!(parse_instant("9999-12-31T23:59:59.999Z"), Ok(LATEST_MS));
        assert_eq!(format_instant(LATEST_MS), "9999-12-31T23:59:59.999Z");
        for (text, says) in [
            ("1969-12-31T23:59:59Z", "before 1970-01-01T00:00:00Z"),
            ("1960-01-01T00:00:00Z", "before 1970-01-01T00:00:00Z"),
            ("9999-12-31T23:59:59-01:00", "after 9999-12-31T23:59:59Z"),
        ] {
            let e = parse_instant(text).unwrap_err();
            assert!(e.contains(says) && e.contains(INSTANT_RANGE), "{text}: {e}");
            assert_eq!(e.lines().count(), 1);
        }
    }

    #[test]
    fn durations_longer_than_the_range_are_refused_not_wrapped() {
        let ms = |text: &str| parse_duration(text).map(duration_ms);
        assert_eq!(ms("8029y"), Ok(8029 * 31_557_600_000));
        // Past what unix milliseconds hold (584942418y) and past what the range spans.
        for text in ["584942418y", "100000000d", "8030y", "18446744073709551615s"] {
            let e = ms(text).unwrap_err();
            assert!(e.contains(text) && e.contains("longer than"), "{text}: {e}");
        }
        // Past what humantime itself counts.
        let e = ms("99999999999999999999y").unwrap_err();
        assert!(e.contains("not a duration"), "{e}");
    }

    #[test]
    fn a_start_is_an_instant_or_a_duration_each_in_its_range() {
        use InstantOrDuration::{After, Instant};
        assert_eq!(parse_instant_or_duration("2h"), Ok(After(2 * 3_600_000)));
        assert_eq!(
            parse_instant_or_duration(" 1970-01-01T00:00:01Z "),
            Ok(Instant(1_000))
        );
        let said = |text| parse_instant_or_duration(text).unwrap_err();
        assert!(said("584942418y").contains("longer than"));
        assert!(said("1969-07-20T20:17:00Z").contains("before 1970"));
        assert!(said("-2h").contains("negative"));
        assert!(said("someday").contains("neither"));
    }
}

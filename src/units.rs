//! Humane durations (`500ms`, `15s`, `1m`, `7d`) and RFC 3339 instants, as typed on the
//! command line and in the config file.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer};

/// Parses a humane duration; the error says what was expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!("`{text}` is negative; durations are positive"));
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("`{text}` is not a duration ({e}); write it like 500ms, 15s, 1m, 2h or 7d")
    })
}

/// Parses a duration that must be above zero (steps, ticks).
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err(format!("`{text}` is zero; it must be above zero"));
    }
    Ok(d)
}

/// Parses an RFC 3339 instant (`2026-11-24T12:00:00Z`, or with an offset) to unix milliseconds.
pub fn parse_instant(text: &str) -> Result<i64, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            format!("`{text}` is not an RFC 3339 time ({e}); write it like 2026-11-24T12:00:00Z")
        })
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
}

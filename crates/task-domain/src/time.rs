use chrono::{DateTime, SecondsFormat, Utc};

/// An instant as microseconds since the Unix epoch: the resolution at which request
/// timestamps are compared and stored (exact integer comparison, no float or text ordering).
pub type Micros = i64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("request_timestamp must be RFC 3339 with an offset (e.g. 2024-01-01T08:00:00Z): {0}")]
    Format(String),
}

/// Parses an RFC 3339 timestamp that carries an offset (`Z` or `+hh:mm`), truncating any
/// sub-microsecond digits so that two spellings of one instant compare equal.
pub fn parse_request_timestamp(text: &str) -> Result<Micros, TimestampError> {
    // chrono also accepts a space or lowercase `t` between date and time, as RFC 3339
    // section 5.6 permits; it never accepts a missing offset.
    let parsed = DateTime::parse_from_rfc3339(text)
        .map_err(|error| TimestampError::Format(error.to_string()))?;
    // RFC 3339 years have four digits, so every parsed instant fits in i64 microseconds.
    Ok(parsed.with_timezone(&Utc).timestamp_micros())
}

/// Formats an instant as RFC 3339 in UTC with microseconds, e.g. `2024-01-01T08:00:00.000000Z`.
pub fn format_micros(micros: Micros) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .map(|instant| instant.to_rfc3339_opts(SecondsFormat::Micros, true))
        .unwrap_or_else(|| micros.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_compared_as_instants() {
        assert_eq!(
            parse_request_timestamp("2024-01-01T10:00:00+02:00"),
            parse_request_timestamp("2024-01-01T08:00:00Z")
        );
        assert_eq!(
            parse_request_timestamp("2024-01-01T07:30:00-00:30"),
            parse_request_timestamp("2024-01-01T08:00:00.000000Z")
        );
    }

    #[test]
    fn microseconds_are_kept_and_nanoseconds_truncated() {
        let base = parse_request_timestamp("2024-01-01T08:00:00.000001Z").unwrap();
        let next = parse_request_timestamp("2024-01-01T08:00:00.000002Z").unwrap();
        assert_eq!(next - base, 1);
        assert_eq!(
            parse_request_timestamp("2024-01-01T08:00:00.000001999Z").unwrap(),
            base
        );
    }

    #[test]
    fn timestamps_without_offset_or_malformed_are_rejected() {
        for text in [
            "2024-01-01T08:00:00",
            "2024-01-01",
            "",
            "1704096000",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-01T25:00:00Z",
            "yesterday",
        ] {
            assert!(
                matches!(
                    parse_request_timestamp(text),
                    Err(TimestampError::Format(_))
                ),
                "{text:?} accepted"
            );
        }
    }

    #[test]
    fn formatting_round_trips() {
        let micros = parse_request_timestamp("2024-02-29T23:59:59.123456+01:00").unwrap();
        assert_eq!(format_micros(micros), "2024-02-29T22:59:59.123456Z");
        assert_eq!(
            parse_request_timestamp(&format_micros(micros)).unwrap(),
            micros
        );
    }
}

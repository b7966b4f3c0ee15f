//! Timestamps: RFC 3339 in, UTC milliseconds inside (so they compare and sort).

use super::names::Violations;
use super::validation::{Rule, echo};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// An RFC 3339 timestamp with a time zone (`2026-11-02T09:00:00Z`, `…+01:00`).
    /// The year is read as written (before conversion to UTC), as the JSON Schema's pattern does.
    /// Stricter than the `time` crate in two ways, which the schema's pattern cannot follow: the
    /// date and the time are separated by `T` (or `t`), not by any byte, and a leap second (`:60`)
    /// is refused.
    pub fn parse(s: &str) -> Result<Timestamp, Violations> {
        let fail = |what: &str| vec![(Rule::Timestamp, format!("must be {what} (got {})", echo(s)))];
        let rfc3339 = "an RFC 3339 timestamp with a time zone, like 2026-11-02T09:00:00Z";
        let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| fail(rfc3339))?;
        // Parsed: `YYYY-MM-DD?hh:mm:ss…`, one byte at `?`.
        let bytes = s.as_bytes();
        if !matches!(bytes.get(10), Some(b'T' | b't')) || bytes.get(17..19) == Some(b"60".as_slice()) {
            return Err(fail(rfc3339));
        }
        if !(2000..=2200).contains(&t.year()) {
            return Err(fail("between the years 2000 and 2200"));
        }
        Ok(Timestamp((t.unix_timestamp_nanos() / 1_000_000) as i64))
    }

    pub fn from_millis(ms: i64) -> Timestamp {
        Timestamp(ms)
    }

    pub fn now() -> Timestamp {
        Timestamp((OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn plus_millis(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    /// RFC 3339 in UTC with milliseconds.
    pub fn to_rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .ok()
            .and_then(|t| {
                t.format(&time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
                ))
                .ok()
            })
            .unwrap_or_else(|| self.0.to_string())
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_zones_and_orders() {
        let a = Timestamp::parse("2026-11-02T09:00:00Z").unwrap();
        let b = Timestamp::parse("2026-11-02T10:00:00.5+01:00").unwrap();
        assert_eq!(b.millis() - a.millis(), 500);
        assert_eq!(a.to_rfc3339(), "2026-11-02T09:00:00.000Z");
        assert!(Timestamp::parse("2026-11-02 09:00").is_err());
        assert!(Timestamp::parse("2026-11-02T09:00:00").is_err(), "a zone is required");
        assert!(Timestamp::parse("1970-01-01T00:00:00Z").is_err());
        assert!(Timestamp::parse("2026-11-02 09:00:00Z").is_err(), "the separator is T");
        assert!(Timestamp::parse("2026-11-02/09:00:00Z").is_err(), "not any byte");
        assert!(Timestamp::parse("2016-12-31T23:59:60Z").is_err(), "no leap second");
        assert_eq!(Timestamp::parse("2026-11-02t09:00:00z").unwrap(), a, "t and z as RFC 3339 allows");
    }
}

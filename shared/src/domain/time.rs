//! Timestamps: RFC 3339 in, UTC milliseconds inside (so they compare and sort).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// An RFC 3339 timestamp with a time zone (`2026-11-02T09:00:00Z`, `…+01:00`).
    pub fn parse(s: &str) -> Result<Timestamp, String> {
        let t = OffsetDateTime::parse(s.trim(), &Rfc3339).map_err(|_| {
            format!("must be an RFC 3339 timestamp with a time zone, like 2026-11-02T09:00:00Z (got {s:?})")
        })?;
        let ms = t.unix_timestamp_nanos() / 1_000_000;
        let year = t.year();
        if !(2000..=2200).contains(&year) {
            return Err(format!("must be between the years 2000 and 2200 (got {s:?})"));
        }
        Ok(Timestamp(ms as i64))
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

    pub fn seconds(self) -> i64 {
        self.0.div_euclid(1000)
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
    }
}

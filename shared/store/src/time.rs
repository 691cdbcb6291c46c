//! Timestamps as fixed-width UTC strings (`2026-12-01T00:00:00.000Z`), so string order is
//! time order: the due index's range condition compares them as strings.

use chrono::{DateTime, SecondsFormat, Utc};

pub(crate) fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn parse(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_timestamps_sort_as_strings_in_time_order() {
        let a = parse("2026-12-01T00:00:00Z").unwrap();
        let b = a + chrono::Duration::milliseconds(500);
        let c = a + chrono::Duration::seconds(1);
        let (fa, fb, fc) = (format(a), format(b), format(c));
        assert_eq!(fa, "2026-12-01T00:00:00.000Z");
        assert!(fa < fb && fb < fc, "{fa} {fb} {fc}");
        assert_eq!(parse(&fb), Some(b));
    }
}

//! Lenient deserializers for Toss responses (docs/toss-api.md §3.3): amounts may arrive as floats
//! with no fractional part, timestamps carry an offset, `null` stands for "absent".

use std::fmt;

use chrono::{DateTime, FixedOffset};
use domain::Krw;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// Largest integer an `f64` holds exactly.
const MAX_EXACT_F64: f64 = 9_007_199_254_740_992.0;

struct KrwVisitor;

impl Visitor<'_> for KrwVisitor {
    type Value = Krw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative whole number of won")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Krw, E> {
        Ok(Krw::new(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Krw, E> {
        u64::try_from(v)
            .map(Krw::new)
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Krw, E> {
        if v.is_finite() && v.fract() == 0.0 && (0.0..=MAX_EXACT_F64).contains(&v) {
            // Exact: a whole number within f64's integer range.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(Krw::new(v as u64))
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }
}

pub(crate) fn krw<'de, D: Deserializer<'de>>(d: D) -> Result<Krw, D::Error> {
    d.deserialize_any(KrwVisitor)
}

pub(crate) fn opt_krw<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Krw>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "krw")] Krw);
    Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(k)| k))
}

/// An ISO 8601 timestamp with offset. A value that does not parse is dropped rather than
/// failing the whole payment: these fields are informational, the status is what counts.
pub(crate) fn opt_datetime<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
    let raw = Option::<String>::deserialize(d)?;
    Ok(raw.and_then(|s| DateTime::parse_from_rfc3339(&s).ok()))
}

/// A list that Toss sends as `null` when empty.
pub(crate) fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Amounts {
        #[serde(deserialize_with = "krw")]
        total: Krw,
        #[serde(default, deserialize_with = "opt_krw")]
        balance: Option<Krw>,
    }

    fn parse(json: &str) -> Result<Amounts, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn integer_and_whole_float_amounts_are_accepted() {
        let a = parse(r#"{"total": 4900, "balance": 4900.0}"#).unwrap();
        assert_eq!(a.total, Krw::new(4900));
        assert_eq!(a.balance, Some(Krw::new(4900)));
        let a = parse(r#"{"total": 1.0e3, "balance": null}"#).unwrap();
        assert_eq!(a.total, Krw::new(1000));
        assert_eq!(a.balance, None);
        assert_eq!(parse(r#"{"total": 0}"#).unwrap().balance, None);
    }

    #[test]
    fn fractional_negative_and_non_numeric_amounts_are_refused() {
        for bad in [
            r#"{"total": 4900.5}"#,
            r#"{"total": -1}"#,
            r#"{"total": -1.0}"#,
            r#"{"total": "4900"}"#,
            r#"{"total": 1e300}"#,
            r#"{"total": 1, "balance": 0.25}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}

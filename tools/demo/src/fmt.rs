//! How the demo writes dates and money: Seoul time with the Korean weekday, and whole won with
//! thousands separators.

use chrono::{DateTime, Datelike, NaiveTime, TimeZone, Utc, Weekday};
use domain::SEOUL;

/// `2027-01-31 (일) 10:00 KST`.
pub(crate) fn kst(at: DateTime<Utc>) -> String {
    let local = at.with_timezone(&SEOUL);
    format!(
        "{} ({}) {} KST",
        local.format("%Y-%m-%d"),
        weekday_ko(local.weekday()),
        local.format("%H:%M")
    )
}

/// `2027-01-31 (일)`.
pub(crate) fn kst_day(at: DateTime<Utc>) -> String {
    let local = at.with_timezone(&SEOUL);
    format!(
        "{} ({})",
        local.format("%Y-%m-%d"),
        weekday_ko(local.weekday())
    )
}

fn weekday_ko(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "월",
        Weekday::Tue => "화",
        Weekday::Wed => "수",
        Weekday::Thu => "목",
        Weekday::Fri => "금",
        Weekday::Sat => "토",
        Weekday::Sun => "일",
    }
}

/// `3,900원` (the domain's own receipt format).
pub(crate) fn won(amount: u64) -> String {
    domain::Krw::new(amount).to_string()
}

/// The instant `hh:mm` KST on the given Seoul calendar day.
pub(crate) fn kst_at(
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
) -> anyhow::Result<DateTime<Utc>> {
    let date = chrono::NaiveDate::from_ymd_opt(year, month, day)
        .ok_or_else(|| anyhow::anyhow!("no such day {year}-{month}-{day}"))?;
    let time = NaiveTime::from_hms_opt(hour, minute, 0)
        .ok_or_else(|| anyhow::anyhow!("no such time {hour}:{minute}"))?;
    SEOUL
        .from_local_datetime(&date.and_time(time))
        .single()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| anyhow::anyhow!("{date} {time} is not a single instant in Seoul"))
}

/// Pads `text` with spaces to `width` terminal columns (Hangul and other wide characters take
/// two), so Korean and ASCII cells line up.
pub(crate) fn pad(text: &str, width: usize) -> String {
    let used = columns(text);
    let mut out = text.to_owned();
    for _ in used..width {
        out.push(' ');
    }
    out
}

/// Right-aligns `text` in `width` terminal columns.
pub(crate) fn rpad(text: &str, width: usize) -> String {
    let mut out = " ".repeat(width.saturating_sub(columns(text)));
    out.push_str(text);
    out
}

/// Terminal columns of `text`: two for East Asian wide characters, one otherwise.
pub(crate) fn columns(text: &str) -> usize {
    text.chars().map(|c| if is_wide(c) { 2 } else { 1 }).sum()
}

fn is_wide(c: char) -> bool {
    matches!(u32::from(c),
        0x1100..=0x115F        // Hangul Jamo
        | 0x2E80..=0x303E      // CJK radicals, punctuation
        | 0x3041..=0x33FF      // kana, compatibility Jamo, CJK symbols
        | 0x3400..=0x4DBF      // CJK extension A
        | 0x4E00..=0x9FFF      // CJK ideographs
        | 0xAC00..=0xD7A3      // Hangul syllables
        | 0xF900..=0xFAFF      // CJK compatibility ideographs
        | 0xFF00..=0xFF60      // fullwidth forms
        | 0xFFE0..=0xFFE6)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_kst_date_has_the_korean_weekday_and_seoul_hours() {
        let at = DateTime::parse_from_rfc3339("2027-01-31T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc);

        assert_eq!(kst(at), "2027-01-31 (일) 10:00 KST");
        assert_eq!(kst_day(at), "2027-01-31 (일)");
    }

    #[test]
    fn nine_in_the_morning_in_seoul_is_midnight_utc() {
        assert_eq!(
            kst_at(2027, 2, 28, 9, 0).unwrap().to_rfc3339(),
            "2027-02-28T00:00:00+00:00"
        );
    }

    #[test]
    fn won_amounts_have_thousands_separators() {
        assert_eq!(won(0), "0원");
        assert_eq!(won(900), "900원");
        assert_eq!(won(3900), "3,900원");
        assert_eq!(won(1_234_567), "1,234,567원");
    }

    #[test]
    fn padding_counts_hangul_as_two_columns() {
        assert_eq!(pad("활성", 6), "활성  ");
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(pad("toolong", 3), "toolong");
        assert_eq!(rpad("3,900원", 8), " 3,900원");
    }
}

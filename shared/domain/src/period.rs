//! The subscription calendar, in Asia/Seoul time.
//!
//! Period `n` starts at the anchor (the moment of the first successful charge) plus `n`
//! calendar months, with the day clamped to the month's end: an anchor on Jan 31 gives
//! Feb 28 (or 29), then Mar 31, Apr 30. Each period is computed from the anchor, never from
//! the previous period, so the anchor day is kept instead of drifting to the 28th.
//!
//! A renewal is due on the Seoul calendar day its period starts (from 00:00 KST), so the
//! daily sweep charges every subscription on its anniversary day whatever the hour of the
//! first payment.

use chrono::{DateTime, Days, LocalResult, Months, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

pub const SEOUL: Tz = chrono_tz::Asia::Seoul;

/// Start of period `n` for a subscription anchored at `anchor`.
pub fn period_start(anchor: DateTime<Utc>, n: u32) -> DateTime<Utc> {
    let local = anchor.with_timezone(&SEOUL).naive_local();
    let shifted = local.checked_add_months(Months::new(n)).unwrap_or(local);
    resolve(shifted)
}

/// When the renewal for period `n` becomes due: 00:00 KST on the day period `n` starts.
pub fn period_due_at(anchor: DateTime<Utc>, n: u32) -> DateTime<Utc> {
    kst_day_start(period_start(anchor, n))
}

/// 00:00 KST of the Seoul calendar day containing `at`.
pub fn kst_day_start(at: DateTime<Utc>) -> DateTime<Utc> {
    let day = at.with_timezone(&SEOUL).date_naive();
    resolve(day.and_time(NaiveTime::MIN))
}

/// `days` Seoul calendar days after the day containing `at`, at 00:00 KST.
pub fn kst_days_after(at: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    let day = at.with_timezone(&SEOUL).date_naive();
    let later = day
        .checked_add_days(Days::new(u64::from(days)))
        .unwrap_or(day);
    resolve(later.and_time(NaiveTime::MIN))
}

fn resolve(local: chrono::NaiveDateTime) -> DateTime<Utc> {
    // Seoul has had no daylight saving since 1988, but stay total for the tz database's sake.
    match SEOUL.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        LocalResult::None => Utc.from_utc_datetime(&(local - chrono::Duration::hours(9))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kst(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_jan_31_anchor_keeps_its_day_across_short_months() {
        let anchor = kst("2026-01-31T10:15:00+09:00");
        let starts: Vec<_> = (0..5).map(|n| period_start(anchor, n)).collect();
        assert_eq!(
            starts,
            vec![
                kst("2026-01-31T10:15:00+09:00"),
                kst("2026-02-28T10:15:00+09:00"),
                kst("2026-03-31T10:15:00+09:00"),
                kst("2026-04-30T10:15:00+09:00"),
                kst("2026-05-31T10:15:00+09:00"),
            ]
        );
    }

    #[test]
    fn a_jan_31_anchor_lands_on_feb_29_in_a_leap_year() {
        let anchor = kst("2028-01-31T08:00:00+09:00");
        assert_eq!(period_start(anchor, 1), kst("2028-02-29T08:00:00+09:00"));
        assert_eq!(period_start(anchor, 2), kst("2028-03-31T08:00:00+09:00"));
    }

    #[test]
    fn a_feb_29_anchor_renews_on_the_28th_in_common_years_and_29th_in_leap_years() {
        let anchor = kst("2028-02-29T12:00:00+09:00");
        assert_eq!(period_start(anchor, 12), kst("2029-02-28T12:00:00+09:00"));
        assert_eq!(period_start(anchor, 48), kst("2032-02-29T12:00:00+09:00"));
        assert_eq!(period_start(anchor, 1), kst("2028-03-29T12:00:00+09:00"));
    }

    #[test]
    fn half_past_midnight_kst_on_the_first_is_the_previous_day_in_utc_but_not_in_seoul() {
        // 2026-03-01 00:30 KST is 2026-02-28 15:30 UTC.
        let anchor = kst("2026-03-01T00:30:00+09:00");
        assert_eq!(anchor.to_rfc3339(), "2026-02-28T15:30:00+00:00");
        // The next period starts on April 1st in Seoul, not March 28th/31st.
        assert_eq!(period_start(anchor, 1), kst("2026-04-01T00:30:00+09:00"));
        // And is due from midnight of that Seoul day.
        assert_eq!(period_due_at(anchor, 1), kst("2026-04-01T00:00:00+09:00"));
        assert_eq!(kst_day_start(anchor), kst("2026-03-01T00:00:00+09:00"));
    }

    #[test]
    fn a_renewal_is_due_from_midnight_kst_of_its_anniversary_day() {
        let anchor = kst("2026-01-15T21:40:00+09:00");
        assert_eq!(period_due_at(anchor, 1), kst("2026-02-15T00:00:00+09:00"));
        // The 09:00 KST daily sweep on the anniversary day is at or after the due time.
        assert!(kst("2026-02-15T09:00:00+09:00") >= period_due_at(anchor, 1));
        assert!(kst("2026-02-14T09:00:00+09:00") < period_due_at(anchor, 1));
    }

    #[test]
    fn periods_cross_year_boundaries() {
        let anchor = kst("2026-11-30T09:00:00+09:00");
        assert_eq!(period_start(anchor, 3), kst("2027-02-28T09:00:00+09:00"));
        assert_eq!(period_start(anchor, 14), kst("2028-01-30T09:00:00+09:00"));
    }

    #[test]
    fn days_after_count_seoul_calendar_days() {
        // 23:59 KST on Mar 31 plus one day is Apr 1 (not Apr 2, even though UTC is a day behind).
        let t = kst("2026-03-31T23:59:00+09:00");
        assert_eq!(kst_days_after(t, 1), kst("2026-04-01T00:00:00+09:00"));
        assert_eq!(kst_days_after(t, 5), kst("2026-04-05T00:00:00+09:00"));
    }

    proptest::proptest! {
        #[test]
        fn every_period_starts_on_the_anchor_day_or_the_last_day_of_a_shorter_month(
            secs in 1_700_000_000i64..2_000_000_000i64, n in 0u32..240
        ) {
            use chrono::Datelike;
            let anchor = DateTime::from_timestamp(secs, 0).unwrap();
            let a = anchor.with_timezone(&SEOUL);
            let s = period_start(anchor, n).with_timezone(&SEOUL);
            let months = (s.year() - a.year()) * 12 + s.month() as i32 - a.month() as i32;
            proptest::prop_assert_eq!(months, n as i32);
            proptest::prop_assert_eq!(s.time(), a.time());
            let next_month_first = if s.month() == 12 {
                chrono::NaiveDate::from_ymd_opt(s.year() + 1, 1, 1)
            } else {
                chrono::NaiveDate::from_ymd_opt(s.year(), s.month() + 1, 1)
            }.unwrap();
            let last_day = next_month_first.pred_opt().unwrap().day();
            proptest::prop_assert_eq!(s.day(), a.day().min(last_day));
            // Periods strictly increase.
            proptest::prop_assert!(period_start(anchor, n + 1) > period_start(anchor, n));
        }
    }
}

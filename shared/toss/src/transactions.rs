//! `GET /v1/transactions`: every payment and cancel of the merchant in a time window, the source
//! of the daily settlement check (docs/toss-api.md §5.2).

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use domain::{Krw, PaymentKey};
use serde::Deserialize;

use crate::de;
use crate::payment::{PaymentStatus, payment_key};

/// Toss's date format for the window: local Korean time without an offset
/// (`yyyy-MM-ddTHH:mm:ss`; a `Z` or an offset is refused with `INVALID_DATE`).
pub const DATE_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// Most rows Toss returns per page.
pub const MAX_LIMIT: u32 = 5000;

/// One row of the list: an approval or a cancel of a payment. Unknown fields are ignored and
/// unknown statuses kept, as for every Toss object.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    /// The row's own key: the cursor of the next page (`startingAfter`).
    pub transaction_key: String,
    #[serde(deserialize_with = "payment_key")]
    pub payment_key: PaymentKey,
    pub order_id: String,
    pub status: PaymentStatus,
    /// This row's amount (a cancel row's is the amount cancelled).
    #[serde(deserialize_with = "de::krw")]
    pub amount: Krw,
    #[serde(default, deserialize_with = "de::opt_datetime")]
    pub transaction_at: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
}

/// The window and page of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionQuery {
    /// Korean local time, inclusive.
    pub start: NaiveDateTime,
    /// Korean local time, inclusive.
    pub end: NaiveDateTime,
    /// The last `transaction_key` of the previous page.
    pub starting_after: Option<String>,
    /// 1 to [`MAX_LIMIT`].
    pub limit: u32,
}

impl TransactionQuery {
    pub(crate) fn path(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("startDate", &self.start.format(DATE_FORMAT).to_string());
        query.append_pair("endDate", &self.end.format(DATE_FORMAT).to_string());
        if let Some(after) = &self.starting_after {
            query.append_pair("startingAfter", after);
        }
        query.append_pair("limit", &self.limit.clamp(1, MAX_LIMIT).to_string());
        format!("/v1/transactions?{}", query.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_sent_in_korean_local_time_without_an_offset() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let query = TransactionQuery {
            start: day.and_hms_opt(0, 0, 0).unwrap(),
            end: day.and_hms_opt(23, 59, 59).unwrap(),
            starting_after: Some("tx_9".into()),
            limit: 9000,
        };

        assert_eq!(
            query.path(),
            "/v1/transactions?startDate=2026-12-01T00%3A00%3A00&endDate=2026-12-01T23%3A59%3A59&startingAfter=tx_9&limit=5000"
        );
    }

    #[test]
    fn a_row_parses_leniently_and_keeps_an_unknown_status() {
        let row: Transaction = serde_json::from_str(
            r#"{"mId":"tosspayments","transactionKey":"tx_1","paymentKey":"pay_1","orderId":"o-1-0",
               "method":"카드","customerKey":"c","useEscrow":false,"receiptUrl":"https://r",
               "status":"SOMETHING_NEW","transactionAt":"2026-12-01T09:00:01+09:00","currency":"KRW","amount":3900}"#,
        )
        .unwrap();

        assert_eq!(row.amount, Krw::new(3900));
        assert_eq!(row.status, PaymentStatus::Other("SOMETHING_NEW".into()));
        assert_eq!(row.payment_key.as_str(), "pay_1");
    }
}

//! `GET /v1/transactions?startDate&endDate&startingAfter&limit`: the caller's approvals and
//! cancels in a window of Korean local time, oldest first, paged by `startingAfter` (the last
//! row's `transactionKey`). Dates use Toss's format without an offset (`2026-12-01T00:00:00`);
//! a `Z`, an offset or anything else is refused with `INVALID_DATE`, as Toss is reported to.

use chrono::{DateTime, NaiveDateTime};
use chrono_tz::Asia::Seoul;
use serde::Serialize;

use crate::errors::ApiError;
use crate::state::{Caller, Sandbox};

const DATE_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 5000;

/// One row of the list (the fields Toss documents for a transaction).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Transaction {
    pub m_id: String,
    pub transaction_key: String,
    pub payment_key: String,
    pub order_id: String,
    pub method: Option<String>,
    pub customer_key: String,
    pub use_escrow: bool,
    pub receipt_url: Option<String>,
    pub status: String,
    pub transaction_at: String,
    pub currency: String,
    pub amount: i64,
}

/// The parsed query string.
#[derive(Debug)]
struct Window {
    start: NaiveDateTime,
    end: NaiveDateTime,
    starting_after: Option<String>,
    limit: usize,
}

fn parse_window(raw: Option<&str>) -> Result<Window, ApiError> {
    let mut start = None;
    let mut end = None;
    let mut after = None;
    let mut limit = None;
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let slot = match name.as_ref() {
            "startDate" => &mut start,
            "endDate" => &mut end,
            "startingAfter" => &mut after,
            "limit" => &mut limit,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(ApiError::invalid_request(format!(
                "{name}가 중복되었습니다."
            )));
        }
    }
    let date = |value: Option<String>, name: &str| {
        let value = value.ok_or_else(|| {
            ApiError::with_message("INVALID_REQUIRED_PARAM", format!("{name}는 필수입니다."))
        })?;
        NaiveDateTime::parse_from_str(&value, DATE_FORMAT)
            .ok()
            .filter(|_| value.len() == 19)
            .ok_or_else(|| {
                ApiError::with_message(
                    "INVALID_DATE",
                    format!("{name}는 yyyy-MM-ddTHH:mm:ss 형식이어야 합니다."),
                )
            })
    };
    let start = date(start, "startDate")?;
    let end = date(end, "endDate")?;
    if start > end {
        return Err(ApiError::with_message(
            "INVALID_DATE",
            "startDate는 endDate보다 늦을 수 없습니다.",
        ));
    }
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::invalid_request("limit는 1 이상 5000 이하여야 합니다."))?,
    };
    Ok(Window {
        start,
        end,
        starting_after: after.filter(|a| !a.is_empty()),
        limit,
    })
}

/// A Toss timestamp (`…+09:00`) in Korean local time, to the second.
fn local(at: &str) -> Option<NaiveDateTime> {
    DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|t| t.with_timezone(&Seoul).naive_local())
        .and_then(|t| t.with_nanosecond_zero())
}

trait NoNanos: Sized {
    fn with_nanosecond_zero(self) -> Option<Self>;
}

impl NoNanos for NaiveDateTime {
    fn with_nanosecond_zero(self) -> Option<Self> {
        use chrono::Timelike;
        self.with_nanosecond(0)
    }
}

impl Sandbox {
    /// `GET /v1/transactions`
    pub(crate) fn transactions(
        &self,
        caller: &Caller,
        raw_query: Option<&str>,
    ) -> Result<Vec<Transaction>, ApiError> {
        let window = parse_window(raw_query)?;
        let state = self.lock();
        let mut rows: Vec<(NaiveDateTime, Transaction)> = Vec::new();
        for record in state
            .payments
            .iter()
            .filter(|r| r.owner == caller.secret_key)
        {
            let p = &record.payment;
            let row = |key: String, status: &str, at: &str, amount: i64| Transaction {
                m_id: p.m_id.clone(),
                transaction_key: key,
                payment_key: p.payment_key.clone(),
                order_id: p.order_id.clone(),
                method: p.method.clone(),
                customer_key: record.customer_key.clone(),
                use_escrow: p.use_escrow,
                receipt_url: p.receipt.as_ref().map(|r| r.url.clone()),
                status: status.to_owned(),
                transaction_at: at.to_owned(),
                currency: p.currency.clone(),
                amount,
            };
            // The approval: only a payment that was approved moved money.
            if let Some(approved) = p.approved_at.as_deref()
                && let Some(at) = local(approved)
            {
                rows.push((
                    at,
                    row(
                        format!("{}_approval", p.payment_key),
                        "DONE",
                        approved,
                        p.total_amount,
                    ),
                ));
            }
            for cancel in p.cancels.iter().flatten() {
                if let Some(at) = local(&cancel.canceled_at) {
                    let status = if cancel.cancel_amount >= p.total_amount {
                        "CANCELED"
                    } else {
                        "PARTIAL_CANCELED"
                    };
                    rows.push((
                        at,
                        row(
                            cancel.transaction_key.clone(),
                            status,
                            &cancel.canceled_at,
                            cancel.cancel_amount,
                        ),
                    ));
                }
            }
        }
        rows.retain(|(at, _)| window.start <= *at && *at <= window.end);
        rows.sort_by(|(a, x), (b, y)| {
            a.cmp(b)
                .then_with(|| x.transaction_key.cmp(&y.transaction_key))
        });
        let skip = match &window.starting_after {
            None => 0,
            Some(after) => rows
                .iter()
                .position(|(_, t)| &t.transaction_key == after)
                .map(|i| i + 1)
                .ok_or_else(|| {
                    ApiError::invalid_request("startingAfter에 해당하는 거래가 없습니다.")
                })?,
        };
        Ok(rows
            .into_iter()
            .skip(skip)
            .take(window.limit)
            .map(|(_, t)| t)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_with_an_offset_or_a_z_is_refused_as_toss_does() {
        for bad in [
            "startDate=2026-12-01T00:00:00Z&endDate=2026-12-01T23:59:59",
            "startDate=2026-12-01T00:00:00%2B09:00&endDate=2026-12-01T23:59:59",
            "startDate=2026-12-01&endDate=2026-12-01T23:59:59",
            "startDate=2026-12-02T00:00:00&endDate=2026-12-01T23:59:59",
        ] {
            let err = parse_window(Some(bad)).unwrap_err();
            assert_eq!(err.code, "INVALID_DATE", "{bad}");
        }
    }

    #[test]
    fn a_missing_date_or_an_out_of_range_limit_is_refused() {
        assert_eq!(
            parse_window(Some("endDate=2026-12-01T23:59:59"))
                .unwrap_err()
                .code,
            "INVALID_REQUIRED_PARAM"
        );
        let over = "startDate=2026-12-01T00:00:00&endDate=2026-12-01T23:59:59&limit=5001";
        assert_eq!(
            parse_window(Some(over)).unwrap_err().code,
            "INVALID_REQUEST"
        );
        let ok = parse_window(Some(
            "startDate=2026-12-01T00:00:00&endDate=2026-12-01T23:59:59",
        ))
        .unwrap();
        assert_eq!(ok.limit, 100);
    }
}

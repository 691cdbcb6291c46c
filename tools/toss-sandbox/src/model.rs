//! The Toss wire objects the sandbox answers with (API version 2022-11-16).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "2022-11-16";

/// A timestamp as Toss writes it: ISO 8601, Korea time, `+09:00`.
pub(crate) fn kst(at: DateTime<Utc>) -> String {
    at.with_timezone(&chrono_tz::Asia::Seoul)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// A timestamp packed into `paymentKey`s: `yyyyMMddHHmmss`, Korea time.
pub(crate) fn kst_compact(at: DateTime<Utc>) -> String {
    at.with_timezone(&chrono_tz::Asia::Seoul)
        .format("%Y%m%d%H%M%S")
        .to_string()
}

/// The Billing object returned by `POST /v1/billing/authorizations/issue`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Billing {
    pub m_id: String,
    pub customer_key: String,
    pub authenticated_at: String,
    pub method: String,
    pub billing_key: String,
    pub card: BillingCard,
    /// Deprecated since version 2024-06-01; still sent because the sandbox plays 2022-11-16.
    pub card_company: String,
    pub card_number: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingCard {
    pub issuer_code: String,
    pub acquirer_code: String,
    pub number: String,
    pub card_type: String,
    pub owner_type: String,
}

/// The Payment object (`type: BILLING`, card payments only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub m_id: String,
    pub version: String,
    pub payment_key: String,
    pub status: String,
    pub last_transaction_key: String,
    pub order_id: String,
    pub order_name: String,
    pub requested_at: String,
    pub approved_at: Option<String>,
    pub use_escrow: bool,
    pub culture_expense: bool,
    pub card: Option<PaymentCard>,
    pub virtual_account: Option<serde_json::Value>,
    pub transfer: Option<serde_json::Value>,
    pub mobile_phone: Option<serde_json::Value>,
    pub gift_certificate: Option<serde_json::Value>,
    pub cash_receipt: Option<serde_json::Value>,
    pub cash_receipts: Option<serde_json::Value>,
    pub discount: Option<serde_json::Value>,
    pub cancels: Option<Vec<Cancel>>,
    pub secret: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub easy_pay: Option<serde_json::Value>,
    pub country: String,
    pub failure: Option<Failure>,
    pub is_partial_cancelable: bool,
    pub receipt: Option<Url>,
    pub checkout: Option<Url>,
    pub currency: String,
    pub total_amount: i64,
    pub balance_amount: i64,
    pub supplied_amount: i64,
    pub vat: i64,
    pub tax_free_amount: i64,
    pub tax_exemption_amount: i64,
    pub metadata: Option<serde_json::Value>,
    pub method: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCard {
    pub issuer_code: String,
    pub acquirer_code: String,
    pub number: String,
    pub installment_plan_months: i64,
    pub is_interest_free: bool,
    pub interest_payer: Option<String>,
    pub approve_no: String,
    pub use_card_point: bool,
    pub card_type: String,
    pub owner_type: String,
    pub acquire_status: String,
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancel {
    pub transaction_key: String,
    pub cancel_reason: String,
    pub tax_exemption_amount: i64,
    pub canceled_at: String,
    pub transfer_discount_amount: i64,
    pub easy_pay_discount_amount: i64,
    pub receipt_key: Option<String>,
    pub cancel_amount: i64,
    pub tax_free_amount: i64,
    pub refundable_amount: i64,
    pub card_discount_amount: i64,
    pub cancel_status: String,
    pub cancel_request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Url {
    pub url: String,
}

/// VAT and supplied amount for a KRW amount: VAT is a rounded eleventh of the taxable part.
pub fn vat_split(amount: i64, tax_free: i64, tax_exemption: i64) -> (i64, i64) {
    let taxable = (amount - tax_free - tax_exemption).max(0);
    let vat = (taxable + 5) / 11;
    (taxable - vat, vat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vat_is_a_rounded_eleventh_of_the_taxable_amount() {
        assert_eq!(vat_split(4900, 0, 0), (4455, 445));
        assert_eq!(vat_split(15000, 0, 0), (13636, 1364));
        assert_eq!(vat_split(11000, 1000, 0), (9091, 909));
    }

    #[test]
    fn timestamps_are_written_in_korea_time_with_the_offset() {
        let at = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kst(at), "2026-01-01T09:00:00+09:00");
    }
}

//! The Payment object (docs/toss-api.md §3.3) and the requests that produce one.

use std::fmt;

use chrono::{DateTime, FixedOffset};
use domain::{CustomerKey, Krw, OrderId, PaymentKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::code::ErrorCode;
use crate::de;

/// `status` of a payment. Values Toss adds later are kept in `Other`.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    Ready,
    InProgress,
    WaitingForDeposit,
    /// Approved. A successful billing charge is `Done`.
    Done,
    Canceled,
    PartialCanceled,
    /// Approval failed.
    Aborted,
    Expired,
    Other(String),
}

impl PaymentStatus {
    pub fn parse(status: &str) -> Self {
        match status {
            "READY" => Self::Ready,
            "IN_PROGRESS" => Self::InProgress,
            "WAITING_FOR_DEPOSIT" => Self::WaitingForDeposit,
            "DONE" => Self::Done,
            "CANCELED" => Self::Canceled,
            "PARTIAL_CANCELED" => Self::PartialCanceled,
            "ABORTED" => Self::Aborted,
            "EXPIRED" => Self::Expired,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The status exactly as Toss spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Ready => "READY",
            Self::InProgress => "IN_PROGRESS",
            Self::WaitingForDeposit => "WAITING_FOR_DEPOSIT",
            Self::Done => "DONE",
            Self::Canceled => "CANCELED",
            Self::PartialCanceled => "PARTIAL_CANCELED",
            Self::Aborted => "ABORTED",
            Self::Expired => "EXPIRED",
            Self::Other(other) => other,
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PaymentStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Ok(Self::parse(&raw))
    }
}

impl Serialize for PaymentStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A Toss Payment object: the answer to a charge, a lookup or a cancel, and the `data` of a
/// `PAYMENT_STATUS_CHANGED` webhook. Unknown fields are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    #[serde(deserialize_with = "payment_key")]
    pub payment_key: PaymentKey,
    pub order_id: String,
    #[serde(default)]
    pub order_name: Option<String>,
    pub status: PaymentStatus,
    /// `NORMAL`, `BILLING` or `BRANDPAY`.
    #[serde(default, rename = "type")]
    pub payment_type: Option<String>,
    /// The original amount; it does not shrink on cancels.
    #[serde(deserialize_with = "de::krw")]
    pub total_amount: Krw,
    /// What can still be cancelled.
    #[serde(default, deserialize_with = "de::opt_krw")]
    pub balance_amount: Option<Krw>,
    #[serde(default, deserialize_with = "de::opt_krw")]
    pub supplied_amount: Option<Krw>,
    #[serde(default, deserialize_with = "de::opt_krw")]
    pub vat: Option<Krw>,
    #[serde(default, deserialize_with = "de::opt_datetime")]
    pub requested_at: Option<DateTime<FixedOffset>>,
    #[serde(default, deserialize_with = "de::opt_datetime")]
    pub approved_at: Option<DateTime<FixedOffset>>,
    /// A Korean string such as `"카드"`.
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub card: Option<PaymentCard>,
    /// Set when a failed payment is looked up.
    #[serde(default)]
    pub failure: Option<Failure>,
    /// The card sales slip (`receipt.url`).
    #[serde(default, rename = "receipt", deserialize_with = "receipt_url")]
    pub receipt_url: Option<String>,
    #[serde(default, deserialize_with = "de::null_as_empty")]
    pub cancels: Vec<PaymentCancel>,
    #[serde(default)]
    pub last_transaction_key: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub m_id: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
}

impl Payment {
    /// True when the payment is approved and not cancelled (not even partly).
    pub fn is_done(&self) -> bool {
        self.status == PaymentStatus::Done
    }
}

pub(crate) fn payment_key<'de, D: Deserializer<'de>>(d: D) -> Result<PaymentKey, D::Error> {
    let raw = String::deserialize(d)?;
    PaymentKey::parse(raw).map_err(serde::de::Error::custom)
}

fn receipt_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Receipt {
        #[serde(default)]
        url: Option<String>,
    }
    Ok(Option::<Receipt>::deserialize(d)?.and_then(|r| r.url))
}

/// `card` of a Payment. `Debug` leaves out the (masked) card number.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCard {
    #[serde(default, deserialize_with = "de::opt_krw")]
    pub amount: Option<Krw>,
    #[serde(default)]
    pub issuer_code: Option<String>,
    #[serde(default)]
    pub acquirer_code: Option<String>,
    /// Masked by Toss, e.g. `43301234****123*`.
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default)]
    pub installment_plan_months: Option<u32>,
    #[serde(default)]
    pub approve_no: Option<String>,
    /// 신용/체크/기프트/미확인
    #[serde(default)]
    pub card_type: Option<String>,
    /// 개인/법인/미확인
    #[serde(default)]
    pub owner_type: Option<String>,
    /// READY/REQUESTED/COMPLETED/CANCEL_REQUESTED/CANCELED
    #[serde(default)]
    pub acquire_status: Option<String>,
}

impl fmt::Debug for PaymentCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaymentCard")
            .field("amount", &self.amount)
            .field("issuer_code", &self.issuer_code)
            .field("acquirer_code", &self.acquirer_code)
            .field("installment_plan_months", &self.installment_plan_months)
            .field("approve_no", &self.approve_no)
            .field("card_type", &self.card_type)
            .field("owner_type", &self.owner_type)
            .field("acquire_status", &self.acquire_status)
            .finish_non_exhaustive()
    }
}

/// `failure` of a Payment that did not go through.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Failure {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

impl Failure {
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::parse(&self.code)
    }
}

/// One entry of `cancels[]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCancel {
    #[serde(deserialize_with = "de::krw")]
    pub cancel_amount: Krw,
    #[serde(default)]
    pub cancel_reason: Option<String>,
    #[serde(default, deserialize_with = "de::opt_datetime")]
    pub canceled_at: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub transaction_key: Option<String>,
    /// `"DONE"` means the cancel succeeded.
    #[serde(default)]
    pub cancel_status: Option<String>,
}

/// The body of `POST /v1/billing/{billingKey}`. The billing key itself goes in the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargeRequest {
    /// Must be the customer the billing key was issued to (`NOT_MATCHES_CUSTOMER_KEY`).
    pub customer_key: CustomerKey,
    pub amount: Krw,
    pub order_id: OrderId,
    /// At most 100 characters, not empty.
    pub order_name: String,
    pub customer_email: Option<String>,
    pub customer_name: Option<String>,
}

impl Serialize for ChargeRequest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            customer_key: &'a str,
            amount: u64,
            order_id: &'a str,
            order_name: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            customer_email: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            customer_name: Option<&'a str>,
        }
        Wire {
            customer_key: self.customer_key.as_str(),
            amount: self.amount.won(),
            order_id: self.order_id.as_str(),
            order_name: &self.order_name,
            customer_email: self.customer_email.as_deref(),
            customer_name: self.customer_name.as_deref(),
        }
        .serialize(s)
    }
}

/// The body of `POST /v1/payments/{paymentKey}/cancel`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CancelRequest<'a> {
    pub cancel_reason: &'a str,
    /// Omitted for a full refund.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_amount: Option<u64>,
    /// The balance the caller believes is left: Toss refuses the cancel unless it matches
    /// (`NOT_MATCHES_REFUNDABLE_AMOUNT`), so a cancel that was applied already cannot apply again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refundable_amount: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_status_parses_and_unknown_ones_are_kept() {
        for s in [
            "READY",
            "IN_PROGRESS",
            "WAITING_FOR_DEPOSIT",
            "DONE",
            "CANCELED",
            "PARTIAL_CANCELED",
            "ABORTED",
            "EXPIRED",
        ] {
            let status = PaymentStatus::parse(s);
            assert!(!matches!(status, PaymentStatus::Other(_)), "{s}");
            assert_eq!(status.as_str(), s);
        }
        assert_eq!(
            PaymentStatus::parse("ON_HOLD"),
            PaymentStatus::Other("ON_HOLD".into())
        );
    }

    #[test]
    fn a_charge_request_serialises_camel_case_without_null_fields() {
        let request = ChargeRequest {
            customer_key: CustomerKey::parse("cust_1").unwrap(),
            amount: Krw::new(4900),
            order_id: OrderId::parse("order-123456").unwrap(),
            order_name: "토스 프라임 구독".into(),
            customer_email: None,
            customer_name: Some("김토스".into()),
        };
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(
            json,
            r#"{"customerKey":"cust_1","amount":4900,"orderId":"order-123456","orderName":"토스 프라임 구독","customerName":"김토스"}"#
        );
    }

    #[test]
    fn a_minimal_payment_with_nulls_and_float_amounts_parses() {
        let json = r#"{"paymentKey":"pk_1","orderId":"order-1","status":"ABORTED",
            "totalAmount":4900.0,"balanceAmount":null,"card":null,"receipt":null,"cancels":null,
            "approvedAt":null,"failure":{"code":"REJECT_CARD_PAYMENT","message":"한도초과"},
            "somethingNew":{"nested":true}}"#;
        let payment: Payment = serde_json::from_str(json).unwrap();
        assert_eq!(payment.status, PaymentStatus::Aborted);
        assert_eq!(payment.total_amount, Krw::new(4900));
        assert_eq!(payment.receipt_url, None);
        assert!(payment.cancels.is_empty());
        assert_eq!(
            payment.failure.map(|f| f.error_code()),
            Some(ErrorCode::RejectCardPayment)
        );
    }

    #[test]
    fn a_card_debug_never_shows_the_card_number() {
        let card: PaymentCard =
            serde_json::from_str(r#"{"number":"43301234****123*","issuerCode":"61"}"#).unwrap();
        let shown = format!("{card:?}");
        assert!(!shown.contains("43301234"), "{shown}");
        assert!(shown.contains("61"), "{shown}");
    }
}

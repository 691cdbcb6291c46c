//! Operator refunds (product §11): an event of its own shape, sent only by someone allowed to
//! invoke this function (`aws lambda invoke`, IAM-protected; never a public route):
//!
//! ```json
//! {"admin":"refund","requestId":"…","orderId":"…","amount":1000,"reason":"…","operator":"jisoo","endSubscription":false}
//! ```
//!
//! `requestId` (the operator's, e.g. a ticket number or a UUID) makes the invocation safe to
//! repeat: the same id again answers with the refund it claimed and refunds nothing more.
//! `amount` null or absent refunds what is left; `endSubscription` / `takeBackCredits` absent
//! follow the rule (only a full refund of the current period does them). The event is parsed
//! into domain types here; anything else is refused before the table or Toss is touched.

use billing::{RefundOutcome, RefundRequest, RequestId};
use chrono::Utc;
use domain::{Krw, OrderId, RefundBy};
use lambda_runtime::Diagnostic;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use crate::capability::Refunds;
use crate::handler::State;

/// Whether an invocation is an operator's (and so neither a sweep nor a settlement check).
pub(crate) fn is_admin(payload: &Value) -> bool {
    payload.get("admin").is_some()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RefundEvent {
    admin: String,
    request_id: String,
    order_id: String,
    #[serde(default)]
    amount: Option<u64>,
    reason: String,
    operator: String,
    #[serde(default)]
    end_subscription: Option<bool>,
    #[serde(default)]
    take_back_credits: Option<bool>,
}

/// Why an admin event was refused. Never echoes the payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InvalidAdminEvent {
    #[error(
        "the event is not {{\"admin\":\"refund\",\"requestId\",\"orderId\",\"reason\",\"operator\",…}} (unknown or missing fields, wrong types)"
    )]
    Shape,
    #[error("admin must be \"refund\"")]
    Action,
    #[error("requestId must be 1 to 64 of A-Z a-z 0-9 . _ : -")]
    RequestId,
    #[error("orderId is not an order id")]
    OrderId,
    #[error("amount must be a whole number of won from 1 to 100000000, or null")]
    Amount,
    #[error("reason must be 1 to 120 characters without control characters")]
    Reason,
    #[error("operator must be 1 to 64 letters, digits or . _ @ -")]
    Operator,
}

pub(crate) fn parse(payload: Value) -> Result<RefundRequest, InvalidAdminEvent> {
    let event: RefundEvent =
        serde_json::from_value(payload).map_err(|_| InvalidAdminEvent::Shape)?;
    if event.admin != "refund" {
        return Err(InvalidAdminEvent::Action);
    }
    let request_id = RequestId::parse(&event.request_id).ok_or(InvalidAdminEvent::RequestId)?;
    let order_id = OrderId::parse(event.order_id).map_err(|_| InvalidAdminEvent::OrderId)?;
    let amount = match event.amount {
        None => None,
        Some(won @ 1..=100_000_000) => Some(Krw::new(won)),
        Some(_) => return Err(InvalidAdminEvent::Amount),
    };
    let reason = event.reason.trim();
    if reason.is_empty() || reason.chars().count() > 120 || reason.chars().any(char::is_control) {
        return Err(InvalidAdminEvent::Reason);
    }
    let operator = event.operator;
    if operator.is_empty()
        || operator.len() > 64
        || !operator
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
    {
        return Err(InvalidAdminEvent::Operator);
    }
    Ok(RefundRequest {
        order_id,
        amount,
        reason: reason.to_owned(),
        by: RefundBy::Operator { name: operator },
        end_subscription: event.end_subscription,
        take_back_credits: event.take_back_credits,
        request_id: Some(request_id),
    })
}

/// What the operator sees.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AdminReport {
    /// `refunded`, `unknown` (settled later from Toss's record), `refused`, `not_refundable`,
    /// `no_such_payment`, `request_id_reused` (the id named another request; nothing done).
    pub outcome: &'static str,
    pub order_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refundable: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_key: Option<String>,
    pub subscription_ended: bool,
    pub credits_taken: u64,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminError {
    #[error("refused: {0}")]
    InvalidEvent(#[from] InvalidAdminEvent),
    #[error(transparent)]
    Billing(#[from] billing::Error),
}

impl From<AdminError> for Diagnostic {
    fn from(e: AdminError) -> Self {
        let error_type = match &e {
            AdminError::InvalidEvent(_) => "InvalidEvent",
            AdminError::Billing(billing::Error::OurFault { .. }) => "TossRefusedOurRequest",
            AdminError::Billing(billing::Error::TossUnavailable(_)) => "TossUnavailable",
            AdminError::Billing(billing::Error::Store(_)) => "TableUnavailable",
            AdminError::Billing(_) => "Internal",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: billing::cause_chain(&e),
        }
    }
}

pub(crate) async fn handle<B: Refunds>(
    state: &State<B>,
    payload: Value,
) -> Result<AdminReport, AdminError> {
    let request = parse(payload).inspect_err(|e| warn!(error = %e, "refused an admin event"))?;
    info!(order_id = %request.order_id, operator = %request.by.as_stored(), "operator refund requested");
    let outcome = state.billing().refund(&request, Utc::now()).await?;
    let mut report = AdminReport {
        outcome: "refunded",
        order_id: request.order_id.to_string(),
        amount: None,
        refundable: None,
        code: None,
        transaction_key: None,
        subscription_ended: false,
        credits_taken: 0,
    };
    match outcome {
        RefundOutcome::Refunded {
            refund,
            ended,
            credits_taken,
        } => {
            report.amount = Some(refund.amount.won());
            report.transaction_key = refund.transaction_key;
            report.subscription_ended = ended;
            report.credits_taken = credits_taken;
        }
        RefundOutcome::Unknown { refund } => {
            report.outcome = "unknown";
            report.amount = Some(refund.amount.won());
        }
        RefundOutcome::Refused { refund, code } => {
            report.outcome = "refused";
            report.amount = Some(refund.amount.won());
            report.code = Some(code);
        }
        RefundOutcome::NotRefundable { refundable } => {
            report.outcome = "not_refundable";
            report.refundable = Some(refundable.won());
        }
        RefundOutcome::NoSuchPayment => report.outcome = "no_such_payment",
        RefundOutcome::RequestIdReused => report.outcome = "request_id_reused",
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::fake::{self, Fake};
    use crate::handler::testing;
    use serde_json::json;

    fn sample() -> Value {
        serde_json::from_str(include_str!(
            "../../../events/charge-subscriptions.refund.json"
        ))
        .unwrap()
    }

    #[test]
    fn the_sample_event_parses_into_an_operator_refund() {
        assert!(is_admin(&sample()));
        let request = parse(sample()).unwrap();
        assert_eq!(request.amount, Some(Krw::new(1000)));
        assert_eq!(
            request.by,
            RefundBy::Operator {
                name: "jisoo".into()
            }
        );
        assert_eq!(request.end_subscription, Some(false));
        assert_eq!(request.request_id, RequestId::parse("ticket-1042"));
    }

    #[test]
    fn a_lying_or_malformed_admin_event_is_refused_before_anything_is_touched() {
        let with = |key: &str, value: Value| {
            let mut event = sample();
            event[key] = value;
            parse(event).unwrap_err()
        };
        assert_eq!(with("admin", json!("charge")), InvalidAdminEvent::Action);
        assert_eq!(with("requestId", json!("")), InvalidAdminEvent::RequestId);
        assert_eq!(
            with("requestId", json!("a/b")),
            InvalidAdminEvent::RequestId
        );
        assert_eq!(with("orderId", json!("../x")), InvalidAdminEvent::OrderId);
        assert_eq!(with("amount", json!(0)), InvalidAdminEvent::Amount);
        assert_eq!(with("amount", json!(-5)), InvalidAdminEvent::Shape);
        assert_eq!(with("amount", json!(1.5)), InvalidAdminEvent::Shape);
        assert_eq!(with("reason", json!("")), InvalidAdminEvent::Reason);
        assert_eq!(with("reason", json!("a\nb")), InvalidAdminEvent::Reason);
        assert_eq!(with("operator", json!("a b")), InvalidAdminEvent::Operator);
        assert_eq!(with("userId", json!("x")), InvalidAdminEvent::Shape);
        let mut full = sample();
        full["amount"] = Value::Null;
        assert_eq!(parse(full).unwrap().amount, None);
    }

    /// The refund the operator's sample event asks for, claimed, as billing reports it.
    fn claimed() -> domain::Refund {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-01T09:00:00Z")
            .unwrap()
            .to_utc();
        domain::Refund::claim(
            domain::SubscriptionId::parse("01JDQ4ZC1V3M5N7P9R2T4W6Y8A").unwrap(),
            0,
            0,
            domain::PaymentKey::parse("tgen_20261201000000abcde").unwrap(),
            1,
            Krw::new(1000),
            "고객 요청",
            RefundBy::Operator {
                name: "jisoo".into(),
            },
            at,
        )
    }

    /// What the operator sees when the refund use case answers `outcome`.
    async fn report(outcome: RefundOutcome) -> Value {
        let fake = Fake::new(false);
        fake.refund.answer(Ok(outcome));
        let state = testing::state(fake, "http://127.0.0.1:9");
        let report = handle(&state, sample()).await.unwrap();
        assert_eq!(
            state.billing().calls(),
            ["refund 01JDQ4ZC1V3M5N7P9R2T4W6Y8A-0-0 Some(1000)"]
        );
        serde_json::to_value(report).unwrap()
    }

    #[tokio::test]
    async fn a_refund_toss_made_reports_its_amount_transaction_and_what_it_ended() {
        let mut refund = claimed();
        refund.mark_done("tx_0001".into(), Utc::now(), Utc::now());

        let seen = report(RefundOutcome::Refunded {
            refund,
            ended: true,
            credits_taken: 30,
        })
        .await;

        assert_eq!(
            seen,
            json!({
                "outcome": "refunded",
                "orderId": "01JDQ4ZC1V3M5N7P9R2T4W6Y8A-0-0",
                "amount": 1000,
                "transactionKey": "tx_0001",
                "subscriptionEnded": true,
                "creditsTaken": 30,
            })
        );
    }

    #[tokio::test]
    async fn every_other_refund_outcome_is_reported_by_its_own_name_with_its_own_fields() {
        let order = "01JDQ4ZC1V3M5N7P9R2T4W6Y8A-0-0";
        let quiet = |outcome: &str, extra: Value| {
            let mut expected = json!({
                "outcome": outcome,
                "orderId": order,
                "subscriptionEnded": false,
                "creditsTaken": 0,
            });
            for (k, v) in extra.as_object().unwrap() {
                expected[k] = v.clone();
            }
            expected
        };
        for (outcome, expected) in [
            (
                RefundOutcome::Unknown { refund: claimed() },
                quiet("unknown", json!({"amount": 1000})),
            ),
            (
                RefundOutcome::Refused {
                    refund: claimed(),
                    code: "NOT_CANCELABLE_AMOUNT".into(),
                },
                quiet(
                    "refused",
                    json!({"amount": 1000, "code": "NOT_CANCELABLE_AMOUNT"}),
                ),
            ),
            (
                RefundOutcome::NotRefundable {
                    refundable: Krw::new(500),
                },
                quiet("not_refundable", json!({"refundable": 500})),
            ),
            (
                RefundOutcome::NoSuchPayment,
                quiet("no_such_payment", json!({})),
            ),
            (
                RefundOutcome::RequestIdReused,
                quiet("request_id_reused", json!({})),
            ),
        ] {
            assert_eq!(report(outcome.clone()).await, expected, "{outcome:?}");
        }
    }

    #[tokio::test]
    async fn every_billing_error_fails_the_refund_with_its_stable_error_type() {
        for (error, [_, _, admin]) in fake::every_error() {
            let fake = Fake::new(false);
            let shown = billing::cause_chain(&error);
            fake.refund.answer(Err(error));
            let state = testing::state(fake, "http://127.0.0.1:9");

            let failure = handle(&state, sample()).await.unwrap_err();

            let diagnostic = Diagnostic::from(failure);
            assert_eq!(diagnostic.error_type, admin, "{shown}");
            assert_eq!(diagnostic.error_message, shown);
        }
    }

    #[tokio::test]
    async fn a_malformed_admin_event_fails_as_invalid_event_without_a_refund() {
        let mut event = sample();
        event["amount"] = json!(0);
        let state = testing::state(Fake::new(false), "http://127.0.0.1:9");

        let failure = handle(&state, event).await.unwrap_err();

        assert_eq!(Diagnostic::from(failure).error_type, "InvalidEvent");
        assert!(state.billing().calls().is_empty());
    }
}

//! What Toss's answer means for money: the one pure decision the charge engine acts on.
//!
//! Every answer about a charge (the charge request's own answer, or a payment found by looking
//! its order up) goes through [`decide`], which returns a [`ChargeOutcome`]; the engine only
//! writes what it says. The rules:
//!
//! - Only Toss's answer *to the charge* (or its record of the payment) can decline an attempt
//!   or mark it not charged. A look-up's own error decides nothing: `NotFound` means "send the
//!   very same charge again", anything else leaves the attempt open.
//! - What the class table (`toss::class`) cannot decide goes to an operator ([`Review`]), never
//!   to dunning: a payment approved and then refunded, or aborted for a reason we do not know.
//! - A refusal of one customer's data holds that customer; a refusal every customer would meet
//!   (key, contract, request) stops the run.
//!
//! [`Review`]: ChargeOutcome::Review

use chrono::{DateTime, Utc};
use domain::{ChargeAttempt, DeclineKind, Krw, PaymentKey};
use toss::{ErrorClass, Operation, Payment, PaymentStatus};

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The answer to the charge request itself, sent for the first time.
    Charge,
    /// The answer to the same charge sent again (same order id, same idempotency key) after
    /// a look-up found nothing: the first send's fate is still open, so a refusal before
    /// Toss got to this order says nothing about it.
    Resend,
    /// The answer to `GET /v1/payments/orders/{orderId}`.
    LookUp,
}

/// What an answer means for the attempt, the subscription and the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChargeOutcome {
    /// Toss took the money for this order: record `DONE` and grant the period.
    Approved {
        payment_key: PaymentKey,
        approved_at: Option<DateTime<Utc>>,
        amount: Krw,
        receipt_url: Option<String>,
    },
    /// The card was declined; no money moved. Dunning decides what follows.
    Declined {
        kind: DeclineKind,
        code: String,
        message: String,
    },
    /// Refused for a reason every customer would meet (key, contract, request): nothing was
    /// charged; the attempt is `NOT_CHARGED`, the subscription untouched, the run stops.
    OurFault { code: String, message: String },
    /// Refused for this customer's data: nothing was charged; the attempt is `NOT_CHARGED`, a
    /// renewal's subscription is held for an operator, the run goes on.
    CustomerRefused { code: String, message: String },
    /// Nothing is known: the attempt stays open. After a charge answer, look the order up at
    /// once; after a look-up, look again later (with backoff).
    Unknown { code: String, message: String },
    /// Toss has no payment under this order (look-ups only): send the very same charge again,
    /// same order id, same idempotency key.
    NotFound,
    /// A look-up or a re-send was refused for a reason on our side before Toss got to the
    /// order: it decides nothing about the charge already sent; the attempt stays open and
    /// the run stops.
    LookUpRefused { code: String },
    /// Toss's record is one no rule may settle alone: an operator decides. The attempt is
    /// `REVIEW`, the subscription is held; nothing is granted, no dunning, no new charge.
    Review { code: String, message: String },
}

/// The decision. `attempt` is the ledger entry the answer is about.
pub(crate) fn decide(
    source: Source,
    answer: &Result<Payment, toss::Error>,
    attempt: &ChargeAttempt,
) -> ChargeOutcome {
    match answer {
        Ok(payment) => of_payment(payment, attempt),
        Err(error) => of_error(source, error),
    }
}

fn text(code: &str, message: &str) -> (String, String) {
    (code.to_owned(), message.to_owned())
}

/// The code an outcome records when Toss's answer carried none.
const NO_RESPONSE: &str = "NO_RESPONSE";

/// Toss's own code in an outcome's code (`None` for [`NO_RESPONSE`]).
pub(crate) fn toss_code(code: &str) -> Option<toss::ErrorCode> {
    (code != NO_RESPONSE).then(|| toss::ErrorCode::parse(code))
}

fn of_error(source: Source, error: &toss::Error) -> ChargeOutcome {
    let code = error.code().unwrap_or(NO_RESPONSE).to_owned();
    let message = error.to_string();
    let class = error.class();
    match (source, class) {
        (Source::LookUp, ErrorClass::NotFound) => return ChargeOutcome::NotFound,
        (Source::LookUp | Source::Resend, ErrorClass::OurFault) => {
            return ChargeOutcome::LookUpRefused { code };
        }
        (Source::LookUp | Source::Resend, ErrorClass::CustomerData) | (Source::LookUp, _) => {
            return ChargeOutcome::Unknown { code, message };
        }
        _ => {}
    }
    by_class(class, code, message, |code, message| {
        ChargeOutcome::Unknown { code, message }
    })
}

/// What Toss's refusal of a charge means, by the code's class. `undecided` is what a class
/// that says nothing for sure (unknown outcome, already processed, not found) becomes.
fn by_class(
    class: ErrorClass,
    code: String,
    message: String,
    undecided: impl FnOnce(String, String) -> ChargeOutcome,
) -> ChargeOutcome {
    match class {
        ErrorClass::SoftDecline => ChargeOutcome::Declined {
            kind: DeclineKind::Soft,
            code,
            message,
        },
        ErrorClass::NeedsNewCard | ErrorClass::Rejected => ChargeOutcome::Declined {
            kind: DeclineKind::NeedsNewCard,
            code,
            message,
        },
        ErrorClass::OurFault => ChargeOutcome::OurFault { code, message },
        ErrorClass::CustomerData => ChargeOutcome::CustomerRefused { code, message },
        ErrorClass::OutcomeUnknown | ErrorClass::AlreadyProcessed | ErrorClass::NotFound => {
            undecided(code, message)
        }
    }
}

fn of_payment(payment: &Payment, attempt: &ChargeAttempt) -> ChargeOutcome {
    if payment.order_id != attempt.order_id().as_str() {
        let (code, message) = text("ORDER_MISMATCH", "Toss answered with another order");
        return ChargeOutcome::Unknown { code, message };
    }
    match &payment.status {
        PaymentStatus::Done => ChargeOutcome::Approved {
            payment_key: payment.payment_key.clone(),
            approved_at: payment.approved_at.map(|t| t.with_timezone(&Utc)),
            amount: payment.total_amount,
            receipt_url: payment.receipt_url.clone(),
        },
        PaymentStatus::Aborted | PaymentStatus::Expired => of_failed_payment(payment),
        PaymentStatus::Canceled | PaymentStatus::PartialCanceled => {
            // Approved, then (partly) refunded by someone: the money may partly stand, so a new
            // charge could take it twice, and granting the period could give it away.
            let code = format!("PAYMENT_{}", payment.status.as_str());
            ChargeOutcome::Review {
                code,
                message: "the payment was approved and then refunded".into(),
            }
        }
        other => ChargeOutcome::Unknown {
            code: format!("PAYMENT_{}", other.as_str()),
            message: "the payment is not final yet".into(),
        },
    }
}

/// Toss reports the payment as failed: no money moved. Why it failed decides what follows,
/// through the same class table as a charge's error answer.
fn of_failed_payment(payment: &Payment) -> ChargeOutcome {
    let Some(failure) = payment.failure.as_ref() else {
        let (code, message) = text(
            "PAYMENT_ABORTED",
            "Toss reports the payment as failed without a reason",
        );
        return ChargeOutcome::Review { code, message };
    };
    let (code, message) = text(&failure.code, &failure.message);
    let class = toss::class::class_of_code(Operation::Charge, &toss::ErrorCode::parse(&code));
    // A failed payment whose reason the table cannot place (transient, or a code we have
    // never seen) is neither a decline nor ours for sure: an operator decides.
    by_class(class, code, message, |code, message| {
        ChargeOutcome::Review { code, message }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{AttemptKind, CustomerKey, Lease, SubscriptionId};

    fn attempt() -> ChargeAttempt {
        let now = Utc::now();
        ChargeAttempt::claim(
            SubscriptionId::parse("01JDQ4ZC1V3M5N7P9R2T4W6Y8A").unwrap(),
            CustomerKey::parse("user_1").unwrap(),
            1,
            1,
            Krw::new(3900),
            AttemptKind::Renewal,
            Lease {
                owner: "t".into(),
                until: now,
            },
            now,
        )
    }

    fn payment(status: &str, failure: Option<&str>) -> Result<Payment, toss::Error> {
        let mut body = serde_json::json!({
            "paymentKey": "tpay0000000000000001",
            "orderId": "01JDQ4ZC1V3M5N7P9R2T4W6Y8A-1-1",
            "status": status,
            "totalAmount": 3900,
            "approvedAt": "2027-02-10T09:00:05+09:00",
        });
        if let Some(code) = failure {
            body["failure"] = serde_json::json!({"code": code, "message": "m"});
        }
        Ok(serde_json::from_value(body).unwrap())
    }

    fn api_error(status: u16, code: &str) -> Result<Payment, toss::Error> {
        Err(toss::Error::Api {
            operation: Operation::Charge,
            status,
            code: toss::ErrorCode::parse(code),
            message: "m".into(),
            trace_id: None,
        })
    }

    /// A short name for each outcome, so one table can list them.
    fn name(outcome: &ChargeOutcome) -> String {
        match outcome {
            ChargeOutcome::Approved { .. } => "approved".into(),
            ChargeOutcome::Declined {
                kind: DeclineKind::Soft,
                ..
            } => "soft decline".into(),
            ChargeOutcome::Declined {
                kind: DeclineKind::NeedsNewCard,
                ..
            } => "needs new card".into(),
            ChargeOutcome::OurFault { .. } => "our fault".into(),
            ChargeOutcome::CustomerRefused { .. } => "customer refused".into(),
            ChargeOutcome::Unknown { .. } => "unknown".into(),
            ChargeOutcome::NotFound => "not found".into(),
            ChargeOutcome::LookUpRefused { .. } => "look-up refused".into(),
            ChargeOutcome::Review { .. } => "review".into(),
        }
    }

    #[test]
    fn every_answer_means_exactly_what_the_money_rules_say() {
        use Source::{Charge, LookUp, Resend};
        let table: Vec<(Source, Result<Payment, toss::Error>, &str)> = vec![
            // the charge's own answer
            (Charge, payment("DONE", None), "approved"),
            (
                Charge,
                api_error(400, "REJECT_CARD_PAYMENT"),
                "soft decline",
            ),
            (
                Charge,
                api_error(400, "INVALID_STOPPED_CARD"),
                "needs new card",
            ),
            (
                Charge,
                api_error(403, "NOT_FOUND_BILLING"),
                "needs new card",
            ),
            (Charge, api_error(401, "UNAUTHORIZED_KEY"), "our fault"),
            (Charge, api_error(403, "FORBIDDEN_REQUEST"), "our fault"),
            (Charge, api_error(400, "NOT_SUPPORTED_METHOD"), "our fault"),
            (Charge, api_error(400, "INVALID_EMAIL"), "customer refused"),
            (
                Charge,
                api_error(400, "INVALID_CUSTOMER_KEY"),
                "customer refused",
            ),
            (
                Charge,
                api_error(400, "NOT_MATCHES_CUSTOMER_KEY"),
                "customer refused",
            ),
            (
                Charge,
                api_error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
                "unknown",
            ),
            (
                Charge,
                api_error(409, "IDEMPOTENT_REQUEST_PROCESSING"),
                "unknown",
            ),
            (Charge, api_error(400, "DUPLICATED_ORDER_ID"), "unknown"),
            (Charge, api_error(404, "NOT_FOUND_PAYMENT"), "unknown"),
            (Charge, api_error(400, "A_CODE_TOSS_ADDS_LATER"), "unknown"),
            // a look-up's error decides nothing
            (LookUp, api_error(404, "NOT_FOUND_PAYMENT"), "not found"),
            (
                LookUp,
                api_error(401, "UNAUTHORIZED_KEY"),
                "look-up refused",
            ),
            (
                LookUp,
                api_error(403, "FORBIDDEN_REQUEST"),
                "look-up refused",
            ),
            (LookUp, api_error(400, "REJECT_CARD_PAYMENT"), "unknown"),
            (LookUp, api_error(400, "INVALID_STOPPED_CARD"), "unknown"),
            (LookUp, api_error(400, "INVALID_EMAIL"), "unknown"),
            // a re-send's refusal on our side says nothing about the first send
            (
                Resend,
                api_error(401, "UNAUTHORIZED_KEY"),
                "look-up refused",
            ),
            (
                Resend,
                api_error(400, "NOT_SUPPORTED_METHOD"),
                "look-up refused",
            ),
            (Resend, api_error(400, "INVALID_EMAIL"), "unknown"),
            (
                Resend,
                api_error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
                "unknown",
            ),
            (
                Resend,
                api_error(400, "REJECT_CARD_PAYMENT"),
                "soft decline",
            ),
            (Resend, payment("DONE", None), "approved"),
            (
                LookUp,
                api_error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
                "unknown",
            ),
            // a payment found, from either source
            (LookUp, payment("DONE", None), "approved"),
            (LookUp, payment("CANCELED", None), "review"),
            (LookUp, payment("PARTIAL_CANCELED", None), "review"),
            (Charge, payment("PARTIAL_CANCELED", None), "review"),
            (
                LookUp,
                payment("ABORTED", Some("REJECT_CARD_PAYMENT")),
                "soft decline",
            ),
            (
                LookUp,
                payment("ABORTED", Some("INVALID_CARD_EXPIRATION")),
                "needs new card",
            ),
            (
                LookUp,
                payment("ABORTED", Some("INVALID_REQUEST")),
                "our fault",
            ),
            (
                LookUp,
                payment("ABORTED", Some("INVALID_EMAIL")),
                "customer refused",
            ),
            (LookUp, payment("ABORTED", Some("PROVIDER_ERROR")), "review"),
            (
                LookUp,
                payment("ABORTED", Some("A_CODE_TOSS_ADDS_LATER")),
                "review",
            ),
            (LookUp, payment("ABORTED", None), "review"),
            (
                Charge,
                payment("EXPIRED", Some("REJECT_CARD_PAYMENT")),
                "soft decline",
            ),
            (LookUp, payment("IN_PROGRESS", None), "unknown"),
            (LookUp, payment("READY", None), "unknown"),
        ];
        for (source, answer, expected) in &table {
            let got = decide(*source, answer, &attempt());
            assert_eq!(name(&got), *expected, "{source:?} {answer:?}");
        }
    }

    #[test]
    fn a_payment_of_another_order_is_never_taken_for_this_attempts() {
        let mut other = payment("DONE", None).unwrap();
        other.order_id = "01JDQ4ZC1V3M5N7P9R2T4W6Y8A-1-2".into();

        let got = decide(Source::LookUp, &Ok(other), &attempt());

        assert!(
            matches!(&got, ChargeOutcome::Unknown { code, .. } if code == "ORDER_MISMATCH"),
            "{got:?}"
        );
    }

    #[test]
    fn an_approval_carries_what_toss_charged_and_when() {
        let got = decide(Source::Charge, &payment("DONE", None), &attempt());

        let ChargeOutcome::Approved {
            payment_key,
            approved_at,
            amount,
            ..
        } = got
        else {
            panic!("{got:?}")
        };
        assert_eq!(payment_key.as_str(), "tpay0000000000000001");
        assert_eq!(amount, Krw::new(3900));
        assert_eq!(
            approved_at.map(|t| t.to_rfc3339()),
            Some("2027-02-10T00:00:05+00:00".into())
        );
    }
}

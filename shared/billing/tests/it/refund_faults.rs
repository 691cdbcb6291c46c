//! Refunds under faults: Toss's answer to the cancel lost, a 5xx, a timeout, and a crash after
//! Toss refunded but before the ledger heard. In every case Toss refunds at most once, never
//! more than the payment, and the ledger converges to Toss's record.

use billing::RefundOutcome;
use chrono::{Duration, Utc};
use domain::{Krw, RefundBy, RefundStatus};
use toss_sandbox::{
    Endpoint, FaultAction, FaultConfig, FaultRule, LatencyConfig, SandboxConfig, TestCard,
};

use crate::harness::{World, operator_refund, settings};

fn cancel_fault(commit: bool, action: FaultAction) -> FaultConfig {
    FaultConfig {
        rules: vec![FaultRule {
            endpoint: Some(Endpoint::Cancel),
            probability: 1.0,
            times: Some(1),
            commit,
            customer_key: None,
            order_id: None,
            action,
        }],
        ..FaultConfig::default()
    }
}

/// Toss's record and the ledger agree: one cancel of the whole payment, one `DONE` refund
/// with its transactionKey, and every cancel request sent under one idempotency key.
async fn assert_refunded_once(w: &World, customer: &str) {
    let sub = w.subscription(customer).await;
    let paid = w.store.ledger(sub.id()).await.unwrap().remove(0);
    let snapshot = w.snapshot();
    let p = snapshot
        .payment_by_order_id(paid.order_id().as_str())
        .unwrap();
    assert_eq!(
        (p.cancels, p.balance_amount),
        (1, 0),
        "refunded once at Toss"
    );
    assert_eq!(snapshot.counters.canceled_amount, 3900);
    let refunds = w.store.refunds(sub.id()).await.unwrap();
    assert_eq!(refunds.len(), 1, "{refunds:#?}");
    assert_eq!(refunds[0].status, RefundStatus::Done);
    assert!(refunds[0].transaction_key.is_some());
    assert_eq!(paid.refunded(), Krw::new(3900));
    let keys: std::collections::BTreeSet<_> = snapshot
        .idempotency
        .iter()
        .filter(|i| i.endpoint == Endpoint::Cancel)
        .map(|i| i.idempotency_key.clone())
        .collect();
    assert_eq!(keys.len(), 1, "never re-sent under a new key: {keys:?}");
}

#[tokio::test]
async fn a_refund_whose_answer_is_lost_after_toss_refunded_is_settled_by_the_look_up() {
    let w = World::new().await;
    w.subscribe("user_lost", TestCard::Ok, Utc::now()).await;
    let paid = w.ledger("user_lost").await.remove(0);
    w.sandbox
        .sandbox()
        .set_faults(cancel_fault(true, FaultAction::DropConnection));

    let outcome = w
        .billing
        .refund(&operator_refund(&paid, None), Utc::now())
        .await
        .unwrap();

    assert!(
        matches!(outcome, RefundOutcome::Refunded { .. }),
        "{outcome:?}"
    );
    assert_refunded_once(&w, "user_lost").await;
}

#[tokio::test]
async fn a_refund_answered_with_a_5xx_stays_open_holds_its_amount_and_is_sent_again_under_its_own_key()
 {
    let w = World::new().await;
    w.subscribe("user_5xx", TestCard::Ok, Utc::now()).await;
    let paid = w.ledger("user_5xx").await.remove(0);
    w.sandbox.sandbox().set_faults(cancel_fault(
        false,
        FaultAction::Error {
            status: Some(500),
            code: "FAILED_INTERNAL_SYSTEM_PROCESSING".into(),
            message: None,
        },
    ));

    let first = w
        .billing
        .refund(&operator_refund(&paid, None), Utc::now())
        .await
        .unwrap();
    let held = w.ledger("user_5xx").await.remove(0).refunded();
    let cancels_then = w.snapshot().counters.canceled_amount;
    let settled = w
        .billing
        .settle_refunds(paid.order_id(), Utc::now())
        .await
        .unwrap();

    assert!(matches!(first, RefundOutcome::Unknown { .. }), "{first:?}");
    assert_eq!(
        held,
        Krw::new(3900),
        "the open refund holds the whole payment"
    );
    assert_eq!(cancels_then, 0, "Toss refunded nothing yet");
    assert!(
        matches!(settled.as_slice(), [RefundOutcome::Refunded { .. }]),
        "{settled:?}"
    );
    assert_refunded_once(&w, "user_5xx").await;
    assert_eq!(
        w.subscription("user_5xx").await.status(),
        domain::Status::Canceled
    );
}

#[tokio::test]
async fn a_refund_that_times_out_is_never_refunded_twice_and_converges_to_toss() {
    let config = SandboxConfig {
        faults: FaultConfig {
            latency: LatencyConfig {
                default: None,
                endpoints: [(Endpoint::Cancel, toss_sandbox::Latency::Fixed { ms: 6_000 })]
                    .into_iter()
                    .collect(),
            },
            rules: Vec::new(),
        },
        ..SandboxConfig::default()
    };
    let w = World::with(config, settings()).await;
    w.subscribe("user_slow", TestCard::Ok, Utc::now()).await;
    let paid = w.ledger("user_slow").await.remove(0);

    let first = w
        .billing
        .refund(&operator_refund(&paid, None), Utc::now())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    w.sandbox.sandbox().set_faults(FaultConfig::default());
    let settled = w
        .billing
        .settle_refunds(paid.order_id(), Utc::now())
        .await
        .unwrap();

    assert!(
        matches!(
            first,
            RefundOutcome::Unknown { .. } | RefundOutcome::Refunded { .. }
        ),
        "{first:?}"
    );
    assert!(
        settled.is_empty() || matches!(settled.as_slice(), [RefundOutcome::Refunded { .. }]),
        "{settled:?}"
    );
    assert_refunded_once(&w, "user_slow").await;
}

#[tokio::test]
async fn a_crash_after_toss_refunded_and_before_the_ledger_heard_is_converged_and_not_refunded_again()
 {
    let w = World::new().await;
    let now = Utc::now();
    w.subscribe("user_crash", TestCard::Ok, now).await;
    let paid = w.ledger("user_crash").await.remove(0);
    let payment_key = paid.payment_key().cloned().unwrap();
    // What the dead process left: the claim in the ledger, and Toss's cancel of it.
    let mut refund = domain::Refund::claim(
        paid.subscription_id().clone(),
        paid.period(),
        paid.attempt(),
        payment_key.clone(),
        1,
        Krw::new(3900),
        "고객 요청",
        RefundBy::Operator {
            name: "jisoo".into(),
        },
        now - Duration::hours(1),
    );
    // A full refund of the current period, as `Billing::refund` would have claimed it.
    refund.ends_subscription = true;
    refund.takes_back_credits = true;
    assert_eq!(
        w.store
            .claim_refund(&refund, paid.amount(), None)
            .await
            .unwrap(),
        store::RefundWrite::Written
    );
    w.billing
        .toss()
        .cancel_payment_from(
            &payment_key,
            &refund.cancel_reason(),
            Some(refund.amount),
            Some(Krw::new(3900)),
            &refund.idempotency_key(),
        )
        .await
        .unwrap();

    // A later operator retry (or the webhook) finds Toss's record first.
    let again = w
        .billing
        .refund(&operator_refund(&paid, None), now)
        .await
        .unwrap();
    let payment = w.billing.toss().payment(&payment_key).await.unwrap();
    let converged = w.billing.converge_refunds(&payment, now).await.unwrap();

    assert_eq!(
        again,
        RefundOutcome::NotRefundable {
            refundable: Krw::new(0)
        }
    );
    assert!(converged.recorded.is_empty() && converged.settled.is_empty());
    assert_refunded_once(&w, "user_crash").await;
    let sub = w.subscription("user_crash").await;
    assert_eq!(
        sub.status(),
        domain::Status::Canceled,
        "the claim's policy applied"
    );
}

//! An adversarial review of refunds and withdrawal (issue 12): each test is a path where the
//! money or the service went wrong on the reviewed code. A withdrawal Toss refused left the
//! customer with neither the service nor the money; a renewal in flight while a full refund
//! ended the subscription revived it; an unanswered refund stayed open forever unless someone
//! asked again; a console refund that raced one of ours was never recorded.

use std::collections::BTreeMap;

use billing::{ConsumeOutcome, ConsumeRequest, RefundOutcome, WithdrawOutcome};
use chrono::{DateTime, Duration, Utc};
use domain::{CancelReason, Krw, RefundStatus, Status, Subscription};
use toss_sandbox::{Endpoint, FaultAction, FaultConfig, FaultRule, Latency, TestCard};

use crate::harness::{World, operator_refund, options};

fn user_of(customer: &str) -> String {
    format!("user-of-{customer}")
}

fn sweep_time(sub: &Subscription) -> DateTime<Utc> {
    sub.next_charge_at().unwrap() + Duration::hours(9)
}

/// Toss answers the next cancel with `code` (its catalogue status), without cancelling.
fn cancel_answers(code: &str) -> FaultConfig {
    cancels_answer(code, 1)
}

/// Toss answers the next `times` cancels with `code`, without cancelling.
fn cancels_answer(code: &str, times: u32) -> FaultConfig {
    FaultConfig {
        rules: vec![FaultRule {
            endpoint: Some(Endpoint::Cancel),
            probability: 1.0,
            times: Some(times),
            commit: false,
            customer_key: None,
            order_id: None,
            action: FaultAction::Error {
                status: None,
                code: code.into(),
                message: None,
            },
        }],
        ..FaultConfig::default()
    }
}

async fn consume_one(w: &World, customer: &str, key: &str) -> ConsumeOutcome {
    let request = ConsumeRequest {
        idempotency_key: key.into(),
        amount: 1,
    };
    w.billing
        .consume_credits(&user_of(customer), &request, Utc::now())
        .await
        .unwrap()
}

/// What Toss holds of this customer's money: approved in total, refunded in total.
fn money_at_toss(w: &World, customer: &str) -> (i64, i64) {
    w.snapshot()
        .payments
        .iter()
        .filter(|p| p.customer_key == customer)
        .fold((0, 0), |(paid, back), p| {
            (
                paid + p.total_amount,
                back + p.total_amount - p.balance_amount,
            )
        })
}

#[tokio::test]
async fn a_withdrawal_toss_refuses_leaves_the_subscription_its_credits_and_its_card_as_they_were() {
    let w = World::new().await;
    let customer = "user_wd_refused";
    w.subscribe(customer, TestCard::Ok, Utc::now()).await;
    w.sandbox
        .sandbox()
        .set_faults(cancel_answers("REFUND_REJECTED"));

    let outcome = w
        .billing
        .withdraw(&user_of(customer), Utc::now())
        .await
        .unwrap();

    assert_eq!(
        outcome,
        WithdrawOutcome::Refused {
            code: "REFUND_REJECTED".into()
        }
    );
    let sub = w.subscription(customer).await;
    assert_eq!(
        (
            sub.status(),
            sub.credits(),
            sub.withdrawal().map(str::to_owned)
        ),
        (Status::Active, 30, None),
        "the service paid for goes on"
    );
    assert!(sub.billing_key().is_some());
    assert_eq!(w.live_billing_keys(customer), 1, "the card is still there");
    assert_eq!(
        w.ledger(customer).await[0].refunded(),
        Krw::new(0),
        "the amount held for the refund is free again"
    );
    assert_eq!(money_at_toss(&w, customer), (3900, 0));
    assert!(matches!(
        consume_one(&w, customer, "after-refusal").await,
        ConsumeOutcome::Consumed { credits: 29, .. }
    ));
}

#[tokio::test]
async fn a_refused_withdrawal_can_be_asked_again_and_toss_refunds_it_once() {
    let w = World::new().await;
    let customer = "user_wd_again";
    w.subscribe(customer, TestCard::Ok, Utc::now()).await;
    w.sandbox
        .sandbox()
        .set_faults(cancel_answers("NOT_CANCELABLE_PAYMENT"));
    let first = w
        .billing
        .withdraw(&user_of(customer), Utc::now())
        .await
        .unwrap();

    let second = w
        .billing
        .withdraw(&user_of(customer), Utc::now())
        .await
        .unwrap();

    assert!(
        matches!(first, WithdrawOutcome::Refused { .. }),
        "{first:?}"
    );
    assert!(
        matches!(second, WithdrawOutcome::Withdrawn { .. }),
        "{second:?}"
    );
    let sub = w.subscription(customer).await;
    assert_eq!(sub.status(), Status::Canceled);
    assert_eq!(sub.cancel_reason(), Some(CancelReason::Withdrawn));
    assert_eq!(sub.credits(), 0);
    assert_eq!(w.live_billing_keys(customer), 0);
    assert_eq!(money_at_toss(&w, customer), (3900, 3900));
    let refunds = w.store.refunds(sub.id()).await.unwrap();
    let statuses: Vec<&str> = refunds.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["REFUSED", "DONE"]);
}

#[tokio::test]
async fn an_unanswered_withdrawal_blocks_spending_until_toss_answers_and_a_refusal_then_changes_nothing()
 {
    let w = World::new().await;
    let customer = "user_wd_open";
    w.subscribe(customer, TestCard::Ok, Utc::now()).await;
    // Toss is down for the withdrawal and for the replay's attempt to settle it.
    w.sandbox
        .sandbox()
        .set_faults(cancels_answer("FAILED_INTERNAL_SYSTEM_PROCESSING", 2));

    let outcome = w
        .billing
        .withdraw(&user_of(customer), Utc::now())
        .await
        .unwrap();
    let while_open = consume_one(&w, customer, "while-open").await;
    let replay = w
        .billing
        .withdraw(&user_of(customer), Utc::now())
        .await
        .unwrap();
    // Toss refuses it when the sweep sends it again under its own key.
    w.sandbox
        .sandbox()
        .set_faults(cancel_answers("REFUND_REJECTED"));
    let summary = w.sweep(Utc::now()).await;

    assert!(
        matches!(outcome, WithdrawOutcome::Pending { .. }),
        "{outcome:?}"
    );
    assert_eq!(while_open, ConsumeOutcome::WithdrawalPending);
    assert!(
        matches!(replay, WithdrawOutcome::Pending { .. }),
        "{replay:?}"
    );
    assert_eq!(
        (summary.refunds_settled, summary.refunds_open),
        (1, 0),
        "{summary:?}"
    );
    let sub = w.subscription(customer).await;
    assert_eq!(
        (
            sub.status(),
            sub.credits(),
            sub.withdrawal().map(str::to_owned)
        ),
        (Status::Active, 30, None)
    );
    assert_eq!(money_at_toss(&w, customer), (3900, 0));
    assert!(matches!(
        consume_one(&w, customer, "while-open").await,
        ConsumeOutcome::Consumed { credits: 29, .. }
    ));
}

#[tokio::test]
async fn an_unanswered_refund_is_settled_by_the_next_sweep_without_anyone_asking() {
    let w = World::new().await;
    let customer = "user_rf_sweep";
    w.subscribe(customer, TestCard::Ok, Utc::now()).await;
    let paid = w.ledger(customer).await.remove(0);
    w.sandbox
        .sandbox()
        .set_faults(cancel_answers("FAILED_INTERNAL_SYSTEM_PROCESSING"));
    let first = w
        .billing
        .refund(&operator_refund(&paid, None), Utc::now())
        .await
        .unwrap();

    let summary = w.sweep(Utc::now()).await;
    let again = w.sweep(Utc::now()).await;

    assert!(matches!(first, RefundOutcome::Unknown { .. }), "{first:?}");
    assert_eq!(
        (summary.refunds_settled, summary.refunds_open),
        (1, 0),
        "{summary:?}"
    );
    assert_eq!(
        (again.refunds_settled, again.refunds_open),
        (0, 0),
        "a settled refund leaves the due index"
    );
    let sub = w.subscription(customer).await;
    assert_eq!(sub.status(), Status::Canceled);
    assert_eq!(sub.cancel_reason(), Some(CancelReason::Refunded));
    let refunds = w.store.refunds(sub.id()).await.unwrap();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].status, RefundStatus::Done);
    assert_eq!(money_at_toss(&w, customer), (3900, 3900));
}

#[tokio::test]
async fn a_console_refund_that_raced_an_unanswered_refund_of_ours_is_recorded_and_ours_released() {
    let w = World::new().await;
    let customer = "user_rf_race";
    w.subscribe(customer, TestCard::Ok, Utc::now()).await;
    let paid = w.ledger(customer).await.remove(0);
    w.sandbox
        .sandbox()
        .set_faults(cancel_answers("FAILED_INTERNAL_SYSTEM_PROCESSING"));
    let ours = w
        .billing
        .refund(&operator_refund(&paid, Some(1000)), Utc::now())
        .await
        .unwrap();
    // Meanwhile the merchant refunds everything in Toss's console.
    w.sandbox
        .sandbox()
        .console_cancel(paid.payment_key().unwrap().as_str(), "전액 환불", None)
        .unwrap();
    let payment = w
        .billing
        .toss()
        .payment(paid.payment_key().unwrap())
        .await
        .unwrap();
    let webhook = w
        .billing
        .converge_refunds(&payment, Utc::now())
        .await
        .unwrap();

    w.sweep(Utc::now()).await;

    assert!(matches!(ours, RefundOutcome::Unknown { .. }), "{ours:?}");
    assert_eq!(
        webhook.unrecorded.len(),
        1,
        "ours held 1,000 won: the console's 3,900 did not fit"
    );
    let sub = w.subscription(customer).await;
    let refunds = w.store.refunds(sub.id()).await.unwrap();
    let shape: Vec<(&str, u64, String)> = refunds
        .iter()
        .map(|r| (r.status.as_str(), r.amount.won(), r.by.as_stored()))
        .collect();
    assert_eq!(
        shape,
        [
            ("REFUSED", 1000, "operator:jisoo".to_owned()),
            ("DONE", 3900, "toss_console".to_owned())
        ]
    );
    assert_eq!(w.ledger(customer).await[0].refunded(), Krw::new(3900));
    assert_eq!(money_at_toss(&w, customer), (3900, 3900));
    assert_eq!(sub.status(), Status::Canceled);
    assert_eq!(sub.cancel_reason(), Some(CancelReason::Refunded));
}

/// The operator refunds the current period in full while the sweep's renewal of the next one
/// is in flight: Toss approved the renewal, its answer was lost, and the engine's look-up is
/// still on its way when the refund ends the subscription. The renewal must neither revive it
/// nor keep the customer's money.
#[tokio::test]
async fn a_renewal_in_flight_when_a_full_refund_ended_the_subscription_does_not_revive_it_or_keep_the_money()
 {
    let w = World::new().await;
    let customer = "user_rf_inflight";
    let sub = w.subscribe(customer, TestCard::Ok, Utc::now()).await;
    let paid = w.ledger(customer).await.remove(0);
    let as_of = sweep_time(&sub);
    // Look-ups by order id take 4 s (the sweep's preflight too); the renewal is approved at
    // once and its answer lost, so the engine looks it up.
    let mut latency = BTreeMap::new();
    latency.insert(Endpoint::GetPaymentByOrderId, Latency::Fixed { ms: 4000 });
    w.sandbox.sandbox().set_faults(FaultConfig {
        latency: toss_sandbox::faults::LatencyConfig {
            default: None,
            endpoints: latency,
        },
        rules: vec![FaultRule {
            endpoint: Some(Endpoint::Charge),
            probability: 1.0,
            times: Some(1),
            commit: true,
            customer_key: None,
            order_id: None,
            action: FaultAction::DropConnection,
        }],
    });

    let opts = options(as_of);
    let (swept, refunded) = tokio::join!(w.billing.sweep(&opts), async {
        // Toss approved the renewal by then; the engine waits for its look-up.
        tokio::time::sleep(std::time::Duration::from_millis(5500)).await;
        w.billing
            .refund(&operator_refund(&paid, None), as_of)
            .await
            .unwrap()
    });
    swept.ok();
    assert_eq!(
        w.done_payments(customer)
            + w.snapshot()
                .payments
                .iter()
                .filter(|p| p.customer_key == customer && p.status != "DONE")
                .count(),
        2,
        "Toss approved the renewal while the refund was under way"
    );
    // Whatever the give-back left open is settled by the next run.
    w.sandbox.sandbox().set_faults(FaultConfig::default());
    w.sweep(as_of + Duration::minutes(10)).await;

    assert!(
        matches!(refunded, RefundOutcome::Refunded { ended: true, .. }),
        "{refunded:?}"
    );
    let sub = w.subscription(customer).await;
    assert_eq!(
        (sub.status(), sub.cancel_reason()),
        (Status::Canceled, Some(CancelReason::Refunded)),
        "an ended subscription stays ended"
    );
    assert_eq!(sub.credits(), 0);
    let (paid_at_toss, back) = money_at_toss(&w, customer);
    assert_eq!(
        paid_at_toss, back,
        "every won Toss took after the end was given back"
    );
    let ledger = w.store.ledger(sub.id()).await.unwrap();
    let refunds = w.store.refunds(sub.id()).await.unwrap();
    let done: u64 = ledger
        .iter()
        .filter(|a| a.status() == domain::AttemptStatus::Done)
        .map(|a| a.amount().won())
        .sum();
    let refunded_in_ledger: u64 = refunds
        .iter()
        .filter(|r| r.status == RefundStatus::Done)
        .map(|r| r.amount.won())
        .sum();
    assert_eq!(
        (done as i64, refunded_in_ledger as i64),
        (paid_at_toss, back),
        "the ledger tells the same: {ledger:#?} {refunds:#?}"
    );
}

#[tokio::test]
async fn a_pending_withdrawal_asked_again_once_toss_is_back_is_settled_at_once_and_refunded_once() {
    let w = World::new().await;
    let customer = "user_wd_again_later";
    w.subscribe(customer, TestCard::Ok, Utc::now()).await;
    w.sandbox
        .sandbox()
        .set_faults(cancel_answers("FAILED_INTERNAL_SYSTEM_PROCESSING"));
    let first = w
        .billing
        .withdraw(&user_of(customer), Utc::now())
        .await
        .unwrap();

    let again = w
        .billing
        .withdraw(&user_of(customer), Utc::now())
        .await
        .unwrap();
    let replay = w
        .billing
        .withdraw(&user_of(customer), Utc::now())
        .await
        .unwrap();

    assert!(
        matches!(first, WithdrawOutcome::Pending { .. }),
        "{first:?}"
    );
    assert!(
        matches!(&again, WithdrawOutcome::Withdrawn { subscription, .. } if subscription.status() == Status::Canceled),
        "{again:?}"
    );
    assert!(
        matches!(replay, WithdrawOutcome::Withdrawn { .. }),
        "{replay:?}"
    );
    assert_eq!(money_at_toss(&w, customer), (3900, 3900));
    let sub = w.subscription(customer).await;
    assert_eq!(w.store.refunds(sub.id()).await.unwrap().len(), 1);
    assert_eq!(w.live_billing_keys(customer), 0);
}

/// The merchant refunds the payment in Toss's console while the customer's withdrawal is on
/// its way to Toss: Toss refuses ours (the money is back already), and the console's cancel,
/// which did not fit while ours held the amount, is recorded at once: the customer is told
/// the subscription ended with the money back, not "refused".
#[tokio::test]
async fn a_console_refund_that_beat_a_withdrawal_to_toss_ends_the_subscription_with_the_money_back()
{
    let w = World::new().await;
    let customer = "user_wd_console";
    w.subscribe(customer, TestCard::Ok, Utc::now()).await;
    let paid = w.ledger(customer).await.remove(0);
    let mut latency = BTreeMap::new();
    latency.insert(Endpoint::Cancel, Latency::Fixed { ms: 2000 });
    w.sandbox.sandbox().set_faults(FaultConfig {
        latency: toss_sandbox::faults::LatencyConfig {
            default: None,
            endpoints: latency,
        },
        rules: vec![],
    });

    let user = user_of(customer);
    let (outcome, ()) = tokio::join!(w.billing.withdraw(&user, Utc::now()), async {
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        w.sandbox
            .sandbox()
            .console_cancel(paid.payment_key().unwrap().as_str(), "전액 환불", None)
            .unwrap();
    });

    let outcome = outcome.unwrap();
    assert!(
        matches!(&outcome, WithdrawOutcome::Withdrawn { subscription, .. } if subscription.status() == Status::Canceled),
        "{outcome:?}"
    );
    let sub = w.subscription(customer).await;
    assert_eq!(sub.withdrawal(), None, "no lock left");
    assert_eq!(sub.credits(), 0);
    let refunds = w.store.refunds(sub.id()).await.unwrap();
    let shape: Vec<(&str, String)> = refunds
        .iter()
        .map(|r| (r.status.as_str(), r.by.as_stored()))
        .collect();
    assert_eq!(
        shape,
        [
            ("REFUSED", "withdrawal".to_owned()),
            ("DONE", "toss_console".to_owned())
        ]
    );
    assert_eq!(w.ledger(customer).await[0].refunded(), Krw::new(3900));
    assert_eq!(money_at_toss(&w, customer), (3900, 3900), "refunded once");
}

//! Refunds against DynamoDB Local and the sandbox: the ledger's refunds are checked against
//! Toss's own record of each payment (its balance and its cancels).

use billing::RefundOutcome;
use chrono::{Duration, Utc};
use domain::{
    CancelReason, ChargeAttempt, CreditChange, IdempotencyKey, Krw, RefundBy, RefundStatus, Status,
};
use toss_sandbox::TestCard;

use crate::harness::{World, operator_refund};

/// Toss's record of the payment: (balance, number of cancels).
fn at_toss(w: &World, attempt: &ChargeAttempt) -> (i64, usize) {
    let s = w.snapshot();
    let p = s.payment_by_order_id(attempt.order_id().as_str()).unwrap();
    (p.balance_amount, p.cancels)
}

/// The ledger's refunds of this customer that hold money (done or open), and their sum.
async fn ledger_refunds(w: &World, customer: &str) -> (Vec<domain::Refund>, u64) {
    let sub = w.subscription(customer).await;
    let refunds = w.store.refunds(sub.id()).await.unwrap();
    let sum = refunds
        .iter()
        .filter(|r| r.status == RefundStatus::Done)
        .map(|r| r.amount.won())
        .sum();
    (refunds, sum)
}

#[tokio::test]
async fn a_full_refund_of_the_current_period_ends_the_subscription_and_takes_back_its_credits() {
    let w = World::new().await;
    let now = Utc::now();
    w.subscribe("user_full", TestCard::Ok, now).await;
    let paid = w.ledger("user_full").await.remove(0);

    let outcome = w
        .billing
        .refund(&operator_refund(&paid, None), now)
        .await
        .unwrap();

    let RefundOutcome::Refunded {
        refund,
        ended,
        credits_taken,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(refund.amount, Krw::new(3900));
    assert!(ended);
    assert_eq!(credits_taken, 30);
    assert_eq!(at_toss(&w, &paid), (0, 1));
    let sub = w.subscription("user_full").await;
    assert_eq!(sub.status(), Status::Canceled);
    assert_eq!(sub.cancel_reason(), Some(CancelReason::Refunded));
    assert_eq!(sub.credits(), 0);
    assert!(sub.billing_key().is_none(), "the card is deleted at Toss");
    assert_eq!(w.live_billing_keys("user_full"), 0);
    let entries = w.store.credit_entries(sub.id()).await.unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.change == CreditChange::Revoke && e.amount == 30)
    );
    assert_eq!(domain::replay_balance(&entries), Some(0));
    let (refunds, sum) = ledger_refunds(&w, "user_full").await;
    assert_eq!(sum, 3900);
    assert_eq!(refunds.len(), 1);
    assert!(refunds[0].transaction_key.is_some());
    let paid = w.ledger("user_full").await.remove(0);
    assert_eq!(paid.refunded(), Krw::new(3900));
}

#[tokio::test]
async fn a_partial_refund_gives_money_back_and_leaves_the_subscription_and_its_credits_alone() {
    let w = World::new().await;
    let now = Utc::now();
    w.subscribe("user_part", TestCard::Ok, now).await;
    let paid = w.ledger("user_part").await.remove(0);

    let outcome = w
        .billing
        .refund(&operator_refund(&paid, Some(1000)), now)
        .await
        .unwrap();

    assert!(
        matches!(
            outcome,
            RefundOutcome::Refunded {
                ended: false,
                credits_taken: 0,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(at_toss(&w, &paid), (2900, 1));
    let sub = w.subscription("user_part").await;
    assert_eq!(sub.status(), Status::Active);
    assert_eq!(sub.credits(), 30);
    assert_eq!(ledger_refunds(&w, "user_part").await.1, 1000);
}

#[tokio::test]
async fn two_partial_refunds_use_up_the_balance_and_a_third_is_refused_before_toss_is_asked() {
    let w = World::new().await;
    let now = Utc::now();
    w.subscribe("user_two", TestCard::Ok, now).await;
    let paid = w.ledger("user_two").await.remove(0);

    let first = w
        .billing
        .refund(&operator_refund(&paid, Some(2000)), now)
        .await
        .unwrap();
    let too_much = w
        .billing
        .refund(&operator_refund(&paid, Some(2000)), now)
        .await
        .unwrap();
    let second = w
        .billing
        .refund(&operator_refund(&paid, Some(1900)), now)
        .await
        .unwrap();
    let third = w
        .billing
        .refund(&operator_refund(&paid, Some(1)), now)
        .await
        .unwrap();

    assert!(matches!(first, RefundOutcome::Refunded { .. }), "{first:?}");
    assert_eq!(
        too_much,
        RefundOutcome::NotRefundable {
            refundable: Krw::new(1900)
        }
    );
    assert!(
        matches!(second, RefundOutcome::Refunded { .. }),
        "{second:?}"
    );
    assert_eq!(
        third,
        RefundOutcome::NotRefundable {
            refundable: Krw::new(0)
        }
    );
    assert_eq!(at_toss(&w, &paid), (0, 2));
    let (refunds, sum) = ledger_refunds(&w, "user_two").await;
    assert_eq!((refunds.len(), sum), (2, 3900));
}

#[tokio::test]
async fn racing_refunds_never_together_exceed_the_payment() {
    let w = World::new().await;
    let now = Utc::now();
    w.subscribe("user_race", TestCard::Ok, now).await;
    let paid = w.ledger("user_race").await.remove(0);

    let request = operator_refund(&paid, Some(1500));
    let runs = (0..6).map(|_| w.billing.refund(&request, now));
    let outcomes = futures::future::join_all(runs).await;

    let refunded = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(RefundOutcome::Refunded { .. })))
        .count();
    assert!(refunded <= 2, "{outcomes:?}");
    let (balance, cancels) = at_toss(&w, &paid);
    assert_eq!(i64::try_from(3900 - 1500 * cancels).unwrap(), balance);
    let (_, sum) = ledger_refunds(&w, "user_race").await;
    assert_eq!(sum, 1500 * cancels as u64, "the ledger is Toss's record");
    let paid = w.ledger("user_race").await.remove(0);
    assert!(paid.refunded().won() <= 3900);
}

#[tokio::test]
async fn a_full_refund_of_an_old_period_leaves_the_subscription_alone() {
    let w = World::new().await;
    let start = Utc::now() - Duration::days(40);
    let sub = w.subscribe("user_old", TestCard::Ok, start).await;
    w.sweep(sub.next_charge_at().unwrap() + Duration::hours(9))
        .await;
    let ledger = w.ledger("user_old").await;
    assert_eq!(ledger.len(), 2, "{ledger:#?}");
    let old = &ledger[0];

    let outcome = w
        .billing
        .refund(&operator_refund(old, None), Utc::now())
        .await
        .unwrap();

    assert!(
        matches!(
            outcome,
            RefundOutcome::Refunded {
                ended: false,
                credits_taken: 0,
                ..
            }
        ),
        "{outcome:?}"
    );
    let sub = w.subscription("user_old").await;
    assert_eq!(sub.status(), Status::Active);
    assert_eq!(sub.credits(), 30);
    assert_eq!(at_toss(&w, old), (0, 1));
}

#[tokio::test]
async fn a_refund_made_in_toss_s_console_is_recorded_once_however_often_it_is_converged() {
    let w = World::new().await;
    let now = Utc::now();
    w.subscribe("user_console", TestCard::Ok, now).await;
    let paid = w.ledger("user_console").await.remove(0);
    let payment_key = paid.payment_key().cloned().unwrap();
    // The merchant refunds 900 won in Toss's console: a cancel no ledger entry names.
    w.billing
        .toss()
        .cancel_payment(
            &payment_key,
            "고객 변심",
            Some(Krw::new(900)),
            &IdempotencyKey::parse("console-1").unwrap(),
        )
        .await
        .unwrap();
    let payment = w.billing.toss().payment(&payment_key).await.unwrap();

    let first = w.billing.converge_refunds(&payment, now).await.unwrap();
    let again = w.billing.converge_refunds(&payment, now).await.unwrap();

    assert_eq!(first.recorded.len(), 1);
    assert!(again.recorded.is_empty() && again.settled.is_empty());
    let (refunds, sum) = ledger_refunds(&w, "user_console").await;
    assert_eq!((refunds.len(), sum), (1, 900));
    assert_eq!(refunds[0].by, RefundBy::TossConsole);
    assert_eq!(refunds[0].reason, "고객 변심");
    assert_eq!(
        w.subscription("user_console").await.status(),
        Status::Active
    );
    // What is left to refund is Toss's balance, not the whole payment.
    let rest = w
        .billing
        .refund(&operator_refund(&paid, Some(3900)), now)
        .await
        .unwrap();
    assert_eq!(
        rest,
        RefundOutcome::NotRefundable {
            refundable: Krw::new(3000)
        }
    );
}

#[tokio::test]
async fn a_full_refund_made_in_toss_s_console_ends_the_subscription_like_ours() {
    let w = World::new().await;
    let now = Utc::now();
    w.subscribe("user_console_full", TestCard::Ok, now).await;
    let paid = w.ledger("user_console_full").await.remove(0);
    let payment_key = paid.payment_key().cloned().unwrap();
    w.billing
        .toss()
        .cancel_payment(
            &payment_key,
            "전액 환불",
            None,
            &IdempotencyKey::parse("console-2").unwrap(),
        )
        .await
        .unwrap();
    let payment = w.billing.toss().payment(&payment_key).await.unwrap();

    let converged = w.billing.converge_refunds(&payment, now).await.unwrap();

    assert_eq!(converged.recorded.len(), 1);
    let sub = w.subscription("user_console_full").await;
    assert_eq!(sub.status(), Status::Canceled);
    assert_eq!(sub.cancel_reason(), Some(CancelReason::Refunded));
    assert_eq!(sub.credits(), 0);
    assert_eq!(w.live_billing_keys("user_console_full"), 0);
}

use billing::RegistrationOutcome;
use chrono::{Duration, Utc};
use domain::{AttemptStatus, Status};
use toss_sandbox::{SandboxConfig, TestCard};

use crate::harness::{World, kst, settings};

/// 09:00 KST on the day the subscription is next due: when the daily sweep runs.
fn sweep_time(sub: &domain::Subscription) -> chrono::DateTime<Utc> {
    sub.next_charge_at().unwrap() + Duration::hours(9)
}

#[tokio::test]
async fn a_redirect_registers_the_card_and_charges_the_first_month_once() {
    let w = World::new().await;
    let sub = w.subscribe("user_first", TestCard::Ok, Utc::now()).await;

    assert_eq!(sub.status(), Status::Active);
    assert_eq!(sub.credits(), 30);
    assert_eq!(
        sub.card_number_masked().map(|n| n.contains('*')),
        Some(true)
    );
    let ledger = w.ledger("user_first").await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].status(), AttemptStatus::Done);
    assert_eq!(ledger[0].amount().won(), 3900);
    assert_eq!(w.done_payments("user_first"), 1);
    w.assert_ledger_matches_toss("user_first").await;
}

#[tokio::test]
async fn loading_the_same_redirect_again_charges_nothing_more_and_lands_on_the_same_result() {
    let w = World::new().await;
    let redirect = w.redirect("user_reload", TestCard::Ok).await;
    let first = w
        .billing
        .register_card(&redirect, Utc::now())
        .await
        .unwrap();
    let again = w
        .billing
        .register_card(&redirect, Utc::now())
        .await
        .unwrap();
    let third = w
        .billing
        .register_card(&redirect, Utc::now())
        .await
        .unwrap();

    assert!(matches!(first, RegistrationOutcome::Subscribed { .. }));
    assert_eq!(again, first);
    assert_eq!(third, first);
    assert_eq!(w.done_payments("user_reload"), 1);
    assert_eq!(
        w.snapshot().counters.charge_requests,
        1,
        "a reload must not even ask Toss"
    );
    assert_eq!(w.snapshot().counters.billing_keys_issued, 1);
}

#[tokio::test]
async fn an_auth_key_presented_again_with_another_customer_key_is_refused_without_charging() {
    let w = World::new().await;
    let mut redirect = w.redirect("user_owner", TestCard::Ok).await;
    w.billing
        .register_card(&redirect, Utc::now())
        .await
        .unwrap();
    redirect.customer_key = domain::CustomerKey::parse("user_thief").unwrap();

    let outcome = w
        .billing
        .register_card(&redirect, Utc::now())
        .await
        .unwrap();

    assert_eq!(
        outcome,
        RegistrationOutcome::Failed {
            code: billing::FailureCode::CustomerMismatch
        }
    );
    assert_eq!(w.done_payments("user_thief"), 0);
    assert!(
        w.store
            .customer_subscription(&redirect.customer_key)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_card_rejected_at_registration_creates_no_subscription_and_charges_nothing() {
    let w = World::new().await;
    let redirect = w.redirect("user_rejected", TestCard::InvalidNumber).await;
    let outcome = w
        .billing
        .register_card(&redirect, Utc::now())
        .await
        .unwrap();
    let again = w
        .billing
        .register_card(&redirect, Utc::now())
        .await
        .unwrap();

    assert_eq!(
        outcome,
        RegistrationOutcome::Failed {
            code: billing::FailureCode::toss("INVALID_CARD_NUMBER")
        }
    );
    assert_eq!(again, outcome);
    assert!(
        w.store
            .customer_subscription(&redirect.customer_key)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(w.snapshot().counters.charge_requests, 0);
}

#[tokio::test]
async fn a_sweep_a_month_later_charges_exactly_once_and_a_second_sweep_at_the_same_time_charges_nothing()
 {
    let w = World::new().await;
    let sub = w.subscribe("user_monthly", TestCard::Ok, Utc::now()).await;
    let as_of = sweep_time(&sub);

    let before = w.sweep(as_of - Duration::days(1)).await;
    let first = w.sweep(as_of).await;
    let second = w.sweep(as_of).await;

    assert_eq!(before.charged, 0, "not due the day before");
    assert_eq!(
        (first.due, first.charged, first.total_charged_krw),
        (1, 1, 3900)
    );
    assert_eq!((second.due, second.charged), (0, 0));
    let renewed = w.subscription("user_monthly").await;
    assert_eq!(renewed.next_period(), 2);
    assert_eq!(renewed.anchor(), sub.anchor());
    assert_eq!(w.done_payments("user_monthly"), 2);
    w.assert_ledger_matches_toss("user_monthly").await;
}

#[tokio::test]
async fn three_sweeps_running_at_once_charge_each_due_subscription_once() {
    let w = World::new().await;
    let customers: Vec<String> = (0..12).map(|i| format!("user_race_{i}")).collect();
    let mut as_of = Utc::now();
    for c in &customers {
        as_of = sweep_time(&w.subscribe(c, TestCard::Ok, Utc::now()).await);
    }

    let (a, b, c) = tokio::join!(w.sweep(as_of), w.sweep(as_of), w.sweep(as_of));

    assert_eq!(a.charged + b.charged + c.charged, 12, "{a:?} {b:?} {c:?}");
    for customer in &customers {
        assert_eq!(w.done_payments(customer), 2);
        w.assert_ledger_matches_toss(customer).await;
    }
}

#[tokio::test]
async fn a_jan_31_anchor_renews_on_feb_28_then_mar_31_then_apr_30() {
    // The sandbox's clock (which stamps approvedAt) is moved to 2027-01-31 10:00 KST.
    let start = kst("2027-01-31T10:00:00+09:00");
    let offset = (start - Utc::now()).num_seconds();
    let w = World::with(
        SandboxConfig::default().with_clock_offset_seconds(offset),
        settings(),
    )
    .await;
    let sub = w.subscribe("user_jan31", TestCard::Ok, start).await;
    assert_eq!(sub.anchor().unwrap().date_naive(), start.date_naive());

    let mut dues = Vec::new();
    for _ in 0..3 {
        let sub = w.subscription("user_jan31").await;
        let due = sub.next_charge_at().unwrap();
        dues.push(due.with_timezone(&domain::SEOUL).date_naive().to_string());
        assert_eq!(w.sweep(due + Duration::hours(9)).await.charged, 1);
    }

    assert_eq!(dues, ["2027-02-28", "2027-03-31", "2027-04-30"]);
    w.assert_ledger_matches_toss("user_jan31").await;
}

#[tokio::test]
async fn a_declined_renewal_walks_through_the_retries_to_cancellation_and_deletes_the_billing_key()
{
    let w = World::new().await;
    let sub = w
        .subscribe("user_dunning", TestCard::DeclineRenewals, Utc::now())
        .await;
    let first_fail = sweep_time(&sub);

    let s0 = w.sweep(first_fail).await;
    let past_due = w.subscription("user_dunning").await;
    assert_eq!((s0.declined, s0.retry_scheduled), (1, 1));
    assert_eq!(past_due.status(), Status::PastDue);
    let retry_days: Vec<i64> = {
        let mut days = Vec::new();
        let mut s = past_due;
        while s.status() == Status::PastDue {
            let at = sweep_time(&s);
            days.push((domain::kst_day_start(at) - domain::kst_day_start(first_fail)).num_days());
            w.sweep(at).await;
            s = w.subscription("user_dunning").await;
        }
        days
    };

    assert_eq!(retry_days, [1, 3, 5]);
    let canceled = w.subscription("user_dunning").await;
    assert_eq!(canceled.status(), Status::Canceled);
    assert!(
        canceled.billing_key().is_none(),
        "the billing key is forgotten"
    );
    assert_eq!(
        w.snapshot().counters.billing_keys_deleted,
        1,
        "and deleted at Toss"
    );
    let ledger = w.ledger("user_dunning").await;
    let statuses: Vec<_> = ledger.iter().map(|a| a.status()).collect();
    assert_eq!(
        statuses,
        [
            AttemptStatus::Done,
            AttemptStatus::Declined,
            AttemptStatus::Declined,
            AttemptStatus::Declined,
            AttemptStatus::Declined
        ]
    );
    assert!(
        ledger[1..]
            .iter()
            .all(|a| a.error_code() == Some("REJECT_CARD_PAYMENT"))
    );
    let orders: std::collections::HashSet<_> =
        ledger.iter().map(|a| a.order_id().clone()).collect();
    assert_eq!(
        orders.len(),
        5,
        "each definite decline is retried under a new order id"
    );
    // Its credits lapsed with it, and the ledger says so.
    assert_eq!(canceled.credits(), 0);
    let entries = w.store.credit_entries(canceled.id()).await.unwrap();
    let last = entries.last().unwrap();
    assert_eq!(
        (last.change, last.amount, last.reference.as_str()),
        (domain::CreditChange::Expire, 30, "canceled")
    );
    w.assert_ledger_matches_toss("user_dunning").await;
}

#[tokio::test]
async fn a_stopped_card_skips_the_retries_that_cannot_help_and_is_canceled_when_the_window_closes()
{
    let w = World::new().await;
    let sub = w.subscribe("user_stopped", TestCard::Ok, Utc::now()).await;
    // The card is stopped after the first month.
    w.sandbox.sandbox().add_decline(toss_sandbox::DeclineRule {
        customer_key: "user_stopped".into(),
        code: "INVALID_STOPPED_CARD".into(),
        status: Some(400),
        message: None,
        times: None,
    });
    let first_fail = sweep_time(&sub);

    w.sweep(first_fail).await;
    let waiting = w.subscription("user_stopped").await;
    let quiet = w.sweep(first_fail + Duration::days(1)).await;
    let close = w.sweep(first_fail + Duration::days(5)).await;

    assert_eq!(waiting.status(), Status::PastDue);
    assert!(waiting.dunning().unwrap().card_unusable);
    assert_eq!(quiet.due, 0, "no retry on day 1: it cannot succeed");
    assert_eq!(close.canceled, 1);
    assert_eq!(
        w.subscription("user_stopped").await.status(),
        Status::Canceled
    );
    assert_eq!(
        w.snapshot().counters.charge_requests,
        2,
        "first month + the one declined renewal"
    );
}

#[tokio::test]
async fn a_new_card_while_past_due_is_charged_at_once_and_resumes_on_the_original_anchor() {
    let w = World::new().await;
    let sub = w.subscribe("user_newcard", TestCard::Ok, Utc::now()).await;
    w.sandbox.sandbox().add_decline(toss_sandbox::DeclineRule {
        customer_key: "user_newcard".into(),
        code: "INVALID_STOPPED_CARD".into(),
        status: Some(400),
        message: None,
        times: Some(1),
    });
    let first_fail = sweep_time(&sub);
    w.sweep(first_fail).await;
    assert_eq!(
        w.subscription("user_newcard").await.status(),
        Status::PastDue
    );

    let outcome = w
        .billing
        .register_card(
            &w.redirect("user_newcard", TestCard::Ok).await,
            first_fail + Duration::days(2),
        )
        .await
        .unwrap();

    let resumed = w.subscription("user_newcard").await;
    assert!(
        matches!(outcome, RegistrationOutcome::Subscribed { .. }),
        "{outcome:?}"
    );
    assert_eq!(resumed.id(), sub.id(), "the same subscription resumes");
    assert_eq!(resumed.status(), Status::Active);
    assert_eq!(resumed.anchor(), sub.anchor());
    assert_eq!(resumed.next_period(), 2);
    assert_eq!(
        resumed.next_charge_at(),
        Some(domain::period_due_at(sub.anchor().unwrap(), 2))
    );
    assert_eq!(
        w.snapshot().counters.billing_keys_deleted,
        1,
        "the stopped card's key is deleted"
    );
    w.assert_ledger_matches_toss("user_newcard").await;
}

#[tokio::test]
async fn a_new_card_on_an_active_subscription_replaces_it_without_charging() {
    let w = World::new().await;
    let sub = w.subscribe("user_swap", TestCard::Ok, Utc::now()).await;

    let outcome = w
        .billing
        .register_card(&w.redirect("user_swap", TestCard::Check).await, Utc::now())
        .await
        .unwrap();

    assert_eq!(
        outcome,
        RegistrationOutcome::CardReplaced {
            subscription_id: sub.id().clone()
        }
    );
    assert_eq!(w.done_payments("user_swap"), 1);
    let swapped = w.subscription("user_swap").await;
    assert_ne!(swapped.billing_key(), sub.billing_key());
    assert_eq!(swapped.next_charge_at(), sub.next_charge_at());
}

#[tokio::test]
async fn a_canceled_customer_who_registers_again_starts_a_new_subscription() {
    let w = World::new().await;
    let mut old = w.subscribe("user_again", TestCard::Ok, Utc::now()).await;
    old.schedule_cancel(Utc::now());
    w.store.save_subscription(&mut old).await.unwrap();
    let ended = w.sweep(sweep_time(&old)).await;
    assert_eq!(
        (ended.canceled, ended.charged),
        (1, 0),
        "period end cancels without charging"
    );

    let fresh = w.subscribe("user_again", TestCard::Ok, Utc::now()).await;

    assert_ne!(fresh.id(), old.id());
    assert_eq!(fresh.status(), Status::Active);
    assert_eq!(w.done_payments("user_again"), 2);
}

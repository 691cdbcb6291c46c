//! The independent money review's findings (issue 9), each reproduced through the real engine
//! against DynamoDB Local and the sandbox. Every test here failed before its fix.

use chrono::{DateTime, Duration, Utc};
use domain::{AttemptStatus, IdempotencyKey, OrderId, PaymentKey, Status, Subscription};
use toss_sandbox::{Endpoint, FaultAction, FaultConfig, FaultRule, TestCard};

use crate::harness::{World, options};

fn sweep_time(sub: &Subscription) -> DateTime<Utc> {
    sub.next_charge_at().unwrap() + Duration::hours(9)
}

fn renewal_order(sub: &Subscription) -> OrderId {
    OrderId::for_attempt(sub.id(), 1, 1)
}

fn rule(
    endpoint: Endpoint,
    order_id: Option<&OrderId>,
    commit: bool,
    action: FaultAction,
) -> FaultRule {
    FaultRule {
        endpoint: Some(endpoint),
        probability: 1.0,
        times: Some(1),
        commit,
        customer_key: None,
        order_id: order_id.map(|o| o.as_str().to_owned()),
        action,
    }
}

fn error(status: u16, code: &str) -> FaultAction {
    FaultAction::Error {
        status: Some(status),
        code: code.into(),
        message: None,
    }
}

/// A 200 answer carrying a payment Toss reports as `ABORTED` with this failure code.
fn aborted(order_id: &OrderId, code: &str) -> FaultAction {
    let body = serde_json::json!({
        "paymentKey": "tabort0000000000000001",
        "orderId": order_id.as_str(),
        "orderName": "Saju맛피아 Pro 월 구독",
        "status": "ABORTED",
        "type": "BILLING",
        "totalAmount": 3900,
        "balanceAmount": 0,
        "requestedAt": "2027-01-10T09:00:00+09:00",
        "approvedAt": null,
        "failure": {"code": code, "message": "실패"},
        "cancels": null,
    });
    FaultAction::MalformedBody {
        status: Some(200),
        body: Some(body.to_string()),
    }
}

fn faults(rules: Vec<FaultRule>) -> FaultConfig {
    FaultConfig {
        rules,
        ..FaultConfig::default()
    }
}

/// The renewal is approved at Toss, its answer is lost, and the immediate look-up fails too:
/// the attempt is left `UNKNOWN` with the money taken.
async fn approved_but_unknown(w: &World, sub: &Subscription) -> DateTime<Utc> {
    let order = renewal_order(sub);
    w.sandbox.sandbox().set_faults(faults(vec![
        rule(
            Endpoint::Charge,
            Some(&order),
            true,
            FaultAction::DropConnection,
        ),
        rule(
            Endpoint::GetPaymentByOrderId,
            Some(&order),
            false,
            error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
        ),
    ]));
    let as_of = sweep_time(sub);
    let summary = w.sweep(as_of).await;
    assert_eq!(summary.unknown_outcome, 1, "{summary:?}");
    as_of
}

// ---- finding 1 ---------------------------------------------------------------------------

#[tokio::test]
async fn a_refused_look_up_during_a_take_over_settles_nothing_and_the_next_run_reconciles_the_same_order()
 {
    let w = World::new().await;
    let sub = w.subscribe("user_f1", TestCard::Ok, Utc::now()).await;
    let as_of = approved_but_unknown(&w, &sub).await;
    let order = renewal_order(&sub);
    // At the next run the look-up of that order is refused (say the key was rotated mid-run).
    w.sandbox.sandbox().set_faults(faults(vec![rule(
        Endpoint::GetPaymentByOrderId,
        Some(&order),
        false,
        error(403, "FORBIDDEN_REQUEST"),
    )]));

    let refused = w
        .billing
        .sweep(&options(as_of + Duration::minutes(10)))
        .await;

    assert!(
        matches!(&refused, Err(billing::Error::OurFault { .. })),
        "a refused look-up stops the run: {refused:?}"
    );
    let open = w.store.attempt(sub.id(), 1, 1).await.unwrap().unwrap();
    assert!(
        !open.status().is_final(),
        "a look-up's error never settles the attempt: {open:?}"
    );
    // The key is fixed: the next run finds the approved charge under the same order id.
    let fixed = w.sweep(as_of + Duration::minutes(20)).await;
    assert_eq!((fixed.charged, fixed.reconciled), (1, 1), "{fixed:?}");
    assert_eq!(w.done_payments("user_f1"), 2, "first month and one renewal");
    assert_eq!(
        w.ledger("user_f1").await.len(),
        2,
        "no attempt under a new order id"
    );
    w.assert_ledger_matches_toss("user_f1").await;
}

// ---- finding 4 ---------------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_payment_found_refunded_goes_to_an_operator_not_to_dunning_and_is_never_charged_again()
 {
    for partial in [false, true] {
        let w = World::new().await;
        let sub = w.subscribe("user_f4c", TestCard::Ok, Utc::now()).await;
        let as_of = approved_but_unknown(&w, &sub).await;
        // Someone refunds that payment in Toss's console before we learn of it.
        let order = renewal_order(&sub);
        let payment_key = w
            .snapshot()
            .payment_by_order_id(order.as_str())
            .unwrap()
            .payment_key
            .clone();
        w.billing
            .toss()
            .cancel_payment(
                &PaymentKey::parse(payment_key).unwrap(),
                "고객 요청",
                partial.then(|| domain::Krw::new(1000)),
                &IdempotencyKey::parse("console-refund-1").unwrap(),
            )
            .await
            .unwrap();

        let found = w.sweep(as_of + Duration::minutes(10)).await;
        let later = w.sweep(as_of + Duration::days(10)).await;

        assert_eq!(found.declined, 0, "partial={partial}: {found:?}");
        let now = w.subscription("user_f4c").await;
        assert_ne!(
            now.status(),
            Status::PastDue,
            "partial={partial}: no dunning"
        );
        assert!(
            now.on_hold().is_some(),
            "partial={partial}: an operator sees it"
        );
        assert_eq!(found.held, 1, "partial={partial}: {found:?}");
        assert_eq!(
            later.charged + later.declined,
            0,
            "partial={partial}: {later:?}"
        );
        let attempts = w.ledger("user_f4c").await;
        assert_eq!(
            attempts.len(),
            2,
            "partial={partial}: no new order was charged"
        );
        assert_eq!(
            attempts[1].status(),
            AttemptStatus::Review,
            "partial={partial}"
        );
        assert_eq!(
            w.snapshot().charge_requests_for(order.as_str()),
            1,
            "partial={partial}"
        );
    }
}

#[tokio::test]
async fn an_aborted_payment_whose_failure_is_ours_stops_the_run_and_leaves_the_subscription_alone()
{
    let w = World::new().await;
    let sub = w.subscribe("user_f4a", TestCard::Ok, Utc::now()).await;
    let order = renewal_order(&sub);
    w.sandbox.sandbox().set_faults(faults(vec![rule(
        Endpoint::Charge,
        Some(&order),
        false,
        aborted(&order, "INVALID_REQUEST"),
    )]));

    let result = w.billing.sweep(&options(sweep_time(&sub))).await;

    assert!(
        matches!(&result, Err(billing::Error::OurFault { .. })),
        "{result:?}"
    );
    assert_eq!(w.subscription("user_f4a").await, sub, "invariant 5");
    let attempt = w.store.attempt(sub.id(), 1, 1).await.unwrap().unwrap();
    assert_eq!(attempt.status(), AttemptStatus::NotCharged);
}

#[tokio::test]
async fn an_aborted_payment_with_a_code_the_table_does_not_know_goes_to_an_operator_not_to_dunning()
{
    let w = World::new().await;
    let sub = w.subscribe("user_f4u", TestCard::Ok, Utc::now()).await;
    let order = renewal_order(&sub);
    w.sandbox.sandbox().set_faults(faults(vec![rule(
        Endpoint::Charge,
        Some(&order),
        false,
        aborted(&order, "SOMETHING_TOSS_ADDED_LATER"),
    )]));

    let summary = w.sweep(sweep_time(&sub)).await;

    assert_eq!((summary.declined, summary.held), (0, 1), "{summary:?}");
    let now = w.subscription("user_f4u").await;
    assert_ne!(now.status(), Status::PastDue);
    assert!(
        now.dunning().is_none(),
        "not marked as a card that needs replacing"
    );
    assert!(now.on_hold().is_some());
}

#[tokio::test]
async fn a_decline_found_for_a_card_the_customer_replaced_meanwhile_does_not_mark_the_new_card_unusable()
 {
    let w = World::new().await;
    let sub = w.subscribe("user_f4k", TestCard::Ok, Utc::now()).await;
    let order = renewal_order(&sub);
    // The renewal's answer is a 500 without a charge, and nothing is found: UNKNOWN.
    w.sandbox.sandbox().set_faults(faults(vec![rule(
        Endpoint::Charge,
        Some(&order),
        false,
        error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
    )]));
    let as_of = sweep_time(&sub);
    assert_eq!(w.sweep(as_of).await.unknown_outcome, 1);
    // The customer registers another card meanwhile; then Toss reports the old card's charge
    // as aborted by a stopped card.
    let replaced = w
        .billing
        .register_card(&w.redirect("user_f4k", TestCard::Ok).await, as_of)
        .await
        .unwrap();
    assert!(matches!(
        replaced,
        billing::RegistrationOutcome::CardReplaced { .. }
    ));
    w.sandbox.sandbox().set_faults(faults(vec![rule(
        Endpoint::GetPaymentByOrderId,
        Some(&order),
        false,
        aborted(&order, "INVALID_STOPPED_CARD"),
    )]));

    let found = w.sweep(as_of + Duration::minutes(10)).await;
    let next = w.sweep(as_of + Duration::minutes(20)).await;

    assert_eq!(found.declined, 0, "{found:?}");
    let now = w.subscription("user_f4k").await;
    assert!(
        now.dunning().is_none(),
        "the new card was never tried, so it is not unusable: {now:?}"
    );
    assert_eq!(
        next.charged, 1,
        "the next run charges the new card: {next:?}"
    );
    w.assert_ledger_matches_toss("user_f4k").await;
}

// ---- finding 8 ---------------------------------------------------------------------------

#[tokio::test]
async fn one_customers_refused_data_is_held_for_an_operator_and_the_sweep_charges_everyone_else() {
    let w = World::new().await;
    let bad = w.subscribe("user_f8_bad", TestCard::Ok, Utc::now()).await;
    let mut others = Vec::new();
    for i in 0..5 {
        others.push(
            w.subscribe(&format!("user_f8_{i}"), TestCard::Ok, Utc::now())
                .await,
        );
    }
    w.sandbox.sandbox().set_faults(faults(vec![FaultRule {
        times: None,
        customer_key: Some("user_f8_bad".into()),
        ..rule(Endpoint::Charge, None, false, error(400, "INVALID_EMAIL"))
    }]));
    let as_of = sweep_time(&bad);

    let summary = w.billing.sweep(&options(as_of)).await;
    let next_day = w.billing.sweep(&options(as_of + Duration::days(1))).await;

    let summary = summary.expect("a per-customer refusal does not stop the run");
    assert_eq!((summary.charged, summary.held), (5, 1), "{summary:?}");
    let next_day = next_day.expect("nor the next day's");
    assert_eq!(next_day.charged + next_day.declined, 0, "{next_day:?}");
    let held = w.subscription("user_f8_bad").await;
    assert_eq!(held.status(), Status::Active, "not dunned for our refusal");
    assert_eq!(
        held.on_hold().map(|h| h.code.as_str()),
        Some("INVALID_EMAIL")
    );
    for i in 0..5 {
        w.assert_ledger_matches_toss(&format!("user_f8_{i}")).await;
    }
}

// ---- finding 2 ---------------------------------------------------------------------------

fn decline_first_charge(w: &World, customer: &str) {
    w.sandbox.sandbox().add_decline(toss_sandbox::DeclineRule {
        customer_key: customer.into(),
        code: "REJECT_CARD_PAYMENT".into(),
        status: Some(403),
        message: None,
        times: Some(1),
    });
}

#[tokio::test]
async fn a_new_card_after_a_declined_first_charge_whose_answer_is_lost_is_found_and_settled_by_the_sweep()
 {
    let w = World::new().await;
    let now = Utc::now();
    decline_first_charge(&w, "user_f2");
    let first = w
        .billing
        .register_card(&w.redirect("user_f2", TestCard::Ok).await, now)
        .await
        .unwrap();
    assert!(
        matches!(first, billing::RegistrationOutcome::Failed { .. }),
        "{first:?}"
    );
    // The customer tries again; this charge is approved but its answer, and the look-up, are lost.
    w.sandbox.sandbox().set_faults(faults(vec![
        FaultRule {
            customer_key: Some("user_f2".into()),
            ..rule(Endpoint::Charge, None, true, FaultAction::DropConnection)
        },
        rule(
            Endpoint::GetPaymentByOrderId,
            None,
            false,
            error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
        ),
    ]));
    let second = w
        .billing
        .register_card(&w.redirect("user_f2", TestCard::Ok).await, now)
        .await
        .unwrap();
    assert!(
        matches!(second, billing::RegistrationOutcome::Pending { .. }),
        "{second:?}"
    );

    let summary = w.sweep(now + Duration::minutes(10)).await;

    assert_eq!((summary.charged, summary.reconciled), (1, 1), "{summary:?}");
    assert_eq!(w.subscription("user_f2").await.status(), Status::Active);
    w.assert_ledger_matches_toss("user_f2").await;
}

// ---- finding 3 ---------------------------------------------------------------------------

#[tokio::test]
async fn a_first_charge_refused_on_our_side_does_not_lock_the_customer_out() {
    let w = World::new().await;
    let now = Utc::now();
    w.sandbox.sandbox().set_faults(faults(vec![FaultRule {
        customer_key: Some("user_f3".into()),
        ..rule(Endpoint::Charge, None, false, error(400, "INVALID_REQUEST"))
    }]));
    let refused = w
        .billing
        .register_card(&w.redirect("user_f3", TestCard::Ok).await, now)
        .await
        .unwrap();
    assert!(
        matches!(refused, billing::RegistrationOutcome::Failed { .. }),
        "{refused:?}"
    );

    let again = w
        .billing
        .register_card(&w.redirect("user_f3", TestCard::Ok).await, now)
        .await
        .unwrap();

    assert!(
        matches!(again, billing::RegistrationOutcome::Subscribed { .. }),
        "the fixed configuration lets the customer in: {again:?}"
    );
    assert_eq!(w.done_payments("user_f3"), 1);
    w.assert_ledger_matches_toss("user_f3").await;
}

// ---- finding 5 ---------------------------------------------------------------------------

#[tokio::test]
async fn a_run_near_its_deadline_claims_nothing_it_cannot_charge_before_stopping() {
    let w = World::new().await;
    let mut subs = Vec::new();
    for i in 0..4 {
        subs.push(
            w.subscribe(&format!("user_f5_{i}"), TestCard::Ok, Utc::now())
                .await,
        );
    }
    let mut slow = FaultConfig::default();
    slow.latency
        .endpoints
        .insert(Endpoint::Charge, toss_sandbox::Latency::Fixed { ms: 1500 });
    w.sandbox.sandbox().set_faults(slow);
    let mut opts = options(sweep_time(&subs[0]));
    opts.concurrency = 1;
    opts.stop_claiming_at = Some(std::time::Instant::now() + std::time::Duration::from_millis(700));

    let summary = w.billing.sweep(&opts).await.unwrap();

    assert_eq!(summary.charged, 1, "{summary:?}");
    assert!(summary.stopped_early);
    let mut claimed = 0;
    for sub in &subs {
        claimed += w
            .store
            .ledger(sub.id())
            .await
            .unwrap()
            .iter()
            .filter(|a| a.period() == 1)
            .count();
    }
    assert_eq!(claimed, 1, "nothing claimed that waited past the deadline");
}

#[tokio::test]
async fn a_retry_of_a_killed_run_takes_over_its_attempts_once_their_lease_expires() {
    let w = World::new().await;
    let sub = w.subscribe("user_f5_lease", TestCard::Ok, Utc::now()).await;
    let as_of = sweep_time(&sub);
    // The killed run claimed the renewal just before it died; its lease runs 2 more seconds.
    let orphan = domain::ChargeAttempt::claim(
        sub.id().clone(),
        sub.customer_key().clone(),
        1,
        1,
        domain::Krw::new(3900),
        domain::AttemptKind::Renewal,
        domain::Lease {
            owner: "killed-run".into(),
            until: as_of + Duration::seconds(2),
        },
        as_of,
    );
    w.store.insert_attempt(&orphan).await.unwrap();
    let mut opts = options(as_of);
    opts.stop_claiming_at = Some(std::time::Instant::now() + std::time::Duration::from_secs(30));

    let summary = w.billing.sweep(&opts).await.unwrap();

    assert_eq!((summary.charged, summary.reconciled), (1, 1), "{summary:?}");
    assert_eq!(w.ledger("user_f5_lease").await.len(), 2);
    w.assert_ledger_matches_toss("user_f5_lease").await;
}

// ---- finding 6 ---------------------------------------------------------------------------

#[tokio::test]
async fn a_replaced_cards_key_whose_deletion_failed_is_deleted_by_the_next_sweep() {
    let w = World::new().await;
    let now = Utc::now();
    w.subscribe("user_f6", TestCard::Ok, now).await;
    w.sandbox.sandbox().set_faults(faults(vec![rule(
        Endpoint::DeleteBillingKey,
        None,
        false,
        error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
    )]));
    let replaced = w
        .billing
        .register_card(&w.redirect("user_f6", TestCard::Check).await, now)
        .await
        .unwrap();
    assert!(matches!(
        replaced,
        billing::RegistrationOutcome::CardReplaced { .. }
    ));
    assert_eq!(w.live_billing_keys("user_f6"), 2, "the delete failed");

    w.sweep(now + Duration::minutes(1)).await;

    assert_eq!(
        w.live_billing_keys("user_f6"),
        1,
        "only the current card's key is left"
    );
    assert!(w.subscription("user_f6").await.billing_key().is_some());
}

#[tokio::test]
async fn an_abandoned_incomplete_subscription_is_ended_and_its_key_deleted() {
    let w = World::new().await;
    let now = Utc::now();
    decline_first_charge(&w, "user_f6_inc");
    let declined = w
        .billing
        .register_card(&w.redirect("user_f6_inc", TestCard::Ok).await, now)
        .await
        .unwrap();
    assert!(matches!(
        declined,
        billing::RegistrationOutcome::Failed { .. }
    ));

    w.sweep(now + Duration::hours(1)).await;
    let waiting = w.subscription("user_f6_inc").await;
    w.sweep(now + Duration::hours(25)).await;
    let ended = w.subscription("user_f6_inc").await;

    assert_eq!(waiting.status(), Status::Incomplete, "not before its time");
    assert_eq!(ended.status(), Status::Canceled);
    assert_eq!(ended.cancel_reason(), Some(domain::CancelReason::Abandoned));
    assert_eq!(w.live_billing_keys("user_f6_inc"), 0);
}

// ---- finding 7 ---------------------------------------------------------------------------

#[tokio::test]
async fn a_malformed_item_in_the_due_index_is_counted_and_the_rest_of_its_shard_is_still_charged() {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    let w = World::new().await;
    let mut subs = Vec::new();
    for i in 0..6 {
        subs.push(
            w.subscribe(&format!("user_f7_{i}"), TestCard::Ok, Utc::now())
                .await,
        );
    }
    // A hand-edited item sorts first in the shard of the first subscription.
    let raw = w
        .dynamodb
        .get_item()
        .table_name(&w.table)
        .key("pk", V::S(format!("SUB#{}", subs[0].id())))
        .key("sk", V::S("SUB".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    w.dynamodb
        .put_item()
        .table_name(&w.table)
        .item("pk", V::S("SUB#HAND-EDITED".into()))
        .item("sk", V::S("SUB".into()))
        .item("status", V::S("weird".into()))
        .item("due_pk", raw["due_pk"].clone())
        .item("due_at", V::S("2000-01-01T00:00:00.000Z".into()))
        .send()
        .await
        .unwrap();
    let mut opts = options(sweep_time(&subs[0]));
    opts.page_size = 2;

    let result = w.billing.sweep(&opts).await;

    let Err(billing::Error::SweepIncomplete { summary }) = result else {
        panic!("a run with errors reports failure: {result:?}");
    };
    assert_eq!((summary.charged, summary.errors), (6, 1), "{summary:?}");
    for i in 0..6 {
        w.assert_ledger_matches_toss(&format!("user_f7_{i}")).await;
    }
}

// ---- finding 9 ---------------------------------------------------------------------------

#[tokio::test]
async fn period_end_cancellation_settles_an_open_attempt_first() {
    let w = World::new().await;
    let sub = w.subscribe("user_f9", TestCard::Ok, Utc::now()).await;
    let as_of = approved_but_unknown(&w, &sub).await;
    // The customer asks to cancel at period end while the renewal's outcome is unknown.
    let mut flagged = w.subscription("user_f9").await;
    flagged.schedule_cancel(Utc::now());
    w.store.save_subscription(&mut flagged).await.unwrap();

    let settled = w.sweep(as_of + Duration::minutes(10)).await;
    let after = w.subscription("user_f9").await;
    let period_end = w
        .sweep(after.next_charge_at().unwrap() + Duration::hours(9))
        .await;

    assert_eq!((settled.charged, settled.canceled), (1, 0), "{settled:?}");
    assert_eq!(after.status(), Status::Active, "the paid month is kept");
    assert_eq!(
        (period_end.charged, period_end.canceled),
        (0, 1),
        "{period_end:?}"
    );
    assert_eq!(w.done_payments("user_f9"), 2);
    w.assert_ledger_matches_toss("user_f9").await;
}

#[tokio::test]
async fn a_run_in_which_many_customers_data_is_refused_stops_as_for_our_own_fault_instead_of_holding_everyone()
 {
    let w = World::new().await;
    let mut subs = Vec::new();
    for i in 0..8 {
        subs.push(
            w.subscribe(&format!("user_f8_many_{i}"), TestCard::Ok, Utc::now())
                .await,
        );
    }
    // Say a bad deploy sends every customer's e-mail wrong: Toss refuses each one.
    w.sandbox.sandbox().set_faults(faults(vec![FaultRule {
        times: None,
        ..rule(Endpoint::Charge, None, false, error(400, "INVALID_EMAIL"))
    }]));
    let mut opts = options(sweep_time(&subs[0]));
    opts.concurrency = 1;

    let result = w.billing.sweep(&opts).await;

    assert!(
        matches!(
            &result,
            Err(billing::Error::ManyCustomersRefused { refused: 5 })
        ),
        "{result:?}"
    );
    let mut held = 0;
    for sub in &subs {
        held += usize::from(
            w.store
                .subscription(sub.id())
                .await
                .unwrap()
                .unwrap()
                .on_hold()
                .is_some(),
        );
    }
    assert!(
        held < subs.len(),
        "the run stopped before holding everyone: {held}"
    );
    assert_eq!(
        w.snapshot().payments.len(),
        8,
        "nothing but the first months was charged"
    );
}

// ---- issue 14, finding 5 -----------------------------------------------------------------

#[tokio::test]
async fn a_card_registration_toss_refuses_on_our_side_sends_the_customer_our_own_code_never_tosss()
{
    let w = World::new().await;
    for (customer, status, toss_code, ours) in [
        (
            "user_i5_key",
            401,
            "UNAUTHORIZED_KEY",
            billing::FailureCode::ServiceError,
        ),
        (
            "user_i5_cus",
            400,
            "NOT_MATCHES_CUSTOMER_KEY",
            billing::FailureCode::CustomerMismatch,
        ),
    ] {
        w.sandbox.sandbox().set_faults(faults(vec![FaultRule {
            customer_key: Some(customer.into()),
            ..rule(Endpoint::Issue, None, false, error(status, toss_code))
        }]));

        let outcome = w
            .billing
            .register_card(&w.redirect(customer, TestCard::Ok).await, Utc::now())
            .await
            .unwrap();

        assert_eq!(
            outcome,
            billing::RegistrationOutcome::Failed { code: ours },
            "{toss_code}"
        );
    }
}

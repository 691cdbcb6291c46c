use chrono::{Duration, Utc};
use domain::{AttemptKind, AttemptStatus, ChargeAttempt, Lease, Status};
use toss_sandbox::{Endpoint, FaultAction, FaultConfig, FaultRule, SecretKeySpec, TestCard};

use crate::harness::{World, options};

fn sweep_time(sub: &domain::Subscription) -> chrono::DateTime<Utc> {
    sub.next_charge_at().unwrap() + Duration::hours(9)
}

fn fault(endpoint: Endpoint, commit: bool, times: u32, action: FaultAction) -> FaultConfig {
    FaultConfig {
        rules: vec![FaultRule {
            endpoint: Some(endpoint),
            probability: 1.0,
            times: Some(times),
            commit,
            customer_key: None,
            order_id: None,
            action,
        }],
        ..FaultConfig::default()
    }
}

#[tokio::test]
async fn a_wrong_secret_key_stops_the_sweep_and_leaves_every_subscription_and_the_ledger_as_they_were()
 {
    let w = World::new().await;
    let subs = [
        w.subscribe("user_wk_1", TestCard::Ok, Utc::now()).await,
        w.subscribe("user_wk_2", TestCard::DeclineRenewals, Utc::now())
            .await,
    ];
    let as_of = sweep_time(&subs[0]);
    let wrong = w.billing_with_key("test_sk_wrongWrongWrongWrong0000");

    let err = wrong.sweep(&options(as_of)).await.unwrap_err();

    assert!(
        matches!(
            &err,
            billing::Error::OurFault {
                code: Some(toss::ErrorCode::UnauthorizedKey)
            }
        ),
        "{err:?}"
    );
    for sub in &subs {
        let now = w.store.subscription(sub.id()).await.unwrap().unwrap();
        assert_eq!(&now, sub, "the subscription must be exactly as it was");
        assert_eq!(
            w.store.ledger(sub.id()).await.unwrap().len(),
            1,
            "no attempt was even claimed"
        );
    }
    // A later run with the right key proceeds normally.
    let fixed = w.sweep(as_of).await;
    assert_eq!((fixed.charged, fixed.declined), (1, 1));
}

#[tokio::test]
async fn losing_the_billing_contract_mid_run_stops_the_run_without_changing_subscriptions_and_a_later_run_proceeds()
 {
    let w = World::new().await;
    let sub = w.subscribe("user_contract", TestCard::Ok, Utc::now()).await;
    // The key is re-registered without the billing contract: look-ups work, charges are refused.
    w.sandbox
        .sandbox()
        .register_secret_key(&SecretKeySpec::new(crate::harness::SECRET).without_billing_contract())
        .unwrap();

    let err = w
        .billing
        .sweep(&options(sweep_time(&sub)))
        .await
        .unwrap_err();

    assert!(
        matches!(
            &err,
            billing::Error::OurFault {
                code: Some(toss::ErrorCode::NotSupportedMethod)
            }
        ),
        "{err:?}"
    );
    assert_eq!(w.store.subscription(sub.id()).await.unwrap().unwrap(), sub);
    let ledger = w.ledger("user_contract").await;
    assert_eq!(
        ledger.last().unwrap().status(),
        AttemptStatus::NotCharged,
        "the refused attempt is in the ledger"
    );

    w.sandbox
        .sandbox()
        .register_secret_key(&SecretKeySpec::new(crate::harness::SECRET))
        .unwrap();
    let fixed = w.sweep(sweep_time(&sub)).await;
    assert_eq!(fixed.charged, 1);
    let ledger = w.ledger("user_contract").await;
    assert_eq!(
        ledger.len(),
        3,
        "first month, the refused attempt, the new one"
    );
    assert_ne!(
        ledger[1].order_id(),
        ledger[2].order_id(),
        "a definitely-uncharged attempt may be retried under a new id"
    );
    w.assert_ledger_matches_toss("user_contract").await;
}

#[tokio::test]
async fn a_charge_approved_but_whose_response_was_lost_is_reconciled_by_order_id_without_charging_again()
 {
    let w = World::new().await;
    let sub = w.subscribe("user_lost", TestCard::Ok, Utc::now()).await;
    w.sandbox.sandbox().set_faults(fault(
        Endpoint::Charge,
        true,
        1,
        FaultAction::DropConnection,
    ));

    let summary = w.sweep(sweep_time(&sub)).await;

    assert_eq!(
        (summary.charged, summary.reconciled, summary.unknown_outcome),
        (1, 1, 0),
        "{summary:?}"
    );
    assert_eq!(w.done_payments("user_lost"), 2);
    w.assert_ledger_matches_toss("user_lost").await;
}

#[tokio::test]
async fn a_server_error_without_a_charge_leaves_the_attempt_unknown_and_a_later_run_charges_it_under_the_same_order_id()
 {
    let w = World::new().await;
    let sub = w.subscribe("user_500", TestCard::Ok, Utc::now()).await;
    let error = FaultAction::Error {
        status: Some(500),
        code: "FAILED_INTERNAL_SYSTEM_PROCESSING".into(),
        message: None,
    };
    w.sandbox
        .sandbox()
        .set_faults(fault(Endpoint::Charge, false, 1, error));
    let as_of = sweep_time(&sub);

    let first = w.sweep(as_of).await;
    let open = w.ledger("user_500").await.pop().unwrap();
    let unpaid = w.subscription("user_500").await;
    let too_soon = w.sweep(as_of).await;
    let later = w.sweep(as_of + Duration::minutes(2)).await;

    assert_eq!(first.unknown_outcome, 1);
    assert_eq!(open.status(), AttemptStatus::Unknown, "never marked failed");
    assert_eq!(
        unpaid.next_period(),
        1,
        "no period granted for an unknown outcome"
    );
    assert_eq!(
        unpaid.status(),
        Status::Active,
        "nor is the customer punished for it"
    );
    assert_eq!(too_soon.charged, 0, "the look-up backs off");
    assert_eq!((later.charged, later.reconciled), (1, 1));
    let done = w.ledger("user_500").await.pop().unwrap();
    assert_eq!(
        done.order_id(),
        open.order_id(),
        "the same order id, never a new one"
    );
    assert_eq!(done.status(), AttemptStatus::Done);
    w.assert_ledger_matches_toss("user_500").await;
}

#[tokio::test]
async fn malformed_json_and_unknown_error_codes_are_outcome_unknown_never_declines() {
    for action in [
        FaultAction::MalformedBody {
            status: Some(200),
            body: None,
        },
        FaultAction::TruncateBody,
        FaultAction::Error {
            status: Some(400),
            code: "SOMETHING_TOSS_ADDED_LATER".into(),
            message: None,
        },
        FaultAction::Error {
            status: Some(429),
            code: "TOO_MANY_REQUESTS".into(),
            message: None,
        },
        FaultAction::Error {
            status: Some(409),
            code: "IDEMPOTENT_REQUEST_PROCESSING".into(),
            message: None,
        },
    ] {
        let w = World::new().await;
        let sub = w.subscribe("user_weird", TestCard::Ok, Utc::now()).await;
        w.sandbox
            .sandbox()
            .set_faults(fault(Endpoint::Charge, false, 1, action.clone()));

        let summary = w.sweep(sweep_time(&sub)).await;

        assert_eq!(summary.declined, 0, "{action:?}");
        assert_eq!(
            summary.charged + summary.unknown_outcome,
            1,
            "{action:?}: {summary:?}"
        );
        assert_eq!(
            w.subscription("user_weird").await.status(),
            Status::Active,
            "{action:?}"
        );
        let later = w.sweep(sweep_time(&sub) + Duration::minutes(2)).await;
        assert_eq!(summary.charged + later.charged, 1, "{action:?}");
        w.assert_ledger_matches_toss("user_weird").await;
    }
}

#[tokio::test]
async fn an_attempt_left_by_a_crashed_worker_is_taken_over_after_its_lease_and_charged_once() {
    let w = World::new().await;
    let sub = w.subscribe("user_crash", TestCard::Ok, Utc::now()).await;
    let as_of = sweep_time(&sub);
    // A worker claimed the renewal and died before (or after) calling Toss.
    let orphan = ChargeAttempt::claim(
        sub.id().clone(),
        sub.customer_key().clone(),
        1,
        1,
        domain::Krw::new(3900),
        AttemptKind::Renewal,
        Lease {
            owner: "dead-worker".into(),
            until: as_of + Duration::seconds(60),
        },
        as_of,
    );
    w.store.insert_attempt(&orphan).await.unwrap();

    let during_lease = w.sweep(as_of).await;
    let after_lease = w.sweep(as_of + Duration::minutes(5)).await;

    assert_eq!((during_lease.charged, during_lease.skipped), (0, 1));
    assert_eq!((after_lease.charged, after_lease.reconciled), (1, 1));
    let ledger = w.ledger("user_crash").await;
    assert_eq!(ledger.len(), 2);
    assert_eq!(ledger[1].order_id(), orphan.order_id());
    w.assert_ledger_matches_toss("user_crash").await;
}

#[tokio::test]
async fn an_approved_charge_whose_worker_died_before_recording_is_found_by_order_id_and_recorded_once()
 {
    let w = World::new().await;
    let sub = w.subscribe("user_crash2", TestCard::Ok, Utc::now()).await;
    let as_of = sweep_time(&sub);
    // The dead worker got as far as Toss approving the charge.
    let orphan = ChargeAttempt::claim(
        sub.id().clone(),
        sub.customer_key().clone(),
        1,
        1,
        domain::Krw::new(3900),
        AttemptKind::Renewal,
        Lease {
            owner: "dead-worker".into(),
            until: as_of + Duration::seconds(60),
        },
        as_of,
    );
    w.store.insert_attempt(&orphan).await.unwrap();
    let request = toss::ChargeRequest {
        customer_key: sub.customer_key().clone(),
        amount: domain::Krw::new(3900),
        order_id: orphan.order_id().clone(),
        order_name: "Saju맛피아 Pro 월 구독".into(),
        customer_email: None,
        customer_name: None,
    };
    w.billing
        .toss()
        .charge(
            sub.billing_key().unwrap(),
            &request,
            &orphan.order_id().into(),
        )
        .await
        .unwrap();

    let summary = w.sweep(as_of + Duration::minutes(5)).await;

    assert_eq!((summary.charged, summary.reconciled), (1, 1));
    assert_eq!(
        w.snapshot().charge_requests_for(orphan.order_id().as_str()),
        1,
        "looked up, not charged again"
    );
    w.assert_ledger_matches_toss("user_crash2").await;
}

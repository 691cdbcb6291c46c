//! An adversarial review of the issue-9 fixes: each test here failed on the reviewed code
//! (378f585) and describes a path that broke a money invariant.

use std::collections::BTreeMap;

use billing::{Registration, RegistrationOutcome};
use chrono::{DateTime, Duration, Utc};
use domain::{AttemptStatus, OrderId, Subscription};
use toss_sandbox::{
    Endpoint, FaultAction, FaultConfig, FaultRule, Latency, SecretKeySpec, TestCard,
};

use crate::harness::{SECRET, World, options};

fn rule(
    endpoint: Endpoint,
    order_id: Option<&OrderId>,
    customer: Option<&str>,
    commit: bool,
    times: Option<u32>,
    action: FaultAction,
) -> FaultRule {
    FaultRule {
        endpoint: Some(endpoint),
        probability: 1.0,
        times,
        commit,
        customer_key: customer.map(ToOwned::to_owned),
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

fn sweep_time(sub: &Subscription) -> DateTime<Utc> {
    sub.next_charge_at().unwrap() + Duration::hours(9)
}

/// A1. The renewal is approved at Toss but its answer is lost (attempt UNKNOWN). At the next
/// run the look-up still answers 404 (docs/toss-api.md §5.1: a 404 is no proof until the attempt is
/// old), so the engine re-sends the charge; the re-send is refused at Toss's auth layer
/// (the key was rotated between the look-up and the re-send: a 401 is answered before the
/// idempotency replay). `decide(Source::Charge, 401)` = OurFault → the attempt is marked
/// NOT_CHARGED although the original send's outcome was never established; once the key is
/// fixed, `resolve_claimed` charges attempt #2 under a NEW order id: two approved renewals.
#[tokio::test]
async fn a_resend_refused_by_auth_after_a_404_look_up_leaves_the_attempt_open_and_charges_once() {
    let w = World::new().await;
    let sub = w.subscribe("user_a1", TestCard::Ok, Utc::now()).await;
    let order = OrderId::for_attempt(sub.id(), 1, 1);
    // Run 1: approved, answer lost, immediate look-up fails → UNKNOWN with the money taken.
    w.sandbox.sandbox().set_faults(FaultConfig {
        rules: vec![
            rule(
                Endpoint::Charge,
                Some(&order),
                None,
                true,
                Some(1),
                FaultAction::DropConnection,
            ),
            rule(
                Endpoint::GetPaymentByOrderId,
                Some(&order),
                None,
                false,
                Some(1),
                error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
            ),
        ],
        ..FaultConfig::default()
    });
    let as_of = sweep_time(&sub);
    let first = w.sweep(as_of).await;
    assert_eq!(first.unknown_outcome, 1, "{first:?}");
    assert_eq!(
        w.done_payments("user_a1"),
        2,
        "first month + the approved renewal"
    );

    // Run 2: look-ups are slow (3 s) and the look-up of this order answers 404; the key is
    // revoked while that look-up is in flight (after its auth passed).
    let mut latency = BTreeMap::new();
    latency.insert(Endpoint::GetPaymentByOrderId, Latency::Fixed { ms: 3000 });
    w.sandbox.sandbox().set_faults(FaultConfig {
        latency: toss_sandbox::faults::LatencyConfig {
            default: None,
            endpoints: latency,
        },
        rules: vec![rule(
            Endpoint::GetPaymentByOrderId,
            Some(&order),
            None,
            false,
            Some(1),
            error(404, "NOT_FOUND_PAYMENT"),
        )],
    });
    let opts = options(as_of + Duration::minutes(10));
    // preflight look-up: t≈0..3 s; this order's look-up: auth at ≈3 s, answers at ≈6 s.
    let (second, ()) = tokio::join!(w.billing.sweep(&opts), async {
        tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
        assert!(w.sandbox.sandbox().revoke_secret_key(SECRET));
    });
    assert!(
        matches!(&second, Err(billing::Error::OurFault { .. })),
        "{second:?}"
    );
    let after = w.store.attempt(sub.id(), 1, 1).await.unwrap().unwrap();
    // The key is fixed.
    w.sandbox
        .sandbox()
        .register_secret_key(&SecretKeySpec::new(SECRET))
        .unwrap();
    w.sandbox.sandbox().set_faults(FaultConfig::default());
    let third = w
        .billing
        .sweep(&options(as_of + Duration::minutes(20)))
        .await;

    assert_eq!(
        w.done_payments("user_a1"),
        2,
        "the renewal was charged twice (third run: {third:?}); ledger: {:#?}",
        w.ledger("user_a1").await
    );
    assert_ne!(
        after.status(),
        AttemptStatus::NotCharged,
        "an auth refusal of a RE-SEND says nothing about the original send: {after:?}"
    );
}

/// A2. Toss refuses the first charge for the customer's data (INVALID_EMAIL). The customer
/// registers again with a corrected address, but `update_card` never took the new
/// registration's e-mail/name: the charge was sent with the old address and refused again,
/// every time, until the subscription was abandoned.
#[tokio::test]
async fn a_corrected_email_on_re_registration_is_used_for_the_charge() {
    let w = World::new().await;
    w.sandbox.sandbox().set_faults(FaultConfig {
        rules: vec![rule(
            Endpoint::Charge,
            None,
            Some("user_a2"),
            false,
            Some(1),
            error(400, "INVALID_EMAIL"),
        )],
        ..FaultConfig::default()
    });
    let mut bad: Registration = w.redirect("user_a2", TestCard::Ok).await;
    bad.customer_email = Some(domain::Email::parse("old@mail.example").unwrap());
    let first = w.billing.register_card(&bad, Utc::now()).await.unwrap();
    assert_eq!(
        first,
        RegistrationOutcome::Failed {
            code: billing::FailureCode::toss("INVALID_EMAIL")
        }
    );

    let mut fixed = w.redirect("user_a2", TestCard::Ok).await;
    fixed.customer_email = Some(domain::Email::parse("new@example.com").unwrap());
    let second = w.billing.register_card(&fixed, Utc::now()).await.unwrap();

    assert!(
        matches!(second, RegistrationOutcome::Subscribed { .. }),
        "{second:?}"
    );
    assert_eq!(
        w.subscription("user_a2")
            .await
            .customer_email()
            .map(domain::Email::as_str),
        Some("new@example.com"),
        "the corrected e-mail is the one on record"
    );
}

/// A3. A redirect refused with PAYMENT_PENDING (a first charge still unknown) deletes the
/// freshly issued key best-effort only (`refuse_redirect` → `forget_billing_key`): when that
/// DELETE fails the key stays alive at Toss and no record anywhere will ever delete it.
/// (Same for CUSTOMER_MISMATCH and CONCURRENT_REQUEST.)
#[tokio::test]
async fn a_refused_redirect_whose_key_delete_fails_keeps_the_key_on_record_until_deleted() {
    let w = World::new().await;
    w.sandbox.sandbox().set_faults(FaultConfig {
        rules: vec![
            rule(
                Endpoint::Charge,
                None,
                Some("user_a3"),
                false,
                Some(1),
                FaultAction::DropConnection,
            ),
            rule(
                Endpoint::GetPaymentByOrderId,
                None,
                None,
                false,
                Some(1),
                error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
            ),
        ],
        ..FaultConfig::default()
    });
    let first = w
        .billing
        .register_card(&w.redirect("user_a3", TestCard::Ok).await, Utc::now())
        .await
        .unwrap();
    assert!(
        matches!(first, RegistrationOutcome::Pending { .. }),
        "{first:?}"
    );

    w.sandbox.sandbox().set_faults(FaultConfig {
        rules: vec![rule(
            Endpoint::DeleteBillingKey,
            None,
            None,
            false,
            None,
            error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
        )],
        ..FaultConfig::default()
    });
    let second = w
        .billing
        .register_card(&w.redirect("user_a3", TestCard::Ok).await, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        second,
        RegistrationOutcome::Failed {
            code: billing::FailureCode::PaymentPending
        }
    );

    let sub = w.subscription("user_a3").await;
    let recorded = usize::from(sub.billing_key().is_some()) + sub.retired_billing_keys().len();
    assert_eq!(
        w.live_billing_keys("user_a3"),
        recorded,
        "a billing key is alive at Toss that no record will ever delete: {sub:?}"
    );
}

/// A1b. The same break without any timing: the billing contract lapses (Toss answers
/// `NOT_SUPPORTED_METHOD` on billing endpoints *before* the idempotency replay; look-ups, which
/// are not billing endpoints, and so the preflight, still pass). A 404 look-up of the
/// approved-but-unknown renewal makes the engine re-send; the contract refusal of the re-send
/// marks the attempt NOT_CHARGED; after the contract is restored the next run charges a new
/// order id.
#[tokio::test]
async fn a_contract_lapse_on_the_resend_after_a_404_look_up_charges_the_period_once() {
    let w = World::new().await;
    let sub = w.subscribe("user_a1b", TestCard::Ok, Utc::now()).await;
    let order = OrderId::for_attempt(sub.id(), 1, 1);
    w.sandbox.sandbox().set_faults(FaultConfig {
        rules: vec![
            rule(
                Endpoint::Charge,
                Some(&order),
                None,
                true,
                Some(1),
                FaultAction::DropConnection,
            ),
            rule(
                Endpoint::GetPaymentByOrderId,
                Some(&order),
                None,
                false,
                Some(1),
                error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
            ),
        ],
        ..FaultConfig::default()
    });
    let as_of = sweep_time(&sub);
    let first = w.sweep(as_of).await;
    assert_eq!(first.unknown_outcome, 1, "{first:?}");
    assert_eq!(
        w.done_payments("user_a1b"),
        2,
        "first month + the approved renewal"
    );

    w.sandbox
        .sandbox()
        .register_secret_key(&SecretKeySpec::new(SECRET).without_billing_contract())
        .unwrap();
    w.sandbox.sandbox().set_faults(FaultConfig {
        rules: vec![rule(
            Endpoint::GetPaymentByOrderId,
            Some(&order),
            None,
            false,
            Some(1),
            error(404, "NOT_FOUND_PAYMENT"),
        )],
        ..FaultConfig::default()
    });
    let second = w
        .billing
        .sweep(&options(as_of + Duration::minutes(10)))
        .await;
    let after = w.store.attempt(sub.id(), 1, 1).await.unwrap().unwrap();

    w.sandbox
        .sandbox()
        .register_secret_key(&SecretKeySpec::new(SECRET))
        .unwrap();
    w.sandbox.sandbox().set_faults(FaultConfig::default());
    let third = w
        .billing
        .sweep(&options(as_of + Duration::minutes(20)))
        .await;

    assert_eq!(
        w.done_payments("user_a1b"),
        2,
        "the renewal was charged twice (second run: {second:?}, third: {third:?}); attempt #1 \
         after the lapse: {after:?}; ledger: {:#?}",
        w.ledger("user_a1b").await
    );
}

/// A4. An operator looks at a REVIEW attempt (a payment Toss reports ABORTED for a reason the
/// table cannot place: no money moved) and releases the hold, the only lever there is. The
/// REVIEW attempt keeps number `attempts + 1`, so every later run's claim collides with it and
/// `resolve_claimed` answers "ledger and subscription disagree": the subscription is never
/// charged again and every run ends in `SweepIncomplete`.
#[tokio::test]
async fn a_released_review_hold_lets_the_next_run_charge_the_period() {
    let w = World::new().await;
    let sub = w.subscribe("user_a4", TestCard::Ok, Utc::now()).await;
    let order = OrderId::for_attempt(sub.id(), 1, 1);
    let body = serde_json::json!({
        "paymentKey": "tabort0000000000000001",
        "orderId": order.as_str(),
        "orderName": "Saju맛피아 Pro 월 구독",
        "status": "ABORTED",
        "type": "BILLING",
        "totalAmount": 3900,
        "balanceAmount": 0,
        "requestedAt": "2027-01-10T09:00:00+09:00",
        "approvedAt": null,
        "failure": {"code": "PROVIDER_ERROR", "message": "일시적인 오류"},
        "cancels": null,
    });
    w.sandbox.sandbox().set_faults(FaultConfig {
        rules: vec![
            rule(
                Endpoint::Charge,
                Some(&order),
                None,
                false,
                Some(1),
                error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
            ),
            rule(
                Endpoint::GetPaymentByOrderId,
                Some(&order),
                None,
                false,
                Some(1),
                FaultAction::MalformedBody {
                    status: Some(200),
                    body: Some(body.to_string()),
                },
            ),
        ],
        ..FaultConfig::default()
    });
    let as_of = sweep_time(&sub);
    let first = w.sweep(as_of).await;
    assert_eq!(first.held, 1, "{first:?}");
    assert_eq!(w.done_payments("user_a4"), 1, "no renewal money moved");

    // The operator releases the hold.
    let mut held = w.subscription("user_a4").await;
    held.release_hold(as_of + Duration::days(1));
    w.store.save_subscription(&mut held).await.unwrap();
    w.sandbox.sandbox().set_faults(FaultConfig::default());

    let next = w.billing.sweep(&options(as_of + Duration::days(1))).await;
    assert!(
        matches!(&next, Ok(s) if s.charged == 1),
        "the released subscription is never charged again and the run fails: {next:?}"
    );
}

//! In-process scenarios: every Toss fault alone and mixed at random under concurrent sweeps, a
//! response slower than the client timeout, our own faults mid-run, and a transaction cancelled
//! by a concurrent change.

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use domain::{AttemptStatus, Status};
use toss_sandbox::{Endpoint, FaultConfig, Latency, SandboxConfig, SecretKeySpec, TestCard};

use crate::world::{SECRET, World, captured_logs, error, next_month, options, rule, toss_faults};

const PER_FAULT: usize = 25;

#[tokio::test]
async fn every_toss_fault_alone_charges_nobody_twice_marks_nothing_failed_and_is_reconciled_by_order_id()
 {
    let mut total_subs = 0;
    for (name, commit, action) in toss_faults() {
        let w = World::new().await;
        let start = Utc::now();
        let customers = w.subscribe_many("user_alone", PER_FAULT, start).await;
        total_subs += customers.len();
        w.sandbox.sandbox().set_faults(FaultConfig {
            rules: vec![rule(commit, 1.0, action.clone())],
            ..FaultConfig::default()
        });
        let as_of = next_month(start);

        let faulty = w.sweep(as_of).await;

        assert_eq!(faulty.declined, 0, "{name}: never a decline: {faulty:?}");
        assert_eq!(
            faulty.charged + faulty.unknown_outcome,
            PER_FAULT as u64,
            "{name}: {faulty:?}"
        );
        for c in &customers {
            let sub = w.subscription(c).await;
            assert_eq!(sub.status(), Status::Active, "{name}: nobody is punished");
            let ledger = w.store.ledger(sub.id()).await.unwrap();
            assert!(
                ledger.iter().all(|a| a.attempt() == 1),
                "{name}: never a new order id for an unknown outcome: {ledger:#?}"
            );
        }
        w.check(false).await;
        let settled = w.settle(as_of).await;
        let paid = w.check(true).await;
        assert!(paid.values().all(|p| *p == 2), "{name}: {paid:?}");
        let charges = faulty.charged + settled;
        assert_eq!(charges, PER_FAULT as u64, "{name}: one renewal each");
        let snapshot = w.snapshot();
        for c in &customers {
            let sub = w.subscription(c).await;
            let ledger = w.store.ledger(sub.id()).await.unwrap();
            let renewal = ledger.iter().find(|a| a.period() == 1).unwrap();
            assert!(
                snapshot.charge_requests_for(renewal.order_id().as_str()) <= 2,
                "{name}: charged again and again instead of looked up"
            );
        }
        eprintln!(
            "fault '{name}': {PER_FAULT} subscriptions, model 25 renewals, charged {} in the faulty sweep + {settled} on reconciliation ({} reconciled, {} unknown first)",
            faulty.charged, faulty.reconciled, faulty.unknown_outcome
        );
        w.assert_no_secrets_in(&[&captured_logs()]).await;
    }
    assert_eq!(total_subs, 12 * PER_FAULT);
}

#[tokio::test]
async fn random_mixed_faults_under_three_concurrent_sweeps_charge_300_subscriptions_exactly_once_each()
 {
    let w = World::with(SandboxConfig::default().with_seed(20261124), 5_000).await;
    let start = Utc::now();
    w.subscribe_many("user_mixed", 300, start).await;
    let mut faults = FaultConfig::default();
    faults.latency.endpoints.insert(
        Endpoint::Charge,
        Latency::Uniform {
            min_ms: 0,
            max_ms: 40,
        },
    );
    faults.rules = toss_faults()
        .into_iter()
        .map(|(_, commit, action)| rule(commit, 0.03, action))
        .collect();
    w.sandbox.sandbox().set_faults(faults);
    let as_of = next_month(start);

    let (o1, o2, o3) = (options(as_of), options(as_of), options(as_of));
    let (a, b, c) = tokio::join!(
        w.billing.sweep(&o1),
        w.billing.sweep(&o2),
        w.billing.sweep(&o3),
    );
    let runs = [a.unwrap(), b.unwrap(), c.unwrap()];
    w.check(false).await;
    let first: u64 = runs.iter().map(|s| s.charged).sum();
    let unknown: u64 = runs.iter().map(|s| s.unknown_outcome).sum();
    let injected = w.snapshot().counters.injected_faults;
    let settled = w.settle(as_of).await;

    let paid = w.check(true).await;
    assert!(paid.values().all(|p| *p == 2), "{paid:?}");
    assert_eq!(first + settled, 300, "the model: one renewal each");
    assert!(injected > 0, "the seed injected faults");
    assert!(runs.iter().all(|s| s.declined == 0), "{runs:?}");
    eprintln!(
        "mixed: 300 subscriptions, 3 concurrent sweeps, {injected} faults injected: {first} charged at once, {unknown} unknown, {settled} on reconciliation; model 300"
    );
    w.assert_no_secrets_in(&[&captured_logs()]).await;
}

#[tokio::test]
async fn a_response_slower_than_the_client_timeout_is_looked_up_by_order_id_and_never_charged_again()
 {
    let w = World::with(SandboxConfig::default().with_seed(3), 700).await;
    let start = Utc::now();
    let customers = w.subscribe_many("user_slow", 40, start).await;
    let mut faults = FaultConfig::default();
    faults
        .latency
        .endpoints
        .insert(Endpoint::Charge, Latency::Fixed { ms: 1_500 });
    w.sandbox.sandbox().set_faults(faults);
    let as_of = next_month(start);

    let slow = w.sweep(as_of).await;
    // Let the sandbox finish what it was still working on after the client gave up.
    tokio::time::sleep(StdDuration::from_secs(2)).await;
    w.check(false).await;
    let settled = w.settle(as_of).await;

    assert_eq!(slow.declined, 0, "{slow:?}");
    assert_eq!(slow.charged + slow.unknown_outcome, 40, "{slow:?}");
    assert_eq!(slow.charged + settled, 40);
    let paid = w.check(true).await;
    assert!(paid.values().all(|p| *p == 2));
    let snapshot = w.snapshot();
    for c in &customers {
        let sub = w.subscription(c).await;
        let ledger = w.store.ledger(sub.id()).await.unwrap();
        assert_eq!(ledger.len(), 2, "one order id per period: {ledger:#?}");
        assert!(snapshot.charge_requests_for(ledger[1].order_id().as_str()) <= 2);
    }
    eprintln!(
        "timeout: 40 subscriptions, model 40 renewals: {} charged (of them {} reconciled), {} unknown, {settled} on reconciliation",
        slow.charged, slow.reconciled, slow.unknown_outcome
    );
    w.assert_no_secrets_in(&[&captured_logs()]).await;
}

/// Waits until Toss has approved `n` charges in all.
async fn until_done_charges(w: &World, n: u64) {
    while w.snapshot().counters.done_charges < n {
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn losing_the_billing_contract_or_the_key_mid_run_stops_the_run_changes_no_subscription_and_a_rerun_proceeds()
 {
    let w = World::new().await;
    let start = Utc::now();
    let customers = w.subscribe_many("user_ours", 200, start).await;
    let mut faults = FaultConfig::default();
    faults
        .latency
        .endpoints
        .insert(Endpoint::Charge, Latency::Fixed { ms: 15 });
    w.sandbox.sandbox().set_faults(faults);

    for (month, revoke) in [(1, "contract"), (2, "key")] {
        let as_of = start + Duration::days(32 * month);
        let before = w.check(true).await;
        let done_before = w.snapshot().counters.done_charges;
        let sandbox = w.sandbox.sandbox().clone();
        let trip = async {
            until_done_charges(&w, done_before + 60).await;
            if revoke == "contract" {
                sandbox
                    .register_secret_key(&SecretKeySpec::new(SECRET).without_billing_contract())
                    .unwrap();
            } else {
                sandbox.revoke_secret_key(SECRET);
            }
        };
        let opts = options(as_of);
        let (result, ()) = tokio::join!(w.billing.sweep(&opts), trip);

        let err = result.unwrap_err();
        let expected = if revoke == "contract" {
            toss::ErrorCode::NotSupportedMethod
        } else {
            toss::ErrorCode::UnauthorizedKey
        };
        assert!(
            matches!(&err, billing::Error::OurFault { code } if code.as_ref() == Some(&expected)),
            "{revoke}: {err:?}"
        );
        let after = w.check(true).await;
        let mut charged = 0;
        for c in &customers {
            let sub = w.subscription(c).await;
            if after[c] == before[c] {
                assert_eq!(sub.status(), Status::Active, "{revoke}: unchanged");
                assert!(
                    sub.dunning().is_none(),
                    "{revoke}: no dunning for our fault"
                );
            } else {
                assert_eq!(after[c], before[c] + 1);
                charged += 1;
            }
        }
        assert!(
            (60..200).contains(&charged),
            "{revoke}: stopped mid-run: {charged}"
        );

        sandbox
            .register_secret_key(&SecretKeySpec::new(SECRET))
            .unwrap();
        let rerun = w.sweep(as_of).await;
        let fixed = w.check(true).await;
        assert!(
            fixed
                .values()
                .all(|p| *p == before.values().next().unwrap() + 1)
        );
        assert_eq!(
            charged + rerun.charged,
            200,
            "{revoke}: the model: 200 renewals"
        );
        eprintln!(
            "our fault ({revoke}) mid-run: 200 subscriptions, {charged} charged before the stop, {} by the rerun; model 200",
            rerun.charged
        );
    }
    w.assert_no_secrets_in(&[&captured_logs()]).await;
}

#[tokio::test]
async fn toss_down_at_preflight_fails_the_run_before_claiming_and_the_rerun_charges_everyone_once()
{
    let w = World::new().await;
    let start = Utc::now();
    w.subscribe_many("user_down", 30, start).await;
    let mut down = rule(false, 1.0, error(503, "FAILED_INTERNAL_SYSTEM_PROCESSING"));
    down.endpoint = Some(Endpoint::GetPaymentByOrderId);
    w.sandbox.sandbox().set_faults(FaultConfig {
        rules: vec![down],
        ..FaultConfig::default()
    });
    let as_of = next_month(start);

    let err = w.billing.sweep(&options(as_of)).await.unwrap_err();
    let untouched = w.check(true).await;
    w.sandbox.sandbox().set_faults(FaultConfig::default());
    let rerun = w.sweep(as_of).await;

    assert!(matches!(err, billing::Error::TossUnavailable(_)), "{err:?}");
    assert!(untouched.values().all(|p| *p == 1));
    assert_eq!(rerun.charged, 30);
    assert!(w.check(true).await.values().all(|p| *p == 2));
    w.assert_no_secrets_in(&[&captured_logs(), &format!("{err} {err:?}")])
        .await;
}

#[tokio::test]
async fn a_transaction_cancelled_by_a_concurrent_card_change_is_retried_and_both_the_charge_and_the_new_card_survive()
 {
    let w = World::new().await;
    let start = Utc::now();
    let customers = w.subscribe_many("user_race", 40, start).await;
    let mut faults = FaultConfig::default();
    faults
        .latency
        .endpoints
        .insert(Endpoint::Charge, Latency::Fixed { ms: 400 });
    w.sandbox.sandbox().set_faults(faults);
    let as_of = next_month(start);
    let mut registrations = Vec::new();
    for c in &customers {
        registrations.push(w.registration(c, TestCard::Ok).await);
    }

    // Every renewal is in flight at Toss while its subscription gets a new card.
    let replace_cards = async {
        tokio::time::sleep(StdDuration::from_millis(150)).await;
        let mut outcomes = Vec::new();
        for r in &registrations {
            outcomes.push(w.billing.register_card(r, Utc::now()).await.unwrap());
        }
        outcomes
    };
    let (summary, outcomes) = tokio::join!(w.sweep(as_of), replace_cards);

    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, billing::RegistrationOutcome::CardReplaced { .. })),
        "{outcomes:?}"
    );
    // A renewal sent with the old card either went through before the old card was deleted
    // or was declined because of it; that decline says nothing about the new card.
    assert_eq!((summary.declined, summary.errors), (0, 0), "{summary:?}");
    assert_eq!(summary.charged + summary.skipped, 40, "{summary:?}");
    for c in &customers {
        let sub = w.subscription(c).await;
        assert_eq!(
            sub.status(),
            Status::Active,
            "no dunning for a card just replaced"
        );
        assert!(sub.dunning().is_none());
    }
    w.check(true).await;
    let next_day = w.sweep(as_of + Duration::days(1)).await;
    assert_eq!(summary.charged + next_day.charged, 40, "{next_day:?}");
    eprintln!(
        "card replaced during the renewal: 40 subscriptions, {} charged on the old card, {} declined on the deleted old card and charged on the new one the next day; model 40",
        summary.charged, next_day.charged
    );
    let paid = w.check(true).await;
    assert!(paid.values().all(|p| *p == 2));
    let snapshot = w.snapshot();
    for c in &customers {
        let sub = w.subscription(c).await;
        let key = sub.billing_key().unwrap();
        let fp = toss_sandbox::fingerprint(key.expose_secret());
        let view = snapshot.billing_key(key.expose_secret()).unwrap();
        assert!(!view.deleted, "the new card is the live one ({fp})");
        assert!(sub.version() >= 3, "both writes landed: {}", sub.version());
    }
    w.assert_no_secrets_in(&[&captured_logs(), &format!("{outcomes:?}")])
        .await;
}

#[tokio::test]
async fn a_stale_outcome_write_is_a_typed_conflict_and_writes_neither_the_ledger_nor_the_subscription()
 {
    let w = World::new().await;
    let start = Utc::now();
    w.subscribe_many("user_stale", 1, start).await;
    let sub = w.subscription("user_stale_0000").await;
    let attempt = domain::ChargeAttempt::claim(
        sub.id().clone(),
        sub.customer_key().clone(),
        1,
        1,
        domain::Krw::new(3900),
        domain::AttemptKind::Renewal,
        domain::Lease {
            owner: "me".into(),
            until: start + Duration::minutes(5),
        },
        start,
    );
    w.store.insert_attempt(&attempt).await.unwrap();
    // Someone else changes the subscription after we read it.
    let mut other = sub.clone();
    other.update_contact(
        Some(domain::Email::parse("other@example.com").unwrap()),
        None,
    );
    w.store.save_subscription(&mut other).await.unwrap();
    let mut done = attempt.clone();
    done.mark_done(
        domain::PaymentKey::parse("tviva_fake_payment_key_0001").unwrap(),
        start,
        start,
    );
    let mut stale = domain::Subscription::restore(domain::SubscriptionRecord {
        credits: sub.credits() + 30,
        ..sub.to_record()
    });

    let err = w
        .store
        .record_outcome(&mut stale, &done, "me")
        .await
        .unwrap_err();

    assert!(err.is_conflict(), "{err:?}");
    assert!(
        matches!(err, store::Error::TransactionCanceled { .. }),
        "{err:?}"
    );
    let stored = w.store.attempt(sub.id(), 1, 1).await.unwrap().unwrap();
    assert_eq!(
        stored.status(),
        AttemptStatus::Pending,
        "the ledger half did not apply"
    );
    assert_eq!(
        w.subscription("user_stale_0000").await,
        other,
        "nor the subscription half"
    );
}

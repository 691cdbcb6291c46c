//! An adversarial review of the app API (checkout state, cancel/resume, credits; commits
//! eafdd9f and 903851c). Each test here failed on the reviewed code and describes a path that
//! breaks the contract in docs/money-rules.md §4 / §10.

use std::collections::BTreeMap;

use billing::{ChangeOutcome, ConsumeOutcome, ConsumeRequest};
use chrono::{DateTime, Duration, Utc};
use domain::Subscription;
use toss_sandbox::{Endpoint, FaultConfig, Latency, TestCard};

use crate::harness::{World, options};

fn sweep_time(sub: &Subscription) -> DateTime<Utc> {
    sub.next_charge_at().unwrap() + Duration::hours(9)
}

fn user_of(customer: &str) -> String {
    format!("user-of-{customer}")
}

/// The sweep reads a page of due subscriptions from the (eventually consistent) due index
/// and claims each one later, when a Toss slot frees up; the claim is a conditional create of
/// the attempt alone and never checks that the subscription is still the one it read. A
/// customer who cancels in that gap gets `200 cancelAtPeriodEnd: true` (no attempt exists
/// yet, so the cancel is allowed), and is then charged for another month anyway.
#[tokio::test]
async fn a_customer_whose_cancel_was_accepted_before_the_renewal_was_claimed_is_not_charged_for_it()
{
    let w = World::new().await;
    let customers = ["user_gap_a", "user_gap_b"];
    let mut as_of = Utc::now();
    for c in customers {
        as_of = sweep_time(&w.subscribe(c, TestCard::Ok, Utc::now()).await);
    }
    // Renewal charges take 2 s: with one Toss slot, the second due subscription waits (with
    // the copy the sweep read) while the first one is charged.
    let mut latency = BTreeMap::new();
    latency.insert(Endpoint::Charge, Latency::Fixed { ms: 2000 });
    w.sandbox.sandbox().set_faults(FaultConfig {
        latency: toss_sandbox::faults::LatencyConfig {
            default: None,
            endpoints: latency,
        },
        rules: vec![],
    });
    let mut opts = options(as_of);
    opts.concurrency = 1;

    let (swept, cancels) = tokio::join!(w.billing.sweep(&opts), async {
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        let mut out = Vec::new();
        for c in customers {
            let outcome = w
                .billing
                .cancel_subscription(&user_of(c), as_of)
                .await
                .unwrap();
            out.push((c, outcome));
        }
        out
    });
    swept.unwrap();

    let accepted: Vec<&str> = cancels
        .iter()
        .filter(|(_, o)| matches!(o, ChangeOutcome::Changed(s) if s.cancel_at_period_end()))
        .map(|(c, _)| *c)
        .collect();
    assert!(
        !accepted.is_empty(),
        "one renewal was still waiting for its slot, so its cancel is accepted: {cancels:?}"
    );
    for c in accepted {
        assert_eq!(
            w.done_payments(c),
            1,
            "{c}: the cancel was answered 200 before any charge was claimed, yet the renewal was charged"
        );
        w.assert_ledger_matches_toss(c).await;
    }
}

/// product §10.3: "The same key with the same body replays the first answer (status and
/// body) without consuming again." Only a `200` is remembered: a key first answered
/// `409 INSUFFICIENT_CREDITS` spends credits when it is retried after the next grant.
#[tokio::test]
async fn a_key_first_answered_insufficient_credits_replays_that_answer_instead_of_spending_later() {
    let w = World::new().await;
    let sub = w.subscribe("user_idem409", TestCard::Ok, Utc::now()).await;
    let user = user_of("user_idem409");
    let one = ConsumeRequest {
        idempotency_key: "k-one".into(),
        amount: 1,
    };
    assert!(matches!(
        w.billing
            .consume_credits(&user, &one, Utc::now())
            .await
            .unwrap(),
        ConsumeOutcome::Consumed { credits: 29, .. }
    ));
    let all = ConsumeRequest {
        idempotency_key: "k-all".into(),
        amount: 30,
    };
    let first = w
        .billing
        .consume_credits(&user, &all, Utc::now())
        .await
        .unwrap();
    assert_eq!(first, ConsumeOutcome::Insufficient { credits: 29 });

    // The next month is paid: the allowance is 30 again.
    w.sweep(sweep_time(&sub)).await;
    assert_eq!(w.subscription("user_idem409").await.credits(), 30);

    let retried = w
        .billing
        .consume_credits(&user, &all, Utc::now())
        .await
        .unwrap();
    assert!(
        !matches!(retried, ConsumeOutcome::Consumed { .. }),
        "the same key and body spent 30 credits although its first answer was 409: {retried:?}"
    );
    assert_eq!(w.subscription("user_idem409").await.credits(), 30);
}

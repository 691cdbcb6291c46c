//! Seeds due subscriptions straight into the table, each with a real billing key issued by the
//! sandbox, and checks afterwards that each was charged exactly once (Toss side and ledger).

use std::collections::HashMap;

use anyhow::{Context, anyhow};
use chrono::{DateTime, Duration, Utc};
use domain::{
    AttemptKind, AttemptStatus, BillingKey, ChargeAttempt, CustomerKey, Krw, Lease, OrderId, Plan,
    Subscription, SubscriptionId,
};
use futures::{StreamExt, TryStreamExt, stream};
use toss_sandbox::{Sandbox, TestCard};

/// One seeded subscription.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub id: SubscriptionId,
    pub customer: String,
}

/// The order id of the renewal the sweep should charge (period 1, attempt 1).
pub fn renewal_order(id: &SubscriptionId) -> OrderId {
    OrderId::for_attempt(id, 1, 1)
}

/// Seeds `n` active subscriptions whose period 1 is due at `as_of`. With `preclaimed`, another
/// run already holds a live lease on each renewal: the sweep must skip them all.
pub async fn seed(
    store: &store::Store,
    sandbox: &Sandbox,
    prefix: &str,
    n: usize,
    as_of: DateTime<Utc>,
    preclaimed: bool,
) -> anyhow::Result<Vec<Seeded>> {
    stream::iter(0..n)
        .map(|i| async move {
            let customer = format!("{prefix}{i:07}");
            let billing = sandbox
                .issue_billing_key(toss_sandbox::DOCS_SECRET_KEY, &customer, TestCard::Ok)
                .map_err(|e| anyhow!("sandbox refused to issue a billing key: {e:?}"))?;
            let anchor = as_of - Duration::days(35);
            let id = SubscriptionId::parse(ulid::Ulid::new().to_string())?;
            let customer_key = CustomerKey::parse(customer.clone())?;
            let mut sub = Subscription::new(
                id.clone(),
                customer_key.clone(),
                BillingKey::parse(billing.billing_key)?,
                Some(billing.card_number),
                anchor,
            );
            // Paid at the anchor: active, period 1 due, the month's credits granted.
            let plan = Plan::new(Krw::new(3900), "Saju맛피아 Pro 월 구독", 30)?;
            sub.apply_success(0, anchor, &plan);
            store
                .save_subscription(&mut sub)
                .await
                .context("seed a subscription")?;
            if preclaimed {
                let attempt = ChargeAttempt::claim(
                    id.clone(),
                    customer_key,
                    1,
                    1,
                    Krw::new(3900),
                    AttemptKind::Renewal,
                    Lease {
                        owner: "bench-another-run".into(),
                        until: as_of + Duration::days(1),
                    },
                    as_of,
                );
                store
                    .insert_attempt(&attempt)
                    .await
                    .context("pre-claim a renewal")?;
            }
            Ok::<_, anyhow::Error>(Seeded { id, customer })
        })
        .buffer_unordered(64)
        .try_collect()
        .await
}

/// Checks every seeded subscription against the sandbox's record and our ledger. Returns the
/// problems found (empty: each renewal was charged exactly once, or with `expect_charged`
/// false, not at all).
pub async fn verify(
    store: &store::Store,
    sandbox: &Sandbox,
    seeded: &[Seeded],
    expect_charged: bool,
) -> anyhow::Result<Vec<String>> {
    let snapshot = sandbox.snapshot();
    let mut payments: HashMap<&str, Vec<&toss_sandbox::snapshot::PaymentView>> = HashMap::new();
    for p in &snapshot.payments {
        payments.entry(p.order_id.as_str()).or_default().push(p);
    }
    let mut done_per_customer: HashMap<&str, u64> = HashMap::new();
    for p in snapshot.payments.iter().filter(|p| p.status == "DONE") {
        *done_per_customer
            .entry(p.customer_key.as_str())
            .or_default() += 1;
    }
    let expected = u64::from(expect_charged);
    let mut problems = Vec::new();
    let total_done = snapshot.counters.done_charges;
    let want_total = expected * seeded.len() as u64;
    if total_done != want_total {
        problems.push(format!(
            "the sandbox approved {total_done} charges, expected {want_total}"
        ));
    }
    for s in seeded {
        let order = renewal_order(&s.id);
        let done = done_per_customer
            .get(s.customer.as_str())
            .copied()
            .unwrap_or(0);
        let requests = snapshot.charge_requests_for(order.as_str());
        if done != expected || requests != expected {
            problems.push(format!(
                "{}: {done} DONE charges and {requests} charge requests at Toss, expected {expected}",
                s.customer
            ));
        }
    }
    let ledger_problems: Vec<String> = stream::iter(seeded)
        .map(|s| {
            let payment_key = payments
                .get(renewal_order(&s.id).as_str())
                .and_then(|v| v.first())
                .map(|p| p.payment_key.clone());
            async move { check_ledger(store, s, payment_key, expect_charged).await }
        })
        .buffer_unordered(64)
        .try_filter_map(|p| async move { Ok(p) })
        .try_collect()
        .await?;
    problems.extend(ledger_problems);
    Ok(problems)
}

async fn check_ledger(
    store: &store::Store,
    s: &Seeded,
    payment_key: Option<String>,
    expect_charged: bool,
) -> anyhow::Result<Option<String>> {
    let ledger = store.ledger(&s.id).await?;
    let sub = store
        .subscription(&s.id)
        .await?
        .ok_or_else(|| anyhow!("{}: subscription vanished", s.customer))?;
    let done: Vec<_> = ledger
        .iter()
        .filter(|a| a.status() == AttemptStatus::Done)
        .collect();
    let problem = if expect_charged {
        match done.as_slice() {
            [one]
                if ledger.len() == 1
                    && one.payment_key().map(|k| k.as_str().to_owned()) == payment_key
                    && sub.next_period() == 2
                    // A paid month sets the balance to the allowance (the seed's 30 unused
                    // credits expire: no rollover by default).
                    && sub.credits() == 30 =>
            {
                None
            }
            _ => Some(format!(
                "{}: ledger {:?} / subscription period {} credits {} do not show exactly one recorded charge",
                s.customer,
                ledger.iter().map(|a| a.status()).collect::<Vec<_>>(),
                sub.next_period(),
                sub.credits()
            )),
        }
    } else if done.is_empty() && sub.next_period() == 1 {
        None
    } else {
        Some(format!(
            "{}: charged although another run held its claim",
            s.customer
        ))
    };
    Ok(problem)
}

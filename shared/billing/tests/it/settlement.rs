//! The daily settlement check against the sandbox's transactions API and DynamoDB Local: each
//! kind of disagreement is planted, found and reported; the one the rules allow is repaired.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use billing::{MismatchKind, SettlementReport};
use chrono::{Duration, NaiveDate, Utc};
use domain::{AttemptStatus, OrderId, Status};
use toss::TransactionQuery;
use toss_sandbox::{Endpoint, FaultAction, FaultConfig, FaultRule, TestCard};

use crate::harness::World;

fn today() -> NaiveDate {
    Utc::now().with_timezone(&domain::SEOUL).date_naive()
}

fn fault(
    endpoint: Endpoint,
    customer: Option<&str>,
    order: Option<&OrderId>,
    commit: bool,
    action: FaultAction,
) -> FaultRule {
    FaultRule {
        endpoint: Some(endpoint),
        probability: 1.0,
        times: Some(1),
        commit,
        customer_key: customer.map(ToOwned::to_owned),
        order_id: order.map(|o| o.as_str().to_owned()),
        action,
    }
}

/// The raw item of the ledger entry with this order id (pk, sk).
async fn key_of(w: &World, order_id: &OrderId) -> (AttributeValue, AttributeValue) {
    let out = w
        .dynamodb
        .scan()
        .table_name(&w.table)
        .filter_expression("order_id = :o")
        .expression_attribute_values(":o", AttributeValue::S(order_id.as_str().to_owned()))
        .send()
        .await
        .unwrap();
    let item = out.items().first().expect("the entry exists").clone();
    (item["pk"].clone(), item["sk"].clone())
}

/// Changes one attribute of a ledger entry behind the store's back.
async fn tamper(w: &World, order_id: &OrderId, attribute: &str, value: AttributeValue) {
    let (pk, sk) = key_of(w, order_id).await;
    w.dynamodb
        .update_item()
        .table_name(&w.table)
        .key("pk", pk)
        .key("sk", sk)
        .update_expression("SET #a = :v")
        .expression_attribute_names("#a", attribute)
        .expression_attribute_values(":v", value)
        .send()
        .await
        .unwrap();
}

async fn first_order(w: &World, customer: &str) -> OrderId {
    w.ledger(customer).await[0].order_id().clone()
}

fn kinds(report: &SettlementReport) -> BTreeMap<String, MismatchKind> {
    report
        .mismatches
        .iter()
        .map(|m| (m.order_id.clone(), m.kind))
        .collect()
}

#[tokio::test]
async fn the_settlement_check_finds_every_planted_mismatch_and_settles_the_unknown_entry_toss_has_done()
 {
    let w = World::new().await;
    // F: a renewal Toss approved whose answer was lost and whose look-up failed: UNKNOWN.
    let f = w.subscribe("user_set_f", TestCard::Ok, Utc::now()).await;
    let renewal = OrderId::for_attempt(f.id(), f.next_period(), f.next_attempt());
    w.sandbox.sandbox().set_faults(FaultConfig {
        rules: vec![
            fault(
                Endpoint::Charge,
                Some("user_set_f"),
                None,
                true,
                FaultAction::DropConnection,
            ),
            fault(
                Endpoint::GetPaymentByOrderId,
                None,
                Some(&renewal),
                false,
                FaultAction::Error {
                    status: Some(500),
                    code: "FAILED_INTERNAL_SYSTEM_PROCESSING".into(),
                    message: None,
                },
            ),
        ],
        ..FaultConfig::default()
    });
    let as_of = f.next_charge_at().unwrap() + Duration::hours(9);
    let swept = w.sweep(as_of).await;
    w.sandbox.sandbox().set_faults(FaultConfig::default());
    assert_eq!(swept.unknown_outcome, 1, "{swept:?}");
    assert_eq!(w.done_payments("user_set_f"), 2, "Toss charged the renewal");
    // A: clean. B: its paid entry deleted from the ledger. C: a DONE entry Toss never saw.
    // D: the amount changed. E: the paymentKey changed.
    for customer in [
        "user_set_a",
        "user_set_b",
        "user_set_c",
        "user_set_d",
        "user_set_e",
    ] {
        w.subscribe(customer, TestCard::Ok, Utc::now()).await;
    }
    let b = first_order(&w, "user_set_b").await;
    let (pk, sk) = key_of(&w, &b).await;
    w.dynamodb
        .delete_item()
        .table_name(&w.table)
        .key("pk", pk)
        .key("sk", sk)
        .send()
        .await
        .unwrap();
    let copied = w.ledger("user_set_c").await.remove(0).to_record();
    let ghost = domain::ChargeAttempt::restore(domain::ChargeAttemptRecord {
        period: 7,
        order_id: OrderId::for_attempt(&copied.subscription_id, 7, 0),
        ..copied
    });
    w.store.insert_attempt(&ghost).await.unwrap();
    let d = first_order(&w, "user_set_d").await;
    tamper(&w, &d, "amount", AttributeValue::N("4900".into())).await;
    let e = first_order(&w, "user_set_e").await;
    tamper(
        &w,
        &e,
        "payment_key",
        AttributeValue::S("tpay_tampered_000000000000".into()),
    )
    .await;

    // WHEN the check runs over today (after the sweep's lease expired).
    let now = as_of + Duration::minutes(2);
    let report = w
        .billing
        .settle_day(today(), "settle-test", now)
        .await
        .unwrap();

    // THEN each planted mismatch is reported under its order id and kind, the unknown renewal
    // Toss has DONE is settled from Toss's record, and everything else matches.
    let expected: BTreeMap<String, MismatchKind> = [
        (b.to_string(), MismatchKind::MissingInLedger),
        (ghost.order_id().to_string(), MismatchKind::MissingAtToss),
        (d.to_string(), MismatchKind::AmountDiffers),
        (e.to_string(), MismatchKind::PaymentKeyDiffers),
    ]
    .into_iter()
    .collect();
    assert_eq!(kinds(&report), expected, "{report:#?}");
    assert_eq!(report.repaired, 1, "{report:#?}");
    // A, C's real first charge, F's first charge: matched; the tampered ones are not.
    assert_eq!(report.matched, 3, "{report:#?}");
    assert_eq!(report.toss_approvals, 7, "{report:#?}");
    let settled = w.ledger("user_set_f").await.pop().unwrap();
    assert_eq!(settled.order_id(), &renewal);
    assert_eq!(settled.status(), AttemptStatus::Done);
    assert_eq!(w.subscription("user_set_f").await.status(), Status::Active);
    w.assert_ledger_matches_toss("user_set_f").await;
    assert_eq!(
        w.done_payments("user_set_f"),
        2,
        "settling charged nothing more"
    );
    for m in &report.mismatches {
        assert!(
            !m.detail.contains("tpay_"),
            "no paymentKey in a report: {m:?}"
        );
    }

    // AND a second run repairs nothing more and reports the same mismatches.
    let again = w
        .billing
        .settle_day(today(), "settle-test-2", now)
        .await
        .unwrap();
    assert_eq!(kinds(&again), expected);
    assert_eq!((again.repaired, again.matched), (0, 4));
}

#[tokio::test]
async fn the_sandbox_pages_a_days_transactions_in_tosss_date_format() {
    let w = World::new().await;
    for customer in ["user_page_1", "user_page_2", "user_page_3"] {
        w.subscribe(customer, TestCard::Ok, Utc::now()).await;
    }
    let day = today();
    let query = |after: Option<String>| TransactionQuery {
        start: day.and_hms_opt(0, 0, 0).unwrap(),
        end: day.and_hms_opt(23, 59, 59).unwrap(),
        starting_after: after,
        limit: 2,
    };

    let first = w.billing.toss().transactions(&query(None)).await.unwrap();
    let second = w
        .billing
        .toss()
        .transactions(&query(first.last().map(|t| t.transaction_key.clone())))
        .await
        .unwrap();
    let yesterday = TransactionQuery {
        start: day.pred_opt().unwrap().and_hms_opt(0, 0, 0).unwrap(),
        end: day.pred_opt().unwrap().and_hms_opt(23, 59, 59).unwrap(),
        starting_after: None,
        limit: 100,
    };
    let none = w.billing.toss().transactions(&yesterday).await.unwrap();

    assert_eq!((first.len(), second.len()), (2, 1));
    let mut orders: Vec<_> = first
        .iter()
        .chain(&second)
        .map(|t| t.order_id.clone())
        .collect();
    orders.sort();
    orders.dedup();
    assert_eq!(orders.len(), 3, "every approval once across the pages");
    assert!(
        first
            .iter()
            .all(|t| t.status == toss::PaymentStatus::Done && t.amount.won() == 3900)
    );
    assert!(none.is_empty(), "nothing approved yesterday: {none:?}");
}

#[tokio::test]
async fn a_console_refund_whose_webhook_never_arrived_is_recorded_by_the_check_and_a_second_run_matches_it()
 {
    let w = World::new().await;
    let now = Utc::now();
    w.subscribe("user_set_console", TestCard::Ok, now).await;
    let paid = w.ledger("user_set_console").await.remove(0);
    let payment_key = paid.payment_key().cloned().unwrap();
    // Refunded in Toss's console; no webhook reaches us.
    w.sandbox
        .sandbox()
        .console_cancel(payment_key.as_str(), "고객 변심", Some(900))
        .unwrap();

    let report = w
        .billing
        .settle_day(today(), "settle-console", now)
        .await
        .unwrap();
    let again = w
        .billing
        .settle_day(today(), "settle-console-2", now)
        .await
        .unwrap();

    assert_eq!(
        (
            report.toss_cancels,
            report.refunds_recorded,
            report.refunds_matched
        ),
        (1, 1, 0),
        "{report:?}"
    );
    assert!(report.mismatches.is_empty(), "{report:?}");
    assert_eq!((again.refunds_recorded, again.refunds_matched), (0, 1));
    let sub = w.subscription("user_set_console").await;
    let refunds = w.store.refunds(sub.id()).await.unwrap();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].amount.won(), 900);
    assert_eq!(refunds[0].by, domain::RefundBy::TossConsole);
    assert_eq!(
        w.ledger("user_set_console").await[0].refunded().won(),
        900,
        "the paid entry's refunded amount follows Toss"
    );
    assert_eq!(
        sub.status(),
        Status::Active,
        "a partial refund ends nothing"
    );
}

//! The app's routes (product §10.3) against DynamoDB Local, the sandbox and the local issuer:
//! what each answers, what it leaves in the table, and that a user only ever reaches its own.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, Utc};
use domain::{AttemptStatus, CreditChange, Status};
use lambda_http::http::Method;
use serde_json::json;
use toss_sandbox::TestCard;

use crate::{APP_DONE, Api};

#[tokio::test]
async fn a_user_who_never_checked_out_has_status_none_and_nothing_to_use_cancel_resume_or_list() {
    let api = Api::new().await;
    let token = api.token("user_never");

    let sub = api
        .call(Method::GET, "/v1/subscription", Some(&token))
        .await;
    let consume = api.consume(&token, "k1", r#"{"amount":1}"#).await;
    let cancel = api
        .call(Method::POST, "/v1/subscription/cancel", Some(&token))
        .await;
    let resume = api
        .call(Method::POST, "/v1/subscription/resume", Some(&token))
        .await;
    let payments = api.call(Method::GET, "/v1/payments", Some(&token)).await;

    assert_eq!(sub.status, 200);
    assert_eq!(sub.json["status"], "none");
    assert_eq!(sub.json["credits"], 0);
    assert_eq!(sub.json["plan"]["amount"], 3900);
    assert_eq!(
        (consume.status, consume.json["error"]["code"].as_str()),
        (409, Some("NO_ACTIVE_SUBSCRIPTION"))
    );
    assert_eq!(
        (cancel.status, cancel.json["error"]["code"].as_str()),
        (409, Some("NO_ACTIVE_SUBSCRIPTION"))
    );
    assert_eq!(
        (resume.status, resume.json["error"]["code"].as_str()),
        (409, Some("NOT_RESUMABLE"))
    );
    assert_eq!(payments.json, json!({"payments": [], "nextCursor": null}));
    assert_eq!(api.items().await, 0, "nothing was written");
}

#[tokio::test]
async fn a_subscriber_sees_its_active_subscription_with_the_months_credits_card_and_next_charge() {
    let api = Api::new().await;
    api.subscribe("user_pro").await;
    let sub = api.subscription("user_pro").await;

    let answer = api
        .call(
            Method::GET,
            "/v1/subscription",
            Some(&api.token("user_pro")),
        )
        .await;

    let body = &answer.json;
    assert_eq!(answer.status, 200, "{body}");
    assert_eq!(body["status"], "active");
    assert_eq!(body["cancelAtPeriodEnd"], false);
    assert_eq!(body["credits"], 30);
    assert_eq!(body["pastDue"], serde_json::Value::Null);
    let end: chrono::DateTime<Utc> = body["currentPeriod"]["end"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        Some(end.timestamp()),
        sub.current_period_end().map(|t| t.timestamp())
    );
    let next: chrono::DateTime<Utc> = body["nextChargeAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        Some(next.timestamp()),
        sub.next_charge_at().map(|t| t.timestamp())
    );
    let number = body["card"]["number"].as_str().unwrap();
    assert!(number.contains('*'), "masked: {number}");
    assert_eq!(
        body["plan"],
        json!({"amount": 3900, "currency": "KRW", "orderName": "Pro 월 구독", "credits": 30})
    );
    let text = body.to_string();
    let billing_key = sub.billing_key().unwrap().expose_secret().to_owned();
    assert!(!text.contains(&billing_key), "no billing key in the answer");
    assert!(
        !text.contains(sub.customer_key().as_str()),
        "no customer key either"
    );
}

#[tokio::test]
async fn consuming_spends_credits_once_per_idempotency_key_and_a_replay_gets_the_first_answer() {
    let api = Api::new().await;
    api.subscribe("user_reader").await;
    let token = api.token("user_reader");

    let first = api.consume(&token, "reading-1", r#"{"amount":2}"#).await;
    let replay = api.consume(&token, "reading-1", r#"{"amount":2}"#).await;
    let default_one = api.consume(&token, "reading-2", "").await;
    let reused = api.consume(&token, "reading-1", r#"{"amount":3}"#).await;

    assert_eq!(
        (first.status, &first.json),
        (200, &json!({"consumed": 2, "credits": 28}))
    );
    assert_eq!(
        (replay.status, &replay.json),
        (200, &first.json),
        "the first answer, again"
    );
    assert_eq!(default_one.json, json!({"consumed": 1, "credits": 27}));
    assert_eq!(reused.status, 422);
    assert_eq!(reused.json["error"]["code"], "IDEMPOTENCY_KEY_REUSED");
    let sub = api.subscription("user_reader").await;
    assert_eq!((sub.credits(), sub.credits_used_in_period()), (27, 3));
    let entries = api.store.credit_entries(sub.id()).await.unwrap();
    let changes: Vec<_> = entries.iter().map(|e| (e.change, e.amount)).collect();
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert!(changes.contains(&(CreditChange::Grant, 30)));
    assert_eq!(
        changes
            .iter()
            .filter(|c| c.0 == CreditChange::Consume)
            .map(|c| c.1)
            .sum::<u64>(),
        3
    );
    assert_eq!(domain::replay_balance(&entries), Some(27));
    assert!(
        !api.dump().await.concat().contains("reading-1"),
        "the idempotency key itself is not stored"
    );
}

#[tokio::test]
async fn asking_for_more_than_the_balance_is_a_409_with_the_balance_and_changes_nothing() {
    let api = Api::new().await;
    api.subscribe("user_greedy").await;
    let token = api.token("user_greedy");
    let before = api.dump().await;

    let answer = api.consume(&token, "too-many", r#"{"amount":31}"#).await;

    assert_eq!(answer.status, 409);
    assert_eq!(answer.json["error"]["code"], "INSUFFICIENT_CREDITS");
    assert_eq!(answer.json["error"]["credits"], 30);
    let sub = api.subscription("user_greedy").await;
    assert_eq!(sub.credits(), 30, "nothing spent");
    assert_eq!(
        api.store.credit_entries(sub.id()).await.unwrap().len(),
        1,
        "no new entry"
    );
    // The refusal is the key's first answer: the same request under it gets it again, another
    // request under it is a reuse, and a new key is served.
    let again = api.consume(&token, "too-many", r#"{"amount":31}"#).await;
    assert_eq!((again.status, &again.json), (409, &answer.json));
    let other_body = api.consume(&token, "too-many", r#"{"amount":30}"#).await;
    assert_eq!(other_body.json["error"]["code"], "IDEMPOTENCY_KEY_REUSED");
    let fits = api.consume(&token, "fits", r#"{"amount":30}"#).await;
    assert_eq!(fits.json, json!({"consumed": 30, "credits": 0}));
    let dump = api.dump().await;
    assert_eq!(
        dump.len(),
        before.len() + 3,
        "the refused key, then the served key and its entry; nothing else"
    );
}

#[tokio::test]
async fn two_hundred_concurrent_consumptions_of_thirty_credits_spend_exactly_thirty_and_never_below_zero()
 {
    let api = Api::new().await;
    api.subscribe("user_crowd").await;
    let token = api.token("user_crowd");
    let keys: Vec<String> = (0..200).map(|i| format!("crowd-{i}")).collect();

    let answers = futures::future::join_all(
        keys.iter()
            .map(|key| api.consume(&token, key, r#"{"amount":1}"#)),
    )
    .await;

    let ok = answers.iter().filter(|a| a.status == 200).count();
    let refused = answers
        .iter()
        .filter(|a| a.status == 409 && a.json["error"]["code"] == "INSUFFICIENT_CREDITS")
        .count();
    let busy = answers.iter().filter(|a| a.status == 503).count();
    assert_eq!(ok + refused + busy, 200, "only these three answers");
    assert_eq!(
        ok, 30,
        "every credit spent once ({refused} refused, {busy} busy)"
    );
    let sub = api.subscription("user_crowd").await;
    assert_eq!(sub.credits(), 0);
    let entries = api.store.credit_entries(sub.id()).await.unwrap();
    let consumed = entries
        .iter()
        .filter(|e| e.change == CreditChange::Consume)
        .count();
    assert_eq!(consumed, 30, "one ledger entry per 200");
    assert_eq!(domain::replay_balance(&entries), Some(0));
    let mut remaining: Vec<u64> = answers
        .iter()
        .filter(|a| a.status == 200)
        .map(|a| a.json["credits"].as_u64().unwrap())
        .collect();
    remaining.sort_unstable();
    assert!(remaining.iter().all(|r| *r < 30), "{remaining:?}");
}

#[tokio::test]
async fn cancel_at_period_end_is_idempotent_resumable_and_the_sweep_ends_it_without_charging() {
    let api = Api::new().await;
    api.subscribe("user_leaving").await;
    let token = api.token("user_leaving");
    let sub = api.subscription("user_leaving").await;

    let cancel = api
        .call(Method::POST, "/v1/subscription/cancel", Some(&token))
        .await;
    let again = api
        .call(Method::POST, "/v1/subscription/cancel", Some(&token))
        .await;
    assert_eq!(cancel.status, 200, "{}", cancel.json);
    assert_eq!(cancel.json["status"], "active");
    assert_eq!(cancel.json["cancelAtPeriodEnd"], true);
    assert_eq!(cancel.json["nextChargeAt"], serde_json::Value::Null);
    assert_eq!(again.json, cancel.json, "idempotent");

    let resumed = api
        .call(Method::POST, "/v1/subscription/resume", Some(&token))
        .await;
    assert_eq!(resumed.json["cancelAtPeriodEnd"], false);
    let not_again = api
        .call(Method::POST, "/v1/subscription/resume", Some(&token))
        .await;
    assert_eq!(not_again.json["error"]["code"], "NOT_RESUMABLE");
    api.call(Method::POST, "/v1/subscription/cancel", Some(&token))
        .await;

    let summary = api
        .sweep(sub.next_charge_at().unwrap() + Duration::hours(1))
        .await;

    assert_eq!(summary.charged, 0, "{summary:?}");
    let ended = api.subscription("user_leaving").await;
    assert_eq!(ended.status(), Status::Canceled);
    assert!(ended.billing_key().is_none(), "the key was deleted at Toss");
    assert_eq!(ended.credits(), 0, "unused credits lapse with it");
    let counters = api.sandbox.sandbox().snapshot().counters;
    assert_eq!(
        (counters.charge_requests, counters.billing_keys_deleted),
        (1, 1)
    );
    let view = api
        .call(Method::GET, "/v1/subscription", Some(&token))
        .await;
    assert_eq!(view.json["status"], "canceled");
    let late_resume = api
        .call(Method::POST, "/v1/subscription/resume", Some(&token))
        .await;
    assert_eq!(late_resume.json["error"]["code"], "NOT_RESUMABLE");
    let consume = api.consume(&token, "after-end", "").await;
    assert_eq!(consume.json["error"]["code"], "NO_ACTIVE_SUBSCRIPTION");
}

#[tokio::test]
async fn a_past_due_subscription_is_canceled_at_once_and_its_key_deleted_and_no_retry_follows() {
    let api = Api::new().await;
    api.subscribe_with("user_pastdue", TestCard::DeclineRenewals)
        .await;
    let sub = api.subscription("user_pastdue").await;
    let first_fail = sub.next_charge_at().unwrap() + Duration::hours(1);
    api.sweep(first_fail).await;
    let token = api.token("user_pastdue");
    let view = api
        .call(Method::GET, "/v1/subscription", Some(&token))
        .await;
    assert_eq!(view.json["status"], "past_due");
    assert!(
        view.json["pastDue"]["lastCode"].is_string(),
        "{}",
        view.json
    );
    assert!(view.json["pastDue"]["nextRetryAt"].is_string());

    let cancel = api
        .call(Method::POST, "/v1/subscription/cancel", Some(&token))
        .await;

    assert_eq!(cancel.status, 200, "{}", cancel.json);
    assert_eq!(cancel.json["status"], "canceled");
    assert_eq!(cancel.json["card"], serde_json::Value::Null);
    let ended = api.subscription("user_pastdue").await;
    assert_eq!(ended.cancel_reason(), Some(domain::CancelReason::Customer));
    assert!(ended.billing_key().is_none());
    let later = api.sweep(first_fail + Duration::days(10)).await;
    assert_eq!((later.charged, later.declined), (0, 0), "{later:?}");
    assert_eq!(
        api.sandbox.sandbox().snapshot().counters.charge_requests,
        2,
        "the first month and the one declined renewal"
    );
}

#[tokio::test]
async fn cancel_waits_while_a_charge_of_the_subscription_is_open() {
    let api = Api::new().await;
    api.subscribe_with("user_inflight", TestCard::DeclineRenewals)
        .await;
    let sub = api.subscription("user_inflight").await;
    // A renewal claimed by a worker that has not finished it (its outcome unknown).
    let attempt = domain::ChargeAttempt::claim(
        sub.id().clone(),
        sub.customer_key().clone(),
        sub.next_period(),
        sub.next_attempt(),
        domain::Krw::new(3900),
        domain::AttemptKind::Renewal,
        domain::Lease {
            owner: "worker".into(),
            until: Utc::now() + Duration::minutes(5),
        },
        Utc::now(),
    );
    api.store.insert_attempt(&attempt).await.unwrap();
    let token = api.token("user_inflight");

    let cancel = api
        .call(Method::POST, "/v1/subscription/cancel", Some(&token))
        .await;

    assert_eq!(cancel.status, 409);
    assert_eq!(cancel.json["error"]["code"], "PAYMENT_PENDING");
    assert!(
        !api.subscription("user_inflight")
            .await
            .cancel_at_period_end()
    );
}

#[tokio::test]
async fn payments_are_listed_newest_first_page_by_page_and_only_the_callers() {
    let api = Api::new().await;
    api.subscribe("user_history").await;
    api.subscribe("user_other").await;
    let sub = api.subscription("user_history").await;
    let mut due = sub.next_charge_at().unwrap();
    for _ in 0..3 {
        api.sweep(due + Duration::hours(1)).await;
        due = api
            .subscription("user_history")
            .await
            .next_charge_at()
            .unwrap();
    }
    let token = api.token("user_history");

    let page1 = api
        .call(Method::GET, "/v1/payments?limit=3", Some(&token))
        .await;
    let cursor = page1.json["nextCursor"].as_str().unwrap().to_owned();
    let page2 = api
        .call(
            Method::GET,
            &format!("/v1/payments?limit=3&cursor={cursor}"),
            Some(&token),
        )
        .await;

    let periods = |page: &crate::Answer| -> Vec<u64> {
        page.json["payments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["period"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(periods(&page1), [3, 2, 1]);
    assert_eq!(periods(&page2), [0]);
    assert_eq!(page2.json["nextCursor"], serde_json::Value::Null);
    let first = &page2.json["payments"][0];
    assert_eq!(first["kind"], "first");
    assert_eq!(first["status"], "DONE");
    assert_eq!(first["amount"], 3900);
    assert_eq!(first["refunded"], 0);
    assert_eq!(first["failure"], serde_json::Value::Null);
    assert!(first["receiptUrl"].is_string(), "{first}");
    assert!(first["approvedAt"].is_string());
    let ledger = api.store.ledger(sub.id()).await.unwrap();
    assert!(ledger.iter().all(|a| a.status() == AttemptStatus::Done));
    let order_ids: Vec<&str> = ledger.iter().map(|a| a.order_id().as_str()).collect();
    let other = api.subscription("user_other").await;
    let others = api.store.ledger(other.id()).await.unwrap();
    let listed = format!("{}{}", page1.json, page2.json);
    assert!(order_ids.iter().all(|o| listed.contains(o)));
    assert!(
        others
            .iter()
            .all(|a| !listed.contains(a.order_id().as_str())),
        "another user's payments never appear"
    );
}

#[tokio::test]
async fn one_user_can_never_read_spend_cancel_or_resume_another_users_subscription() {
    let api = Api::new().await;
    api.subscribe("user_alice").await;
    let bob = api.token("user_bob");
    let alice = api.token("user_alice");
    // Bob uses Alice's idempotency key, and asks with every shape of request the routes take.
    api.consume(&alice, "shared-key", r#"{"amount":1}"#).await;

    let sub = api.call(Method::GET, "/v1/subscription", Some(&bob)).await;
    let consume = api.consume(&bob, "shared-key", r#"{"amount":1}"#).await;
    let cancel = api
        .call(Method::POST, "/v1/subscription/cancel", Some(&bob))
        .await;
    let payments = api.call(Method::GET, "/v1/payments", Some(&bob)).await;

    assert_eq!(sub.json["status"], "none");
    assert_eq!(consume.json["error"]["code"], "NO_ACTIVE_SUBSCRIPTION");
    assert_eq!(cancel.json["error"]["code"], "NO_ACTIVE_SUBSCRIPTION");
    assert_eq!(payments.json["payments"], json!([]));
    let alices = api.subscription("user_alice").await;
    assert_eq!(alices.credits(), 29);
    assert!(!alices.cancel_at_period_end());
    // Bob subscribes too: still only his own.
    let (landing, _) = api.subscribe_with("user_bob", TestCard::Ok).await;
    assert_eq!(landing, APP_DONE);
    let bobs = api.consume(&bob, "shared-key", r#"{"amount":1}"#).await;
    assert_eq!(
        bobs.json,
        json!({"consumed": 1, "credits": 29}),
        "a key is per user"
    );
    assert_eq!(api.subscription("user_alice").await.credits(), 29);
}

#[tokio::test]
async fn a_user_who_subscribed_again_sees_the_earlier_subscriptions_payments_after_the_current_ones()
 {
    resubscribed_user_sees_both_subscriptions(false).await;
}

#[tokio::test]
async fn a_user_item_from_before_the_subscription_list_keeps_the_earlier_subscriptions_payments() {
    resubscribed_user_sees_both_subscriptions(true).await;
}

/// Subscribes, withdraws, subscribes again and renews once; `legacy`: the user item is made as
/// it was before it listed the user's subscriptions.
async fn resubscribed_user_sees_both_subscriptions(legacy: bool) {
    let api = Api::new().await;
    api.subscribe("user_again").await;
    let token = api.token("user_again");
    let first = api.subscription("user_again").await;
    if legacy {
        api.dynamodb
            .update_item()
            .table_name(&api.table)
            .key("pk", AttributeValue::S("USER#user_again".into()))
            .key("sk", AttributeValue::S("USER".into()))
            .update_expression("REMOVE subscription_ids")
            .send()
            .await
            .unwrap();
    }
    let withdrawn = api
        .send(
            Method::POST,
            "/v1/subscription/cancel",
            Some(&token),
            &[("content-type", "application/json")],
            Some(br#"{"mode":"withdraw"}"#.to_vec()),
        )
        .await;
    assert_eq!(withdrawn.status, 200, "{}", withdrawn.json);
    api.subscribe("user_again").await;
    let second = api.subscription("user_again").await;
    api.sweep(second.next_charge_at().unwrap() + Duration::hours(1))
        .await;

    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/payments?limit=1&cursor={c}"),
            None => "/v1/payments?limit=1".to_owned(),
        };
        let page = api.call(Method::GET, &path, Some(&token)).await;
        assert_eq!(page.status, 200, "{}", page.json);
        pages.extend(page.json["payments"].as_array().unwrap().clone());
        match page.json["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages.len() < 10, "paging ends");
    }
    let whole = api
        .call(Method::GET, "/v1/payments?limit=100", Some(&token))
        .await;

    let shown: Vec<(String, u64, String)> = pages
        .iter()
        .map(|p| {
            (
                p["orderId"].as_str().unwrap().to_owned(),
                p["period"].as_u64().unwrap(),
                p["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let of = |sub: &domain::Subscription, period: u32| {
        domain::OrderId::for_attempt(sub.id(), period, 1).to_string()
    };
    assert_eq!(
        shown,
        [
            (of(&second, 1), 1, "DONE".to_owned()),
            (of(&second, 0), 0, "DONE".to_owned()),
            (of(&first, 0), 0, "CANCELED".to_owned()),
        ],
        "newest first, the earlier subscription's refunded payment last"
    );
    assert_eq!(whole.json["payments"].as_array().unwrap().len(), 3);
    assert_eq!(whole.json["nextCursor"], serde_json::Value::Null);
}

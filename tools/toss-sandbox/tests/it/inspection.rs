use reqwest::StatusCode;
use serde_json::json;
use toss_sandbox::{DOCS_SECRET_KEY, SandboxConfig, TestCard, fingerprint};

use crate::{Env, charge_body};

#[tokio::test]
async fn the_state_shows_what_money_moved_without_secrets() {
    let env = Env::new().await;
    let key = env
        .billing_key("customer-1", TestCard::DeclineRenewals)
        .await;
    let path = format!("/v1/billing/{key}");
    env.post_with(
        &path,
        charge_body("customer-1", "order-0001", 4900),
        &[("Idempotency-Key", "a")],
    )
    .await;
    env.post_with(
        &path,
        charge_body("customer-1", "order-0001", 4900),
        &[("Idempotency-Key", "a")],
    )
    .await;
    env.charge(&key, "customer-1", "order-0002").await;
    env.delete(&path).await;

    let raw = env
        .http
        .get(env.url("/__sandbox/state"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let state = env.state().await;

    assert!(!raw.contains(DOCS_SECRET_KEY));
    assert!(!raw.contains(&key));
    assert_eq!(state.charge_requests_for("order-0001"), 2);
    assert_eq!(state.charge_requests_for("order-0002"), 1);
    assert_eq!(state.counters.charge_requests, 3);
    assert_eq!(state.counters.done_charges, 1);
    assert_eq!(state.counters.declined_charges, 1);
    assert_eq!(state.counters.approved_amount, 4900);
    assert_eq!(state.counters.billing_keys_issued, 1);
    assert_eq!(state.counters.billing_keys_deleted, 1);

    let payment = state.payment_by_order_id("order-0001").unwrap();
    assert_eq!(payment.status, "DONE");
    assert_eq!(payment.total_amount, 4900);
    assert_eq!(payment.customer_key, "customer-1");
    assert_eq!(payment.mid, "tosspayments");
    assert_eq!(payment.billing_key_fingerprint, fingerprint(&key));
    assert!(state.payment_by_order_id("order-0002").is_none());

    let billing_key = state.billing_key(&key).unwrap();
    assert!(billing_key.deleted);
    assert_eq!(billing_key.card, TestCard::DeclineRenewals);
    assert_eq!(billing_key.approved_charges, 1);

    let outcomes: Vec<_> = state
        .charge_attempts
        .iter()
        .map(|a| a.outcome.as_str())
        .collect();
    assert_eq!(outcomes, ["DONE", "REJECT_CARD_PAYMENT"]);
    assert_eq!(state.idempotency.len(), 1);
    assert_eq!(state.idempotency[0].status, Some(200));
    assert!(
        state
            .merchants
            .iter()
            .all(|m| !m.key_hint.contains(DOCS_SECRET_KEY))
    );
}

#[tokio::test]
async fn reset_clears_payments_keys_counters_and_knobs() {
    let env = Env::new().await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;
    env.charge(&key, "customer-1", "order-0001").await;
    env.sandbox
        .sandbox()
        .advance_clock(chrono::Duration::days(3));
    env.control(
        reqwest::Method::POST,
        "/__sandbox/declines",
        json!({ "customerKey": "customer-1", "code": "REJECT_CARD_PAYMENT" }),
    )
    .await;

    env.control(reqwest::Method::POST, "/__sandbox/reset", json!({}))
        .await;
    let state = env.state().await;

    assert!(state.payments.is_empty());
    assert!(state.billing_keys.is_empty());
    assert_eq!(state.counters.charge_requests, 0);
    assert_eq!(state.clock_offset_seconds, 0);
    assert!(env.sandbox.sandbox().declines().is_empty());
    assert_eq!(
        env.charge(&key, "customer-1", "order-0001").await.error(),
        (400, "INVALID_BILL_KEY_REQUEST".to_owned())
    );
}

#[tokio::test]
async fn the_cards_endpoint_lists_every_test_card() {
    let env = Env::new().await;

    let cards = env
        .http
        .get(env.url("/__sandbox/cards"))
        .send()
        .await
        .unwrap();

    assert_eq!(cards.status(), StatusCode::OK);
    let cards: serde_json::Value = cards.json().await.unwrap();
    assert_eq!(cards.as_array().unwrap().len(), TestCard::ALL.len());
    assert_eq!(cards[0]["number"], "4330-1234-1234-1234");
}

#[tokio::test]
async fn a_minted_auth_key_for_a_card_that_fails_registration_fails_to_issue() {
    let env = Env::new().await;
    let auth_key = env.mint("customer-1", "invalid_number").await;

    let answer = env
        .post(
            "/v1/billing/authorizations/issue",
            json!({ "authKey": auth_key, "customerKey": "customer-1" }),
        )
        .await;

    assert_eq!(answer.error(), (400, "INVALID_CARD_NUMBER".to_owned()));
}

#[tokio::test]
async fn two_sandboxes_run_side_by_side_and_shut_down_cleanly() {
    let first = toss_sandbox::spawn(SandboxConfig::default()).await.unwrap();
    let second = toss_sandbox::spawn(SandboxConfig::default()).await.unwrap();
    assert_ne!(first.addr(), second.addr());
    assert!(first.base_url().starts_with("http://127.0.0.1:"));
    let base = first.base_url();

    first.shutdown().await.unwrap();
    drop(second);

    let after = crate::client()
        .get(format!("{base}/__sandbox/health"))
        .send()
        .await;
    assert!(after.is_err());
}

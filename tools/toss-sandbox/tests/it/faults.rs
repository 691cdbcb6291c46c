use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use toss_sandbox::{
    DeclineRule, Endpoint, FaultAction, FaultConfig, FaultRule, Latency, SandboxConfig, TestCard,
};

use crate::{Env, charge_body};

fn rule(action: FaultAction, commit: bool) -> FaultRule {
    FaultRule {
        endpoint: Some(Endpoint::Charge),
        probability: 1.0,
        times: Some(1),
        commit,
        customer_key: None,
        order_id: None,
        action,
    }
}

fn internal_error() -> FaultAction {
    FaultAction::Error {
        status: None,
        code: "FAILED_INTERNAL_SYSTEM_PROCESSING".to_owned(),
        message: None,
    }
}

async fn env_with(rules: Vec<FaultRule>) -> (Env, String) {
    let env = Env::new().await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;
    env.sandbox.sandbox().set_faults(FaultConfig {
        rules,
        ..FaultConfig::default()
    });
    (env, key)
}

#[tokio::test]
async fn a_500_before_the_charge_leaves_no_payment_and_a_retry_with_the_same_key_charges() {
    let (env, key) = env_with(vec![rule(internal_error(), false)]).await;
    let path = format!("/v1/billing/{key}");
    let headers = [("Idempotency-Key", "attempt-1")];

    let failed = env
        .post_with(
            &path,
            charge_body("customer-1", "order-0001", 4900),
            &headers,
        )
        .await;
    let lookup = env.get("/v1/payments/orders/order-0001").await;
    let retried = env
        .post_with(
            &path,
            charge_body("customer-1", "order-0001", 4900),
            &headers,
        )
        .await;

    assert_eq!(
        failed.error(),
        (500, "FAILED_INTERNAL_SYSTEM_PROCESSING".to_owned())
    );
    assert_eq!(lookup.error(), (404, "NOT_FOUND_PAYMENT".to_owned()));
    assert_eq!(retried.status, StatusCode::OK);
    assert_eq!(env.state().await.counters.done_charges, 1);
}

#[tokio::test]
async fn a_500_after_the_charge_leaves_a_done_payment_that_a_retry_replays() {
    let (env, key) = env_with(vec![rule(internal_error(), true)]).await;
    let path = format!("/v1/billing/{key}");
    let headers = [("Idempotency-Key", "attempt-1")];

    let failed = env
        .post_with(
            &path,
            charge_body("customer-1", "order-0001", 4900),
            &headers,
        )
        .await;
    let lookup = env.get("/v1/payments/orders/order-0001").await;
    let retried = env
        .post_with(
            &path,
            charge_body("customer-1", "order-0001", 4900),
            &headers,
        )
        .await;

    assert_eq!(failed.status.as_u16(), 500);
    assert_eq!(lookup.json()["status"], "DONE");
    assert_eq!(retried.status, StatusCode::OK);
    assert_eq!(retried.json()["paymentKey"], lookup.json()["paymentKey"]);
    assert_eq!(env.state().await.counters.done_charges, 1);
}

#[tokio::test]
async fn approve_then_drop_commits_the_charge_but_the_client_sees_a_transport_error() {
    let (env, key) = env_with(vec![rule(FaultAction::DropConnection, true)]).await;
    let path = format!("/v1/billing/{key}");
    let headers = [("Idempotency-Key", "attempt-1")];

    let dropped = env
        .send(
            reqwest::Method::POST,
            &path,
            Some(charge_body("customer-1", "order-0001", 4900)),
            &headers,
        )
        .await;
    let lookup = env.get("/v1/payments/orders/order-0001").await;
    let retried = env
        .post_with(
            &path,
            charge_body("customer-1", "order-0001", 4900),
            &headers,
        )
        .await;

    let error = dropped.expect_err("the connection must drop");
    assert!(!error.is_timeout(), "{error:?}");
    assert_eq!(lookup.json()["status"], "DONE");
    assert_eq!(retried.json()["paymentKey"], lookup.json()["paymentKey"]);
}

#[tokio::test]
async fn a_truncated_body_fails_while_reading_and_the_charge_stands() {
    let (env, key) = env_with(vec![rule(FaultAction::TruncateBody, true)]).await;

    let response = env
        .http
        .post(env.url(&format!("/v1/billing/{key}")))
        .header("Authorization", crate::basic(&env.secret_key))
        .json(&charge_body("customer-1", "order-0001", 4900))
        .send()
        .await;
    let body = match response {
        Ok(response) => response.text().await.map(|_| ()),
        Err(error) => Err(error),
    };

    assert!(body.is_err(), "reading a truncated body must fail");
    assert_eq!(
        env.get("/v1/payments/orders/order-0001").await.json()["status"],
        "DONE"
    );
}

#[tokio::test]
async fn a_malformed_body_is_a_complete_answer_that_is_not_json() {
    let (env, key) = env_with(vec![rule(
        FaultAction::MalformedBody {
            status: None,
            body: None,
        },
        false,
    )])
    .await;

    let answer = env.charge(&key, "customer-1", "order-0001").await;

    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        serde_json::from_str::<Value>(&answer.text).is_err(),
        "{}",
        answer.text
    );
    assert!(env.state().await.payments.is_empty());
}

#[tokio::test]
async fn a_429_and_an_unknown_code_can_be_injected_through_the_control_api() {
    let (env, key) = env_with(vec![]).await;
    env.control(
        reqwest::Method::POST,
        "/__sandbox/faults/rules",
        json!({ "endpoint": "charge", "kind": "error", "status": 429, "code": "TOO_MANY_REQUESTS", "times": 1 }),
    )
    .await;
    env.control(
        reqwest::Method::POST,
        "/__sandbox/faults/rules",
        json!({ "endpoint": "charge", "kind": "error", "status": 502, "code": "BRAND_NEW_CODE", "message": "새 에러", "times": 1 }),
    )
    .await;

    let throttled = env.charge(&key, "customer-1", "order-0001").await;
    let unknown = env.charge(&key, "customer-1", "order-0001").await;
    let fine = env.charge(&key, "customer-1", "order-0001").await;

    assert_eq!(throttled.error(), (429, "TOO_MANY_REQUESTS".to_owned()));
    assert_eq!(unknown.error(), (502, "BRAND_NEW_CODE".to_owned()));
    assert_eq!(unknown.json()["message"], "새 에러");
    assert_eq!(fine.status, StatusCode::OK);
}

async fn fault_pattern(seed: u64) -> Vec<u16> {
    let config = SandboxConfig::default()
        .with_seed(seed)
        .with_faults(FaultConfig {
            rules: vec![FaultRule {
                endpoint: Some(Endpoint::GetPaymentByOrderId),
                probability: 0.5,
                times: None,
                commit: false,
                customer_key: None,
                order_id: None,
                action: internal_error(),
            }],
            ..FaultConfig::default()
        });
    let env = Env::with(config).await;
    let mut statuses = Vec::new();
    for _ in 0..24 {
        statuses.push(
            env.get("/v1/payments/orders/order-0001")
                .await
                .status
                .as_u16(),
        );
    }
    statuses
}

#[tokio::test]
async fn the_same_seed_injects_the_same_faults_in_the_same_order() {
    let first = fault_pattern(42).await;
    let second = fault_pattern(42).await;
    let other = fault_pattern(43).await;

    assert_eq!(first, second);
    assert_ne!(first, other);
    assert!(first.contains(&500) && first.contains(&404), "{first:?}");
}

#[tokio::test]
async fn a_forced_decline_applies_to_that_customer_only_and_runs_out() {
    let env = Env::new().await;
    let declined_key = env.billing_key("customer-1", TestCard::Ok).await;
    let other_key = env.billing_key("customer-2", TestCard::Ok).await;
    env.sandbox.sandbox().add_decline(DeclineRule {
        customer_key: "customer-1".to_owned(),
        code: "EXCEED_MAX_DAILY_PAYMENT_COUNT".to_owned(),
        status: None,
        message: None,
        times: Some(1),
    });

    let declined = env.charge(&declined_key, "customer-1", "order-0001").await;
    let other = env.charge(&other_key, "customer-2", "order-0002").await;
    let later = env.charge(&declined_key, "customer-1", "order-0001").await;

    assert_eq!(
        declined.error(),
        (400, "EXCEED_MAX_DAILY_PAYMENT_COUNT".to_owned())
    );
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(later.status, StatusCode::OK);
    let state = env.state().await;
    assert_eq!(state.counters.declined_charges, 1);
    assert_eq!(
        state.charge_attempts[0].outcome,
        "EXCEED_MAX_DAILY_PAYMENT_COUNT"
    );
}

#[tokio::test]
async fn a_decline_set_through_the_control_api_holds_until_cleared() {
    let env = Env::new().await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;
    env.control(
        reqwest::Method::POST,
        "/__sandbox/declines",
        json!({ "customerKey": "customer-1", "code": "REJECT_CARD_PAYMENT" }),
    )
    .await;

    let first = env.charge(&key, "customer-1", "order-0001").await;
    let second = env.charge(&key, "customer-1", "order-0001").await;
    env.control(
        reqwest::Method::DELETE,
        "/__sandbox/declines?customerKey=customer-1",
        json!({}),
    )
    .await;
    let cleared = env.charge(&key, "customer-1", "order-0001").await;

    assert_eq!(first.error(), (403, "REJECT_CARD_PAYMENT".to_owned()));
    assert_eq!(second.error(), (403, "REJECT_CARD_PAYMENT".to_owned()));
    assert_eq!(cleared.status, StatusCode::OK);
}

#[tokio::test]
async fn fixed_latency_delays_every_answer() {
    let env = Env::with(SandboxConfig::default().with_latency(Latency::Fixed { ms: 250 })).await;

    let started = Instant::now();
    env.get("/v1/payments/orders/order-0001").await;

    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn per_endpoint_latency_set_through_the_control_api_slows_only_that_endpoint() {
    let env = Env::new().await;
    env.control(
        reqwest::Method::PUT,
        "/__sandbox/faults/latency",
        json!({ "endpoints": { "getPayment": { "kind": "uniform", "minMs": 200, "maxMs": 300 } } }),
    )
    .await;

    let started = Instant::now();
    env.get("/v1/payments/orders/order-0001").await;
    let by_order = started.elapsed();
    let started = Instant::now();
    env.get("/v1/payments/tgen_x").await;
    let by_key = started.elapsed();

    assert!(by_order < Duration::from_millis(200), "{by_order:?}");
    assert!(by_key >= Duration::from_millis(200), "{by_key:?}");
}

#[tokio::test]
async fn a_rule_can_target_one_order_id() {
    let (env, key) = env_with(vec![FaultRule {
        order_id: Some("order-0002".to_owned()),
        times: None,
        ..rule(internal_error(), false)
    }])
    .await;

    let untouched = env.charge(&key, "customer-1", "order-0001").await;
    let targeted = env.charge(&key, "customer-1", "order-0002").await;

    assert_eq!(untouched.status, StatusCode::OK);
    assert_eq!(targeted.status.as_u16(), 500);
}

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use toss_sandbox::{Latency, SandboxConfig, TestCard};

use crate::{Env, charge_body};

#[tokio::test]
async fn charging_twice_with_the_same_idempotency_key_replays_the_first_payment() {
    let env = Env::new().await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;
    let path = format!("/v1/billing/{key}");
    let headers = [("Idempotency-Key", "charge-order-0001")];

    let first = env
        .post_with(
            &path,
            charge_body("customer-1", "order-0001", 4900),
            &headers,
        )
        .await;
    let second = env
        .post_with(
            &path,
            charge_body("customer-1", "order-0001", 4900),
            &headers,
        )
        .await;

    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(second.status, first.status);
    assert_eq!(second.text, first.text);
    let state = env.state().await;
    assert_eq!(state.counters.done_charges, 1);
    assert_eq!(state.charge_requests_for("order-0001"), 2);
    assert_eq!(state.counters.idempotent_replays, 1);
    assert_eq!(state.idempotency[0].replays, 1);
}

#[tokio::test]
async fn the_body_is_not_part_of_the_idempotency_match() {
    let env = Env::new().await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;
    let path = format!("/v1/billing/{key}");
    let headers = [("Idempotency-Key", "reused-key")];

    let first = env
        .post_with(
            &path,
            charge_body("customer-1", "order-0001", 4900),
            &headers,
        )
        .await;
    let other_order = env
        .post_with(
            &path,
            charge_body("customer-1", "order-0002", 9900),
            &headers,
        )
        .await;

    assert_eq!(other_order.text, first.text);
    assert_eq!(
        env.get("/v1/payments/orders/order-0002").await.error(),
        (404, "NOT_FOUND_PAYMENT".to_owned())
    );
}

#[tokio::test]
async fn an_error_answer_is_replayed_for_the_same_idempotency_key() {
    let env = Env::new().await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;
    let path = format!("/v1/billing/{key}");
    let headers = [("Idempotency-Key", "k-error")];

    let first = env
        .post_with(&path, charge_body("customer-1", "order-0001", 50), &headers)
        .await;
    let fixed_body = env
        .post_with(
            &path,
            charge_body("customer-1", "order-0001", 4900),
            &headers,
        )
        .await;

    assert_eq!(first.error(), (400, "BELOW_MINIMUM_AMOUNT".to_owned()));
    assert_eq!(fixed_body.error(), first.error());
    assert_eq!(fixed_body.text, first.text);
}

#[tokio::test]
async fn the_same_key_on_another_path_or_merchant_is_a_different_request() {
    let env = Env::new().await;
    let key_a = env.billing_key("customer-1", TestCard::Ok).await;
    let key_b = env.billing_key("customer-1", TestCard::Ok).await;
    let headers = [("Idempotency-Key", "same-key")];

    let a = env
        .post_with(
            &format!("/v1/billing/{key_a}"),
            charge_body("customer-1", "order-000a", 4900),
            &headers,
        )
        .await;
    let b = env
        .post_with(
            &format!("/v1/billing/{key_b}"),
            charge_body("customer-1", "order-000b", 4900),
            &headers,
        )
        .await;

    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(b.status, StatusCode::OK);
    assert_ne!(a.json()["paymentKey"], b.json()["paymentKey"]);
}

#[tokio::test]
async fn issuing_again_with_the_same_idempotency_key_replays_the_billing_key() {
    let env = Env::new().await;
    let auth_key = env.mint("customer-1", "ok").await;
    let body = json!({ "authKey": auth_key, "customerKey": "customer-1" });
    let issue = "/v1/billing/authorizations/issue";

    let first = env
        .post_with(issue, body.clone(), &[("Idempotency-Key", "issue-1")])
        .await;
    let replay = env
        .post_with(issue, body.clone(), &[("Idempotency-Key", "issue-1")])
        .await;
    let new_key = env
        .post_with(issue, body.clone(), &[("Idempotency-Key", "issue-2")])
        .await;
    let no_key = env.post(issue, body).await;

    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(replay.text, first.text);
    assert_eq!(new_key.error(), (400, "INVALID_BILLING_AUTH".to_owned()));
    assert_eq!(no_key.error(), (400, "INVALID_BILLING_AUTH".to_owned()));
    assert_eq!(env.state().await.billing_keys.len(), 1);
}

#[tokio::test]
async fn a_repeat_while_the_first_request_is_in_flight_answers_409() {
    let env = Env::new().await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;
    env.sandbox.sandbox().set_faults(toss_sandbox::FaultConfig {
        latency: toss_sandbox::LatencyConfig {
            default: None,
            endpoints: [(toss_sandbox::Endpoint::Charge, Latency::Fixed { ms: 600 })].into(),
        },
        rules: vec![],
    });
    let path = format!("/v1/billing/{key}");
    let headers = [("Idempotency-Key", "slow-key")];

    let (first, second) = tokio::join!(
        env.post_with(
            &path,
            charge_body("customer-1", "order-0001", 4900),
            &headers
        ),
        async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            env.post_with(
                &path,
                charge_body("customer-1", "order-0001", 4900),
                &headers,
            )
            .await
        }
    );

    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        second.error(),
        (409, "IDEMPOTENT_REQUEST_PROCESSING".to_owned())
    );
    let later = env
        .post_with(
            &path,
            charge_body("customer-1", "order-0001", 4900),
            &headers,
        )
        .await;
    assert_eq!(later.text, first.text);
}

#[tokio::test]
async fn an_idempotency_key_longer_than_300_characters_is_refused() {
    let env = Env::new().await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;
    let path = format!("/v1/billing/{key}");
    let too_long = "k".repeat(301);
    let longest = "k".repeat(300);

    let refused = env
        .post_with(
            &path,
            charge_body("customer-1", "order-0001", 4900),
            &[("Idempotency-Key", &too_long)],
        )
        .await;
    let accepted = env
        .post_with(
            &path,
            charge_body("customer-1", "order-0001", 4900),
            &[("Idempotency-Key", &longest)],
        )
        .await;

    assert_eq!(refused.error(), (400, "INVALID_IDEMPOTENCY_KEY".to_owned()));
    assert_eq!(accepted.status, StatusCode::OK);
}

#[tokio::test]
async fn an_idempotency_key_expires_after_fifteen_days_on_the_sandbox_clock() {
    let env = Env::new().await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;
    let path = format!("/v1/billing/{key}");
    let headers = [("Idempotency-Key", "monthly-key")];
    let body = charge_body("customer-1", "order-0001", 4900);
    let first = env.post_with(&path, body.clone(), &headers).await;

    env.sandbox
        .sandbox()
        .advance_clock(chrono::Duration::days(14));
    let within = env.post_with(&path, body.clone(), &headers).await;
    env.sandbox
        .sandbox()
        .advance_clock(chrono::Duration::days(2));
    let after = env.post_with(&path, body, &headers).await;

    assert_eq!(within.text, first.text);
    assert_eq!(after.error(), (400, "DUPLICATED_ORDER_ID".to_owned()));
}

#[tokio::test]
async fn get_requests_ignore_the_idempotency_key() {
    let env = Env::with(SandboxConfig::default()).await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;
    let headers = [("Idempotency-Key", "lookup")];
    let before = env
        .send(
            reqwest::Method::GET,
            "/v1/payments/orders/order-0001",
            None,
            &headers,
        )
        .await
        .unwrap();

    env.charge(&key, "customer-1", "order-0001").await;
    let after = env
        .send(
            reqwest::Method::GET,
            "/v1/payments/orders/order-0001",
            None,
            &headers,
        )
        .await
        .unwrap();

    assert_eq!(before.error(), (404, "NOT_FOUND_PAYMENT".to_owned()));
    assert_eq!(after.status, StatusCode::OK);
    assert!(env.state().await.idempotency.is_empty());
}

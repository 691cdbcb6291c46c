use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;
use toss_sandbox::{DOCS_WIDGET_SECRET_KEY, SandboxConfig, SecretKeySpec, TestCard};

use crate::{Answer, Env, charge_body};

async fn get_with_authorization(env: &Env, value: Option<&str>) -> Answer {
    let mut request = env.http.get(env.url("/v1/payments/orders/order-0001"));
    if let Some(value) = value {
        request = request.header("Authorization", value);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status(),
        trace_id: None,
        text: response.text().await.unwrap(),
    }
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn a_missing_authorization_header_answers_401_unauthorized_key() {
    let env = Env::new().await;

    let answer = get_with_authorization(&env, None).await;

    assert_eq!(answer.error(), (401, "UNAUTHORIZED_KEY".to_owned()));
}

#[tokio::test]
async fn a_key_encoded_without_the_colon_answers_incorrect_basic_auth_format() {
    let env = Env::new().await;
    let value = format!("Basic {}", b64(toss_sandbox::DOCS_SECRET_KEY));

    let answer = get_with_authorization(&env, Some(&value)).await;

    assert_eq!(
        answer.error(),
        (400, "INCORRECT_BASIC_AUTH_FORMAT".to_owned())
    );
    assert!(answer.json()["message"].as_str().unwrap().contains("':'"));
}

#[tokio::test]
async fn a_malformed_header_answers_incorrect_basic_auth_format() {
    let env = Env::new().await;

    let bearer = get_with_authorization(&env, Some("Bearer test_sk_x")).await;
    let garbage = get_with_authorization(&env, Some("Basic ###")).await;

    assert_eq!(
        bearer.error(),
        (400, "INCORRECT_BASIC_AUTH_FORMAT".to_owned())
    );
    assert_eq!(
        garbage.error(),
        (400, "INCORRECT_BASIC_AUTH_FORMAT".to_owned())
    );
}

#[tokio::test]
async fn unknown_live_and_client_keys_answer_401_unauthorized_key() {
    let env = Env::new().await;
    for key in [
        "test_sk_unknownkey",
        "live_sk_realmoney",
        "test_ck_D5GePWvyJnrK0W0k6q8gLzN97Eoq",
    ] {
        let value = format!("Basic {}", b64(&format!("{key}:")));

        let answer = get_with_authorization(&env, Some(&value)).await;

        assert_eq!(
            answer.error(),
            (401, "UNAUTHORIZED_KEY".to_owned()),
            "{key}"
        );
    }
}

#[tokio::test]
async fn a_key_with_a_byte_order_mark_is_not_recognised() {
    let env = Env::new().await;
    let value = format!(
        "Basic {}",
        b64(&format!("\u{feff}{}:", toss_sandbox::DOCS_SECRET_KEY))
    );
    assert!(value.starts_with("Basic 77u/"));

    let answer = get_with_authorization(&env, Some(&value)).await;

    assert_eq!(answer.error(), (401, "UNAUTHORIZED_KEY".to_owned()));
}

#[tokio::test]
async fn a_widget_key_on_billing_endpoints_answers_not_supported_method() {
    let mut env = Env::new().await;
    env.secret_key = DOCS_WIDGET_SECRET_KEY.to_owned();
    let auth_key = env.mint("customer-1", "ok").await;

    let issue = env
        .post(
            "/v1/billing/authorizations/issue",
            json!({ "authKey": auth_key, "customerKey": "customer-1" }),
        )
        .await;
    let lookup = env.get("/v1/payments/orders/order-0001").await;

    assert_eq!(issue.error(), (400, "NOT_SUPPORTED_METHOD".to_owned()));
    assert_eq!(lookup.error(), (404, "NOT_FOUND_PAYMENT".to_owned()));
}

#[tokio::test]
async fn a_key_without_a_billing_contract_answers_not_supported_method() {
    let mut env = Env::with(
        SandboxConfig::default()
            .with_secret_key(SecretKeySpec::new("test_sk_nocontract").without_billing_contract()),
    )
    .await;
    env.secret_key = "test_sk_nocontract".to_owned();

    let answer = env
        .post(
            "/v1/billing/whatever=",
            charge_body("customer-1", "order-0001", 4900),
        )
        .await;

    assert_eq!(answer.error(), (400, "NOT_SUPPORTED_METHOD".to_owned()));
}

#[tokio::test]
async fn each_secret_key_is_its_own_merchant() {
    let mut env = Env::with(
        SandboxConfig::default()
            .with_secret_key(SecretKeySpec::new("test_sk_shopb").with_mid("shop_b")),
    )
    .await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;
    let payment = env.charge(&key, "customer-1", "order-0001").await.json();

    env.secret_key = "test_sk_shopb".to_owned();
    let lookup = env
        .get(&format!(
            "/v1/payments/{}",
            payment["paymentKey"].as_str().unwrap()
        ))
        .await;
    let charge = env.charge(&key, "customer-1", "order-0002").await;
    let own_key = env.billing_key("customer-1", TestCard::Ok).await;
    let same_order_elsewhere = env.charge(&own_key, "customer-1", "order-0001").await;

    assert_eq!(lookup.error(), (404, "NOT_FOUND_PAYMENT".to_owned()));
    assert_eq!(charge.error(), (400, "INVALID_BILL_KEY_REQUEST".to_owned()));
    assert_eq!(same_order_elsewhere.status, StatusCode::OK);
    assert_eq!(same_order_elsewhere.json()["mId"], "shop_b");
}

#[tokio::test]
async fn keys_registered_and_revoked_through_the_control_api_take_effect() {
    let mut env = Env::new().await;
    let registered = env
        .control(
            reqwest::Method::POST,
            "/__sandbox/secret-keys",
            json!({ "secretKey": "test_sk_runtime", "mid": "runtime" }),
        )
        .await;
    env.secret_key = "test_sk_runtime".to_owned();
    let before = env.get("/v1/payments/orders/order-0001").await;

    env.control(
        reqwest::Method::POST,
        "/__sandbox/secret-keys/revoke",
        json!({ "secretKey": "test_sk_runtime" }),
    )
    .await;
    let after = env.get("/v1/payments/orders/order-0001").await;

    assert_eq!(registered["mid"], "runtime");
    assert!(!registered.to_string().contains("test_sk_runtime"));
    assert_eq!(before.error(), (404, "NOT_FOUND_PAYMENT".to_owned()));
    assert_eq!(after.error(), (401, "UNAUTHORIZED_KEY".to_owned()));
}

#[tokio::test]
async fn registering_a_live_key_is_refused() {
    let env = Env::new().await;

    let response = env
        .http
        .post(env.url("/__sandbox/secret-keys"))
        .json(&json!({ "secretKey": "live_sk_real" }))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

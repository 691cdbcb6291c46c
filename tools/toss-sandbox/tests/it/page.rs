//! The billing-auth page, driven like a browser would: GET the window, POST the form.

use reqwest::StatusCode;
use serde_json::json;
use toss_sandbox::DOCS_CLIENT_KEY;

use crate::Env;

const SUCCESS: &str = "http://localhost:3000/billing/success?billingMethod=CARD&";
const FAIL: &str = "http://localhost:3000/billing/fail";

fn form_body(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| {
            format!(
                "{}={}",
                name,
                percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// POST the card form as the page would, returning the redirect target.
async fn submit(env: &Env, customer_key: &str, card: &str, action: &str) -> String {
    let body = form_body(&[
        ("clientKey", DOCS_CLIENT_KEY),
        ("customerKey", customer_key),
        ("successUrl", SUCCESS),
        ("failUrl", FAIL),
        ("card", card),
        ("authCode", "000000"),
        ("action", action),
    ]);
    let response = env
        .http
        .post(env.url("/billing-auth"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    response.headers()["location"].to_str().unwrap().to_owned()
}

fn query_value(url: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(url).unwrap();
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Card window → successUrl → issue: the billing key.
async fn register(env: &Env, customer_key: &str, card: &str) -> String {
    let location = submit(env, customer_key, card, "submit").await;
    let auth_key = query_value(&location, "authKey").unwrap();
    let answer = env
        .post(
            "/v1/billing/authorizations/issue",
            json!({ "authKey": auth_key, "customerKey": customer_key }),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.json()["billingKey"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_window_renders_a_card_form_with_stable_element_ids() {
    let env = Env::new().await;
    let url = env
        .sandbox
        .billing_auth_url(DOCS_CLIENT_KEY, "customer-1", SUCCESS, FAIL);

    let response = env.http.get(url).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    for id in [
        "billing-auth-form",
        "card-ok",
        "card-decline-renewals",
        "card-stopped",
        "card-invalid-number",
        "auth-code",
        "submit-card",
        "cancel",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "missing #{id}");
    }
    assert!(html.contains("4330-1234-1234-1234"));
    assert!(!html.contains("<script"));
}

#[tokio::test]
async fn registering_keeps_the_success_url_query_and_adds_customer_key_and_auth_key() {
    let env = Env::new().await;

    let location = submit(&env, "customer-1", "ok", "submit").await;

    assert!(
        location.starts_with(
            "http://localhost:3000/billing/success?billingMethod=CARD&customerKey=customer-1&authKey=bln_"
        ),
        "{location}"
    );
}

#[tokio::test]
async fn the_always_working_card_charges_every_time() {
    let env = Env::new().await;
    let key = register(&env, "customer-1", "ok").await;

    for order in ["order-0001", "order-0002", "order-0003"] {
        assert_eq!(
            env.charge(&key, "customer-1", order).await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn the_renewal_declining_card_approves_the_first_charge_only() {
    let env = Env::new().await;
    let key = register(&env, "customer-1", "decline-renewals").await;

    let first = env.charge(&key, "customer-1", "order-0001").await;
    let renewal = env.charge(&key, "customer-1", "order-0002").await;
    let again = env.charge(&key, "customer-1", "order-0003").await;

    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(renewal.error(), (403, "REJECT_CARD_PAYMENT".to_owned()));
    assert!(
        renewal.json()["message"]
            .as_str()
            .unwrap()
            .contains("한도초과 혹은 잔액부족")
    );
    assert_eq!(again.error(), (403, "REJECT_CARD_PAYMENT".to_owned()));
}

#[tokio::test]
async fn the_stopped_card_registers_but_never_charges() {
    let env = Env::new().await;
    let key = register(&env, "customer-1", "stopped").await;

    let answer = env.charge(&key, "customer-1", "order-0001").await;

    assert_eq!(answer.error(), (400, "INVALID_STOPPED_CARD".to_owned()));
}

#[tokio::test]
async fn the_invalid_card_fails_in_the_window_with_an_encoded_korean_message() {
    let env = Env::new().await;

    let location = submit(&env, "customer-1", "invalid-number", "submit").await;

    assert!(
        location.starts_with(&format!("{FAIL}?code=INVALID_CARD_NUMBER&message=%")),
        "{location}"
    );
    assert_eq!(
        query_value(&location, "message").unwrap(),
        "카드번호를 다시 확인해주세요."
    );
    assert!(env.state().await.billing_keys.is_empty());
}

#[tokio::test]
async fn the_card_company_rejection_fails_in_the_window() {
    let env = Env::new().await;

    let location = submit(&env, "customer-1", "reject-company", "submit").await;

    assert_eq!(
        query_value(&location, "code").as_deref(),
        Some("REJECT_CARD_COMPANY")
    );
}

#[tokio::test]
async fn cancelling_the_window_redirects_to_fail_url_with_pay_process_canceled() {
    let env = Env::new().await;

    let location = submit(&env, "customer-1", "ok", "cancel").await;

    assert_eq!(
        query_value(&location, "code").as_deref(),
        Some("PAY_PROCESS_CANCELED")
    );
    assert_eq!(
        query_value(&location, "message").as_deref(),
        Some("결제가 사용자에 의해 취소되었습니다.")
    );
}

#[tokio::test]
async fn curl_can_drive_the_window_with_a_plain_get() {
    let env = Env::new().await;
    let url = format!(
        "{}&card=stopped",
        env.sandbox
            .billing_auth_url(DOCS_CLIENT_KEY, "customer-9", SUCCESS, FAIL)
            .replace("/billing-auth?", "/billing-auth/submit?")
    );

    let response = env.http.get(url).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap();
    assert_eq!(
        query_value(location, "customerKey").as_deref(),
        Some("customer-9")
    );
    assert!(
        query_value(location, "authKey")
            .unwrap()
            .starts_with("bln_")
    );
}

#[tokio::test]
async fn the_window_refuses_bad_customer_keys_relative_urls_and_widget_keys() {
    let env = Env::new().await;
    let cases = [
        (DOCS_CLIENT_KEY, "x", SUCCESS, "INVALID_CUSTOMER_KEY"),
        (
            DOCS_CLIENT_KEY,
            &"a".repeat(51),
            SUCCESS,
            "INVALID_CUSTOMER_KEY",
        ),
        (
            DOCS_CLIENT_KEY,
            "customer-1",
            "/billing/success",
            "INCORRECT_SUCCESS_URL_FORMAT",
        ),
        (
            "test_gck_docs_x",
            "customer-1",
            SUCCESS,
            "NOT_SUPPORTED_WIDGET_KEY",
        ),
        ("live_ck_real", "customer-1", SUCCESS, "INVALID_CLIENT_KEY"),
    ];
    for (client_key, customer_key, success, code) in cases {
        let url = env
            .sandbox
            .billing_auth_url(client_key, customer_key, success, FAIL);

        let response = env.http.get(url).send().await.unwrap();

        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{code}");
        let html = response.text().await.unwrap();
        assert!(
            html.contains(&format!("<code id=\"error-code\">{code}</code>")),
            "{html}"
        );
    }
}

#[tokio::test]
async fn a_wrong_verification_code_keeps_the_window_open() {
    let env = Env::new().await;
    let body = form_body(&[
        ("clientKey", DOCS_CLIENT_KEY),
        ("customerKey", "customer-1"),
        ("successUrl", SUCCESS),
        ("failUrl", FAIL),
        ("card", "ok"),
        ("authCode", "123456"),
    ]);

    let response = env
        .http
        .post(env.url("/billing-auth"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("id=\"error\""));
}

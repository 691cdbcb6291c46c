use chrono::{DateTime, Utc};
use lambda_http::http::Method;

use crate::{API_BASE, Api};

fn state_of(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

#[tokio::test]
async fn a_signed_in_user_gets_one_random_customer_key_and_a_fresh_state_for_each_checkout() {
    let api = Api::new().await;
    let token = api.token("user_2checkoutAlice");

    let first = api.call(Method::POST, "/v1/checkout", Some(&token)).await;
    let second = api.call(Method::POST, "/v1/checkout", Some(&token)).await;

    assert_eq!((first.status, second.status), (201, 201), "{}", first.json);
    let key = first.json["customerKey"].as_str().unwrap();
    assert_eq!(second.json["customerKey"], key, "the key is reused");
    assert!(key.starts_with("cus_") && key.len() == 36, "{key}");
    assert!(!key.contains("checkoutAlice"), "the key is not the user id");
    let success = first.json["successUrl"].as_str().unwrap();
    let fail = first.json["failUrl"].as_str().unwrap();
    assert!(
        success.starts_with(&format!("{API_BASE}/billing/success?state=")),
        "{success}"
    );
    assert!(
        fail.starts_with(&format!("{API_BASE}/billing/fail?state=")),
        "{fail}"
    );
    assert_eq!(state_of(success), state_of(fail));
    assert_eq!(state_of(success).len(), 64, "256 bits in hex");
    assert_ne!(
        state_of(success),
        state_of(second.json["successUrl"].as_str().unwrap()),
        "each checkout has its own state"
    );
    let expires: DateTime<Utc> = first.json["expiresAt"].as_str().unwrap().parse().unwrap();
    let minutes = (expires - Utc::now()).num_minutes();
    assert!((28..=30).contains(&minutes), "{minutes}");
    assert_eq!(
        first.json["plan"],
        serde_json::json!({"amount": 3900, "currency": "KRW", "orderName": "Pro 월 구독", "credits": 30})
    );
    assert_eq!(api.items().await, 3, "one user item and two checkouts");
}

#[tokio::test]
async fn two_users_get_different_customer_keys() {
    let api = Api::new().await;
    let a = api
        .call(Method::POST, "/v1/checkout", Some(&api.token("user_a")))
        .await;
    let b = api
        .call(Method::POST, "/v1/checkout", Some(&api.token("user_b")))
        .await;
    assert_ne!(a.json["customerKey"], b.json["customerKey"]);
}

#[tokio::test]
async fn a_checkout_without_a_valid_token_is_a_401_and_writes_nothing() {
    let api = Api::new().await;
    let other = auth_issuer::spawn(auth_issuer::IssuerConfig::default())
        .await
        .unwrap();
    let foreign = other
        .issuer()
        .mint(&auth_issuer::TokenRequest::for_user("user_a"))
        .unwrap();

    for bearer in [None, Some("not.a.jwt"), Some(foreign.as_str())] {
        let answer = api.call(Method::POST, "/v1/checkout", bearer).await;
        assert_eq!(answer.status, 401, "{bearer:?}");
        assert_eq!(answer.headers["www-authenticate"], "Bearer");
        assert_eq!(answer.json["error"]["code"], "UNAUTHENTICATED");
    }
    let wrong_method = api
        .call(Method::GET, "/v1/checkout", Some(&api.token("user_a")))
        .await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.headers["allow"], "POST");
    assert_eq!(api.items().await, 0);
}

//! An adversarial review of the app's routes (commit eafdd9f): each test here failed on the
//! reviewed code.

use lambda_http::http::Method;

use crate::Api;

/// product §10.3: `GET /v1/subscription` answers `"card":{"company":…,"number":"4330****123*"}`.
/// The subscription keeps only the masked number, so the app cannot say which card it charges.
#[tokio::test]
async fn the_subscription_names_the_card_company_next_to_the_masked_number() {
    let api = Api::new().await;
    api.subscribe("user_card_company").await;

    let answer = api
        .call(
            Method::GET,
            "/v1/subscription",
            Some(&api.token("user_card_company")),
        )
        .await;

    assert_eq!(answer.status, 200, "{}", answer.json);
    assert!(answer.json["card"]["number"].is_string(), "{}", answer.json);
    assert!(
        answer.json["card"]["company"].is_string(),
        "the card has no company: {}",
        answer.json
    );
}

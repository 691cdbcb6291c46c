use toss::ErrorClass;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer};

use crate::support::*;

#[tokio::test]
async fn issuing_posts_the_auth_key_and_customer_key_and_parses_the_verbatim_billing_example() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/billing/authorizations/issue"))
        .and(header("Authorization", BASIC))
        .and(header("Idempotency-Key", IDEMPOTENCY_KEY))
        .and(body_json(serde_json::json!({
            "authKey": AUTH_KEY,
            "customerKey": CUSTOMER_KEY,
        })))
        .respond_with(json(200, BILLING_JSON))
        .expect(1)
        .mount(&server)
        .await;

    let billing = client(&server)
        .issue_billing_key(&auth_key(), &customer_key(), &idempotency_key())
        .await
        .unwrap();

    assert_eq!(billing.billing_key.expose_secret(), BILLING_KEY);
    assert_eq!(billing.customer_key, "<customerKey>");
    assert_eq!(billing.method.as_deref(), Some("카드"));
    assert_eq!(
        billing.authenticated_at.as_deref(),
        Some("2021-01-01T10:00:00+09:00")
    );
    assert_eq!(billing.card_company.as_deref(), Some("현대"));
    assert_eq!(billing.card_number.as_deref(), Some("43301234****123*"));
    let card = billing.card.unwrap();
    assert_eq!(card.issuer_code.as_deref(), Some("61"));
    assert_eq!(card.acquirer_code.as_deref(), Some("31"));
    assert_eq!(card.number.as_deref(), Some("43301234****123*"));
    assert_eq!(card.card_type.as_deref(), Some("신용"));
    assert_eq!(card.owner_type.as_deref(), Some("개인"));
    assert_eq!(billing.m_id.as_deref(), Some("tosspayments"));
    server.verify().await;
}

#[tokio::test]
async fn a_card_refused_at_registration_is_a_rejected_registration_not_a_decline() {
    for code in [
        "INVALID_CARD_NUMBER",
        "INVALID_STOPPED_CARD",
        "REJECT_CARD_COMPANY",
        "INVALID_BILLING_AUTH",
        "NOT_FOUND_BILLING",
        "EXCEED_MAX_AUTH_COUNT",
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(toss_error(400, code, "카드 오류"))
            .mount(&server)
            .await;

        let err = client(&server)
            .issue_billing_key(&auth_key(), &customer_key(), &idempotency_key())
            .await
            .unwrap_err();

        assert_eq!(err.class(), ErrorClass::Rejected, "{code}");
        assert_eq!(err.operation(), Some(toss::Operation::IssueBillingKey));
    }
}

#[tokio::test]
async fn a_merchant_without_a_billing_contract_is_our_fault_at_registration() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(toss_error(
            400,
            "NOT_SUPPORTED_METHOD",
            "지원되지 않는 결제수단입니다.",
        ))
        .mount(&server)
        .await;

    let err = client(&server)
        .issue_billing_key(&auth_key(), &customer_key(), &idempotency_key())
        .await
        .unwrap_err();

    assert_eq!(err.class(), ErrorClass::OurFault);
}

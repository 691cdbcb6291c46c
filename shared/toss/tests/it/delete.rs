use toss::ErrorClass;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

#[tokio::test]
async fn deleting_a_billing_key_sends_a_delete_and_accepts_an_empty_200() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/billing/{BILLING_KEY}")))
        .and(header("Authorization", BASIC))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;

    client(&server)
        .delete_billing_key(&billing_key())
        .await
        .unwrap();

    assert!(requests(&server).await[0].body.is_empty());
    server.verify().await;
}

#[tokio::test]
async fn deleting_a_key_toss_does_not_know_or_already_removed_succeeds() {
    for answer in [
        toss_error(404, "NOT_FOUND_BILLING", "존재하지 않는 빌링키입니다."),
        toss_error(
            400,
            "ALREADY_REMOVED_BILLING_KEY",
            "이미 삭제된 빌링키입니다.",
        ),
        ResponseTemplate::new(404),
        toss_error(404, "SOME_NEW_NOT_FOUND_CODE", "없음"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("DELETE"))
            .respond_with(answer)
            .expect(1)
            .mount(&server)
            .await;

        client(&server)
            .delete_billing_key(&billing_key())
            .await
            .unwrap();

        server.verify().await;
    }
}

#[tokio::test]
async fn a_delete_refused_for_another_reason_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .respond_with(toss_error(401, "UNAUTHORIZED_KEY", "인증되지 않은 키"))
        .mount(&server)
        .await;

    let err = client(&server)
        .delete_billing_key(&billing_key())
        .await
        .unwrap_err();

    assert_eq!(err.class(), ErrorClass::OurFault);
    assert_eq!(err.operation(), Some(toss::Operation::DeleteBillingKey));
}

use toss::{ErrorClass, PaymentStatus};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer};

use crate::support::*;

#[tokio::test]
async fn a_payment_is_looked_up_by_order_id_with_a_get_and_no_idempotency_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/payments/orders/{ORDER_ID}")))
        .and(header("Authorization", BASIC))
        .respond_with(json(200, PAYMENT_JSON))
        .expect(1)
        .mount(&server)
        .await;

    let payment = client(&server)
        .payment_by_order_id(&order_id())
        .await
        .unwrap();

    assert_eq!(payment.status, PaymentStatus::Done);
    let request = &requests(&server).await[0];
    assert!(request.headers.get("Idempotency-Key").is_none());
    assert!(request.body.is_empty());
    server.verify().await;
}

#[tokio::test]
async fn a_payment_is_looked_up_by_payment_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/payments/tviva20240101abcDEF123"))
        .and(header("Authorization", BASIC))
        .respond_with(json(200, PAYMENT_JSON))
        .expect(1)
        .mount(&server)
        .await;

    client(&server).payment(&payment_key()).await.unwrap();

    server.verify().await;
}

#[tokio::test]
async fn an_unknown_payment_is_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(toss_error(
            404,
            "NOT_FOUND_PAYMENT",
            "존재하지 않는 결제 입니다.",
        ))
        .expect(1)
        .mount(&server)
        .await;

    let err = client(&server)
        .payment_by_order_id(&order_id())
        .await
        .unwrap_err();

    assert_eq!(err.class(), ErrorClass::NotFound);
    assert_eq!(err.status(), Some(404));
    assert!(!err.is_retryable());
    server.verify().await;
}

#[tokio::test]
async fn a_failed_payment_carries_its_failure_code() {
    let server = MockServer::start().await;
    let body = PAYMENT_JSON
        .replace(r#""status": "DONE""#, r#""status": "ABORTED""#)
        .replace(
            r#""failure": null"#,
            r#""failure": {"code": "REJECT_CARD_PAYMENT", "message": "한도초과 혹은 잔액부족"}"#,
        )
        .replace(
            r#""approvedAt": "2022-06-08T15:40:49+09:00""#,
            r#""approvedAt": null"#,
        );
    Mock::given(method("GET"))
        .respond_with(json(200, &body))
        .mount(&server)
        .await;

    let payment = client(&server)
        .payment_by_order_id(&order_id())
        .await
        .unwrap();

    assert_eq!(payment.status, PaymentStatus::Aborted);
    assert_eq!(payment.approved_at, None);
    let failure = payment.failure.unwrap();
    assert_eq!(failure.code, "REJECT_CARD_PAYMENT");
    assert_eq!(failure.error_code(), toss::ErrorCode::RejectCardPayment);
}

use domain::Krw;
use toss::{ErrorClass, PaymentStatus};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer};

use crate::support::*;

fn canceled_payment() -> String {
    PAYMENT_JSON
        .replace(r#""status": "DONE""#, r#""status": "CANCELED""#)
        .replace(r#""balanceAmount": 4900"#, r#""balanceAmount": 0"#)
        .replace(
            r#""cancels": null"#,
            r#""cancels": [{"cancelAmount": 4900, "cancelReason": "고객 요청", "canceledAt": "2022-06-09T10:00:00+09:00", "transactionKey": "tx1", "cancelStatus": "DONE"}]"#,
        )
}

#[tokio::test]
async fn a_full_refund_posts_only_the_reason_with_the_idempotency_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payments/tviva20240101abcDEF123/cancel"))
        .and(header("Authorization", BASIC))
        .and(header("Idempotency-Key", IDEMPOTENCY_KEY))
        .and(body_json(
            serde_json::json!({ "cancelReason": "고객 요청" }),
        ))
        .respond_with(json(200, &canceled_payment()))
        .expect(1)
        .mount(&server)
        .await;

    let payment = client(&server)
        .cancel_payment(&payment_key(), "고객 요청", None, &idempotency_key())
        .await
        .unwrap();

    assert_eq!(payment.status, PaymentStatus::Canceled);
    assert_eq!(payment.balance_amount, Some(Krw::new(0)));
    assert_eq!(payment.cancels.len(), 1);
    assert_eq!(payment.cancels[0].cancel_amount, Krw::new(4900));
    assert_eq!(payment.cancels[0].cancel_status.as_deref(), Some("DONE"));
    server.verify().await;
}

#[tokio::test]
async fn a_partial_refund_sends_the_amount_as_an_integer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_json(
            serde_json::json!({ "cancelReason": "부분 환불", "cancelAmount": 1000 }),
        ))
        .respond_with(json(200, &canceled_payment()))
        .expect(1)
        .mount(&server)
        .await;

    client(&server)
        .cancel_payment(
            &payment_key(),
            "부분 환불",
            Some(Krw::new(1000)),
            &idempotency_key(),
        )
        .await
        .unwrap();

    server.verify().await;
}

#[tokio::test]
async fn cancelling_an_already_cancelled_payment_means_already_processed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(toss_error(
            400,
            "ALREADY_CANCELED_PAYMENT",
            "이미 취소된 결제 입니다.",
        ))
        .expect(1)
        .mount(&server)
        .await;

    let err = client(&server)
        .cancel_payment(&payment_key(), "고객 요청", None, &idempotency_key())
        .await
        .unwrap_err();

    assert_eq!(err.class(), ErrorClass::AlreadyProcessed);
    assert_eq!(err.operation(), Some(toss::Operation::Cancel));
    server.verify().await;
}

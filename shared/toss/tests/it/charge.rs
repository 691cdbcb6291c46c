use domain::{BillingKey, Krw};
use toss::{ErrorClass, PaymentStatus};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer};

use crate::support::*;

#[tokio::test]
async fn a_charge_posts_the_documented_request_to_the_billing_key_path() {
    // GIVEN a Toss that only answers the exact documented request
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/billing/{BILLING_KEY}")))
        .and(header("Authorization", BASIC))
        .and(header("Idempotency-Key", IDEMPOTENCY_KEY))
        .and(header("Content-Type", "application/json"))
        .and(body_json(serde_json::json!({
            "customerKey": CUSTOMER_KEY,
            "amount": 4900,
            "orderId": ORDER_ID,
            "orderName": "토스 프라임 구독",
        })))
        .respond_with(json(200, PAYMENT_JSON))
        .expect(1)
        .mount(&server)
        .await;

    // WHEN we charge
    let payment = client(&server)
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap();

    // THEN the verbatim example Payment is parsed
    assert_eq!(payment.status, PaymentStatus::Done);
    assert_eq!(payment.total_amount, Krw::new(4900));
    server.verify().await;
}

#[tokio::test]
async fn the_charge_body_has_no_null_fields_and_an_integer_amount() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json(200, PAYMENT_JSON))
        .mount(&server)
        .await;
    let mut request = charge_request();
    request.customer_email = Some("a@b.com".into());

    client(&server)
        .charge(&billing_key(), &request, &idempotency_key())
        .await
        .unwrap();

    let body = String::from_utf8(requests(&server).await[0].body.clone()).unwrap();
    assert_eq!(
        body,
        r#"{"customerKey":"cust_01JDQ4ZC1V","amount":4900,"orderId":"sub-2026-10-abc123","orderName":"토스 프라임 구독","customerEmail":"a@b.com"}"#
    );
    assert!(!body.contains("null"), "{body}");
}

#[tokio::test]
async fn the_verbatim_payment_example_parses_into_every_field_that_matters() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json(200, PAYMENT_JSON))
        .mount(&server)
        .await;

    let payment = client(&server)
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap();

    assert_eq!(payment.payment_key.as_str(), "<paymentKey>");
    assert_eq!(payment.order_id, "<orderId>");
    assert_eq!(payment.order_name.as_deref(), Some("토스 프라임 구독"));
    assert_eq!(payment.payment_type.as_deref(), Some("BILLING"));
    assert_eq!(payment.balance_amount, Some(Krw::new(4900)));
    assert_eq!(payment.supplied_amount, Some(Krw::new(4455)));
    assert_eq!(payment.vat, Some(Krw::new(455)));
    assert_eq!(
        payment.approved_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2022-06-08T15:40:49+09:00")
    );
    assert_eq!(
        payment.requested_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2022-06-08T15:40:09+09:00")
    );
    assert_eq!(payment.method.as_deref(), Some("카드"));
    let card = payment.card.clone().unwrap();
    assert_eq!(card.number.as_deref(), Some("43301234****123*"));
    assert_eq!(card.issuer_code.as_deref(), Some("61"));
    assert_eq!(card.amount, Some(Krw::new(4900)));
    assert_eq!(card.installment_plan_months, Some(0));
    assert_eq!(payment.failure, None);
    assert!(payment.cancels.is_empty());
    assert_eq!(
        payment.receipt_url.as_deref(),
        Some("https://dashboard.tosspayments.com/sales-slip?transactionId=...&ref=PX")
    );
    assert_eq!(payment.currency.as_deref(), Some("KRW"));
    assert!(payment.is_done());
}

#[tokio::test]
async fn amounts_sent_as_whole_floats_and_unknown_fields_and_statuses_are_accepted() {
    let server = MockServer::start().await;
    let body = PAYMENT_JSON
        .replace(r#""totalAmount": 4900"#, r#""totalAmount": 4900.0"#)
        .replace(r#""status": "DONE""#, r#""status": "SOMETHING_NEW""#)
        .replace(
            r#""method": "카드""#,
            r#""method": "카드", "brandNewField": {"a": [1, 2]}"#,
        );
    Mock::given(method("POST"))
        .respond_with(json(200, &body))
        .mount(&server)
        .await;

    let payment = client(&server)
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap();

    assert_eq!(payment.total_amount, Krw::new(4900));
    assert_eq!(payment.status, PaymentStatus::Other("SOMETHING_NEW".into()));
}

#[tokio::test]
async fn characters_outside_the_unreserved_set_and_equals_are_percent_encoded_in_the_path() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/billing/ab%2Bcd%2Fef=="))
        .respond_with(json(200, PAYMENT_JSON))
        .expect(1)
        .mount(&server)
        .await;
    let key = BillingKey::parse("ab+cd/ef==").unwrap();

    client(&server)
        .charge(&key, &charge_request(), &idempotency_key())
        .await
        .unwrap();

    server.verify().await;
}

#[tokio::test]
async fn a_base_url_with_a_path_prefix_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/toss/v1/billing/{BILLING_KEY}")))
        .respond_with(json(200, PAYMENT_JSON))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_with(&format!("{}/toss/", server.uri()), |_| {});

    client
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap();

    server.verify().await;
}

#[tokio::test]
async fn a_decline_is_an_api_error_with_status_code_message_and_trace_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(toss_error(
            403,
            "REJECT_CARD_PAYMENT",
            "한도초과 혹은 잔액부족",
        ))
        .expect(1)
        .mount(&server)
        .await;

    let err = client(&server)
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap_err();

    match &err {
        toss::Error::Api {
            operation,
            status,
            code,
            message,
            trace_id,
        } => {
            assert_eq!(*operation, toss::Operation::Charge);
            assert_eq!(*status, 403);
            assert_eq!(*code, toss::ErrorCode::RejectCardPayment);
            assert_eq!(message, "한도초과 혹은 잔액부족");
            assert_eq!(trace_id.as_deref(), Some("trace-abc-123"));
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    assert_eq!(err.class(), ErrorClass::SoftDecline);
    assert_eq!(err.code(), Some("REJECT_CARD_PAYMENT"));
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_stopped_card_needs_a_new_card() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(toss_error(
            400,
            "INVALID_STOPPED_CARD",
            "정지된 카드 입니다.",
        ))
        .mount(&server)
        .await;

    let err = client(&server)
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap_err();

    assert_eq!(err.class(), ErrorClass::NeedsNewCard);
}

#[tokio::test]
async fn a_duplicated_order_id_means_already_processed_and_is_not_retried_by_the_client() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(toss_error(
            400,
            "DUPLICATED_ORDER_ID",
            "이미 승인 및 취소가 진행된 중복된 주문번호 입니다.",
        ))
        .expect(1)
        .mount(&server)
        .await;

    let err = client(&server)
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap_err();

    assert_eq!(err.class(), ErrorClass::AlreadyProcessed);
    assert!(err.is_retryable());
    server.verify().await;
}

//! Answers that leave the outcome unknown, and proof that the client never retries a POST.

use toss::{Error, ErrorClass, Operation};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

#[tokio::test]
async fn an_idempotent_request_still_processing_is_an_unknown_outcome_sent_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(toss_error(
            409,
            "IDEMPOTENT_REQUEST_PROCESSING",
            "이전 멱등 요청이 처리중입니다.",
        ))
        .expect(1)
        .mount(&server)
        .await;

    let err = client(&server)
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap_err();

    assert!(matches!(err, Error::Api { status: 409, .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::OutcomeUnknown);
    assert!(err.is_retryable());
    server.verify().await;
}

#[tokio::test]
async fn a_500_without_json_is_a_decode_error_with_an_unknown_outcome_and_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(500).set_body_string("<html>Internal Server Error</html>"),
        )
        .expect(1)
        .mount(&server)
        .await;

    let err = client(&server)
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap_err();

    match &err {
        Error::Decode {
            operation,
            status,
            body_snippet,
            ..
        } => {
            assert_eq!(*operation, Operation::Charge);
            assert_eq!(*status, 500);
            assert_eq!(body_snippet, "<html>Internal Server Error</html>");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert_eq!(err.class(), ErrorClass::OutcomeUnknown);
    server.verify().await;
}

#[tokio::test]
async fn a_long_unreadable_body_is_cut_to_200_characters() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502).set_body_string("가".repeat(1000)))
        .mount(&server)
        .await;

    let err = client(&server).payment(&payment_key()).await.unwrap_err();

    let Error::Decode { body_snippet, .. } = &err else {
        panic!("expected a decode error, got {err:?}")
    };
    assert_eq!(body_snippet.chars().count(), 200);
}

#[tokio::test]
async fn a_429_without_a_code_is_an_unknown_outcome() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429))
        .expect(1)
        .mount(&server)
        .await;

    let err = client(&server)
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap_err();

    assert!(matches!(err, Error::Decode { status: 429, .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::OutcomeUnknown);
}

#[tokio::test]
async fn an_error_body_without_a_code_is_a_decode_error_and_a_401_one_is_our_fault() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json(401, r#"{"message":"unauthorized"}"#))
        .mount(&server)
        .await;

    let err = client(&server)
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap_err();

    assert!(matches!(err, Error::Decode { status: 401, .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::OurFault);
}

#[tokio::test]
async fn an_unauthorized_key_is_our_fault() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(toss_error(
            401,
            "UNAUTHORIZED_KEY",
            "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다.",
        ))
        .mount(&server)
        .await;

    let err = client(&server)
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap_err();

    assert_eq!(err.class(), ErrorClass::OurFault);
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_v2_style_error_body_is_understood_too() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json(
            400,
            r#"{"version":"2022-11-16","traceId":"t","error":{"code":"INVALID_REQUEST","message":"잘못된 요청"}}"#,
        ))
        .mount(&server)
        .await;

    let err = client(&server)
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap_err();

    assert_eq!(err.code(), Some("INVALID_REQUEST"));
    assert_eq!(err.class(), ErrorClass::OurFault);
}

#[tokio::test]
async fn a_truncated_success_body_is_a_decode_error_with_an_unknown_outcome() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json(200, &PAYMENT_JSON[..300]))
        .expect(1)
        .mount(&server)
        .await;

    let err = client(&server)
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap_err();

    assert!(matches!(err, Error::Decode { status: 200, .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::OutcomeUnknown);
    server.verify().await;
}

#[tokio::test]
async fn a_charge_slower_than_its_timeout_is_a_timeout_and_is_sent_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json(200, PAYMENT_JSON).set_delay(SLOW))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_with(&server.uri(), |c| c.charge_timeout = SHORT);

    let err = client
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap_err();

    assert!(
        matches!(
            err,
            Error::Timeout {
                operation: Operation::Charge
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::OutcomeUnknown);
    assert!(err.is_retryable());
    server.verify().await;
}

#[tokio::test]
async fn the_charge_timeout_is_separate_from_the_timeout_of_other_requests() {
    // GIVEN a Toss that answers after SLOW, a short lookup timeout and a long charge timeout
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(json(200, PAYMENT_JSON).set_delay(SLOW))
        .mount(&server)
        .await;
    let client = client_with(&server.uri(), |c| {
        c.request_timeout = SHORT;
        c.charge_timeout = SLOW * 4;
    });

    // THEN the lookup times out but the charge waits for its answer
    let lookup = client.payment_by_order_id(&order_id()).await.unwrap_err();
    assert!(
        matches!(
            lookup,
            Error::Timeout {
                operation: Operation::LookUp
            }
        ),
        "{lookup:?}"
    );
    client
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_lookup_that_times_out_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json(200, PAYMENT_JSON).set_delay(SLOW))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_with(&server.uri(), |c| c.request_timeout = SHORT);

    let err = client.payment_by_order_id(&order_id()).await.unwrap_err();

    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    server.verify().await;
}

#[tokio::test]
async fn a_charge_whose_connection_is_dropped_is_a_transport_error_sent_once() {
    let server = BrokenServer::start(Misbehaviour::CloseAfterRequest).await;
    let client = client_with(&server.uri, |_| {});

    let err = client
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap_err();

    assert!(
        matches!(
            err,
            Error::Transport {
                operation: Operation::Charge,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::OutcomeUnknown);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_charge_answer_cut_off_mid_body_is_a_transport_error_with_an_unknown_outcome() {
    let server = BrokenServer::start(Misbehaviour::CloseMidBody).await;
    let client = client_with(&server.uri, |_| {});

    let err = client
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap_err();

    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::OutcomeUnknown);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_lookup_whose_connection_is_dropped_is_retried_exactly_once() {
    let server = BrokenServer::start(Misbehaviour::CloseAfterRequest).await;
    let client = client_with(&server.uri, |_| {});

    let err = client.payment_by_order_id(&order_id()).await.unwrap_err();

    assert!(
        matches!(
            err,
            Error::Transport {
                operation: Operation::LookUp,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn a_refused_connection_is_still_an_unknown_outcome_for_a_charge() {
    let client = client_with(&refused_uri().await, |_| {});

    let err = client
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap_err();

    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::OutcomeUnknown);
}

#[tokio::test]
async fn no_post_is_ever_retried_whatever_the_failure() {
    // GIVEN a Toss that fails every request with a retryable-looking 503
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(toss_error(
            503,
            "PROVIDER_ERROR",
            "일시적인 오류가 발생했습니다.",
        ))
        .expect(3)
        .mount(&server)
        .await;
    let client = client(&server);

    // WHEN we issue, charge and cancel once each
    let issue = client
        .issue_billing_key(&auth_key(), &customer_key(), &idempotency_key())
        .await
        .unwrap_err();
    let charge = client
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap_err();
    let cancel = client
        .cancel_payment(&payment_key(), "고객 요청", None, &idempotency_key())
        .await
        .unwrap_err();

    // THEN each reached Toss exactly once, and each is an unknown outcome
    for err in [issue, charge, cancel] {
        assert_eq!(err.class(), ErrorClass::OutcomeUnknown, "{err:?}");
    }
    server.verify().await;
}

#[tokio::test]
async fn a_live_key_refuses_a_charge_timeout_under_sixty_seconds() {
    let mut config = config("https://api.tosspayments.com");
    config.secret_key = "live_sk_abcdef".into();
    config.charge_timeout = std::time::Duration::from_secs(30);

    let err = toss::Client::new(config).unwrap_err();

    assert!(matches!(err, Error::InvalidConfig(_)), "{err:?}");
    assert_eq!(err.class(), ErrorClass::OurFault);
}

#[tokio::test]
async fn an_empty_secret_key_is_refused() {
    let mut config = config("https://api.tosspayments.com");
    config.secret_key = " \u{feff} ".into();

    assert!(matches!(
        toss::Client::new(config),
        Err(Error::InvalidConfig(_))
    ));
}

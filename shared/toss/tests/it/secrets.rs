//! The secret key, billing keys and authKeys never show in `Debug`, `Display`, error chains or
//! logs.

use std::error::Error as _;
use std::time::Duration;

use secrecy::SecretString;
use toss::{Client, Config, Error};
use url::Url;
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

const FORBIDDEN: &[&str] = &[
    SECRET,
    "zXLkKEypNArWmo50nX3lmeaxYG5R",
    "dGVzdF9za196WExrS0V5cE5BcldtbzUwblgzbG1lYXhZRzVSOg",
    BILLING_KEY,
    "Z_t5vOvQxrj4499PeiJcjen28",
    AUTH_KEY,
    "4Kd9sLq2xYz",
];

#[track_caller]
fn assert_clean(what: &str, text: &str) {
    for secret in FORBIDDEN {
        assert!(!text.contains(secret), "{what} shows {secret:?}: {text}");
    }
}

/// `Display`, `Debug` and the whole source chain of an error.
fn everything_about(err: &Error) -> String {
    let mut text = format!("{err}\n{err:?}");
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!("\n{cause}\n{cause:?}"));
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn a_key_with_a_bom_and_a_newline_still_sends_the_documented_basic_header() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header("Authorization", BASIC))
        .respond_with(json(200, PAYMENT_JSON))
        .expect(1)
        .mount(&server)
        .await;
    let config = Config::new(
        SecretString::from(format!("\u{feff}{SECRET}\n")),
        Url::parse(&server.uri()).unwrap(),
    );

    Client::new(config)
        .unwrap()
        .payment_by_order_id(&order_id())
        .await
        .unwrap();

    server.verify().await;
}

#[tokio::test]
async fn the_key_mode_follows_the_key_prefix() {
    let test = Client::new(config("https://api.tosspayments.com")).unwrap();
    assert_eq!(test.key_mode(), toss::KeyMode::Test);
    let live = Client::new(Config::new(
        SecretString::from("live_sk_abc"),
        Url::parse("https://api.tosspayments.com").unwrap(),
    ))
    .unwrap();
    assert_eq!(live.key_mode(), toss::KeyMode::Live);
}

#[tokio::test]
async fn debug_of_the_client_config_billing_and_charge_request_hides_every_secret() {
    let config = config("https://api.tosspayments.com");
    let client = Client::new(config.clone()).unwrap();
    let billing: toss::Billing = serde_json::from_str(BILLING_JSON).unwrap();
    let request = charge_request();

    assert_clean("Config", &format!("{config:?}"));
    assert_clean("Client", &format!("{client:?}"));
    assert_clean("Billing", &format!("{billing:?} {billing:#?}"));
    assert_clean("ChargeRequest", &format!("{request:?}"));
    assert_clean("keys", &format!("{:?} {:?}", billing_key(), auth_key()));
}

#[tokio::test]
async fn no_error_variant_shows_a_secret_in_display_debug_or_its_source_chain() {
    let mut errors = Vec::new();

    // Api
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(toss_error(400, "INVALID_REQUEST", "잘못된 요청입니다."))
        .mount(&server)
        .await;
    errors.push(
        client(&server)
            .charge(&billing_key(), &charge_request(), &idempotency_key())
            .await
            .unwrap_err(),
    );
    errors.push(
        client(&server)
            .issue_billing_key(&auth_key(), &customer_key(), &idempotency_key())
            .await
            .unwrap_err(),
    );

    // Decode: a truncated issue answer holds the new billing key
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json(
            200,
            &BILLING_JSON[..BILLING_JSON.find("\"card\"").unwrap()],
        ))
        .mount(&server)
        .await;
    let truncated = client(&server)
        .issue_billing_key(&auth_key(), &customer_key(), &idempotency_key())
        .await
        .unwrap_err();
    assert!(matches!(truncated, Error::Decode { .. }), "{truncated:?}");
    errors.push(truncated);

    // Decode: a proxy error page
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(502).set_body_string("Bad Gateway"))
        .mount(&server)
        .await;
    errors.push(
        client(&server)
            .delete_billing_key(&billing_key())
            .await
            .unwrap_err(),
    );

    // Timeout
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json(200, PAYMENT_JSON).set_delay(SLOW))
        .mount(&server)
        .await;
    let slow = client_with(&server.uri(), |c| c.charge_timeout = SHORT);
    errors.push(
        slow.charge(&billing_key(), &charge_request(), &idempotency_key())
            .await
            .unwrap_err(),
    );

    // Transport: the request URL holds the billing key
    let broken = BrokenServer::start(Misbehaviour::CloseAfterRequest).await;
    let dropped = client_with(&broken.uri, |_| {})
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap_err();
    assert!(matches!(dropped, Error::Transport { .. }), "{dropped:?}");
    errors.push(dropped);
    let refused = client_with(&refused_uri().await, |_| {})
        .delete_billing_key(&billing_key())
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Transport { .. }), "{refused:?}");
    errors.push(refused);

    // InvalidConfig
    let mut live = config("https://api.tosspayments.com");
    live.secret_key = SecretString::from(format!("live_sk_{SECRET}"));
    live.charge_timeout = Duration::from_secs(1);
    errors.push(Client::new(live).unwrap_err());

    let mut kinds = std::collections::HashSet::new();
    for err in &errors {
        kinds.insert(std::mem::discriminant(err));
        assert_clean("error", &everything_about(err));
    }
    assert_eq!(kinds.len(), 5, "every variant is covered: {errors:?}");
}

#[tokio::test]
async fn logs_carry_operation_order_id_status_and_trace_id_but_no_secret() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            json(200, BILLING_JSON).insert_header("X-TossPayments-Trace-Id", "trace-ok-1"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(toss_error(403, "REJECT_CARD_PAYMENT", "한도초과"))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let client = client(&server);

    client
        .issue_billing_key(&auth_key(), &customer_key(), &idempotency_key())
        .await
        .unwrap();
    client
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap_err();
    client.delete_billing_key(&billing_key()).await.unwrap();
    let broken = BrokenServer::start(Misbehaviour::CloseAfterRequest).await;
    client_with(&broken.uri, |_| {})
        .charge(&billing_key(), &charge_request(), &idempotency_key())
        .await
        .unwrap_err();

    let text = logs.text();
    assert_clean("logs", &text);
    assert!(text.contains("operation=issue_billing_key"), "{text}");
    assert!(text.contains("operation=charge"), "{text}");
    assert!(text.contains(ORDER_ID), "{text}");
    assert!(text.contains("status=403"), "{text}");
    assert!(text.contains("trace-abc-123"), "{text}");
    assert!(text.contains("trace-ok-1"), "{text}");
    assert!(text.contains("latency_ms="), "{text}");
}

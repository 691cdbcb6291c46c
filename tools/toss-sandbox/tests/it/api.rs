use reqwest::StatusCode;
use serde_json::{Value, json};
use toss_sandbox::TestCard;

use crate::{Env, charge_body};

#[tokio::test]
async fn issuing_a_billing_key_returns_a_toss_shaped_billing_object() {
    let env = Env::new().await;
    let auth_key = env.mint("customer-1", "ok").await;

    let answer = env
        .post(
            "/v1/billing/authorizations/issue",
            json!({ "authKey": auth_key, "customerKey": "customer-1" }),
        )
        .await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let billing = answer.json();
    assert_eq!(billing["mId"], "tosspayments");
    assert_eq!(billing["customerKey"], "customer-1");
    assert_eq!(billing["method"], "카드");
    assert_eq!(billing["card"]["number"], "43301234****123*");
    assert_eq!(billing["card"]["cardType"], "신용");
    assert_eq!(billing["card"]["ownerType"], "개인");
    assert_eq!(billing["card"]["issuerCode"], "61");
    assert!(
        billing["authenticatedAt"]
            .as_str()
            .unwrap()
            .ends_with("+09:00")
    );
    let key = billing["billingKey"].as_str().unwrap();
    assert_eq!(key.len(), 44);
    assert!(key.ends_with('='));
    assert!(!key.contains('+') && !key.contains('/'));
}

#[tokio::test]
async fn a_charge_is_approved_as_a_done_billing_payment_and_found_by_both_lookups() {
    let env = Env::new().await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;

    let answer = env.charge(&key, "customer-1", "order-0001").await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let payment = answer.json();
    assert_eq!(payment["status"], "DONE");
    assert_eq!(payment["type"], "BILLING");
    assert_eq!(payment["method"], "카드");
    assert_eq!(payment["version"], "2022-11-16");
    assert_eq!(payment["orderId"], "order-0001");
    assert_eq!(payment["orderName"], "토스 프라임 구독");
    assert_eq!(payment["totalAmount"], 4900);
    assert_eq!(payment["balanceAmount"], 4900);
    assert_eq!(payment["suppliedAmount"], 4455);
    assert_eq!(payment["vat"], 445);
    assert_eq!(payment["currency"], "KRW");
    assert_eq!(payment["card"]["amount"], 4900);
    assert_eq!(payment["card"]["number"], "43301234****123*");
    assert_eq!(payment["card"]["approveNo"].as_str().unwrap().len(), 8);
    assert_eq!(payment["cancels"], Value::Null);
    assert!(payment["approvedAt"].as_str().unwrap().ends_with("+09:00"));
    assert!(payment["requestedAt"].as_str().unwrap().ends_with("+09:00"));
    assert!(
        payment["receipt"]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );

    let payment_key = payment["paymentKey"].as_str().unwrap();
    let by_key = env.get(&format!("/v1/payments/{payment_key}")).await;
    let by_order = env.get("/v1/payments/orders/order-0001").await;
    assert_eq!(by_key.json(), payment);
    assert_eq!(by_order.json(), payment);
}

#[tokio::test]
async fn looking_up_an_unknown_payment_answers_not_found_payment() {
    let env = Env::new().await;

    assert_eq!(
        env.get("/v1/payments/tgen_nope").await.error(),
        (404, "NOT_FOUND_PAYMENT".to_owned())
    );
    assert_eq!(
        env.get("/v1/payments/orders/order-unknown").await.error(),
        (404, "NOT_FOUND_PAYMENT".to_owned())
    );
}

#[tokio::test]
async fn a_partial_then_full_cancel_reduces_the_balance_and_ends_canceled() {
    let env = Env::new().await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;
    let payment = env.charge(&key, "customer-1", "order-0001").await.json();
    let cancel_path = format!(
        "/v1/payments/{}/cancel",
        payment["paymentKey"].as_str().unwrap()
    );

    let partial = env
        .post(
            &cancel_path,
            json!({ "cancelReason": "부분 환불", "cancelAmount": 1000 }),
        )
        .await
        .json();
    assert_eq!(partial["status"], "PARTIAL_CANCELED");
    assert_eq!(partial["totalAmount"], 4900);
    assert_eq!(partial["balanceAmount"], 3900);
    assert_eq!(partial["cancels"][0]["cancelAmount"], 1000);
    assert_eq!(partial["cancels"][0]["cancelStatus"], "DONE");
    assert_eq!(partial["cancels"][0]["refundableAmount"], 3900);

    let too_much = env
        .post(
            &cancel_path,
            json!({ "cancelReason": "x", "cancelAmount": 5000 }),
        )
        .await;
    assert_eq!(too_much.error(), (403, "NOT_CANCELABLE_AMOUNT".to_owned()));

    let full = env
        .post(&cancel_path, json!({ "cancelReason": "전액 환불" }))
        .await
        .json();
    assert_eq!(full["status"], "CANCELED");
    assert_eq!(full["balanceAmount"], 0);
    assert_eq!(full["cancels"].as_array().unwrap().len(), 2);

    let again = env
        .post(&cancel_path, json!({ "cancelReason": "again" }))
        .await;
    assert_eq!(again.error(), (400, "ALREADY_CANCELED_PAYMENT".to_owned()));
    assert_eq!(
        env.get("/v1/payments/orders/order-0001").await.json()["status"],
        "CANCELED"
    );
}

#[tokio::test]
async fn a_cancel_without_a_reason_is_an_invalid_request() {
    let env = Env::new().await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;
    let payment = env.charge(&key, "customer-1", "order-0001").await.json();
    let path = format!(
        "/v1/payments/{}/cancel",
        payment["paymentKey"].as_str().unwrap()
    );

    assert_eq!(
        env.post(&path, json!({})).await.error(),
        (400, "INVALID_REQUEST".to_owned())
    );
    assert_eq!(
        env.post(
            "/v1/payments/tgen_nope/cancel",
            json!({ "cancelReason": "x" })
        )
        .await
        .error(),
        (404, "NOT_FOUND_PAYMENT".to_owned())
    );
}

#[tokio::test]
async fn deleting_a_billing_key_answers_an_empty_200_and_the_key_stops_working() {
    let env = Env::new().await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;

    let deleted = env.delete(&format!("/v1/billing/{key}")).await;

    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.text, "");
    assert_eq!(
        env.charge(&key, "customer-1", "order-0002").await.error(),
        (400, "INVALID_BILL_KEY_REQUEST".to_owned())
    );
    assert_eq!(
        env.delete(&format!("/v1/billing/{key}")).await.error(),
        (400, "ALREADY_REMOVED_BILLING_KEY".to_owned())
    );
    assert_eq!(
        env.delete("/v1/billing/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
            .await
            .error(),
        (404, "NOT_FOUND_BILLING".to_owned())
    );
}

#[tokio::test]
async fn a_billing_key_with_a_percent_encoded_padding_is_the_same_key() {
    let env = Env::new().await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;
    let encoded = key.replace('=', "%3D");

    let answer = env
        .post(
            &format!("/v1/billing/{encoded}"),
            charge_body("customer-1", "order-0001", 4900),
        )
        .await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}

#[tokio::test]
async fn charge_validation_errors_answer_their_exact_codes() {
    let env = Env::new().await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;
    let path = format!("/v1/billing/{key}");
    let with = |field: &str, value: Value| {
        let mut body = charge_body("customer-1", "order-0001", 4900);
        body[field] = value;
        body
    };
    let cases = [
        (with("amount", json!(99)), "BELOW_MINIMUM_AMOUNT"),
        (with("amount", json!(0)), "BELOW_ZERO_AMOUNT"),
        (with("amount", json!(-5)), "BELOW_ZERO_AMOUNT"),
        (with("amount", json!(1.5)), "INVALID_REQUEST"),
        (with("amount", json!("4900")), "INVALID_REQUEST"),
        (with("amount", Value::Null), "INVALID_REQUEST"),
        (with("orderId", json!("short")), "INVALID_ORDER_ID"),
        (with("orderId", json!("has space 1")), "INVALID_ORDER_ID"),
        (
            with("orderId", Value::String("x".repeat(65))),
            "INVALID_ORDER_ID",
        ),
        (with("orderName", json!("")), "INVALID_ORDER_NAME"),
        (
            with("orderName", Value::String("가".repeat(101))),
            "INVALID_ORDER_NAME",
        ),
        (
            with("customerEmail", json!("not-an-email")),
            "INVALID_EMAIL",
        ),
        (with("customerKey", json!("a")), "INVALID_CUSTOMER_KEY"),
        (
            with("customerKey", json!("other-customer")),
            "NOT_MATCHES_CUSTOMER_KEY",
        ),
        (
            with("cardInstallmentPlan", json!(1)),
            "INVALID_CARD_INSTALLMENT_PLAN",
        ),
    ];
    for (body, code) in cases {
        let answer = env.post(&path, body.clone()).await;
        assert_eq!(answer.error(), (400, code.to_owned()), "body {body}");
        assert!(!answer.json()["message"].as_str().unwrap().is_empty());
    }
    let broken = env
        .send(
            reqwest::Method::POST,
            &path,
            None,
            &[("content-type", "application/json")],
        )
        .await
        .unwrap();
    assert_eq!(broken.error(), (400, "INVALID_REQUEST".to_owned()));
    assert!(env.state().await.payments.is_empty());
}

#[tokio::test]
async fn unknown_body_fields_are_ignored() {
    let env = Env::new().await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;
    let mut body = charge_body("customer-1", "order-0001", 4900);
    body["useCardPoint"] = Value::Null;
    body["customerMobilePhone"] = Value::Null;
    body["somethingNew"] = json!({ "nested": true });

    let answer = env.post(&format!("/v1/billing/{key}"), body).await;

    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}

#[tokio::test]
async fn charging_an_unknown_billing_key_answers_invalid_bill_key_request() {
    let env = Env::new().await;

    let answer = env
        .charge(
            "lWd2ICDZVc-C2K82ubzX_179q2I8kxIlk4EqDgoBXzE=",
            "customer-1",
            "order-0001",
        )
        .await;

    assert_eq!(answer.error(), (400, "INVALID_BILL_KEY_REQUEST".to_owned()));
}

#[tokio::test]
async fn reusing_an_approved_or_canceled_order_id_answers_duplicated_order_id() {
    let env = Env::new().await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;
    let first = env.charge(&key, "customer-1", "order-0001").await.json();

    assert_eq!(
        env.charge(&key, "customer-1", "order-0001").await.error(),
        (400, "DUPLICATED_ORDER_ID".to_owned())
    );
    let cancel = format!(
        "/v1/payments/{}/cancel",
        first["paymentKey"].as_str().unwrap()
    );
    env.post(&cancel, json!({ "cancelReason": "환불" })).await;
    assert_eq!(
        env.charge(&key, "customer-1", "order-0001").await.error(),
        (400, "DUPLICATED_ORDER_ID".to_owned())
    );
    assert_eq!(env.state().await.counters.done_charges, 1);
}

#[tokio::test]
async fn a_declined_order_id_can_be_charged_again() {
    let env = Env::new().await;
    let declining = env.billing_key("customer-1", TestCard::DeclineAlways).await;
    let working = env.billing_key("customer-1", TestCard::Ok).await;

    let declined = env.charge(&declining, "customer-1", "order-0001").await;
    let retried = env.charge(&working, "customer-1", "order-0001").await;

    assert_eq!(declined.error(), (403, "REJECT_CARD_PAYMENT".to_owned()));
    assert_eq!(retried.status, StatusCode::OK);
    assert_eq!(
        env.get("/v1/payments/orders/order-0001").await.json()["status"],
        "DONE"
    );
}

#[tokio::test]
async fn issuing_with_a_used_unknown_or_mismatched_auth_key_fails_with_its_code() {
    let env = Env::new().await;
    let issue = "/v1/billing/authorizations/issue";
    let auth_key = env.mint("customer-1", "ok").await;

    let mismatched = env
        .post(
            issue,
            json!({ "authKey": auth_key, "customerKey": "customer-2" }),
        )
        .await;
    let first = env
        .post(
            issue,
            json!({ "authKey": auth_key, "customerKey": "customer-1" }),
        )
        .await;
    let reused = env
        .post(
            issue,
            json!({ "authKey": auth_key, "customerKey": "customer-1" }),
        )
        .await;
    let unknown = env
        .post(
            issue,
            json!({ "authKey": "bln_doesnotexist", "customerKey": "customer-1" }),
        )
        .await;
    let missing = env
        .post(issue, json!({ "customerKey": "customer-1" }))
        .await;

    assert_eq!(
        mismatched.error(),
        (400, "NOT_MATCHES_CUSTOMER_KEY".to_owned())
    );
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(reused.error(), (400, "INVALID_BILLING_AUTH".to_owned()));
    assert_eq!(unknown.error(), (404, "NOT_FOUND_BILLING".to_owned()));
    assert_eq!(missing.error(), (400, "INVALID_REQUEST".to_owned()));
}

#[tokio::test]
async fn an_auth_key_older_than_its_time_to_live_is_refused() {
    let env = Env::new().await;
    let auth_key = env.mint("customer-1", "ok").await;
    env.sandbox
        .sandbox()
        .advance_clock(chrono::Duration::minutes(11));

    let answer = env
        .post(
            "/v1/billing/authorizations/issue",
            json!({ "authKey": auth_key, "customerKey": "customer-1" }),
        )
        .await;

    assert_eq!(answer.error(), (400, "INVALID_BILLING_AUTH".to_owned()));
}

#[tokio::test]
async fn every_answer_carries_a_trace_id() {
    let env = Env::new().await;

    let ok = env.get("/v1/payments/orders/order-unknown").await;
    let unauthenticated = env
        .http
        .get(env.url("/v1/payments/x"))
        .send()
        .await
        .unwrap();
    let control = env
        .http
        .get(env.url("/__sandbox/health"))
        .send()
        .await
        .unwrap();

    assert!(ok.trace_id.is_some());
    assert!(
        unauthenticated
            .headers()
            .contains_key("x-tosspayments-trace-id")
    );
    assert!(control.headers().contains_key("x-tosspayments-trace-id"));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_toss_style_404s() {
    let env = Env::new().await;

    assert_eq!(
        env.get("/v1/nothing/here").await.error(),
        (404, "NOT_FOUND".to_owned())
    );
    assert_eq!(
        env.get("/v1/billing/authorizations/issue").await.error(),
        (404, "NOT_FOUND_HTTP_METHOD".to_owned())
    );
}

#[tokio::test]
async fn the_test_code_header_answers_that_error_before_validating_the_body() {
    let env = Env::new().await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;
    let path = format!("/v1/billing/{key}");

    let rejected = env
        .post_with(
            &path,
            json!({ "nonsense": true }),
            &[("TossPayments-Test-Code", "REJECT_CARD_PAYMENT")],
        )
        .await;
    let expired = env
        .post_with(
            &path,
            charge_body("customer-1", "order-0001", 4900),
            &[("TossPayments-Test-Code", "INVALID_CARD_EXPIRATION")],
        )
        .await;
    let unknown = env
        .post_with(
            &path,
            json!({}),
            &[("TossPayments-Test-Code", "NO_SUCH_CODE")],
        )
        .await;
    let on_lookup = env
        .send(
            reqwest::Method::GET,
            "/v1/payments/orders/order-0001",
            None,
            &[(
                "TossPayments-Test-Code",
                "FAILED_INTERNAL_SYSTEM_PROCESSING",
            )],
        )
        .await
        .unwrap();

    assert_eq!(rejected.error(), (403, "REJECT_CARD_PAYMENT".to_owned()));
    assert!(
        rejected.json()["message"]
            .as_str()
            .unwrap()
            .contains("한도초과 혹은 잔액부족")
    );
    assert_eq!(expired.error(), (400, "INVALID_CARD_EXPIRATION".to_owned()));
    assert_eq!(unknown.error(), (400, "INVALID_TEST_CODE".to_owned()));
    assert_eq!(
        on_lookup.error(),
        (500, "FAILED_INTERNAL_SYSTEM_PROCESSING".to_owned())
    );
    assert!(env.state().await.payments.is_empty());
}

#[tokio::test]
async fn the_sandbox_clock_offset_shows_in_approved_at() {
    let env = Env::new().await;
    let key = env.billing_key("customer-1", TestCard::Ok).await;
    env.control(
        reqwest::Method::POST,
        "/__sandbox/clock",
        json!({ "now": "2027-03-01T10:00:00+09:00" }),
    )
    .await;

    let payment = env.charge(&key, "customer-1", "order-0001").await.json();

    assert!(
        payment["approvedAt"]
            .as_str()
            .unwrap()
            .starts_with("2027-03-01T10:0"),
        "{}",
        payment["approvedAt"]
    );
}

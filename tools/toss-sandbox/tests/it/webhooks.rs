//! Webhook delivery to a merchant endpoint (a small receiver on loopback that records what it
//! got and answers with scripted statuses).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use toss_sandbox::{
    RETRY_MINUTES, TRANSMISSION_ID_HEADER, TRANSMISSION_RETRIED_COUNT_HEADER,
    TRANSMISSION_TIME_HEADER, TestCard, WebhookEndpoint, fingerprint,
};

use crate::Env;

#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Value,
    at: Instant,
}

/// Answers the scripted statuses in turn, then `200`.
#[derive(Debug, Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    async fn start(script: &[u16]) -> (Receiver, String) {
        let receiver = Receiver {
            got: Arc::default(),
            script: Arc::new(Mutex::new(script.iter().rev().copied().collect())),
        };
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.got();
            if got.len() >= count || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> AxumStatus {
    receiver.got.lock().unwrap().push(Received {
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        at: Instant::now(),
    });
    let status = receiver.script.lock().unwrap().pop().unwrap_or(200);
    AxumStatus::from_u16(status).unwrap()
}

fn header(r: &Received, name: &str) -> String {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// A DONE payment of 4900 KRW and its paymentKey.
async fn paid(env: &Env, customer: &str, order_id: &str) -> (String, String) {
    let key = env.billing_key(customer, TestCard::Ok).await;
    let answer = env.charge(&key, customer, order_id).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let payment_key = answer.json()["paymentKey"].as_str().unwrap().to_owned();
    (key, payment_key)
}

fn endpoint(url: &str) -> WebhookEndpoint {
    WebhookEndpoint {
        minute_millis: 1,
        ..WebhookEndpoint::new(url)
    }
}

#[tokio::test]
async fn a_cancel_is_delivered_as_payment_status_changed_with_tosss_headers() {
    let env = Env::new().await;
    let (receiver, url) = Receiver::start(&[]).await;
    env.sandbox
        .sandbox()
        .set_webhook(&env.secret_key, endpoint(&url));
    let (_, payment_key) = paid(&env, "customer-1", "order-0001").await;

    let answer = env
        .post(
            &format!("/v1/payments/{payment_key}/cancel"),
            json!({ "cancelReason": "고객 요청", "cancelAmount": 1000 }),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);

    let got = receiver.wait_for(1).await;
    assert_eq!(got.len(), 1, "exactly one delivery");
    let delivery = &got[0];
    assert_eq!(delivery.body["eventType"], "PAYMENT_STATUS_CHANGED");
    assert_eq!(delivery.body["data"]["paymentKey"], payment_key.as_str());
    assert_eq!(delivery.body["data"]["status"], "PARTIAL_CANCELED");
    assert_eq!(delivery.body["data"]["balanceAmount"], 3900);
    let created_at = delivery.body["createdAt"].as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(created_at, "%Y-%m-%dT%H:%M:%S%.6f").is_ok()
            && created_at.len() == 26,
        "createdAt {created_at} is yyyy-MM-ddTHH:mm:ss.SSSSSS without an offset"
    );
    assert!(!header(delivery, TRANSMISSION_ID_HEADER).is_empty());
    assert_eq!(header(delivery, TRANSMISSION_RETRIED_COUNT_HEADER), "0");
    assert!(header(delivery, TRANSMISSION_TIME_HEADER).ends_with("+09:00"));
    let log = env.sandbox.sandbox().webhook_deliveries();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, Some(200));
    assert_eq!(log[0].subject, payment_key);
}

#[tokio::test]
async fn a_successful_charge_sends_no_webhook() {
    let env = Env::new().await;
    let (receiver, url) = Receiver::start(&[]).await;
    env.sandbox
        .sandbox()
        .set_webhook(&env.secret_key, endpoint(&url));

    paid(&env, "customer-1", "order-0001").await;
    // a later event proves the pipe works, and that nothing came before it
    let key = env.billing_key("customer-2", TestCard::Ok).await;
    env.delete(&format!("/v1/billing/{key}")).await;

    let got = receiver.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got_now = receiver.got();
    assert_eq!(got_now.len(), 1, "{got:?}");
    assert_eq!(got_now[0].body["eventType"], "BILLING_DELETED");
}

#[tokio::test]
async fn deleting_a_billing_key_sends_billing_deleted_with_the_key_and_reason() {
    let env = Env::new().await;
    let (receiver, url) = Receiver::start(&[]).await;
    env.sandbox
        .sandbox()
        .set_webhook(&env.secret_key, endpoint(&url));
    let by_merchant = env.billing_key("customer-1", TestCard::Ok).await;
    let by_card_company = env.billing_key("customer-2", TestCard::Ok).await;

    env.delete(&format!("/v1/billing/{by_merchant}")).await;
    let got = receiver.wait_for(1).await;
    env.control(
        Method::POST,
        "/__sandbox/billing-keys/delete",
        json!({ "billingKey": by_card_company, "reason": "카드사 요청" }),
    )
    .await;
    let got = [got, receiver.wait_for(2).await[1..].to_vec()].concat();

    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body["eventType"], "BILLING_DELETED");
    assert_eq!(got[0].body["data"]["billingKey"], by_merchant.as_str());
    assert_eq!(got[0].body["data"]["reason"], "삭제 API 요청");
    assert_eq!(got[1].body["data"]["billingKey"], by_card_company.as_str());
    assert_eq!(got[1].body["data"]["reason"], "카드사 요청");
    // the key deleted by the card company is gone for charges too
    let charge = env
        .charge(&by_card_company, "customer-2", "order-0002")
        .await;
    assert_ne!(charge.status, StatusCode::OK);
    let log = env.sandbox.sandbox().webhook_deliveries();
    assert_eq!(log[1].subject, fingerprint(&by_card_company));
}

#[tokio::test]
async fn a_failed_delivery_is_retried_on_tosss_schedule_under_the_time_scale() {
    let env = Env::new().await;
    let (receiver, url) = Receiver::start(&[500, 503, 404]).await;
    env.sandbox.sandbox().set_webhook(
        &env.secret_key,
        WebhookEndpoint {
            minute_millis: 20,
            ..WebhookEndpoint::new(url.as_str())
        },
    );
    let (_, payment_key) = paid(&env, "customer-1", "order-0001").await;

    let answer = env
        .control(
            Method::POST,
            &format!("/__sandbox/payments/{payment_key}/cancel"),
            json!({ "cancelReason": "콘솔 환불" }),
        )
        .await;
    assert_eq!(answer["status"], "CANCELED");

    let got = receiver.wait_for(4).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.got().len(), 4, "stops after the first 200");
    let ids: Vec<String> = got
        .iter()
        .map(|r| header(r, TRANSMISSION_ID_HEADER))
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]));
    let counts: Vec<String> = got
        .iter()
        .map(|r| header(r, TRANSMISSION_RETRIED_COUNT_HEADER))
        .collect();
    assert_eq!(counts, ["0", "1", "2", "3"]);
    // gaps of 1, 4 and 16 minutes at 20 ms a minute (never shorter; scheduling may add)
    for (i, minutes) in RETRY_MINUTES.iter().take(3).enumerate() {
        let gap = got[i + 1].at - got[i].at;
        assert!(
            gap >= Duration::from_millis(minutes * 20),
            "retry {} came after {gap:?}",
            i + 1
        );
    }
    let statuses: Vec<Option<u16>> = env
        .sandbox
        .sandbox()
        .webhook_deliveries()
        .iter()
        .map(|d| d.status)
        .collect();
    assert_eq!(statuses, [Some(500), Some(503), Some(404), Some(200)]);
}

#[tokio::test]
async fn the_duplicates_knob_sends_each_notification_twice_under_one_transmission_id() {
    let env = Env::new().await;
    let (receiver, url) = Receiver::start(&[]).await;
    env.control(
        Method::PUT,
        "/__sandbox/webhooks",
        json!({ "secretKey": env.secret_key, "url": url, "minuteMillis": 1, "duplicates": 1 }),
    )
    .await;
    let (_, payment_key) = paid(&env, "customer-1", "order-0001").await;

    env.control(
        Method::POST,
        &format!("/__sandbox/payments/{payment_key}/cancel"),
        json!({ "cancelReason": "콘솔 환불" }),
    )
    .await;

    let got = receiver.wait_for(2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(
        header(&got[0], TRANSMISSION_ID_HEADER),
        header(&got[1], TRANSMISSION_ID_HEADER)
    );
}

#[tokio::test]
async fn out_of_order_delivery_sends_held_notifications_newest_first() {
    let env = Env::new().await;
    let (receiver, url) = Receiver::start(&[]).await;
    env.sandbox.sandbox().set_webhook(
        &env.secret_key,
        WebhookEndpoint {
            out_of_order: true,
            ..endpoint(&url)
        },
    );
    let (_, payment_key) = paid(&env, "customer-1", "order-0001").await;
    for amount in [1000, 3900] {
        env.control(
            Method::POST,
            &format!("/__sandbox/payments/{payment_key}/cancel"),
            json!({ "cancelReason": "콘솔 환불", "cancelAmount": amount }),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(receiver.got().is_empty(), "held until the flush");

    let flushed = env
        .control(Method::POST, "/__sandbox/webhooks/flush", json!({}))
        .await;

    assert_eq!(flushed["flushed"], 2);
    let got = receiver.wait_for(2).await;
    let statuses: Vec<&str> = got
        .iter()
        .map(|r| r.body["data"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["CANCELED", "PARTIAL_CANCELED"]);
}

#[tokio::test]
async fn a_console_refund_follows_the_api_cancels_rules() {
    let env = Env::new().await;
    let (_, payment_key) = paid(&env, "customer-1", "order-0001").await;
    let path = format!("/__sandbox/payments/{payment_key}/cancel");

    let too_much = env
        .http
        .post(env.url(&path))
        .json(&json!({ "cancelReason": "콘솔 환불", "cancelAmount": 5000 }))
        .send()
        .await
        .unwrap();
    assert_eq!(too_much.status(), StatusCode::FORBIDDEN);
    let body: Value = too_much.json().await.unwrap();
    assert_eq!(body["code"], "NOT_CANCELABLE_AMOUNT");

    env.control(Method::POST, &path, json!({ "cancelReason": "콘솔 환불" }))
        .await;
    let again = env
        .http
        .post(env.url(&path))
        .json(&json!({ "cancelReason": "콘솔 환불" }))
        .send()
        .await
        .unwrap();
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["code"], "ALREADY_CANCELED_PAYMENT");
    let state = env.state().await;
    assert_eq!(
        state.payment_by_order_id("order-0001").unwrap().status,
        "CANCELED"
    );
}

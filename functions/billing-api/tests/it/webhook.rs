//! `POST /toss/webhooks` through the function's router, against DynamoDB Local and the Toss
//! sandbox: the body is believed for nothing but which payment or key it names, each delivery
//! is processed once, and what changes is what Toss's own record confirms.

use domain::{AttemptStatus, OrderId, Status};
use lambda_http::http::Method;
use serde_json::{Value, json};
use toss_sandbox::{Endpoint, FaultAction, FaultConfig, FaultRule, TestCard};

use crate::{Answer, Api};

const ID_HEADER: &str = "tosspayments-webhook-transmission-id";

impl Api {
    /// A webhook delivery as Toss would POST it, under transmission id `id`.
    pub(crate) async fn webhook(&self, id: &str, body: &Value) -> Answer {
        self.send(
            Method::POST,
            "/toss/webhooks",
            None,
            &[
                (ID_HEADER, id),
                ("content-type", "application/json"),
                ("tosspayments-webhook-transmission-retried-count", "0"),
            ],
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    /// The table without the webhook deliveries' own records.
    async fn ledger_dump(&self) -> Vec<String> {
        self.dump()
            .await
            .into_iter()
            .filter(|item| !item.contains("WEBHOOK#"))
            .collect()
    }
}

fn payment_changed(payment: Value) -> Value {
    json!({
        "eventType": "PAYMENT_STATUS_CHANGED",
        "createdAt": "2026-12-02T10:00:00.000000",
        "data": payment,
    })
}

fn billing_deleted(billing_key: &str) -> Value {
    json!({
        "eventType": "BILLING_DELETED",
        "createdAt": "2026-12-02T10:00:00.000000",
        "data": { "billingKey": billing_key, "reason": null },
    })
}

fn drop_then_fail_look_ups(customer_key: &str, order_id: &OrderId) -> FaultConfig {
    FaultConfig {
        rules: vec![
            FaultRule {
                endpoint: Some(Endpoint::Charge),
                probability: 1.0,
                times: Some(1),
                commit: true,
                customer_key: Some(customer_key.to_owned()),
                order_id: None,
                action: FaultAction::DropConnection,
            },
            FaultRule {
                endpoint: Some(Endpoint::GetPaymentByOrderId),
                probability: 1.0,
                times: None,
                commit: false,
                customer_key: None,
                order_id: Some(order_id.to_string()),
                action: FaultAction::Error {
                    status: Some(500),
                    code: "FAILED_INTERNAL_SYSTEM_PROCESSING".into(),
                    message: None,
                },
            },
        ],
        ..FaultConfig::default()
    }
}

/// A subscriber whose renewal went through at Toss while its answer was lost and the look-up
/// failed: the attempt is `UNKNOWN`, Toss has it `DONE`. Returns (user, order id, paymentKey).
async fn renewal_left_unknown(api: &Api, user: &str) -> (String, String) {
    let customer_key = api.subscribe(user).await;
    let sub = api.subscription(user).await;
    api.sandbox.sandbox().set_faults(drop_then_fail_look_ups(
        &customer_key,
        &OrderId::for_attempt(sub.id(), 1, sub.next_attempt()),
    ));
    api.sweep(sub.next_charge_at().unwrap()).await;
    api.sandbox.sandbox().set_faults(FaultConfig::default());
    let attempt = api.store.last_attempt(sub.id(), 1).await.unwrap().unwrap();
    assert_eq!(attempt.status(), AttemptStatus::Unknown, "{attempt:?}");
    let payment = api
        .sandbox
        .sandbox()
        .snapshot()
        .payment_by_order_id(attempt.order_id().as_str())
        .unwrap()
        .clone();
    assert_eq!(payment.status, "DONE");
    (attempt.order_id().to_string(), payment.payment_key)
}

#[tokio::test]
async fn an_unknown_attempt_that_toss_has_done_is_settled_by_the_webhook_before_the_next_sweep() {
    let api = Api::new().await;
    let (order_id, payment_key) = renewal_left_unknown(&api, "user_wh1").await;
    let charges_before = api.sandbox.sandbox().snapshot().counters.charge_requests;

    let answer = api
        .webhook(
            "tx-unknown-1",
            &payment_changed(
                json!({ "paymentKey": payment_key, "orderId": order_id, "status": "DONE" }),
            ),
        )
        .await;

    assert_eq!(answer.status, 200, "{}", answer.json);
    let sub = api.subscription("user_wh1").await;
    let attempt = api.store.last_attempt(sub.id(), 1).await.unwrap().unwrap();
    assert_eq!(attempt.status(), AttemptStatus::Done);
    assert_eq!(
        attempt.payment_key().map(|k| k.as_str().to_owned()),
        Some(payment_key)
    );
    assert_eq!(sub.status(), Status::Active);
    assert_eq!(sub.next_period(), 2, "period 1 is granted");
    assert_eq!(
        api.sandbox.sandbox().snapshot().counters.charge_requests,
        charges_before,
        "settled from Toss's record: no charge sent"
    );
}

#[tokio::test]
async fn a_duplicated_or_replayed_webhook_is_processed_once() {
    let api = Api::new().await;
    let (order_id, payment_key) = renewal_left_unknown(&api, "user_wh2").await;
    let body = payment_changed(json!({ "paymentKey": payment_key, "orderId": order_id }));

    let first = api.webhook("tx-dup-1", &body).await;
    let after_first = api.dump().await;
    let again = api.webhook("tx-dup-1", &body).await;
    // a replay days later under Toss's header, the record still there
    let replay = api.webhook("tx-dup-1", &body).await;

    assert_eq!((first.status, again.status, replay.status), (200, 200, 200));
    assert_eq!(api.dump().await, after_first, "the repeats changed nothing");
    let webhooks: Vec<String> = after_first
        .iter()
        .filter(|i| i.contains("WEBHOOK#"))
        .cloned()
        .collect();
    assert_eq!(webhooks.len(), 1, "{webhooks:?}");
    assert!(
        webhooks[0].contains("outcome=S(\"settled\")"),
        "{webhooks:?}"
    );
}

#[tokio::test]
async fn a_webhook_that_lies_about_status_or_amount_changes_nothing_toss_does_not_confirm() {
    let api = Api::new().await;
    api.subscribe("user_wh3").await;
    let sub = api.subscription("user_wh3").await;
    let first = api.store.last_attempt(sub.id(), 0).await.unwrap().unwrap();
    let payment_key = first.payment_key().unwrap().as_str().to_owned();
    let before = api.ledger_dump().await;

    let lie = api
        .webhook(
            "tx-lie-1",
            &payment_changed(json!({
                "paymentKey": payment_key,
                "orderId": first.order_id().as_str(),
                "status": "CANCELED",
                "totalAmount": 1,
                "balanceAmount": 0,
                "cancels": [{ "cancelAmount": 3900, "transactionKey": "forged" }],
            })),
        )
        .await;
    let stranger = api
        .webhook(
            "tx-lie-2",
            &payment_changed(json!({ "paymentKey": "tgen_20261202000000XXXXX", "status": "DONE" })),
        )
        .await;

    assert_eq!((lie.status, stranger.status), (200, 200));
    assert_eq!(api.ledger_dump().await, before, "nothing Toss does not say");
    let toss = api.sandbox.sandbox().snapshot();
    assert_eq!(
        toss.payment_by_order_id(first.order_id().as_str())
            .unwrap()
            .status,
        "DONE"
    );
}

#[tokio::test]
async fn billing_deleted_for_an_active_subscription_asks_for_a_new_card_at_renewal_without_a_charge()
 {
    let api = Api::new().await;
    api.subscribe("user_wh4").await;
    let sub = api.subscription("user_wh4").await;
    let key = sub.billing_key().cloned().unwrap();
    assert!(
        api.sandbox
            .sandbox()
            .delete_billing_key_at_toss(key.expose_secret(), Some("카드사 요청"))
    );

    let answer = api
        .webhook("tx-del-1", &billing_deleted(key.expose_secret()))
        .await;

    assert_eq!(answer.status, 200, "{}", answer.json);
    let gone = api.subscription("user_wh4").await;
    assert_eq!(gone.billing_key(), None);
    assert_eq!(gone.status(), Status::Active, "the paid period runs on");
    let view = api
        .call(
            Method::GET,
            "/v1/subscription",
            Some(&api.token("user_wh4")),
        )
        .await;
    assert_eq!(view.json["card"], Value::Null, "{}", view.json);

    let charges_before = api.sandbox.sandbox().snapshot().counters.charge_requests;
    api.sweep(sub.next_charge_at().unwrap()).await;

    let renewed = api.subscription("user_wh4").await;
    assert_eq!(renewed.status(), Status::PastDue);
    assert!(
        renewed.dunning().is_some_and(|d| d.card_unusable),
        "{renewed:?}"
    );
    let attempt = api.store.last_attempt(sub.id(), 1).await.unwrap().unwrap();
    assert_eq!(attempt.status(), AttemptStatus::Declined);
    let toss = api.sandbox.sandbox().snapshot();
    assert_eq!(toss.counters.charge_requests, charges_before);
    assert_eq!(toss.charge_requests_for(attempt.order_id().as_str()), 0);
    let view = api
        .call(
            Method::GET,
            "/v1/subscription",
            Some(&api.token("user_wh4")),
        )
        .await;
    assert_eq!(view.json["status"], "past_due", "{}", view.json);
}

#[tokio::test]
async fn a_late_billing_deleted_for_a_replaced_or_unknown_key_changes_nothing() {
    let api = Api::new().await;
    api.subscribe("user_wh5").await;
    let old = api
        .subscription("user_wh5")
        .await
        .billing_key()
        .cloned()
        .unwrap();
    // the customer registers another card; our delete of the old key makes Toss send
    // BILLING_DELETED, which arrives after the new card is in place
    let (landing, _) = api.subscribe_with("user_wh5", TestCard::Ok).await;
    assert_eq!(landing, crate::APP_DONE);
    let current = api.subscription("user_wh5").await;
    assert_ne!(current.billing_key(), Some(&old));
    let before = api.ledger_dump().await;

    let late = api
        .webhook("tx-late-1", &billing_deleted(old.expose_secret()))
        .await;
    let unknown = api
        .webhook(
            "tx-late-2",
            &billing_deleted("Z_t5vOvQxrj4499PeiJcjen28-V2RyqgYTwN44Rdzk0="),
        )
        .await;

    assert_eq!((late.status, unknown.status), (200, 200));
    assert_eq!(api.ledger_dump().await, before);
}

#[tokio::test]
async fn bodies_that_are_not_toss_webhooks_get_a_400_and_write_nothing() {
    let api = Api::new().await;
    let bodies: [&[u8]; 5] = [
        b"",
        b"{not json",
        br#"{"eventType":"PAYMENT_STATUS_CHANGED","data":{}}"#,
        br#"{"eventType":"BILLING_DELETED","data":{"billingKey":null}}"#,
        br#"["PAYMENT_STATUS_CHANGED"]"#,
    ];
    for body in bodies {
        let answer = api
            .send(
                Method::POST,
                "/toss/webhooks",
                None,
                &[(ID_HEADER, "tx-bad"), ("content-type", "application/json")],
                Some(body.to_vec()),
            )
            .await;
        assert_eq!(answer.status, 400, "{:?}", String::from_utf8_lossy(body));
        assert_eq!(answer.json["error"]["code"], "INVALID_WEBHOOK");
    }
    let no_id = api
        .send(
            Method::POST,
            "/toss/webhooks",
            None,
            &[("content-type", "application/json")],
            Some(
                billing_deleted("Z_t5vOvQxrj4499PeiJcjen28-V2RyqgYTwN44Rdzk0=")
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    let huge = api
        .webhook(
            "tx-huge",
            &payment_changed(json!({ "paymentKey": "k", "pad": "x".repeat(70_000) })),
        )
        .await;
    let get = api.call(Method::GET, "/toss/webhooks", None).await;

    assert_eq!(no_id.status, 400);
    assert_eq!(huge.status, 413);
    assert_eq!(get.status, 405);
    assert_eq!(api.items().await, 0, "nothing was written");
}

#[tokio::test]
async fn an_unknown_event_type_is_acknowledged_and_ignored() {
    let api = Api::new().await;

    let answer = api
        .webhook(
            "tx-other-1",
            &json!({ "eventType": "DEPOSIT_CALLBACK", "createdAt": "2026-12-02T10:00:00.000000", "data": { "secret": "x" } }),
        )
        .await;

    assert_eq!(answer.status, 200);
    assert_eq!(api.items().await, 0);
}

#[tokio::test]
async fn a_webhook_whose_handling_failed_is_handled_again_when_toss_retries_it() {
    let api = Api::new().await;
    let (order_id, payment_key) = renewal_left_unknown(&api, "user_wh6").await;
    let body = payment_changed(json!({ "paymentKey": payment_key, "orderId": order_id }));
    api.sandbox.sandbox().set_faults(FaultConfig {
        rules: vec![FaultRule {
            endpoint: Some(Endpoint::GetPayment),
            probability: 1.0,
            times: None,
            commit: false,
            customer_key: None,
            order_id: None,
            action: FaultAction::Error {
                status: Some(500),
                code: "FAILED_INTERNAL_SYSTEM_PROCESSING".into(),
                message: None,
            },
        }],
        ..FaultConfig::default()
    });
    let before = api.dump().await;

    let failed = api.webhook("tx-retry-1", &body).await;
    let after_failure = api.dump().await;
    api.sandbox.sandbox().set_faults(FaultConfig::default());
    let retried = api.webhook("tx-retry-1", &body).await;

    assert_eq!(failed.status, 500);
    assert_eq!(after_failure, before, "a failure leaves no claim behind");
    assert_eq!(retried.status, 200);
    let sub = api.subscription("user_wh6").await;
    let attempt = api.store.last_attempt(sub.id(), 1).await.unwrap().unwrap();
    assert_eq!(
        attempt.status(),
        AttemptStatus::Done,
        "the retry was handled, not taken for a duplicate"
    );
}

#[tokio::test]
async fn a_delivery_held_by_a_running_worker_gets_a_409_and_one_whose_worker_died_is_taken_over() {
    let api = Api::new().await;
    api.subscribe("user_wh7").await;
    let key = api
        .subscription("user_wh7")
        .await
        .billing_key()
        .cloned()
        .unwrap();
    let body = billing_deleted(key.expose_secret());
    let now = chrono::Utc::now();
    let lease = chrono::Duration::seconds(120);
    // another request is handling tx-race-1 right now; tx-dead-1's worker died 10 minutes ago
    let held = api
        .store
        .claim_webhook("tx-race-1", "BILLING_DELETED", "webhook-other", now, lease)
        .await
        .unwrap();
    let dead = api
        .store
        .claim_webhook(
            "tx-dead-1",
            "BILLING_DELETED",
            "webhook-dead",
            now - chrono::Duration::minutes(10),
            lease,
        )
        .await
        .unwrap();
    assert_eq!(
        (held.clone(), dead),
        (store::WebhookClaim::Claimed, store::WebhookClaim::Claimed)
    );

    let busy = api.webhook("tx-race-1", &body).await;
    let unchanged = api.subscription("user_wh7").await;
    let taken_over = api.webhook("tx-dead-1", &body).await;

    assert_eq!(busy.status, 409);
    assert_eq!(busy.json["error"]["code"], "WEBHOOK_IN_PROGRESS");
    assert!(
        unchanged.billing_key().is_some(),
        "the busy delivery did no work"
    );
    assert_eq!(taken_over.status, 200);
    assert_eq!(api.subscription("user_wh7").await.billing_key(), None);
}

#[tokio::test]
async fn a_console_refund_reaches_the_ledger_once_and_ends_the_subscription_through_the_webhook() {
    let api = Api::new().await;
    api.subscribe("user_wh_console").await;
    let sub = api.subscription("user_wh_console").await;
    assert!(sub.credits() > 0);
    let first = api.store.last_attempt(sub.id(), 0).await.unwrap().unwrap();
    let payment_key = first.payment_key().unwrap().as_str().to_owned();
    let canceled = api
        .sandbox
        .sandbox()
        .console_cancel(&payment_key, "고객 요청 (콘솔)", None)
        .unwrap();
    let body = payment_changed(json!({ "paymentKey": payment_key, "status": "CANCELED" }));

    let delivered = api.webhook("tx-console-1", &body).await;
    // Toss sending the same change again under another transmission (or reordered after it).
    let again = api.webhook("tx-console-2", &body).await;

    assert_eq!((delivered.status, again.status), (200, 200));
    let refunds = api.store.refunds(sub.id()).await.unwrap();
    assert_eq!(refunds.len(), 1, "recorded once: {refunds:?}");
    assert_eq!(refunds[0].amount, domain::Krw::new(3900));
    assert_eq!(refunds[0].status, domain::RefundStatus::Done);
    assert_eq!(refunds[0].by, domain::RefundBy::TossConsole);
    let toss = api.sandbox.sandbox().snapshot();
    let at_toss = toss.payment_by_order_id(first.order_id().as_str()).unwrap();
    assert_eq!(
        (
            at_toss.status.as_str(),
            at_toss.balance_amount,
            at_toss.cancels
        ),
        ("CANCELED", 0, 1)
    );
    assert_eq!(
        refunds[0].transaction_key.as_deref(),
        Some(canceled.last_transaction_key.as_str()),
        "the ledger names Toss's own cancel"
    );
    let after = api.subscription("user_wh_console").await;
    assert_eq!(
        after.status(),
        Status::Canceled,
        "a full refund of the current period ends it"
    );
    assert_eq!(after.credits(), 0, "and takes back its credits");
}

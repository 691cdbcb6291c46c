//! Statutory withdrawal (청약철회) through the app's API: `GET /v1/subscription` says whether
//! the latest period is withdrawable, `POST /v1/subscription/cancel` with `{"mode":"withdraw"}`
//! refunds it; Toss's own record shows exactly one refund in every case.

use chrono::Duration;
use domain::{CancelReason, Status};
use lambda_http::http::Method;

use crate::{Answer, Api};

async fn cancel_with(api: &Api, user: &str, body: &str) -> Answer {
    api.send(
        Method::POST,
        "/v1/subscription/cancel",
        Some(&api.token(user)),
        &[("content-type", "application/json")],
        Some(body.as_bytes().to_vec()),
    )
    .await
}

/// Toss's record of the user's payments: (cancels, amount canceled in total).
fn refunds_at_toss(api: &Api, customer_key: &str) -> (usize, i64) {
    let snapshot = api.sandbox.sandbox().snapshot();
    let mine = snapshot
        .payments
        .iter()
        .filter(|p| p.customer_key == customer_key);
    mine.fold((0, 0), |(n, sum), p| {
        (n + p.cancels, sum + p.total_amount - p.balance_amount)
    })
}

#[tokio::test]
async fn a_withdrawal_inside_the_window_with_no_credit_used_refunds_the_period_and_ends_it_now() {
    let api = Api::new().await;
    let customer = api.subscribe("user_w").await;
    let token = api.token("user_w");

    let before = api
        .call(Method::GET, "/v1/subscription", Some(&token))
        .await;
    let answer = cancel_with(&api, "user_w", r#"{"mode":"withdraw"}"#).await;
    let replay = cancel_with(&api, "user_w", r#"{"mode":"withdraw"}"#).await;

    assert_eq!(
        before.json["withdrawable"]["amount"], 3900,
        "{}",
        before.json
    );
    assert!(before.json["withdrawable"]["until"].is_string());
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(answer.json["status"], "canceled");
    assert_eq!(answer.json["credits"], 0);
    assert_eq!(answer.json["card"], serde_json::Value::Null);
    assert_eq!(answer.json["refund"]["status"], "DONE");
    assert_eq!(replay.status, 200, "a replay answers as the first did");
    assert_eq!(
        refunds_at_toss(&api, &customer),
        (1, 3900),
        "exactly one refund"
    );
    let sub = api.subscription("user_w").await;
    assert_eq!(sub.status(), Status::Canceled);
    assert_eq!(sub.cancel_reason(), Some(CancelReason::Withdrawn));
    assert!(sub.billing_key().is_none());
    let payments = api.call(Method::GET, "/v1/payments", Some(&token)).await;
    assert_eq!(payments.json["payments"][0]["status"], "CANCELED");
    assert_eq!(payments.json["payments"][0]["refunded"], 3900);
    let after = api
        .call(Method::GET, "/v1/subscription", Some(&token))
        .await;
    assert_eq!(after.json["withdrawable"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_withdrawal_after_a_credit_was_used_is_refused_and_changes_nothing() {
    let api = Api::new().await;
    let customer = api.subscribe("user_used").await;
    let token = api.token("user_used");
    assert_eq!(
        api.consume(&token, "k1", r#"{"amount":1}"#).await.status,
        200
    );
    let table = api.dump().await;

    let status = api
        .call(Method::GET, "/v1/subscription", Some(&token))
        .await;
    let answer = cancel_with(&api, "user_used", r#"{"mode":"withdraw"}"#).await;

    assert_eq!(status.json["withdrawable"], serde_json::Value::Null);
    assert_eq!(
        (answer.status, answer.json["error"]["code"].as_str()),
        (409, Some("NOT_WITHDRAWABLE"))
    );
    assert_eq!(api.dump().await, table, "nothing changed");
    assert_eq!(refunds_at_toss(&api, &customer), (0, 0));
}

#[tokio::test]
async fn a_withdrawal_after_the_window_is_refused_and_changes_nothing() {
    let api = Api::new().await;
    // Toss approved the first month eight days ago.
    api.sandbox.sandbox().set_clock_offset(-Duration::days(8));
    let customer = api.subscribe("user_late").await;
    let table = api.dump().await;

    let answer = cancel_with(&api, "user_late", r#"{"mode":"withdraw"}"#).await;

    assert_eq!(
        (answer.status, answer.json["error"]["code"].as_str()),
        (409, Some("NOT_WITHDRAWABLE"))
    );
    assert_eq!(api.dump().await, table, "nothing changed");
    assert_eq!(refunds_at_toss(&api, &customer), (0, 0));
    assert_eq!(api.subscription("user_late").await.status(), Status::Active);
}

#[tokio::test]
async fn an_unknown_cancel_mode_or_field_is_refused_and_changes_nothing() {
    let api = Api::new().await;
    let customer = api.subscribe("user_bad").await;
    let table = api.dump().await;

    let mode = cancel_with(&api, "user_bad", r#"{"mode":"refund_everything"}"#).await;
    let field = cancel_with(&api, "user_bad", r#"{"mode":"withdraw","amount":1}"#).await;

    assert_eq!(mode.status, 400, "{}", mode.json);
    assert_eq!(field.status, 400, "{}", field.json);
    assert_eq!(api.dump().await, table);
    assert_eq!(refunds_at_toss(&api, &customer), (0, 0));
}

#[tokio::test]
async fn racing_withdrawals_and_consumptions_never_leave_both_a_refund_and_a_used_credit() {
    let api = Api::new().await;
    let customer = api.subscribe("user_racer").await;
    let token = api.token("user_racer");

    let keys: Vec<String> = (0..3).map(|i| format!("race-{i}")).collect();
    let (withdrawals, consumptions) = tokio::join!(
        futures::future::join_all((0..3).map(|_| cancel_with(
            &api,
            "user_racer",
            r#"{"mode":"withdraw"}"#
        ))),
        futures::future::join_all(keys.iter().map(|key| api.consume(
            &token,
            key,
            r#"{"amount":1}"#
        ))),
    );

    let consumed = consumptions.iter().filter(|a| a.status == 200).count();
    let (cancels, refunded) = refunds_at_toss(&api, &customer);
    let sub = api.subscription("user_racer").await;
    if cancels == 0 {
        assert!(consumed > 0 || withdrawals.iter().all(|a| a.status != 200));
        assert_eq!(sub.status(), Status::Active);
    } else {
        assert_eq!((cancels, refunded), (1, 3900));
        assert_eq!(consumed, 0, "a credit was used and the period refunded");
        assert_eq!(sub.credits_used_in_period(), 0);
    }
}

#[tokio::test]
async fn a_withdrawal_toss_refuses_answers_409_and_the_subscription_goes_on_as_it_was() {
    let api = Api::new().await;
    let customer = api.subscribe("user_refused").await;
    let token = api.token("user_refused");
    api.sandbox.sandbox().set_faults(toss_sandbox::FaultConfig {
        rules: vec![toss_sandbox::FaultRule {
            endpoint: Some(toss_sandbox::Endpoint::Cancel),
            probability: 1.0,
            times: Some(1),
            commit: false,
            customer_key: None,
            order_id: None,
            action: toss_sandbox::FaultAction::Error {
                status: None,
                code: "REFUND_REJECTED".into(),
                message: None,
            },
        }],
        ..toss_sandbox::FaultConfig::default()
    });

    let answer = cancel_with(&api, "user_refused", r#"{"mode":"withdraw"}"#).await;
    let status = api
        .call(Method::GET, "/v1/subscription", Some(&token))
        .await;

    assert_eq!(
        (answer.status, answer.json["error"]["code"].as_str()),
        (409, Some("REFUND_REFUSED")),
        "{}",
        answer.json
    );
    assert!(
        !answer.json.to_string().contains("REFUND_REJECTED"),
        "Toss's code stays in the log"
    );
    assert_eq!(status.json["status"], "active");
    assert_eq!(status.json["credits"], 30);
    assert_eq!(status.json["withdrawalPending"], false);
    assert!(status.json["card"].is_object(), "{}", status.json);
    assert_eq!(
        status.json["withdrawable"]["amount"], 3900,
        "still withdrawable: the customer may ask again"
    );
    assert_eq!(refunds_at_toss(&api, &customer), (0, 0));
}

//! What an operator sees from the real `charge-subscriptions` and `billing-api` binaries under
//! `cargo lambda watch`: the daily settlement check started by its own schedule's sample event,
//! the Embedded Metric Format lines both functions write to stdout after each invocation, and
//! an operator's refund event invoked twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use testkit::lambda::{FunctionError, Watch};
use toss_sandbox::{SandboxConfig, TestCard};

const SECRET: &str = toss_sandbox::DOCS_SECRET_KEY;
const SUCCESS_URL: &str = "https://app.example/billing/done";
const NAMESPACE: &str = "TossSubscriptions/e2e";

fn settlement_rule(event: &Value) -> String {
    event["resources"][0].as_str().unwrap().to_owned()
}

/// Every EMF document in the logs: (metric name, its value, the document).
fn emf(logs: &str) -> Vec<(String, Value, Value)> {
    let mut out = Vec::new();
    for line in logs.lines() {
        let Some(start) = line.find("{\"_aws\"") else {
            continue;
        };
        let Ok(doc) = serde_json::from_str::<Value>(&line[start..]) else {
            continue;
        };
        for directive in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(directive["Namespace"], NAMESPACE);
            for metric in directive["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap().to_owned();
                out.push((name.clone(), doc[&name].clone(), doc.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn e2e_the_settlement_schedule_checks_the_previous_day_and_both_functions_write_emf_metrics()
{
    let (client, table) = testkit::dynamo::fresh_table().await.unwrap();
    let endpoint = testkit::dynamo::endpoint().await.unwrap();
    let sandbox = toss_sandbox::spawn(SandboxConfig::default()).await.unwrap();
    let issuer = auth_issuer::spawn(auth_issuer::IssuerConfig::default())
        .await
        .unwrap();
    let mut settlement = testkit::event("charge-subscriptions.settlement.json").unwrap();
    let watch = Watch::builder()
        .envs(testkit::dynamo::sdk_env(&endpoint))
        .env("AUTH_ISSUER", issuer.issuer_url())
        .env("TOSS_SECRET_KEY", SECRET)
        .env("TOSS_API_BASE", sandbox.base_url())
        .env("TABLE_NAME", &table)
        .env("APP_SUCCESS_URL", SUCCESS_URL)
        .env("APP_FAIL_URL", "https://app.example/billing/failed")
        .env("METRICS_NAMESPACE", NAMESPACE)
        .env("API_BASE_URL", "https://api.app.example")
        .env("SETTLEMENT_RULE_ARN", settlement_rule(&settlement))
        .env("TOSS_CHARGE_TIMEOUT_SECONDS", "10")
        .prebuild("billing-api")
        .prebuild("charge-subscriptions")
        .start()
        .await
        .unwrap();
    // GIVEN a customer who checked out and subscribed today through the real redirect
    let token = issuer
        .issuer()
        .mint(&auth_issuer::TokenRequest::for_user("user_e2e_ops"))
        .unwrap();
    let checkout: Value = reqwest::Client::new()
        .post(format!(
            "{}/lambda-url/billing-api/v1/checkout",
            watch.base_url()
        ))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let customer = checkout["customerKey"].as_str().unwrap();
    let success = url::Url::parse(checkout["successUrl"].as_str().unwrap()).unwrap();
    let auth_key = sandbox
        .sandbox()
        .mint_auth_key(customer, TestCard::Ok)
        .unwrap();
    let path = format!(
        "{}?{}&customerKey={customer}&authKey={auth_key}",
        success.path(),
        success.query().unwrap()
    );
    let response = watch.http_get("billing-api", &path).await.unwrap();
    assert_eq!(response.location(), Some(SUCCESS_URL), "{response:?}");
    let store = store::Store::new(client, table);
    let sub = store
        .user_view("user_e2e_ops")
        .await
        .unwrap()
        .subscription
        .unwrap();

    // WHEN tomorrow's settlement schedule fires, then next month's sweep
    settlement["time"] = json!((Utc::now() + Duration::days(1)).to_rfc3339());
    let report = watch
        .invoke("charge-subscriptions", &settlement)
        .await
        .unwrap();
    let mut forged = settlement.clone();
    forged["detail"] = json!({"continuation": 1});
    let refused = watch
        .invoke("charge-subscriptions", &forged)
        .await
        .unwrap_err()
        .downcast::<FunctionError>()
        .unwrap();
    let mut sweep = testkit::event("charge-subscriptions.scheduled.json").unwrap();
    sweep["time"] = json!((sub.next_charge_at().unwrap() + Duration::hours(9)).to_rfc3339());
    let swept = watch.invoke("charge-subscriptions", &sweep).await.unwrap();

    // THEN the check found today's first charge in both places
    assert_eq!(report["toss_approvals"], 1, "{report}");
    assert_eq!(report["ledger_paid"], 1, "{report}");
    assert_eq!(report["matched"], 1, "{report}");
    assert_eq!(report["mismatches"], json!([]), "{report}");
    assert_eq!(refused.error_type, "InvalidEvent");
    assert_eq!(swept["charged"], 1, "{swept}");
    // AND the logs carry the metrics of all three, dimensioned by function only
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let logs = watch.logs();
    let metrics = emf(&logs);
    let value = |name: &str, outcome: Option<&str>| -> Vec<Value> {
        metrics
            .iter()
            .filter(|(n, _, doc)| {
                n == name && doc.get("Outcome").and_then(Value::as_str) == outcome
            })
            .map(|(_, v, _)| v.clone())
            .collect()
    };
    assert_eq!(
        value("Registrations", Some("subscribed")),
        [json!(1)],
        "{logs}"
    );
    assert_eq!(value("SettlementChecked", None), [json!(2)], "{logs}");
    assert_eq!(value("Charges", Some("charged")), [json!(1)], "{logs}");
    assert_eq!(value("ChargedKrw", None), [json!(3900)], "{logs}");
    assert_eq!(value("SweepCompleted", None), [json!(1)], "{logs}");
    assert!(value("SettlementMismatches", None).is_empty(), "{logs}");
    for (_, _, doc) in &metrics {
        assert!(
            doc["Service"] == "charge-subscriptions" || doc["Service"] == "billing-api",
            "{doc}"
        );
        assert!(!doc.to_string().contains("user_e2e_ops"), "{doc}");
    }
    assert!(
        !logs.contains("zXLkKEypNArWmo50nX3lmeaxYG5R"),
        "the secret key is never logged"
    );

    // AND an operator's refund of the first month, invoked twice with one request id (as the
    // CLI retries after a timeout), refunds once; the id reused for another amount does nothing
    let first = store.ledger(sub.id()).await.unwrap().remove(0);
    let mut refund = testkit::event("charge-subscriptions.refund.json").unwrap();
    refund["orderId"] = json!(first.order_id().as_str());
    let once = watch.invoke("charge-subscriptions", &refund).await.unwrap();
    let again = watch.invoke("charge-subscriptions", &refund).await.unwrap();
    refund["amount"] = json!(2000);
    let reused = watch.invoke("charge-subscriptions", &refund).await.unwrap();
    assert_eq!(
        (&once["outcome"], &once["amount"]),
        (&json!("refunded"), &json!(1000)),
        "{once}"
    );
    assert_eq!(again["outcome"], "refunded", "{again}");
    assert_eq!(again["transactionKey"], once["transactionKey"], "{again}");
    assert_eq!(reused["outcome"], "request_id_reused", "{reused}");
    let snapshot = sandbox.sandbox().snapshot();
    let paid = snapshot
        .payment_by_order_id(first.order_id().as_str())
        .unwrap();
    assert_eq!(
        (paid.cancels, paid.balance_amount),
        (1, 2900),
        "one cancel at Toss"
    );
    assert_eq!(
        store.refunds(sub.id()).await.unwrap().len(),
        1,
        "one refund in the ledger"
    );
}

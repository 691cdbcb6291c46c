//! Toss's webhooks end to end: the sandbox itself delivers them (with its retry schedule and
//! duplicates) to the real billing-api binary under `cargo lambda watch`, against DynamoDB
//! Local with the table from template.yaml.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::lambda::Watch;
use toss_sandbox::{SandboxConfig, TestCard, WebhookEndpoint};

const SECRET: &str = toss_sandbox::DOCS_SECRET_KEY;
const SUCCESS_URL: &str = "https://app.example/billing/done";

#[tokio::test]
async fn e2e_a_key_the_card_company_deletes_reaches_the_function_by_webhook_and_the_card_is_gone() {
    let (client, table) = testkit::dynamo::fresh_table().await.unwrap();
    let endpoint = testkit::dynamo::endpoint().await.unwrap();
    let sandbox = toss_sandbox::spawn(SandboxConfig::default()).await.unwrap();
    let issuer = auth_issuer::spawn(auth_issuer::IssuerConfig::default())
        .await
        .unwrap();
    let watch = Watch::builder()
        .envs(testkit::dynamo::sdk_env(&endpoint))
        .env("AUTH_ISSUER", issuer.issuer_url())
        .env("API_BASE_URL", "https://api.app.example")
        .env("TOSS_SECRET_KEY", SECRET)
        .env("TOSS_API_BASE", sandbox.base_url())
        .env("TABLE_NAME", &table)
        .env("APP_SUCCESS_URL", SUCCESS_URL)
        .env("APP_FAIL_URL", "https://app.example/billing/failed")
        .env("PLAN_AMOUNT", "3900")
        .env("PLAN_CREDITS", "30")
        .prebuild("billing-api")
        .start()
        .await
        .unwrap();
    let store = store::Store::new(client, table);
    // Toss is told the function's URL; a minute of its retry schedule lasts 50 ms, and every
    // notification comes twice.
    sandbox.sandbox().set_webhook(
        SECRET,
        WebhookEndpoint {
            minute_millis: 50,
            duplicates: 1,
            ..WebhookEndpoint::new(format!(
                "{}/lambda-url/billing-api/toss/webhooks",
                watch.base_url()
            ))
        },
    );

    // a subscriber, through checkout and Toss's redirect
    let user = "user_e2e_webhook";
    let token = issuer
        .issuer()
        .mint(&auth_issuer::TokenRequest::for_user(user))
        .unwrap();
    let http = reqwest::Client::new();
    let checkout: Value = http
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
    let customer_key = checkout["customerKey"].as_str().unwrap();
    let success = url::Url::parse(checkout["successUrl"].as_str().unwrap()).unwrap();
    let auth_key = sandbox
        .sandbox()
        .mint_auth_key(customer_key, TestCard::Ok)
        .unwrap();
    let redirect = watch
        .http_get(
            "billing-api",
            &format!(
                "{}?{}&customerKey={customer_key}&authKey={auth_key}",
                success.path(),
                success.query().unwrap()
            ),
        )
        .await
        .unwrap();
    assert_eq!(redirect.location(), Some(SUCCESS_URL), "{redirect:?}");
    let sub = store.user_view(user).await.unwrap().subscription.unwrap();
    let key = sub.billing_key().cloned().unwrap();

    // the card company deletes the key at Toss; Toss tells us by webhook
    assert!(
        sandbox
            .sandbox()
            .delete_billing_key_at_toss(key.expose_secret(), Some("카드사 요청"))
    );

    let deadline = Instant::now() + Duration::from_secs(180);
    let gone = loop {
        let now = store.subscription(sub.id()).await.unwrap().unwrap();
        if now.billing_key().is_none() || Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(gone.billing_key(), None, "{}", watch.logs());
    assert_eq!(gone.status(), domain::Status::Active);
    let delivered_ok = |deliveries: &[toss_sandbox::WebhookDelivery]| {
        deliveries
            .iter()
            .filter(|d| d.event_type == "BILLING_DELETED" && d.status == Some(200))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered_ok(&sandbox.sandbox().webhook_deliveries()) < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deliveries = sandbox.sandbox().webhook_deliveries();
    assert!(
        delivered_ok(&deliveries) >= 2,
        "the duplicate is answered 200 too: {deliveries:?}"
    );
    assert!(
        deliveries
            .iter()
            .all(|d| d.transmission_id == deliveries[0].transmission_id)
    );
    let logs = watch.logs();
    assert!(!logs.contains(key.expose_secret()), "the key was logged");
}

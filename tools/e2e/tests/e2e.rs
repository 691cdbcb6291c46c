//! Both real function binaries under the Lambda runtime emulator (`cargo lambda watch`),
//! against DynamoDB Local (table from template.yaml) and the Toss sandbox, configured only
//! through the environment, exactly as deployed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, Utc};
use domain::Status;
use serde_json::{Value, json};
use testkit::lambda::{FunctionError, Watch};
use toss_sandbox::{RunningSandbox, SandboxConfig, TestCard};

const SECRET: &str = toss_sandbox::DOCS_SECRET_KEY;
const SUCCESS_URL: &str = "https://app.example/billing/done";
const FAIL_URL: &str = "https://app.example/billing/failed";
/// The app's origin: the local issuer's default `azp`, and the only authorized party.
const APP_ORIGIN: &str = "http://localhost:3000";
const API_BASE: &str = "https://api.app.example";

/// What `POST /v1/checkout` gave the app.
struct Checkout {
    customer_key: String,
    /// The success URL's path and query (`/billing/success?state=…`).
    success_path: String,
}

struct Stack {
    sandbox: RunningSandbox,
    issuer: auth_issuer::RunningIssuer,
    store: store::Store,
    table: String,
    endpoint: String,
    watch: Watch,
}

async fn watch(
    sandbox: &RunningSandbox,
    issuer: &auth_issuer::RunningIssuer,
    endpoint: &str,
    table: &str,
    secret: &str,
) -> Watch {
    Watch::builder()
        .envs(testkit::dynamo::sdk_env(endpoint))
        .env("AUTH_ISSUER", issuer.issuer_url())
        .env("AUTH_AUTHORIZED_PARTIES", APP_ORIGIN)
        .env("API_BASE_URL", API_BASE)
        .env("TOSS_SECRET_KEY", secret)
        .env("TOSS_API_BASE", sandbox.base_url())
        .env("TABLE_NAME", table)
        .env("APP_SUCCESS_URL", SUCCESS_URL)
        .env("APP_FAIL_URL", FAIL_URL)
        .env("PLAN_AMOUNT", "3900")
        .env("PLAN_CREDITS", "30")
        .env("DUNNING_RETRY_DAYS", "1,3,5")
        .env("CHARGE_CONCURRENCY", "8")
        .env("TOSS_CHARGE_TIMEOUT_SECONDS", "10")
        .env("AWS_LAMBDA_LOG_LEVEL", "debug")
        .prebuild("billing-api")
        .prebuild("charge-subscriptions")
        .start()
        .await
        .unwrap()
}

impl Stack {
    async fn new() -> Self {
        let (client, table) = testkit::dynamo::fresh_table().await.unwrap();
        let endpoint = testkit::dynamo::endpoint().await.unwrap();
        let sandbox = toss_sandbox::spawn(SandboxConfig::default()).await.unwrap();
        let issuer = auth_issuer::spawn(auth_issuer::IssuerConfig::default())
            .await
            .unwrap();
        let watch = watch(&sandbox, &issuer, &endpoint, &table, SECRET).await;
        Self {
            sandbox,
            issuer,
            store: store::Store::new(client, table.clone()),
            table,
            endpoint,
            watch,
        }
    }

    /// What the app does before opening Toss's card window: `POST /v1/checkout` as `user`.
    async fn checkout(&self, user: &str) -> Checkout {
        let token = self
            .issuer
            .issuer()
            .mint(&auth_issuer::TokenRequest::for_user(user))
            .unwrap();
        let (status, _, body) = post_v1(&self.watch, "/v1/checkout", Some(&token)).await;
        assert_eq!(status, 201, "{body}");
        let success = url::Url::parse(body["successUrl"].as_str().unwrap()).unwrap();
        Checkout {
            customer_key: body["customerKey"].as_str().unwrap().to_owned(),
            success_path: format!("{}?{}", success.path(), success.query().unwrap()),
        }
    }

    /// What the browser does after Toss's card window: GET the success URL, to which Toss
    /// appended the customer key and the authKey.
    async fn redirect(&self, checkout: &Checkout, auth_key: &str) -> String {
        let path = format!(
            "{}&customerKey={}&authKey={auth_key}",
            checkout.success_path, checkout.customer_key
        );
        let response = self.watch.http_get("billing-api", &path).await.unwrap();
        assert_eq!(response.status, 302, "{response:?}");
        response.location().unwrap().to_owned()
    }

    /// A checkout, the card window, the redirect: `user` is subscribed.
    async fn subscribe(&self, user: &str, card: TestCard) -> domain::Subscription {
        let checkout = self.checkout(user).await;
        let auth_key = self
            .sandbox
            .sandbox()
            .mint_auth_key(&checkout.customer_key, card)
            .unwrap();
        assert_eq!(self.redirect(&checkout, &auth_key).await, SUCCESS_URL);
        self.subscription(user).await
    }

    async fn subscription(&self, user: &str) -> domain::Subscription {
        self.store
            .user_view(user)
            .await
            .unwrap()
            .subscription
            .unwrap()
    }

    async fn customer_key(&self, user: &str) -> String {
        let view = self.store.user_view(user).await.unwrap();
        view.customer_key.unwrap().as_str().to_owned()
    }

    async fn sweep(&self, at: DateTime<Utc>) -> Result<Value, FunctionError> {
        sweep_with(&self.watch, at).await
    }

    async fn done_payments(&self, user: &str) -> usize {
        let customer = self.customer_key(user).await;
        let snapshot = self.sandbox.sandbox().snapshot();
        snapshot
            .payments
            .iter()
            .filter(|p| p.customer_key == customer && p.status == "DONE")
            .count()
    }
}

/// The sample scheduled event with its `time` set: the sweep's test clock.
async fn sweep_with(watch: &Watch, at: DateTime<Utc>) -> Result<Value, FunctionError> {
    let mut event = testkit::event("charge-subscriptions.scheduled.json").unwrap();
    event["time"] = json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    watch
        .invoke("charge-subscriptions", &event)
        .await
        .map_err(|e| e.downcast::<FunctionError>().unwrap())
}

fn renewal_time(sub: &domain::Subscription) -> DateTime<Utc> {
    sub.next_charge_at().unwrap() + Duration::hours(9)
}

#[tokio::test]
async fn e2e_a_redirect_registers_a_card_and_charges_once_and_loading_it_again_charges_nothing() {
    let stack = Stack::new().await;
    let checkout = stack.checkout("user_e2e_first").await;
    let auth_key = stack
        .sandbox
        .sandbox()
        .mint_auth_key(&checkout.customer_key, TestCard::Ok)
        .unwrap();

    let first = stack.redirect(&checkout, &auth_key).await;
    let again = stack.redirect(&checkout, &auth_key).await;

    assert_eq!(first, SUCCESS_URL);
    assert_eq!(again, SUCCESS_URL);
    assert_eq!(stack.done_payments("user_e2e_first").await, 1);
    assert_eq!(
        stack.sandbox.sandbox().snapshot().counters.charge_requests,
        1
    );
    let sub = stack.subscription("user_e2e_first").await;
    assert_eq!((sub.status(), sub.credits()), (Status::Active, 30));

    let logs = stack.watch.logs();
    assert!(!logs.contains(SECRET), "the secret key is in the logs");
    assert!(!logs.contains(&auth_key), "the authKey is in the logs");
    let billing_key = sub.billing_key().unwrap().expose_secret().to_owned();
    assert!(
        !logs.contains(&billing_key),
        "the billing key is in the logs"
    );
}

#[tokio::test]
async fn e2e_bad_redirects_get_a_fail_redirect_or_a_json_error_and_store_nothing() {
    let stack = Stack::new().await;
    // A well-formed state nobody was given, and a real customer's authKey with it: refused
    // before Toss is called, at the cost of one read.
    let unknown = "ab".repeat(32);
    let auth_key = stack
        .sandbox
        .sandbox()
        .mint_auth_key("cus_0123456789abcdef0123456789abcdef", TestCard::Ok)
        .unwrap();
    let forged = format!(
        "/billing/success?state={unknown}&customerKey=cus_0123456789abcdef0123456789abcdef&authKey={auth_key}"
    );
    for (path, code) in [
        ("/billing/success", "INVALID_STATE"),
        ("/billing/success?customerKey=user_1", "INVALID_STATE"),
        (
            "/billing/success?customerKey=user_1&authKey=k",
            "INVALID_STATE",
        ),
        (forged.as_str(), "INVALID_STATE"),
        (
            &format!("/billing/success?state={unknown}&customerKey=%ED%95%9C&authKey=k"),
            "INVALID_REQUEST",
        ),
        (
            &format!(
                "/billing/success?state={unknown}&customerKey=user_1&customerKey=user_2&authKey=k"
            ),
            "INVALID_REQUEST",
        ),
    ] {
        let response = stack.watch.http_get("billing-api", path).await.unwrap();
        assert_eq!(response.status, 302, "{path}");
        assert_eq!(
            response.location(),
            Some(format!("{FAIL_URL}?code={code}").as_str()),
            "{path}"
        );
    }
    let fail = stack
        .watch
        .http_get(
            "billing-api",
            "/billing/fail?code=PAY_PROCESS_CANCELED&message=x",
        )
        .await
        .unwrap();
    assert_eq!(
        fail.location(),
        Some(format!("{FAIL_URL}?code=PAY_PROCESS_CANCELED").as_str())
    );
    let unknown = stack
        .watch
        .http_get("billing-api", "/billing/other")
        .await
        .unwrap();
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json().unwrap()["error"]["code"], "NOT_FOUND");
    assert_eq!(
        stack
            .sandbox
            .sandbox()
            .snapshot()
            .counters
            .billing_keys_issued,
        0,
        "Toss was never called"
    );
    let items = testkit::dynamo::client_for(&stack.endpoint)
        .scan()
        .table_name(&stack.table)
        .send()
        .await
        .unwrap();
    assert_eq!(items.count(), 0, "nothing was written");
}

#[tokio::test]
async fn e2e_a_sweep_a_month_later_charges_exactly_once_and_a_second_sweep_at_the_same_time_charges_nothing()
 {
    let stack = Stack::new().await;
    let sub = stack.subscribe("user_e2e_month", TestCard::Ok).await;

    let first = stack.sweep(renewal_time(&sub)).await.unwrap();
    let second = stack.sweep(renewal_time(&sub)).await.unwrap();

    assert_eq!(
        (
            first["due"].as_u64(),
            first["charged"].as_u64(),
            first["total_charged_krw"].as_u64()
        ),
        (Some(1), Some(1), Some(3900))
    );
    assert_eq!(second["charged"], 0);
    assert_eq!(stack.done_payments("user_e2e_month").await, 2);
    // A monthly allowance: the new month's credits replace the unused ones.
    assert_eq!(stack.subscription("user_e2e_month").await.credits(), 30);
}

#[tokio::test]
async fn e2e_a_declined_renewal_walks_through_the_retries_to_cancellation() {
    let stack = Stack::new().await;
    let sub = stack
        .subscribe("user_e2e_dunning", TestCard::DeclineRenewals)
        .await;
    let first_fail = renewal_time(&sub);

    let mut statuses = Vec::new();
    for day in [0, 1, 3, 5] {
        let summary = stack.sweep(first_fail + Duration::days(day)).await.unwrap();
        assert_eq!(summary["declined"], 1, "day {day}: {summary}");
        statuses.push(stack.subscription("user_e2e_dunning").await.status());
    }

    assert_eq!(
        statuses,
        [
            Status::PastDue,
            Status::PastDue,
            Status::PastDue,
            Status::Canceled
        ]
    );
    let canceled = stack.subscription("user_e2e_dunning").await;
    assert!(canceled.billing_key().is_none());
    let snapshot = stack.sandbox.sandbox().snapshot();
    assert_eq!(snapshot.counters.billing_keys_deleted, 1);
    assert_eq!(
        stack.done_payments("user_e2e_dunning").await,
        1,
        "only the first month was ever paid"
    );
}

#[tokio::test]
async fn e2e_a_wrong_secret_key_fails_the_sweep_loudly_and_leaves_every_subscription_as_it_was() {
    let stack = Stack::new().await;
    let subs = [
        stack.subscribe("user_e2e_wk1", TestCard::Ok).await,
        stack
            .subscribe("user_e2e_wk2", TestCard::DeclineRenewals)
            .await,
    ];
    let wrong = watch(
        &stack.sandbox,
        &stack.issuer,
        &stack.endpoint,
        &stack.table,
        "test_sk_wrongKeyWrongKeyWrongKey00",
    )
    .await;

    let err = sweep_with(&wrong, renewal_time(&subs[0]))
        .await
        .unwrap_err();

    assert_eq!(err.error_type, "TossRefusedOurRequest", "{err}");
    assert!(err.error_message.contains("UNAUTHORIZED_KEY"), "{err}");
    assert!(
        !err.error_message.contains("wrongKey"),
        "the key is never echoed: {err}"
    );
    for sub in &subs {
        assert_eq!(
            &stack.store.subscription(sub.id()).await.unwrap().unwrap(),
            sub
        );
    }
    assert!(!wrong.logs().contains("test_sk_wrongKey"), "nor logged");
    let fixed = stack.sweep(renewal_time(&subs[0])).await.unwrap();
    assert_eq!(
        (fixed["charged"].as_u64(), fixed["declined"].as_u64()),
        (Some(1), Some(1))
    );
}

#[tokio::test]
async fn e2e_the_sample_scheduled_event_runs_a_sweep_as_delivered() {
    let stack = Stack::new().await;
    let event = testkit::event("charge-subscriptions.scheduled.json").unwrap();

    let summary = stack
        .watch
        .invoke("charge-subscriptions", &event)
        .await
        .unwrap();

    assert_eq!(summary["as_of"], "2026-12-01T00:00:00+00:00");
    assert_eq!(summary["due"], 0);
}

/// `cargo lambda invoke <fn> --data-file events/<file>` against the running emulator, as a
/// developer would type it; returns the function's JSON answer.
async fn cargo_lambda_invoke(watch: &Watch, function: &str, file: &str) -> Value {
    let output = tokio::process::Command::new(testkit::lambda::cargo_lambda().unwrap())
        .current_dir(testkit::workspace_root())
        .args([
            "lambda",
            "invoke",
            function,
            "--data-file",
            &format!("events/{file}"),
        ])
        .args([
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &watch.port().to_string(),
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test]
async fn e2e_every_sample_event_works_with_cargo_lambda_invoke_data_file() {
    let stack = Stack::new().await;

    let sweep = cargo_lambda_invoke(
        &stack.watch,
        "charge-subscriptions",
        "charge-subscriptions.scheduled.json",
    )
    .await;
    let fail = cargo_lambda_invoke(&stack.watch, "billing-api", "billing-api.fail.json").await;
    let success =
        cargo_lambda_invoke(&stack.watch, "billing-api", "billing-api.success.json").await;

    assert_eq!(sweep["as_of"], "2026-12-01T00:00:00+00:00");
    assert_eq!(fail["statusCode"], 302);
    assert_eq!(
        fail["headers"]["location"],
        format!("{FAIL_URL}?code=PAY_PROCESS_CANCELED")
    );
    // The sample's checkout state was never given out: the redirect is refused before Toss
    // is called. Nothing is charged.
    assert_eq!(success["statusCode"], 302);
    assert_eq!(
        success["headers"]["location"],
        format!("{FAIL_URL}?code=INVALID_STATE")
    );
    assert_eq!(
        stack
            .sandbox
            .sandbox()
            .snapshot()
            .counters
            .billing_keys_issued,
        0
    );
    assert_eq!(
        stack.sandbox.sandbox().snapshot().counters.charge_requests,
        0
    );
}

/// `cargo lambda invoke <fn> --data-ascii <json>` against the running emulator; the exit status
/// and everything it printed.
async fn cargo_lambda_invoke_ascii(
    watch: &Watch,
    function: &str,
    payload: &Value,
) -> (bool, String) {
    let output = tokio::process::Command::new(testkit::lambda::cargo_lambda().unwrap())
        .current_dir(testkit::workspace_root())
        .args([
            "lambda",
            "invoke",
            function,
            "--data-ascii",
            &payload.to_string(),
        ])
        .args([
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &watch.port().to_string(),
        ])
        .output()
        .await
        .unwrap();
    let printed = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}

#[tokio::test]
async fn e2e_the_sweep_refuses_every_event_that_is_not_its_schedule_and_charges_nothing() {
    let stack = Stack::new().await;
    let sub = stack.subscribe("user_e2e_edge", TestCard::Ok).await;
    let mut due = testkit::event("charge-subscriptions.scheduled.json").unwrap();
    due["time"] = json!(renewal_time(&sub).to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let with = |field: &str, value: Value| {
        let mut event = due.clone();
        event[field] = value;
        event
    };
    let refused = [
        ("another source", with("source", json!("my.app"))),
        (
            "another detail-type",
            with("detail-type", json!("Object Created")),
        ),
        (
            "another rule",
            with(
                "resources",
                json!(["arn:aws:events:ap-northeast-2:123456789012:rule/someone-elses-rule"]),
            ),
        ),
        ("no rule", with("resources", json!([]))),
        ("no time", with("time", Value::Null)),
        (
            "a continuation past the cap",
            with("detail", json!({"continuation": 17})),
        ),
        (
            "a continuation that is not a number",
            with("detail", json!({"continuation": "1"})),
        ),
        (
            "an unknown detail",
            with("detail", json!({"as_of": "2030-01-01T00:00:00Z"})),
        ),
        ("an empty object", json!({})),
    ];

    for (case, event) in &refused {
        let err = stack
            .watch
            .invoke("charge-subscriptions", event)
            .await
            .unwrap_err()
            .downcast::<FunctionError>()
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(err.error_type, "InvalidEvent", "{case}: {err}");
    }
    let (ok, printed) =
        cargo_lambda_invoke_ascii(&stack.watch, "charge-subscriptions", &refused[2].1).await;
    assert!(
        !ok && printed.contains("InvalidEvent"),
        "cargo lambda invoke: {printed}"
    );

    assert_eq!(
        stack.sandbox.sandbox().snapshot().counters.charge_requests,
        1,
        "only the first month: no refused event charged anything"
    );
    assert_eq!(
        stack.subscription("user_e2e_edge").await,
        sub,
        "and changed nothing"
    );
    // The schedule's own event, and a continuation of it within the cap, do run.
    let continued = stack
        .watch
        .invoke(
            "charge-subscriptions",
            &with("detail", json!({"continuation": 2})),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            continued["charged"].as_u64(),
            continued["continuation"].as_u64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(stack.done_payments("user_e2e_edge").await, 2);
}

#[tokio::test]
async fn e2e_malformed_gateway_events_get_a_400_and_the_instance_keeps_serving() {
    // Raw API Gateway v2 events that lambda_http 1.3 cannot turn into a request without
    // panicking (with the release profile's panic = "abort", the instance would die).
    let stack = Stack::new().await;
    let sample = testkit::event("billing-api.success.json").unwrap();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut event = sample.clone();
        change(&mut event);
        event
    };
    let malformed = [
        (
            "a raw space in the query",
            with(&|e| e["rawQueryString"] = json!("customerKey=user 1&authKey=k")),
        ),
        (
            "a raw quote in the query",
            with(&|e| e["rawQueryString"] = json!("customerKey=\"x\"&authKey=k")),
        ),
        (
            "a host with a space",
            with(&|e| e["headers"]["host"] = json!("a b.example")),
        ),
        (
            "a forwarded proto that is no scheme",
            with(&|e| e["headers"]["x-forwarded-proto"] = json!("1 https")),
        ),
        (
            "a path that reads as a port",
            with(&|e| e["rawPath"] = json!(":99999")),
        ),
        (
            "a body flagged base64 that is not",
            with(&|e| {
                e["isBase64Encoded"] = json!(true);
                e["body"] = json!("not base64!");
            }),
        ),
    ];

    for (case, event) in &malformed {
        let answer = stack
            .watch
            .invoke("billing-api", event)
            .await
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(answer["statusCode"], 400, "{case}: {answer}");
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "INVALID_REQUEST", "{case}");
    }
    let (ok, printed) =
        cargo_lambda_invoke_ascii(&stack.watch, "billing-api", &malformed[0].1).await;
    assert!(
        ok && printed.contains("400"),
        "cargo lambda invoke: {printed}"
    );

    let fail = cargo_lambda_invoke(&stack.watch, "billing-api", "billing-api.fail.json").await;
    assert_eq!(fail["statusCode"], 302, "the same instance still serves");
    assert_eq!(
        stack
            .sandbox
            .sandbox()
            .snapshot()
            .counters
            .billing_keys_issued,
        0,
        "Toss was never called"
    );
}

/// POSTs to the real function with an optional bearer token; (status, WWW-Authenticate, body).
async fn post_v1(watch: &Watch, path: &str, bearer: Option<&str>) -> (u16, Option<String>, Value) {
    let url = format!("{}/lambda-url/billing-api{path}", watch.base_url());
    let mut request = reqwest::Client::new().post(url);
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, challenge, body)
}

#[tokio::test]
async fn e2e_every_hostile_or_missing_token_is_a_401_through_the_real_function_and_nothing_is_written()
 {
    use auth_issuer::{Forgery, TokenRequest};
    let stack = Stack::new().await;
    let issuer = stack.issuer.issuer();
    let mint = |request: TokenRequest| issuer.mint(&request).unwrap();
    let honest = || TokenRequest::for_user("user_e2e_victim");
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("a malformed token", Some("not.a.jwt".into())),
        (
            "signed by another key",
            Some(mint(honest().forgery(Forgery::StrangerKey))),
        ),
        ("alg none", Some(mint(honest().forgery(Forgery::AlgNone)))),
        (
            "HS256 keyed with the public key",
            Some(mint(honest().forgery(Forgery::Hs256WithPublicKey))),
        ),
        (
            "wrong iss",
            Some(mint(honest().iss("https://evil.example"))),
        ),
        ("expired", Some(mint(honest().expires_in(-60)))),
        ("not yet valid", Some(mint(honest().not_before(60)))),
        (
            "wrong azp",
            Some(mint(honest().azp("https://evil.example"))),
        ),
        (
            "unknown kid",
            Some(mint(honest().forgery(Forgery::UnknownKid))),
        ),
    ];

    let mut refused = Vec::new();
    for (name, token) in &cases {
        let (status, challenge, body) =
            post_v1(&stack.watch, "/v1/checkout", token.as_deref()).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(challenge.as_deref(), Some("Bearer"), "{name}");
        assert_eq!(body["error"]["code"], "UNAUTHENTICATED", "{name}");
        refused.push(*name);
    }
    assert_eq!(refused.len(), 10);
    let items = testkit::dynamo::client_for(&stack.endpoint)
        .scan()
        .table_name(&stack.table)
        .send()
        .await
        .unwrap();
    assert_eq!(items.count(), 0, "nothing was written to the table");

    // The control: the same user's honest token is served.
    let (status, _, body) = post_v1(&stack.watch, "/v1/checkout", Some(&mint(honest()))).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["successUrl"].as_str().unwrap().starts_with(API_BASE));

    let logs = stack.watch.logs();
    for (name, token) in &cases {
        if let Some(token) = token.as_deref().filter(|t| t.len() > 20) {
            assert!(!logs.contains(token), "{name}: the token is in the logs");
        }
    }
}

/// A `/v1` call to the real function with a bearer token, extra headers and a body; (status, JSON).
async fn call_v1(
    watch: &Watch,
    method: reqwest::Method,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, Value) {
    let url = format!("{}/lambda-url/billing-api{path}", watch.base_url());
    let mut request = reqwest::Client::new()
        .request(method, url)
        .header("authorization", format!("Bearer {token}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn e2e_the_app_reads_its_subscription_spends_a_credit_once_and_cancels_through_the_real_function()
 {
    use reqwest::Method;
    let stack = Stack::new().await;
    let sub = stack.subscribe("user_e2e_app", TestCard::Ok).await;
    let token = stack
        .issuer
        .issuer()
        .mint(&auth_issuer::TokenRequest::for_user("user_e2e_app"))
        .unwrap();
    let key = [("idempotency-key", "reading-2026-12-02-1")];

    let (status, view) = call_v1(
        &stack.watch,
        Method::GET,
        "/v1/subscription",
        &token,
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (view["status"].as_str(), view["credits"].as_u64()),
        (Some("active"), Some(30))
    );
    let consume = || {
        call_v1(
            &stack.watch,
            Method::POST,
            "/v1/credits/consume",
            &token,
            &key,
            Some(r#"{"amount":1}"#),
        )
    };
    let (first, second) = (consume().await, consume().await);
    assert_eq!(first, (200, json!({"consumed": 1, "credits": 29})));
    assert_eq!(second, first, "a replay spends nothing");
    let (status, canceled) = call_v1(
        &stack.watch,
        Method::POST,
        "/v1/subscription/cancel",
        &token,
        &[],
        None,
    )
    .await;
    assert_eq!(
        (status, &canceled["cancelAtPeriodEnd"]),
        (200, &json!(true))
    );
    let (_, payments) = call_v1(&stack.watch, Method::GET, "/v1/payments", &token, &[], None).await;
    assert_eq!(payments["payments"][0]["status"], "DONE");

    // The sweep at the renewal time ends it instead of charging.
    let summary = stack.sweep(renewal_time(&sub)).await.unwrap();
    assert_eq!(summary["charged"], 0, "{summary}");
    let ended = stack.subscription("user_e2e_app").await;
    assert_eq!((ended.status(), ended.credits()), (Status::Canceled, 0));
    assert!(ended.billing_key().is_none());
    let logs = stack.watch.logs();
    assert!(!logs.contains(&token), "the bearer token is in the logs");
    assert!(
        !logs.contains("reading-2026-12-02-1"),
        "the idempotency key is in the logs"
    );
}

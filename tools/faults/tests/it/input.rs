//! Bad input on the public routes, through the real `billing-api` binary under
//! `cargo lambda watch`: never a 5xx, never a Toss call for input that cannot be valid, nothing
//! written, and the redirect target always one of the configured URLs. Then the sweep function
//! runs the same event twice at once, and every log line of both functions is scanned for secrets.

use chrono::Utc;
use reqwest::Method;
use serde_json::json;
use testkit::lambda::Watch;
use toss_sandbox::TestCard;

use crate::world::{SECRET, World, assert_no_secret, next_month};

const SUCCESS_URL: &str = "https://app.example/billing/done";
const FAIL_URL: &str = "https://app.example/billing/failed";

async fn watch(w: &World, issuer: &auth_issuer::RunningIssuer) -> Watch {
    Watch::builder()
        .envs(testkit::dynamo::sdk_env(&w.endpoint))
        .env("AUTH_ISSUER", issuer.issuer_url())
        .env("TOSS_SECRET_KEY", SECRET)
        .env("TOSS_API_BASE", w.sandbox.base_url())
        .env("TABLE_NAME", &w.table)
        .env("APP_SUCCESS_URL", SUCCESS_URL)
        .env("APP_FAIL_URL", FAIL_URL)
        .env("PLAN_AMOUNT", "3900")
        .env("PLAN_CREDITS", "30")
        .env("CHARGE_CONCURRENCY", "8")
        .env("TOSS_CHARGE_TIMEOUT_SECONDS", "10")
        .env("AWS_LAMBDA_LOG_LEVEL", "debug")
        .prebuild("billing-api")
        .prebuild("charge-subscriptions")
        .start()
        .await
        .unwrap()
}

struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

async fn request(watch: &Watch, method: Method, path: &str, body: Option<Vec<u8>>) -> Answer {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("{}/lambda-url/billing-api{path}", watch.base_url());
    let mut req = http.request(method, &url);
    if let Some(body) = body {
        req = req.body(body);
    }
    let response = req.send().await.unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.text().await.unwrap();
    Answer {
        status,
        location,
        body,
    }
}

/// What a case must get back.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// 302 to the fail URL with this code.
    Fail(&'static str),
    /// A JSON error with this status.
    Json(u16),
    /// Some 4xx from the runtime emulator or us (never our 5xx); nothing reaches the handler.
    AnyClientError,
}

fn cases() -> Vec<(&'static str, Method, String, Expect)> {
    use Expect::*;
    let ok_key = "user_input_1";
    let auth = "bln_a1b2c3d4e5f6g7h8i9j0";
    // A state in the right shape that nobody was given: every case below is refused by the
    // parser after the state's shape is checked, and never reaches the table.
    let state = "5e".repeat(32);
    let s = |q: &str| format!("/billing/success?state={state}&{q}");
    let long = |n: usize| "a".repeat(n);
    let mut many = String::from("customerKey=user_1&authKey=k");
    for i in 0..16 {
        many.push_str(&format!("&x{i}=1"));
    }
    vec![
        ("no query at all", Method::GET, "/billing/success".into(), Fail("INVALID_STATE")),
        ("no state", Method::GET, format!("/billing/success?customerKey={ok_key}&authKey={auth}"), Fail("INVALID_STATE")),
        ("an empty state", Method::GET, format!("/billing/success?state=&customerKey={ok_key}&authKey={auth}"), Fail("INVALID_STATE")),
        ("a state in upper case", Method::GET, format!("/billing/success?state={}&customerKey={ok_key}&authKey={auth}", "5E".repeat(32)), Fail("INVALID_STATE")),
        ("a state one digit short", Method::GET, format!("/billing/success?state={}&customerKey={ok_key}&authKey={auth}", &"5e".repeat(32)[1..]), Fail("INVALID_STATE")),
        ("a state with an injected parameter", Method::GET, format!("/billing/success?state={}%26x%3D1&customerKey={ok_key}&authKey={auth}", "5e".repeat(32)), Fail("INVALID_STATE")),
        ("the state twice", Method::GET, s(&format!("state={}&customerKey={ok_key}&authKey={auth}", "5e".repeat(32))), Fail("INVALID_REQUEST")),
        ("no query", Method::GET, s(""), Fail("INVALID_REQUEST")),
        ("only customerKey", Method::GET, s(&format!("customerKey={ok_key}")), Fail("INVALID_REQUEST")),
        ("only authKey", Method::GET, s(&format!("authKey={auth}")), Fail("INVALID_REQUEST")),
        ("empty customerKey", Method::GET, s(&format!("customerKey=&authKey={auth}")), Fail("INVALID_REQUEST")),
        ("empty authKey", Method::GET, s(&format!("customerKey={ok_key}&authKey=")), Fail("INVALID_REQUEST")),
        ("duplicated customerKey", Method::GET, s(&format!("customerKey={ok_key}&customerKey=user_2&authKey={auth}")), Fail("INVALID_REQUEST")),
        ("duplicated authKey", Method::GET, s(&format!("customerKey={ok_key}&authKey={auth}&authKey=bln_other")), Fail("INVALID_REQUEST")),
        ("customerKey over 50 characters", Method::GET, s(&format!("customerKey={}&authKey={auth}", long(51))), Fail("INVALID_REQUEST")),
        ("customerKey of one character", Method::GET, s(&format!("customerKey=a&authKey={auth}")), Fail("INVALID_REQUEST")),
        ("customerKey in Hangul", Method::GET, s(&format!("customerKey=%ED%95%9C%EA%B8%80&authKey={auth}")), Fail("INVALID_REQUEST")),
        ("customerKey with a space", Method::GET, s(&format!("customerKey=user%201&authKey={auth}")), Fail("INVALID_REQUEST")),
        ("customerKey with + (a space once decoded)", Method::GET, s(&format!("customerKey=user+1&authKey={auth}")), Fail("INVALID_REQUEST")),
        ("customerKey with NUL", Method::GET, s(&format!("customerKey=user%001&authKey={auth}")), Fail("INVALID_REQUEST")),
        ("customerKey with CR LF", Method::GET, s(&format!("customerKey=user%0D%0ALocation:%20x&authKey={auth}")), Fail("INVALID_REQUEST")),
        ("customerKey with a slash", Method::GET, s(&format!("customerKey=..%2F..%2Fetc&authKey={auth}")), Fail("INVALID_REQUEST")),
        ("customerKey double-encoded", Method::GET, s(&format!("customerKey=user%252F1&authKey={auth}")), Fail("INVALID_REQUEST")),
        ("customerKey as HTML", Method::GET, s(&format!("customerKey=%3Cscript%3E&authKey={auth}")), Fail("INVALID_REQUEST")),
        ("customerKey invalid UTF-8", Method::GET, s(&format!("customerKey=%FF%FEuser&authKey={auth}")), Fail("INVALID_REQUEST")),
        ("customerKey broken escape", Method::GET, s(&format!("customerKey=%ZZuser&authKey={auth}")), Fail("INVALID_REQUEST")),
        ("authKey over 300 characters", Method::GET, s(&format!("customerKey={ok_key}&authKey={}", long(301))), Fail("INVALID_REQUEST")),
        ("authKey with a tab", Method::GET, s(&format!("customerKey={ok_key}&authKey=bln%09x")), Fail("INVALID_REQUEST")),
        ("authKey non-ASCII", Method::GET, s(&format!("customerKey={ok_key}&authKey=bln_%C3%A9t%C3%A9")), Fail("INVALID_REQUEST")),
        ("authKey with JSON quotes", Method::GET, s(&format!("customerKey={ok_key}&authKey=bln%22%2C%22x%22%3A%22")), Fail("INVALID_REQUEST")),
        ("customerEmail over 100 characters", Method::GET, s(&format!("customerKey={ok_key}&authKey={auth}&customerEmail={}%40x.com", long(100))), Fail("INVALID_REQUEST")),
        ("customerEmail non-ASCII", Method::GET, s(&format!("customerKey={ok_key}&authKey={auth}&customerEmail=%ED%95%9C%40x.com")), Fail("INVALID_REQUEST")),
        ("customerName with control characters", Method::GET, s(&format!("customerKey={ok_key}&authKey={auth}&customerName=a%07b")), Fail("INVALID_REQUEST")),
        ("customerName over-long", Method::GET, s(&format!("customerKey={ok_key}&authKey={auth}&customerName={}", long(500))), Fail("INVALID_REQUEST")),
        ("too many parameters", Method::GET, s(&many), Fail("INVALID_REQUEST")),
        ("a query over 4 KiB", Method::GET, s(&format!("customerKey={ok_key}&authKey={auth}&pad={}", long(5000))), Fail("INVALID_REQUEST")),
        ("names in the wrong case", Method::GET, s(&format!("CustomerKey={ok_key}&AuthKey={auth}")), Fail("INVALID_REQUEST")),
        ("semicolons instead of ampersands", Method::GET, s(&format!("customerKey={ok_key};authKey={auth}")), Fail("INVALID_REQUEST")),
        ("fail without a code", Method::GET, "/billing/fail".into(), Fail("UNKNOWN_ERROR")),
        ("fail code with CR LF", Method::GET, "/billing/fail?code=A%0D%0ASet-Cookie:x".into(), Fail("UNKNOWN_ERROR")),
        ("fail code that is a URL", Method::GET, "/billing/fail?code=https%3A%2F%2Fevil.example".into(), Fail("UNKNOWN_ERROR")),
        ("fail code over 64 characters", Method::GET, format!("/billing/fail?code={}", "A".repeat(65)), Fail("UNKNOWN_ERROR")),
        ("fail code repeated", Method::GET, "/billing/fail?code=A&code=B".into(), Fail("INVALID_REQUEST")),
        ("fail with a redirect target of its own", Method::GET, "/billing/fail?code=PAY_PROCESS_CANCELED&failUrl=https%3A%2F%2Fevil.example&redirect=https://evil.example".into(), Fail("PAY_PROCESS_CANCELED")),
        ("POST on success", Method::POST, s(&format!("customerKey={ok_key}&authKey={auth}")), Json(405)),
        ("PUT on fail", Method::PUT, "/billing/fail?code=X".into(), Json(405)),
        ("DELETE on success", Method::DELETE, "/billing/success".into(), Json(405)),
        ("unknown path", Method::GET, "/billing/other".into(), Json(404)),
        ("success with a trailing segment", Method::GET, "/billing/success/extra?customerKey=a".into(), Json(404)),
        ("upper-case path", Method::GET, "/BILLING/SUCCESS".into(), Json(404)),
        ("encoded slash in the path", Method::GET, "/billing%2Fsuccess".into(), AnyClientError),
        ("dot segments", Method::GET, "/billing/x/../../etc/passwd".into(), AnyClientError),
        ("a very long path", Method::GET, format!("/billing/{}", long(6000)), AnyClientError),
    ]
}

#[tokio::test]
async fn e2e_bad_input_on_the_public_routes_never_gets_a_5xx_never_reaches_toss_writes_nothing_and_redirects_only_to_configured_urls()
 {
    let w = World::new().await;
    let issuer = auth_issuer::spawn(auth_issuer::IssuerConfig::default())
        .await
        .unwrap();
    let watch = watch(&w, &issuer).await;
    let cases = cases();
    assert!(cases.len() >= 40);
    let mut texts = Vec::new();

    for (name, method, path, expect) in &cases {
        let a = request(&watch, method.clone(), path, None).await;
        assert!(a.status < 500, "{name}: {} {}", a.status, a.body);
        if let Some(location) = &a.location {
            assert!(
                location == SUCCESS_URL
                    || location
                        .strip_prefix(FAIL_URL)
                        .and_then(|rest| rest.strip_prefix("?code="))
                        .is_some_and(|code| code
                            .bytes()
                            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')),
                "{name}: redirect to {location}"
            );
        }
        match expect {
            Expect::Fail(code) => {
                assert_eq!(a.status, 302, "{name}: {}", a.body);
                assert_eq!(
                    a.location.as_deref(),
                    Some(format!("{FAIL_URL}?code={code}").as_str()),
                    "{name}"
                );
            }
            Expect::Json(status) => {
                assert_eq!(a.status, *status, "{name}");
                let body: serde_json::Value = serde_json::from_str(&a.body).unwrap();
                assert!(body["error"]["code"].is_string(), "{name}: {body}");
            }
            Expect::AnyClientError => {
                assert!((400..500).contains(&a.status), "{name}: {}", a.status)
            }
        }
        texts.push(format!("{} {:?} {}", a.status, a.location, a.body));
    }
    // A very large request body on a GET-only route.
    let big = request(
        &watch,
        Method::POST,
        "/billing/success",
        Some(vec![b'x'; 2 * 1024 * 1024]),
    )
    .await;
    assert!(
        big.status < 500 && big.status >= 400,
        "large body: {}",
        big.status
    );

    let counters = w.snapshot().counters;
    assert_eq!(
        (counters.billing_keys_issued, counters.charge_requests),
        (0, 0),
        "Toss was never called"
    );
    let items = testkit::dynamo::client_for(&w.endpoint)
        .scan()
        .table_name(&w.table)
        .send()
        .await
        .unwrap();
    assert_eq!(items.count(), 0, "nothing was written");

    // A well-formed state nobody was given, with a real authKey: refused before Toss.
    let auth_a = w
        .sandbox
        .sandbox()
        .mint_auth_key("user_input_a", TestCard::Ok)
        .unwrap();
    let unknown = request(
        &watch,
        Method::GET,
        &format!(
            "/billing/success?state={}&customerKey=user_input_a&authKey={auth_a}",
            "7a".repeat(32)
        ),
        None,
    )
    .await;
    assert_eq!(
        unknown.location.as_deref(),
        Some(format!("{FAIL_URL}?code=INVALID_STATE").as_str())
    );
    assert_eq!(w.snapshot().counters.billing_keys_issued, 0);

    // Valid shapes that only Toss can judge: an authKey reused for another customer, one for
    // nobody, each with its own checkout. A Toss call is fine here, a charge or a
    // subscription is not.
    let success = |state: &domain::CheckoutState, customer: &str, auth_key: &str| {
        format!(
            "/billing/success?state={}&customerKey={customer}&authKey={auth_key}",
            state.expose_secret()
        )
    };
    let key = |name: &str| domain::CustomerKey::parse(name).unwrap();
    let state_a = crate::world::open_checkout(&w.store, &key("user_input_a")).await;
    let first = request(
        &watch,
        Method::GET,
        &success(&state_a, "user_input_a", &auth_a),
        None,
    )
    .await;
    assert_eq!(first.location.as_deref(), Some(SUCCESS_URL));
    w.customers
        .lock()
        .unwrap()
        .push(("user_input_a".into(), auth_a.clone()));
    let auth_b = w
        .sandbox
        .sandbox()
        .mint_auth_key("user_input_b", TestCard::Ok)
        .unwrap();
    let state_b = crate::world::open_checkout(&w.store, &key("user_input_b")).await;
    let reused = request(
        &watch,
        Method::GET,
        &success(&state_b, "user_input_b", &auth_a),
        None,
    )
    .await;
    let state_a2 = crate::world::open_checkout(&w.store, &key("user_input_a")).await;
    let foreign = request(
        &watch,
        Method::GET,
        &success(&state_a2, "user_input_a", &auth_b),
        None,
    )
    .await;
    let state_c = crate::world::open_checkout(&w.store, &key("user_input_c")).await;
    let nobody = request(
        &watch,
        Method::GET,
        &success(&state_c, "user_input_c", "bln_unknownAuthKey0000"),
        None,
    )
    .await;
    for (name, a) in [
        ("reused", &reused),
        ("another customer's", &foreign),
        ("unknown", &nobody),
    ] {
        assert_eq!(a.status, 302, "{name}");
        let location = a.location.clone().unwrap();
        assert!(
            location.starts_with(&format!("{FAIL_URL}?code=")),
            "{name}: {location}"
        );
        texts.push(format!("{location} {}", a.body));
    }
    let snapshot = w.snapshot();
    assert_eq!(
        snapshot.counters.charge_requests, 1,
        "only user_input_a's first month"
    );
    assert!(
        w.store
            .customer_subscription(&domain::CustomerKey::parse("user_input_b").unwrap())
            .await
            .unwrap()
            .is_none(),
        "no subscription for a customer with someone else's authKey"
    );
    let a_sub = w.subscription("user_input_a").await;
    assert_eq!(a_sub.credits(), 30, "user_input_a unharmed");

    // The sweep function: the same scheduled event delivered twice at once.
    let mut event = testkit::event("charge-subscriptions.scheduled.json").unwrap();
    event["time"] =
        json!(next_month(Utc::now()).to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let (one, two) = tokio::join!(
        watch.invoke("charge-subscriptions", &event),
        watch.invoke("charge-subscriptions", &event)
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!(
        one["charged"].as_u64().unwrap() + two["charged"].as_u64().unwrap(),
        1
    );
    w.check(true).await;
    texts.push(one.to_string());
    texts.push(two.to_string());

    let logs = watch.logs();
    assert!(
        logs.contains("DEBUG") || logs.contains("\"level\":\"DEBUG\""),
        "function logs at debug were captured"
    );
    let mut secrets = w.secrets().await;
    secrets.push(auth_b);
    secrets.push(auth_a);
    assert_no_secret(&logs, &secrets);
    for t in &texts {
        assert_no_secret(t, &secrets);
    }
}

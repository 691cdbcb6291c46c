//! `bench app-api`: the app's routes through billing-api's own router in this process, against
//! DynamoDB Local, each request carrying a session token from the local issuer that the router
//! verifies against its JWKS (the same `billing_api::app` + `billing_api::handle` the Lambda
//! runs). Reports requests per second, p50/p99 and DynamoDB requests per call (counted by an SDK
//! interceptor), and figures relative to one another within the run: never a pass/fail on time.
//! It fails only if an answer is not the expected one or a balance is off by any credit.
//!
//! Rows, for each concurrency:
//! - `401 (verification only)`: a token signed by a key the JWKS does not hold under a published
//!   kid: the signature check runs and fails, nothing is read. The baseline for the others.
//! - `GET /v1/subscription`: the caller's status and credits.
//! - `POST /v1/credits/consume`: one credit, a fresh `Idempotency-Key` per request.
//! - `… (replay)`: the same keys again: the first answers, nothing spent.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use auth_issuer::{Forgery, IssuerConfig, TokenRequest};
use axum::Router;
use lambda_http::Body;
use lambda_http::http::{Method, Request};
use serde_json::Value;
use toss_sandbox::{SandboxConfig, TestCard};

use crate::counting::{self, RequestCounter};

/// Credits per paid period: enough that no user runs out during a run.
const PLAN_CREDITS: u64 = 100_000;
const APP_DONE: &str = "https://app.example/billing/done";

#[derive(Debug, Clone)]
pub struct Options {
    /// Requests per row.
    pub requests: usize,
    pub concurrencies: Vec<usize>,
    /// Subscribed users the requests are spread over (request i is user i mod users).
    pub users: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            requests: 1000,
            concurrencies: vec![1, 16],
            users: 32,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    VerifyOnly,
    Status,
    Consume,
    Replay,
}

impl Route {
    fn name(self) -> &'static str {
        match self {
            Route::VerifyOnly => "401 (verification only)",
            Route::Status => "GET /v1/subscription",
            Route::Consume => "POST /v1/credits/consume",
            Route::Replay => "POST /v1/credits/consume (replay)",
        }
    }

    fn expected_status(self) -> u16 {
        match self {
            Route::VerifyOnly => 401,
            _ => 200,
        }
    }
}

/// One measured row.
#[derive(Debug, Clone)]
struct Row {
    route: Route,
    concurrency: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// DynamoDB requests per call, per operation.
    dynamodb: BTreeMap<String, f64>,
}

struct Bench {
    app: Router,
    counter: RequestCounter,
    /// Honest tokens, one per user (index = user).
    tokens: Vec<String>,
    /// A forged token (stranger key under a published kid).
    forged: String,
    run: String,
}

/// Runs every row and returns the report (a Markdown table).
pub async fn run(options: Options) -> anyhow::Result<String> {
    ensure!(
        options.requests > 0 && options.users > 0 && !options.concurrencies.contains(&0),
        "requests, users and concurrencies must be above 0"
    );
    let endpoint = testkit::dynamo::endpoint().await?;
    let admin = counting::client(&endpoint, None);
    let table = testkit::dynamo::unique_table_name("appapi");
    testkit::dynamo::create_table_from_template(&admin, &table).await?;
    let sandbox = toss_sandbox::spawn(SandboxConfig::default()).await?;
    // Tokens live for the whole run, so minting stays out of the measured loop.
    let issuer = auth_issuer::spawn(IssuerConfig {
        lifetime: Duration::from_secs(3600),
        ..IssuerConfig::default()
    })
    .await?;

    let counter = RequestCounter::default();
    let dynamodb = counting::client(&endpoint, Some(counter.clone()));
    let (issuer_url, sandbox_url, table_name) = (
        issuer.issuer_url().to_owned(),
        sandbox.base_url(),
        table.clone(),
    );
    let vars = move |name: &str| match name {
        "TOSS_SECRET_KEY" => Some(toss_sandbox::DOCS_SECRET_KEY.to_owned()),
        "TOSS_API_BASE" => Some(sandbox_url.clone()),
        "TABLE_NAME" => Some(table_name.clone()),
        "APP_SUCCESS_URL" => Some(APP_DONE.to_owned()),
        "APP_FAIL_URL" => Some("https://app.example/billing/failed".to_owned()),
        "AUTH_ISSUER" => Some(issuer_url.clone()),
        "API_BASE_URL" => Some("https://api.app.example".to_owned()),
        "PLAN_CREDITS" => Some(PLAN_CREDITS.to_string()),
        _ => None,
    };
    let config = billing_api::Config::from_lookup(vars).context("billing-api's configuration")?;
    let state =
        billing_api::State::new(config, dynamodb, None).map_err(|e| anyhow!("billing-api: {e}"))?;
    state.warm_up().await;
    let mut bench = Bench {
        app: billing_api::app(state),
        counter,
        tokens: Vec::new(),
        forged: issuer.issuer().mint(&TokenRequest {
            forgery: Some(Forgery::StrangerKey),
            ..TokenRequest::for_user("user_bench_0")
        })?,
        run: ulid::Ulid::new().to_string(),
    };
    eprintln!(
        "app-api: subscribing {} users through checkout and the success redirect",
        options.users
    );
    for user in 0..options.users {
        let token = issuer
            .issuer()
            .mint(&TokenRequest::for_user(format!("user_bench_{user}")))?;
        subscribe(&bench.app, &token, sandbox.sandbox()).await?;
        bench.tokens.push(token);
    }

    let mut rows = Vec::new();
    let mut consumed = vec![0u64; options.users];
    for &concurrency in &options.concurrencies {
        for route in [
            Route::VerifyOnly,
            Route::Status,
            Route::Consume,
            Route::Replay,
        ] {
            eprintln!(
                "app-api: {} × {} at concurrency {concurrency}",
                route.name(),
                options.requests
            );
            rows.push(bench.measure(route, concurrency, &options).await?);
            if route == Route::Consume {
                for i in 0..options.requests {
                    consumed[i % options.users] += 1;
                }
            }
        }
    }
    // Every consume spent exactly one credit, and no replay spent another.
    for (user, token) in bench.tokens.iter().enumerate() {
        let (status, body) = call(&bench.app, Method::GET, "/v1/subscription", token, None).await?;
        let credits = body["credits"].as_u64();
        ensure!(
            status == 200 && credits == Some(PLAN_CREDITS - consumed[user]),
            "PROBLEM user {user}: {} credits expected, the API says {credits:?} (HTTP {status})",
            PLAN_CREDITS - consumed[user]
        );
    }
    eprintln!("app-api: every balance is its allowance less one credit per consume");
    sandbox.shutdown().await?;
    Ok(report(&rows, &options))
}

impl Bench {
    async fn measure(
        &self,
        route: Route,
        concurrency: usize,
        options: &Options,
    ) -> anyhow::Result<Row> {
        let before = self.counter.counts();
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut workers = Vec::new();
        for _ in 0..concurrency {
            let (app, next) = (self.app.clone(), next.clone());
            let tokens = self.tokens.clone();
            let forged = self.forged.clone();
            let keys = format!("bench-{}-{concurrency}", self.run);
            let (requests, users) = (options.requests, options.users);
            workers.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        break;
                    }
                    let token = match route {
                        Route::VerifyOnly => &forged,
                        _ => &tokens[i % users],
                    };
                    let (method, path, key) = match route {
                        Route::VerifyOnly | Route::Status => {
                            (Method::GET, "/v1/subscription", None)
                        }
                        Route::Consume | Route::Replay => (
                            Method::POST,
                            "/v1/credits/consume",
                            Some(format!("{keys}-{i}")),
                        ),
                    };
                    let t = Instant::now();
                    let (status, body) = call(&app, method, path, token, key.as_deref()).await?;
                    latencies.push(t.elapsed());
                    if status != route.expected_status()
                        || (route == Route::Replay && body["consumed"] != 1)
                    {
                        bail!("PROBLEM {} request {i}: HTTP {status} {body}", route.name());
                    }
                }
                Ok::<_, anyhow::Error>(latencies)
            }));
        }
        let mut latencies = Vec::with_capacity(options.requests);
        for worker in workers {
            latencies.extend(worker.await.context("a worker panicked")??);
        }
        let elapsed = started.elapsed();
        let after = self.counter.counts();
        latencies.sort();
        let n = latencies.len();
        let dynamodb = after
            .iter()
            .filter_map(|(op, count)| {
                let delta = count - before.get(op).copied().unwrap_or(0);
                (delta > 0).then(|| (op.clone(), delta as f64 / n as f64))
            })
            .collect();
        Ok(Row {
            route,
            concurrency,
            per_second: n as f64 / elapsed.as_secs_f64(),
            p50_ms: ms(percentile(&latencies, 0.50)),
            p99_ms: ms(percentile(&latencies, 0.99)),
            dynamodb,
        })
    }
}

/// Checkout through the router, the authKey Toss's window would give, and the success redirect.
async fn subscribe(
    app: &Router,
    token: &str,
    sandbox: &toss_sandbox::Sandbox,
) -> anyhow::Result<()> {
    let (status, checkout) = call(app, Method::POST, "/v1/checkout", token, None).await?;
    ensure!(status == 201, "POST /v1/checkout: HTTP {status} {checkout}");
    let customer = checkout["customerKey"].as_str().context("customerKey")?;
    let success = url::Url::parse(checkout["successUrl"].as_str().context("successUrl")?)?;
    let auth_key = sandbox
        .mint_auth_key(customer, TestCard::Ok)
        .map_err(|e| anyhow!("mint an authKey: {e:?}"))?;
    let path = format!(
        "{}?{}&customerKey={customer}&authKey={auth_key}",
        success.path(),
        success.query().unwrap_or_default()
    );
    let request = Request::builder().uri(path).body(Body::Empty)?;
    let response = billing_api::handle(app, request).await?;
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    ensure!(
        response.status() == 302 && location == APP_DONE,
        "the success redirect went to {location:?} (HTTP {})",
        response.status()
    );
    Ok(())
}

/// One request through the router as the Lambda would pass it: status and JSON body.
async fn call(
    app: &Router,
    method: Method,
    path: &str,
    token: &str,
    idempotency_key: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    let mut request = Request::builder()
        .method(method.clone())
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    let body = match idempotency_key {
        Some(key) => {
            request = request
                .header("idempotency-key", key)
                .header("content-type", "application/json");
            Body::Text(r#"{"amount":1}"#.to_owned())
        }
        None => Body::Empty,
    };
    let response = billing_api::handle(app, request.body(body)?).await?;
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .with_context(|| format!("read the answer to {method} {path}"))?;
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, json))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(rows: &[Row], options: &Options) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## App API through billing-api's router, in-process, DynamoDB Local ({} users, {} requests per row)\n",
        options.users, options.requests
    );
    let _ = writeln!(
        out,
        "| route | concurrency | req/s | p50 ms | p99 ms | p50 ÷ 401 p50 | req/s ÷ concurrency 1 | DynamoDB requests per call |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---|");
    for row in rows {
        let baseline = rows
            .iter()
            .find(|r| r.route == Route::VerifyOnly && r.concurrency == row.concurrency)
            .map_or(f64::NAN, |r| r.p50_ms);
        let serial = rows
            .iter()
            .find(|r| r.route == row.route && r.concurrency == 1)
            .map_or(f64::NAN, |r| r.per_second);
        let dynamodb = if row.dynamodb.is_empty() {
            "none".to_owned()
        } else {
            row.dynamodb
                .iter()
                .map(|(op, n)| format!("{op} {n:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {:.2} | {dynamodb} |",
            row.route.name(),
            row.concurrency,
            row.per_second,
            row.p50_ms,
            row.p99_ms,
            row.p50_ms / baseline,
            row.per_second / serial,
        );
    }
    out
}

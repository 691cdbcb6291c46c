//! `bench coldstart`: process start → first event handled, under a local Lambda Runtime API.
//!
//! A tiny emulator of the Runtime API (`/2018-06-01/runtime/invocation/next`, `…/response`,
//! `…/error`, `/init/error`) hands each freshly spawned process one event and times, from the
//! spawn, the first `next` poll (init done) and the response (first event handled). Every
//! process gets the same DynamoDB Local table and Toss sandbox; the median of `starts` runs is
//! reported per function.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::oneshot;
use toss_sandbox::{SandboxConfig, TestCard};

/// One function to time.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    /// The command: a bootstrap binary, or `node …/index.mjs`.
    pub command: Vec<String>,
    pub event: EventKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `events/charge-subscriptions.scheduled.json`.
    Scheduled,
    /// `events/billing-api.success.json` for a checkout just started for a fresh user (the use
    /// case `POST /v1/checkout` runs), with the authKey Toss's window would hand that customer.
    BillingSuccess,
}

#[derive(Default)]
struct Slot {
    event: Option<(String, Vec<u8>)>,
    polled: Option<oneshot::Sender<Instant>>,
    answered: Option<oneshot::Sender<(Instant, Result<String, String>)>>,
}

type Shared = Arc<Mutex<Slot>>;

async fn next(State(slot): State<Shared>) -> Response {
    let event = slot.lock().ok().and_then(|mut s| {
        let event = s.event.take()?;
        if let Some(tx) = s.polled.take() {
            let _ = tx.send(Instant::now());
        }
        Some(event)
    });
    let Some((id, body)) = event else {
        // One event per process: later polls wait until the process is stopped.
        std::future::pending::<()>().await;
        return StatusCode::GONE.into_response();
    };
    let deadline = chrono::Utc::now().timestamp_millis() + 900_000;
    let mut headers = HeaderMap::new();
    let pairs = [
        ("lambda-runtime-aws-request-id", id),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:ap-northeast-2:123456789012:function:coldstart".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-67891233-abcdef012345678912345678".to_owned(),
        ),
        ("content-type", "application/json".to_owned()),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    (StatusCode::OK, headers, body).into_response()
}

fn answer(slot: &Shared, result: Result<String, String>) -> StatusCode {
    if let Some(tx) = slot.lock().ok().and_then(|mut s| s.answered.take()) {
        let _ = tx.send((Instant::now(), result));
    }
    StatusCode::ACCEPTED
}

async fn response(State(slot): State<Shared>, Path(_id): Path<String>, body: Bytes) -> StatusCode {
    answer(&slot, Ok(String::from_utf8_lossy(&body).into_owned()))
}

async fn error(State(slot): State<Shared>, Path(_id): Path<String>, body: Bytes) -> StatusCode {
    answer(&slot, Err(String::from_utf8_lossy(&body).into_owned()))
}

async fn init_error(State(slot): State<Shared>, body: Bytes) -> StatusCode {
    answer(&slot, Err(String::from_utf8_lossy(&body).into_owned()))
}

/// Timings of one start, from the spawn.
#[derive(Debug, Clone, Copy)]
struct Start {
    init: Duration,
    first_event: Duration,
}

pub async fn run(targets: Vec<Target>, starts: usize) -> anyhow::Result<String> {
    let endpoint = testkit::dynamo::endpoint().await?;
    let admin = crate::counting::client(&endpoint, None);
    let table = testkit::dynamo::unique_table_name("coldstart");
    testkit::dynamo::create_table_from_template(&admin, &table).await?;
    let sandbox = toss_sandbox::spawn(SandboxConfig::default()).await?;
    // Starts each billing-api event's checkout on the same table, as POST /v1/checkout would.
    let checkouts = billing::Billing::new(
        toss::Client::new(toss::Config::new(
            secrecy::SecretString::from(toss_sandbox::DOCS_SECRET_KEY.to_owned()),
            sandbox.base_url().parse().context("the sandbox's URL")?,
        ))?,
        store::Store::new(admin.clone(), table.clone()),
        crate::sweeper::settings()?,
    );
    // billing-api fetches this issuer's JWKS during init, as it would Clerk's.
    let issuer = auth_issuer::spawn(auth_issuer::IssuerConfig::default()).await?;

    let slot: Shared = Arc::default();
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(slot.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = listener.local_addr()?.to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut env = testkit::dynamo::sdk_env(&endpoint);
    env.extend(
        [
            ("AWS_LAMBDA_RUNTIME_API", api.as_str()),
            ("AWS_LAMBDA_FUNCTION_NAME", "coldstart"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/coldstart"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
            ("TABLE_NAME", table.as_str()),
            ("TOSS_API_BASE", sandbox.base_url().as_str()),
            ("TOSS_SECRET_KEY", toss_sandbox::DOCS_SECRET_KEY),
            ("APP_SUCCESS_URL", "https://app.example.com/billing/done"),
            ("APP_FAIL_URL", "https://app.example.com/billing/failed"),
            ("AUTH_ISSUER", issuer.issuer_url()),
            ("RUST_LOG", "info"),
            ("PATH", &std::env::var("PATH").unwrap_or_default()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    // The sweep accepts only its own schedule rule's events (the sample event's, here).
    env.push((
        "SWEEP_RULE_ARN".to_owned(),
        testkit::lambda::sample_schedule_rule()?,
    ));

    let mut out = String::new();
    let _ = writeln!(
        out,
        "| function | runtime | starts | start → first `next` (init), median ms | start → first event handled, median ms | min | p90 |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
    let mut counter = 0u32;
    for target in &targets {
        let mut timings = Vec::new();
        // One discarded start warms the page cache.
        for i in 0..=starts {
            counter += 1;
            let event = event(target.event, &checkouts, sandbox.sandbox(), counter).await?;
            let start = start_once(target, &env, &slot, format!("req-{counter}"), event).await?;
            if i > 0 {
                timings.push(start);
            }
        }
        let mut init: Vec<f64> = timings.iter().map(|t| ms(t.init)).collect();
        let mut first: Vec<f64> = timings.iter().map(|t| ms(t.first_event)).collect();
        init.sort_by(f64::total_cmp);
        first.sort_by(f64::total_cmp);
        let runtime = if target.command.first().is_some_and(|c| c.ends_with("node")) {
            "Node.js (AWS SDK v3)"
        } else {
            "Rust (provided.al2023 bootstrap)"
        };
        let _ = writeln!(
            out,
            "| {} | {runtime} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            target.name,
            first.len(),
            percentile(&init, 0.5),
            percentile(&first, 0.5),
            percentile(&first, 0.0),
            percentile(&first, 0.9),
        );
        eprintln!("coldstart: {} done", target.name);
    }
    sandbox.shutdown().await?;
    Ok(out)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn event(
    kind: EventKind,
    checkouts: &billing::Billing,
    sandbox: &toss_sandbox::Sandbox,
    n: u32,
) -> anyhow::Result<Vec<u8>> {
    let value = match kind {
        EventKind::Scheduled => testkit::event("charge-subscriptions.scheduled.json")?,
        EventKind::BillingSuccess => {
            let mut event = testkit::event("billing-api.success.json")?;
            let user = format!("user_cold_{n}_{}", std::process::id());
            let checkout = checkouts
                .start_checkout(&user, chrono::Utc::now())
                .await
                .context("start a checkout")?;
            let customer = checkout.customer_key.as_str();
            let state = checkout.state.expose_secret();
            let auth_key = sandbox
                .mint_auth_key(customer, TestCard::Ok)
                .map_err(|e| anyhow!("mint an authKey: {e:?}"))?;
            event["rawQueryString"] = Value::from(format!(
                "state={state}&customerKey={customer}&authKey={auth_key}"
            ));
            event["queryStringParameters"] = serde_json::json!({
                "state": state,
                "customerKey": customer,
                "authKey": auth_key,
            });
            event
        }
    };
    Ok(serde_json::to_vec(&value)?)
}

async fn start_once(
    target: &Target,
    env: &[(String, String)],
    slot: &Shared,
    id: String,
    event: Vec<u8>,
) -> anyhow::Result<Start> {
    let (polled_tx, polled_rx) = oneshot::channel();
    let (answered_tx, answered_rx) = oneshot::channel();
    {
        let mut s = slot
            .lock()
            .map_err(|_| anyhow!("emulator state poisoned"))?;
        *s = Slot {
            event: Some((id, event)),
            polled: Some(polled_tx),
            answered: Some(answered_tx),
        };
    }
    let (program, args) = target.command.split_first().context("empty command")?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawn {program}"))?;
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        let answered = answered_rx.await;
        let polled = polled_rx.await;
        (polled, answered)
    })
    .await;
    child.start_kill().ok();
    child.wait().await.ok();
    let (polled, answered) =
        outcome.map_err(|_| anyhow!("{}: no answer within 60 s", target.name))?;
    let (answered_at, result) = answered.map_err(|_| anyhow!("{}: no answer", target.name))?;
    let body = match result {
        Ok(body) => body,
        Err(body) => bail!("{} failed its first event: {body}", target.name),
    };
    if target.event == EventKind::BillingSuccess && !body.contains("/billing/done") {
        bail!(
            "{} did not redirect to the success URL: {body}",
            target.name
        );
    }
    let polled_at = polled.map_err(|_| anyhow!("{}: never polled", target.name))?;
    Ok(Start {
        init: polled_at.duration_since(started),
        first_event: answered_at.duration_since(started),
    })
}

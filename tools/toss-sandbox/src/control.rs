//! The control API under `/__sandbox/`: JSON in and out, no authentication.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cards::{ChargeBehaviour, TestCard};
use crate::config::SecretKeySpec;
use crate::errors::ApiError;
use crate::faults::{DeclineRule, FaultConfig, FaultRule, LatencyConfig};
use crate::model::kst;
use crate::outbox::WebhookEndpoint;
use crate::state::Sandbox;

pub(crate) fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/__sandbox/health", get(health))
        .route("/__sandbox/reset", post(reset))
        .route("/__sandbox/state", get(state))
        .route("/__sandbox/cards", get(cards))
        .route("/__sandbox/auth-keys", post(mint_auth_key))
        .route("/__sandbox/secret-keys", post(register_secret_key))
        .route("/__sandbox/secret-keys/revoke", post(revoke_secret_key))
        .route(
            "/__sandbox/faults",
            get(faults).put(replace_faults).delete(clear_faults),
        )
        .route("/__sandbox/faults/rules", post(add_fault_rule))
        .route("/__sandbox/faults/latency", axum::routing::put(set_latency))
        .route("/__sandbox/seed", post(set_seed))
        .route(
            "/__sandbox/declines",
            get(declines).post(add_decline).delete(clear_declines),
        )
        .route("/__sandbox/clock", get(clock).post(set_clock))
        .route(
            "/__sandbox/webhooks",
            axum::routing::put(set_webhook).delete(clear_webhook),
        )
        .route("/__sandbox/webhooks/deliveries", get(webhook_deliveries))
        .route("/__sandbox/webhooks/flush", post(flush_webhooks))
        .route(
            "/__sandbox/payments/{payment_key}/cancel",
            post(console_cancel),
        )
        .route("/__sandbox/billing-keys/delete", post(delete_billing_key))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookRequest {
    secret_key: String,
    #[serde(flatten)]
    endpoint: WebhookEndpoint,
}

async fn set_webhook(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    match body::<WebhookRequest>(&bytes) {
        Ok(request) => {
            sandbox.set_webhook(&request.secret_key, request.endpoint.clone());
            ok(&request.endpoint)
        }
        Err(error) => error.into_response(),
    }
}

async fn clear_webhook(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    match body::<RevokeRequest>(&bytes) {
        Ok(request) => ok(&json!({ "cleared": sandbox.clear_webhook(&request.secret_key) })),
        Err(error) => error.into_response(),
    }
}

async fn webhook_deliveries(State(sandbox): State<Sandbox>) -> Response {
    ok(&sandbox.webhook_deliveries())
}

async fn flush_webhooks(State(sandbox): State<Sandbox>) -> Response {
    ok(&json!({ "flushed": sandbox.flush_webhooks() }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConsoleCancel {
    cancel_reason: String,
    #[serde(default)]
    cancel_amount: Option<i64>,
}

/// A refund made in the merchant console (no idempotency key); Toss-style errors.
async fn console_cancel(
    State(sandbox): State<Sandbox>,
    Path(payment_key): Path<String>,
    bytes: Bytes,
) -> Response {
    let result = body::<ConsoleCancel>(&bytes).and_then(|request| {
        sandbox.console_cancel(&payment_key, &request.cancel_reason, request.cancel_amount)
    });
    match result {
        Ok(payment) => ok(&payment),
        Err(error) => error.into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeleteAtToss {
    billing_key: String,
    #[serde(default)]
    reason: Option<String>,
}

/// A billing key deleted by Toss or the card company: `BILLING_DELETED` is sent.
async fn delete_billing_key(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    match body::<DeleteAtToss>(&bytes) {
        Ok(request) => {
            if sandbox.delete_billing_key_at_toss(&request.billing_key, request.reason.as_deref()) {
                ok(&json!({ "deleted": true }))
            } else {
                ApiError::of("NOT_FOUND_BILLING").into_response()
            }
        }
        Err(error) => error.into_response(),
    }
}

fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { bytes };
    serde_json::from_slice(bytes)
        .map_err(|error| ApiError::invalid_request(format!("invalid control body: {error}")))
}

fn ok<T: Serialize>(value: &T) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

async fn health() -> Response {
    ok(&json!({ "ok": true }))
}

async fn reset(State(sandbox): State<Sandbox>) -> Response {
    sandbox.reset();
    ok(&json!({ "reset": true }))
}

async fn state(State(sandbox): State<Sandbox>) -> Response {
    ok(&sandbox.snapshot())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CardView {
    card: TestCard,
    slug: &'static str,
    label: &'static str,
    number: String,
    masked_number: String,
    company: &'static str,
    card_type: &'static str,
    owner_type: &'static str,
    registration: &'static str,
    charges: String,
}

async fn cards() -> Response {
    let views: Vec<CardView> = TestCard::ALL
        .into_iter()
        .map(|card| {
            let p = card.profile();
            CardView {
                card,
                slug: p.slug,
                label: p.label,
                number: p.display_number(),
                masked_number: p.masked_number(),
                company: p.company,
                card_type: p.card_type,
                owner_type: p.owner_type,
                registration: p.registration_error.unwrap_or("ok"),
                charges: match p.charge {
                    ChargeBehaviour::Approve => "approve".to_owned(),
                    ChargeBehaviour::Decline(code) => format!("always {code}"),
                    ChargeBehaviour::DeclineAfterFirst(code) => {
                        format!("first approved, then {code}")
                    }
                },
            }
        })
        .collect();
    ok(&views)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MintRequest {
    customer_key: String,
    #[serde(default)]
    card: Option<String>,
}

async fn mint_auth_key(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    let result = body::<MintRequest>(&bytes).and_then(|request| {
        let card = match request.card.as_deref() {
            None => TestCard::Ok,
            Some(name) => TestCard::parse(name)
                .or_else(|| TestCard::from_number(name))
                .ok_or_else(|| ApiError::invalid_request(format!("unknown test card: {name}")))?,
        };
        let auth_key = sandbox.mint_auth_key(&request.customer_key, card)?;
        Ok(json!({ "authKey": auth_key, "customerKey": request.customer_key, "card": card }))
    });
    match result {
        Ok(value) => ok(&value),
        Err(error) => error.into_response(),
    }
}

async fn register_secret_key(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    let result = body::<SecretKeySpec>(&bytes).and_then(|spec| {
        sandbox
            .register_secret_key(&spec)
            .map_err(|error| ApiError::invalid_request(error.to_string()))
    });
    match result {
        Ok(view) => ok(&view),
        Err(error) => error.into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RevokeRequest {
    secret_key: String,
}

async fn revoke_secret_key(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    match body::<RevokeRequest>(&bytes) {
        Ok(request) => ok(&json!({ "revoked": sandbox.revoke_secret_key(&request.secret_key) })),
        Err(error) => error.into_response(),
    }
}

fn faults_view(sandbox: &Sandbox) -> Response {
    let (seed, config) = sandbox.faults();
    ok(&json!({ "seed": seed, "latency": config.latency, "rules": config.rules }))
}

async fn faults(State(sandbox): State<Sandbox>) -> Response {
    faults_view(&sandbox)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FaultsRequest {
    #[serde(default)]
    seed: Option<u64>,
    #[serde(flatten)]
    config: FaultConfig,
}

async fn replace_faults(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    match body::<FaultsRequest>(&bytes) {
        Ok(request) => {
            sandbox.set_faults(request.config);
            if let Some(seed) = request.seed {
                sandbox.set_seed(seed);
            }
            faults_view(&sandbox)
        }
        Err(error) => error.into_response(),
    }
}

async fn clear_faults(State(sandbox): State<Sandbox>) -> Response {
    sandbox.set_faults(FaultConfig::default());
    faults_view(&sandbox)
}

async fn add_fault_rule(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    match body::<FaultRule>(&bytes) {
        Ok(rule) => {
            let (_, mut config) = sandbox.faults();
            config.rules.push(rule);
            sandbox.set_faults(config);
            faults_view(&sandbox)
        }
        Err(error) => error.into_response(),
    }
}

async fn set_latency(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    match body::<LatencyConfig>(&bytes) {
        Ok(latency) => {
            let (_, mut config) = sandbox.faults();
            config.latency = latency;
            sandbox.set_faults(config);
            faults_view(&sandbox)
        }
        Err(error) => error.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct SeedRequest {
    seed: u64,
}

async fn set_seed(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    match body::<SeedRequest>(&bytes) {
        Ok(request) => {
            sandbox.set_seed(request.seed);
            faults_view(&sandbox)
        }
        Err(error) => error.into_response(),
    }
}

async fn declines(State(sandbox): State<Sandbox>) -> Response {
    ok(&sandbox.declines())
}

async fn add_decline(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    match body::<DeclineRule>(&bytes) {
        Ok(rule) => {
            sandbox.add_decline(rule);
            ok(&sandbox.declines())
        }
        Err(error) => error.into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeclineFilter {
    customer_key: Option<String>,
}

async fn clear_declines(
    State(sandbox): State<Sandbox>,
    Query(filter): Query<DeclineFilter>,
) -> Response {
    sandbox.clear_declines(filter.customer_key.as_deref());
    ok(&sandbox.declines())
}

fn clock_view(sandbox: &Sandbox) -> Response {
    ok(&json!({
        "now": kst(sandbox.now()),
        "offsetSeconds": sandbox.clock_offset().num_seconds(),
    }))
}

async fn clock(State(sandbox): State<Sandbox>) -> Response {
    clock_view(&sandbox)
}

/// Exactly one of the fields.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClockRequest {
    offset_seconds: Option<i64>,
    advance_seconds: Option<i64>,
    advance_days: Option<i64>,
    now: Option<DateTime<chrono::FixedOffset>>,
}

async fn set_clock(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    let request = match body::<ClockRequest>(&bytes) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    match request {
        ClockRequest {
            offset_seconds: Some(seconds),
            advance_seconds: None,
            advance_days: None,
            now: None,
        } => sandbox.set_clock_offset(Duration::seconds(seconds)),
        ClockRequest {
            offset_seconds: None,
            advance_seconds: Some(seconds),
            advance_days: None,
            now: None,
        } => sandbox.advance_clock(Duration::seconds(seconds)),
        ClockRequest {
            offset_seconds: None,
            advance_seconds: None,
            advance_days: Some(days),
            now: None,
        } => sandbox.advance_clock(Duration::days(days)),
        ClockRequest {
            offset_seconds: None,
            advance_seconds: None,
            advance_days: None,
            now: Some(now),
        } => sandbox.set_clock_offset(now.with_timezone(&Utc) - Utc::now()),
        _ => {
            return ApiError::invalid_request(
                "send exactly one of offsetSeconds, advanceSeconds, advanceDays, now",
            )
            .into_response();
        }
    }
    clock_view(&sandbox)
}

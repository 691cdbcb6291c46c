//! The HTTP face: discovery and JWKS as an OIDC issuer serves them, plus a control API under
//! `/__issuer/` that tests and the demo use to mint tokens, rotate keys and read counters.

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::issuer::{Issuer, JwksFault};
use crate::keys::SigningAlg;
use crate::token::TokenRequest;

pub fn router(issuer: Issuer) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/__issuer/tokens", post(mint))
        .route("/__issuer/rotate", post(rotate))
        .route("/__issuer/stats", get(stats))
        .route("/__issuer/stats/reset", post(reset_stats))
        .route("/__issuer/jwks-fault", put(set_fault))
        .with_state(issuer)
}

async fn discovery(State(issuer): State<Issuer>) -> Response {
    Json(issuer.openid_configuration()).into_response()
}

async fn jwks(State(issuer): State<Issuer>) -> Response {
    issuer.count_jwks_fetch();
    let body = match serde_json::to_string(&issuer.jwks()) {
        Ok(body) => body,
        Err(e) => return failure(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let json = [(header::CONTENT_TYPE, "application/json")];
    match issuer.jwks_fault() {
        None => (json, body).into_response(),
        Some(JwksFault::Status { status }) => StatusCode::from_u16(status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Some(JwksFault::Oversized { bytes }) => {
            let padding = " ".repeat(bytes.saturating_sub(body.len()));
            (json, format!("{body}{padding}")).into_response()
        }
        Some(JwksFault::OversizedStream { bytes }) => {
            let padding = bytes.saturating_sub(body.len());
            let chunks = std::iter::once(body.into_bytes()).chain(
                (0..padding.div_ceil(1024)).map(move |n| vec![b' '; 1024.min(padding - n * 1024)]),
            );
            let stream = futures::stream::iter(chunks.map(Ok::<_, std::io::Error>));
            (json, Body::from_stream(stream)).into_response()
        }
        Some(JwksFault::NotJson) => (json, "<html>upstream error</html>").into_response(),
        Some(JwksFault::Delay { millis }) => {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            (json, body).into_response()
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Minted {
    token: String,
}

async fn mint(State(issuer): State<Issuer>, Json(request): Json<TokenRequest>) -> Response {
    match issuer.mint(&request) {
        Ok(token) => Json(Minted { token }).into_response(),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RotateRequest {
    alg: Option<SigningAlg>,
    #[serde(default)]
    retire_old: bool,
}

async fn rotate(State(issuer): State<Issuer>, Json(request): Json<RotateRequest>) -> Response {
    let alg = request.alg.unwrap_or(SigningAlg::Rs256);
    match issuer.rotate(alg, request.retire_old) {
        Ok(kid) => Json(json!({ "kid": kid, "alg": alg })).into_response(),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn stats(State(issuer): State<Issuer>) -> Response {
    Json(json!({
        "jwksFetches": issuer.jwks_fetches(),
        "kids": issuer.kids(),
        "currentKids": {
            "RS256": issuer.current_kid(SigningAlg::Rs256),
            "ES256": issuer.current_kid(SigningAlg::Es256),
        },
        "jwksFault": issuer.jwks_fault(),
    }))
    .into_response()
}

async fn reset_stats(State(issuer): State<Issuer>) -> StatusCode {
    issuer.reset_jwks_fetches();
    StatusCode::NO_CONTENT
}

async fn set_fault(
    State(issuer): State<Issuer>,
    Json(fault): Json<Option<JwksFault>>,
) -> StatusCode {
    issuer.set_jwks_fault(fault);
    StatusCode::NO_CONTENT
}

fn failure(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

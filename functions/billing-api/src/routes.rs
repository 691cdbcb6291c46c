//! Routes: parse the request into domain types, run the use case, answer.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State as Shared};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use billing::{FailureCode, Registration, RegistrationOutcome};
use tracing::{error, info, warn};

use crate::account;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::query::{FailQuery, QueryError, SuccessQuery};
use crate::state::State;
use crate::webhook;

type AppState = Arc<State>;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        // HEAD is refused explicitly: axum would otherwise run a GET route for it.
        .route(
            "/billing/success",
            get(success).head(get_only).fallback(get_only),
        )
        .route("/billing/fail", get(fail).head(get_only).fallback(get_only))
        .route("/v1/checkout", post(checkout).fallback(post_only))
        .route(
            "/v1/subscription",
            get(account::subscription).head(get_only).fallback(get_only),
        )
        .route(
            "/v1/subscription/cancel",
            post(account::cancel).fallback(post_only),
        )
        .route(
            "/v1/subscription/resume",
            post(account::resume).fallback(post_only),
        )
        .route(
            "/v1/credits/consume",
            post(account::consume).fallback(post_only),
        )
        .route(
            "/v1/payments",
            get(account::payments).head(get_only).fallback(get_only),
        )
        // Public: Toss's webhooks carry no signature; see webhook.rs.
        .route("/toss/webhooks", post(webhook::receive).fallback(post_only))
        .fallback(not_found)
}

async fn post_only() -> ApiError {
    ApiError::MethodNotAllowed { allow: "POST" }
}

/// Any other method on a GET route: the JSON 405.
async fn get_only() -> ApiError {
    ApiError::MethodNotAllowed { allow: "GET" }
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// Where a redirect route sends the customer: always one of the configured app URLs.
enum Redirect {
    ToApp,
    ToAppFailed(FailureCode),
}

impl Redirect {
    fn respond(self, state: &State) -> Response {
        let url = match self {
            Redirect::ToApp => state.app_success_url.clone(),
            Redirect::ToAppFailed(code) => {
                let mut url = state.app_fail_url.clone();
                url.query_pairs_mut().append_pair("code", code.as_str());
                url
            }
        };
        match HeaderValue::from_str(url.as_str()) {
            Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
            Err(e) => ApiError::internal(e).into_response(),
        }
    }
}

/// `GET /billing/fail?code=…`: the sanitised code goes on to the app.
async fn fail(Shared(state): Shared<AppState>, RawQuery(query): RawQuery) -> Response {
    let redirect = match FailQuery::parse(query.as_deref().unwrap_or_default()) {
        Ok(q) => {
            info!(code = %q.code, "billing auth failed at Toss");
            Redirect::ToAppFailed(FailureCode::toss(&q.code))
        }
        Err(e) => bad_query(&e),
    };
    redirect.respond(&state)
}

/// `GET /billing/success?customerKey=…&authKey=…`: issue the billing key and subscribe, or
/// replace the card.
async fn success(Shared(state): Shared<AppState>, RawQuery(query): RawQuery) -> Response {
    let redirect = match SuccessQuery::parse(query.as_deref().unwrap_or_default()) {
        Ok(q) => register(&state, q).await,
        Err(e) => bad_query(&e),
    };
    redirect.respond(&state)
}

fn bad_query(e: &QueryError) -> Redirect {
    warn!(reason = %e, "refused a redirect's query string");
    match e {
        QueryError::State => Redirect::ToAppFailed(FailureCode::InvalidState),
        _ => Redirect::ToAppFailed(FailureCode::InvalidRequest),
    }
}

async fn register(state: &State, q: SuccessQuery) -> Redirect {
    let registration = Registration {
        state: q.state,
        customer_key: q.customer_key,
        auth_key: q.auth_key,
        customer_email: q.customer_email,
        customer_name: q.customer_name,
    };
    let result = state
        .billing
        .register_card(&registration, chrono::Utc::now())
        .await;
    match &result {
        Ok(outcome) => billing::metrics::registration(outcome),
        Err(_) => billing::metrics::registration_error(),
    }
    match result {
        Ok(RegistrationOutcome::Subscribed { subscription_id }) => {
            info!(subscription = %subscription_id, "subscribed");
            Redirect::ToApp
        }
        Ok(RegistrationOutcome::CardReplaced { subscription_id }) => {
            info!(subscription = %subscription_id, "card replaced");
            Redirect::ToApp
        }
        Ok(RegistrationOutcome::Pending { subscription_id }) => {
            warn!(subscription = %subscription_id, "first charge outcome pending");
            Redirect::ToAppFailed(FailureCode::PaymentPending)
        }
        Ok(RegistrationOutcome::Failed { code }) => Redirect::ToAppFailed(code),
        Err(e) => {
            error!(error = %billing::cause_chain(&e), "registration failed on our side");
            Redirect::ToAppFailed(FailureCode::ServiceError)
        }
    }
}

/// `POST /v1/checkout` → `201` with the caller's customer key and the URLs to hand to Toss's
/// `requestBillingAuth` unchanged (product §10.2).
async fn checkout(
    Shared(state): Shared<AppState>,
    Caller(user): Caller,
    extensions: axum::http::Extensions,
) -> Result<Response, ApiError> {
    let base = public_base(&state, &extensions)?;
    let started = state
        .billing
        .start_checkout(user.user_id.as_str(), chrono::Utc::now())
        .await
        .map_err(ApiError::internal)?;
    let url = |route: &str| -> Result<url::Url, ApiError> {
        let mut url = url::Url::parse(&format!("{}{route}", base.as_str().trim_end_matches('/')))
            .map_err(ApiError::internal)?;
        url.query_pairs_mut()
            .append_pair("state", started.state.expose_secret());
        Ok(url)
    };
    let plan = &started.plan;
    let body = serde_json::json!({
        "customerKey": started.customer_key.as_str(),
        "successUrl": url("/billing/success")?.as_str(),
        "failUrl": url("/billing/fail")?.as_str(),
        "expiresAt": started.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "plan": {
            "amount": plan.amount().won(),
            "currency": "KRW",
            "orderName": plan.order_name(),
            "credits": plan.credits(),
        },
    });
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// `API_BASE_URL`, else `https://<domain>` as API Gateway reports it (not the Host header).
fn public_base(state: &State, extensions: &axum::http::Extensions) -> Result<url::Url, ApiError> {
    if let Some(base) = &state.api_base_url {
        return Ok(base.clone());
    }
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    let domain = match extensions.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.domain_name.clone(),
        _ => None,
    };
    let domain =
        domain.ok_or_else(|| ApiError::internal("no API_BASE_URL and no API Gateway domain"))?;
    url::Url::parse(&format!("https://{domain}")).map_err(ApiError::internal)
}

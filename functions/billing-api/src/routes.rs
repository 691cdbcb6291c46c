//! Routes: parse the request into domain types, run the use case, answer.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State as Shared};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use billing::{Registration, RegistrationOutcome, codes};
use tracing::{error, info, warn};

use crate::error::ApiError;
use crate::handler::State;
use crate::query::{FailQuery, QueryError, SuccessQuery};

type AppState = Arc<State>;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        // HEAD is refused explicitly: axum would otherwise run a GET route for it.
        .route(
            "/billing/success",
            get(success).head(get_only).fallback(get_only),
        )
        .route("/billing/fail", get(fail).head(get_only).fallback(get_only))
        .fallback(not_found)
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
    ToAppFailed(String),
}

impl Redirect {
    fn respond(self, state: &State) -> Response {
        let url = match self {
            Redirect::ToApp => state.app_success_url.clone(),
            Redirect::ToAppFailed(code) => {
                let mut url = state.app_fail_url.clone();
                url.query_pairs_mut().append_pair("code", &code);
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
            Redirect::ToAppFailed(q.code)
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
    Redirect::ToAppFailed("INVALID_REQUEST".into())
}

async fn register(state: &State, q: SuccessQuery) -> Redirect {
    let registration = Registration {
        customer_key: q.customer_key,
        auth_key: q.auth_key,
        customer_email: q.customer_email,
        customer_name: q.customer_name,
    };
    match state
        .billing
        .register_card(&registration, chrono::Utc::now())
        .await
    {
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
            Redirect::ToAppFailed(codes::PAYMENT_PENDING.into())
        }
        Ok(RegistrationOutcome::Failed { code }) => Redirect::ToAppFailed(code),
        Err(e) => {
            error!(error = %e, cause = ?e, "registration failed on our side");
            Redirect::ToAppFailed(codes::SERVICE_ERROR.into())
        }
    }
}

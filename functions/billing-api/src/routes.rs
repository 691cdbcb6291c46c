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
use crate::capability::{Account, Checkout, Webhooks};
use crate::error::ApiError;
use crate::extract::Caller;
use crate::query::{FailQuery, QueryError, SuccessQuery};
use crate::state::State;
use crate::webhook;

type AppState<B> = Arc<State<B>>;

pub(crate) fn router<B: Checkout + Account + Webhooks>() -> Router<AppState<B>> {
    Router::new()
        // HEAD is refused explicitly: axum would otherwise run a GET route for it.
        .route(
            "/billing/success",
            get(success::<B>).head(get_only).fallback(get_only),
        )
        .route(
            "/billing/fail",
            get(fail::<B>).head(get_only).fallback(get_only),
        )
        .route("/v1/checkout", post(checkout::<B>).fallback(post_only))
        .route(
            "/v1/subscription",
            get(account::subscription::<B>)
                .head(get_only)
                .fallback(get_only),
        )
        .route(
            "/v1/subscription/cancel",
            post(account::cancel::<B>).fallback(post_only),
        )
        .route(
            "/v1/subscription/resume",
            post(account::resume::<B>).fallback(post_only),
        )
        .route(
            "/v1/credits/consume",
            post(account::consume::<B>).fallback(post_only),
        )
        .route(
            "/v1/payments",
            get(account::payments::<B>)
                .head(get_only)
                .fallback(get_only),
        )
        // Public: Toss's webhooks carry no signature; see webhook.rs.
        .route(
            "/toss/webhooks",
            post(webhook::receive::<B>).fallback(post_only),
        )
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
    fn respond<B>(self, state: &State<B>) -> Response {
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
async fn fail<B>(Shared(state): Shared<AppState<B>>, RawQuery(query): RawQuery) -> Response {
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
async fn success<B: Checkout>(
    Shared(state): Shared<AppState<B>>,
    RawQuery(query): RawQuery,
) -> Response {
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

async fn register<B: Checkout>(state: &State<B>, q: SuccessQuery) -> Redirect {
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
async fn checkout<B: Checkout>(
    Shared(state): Shared<AppState<B>>,
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
fn public_base<B>(
    state: &State<B>,
    extensions: &axum::http::Extensions,
) -> Result<url::Url, ApiError> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use auth_issuer::{IssuerConfig, TokenRequest};
    use axum::http::Method;
    use billing::StartedCheckout;
    use domain::{CheckoutState, CustomerKey, SubscriptionId};
    use lambda_http::{Body, RequestExt};

    use super::*;
    use crate::capability::fake::{self, Fake};

    const STATE: &str = "9f2c4e6a8b0d1f3e5a7c9b1d3f5e7a9c0b2d4f6e8a1c3e5b7d9f1a3c5e7b9d1f";
    const CUSTOMER_KEY: &str = "user_2abcDEFghiJKLmnop";
    const AUTH_KEY: &str = "bln_FAKE0authKEY0for0tests0only";
    const APP_DONE: &str = "https://app.example/billing/done?from=toss";
    /// No issuer is asked on the redirect routes.
    const NO_ISSUER: &str = "http://127.0.0.1:9";

    fn subscription_id() -> SubscriptionId {
        SubscriptionId::parse("01JD0000000000000000000000").unwrap()
    }

    /// Toss's success redirect, as the sample event carries it.
    fn success_redirect() -> lambda_http::Request {
        lambda_http::request::from_str(include_str!("../../../events/billing-api.success.json"))
            .unwrap()
    }

    /// Where the browser is sent after the success redirect when registering answers `result`.
    async fn landing(result: Result<RegistrationOutcome, billing::Error>) -> (String, Vec<String>) {
        let fake = Fake::new();
        fake.register_card.answer(result);
        let calls = fake.calls.clone();
        let response = fake::send(fake, NO_ISSUER, success_redirect()).await;
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let location = response.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(!location.contains(AUTH_KEY), "{location}");
        assert!(!location.contains(CUSTOMER_KEY), "{location}");
        assert!(!location.contains(STATE), "{location}");
        (location, fake::calls(&calls))
    }

    #[tokio::test]
    async fn a_registration_that_subscribed_or_replaced_the_card_lands_on_the_app_success_url() {
        for outcome in [
            RegistrationOutcome::Subscribed {
                subscription_id: subscription_id(),
            },
            RegistrationOutcome::CardReplaced {
                subscription_id: subscription_id(),
            },
        ] {
            let (location, calls) = landing(Ok(outcome.clone())).await;

            assert_eq!(location, APP_DONE, "{outcome:?}");
            assert_eq!(calls, [format!("register_card {CUSTOMER_KEY}")]);
        }
    }

    #[tokio::test]
    async fn a_first_charge_still_pending_lands_on_the_fail_url_with_payment_pending() {
        let (location, _) = landing(Ok(RegistrationOutcome::Pending {
            subscription_id: subscription_id(),
        }))
        .await;

        assert_eq!(
            location,
            "https://app.example/billing/failed?code=PAYMENT_PENDING"
        );
    }

    #[tokio::test]
    async fn every_failed_registration_lands_on_the_fail_url_with_its_own_code() {
        for (code, expected) in [
            (FailureCode::InvalidState, "INVALID_STATE"),
            (FailureCode::CustomerMismatch, "CUSTOMER_MISMATCH"),
            (FailureCode::TossUnavailable, "TOSS_UNAVAILABLE"),
            (FailureCode::PaymentPending, "PAYMENT_PENDING"),
            (FailureCode::ServiceError, "SERVICE_ERROR"),
            (FailureCode::ConcurrentRequest, "CONCURRENT_REQUEST"),
            (FailureCode::InvalidRequest, "INVALID_REQUEST"),
            (
                FailureCode::toss("REJECT_CARD_COMPANY"),
                "REJECT_CARD_COMPANY",
            ),
            (
                FailureCode::toss("EXCEED_MAX_DAILY_PAYMENT_COUNT"),
                "EXCEED_MAX_DAILY_PAYMENT_COUNT",
            ),
        ] {
            let (location, _) = landing(Ok(RegistrationOutcome::Failed { code })).await;

            assert_eq!(
                location,
                format!("https://app.example/billing/failed?code={expected}")
            );
        }
    }

    #[tokio::test]
    async fn a_registration_failing_on_our_side_lands_on_the_fail_url_with_service_error_only() {
        let (location, _) = landing(Err(fake::our_fault())).await;

        assert_eq!(
            location,
            "https://app.example/billing/failed?code=SERVICE_ERROR"
        );
        assert!(!location.contains("UNAUTHORIZED_KEY"), "{location}");
    }

    #[tokio::test]
    async fn the_fail_redirect_never_asks_billing() {
        // A fake with no answers panics if asked.
        let request =
            lambda_http::request::from_str(include_str!("../../../events/billing-api.fail.json"))
                .unwrap();
        let response = fake::send(Fake::new(), NO_ISSUER, request).await;
        assert_eq!(
            response.headers()[header::LOCATION],
            "https://app.example/billing/failed?code=PAY_PROCESS_CANCELED"
        );
    }

    /// `POST /v1/checkout` as API Gateway delivers it (its domain is the public base), with
    /// `authorization` if given.
    fn checkout_request(authorization: Option<String>) -> lambda_http::Request {
        let mut request = success_redirect().with_raw_http_path("/v1/checkout");
        *request.method_mut() = Method::POST;
        *request.uri_mut() = "/v1/checkout".parse().unwrap();
        *request.body_mut() = Body::Empty;
        if let Some(value) = authorization {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, value.parse().unwrap());
        }
        request
    }

    #[tokio::test]
    async fn a_checkout_answers_201_with_the_callers_key_urls_carrying_the_state_and_the_plan() {
        // GIVEN a signed-in caller and a checkout the use case started
        let issuer = auth_issuer::spawn(IssuerConfig::default()).await.unwrap();
        let token = issuer
            .issuer()
            .mint(&TokenRequest::for_user("user_alice"))
            .unwrap();
        let fake = Fake::new();
        let plan = fake.settings.plan.clone();
        let expires_at = chrono::DateTime::parse_from_rfc3339("2026-12-01T00:30:00Z")
            .unwrap()
            .to_utc();
        fake.start_checkout.answer(Ok(StartedCheckout {
            customer_key: CustomerKey::parse("ck_alice_0001").unwrap(),
            state: CheckoutState::parse(STATE).unwrap(),
            expires_at,
            plan: plan.clone(),
        }));
        let calls = fake.calls.clone();

        // WHEN the app starts a checkout
        let response = fake::send(
            fake,
            issuer.issuer_url(),
            checkout_request(Some(format!("Bearer {token}"))),
        )
        .await;

        // THEN it gets the URLs to hand to Toss, on API Gateway's domain
        assert_eq!(response.status(), StatusCode::CREATED);
        let body = fake::json(response).await;
        let base = "https://a1b2c3d4e5.execute-api.ap-northeast-2.amazonaws.com";
        assert_eq!(
            body,
            serde_json::json!({
                "customerKey": "ck_alice_0001",
                "successUrl": format!("{base}/billing/success?state={STATE}"),
                "failUrl": format!("{base}/billing/fail?state={STATE}"),
                "expiresAt": "2026-12-01T00:30:00Z",
                "plan": {
                    "amount": plan.amount().won(),
                    "currency": "KRW",
                    "orderName": plan.order_name(),
                    "credits": plan.credits(),
                },
            })
        );
        // AND the checkout was started for the token's subject
        assert_eq!(fake::calls(&calls), ["start_checkout user_alice"]);
    }

    #[tokio::test]
    async fn a_checkout_failing_on_our_side_is_a_bare_500() {
        let issuer = auth_issuer::spawn(IssuerConfig::default()).await.unwrap();
        let token = issuer
            .issuer()
            .mint(&TokenRequest::for_user("user_alice"))
            .unwrap();
        let fake = Fake::new();
        fake.start_checkout.answer(Err(fake::our_fault()));

        let response = fake::send(
            fake,
            issuer.issuer_url(),
            checkout_request(Some(format!("Bearer {token}"))),
        )
        .await;

        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = fake::json(response).await;
        assert_eq!(body["error"]["code"], "INTERNAL");
        assert!(!body.to_string().contains("UNAUTHORIZED_KEY"), "{body}");
    }

    #[tokio::test]
    async fn a_checkout_without_a_verified_token_is_refused_before_billing_is_asked() {
        let issuer = auth_issuer::spawn(IssuerConfig::default()).await.unwrap();
        let fake = Fake::new();
        let calls = fake.calls.clone();

        let response = fake::send(fake, issuer.issuer_url(), checkout_request(None)).await;

        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(fake::calls(&calls).is_empty());
    }
}

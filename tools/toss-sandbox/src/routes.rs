//! The emulated Toss endpoints under `/v1`: each route names its endpoint, parses its body with
//! `requests.rs` and runs its operation (`ops/`) through the pipeline (`pipeline.rs`).

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::errors::ApiError;
use crate::faults::Endpoint;
use crate::pipeline::{Incoming, Success, json, run};
use crate::requests::{parse_cancel, parse_charge, parse_issue};
use crate::state::Sandbox;

pub(crate) fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/v1/billing/authorizations/issue", post(issue))
        .route(
            "/v1/billing/{billing_key}",
            post(charge).delete(delete_billing_key),
        )
        .route("/v1/payments/{payment_key}", get(payment))
        .route("/v1/payments/orders/{order_id}", get(payment_by_order_id))
        .route("/v1/payments/{payment_key}/cancel", post(cancel))
        .route("/v1/transactions", get(transactions))
}

async fn transactions(
    State(sandbox): State<Sandbox>,
    RawQuery(query): RawQuery,
    incoming: Incoming,
) -> Response {
    run(
        sandbox,
        incoming.call(Endpoint::Transactions),
        move |sandbox, caller, _body| json(&sandbox.transactions(caller, query.as_deref())?),
    )
    .await
}

async fn issue(State(sandbox): State<Sandbox>, incoming: Incoming) -> Response {
    run(
        sandbox,
        incoming.call(Endpoint::Issue),
        |sandbox, caller, body| {
            let request = parse_issue(body)?;
            json(&sandbox.issue(caller, &request.auth_key, &request.customer_key)?)
        },
    )
    .await
}

async fn charge(
    State(sandbox): State<Sandbox>,
    Path(billing_key): Path<String>,
    incoming: Incoming,
) -> Response {
    run(
        sandbox,
        incoming.call(Endpoint::Charge),
        move |sandbox, caller, body| {
            let request = parse_charge(body)?;
            json(&sandbox.charge(caller, &billing_key, &request)?)
        },
    )
    .await
}

async fn delete_billing_key(
    State(sandbox): State<Sandbox>,
    Path(billing_key): Path<String>,
    incoming: Incoming,
) -> Response {
    run(
        sandbox,
        incoming.call(Endpoint::DeleteBillingKey),
        move |sandbox, caller, _body| {
            sandbox.delete_billing_key(caller, &billing_key)?;
            Ok(Success::Empty)
        },
    )
    .await
}

async fn payment(
    State(sandbox): State<Sandbox>,
    Path(payment_key): Path<String>,
    incoming: Incoming,
) -> Response {
    run(
        sandbox,
        incoming.call(Endpoint::GetPayment),
        move |sandbox, caller, _body| json(&sandbox.payment(caller, &payment_key)?),
    )
    .await
}

async fn payment_by_order_id(
    State(sandbox): State<Sandbox>,
    Path(order_id): Path<String>,
    incoming: Incoming,
) -> Response {
    run(
        sandbox,
        incoming.call(Endpoint::GetPaymentByOrderId),
        move |sandbox, caller, _body| json(&sandbox.payment_by_order_id(caller, &order_id)?),
    )
    .await
}

async fn cancel(
    State(sandbox): State<Sandbox>,
    Path(payment_key): Path<String>,
    incoming: Incoming,
) -> Response {
    run(
        sandbox,
        incoming.call(Endpoint::Cancel),
        move |sandbox, caller, body| {
            let request = parse_cancel(body)?;
            json(&sandbox.cancel(caller, &payment_key, &request)?)
        },
    )
    .await
}

/// Unknown paths under the API answer Toss-style 404 bodies.
pub(crate) async fn not_found() -> Response {
    ApiError::of("NOT_FOUND").into_response()
}

pub(crate) async fn method_not_allowed() -> Response {
    ApiError::of("NOT_FOUND_HTTP_METHOD").into_response()
}

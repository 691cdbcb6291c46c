//! The app's own routes (product §10.3): the caller's subscription, its credits, cancel and
//! resume, and its payments. Each route takes a [`Caller`], so it runs only for a verified
//! token, and names no user, customer key or subscription from the request.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State as Shared};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use billing::{ChangeOutcome, ConsumeOutcome, ConsumeRequest, RefundOutcome, WithdrawOutcome};
use chrono::{DateTime, SecondsFormat, Utc};
use domain::{AttemptStatus, ChargeAttempt, Plan, Status, Subscription, period_start};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::capability::Account;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::query::{PaymentsQuery, QueryError};
use crate::state::State;

type AppState<B> = Arc<State<B>>;

/// The largest body a `/v1` route reads; anything longer is refused unread.
const MAX_BODY_BYTES: usize = 1024;
/// Consumption bounds (product §10.3).
const MAX_CONSUME: u64 = 1000;
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// `GET /v1/subscription`
pub(crate) async fn subscription<B: Account>(
    Shared(state): Shared<AppState<B>>,
    Caller(user): Caller,
) -> Result<Response, ApiError> {
    let view = state
        .billing
        .account(user.user_id.as_str())
        .await
        .map_err(ApiError::internal)?;
    let mut body = subscription_json(view.subscription.as_ref(), &state.billing.settings().plan);
    if let Some(sub) = &view.subscription {
        let terms = state
            .billing
            .withdrawable(sub, Utc::now())
            .await
            .map_err(ApiError::internal)?;
        body["withdrawable"] = terms.map_or(
            Value::Null,
            |t| json!({ "amount": t.amount.won(), "until": time(t.until) }),
        );
    }
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// `POST /v1/subscription/cancel`
pub(crate) async fn cancel<B: Account>(
    Shared(state): Shared<AppState<B>>,
    Caller(user): Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body: CancelBody = json_body(&headers, body).await?.unwrap_or_default();
    if body.mode == Some(CancelMode::Withdraw) {
        return withdraw(&state, user.user_id.as_str()).await;
    }
    let outcome = state
        .billing
        .cancel_subscription(user.user_id.as_str(), Utc::now())
        .await
        .map_err(ApiError::internal)?;
    changed(&state, outcome)
}

/// `POST /v1/subscription/cancel` with `{"mode":"withdraw"}`: the statutory withdrawal.
async fn withdraw<B: Account>(state: &State<B>, user_id: &str) -> Result<Response, ApiError> {
    let outcome = state
        .billing
        .withdraw(user_id, Utc::now())
        .await
        .map_err(ApiError::internal)?;
    match outcome {
        WithdrawOutcome::Withdrawn {
            subscription,
            refund,
        } => {
            let mut body = subscription_json(Some(&subscription), &state.billing.settings().plan);
            body["refund"] = match refund.map(|r| *r) {
                Some(RefundOutcome::Refunded { refund, .. }) => {
                    json!({ "status": "DONE", "amount": refund.amount.won() })
                }
                _ => Value::Null,
            };
            Ok((StatusCode::OK, axum::Json(body)).into_response())
        }
        WithdrawOutcome::Pending { subscription } => {
            let mut body = subscription_json(Some(&subscription), &state.billing.settings().plan);
            body["refund"] = json!({ "status": "PENDING" });
            Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
        }
        WithdrawOutcome::Refused { code } => {
            tracing::warn!(code = %code, "Toss refused a withdrawal's refund");
            Err(refused(
                StatusCode::CONFLICT,
                "REFUND_REFUSED",
                "the payment company refused the refund; nothing changed",
            ))
        }
        WithdrawOutcome::NotWithdrawable => Err(refused(
            StatusCode::CONFLICT,
            "NOT_WITHDRAWABLE",
            "the latest payment can be withdrawn only within its window and with none of its credits used",
        )),
        WithdrawOutcome::NoActiveSubscription => Err(refused(
            StatusCode::CONFLICT,
            "NO_ACTIVE_SUBSCRIPTION",
            "there is no subscription to cancel",
        )),
    }
}

/// `POST /v1/subscription/resume`
pub(crate) async fn resume<B: Account>(
    Shared(state): Shared<AppState<B>>,
    Caller(user): Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let _: EmptyBody = json_body(&headers, body).await?.unwrap_or_default();
    let outcome = state
        .billing
        .resume_subscription(user.user_id.as_str(), Utc::now())
        .await
        .map_err(ApiError::internal)?;
    changed(&state, outcome)
}

fn changed<B: Account>(state: &State<B>, outcome: ChangeOutcome) -> Result<Response, ApiError> {
    match outcome {
        ChangeOutcome::Changed(sub) => {
            let body = subscription_json(Some(&sub), &state.billing.settings().plan);
            Ok((StatusCode::OK, axum::Json(body)).into_response())
        }
        ChangeOutcome::NoActiveSubscription => Err(refused(
            StatusCode::CONFLICT,
            "NO_ACTIVE_SUBSCRIPTION",
            "there is no subscription to cancel",
        )),
        ChangeOutcome::NotResumable => Err(refused(
            StatusCode::CONFLICT,
            "NOT_RESUMABLE",
            "only a subscription canceled at period end can be resumed, while the period lasts",
        )),
        ChangeOutcome::PaymentPending => Err(refused(
            StatusCode::CONFLICT,
            "PAYMENT_PENDING",
            "a payment of this subscription is being settled; try again in a few minutes",
        )),
    }
}

/// `POST /v1/credits/consume`
pub(crate) async fn consume<B: Account>(
    Shared(state): Shared<AppState<B>>,
    Caller(user): Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let idempotency_key = idempotency_key(&headers)?;
    let body: ConsumeBody = json_body(&headers, body).await?.unwrap_or_default();
    let amount = body.amount.unwrap_or(1);
    if !(1..=MAX_CONSUME).contains(&amount) {
        return Err(ApiError::BadRequest {
            code: "INVALID_AMOUNT",
            message: "amount must be an integer from 1 to 1000",
        });
    }
    let request = ConsumeRequest {
        idempotency_key,
        amount,
    };
    let user_id = user.user_id.as_str();
    let outcome = state
        .billing
        .consume_credits(user_id, &request, Utc::now())
        .await
        .map_err(ApiError::internal)?;
    match outcome {
        ConsumeOutcome::Consumed { consumed, credits } => {
            let body = json!({ "consumed": consumed, "credits": credits }).to_string();
            if let Err(e) = state
                .billing
                .remember_consume_answer(user_id, &request, StatusCode::OK.as_u16(), &body)
                .await
            {
                // The credits are spent and the key recorded: a replay answers from the
                // balance of its own time instead of this exact body.
                tracing::warn!(error.message = %e, "could not keep a consumption's answer");
            }
            Ok(json_response(StatusCode::OK, body))
        }
        ConsumeOutcome::Replay { status, body } => Ok(json_response(
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            body,
        )),
        ConsumeOutcome::KeyReused => Err(refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "IDEMPOTENCY_KEY_REUSED",
            "this Idempotency-Key was used with another request",
        )),
        ConsumeOutcome::Insufficient { credits } => Err(ApiError::Refused {
            status: StatusCode::CONFLICT,
            code: "INSUFFICIENT_CREDITS",
            message: "not enough credits; nothing was consumed",
            detail: Some(
                [("credits".to_owned(), Value::from(credits))]
                    .into_iter()
                    .collect(),
            ),
        }),
        ConsumeOutcome::NoActiveSubscription => Err(refused(
            StatusCode::CONFLICT,
            "NO_ACTIVE_SUBSCRIPTION",
            "credits can be used only with an active or past-due subscription",
        )),
        ConsumeOutcome::Busy => Err(refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "BUSY",
            "the subscription is busy; try again with the same Idempotency-Key",
        )),
        ConsumeOutcome::WithdrawalPending => Err(refused(
            StatusCode::CONFLICT,
            "WITHDRAWAL_PENDING",
            "a withdrawal waits for the payment company's answer; nothing was consumed",
        )),
    }
}

/// `GET /v1/payments?limit=&cursor=`
pub(crate) async fn payments<B: Account>(
    Shared(state): Shared<AppState<B>>,
    Caller(user): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let q = PaymentsQuery::parse(query.as_deref().unwrap_or_default()).map_err(|e| match e {
        QueryError::Invalid(_) => ApiError::BadRequest {
            code: "INVALID_QUERY",
            message: "limit must be 1 to 100 and cursor one this API gave",
        },
        _ => ApiError::BadRequest {
            code: "INVALID_QUERY",
            message: "the query string is malformed",
        },
    })?;
    let page = state
        .billing
        .payments(user.user_id.as_str(), q.limit, q.after)
        .await
        .map_err(ApiError::internal)?;
    let body = json!({
        "payments": page.payments.iter().map(payment_json).collect::<Vec<_>>(),
        "nextCursor": page.next.map(PaymentsQuery::cursor),
    });
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    mode: Option<CancelMode>,
}

/// How to cancel: at the period's end (the default), or withdraw and be refunded now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CancelMode {
    PeriodEnd,
    Withdraw,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsumeBody {
    amount: Option<u64>,
}

fn refused(status: StatusCode, code: &'static str, message: &'static str) -> ApiError {
    ApiError::Refused {
        status,
        code,
        message,
        detail: None,
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The `Idempotency-Key` header: exactly one, 1–255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let mut values = headers.get_all("idempotency-key").iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(ApiError::BadRequest {
            code: "IDEMPOTENCY_KEY_REQUIRED",
            message: "send exactly one Idempotency-Key header",
        });
    };
    let bytes = value.as_bytes();
    if bytes.is_empty()
        || bytes.len() > MAX_IDEMPOTENCY_KEY
        || !bytes.iter().all(|b| (0x21..=0x7e).contains(b))
    {
        return Err(ApiError::BadRequest {
            code: "INVALID_IDEMPOTENCY_KEY",
            message: "Idempotency-Key must be 1 to 255 visible ASCII characters",
        });
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// A JSON body of at most [`MAX_BODY_BYTES`], or `None` when there is none.
async fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
) -> Result<Option<T>, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::TooLarge)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::NotJson);
    }
    // Only an object: serde would also read a struct from a JSON array.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::BadRequest {
            code: "INVALID_BODY",
            message: "the body is not the JSON this route takes",
        });
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|_| ApiError::BadRequest {
            code: "INVALID_BODY",
            message: "the body is not the JSON this route takes",
        })
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The subscription as the app sees it (`status: "none"` when there is none).
pub(crate) fn subscription_json(sub: Option<&Subscription>, plan: &Plan) -> Value {
    let plan_json = json!({
        "amount": plan.amount().won(),
        "currency": "KRW",
        "orderName": plan.order_name(),
        "credits": plan.credits(),
    });
    let Some(sub) = sub else {
        return json!({
            "status": "none",
            "cancelAtPeriodEnd": false,
            "currentPeriod": null,
            "nextChargeAt": null,
            "credits": 0,
            "card": null,
            "plan": plan_json,
            "pastDue": null,
            "withdrawable": null,
            "withdrawalPending": false,
        });
    };
    let current_period = match (sub.anchor, sub.current_period_end, sub.next_period) {
        (Some(anchor), Some(end), next) if next > 0 => json!({
            "start": time(period_start(anchor, next - 1)),
            "end": time(end),
        }),
        _ => Value::Null,
    };
    let next_charge_at = match sub.status {
        Status::Active if !sub.cancel_at_period_end && sub.hold.is_none() => {
            sub.next_charge_at.map(time)
        }
        Status::PastDue
            if sub.hold.is_none() && !sub.dunning.as_ref().is_some_and(|d| d.card_unusable) =>
        {
            sub.next_charge_at.map(time)
        }
        _ => None,
    };
    let usable = matches!(sub.status, Status::Active | Status::PastDue);
    let card = match (&sub.card_number_masked, &sub.billing_key) {
        (Some(number), Some(_)) => json!({ "company": sub.card_company, "number": number }),
        _ => Value::Null,
    };
    let past_due = match (&sub.status, &sub.dunning) {
        (Status::PastDue, Some(d)) => json!({
            "since": time(d.started_at),
            "nextRetryAt": next_charge_at,
            "lastCode": d.last_code,
            "needsNewCard": d.card_unusable,
        }),
        _ => Value::Null,
    };
    json!({
        "status": sub.status.as_str(),
        "cancelAtPeriodEnd": sub.cancel_at_period_end,
        "currentPeriod": current_period,
        "nextChargeAt": next_charge_at,
        "credits": if usable { sub.credits } else { 0 },
        "card": card,
        "plan": plan_json,
        "pastDue": past_due,
        "withdrawable": null,
        "withdrawalPending": sub.withdrawal.is_some(),
    })
}

/// One ledger entry as the app sees it. A refusal on our side is never shown by its code.
fn payment_json(a: &ChargeAttempt) -> Value {
    let status = match a.status {
        AttemptStatus::Done if a.refunded >= a.amount => "CANCELED",
        AttemptStatus::Done if a.refunded.won() > 0 => "PARTIAL_CANCELED",
        AttemptStatus::Done => "DONE",
        AttemptStatus::Declined => "DECLINED",
        AttemptStatus::NotCharged => "NOT_CHARGED",
        AttemptStatus::Pending | AttemptStatus::Unknown | AttemptStatus::Review => "UNKNOWN",
    };
    let failure = match a.status {
        AttemptStatus::Declined => json!({
            "code": a.error_code.as_deref().unwrap_or("DECLINED"),
            "message": a.error_message.as_deref().unwrap_or_default(),
        }),
        AttemptStatus::NotCharged => {
            let customers = a.error_code.as_deref().filter(|c| {
                toss::class::class_of_code(toss::Operation::Charge, &toss::ErrorCode::parse(c))
                    == toss::ErrorClass::CustomerData
            });
            match customers {
                Some(code) => json!({
                    "code": code,
                    "message": a.error_message.as_deref().unwrap_or_default(),
                }),
                None => json!({
                    "code": billing::FailureCode::ServiceError.as_str(),
                    "message": "the payment could not be made on our side; nothing was charged",
                }),
            }
        }
        _ => Value::Null,
    };
    json!({
        "orderId": a.order_id.as_str(),
        "kind": a.kind.as_str(),
        "period": a.period,
        "amount": a.amount.won(),
        "status": status,
        "approvedAt": a.approved_at.map(time),
        "receiptUrl": a.receipt_url,
        "failure": failure,
        "refunded": a.refunded.won(),
    })
}

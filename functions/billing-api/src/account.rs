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
            "there is no active subscription",
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
            "there is no active subscription",
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
    let current_period = match (sub.anchor(), sub.current_period_end(), sub.next_period()) {
        (Some(anchor), Some(end), next) if next > 0 => json!({
            "start": time(period_start(anchor, next - 1)),
            "end": time(end),
        }),
        _ => Value::Null,
    };
    let next_charge_at = match sub.status() {
        Status::Active if !sub.cancel_at_period_end() && sub.on_hold().is_none() => {
            sub.next_charge_at().map(time)
        }
        Status::PastDue
            if sub.on_hold().is_none() && !sub.dunning().is_some_and(|d| d.card_unusable) =>
        {
            sub.next_charge_at().map(time)
        }
        _ => None,
    };
    let usable = matches!(sub.status(), Status::Active | Status::PastDue);
    let card = match (&sub.card_number_masked(), &sub.billing_key()) {
        (Some(number), Some(_)) => json!({ "company": sub.card_company(), "number": number }),
        _ => Value::Null,
    };
    let past_due = match (&sub.status(), &sub.dunning()) {
        (Status::PastDue, Some(d)) => json!({
            "since": time(d.started_at),
            "nextRetryAt": next_charge_at,
            "lastCode": d.last_code,
            "needsNewCard": d.card_unusable,
        }),
        _ => Value::Null,
    };
    json!({
        "status": sub.status().as_str(),
        "cancelAtPeriodEnd": sub.cancel_at_period_end(),
        "currentPeriod": current_period,
        "nextChargeAt": next_charge_at,
        "credits": if usable { sub.credits() } else { 0 },
        "card": card,
        "plan": plan_json,
        "pastDue": past_due,
        "withdrawable": null,
        "withdrawalPending": sub.withdrawal().is_some(),
    })
}

/// One ledger entry as the app sees it. A refusal on our side is never shown by its code.
fn payment_json(a: &ChargeAttempt) -> Value {
    let status = match a.status() {
        AttemptStatus::Done if a.refunded() >= a.amount() => "CANCELED",
        AttemptStatus::Done if a.refunded().won() > 0 => "PARTIAL_CANCELED",
        AttemptStatus::Done => "DONE",
        AttemptStatus::Declined => "DECLINED",
        AttemptStatus::NotCharged => "NOT_CHARGED",
        AttemptStatus::Pending | AttemptStatus::Unknown | AttemptStatus::Review => "UNKNOWN",
    };
    let failure = match a.status() {
        AttemptStatus::Declined => json!({
            "code": a.error_code().unwrap_or("DECLINED"),
            "message": a.error_message().unwrap_or_default(),
        }),
        AttemptStatus::NotCharged => {
            let customers = a.error_code().filter(|c| {
                toss::class::class_of_code(toss::Operation::Charge, &toss::ErrorCode::parse(c))
                    == toss::ErrorClass::CustomerData
            });
            match customers {
                Some(code) => json!({
                    "code": code,
                    "message": a.error_message().unwrap_or_default(),
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
        "orderId": a.order_id().as_str(),
        "kind": a.kind().as_str(),
        "period": a.period(),
        "amount": a.amount().won(),
        "status": status,
        "approvedAt": a.approved_at().map(time),
        "receiptUrl": a.receipt_url(),
        "failure": failure,
        "refunded": a.refunded().won(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use auth_issuer::{IssuerConfig, RunningIssuer, TokenRequest};
    use axum::http::Method;
    use billing::{PaymentsPage, Withdrawable};
    use domain::{
        AttemptKind, BillingKey, CustomerKey, DeclineKind, Krw, Lease, PaymentKey, PaymentsCursor,
        SubscriptionId,
    };
    use lambda_http::Body;
    use store::UserView;

    use super::*;
    use crate::capability::fake::{self, Fake};

    /// A signed-in caller: the local issuer, and a request as `user_alice` would send it.
    struct Caller {
        issuer: RunningIssuer,
        token: String,
    }

    impl Caller {
        async fn alice() -> Self {
            let issuer = auth_issuer::spawn(IssuerConfig::default()).await.unwrap();
            let token = issuer
                .issuer()
                .mint(&TokenRequest::for_user("user_alice"))
                .unwrap();
            Self { issuer, token }
        }

        /// `method path` with a JSON `body` (none when `None`) and `idempotency-key` if given.
        async fn send(
            &self,
            fake: Fake,
            method: Method,
            path: &str,
            key: Option<&str>,
            body: Option<&str>,
        ) -> (StatusCode, HeaderMap, Value) {
            let mut request = lambda_http::http::Request::builder()
                .method(method)
                .uri(path)
                .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
            if let Some(key) = key {
                request = request.header("idempotency-key", key);
            }
            let body = match body {
                Some(json) => {
                    request = request.header(header::CONTENT_TYPE, "application/json");
                    Body::Text(json.to_owned())
                }
                None => Body::Empty,
            };
            let response =
                fake::send(fake, self.issuer.issuer_url(), request.body(body).unwrap()).await;
            let status = response.status();
            let headers = response.headers().clone();
            (status, headers, fake::json(response).await)
        }
    }

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
    }

    fn subscription_id() -> SubscriptionId {
        SubscriptionId::parse("01JD0000000000000000000000").unwrap()
    }

    /// A subscription whose first month was paid on Dec 1 with `plan`.
    fn active(plan: &Plan) -> Subscription {
        let mut sub = Subscription::new(
            subscription_id(),
            CustomerKey::parse("ck_alice_0001").unwrap(),
            BillingKey::parse("bk_alice_secret").unwrap(),
            Some("43301234****123*".into()),
            at("2026-12-01T00:00:00Z"),
        );
        sub.apply_success(0, at("2026-12-01T00:00:00Z"), plan);
        sub
    }

    fn error_code(body: &Value) -> &str {
        body["error"]["code"].as_str().unwrap()
    }

    // GET /v1/subscription

    #[tokio::test]
    async fn a_caller_without_a_subscription_sees_status_none_and_no_withdrawal_is_looked_up() {
        let caller = Caller::alice().await;
        let fake = Fake::new();
        fake.account.answer(Ok(UserView {
            customer_key: None,
            subscription: None,
        }));
        let calls = fake.calls.clone();

        let (status, _, body) = caller
            .send(fake, Method::GET, "/v1/subscription", None, None)
            .await;

        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "none");
        assert_eq!(body["credits"], 0);
        assert_eq!(body["withdrawable"], Value::Null);
        assert_eq!(fake::calls(&calls), ["account user_alice"]);
    }

    #[tokio::test]
    async fn an_active_subscriber_sees_its_credits_card_next_charge_and_withdrawal_terms() {
        let caller = Caller::alice().await;
        let fake = Fake::new();
        let plan = fake.settings.plan.clone();
        fake.account.answer(Ok(UserView {
            customer_key: CustomerKey::parse("ck_alice_0001").ok(),
            subscription: Some(active(&plan)),
        }));
        fake.withdrawable.answer(Ok(Some(Withdrawable {
            amount: plan.amount(),
            until: at("2026-12-08T00:00:00Z"),
        })));
        let calls = fake.calls.clone();

        let (status, _, body) = caller
            .send(fake, Method::GET, "/v1/subscription", None, None)
            .await;

        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "active");
        assert_eq!(body["credits"], plan.credits());
        assert_eq!(body["cancelAtPeriodEnd"], false);
        assert_eq!(body["card"]["number"], "43301234****123*");
        assert_eq!(body["currentPeriod"]["start"], "2026-12-01T00:00:00Z");
        assert!(body["nextChargeAt"].is_string(), "{body}");
        assert_eq!(
            body["withdrawable"],
            json!({"amount": plan.amount().won(), "until": "2026-12-08T00:00:00Z"})
        );
        assert!(!body.to_string().contains("bk_alice_secret"), "{body}");
        assert_eq!(
            fake::calls(&calls),
            [
                "account user_alice".to_owned(),
                format!("withdrawable {}", subscription_id().as_str())
            ]
        );
    }

    #[tokio::test]
    async fn a_past_due_subscriber_sees_when_the_card_is_tried_again() {
        let caller = Caller::alice().await;
        let fake = Fake::new();
        let mut sub = active(&fake.settings.plan);
        sub.apply_decline(
            1,
            DeclineKind::Soft,
            "REJECT_CARD_COMPANY",
            at("2027-01-01T00:00:00Z"),
            &fake.settings.dunning,
        );
        fake.account.answer(Ok(UserView {
            customer_key: None,
            subscription: Some(sub),
        }));
        fake.withdrawable.answer(Ok(None));

        let (status, _, body) = caller
            .send(fake, Method::GET, "/v1/subscription", None, None)
            .await;

        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "past_due");
        assert_eq!(body["pastDue"]["lastCode"], "REJECT_CARD_COMPANY");
        assert_eq!(body["pastDue"]["needsNewCard"], false);
        assert_eq!(body["pastDue"]["since"], "2027-01-01T00:00:00Z");
        assert_eq!(body["pastDue"]["nextRetryAt"], body["nextChargeAt"]);
        assert!(body["nextChargeAt"].is_string(), "{body}");
        assert_eq!(body["withdrawable"], Value::Null);
    }

    #[tokio::test]
    async fn a_subscription_read_failing_on_our_side_is_a_bare_500() {
        let caller = Caller::alice().await;
        for withdrawable_fails in [false, true] {
            let fake = Fake::new();
            if withdrawable_fails {
                fake.account.answer(Ok(UserView {
                    customer_key: None,
                    subscription: Some(active(&fake.settings.plan)),
                }));
                fake.withdrawable.answer(Err(fake::our_fault()));
            } else {
                fake.account.answer(Err(fake::our_fault()));
            }

            let (status, _, body) = caller
                .send(fake, Method::GET, "/v1/subscription", None, None)
                .await;

            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(error_code(&body), "INTERNAL");
            assert!(!body.to_string().contains("UNAUTHORIZED_KEY"), "{body}");
        }
    }

    // POST /v1/credits/consume

    async fn consume(
        caller: &Caller,
        outcome: Result<ConsumeOutcome, billing::Error>,
    ) -> (StatusCode, HeaderMap, Value, Vec<String>) {
        let fake = Fake::new();
        fake.consume_credits.answer(outcome);
        fake.remember_consume_answer.answer(Ok(()));
        let calls = fake.calls.clone();
        let (status, headers, body) = caller
            .send(
                fake,
                Method::POST,
                "/v1/credits/consume",
                Some("key-1"),
                Some(r#"{"amount":3}"#),
            )
            .await;
        (status, headers, body, fake::calls(&calls))
    }

    #[tokio::test]
    async fn a_consumption_answers_what_was_spent_and_what_is_left_and_keeps_that_answer_for_replays()
     {
        let caller = Caller::alice().await;

        let (status, _, body, calls) = consume(
            &caller,
            Ok(ConsumeOutcome::Consumed {
                consumed: 3,
                credits: 27,
            }),
        )
        .await;

        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"consumed": 3, "credits": 27}));
        assert_eq!(
            calls,
            [
                "consume_credits user_alice 3 key=key-1",
                r#"remember_consume_answer user_alice key=key-1 200 {"consumed":3,"credits":27}"#
            ]
        );
    }

    #[tokio::test]
    async fn a_consumption_whose_answer_could_not_be_kept_still_answers_200() {
        let caller = Caller::alice().await;
        let fake = Fake::new();
        fake.consume_credits.answer(Ok(ConsumeOutcome::Consumed {
            consumed: 3,
            credits: 27,
        }));
        fake.remember_consume_answer.answer(Err(fake::our_fault()));

        let (status, _, body) = caller
            .send(
                fake,
                Method::POST,
                "/v1/credits/consume",
                Some("key-1"),
                Some(r#"{"amount":3}"#),
            )
            .await;

        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"consumed": 3, "credits": 27}));
    }

    #[tokio::test]
    async fn a_replayed_consumption_gets_the_first_answer_as_it_was_given() {
        let caller = Caller::alice().await;
        let first = r#"{"error":{"code":"INSUFFICIENT_CREDITS","credits":2}}"#;

        let (status, headers, body, calls) = consume(
            &caller,
            Ok(ConsumeOutcome::Replay {
                status: 409,
                body: first.to_owned(),
            }),
        )
        .await;

        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(body, serde_json::from_str::<Value>(first).unwrap());
        assert_eq!(calls.len(), 1, "a replay is not kept again: {calls:?}");
    }

    #[tokio::test]
    async fn every_refused_consumption_has_its_status_and_error_code() {
        let caller = Caller::alice().await;
        for (outcome, status, code) in [
            (
                ConsumeOutcome::KeyReused,
                StatusCode::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
            ),
            (
                ConsumeOutcome::Insufficient { credits: 2 },
                StatusCode::CONFLICT,
                "INSUFFICIENT_CREDITS",
            ),
            (
                ConsumeOutcome::NoActiveSubscription,
                StatusCode::CONFLICT,
                "NO_ACTIVE_SUBSCRIPTION",
            ),
            (
                ConsumeOutcome::Busy,
                StatusCode::SERVICE_UNAVAILABLE,
                "BUSY",
            ),
            (
                ConsumeOutcome::WithdrawalPending,
                StatusCode::CONFLICT,
                "WITHDRAWAL_PENDING",
            ),
        ] {
            let (got, headers, body, calls) = consume(&caller, Ok(outcome.clone())).await;

            assert_eq!((got, error_code(&body)), (status, code), "{outcome:?}");
            assert_eq!(calls.len(), 1, "nothing kept for a refusal: {calls:?}");
            match outcome {
                ConsumeOutcome::Insufficient { .. } => assert_eq!(body["error"]["credits"], 2),
                ConsumeOutcome::Busy => assert_eq!(headers[header::RETRY_AFTER], "5"),
                _ => {}
            }
        }
        let (status, _, body, _) = consume(&caller, Err(fake::our_fault())).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL")
        );
    }

    // POST /v1/subscription/cancel and /resume

    #[tokio::test]
    async fn a_cancel_or_resume_answers_the_subscription_as_it_is_now() {
        let caller = Caller::alice().await;
        let plan = Fake::new().settings.plan;
        let mut canceling = active(&plan);
        canceling.schedule_cancel(at("2026-12-02T00:00:00Z"));
        let mut resumed = canceling.clone();
        resumed.resume(at("2026-12-03T00:00:00Z"));

        let fake = Fake::new();
        fake.cancel_subscription
            .answer(Ok(ChangeOutcome::Changed(Box::new(canceling))));
        let calls = fake.calls.clone();
        let (status, _, body) = caller
            .send(fake, Method::POST, "/v1/subscription/cancel", None, None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "active");
        assert_eq!(body["cancelAtPeriodEnd"], true);
        assert_eq!(body["nextChargeAt"], Value::Null);
        assert_eq!(fake::calls(&calls), ["cancel_subscription user_alice"]);

        let fake = Fake::new();
        fake.resume_subscription
            .answer(Ok(ChangeOutcome::Changed(Box::new(resumed))));
        let calls = fake.calls.clone();
        let (status, _, body) = caller
            .send(fake, Method::POST, "/v1/subscription/resume", None, None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["cancelAtPeriodEnd"], false);
        assert!(body["nextChargeAt"].is_string(), "{body}");
        assert_eq!(fake::calls(&calls), ["resume_subscription user_alice"]);
    }

    #[tokio::test]
    async fn every_refused_cancel_or_resume_is_a_409_with_its_code() {
        let caller = Caller::alice().await;
        for (path, use_case) in [
            ("/v1/subscription/cancel", "cancel_subscription"),
            ("/v1/subscription/resume", "resume_subscription"),
        ] {
            // Only the route's own use case has an answer: reaching the other one panics.
            let fake_answering = |answer: Result<ChangeOutcome, billing::Error>| {
                let fake = Fake::new();
                if use_case == "cancel_subscription" {
                    fake.cancel_subscription.answer(answer);
                } else {
                    fake.resume_subscription.answer(answer);
                }
                fake
            };
            for (outcome, code, message) in [
                (
                    ChangeOutcome::NoActiveSubscription,
                    "NO_ACTIVE_SUBSCRIPTION",
                    "there is no active subscription",
                ),
                (
                    ChangeOutcome::NotResumable,
                    "NOT_RESUMABLE",
                    "only a subscription canceled at period end can be resumed, while the period lasts",
                ),
                (
                    ChangeOutcome::PaymentPending,
                    "PAYMENT_PENDING",
                    "a payment of this subscription is being settled; try again in a few minutes",
                ),
            ] {
                let fake = fake_answering(Ok(outcome));
                let calls = fake.calls.clone();

                let (status, _, body) = caller.send(fake, Method::POST, path, None, None).await;

                assert_eq!(
                    (status, error_code(&body), body["error"]["message"].as_str()),
                    (StatusCode::CONFLICT, code, Some(message)),
                    "{path}"
                );
                assert_eq!(fake::calls(&calls), [format!("{use_case} user_alice")]);
            }
            let fake = fake_answering(Err(fake::our_fault()));
            let (status, _, _) = caller.send(fake, Method::POST, path, None, None).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        }
    }

    // POST /v1/subscription/cancel {"mode":"withdraw"}

    async fn withdraw(
        caller: &Caller,
        outcome: Result<WithdrawOutcome, billing::Error>,
    ) -> (StatusCode, Value) {
        let fake = Fake::new();
        fake.withdraw.answer(outcome);
        let calls = fake.calls.clone();
        let (status, _, body) = caller
            .send(
                fake,
                Method::POST,
                "/v1/subscription/cancel",
                None,
                Some(r#"{"mode":"withdraw"}"#),
            )
            .await;
        assert_eq!(fake::calls(&calls), ["withdraw user_alice"]);
        (status, body)
    }

    fn refund(amount: u64) -> domain::Refund {
        domain::Refund::claim(
            subscription_id(),
            0,
            0,
            PaymentKey::parse("tgen_20261201000000abcde").unwrap(),
            1,
            Krw::new(amount),
            "청약철회",
            domain::RefundBy::Withdrawal,
            at("2026-12-02T00:00:00Z"),
        )
    }

    #[tokio::test]
    async fn a_withdrawal_toss_refunded_answers_the_ended_subscription_and_the_refund() {
        let caller = Caller::alice().await;
        let plan = Fake::new().settings.plan;
        let mut ended = active(&plan);
        ended.cancel(domain::CancelReason::Customer, at("2026-12-02T00:00:00Z"));
        let mut done = refund(plan.amount().won());
        done.mark_done(
            "tx_0001".into(),
            at("2026-12-02T00:00:00Z"),
            at("2026-12-02T00:00:00Z"),
        );

        let (status, body) = withdraw(
            &caller,
            Ok(WithdrawOutcome::Withdrawn {
                subscription: Box::new(ended.clone()),
                refund: Some(Box::new(RefundOutcome::Refunded {
                    refund: done,
                    ended: true,
                    credits_taken: u64::from(plan.credits()),
                })),
            }),
        )
        .await;

        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "canceled");
        assert_eq!(body["credits"], 0);
        assert_eq!(
            body["refund"],
            json!({"status": "DONE", "amount": plan.amount().won()})
        );

        // Asked again after it was done: the subscription, without a refund of this request.
        let (status, body) = withdraw(
            &caller,
            Ok(WithdrawOutcome::Withdrawn {
                subscription: Box::new(ended),
                refund: None,
            }),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "canceled");
        assert_eq!(body["refund"], Value::Null);
    }

    #[tokio::test]
    async fn a_withdrawal_waiting_for_toss_is_a_202_with_a_pending_refund() {
        let caller = Caller::alice().await;
        let mut locked = active(&Fake::new().settings.plan);
        locked.begin_withdrawal(&refund(3900).key(), at("2026-12-02T00:00:00Z"));

        let (status, body) = withdraw(
            &caller,
            Ok(WithdrawOutcome::Pending {
                subscription: Box::new(locked),
            }),
        )
        .await;

        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(body["status"], "active");
        assert_eq!(body["withdrawalPending"], true);
        assert_eq!(body["refund"], json!({"status": "PENDING"}));
    }

    #[tokio::test]
    async fn every_refused_withdrawal_is_a_409_with_its_code_and_no_toss_code() {
        let caller = Caller::alice().await;
        for (outcome, code) in [
            (
                WithdrawOutcome::Refused {
                    code: "NOT_CANCELABLE_PAYMENT".into(),
                },
                "REFUND_REFUSED",
            ),
            (WithdrawOutcome::NotWithdrawable, "NOT_WITHDRAWABLE"),
            (
                WithdrawOutcome::NoActiveSubscription,
                "NO_ACTIVE_SUBSCRIPTION",
            ),
        ] {
            let (status, body) = withdraw(&caller, Ok(outcome)).await;

            assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, code));
            assert!(
                !body.to_string().contains("NOT_CANCELABLE_PAYMENT"),
                "{body}"
            );
        }
        let (status, body) = withdraw(&caller, Err(fake::our_fault())).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL")
        );
    }

    // GET /v1/payments

    #[tokio::test]
    async fn payments_are_listed_as_the_app_sees_them_with_the_next_cursor() {
        // GIVEN one paid, one partly refunded, one declined, one not charged on our side, one
        // not charged for the customer's data, and one still unknown
        let caller = Caller::alice().await;
        let fake = Fake::new();
        let amount = fake.settings.plan.amount();
        let now = at("2026-12-01T00:00:00Z");
        let attempt = |period: u32| {
            ChargeAttempt::claim(
                subscription_id(),
                CustomerKey::parse("ck_alice_0001").unwrap(),
                period,
                0,
                amount,
                AttemptKind::Renewal,
                Lease {
                    owner: "test".into(),
                    until: now,
                },
                now,
            )
        };
        let mut paid = attempt(5);
        paid.mark_done(PaymentKey::parse("tgen_paid").unwrap(), now, now);
        let mut done = attempt(4);
        done.mark_done(PaymentKey::parse("tgen_partly").unwrap(), now, now);
        let partly = domain::ChargeAttempt::restore(domain::ChargeAttemptRecord {
            refunded: Krw::new(1000),
            ..done.to_record()
        });
        let mut declined = attempt(3);
        declined.mark_declined("REJECT_CARD_COMPANY", "카드사 거절", now);
        let mut ours = attempt(2);
        ours.mark_not_charged("UNAUTHORIZED_KEY", "인증되지 않은 시크릿 키", now);
        let mut theirs = attempt(1);
        theirs.mark_not_charged("INVALID_EMAIL", "이메일 형식 오류", now);
        let mut unknown = attempt(0);
        unknown.mark_unknown("NETWORK", "timeout", now);
        fake.payments.answer(Ok(PaymentsPage {
            payments: vec![paid, partly, declined, ours, theirs, unknown],
            next: Some(PaymentsCursor {
                subscription: 2,
                after: Some((0, 0)),
            }),
        }));
        let calls = fake.calls.clone();

        // WHEN the app lists a page after a cursor
        let (status, _, body) = caller
            .send(
                fake,
                Method::GET,
                "/v1/payments?limit=6&cursor=2.6.0",
                None,
                None,
            )
            .await;

        // THEN each entry shows its status, and a refusal on our side never its code
        assert_eq!(status, StatusCode::OK);
        let statuses: Vec<&str> = body["payments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses,
            [
                "DONE",
                "PARTIAL_CANCELED",
                "DECLINED",
                "NOT_CHARGED",
                "NOT_CHARGED",
                "UNKNOWN"
            ]
        );
        let p = &body["payments"];
        assert_eq!(p[0]["amount"], amount.won());
        assert_eq!(p[0]["approvedAt"], "2026-12-01T00:00:00Z");
        assert_eq!(p[0]["failure"], Value::Null);
        assert_eq!(p[1]["refunded"], 1000);
        assert_eq!(p[2]["failure"]["code"], "REJECT_CARD_COMPANY");
        assert_eq!(p[3]["failure"]["code"], "SERVICE_ERROR");
        assert!(!body.to_string().contains("UNAUTHORIZED_KEY"), "{body}");
        assert_eq!(p[4]["failure"]["code"], "INVALID_EMAIL");
        assert_eq!(p[5]["failure"], Value::Null);
        assert_eq!(body["nextCursor"], "2.0.0");
        // AND the use case was asked for the caller's page after the cursor
        assert_eq!(
            fake::calls(&calls),
            [format!(
                "payments user_alice 6 {:?}",
                Some(PaymentsCursor {
                    subscription: 2,
                    after: Some((6, 0))
                })
            )]
        );
    }

    #[tokio::test]
    async fn a_payments_read_failing_on_our_side_is_a_bare_500() {
        let caller = Caller::alice().await;
        let fake = Fake::new();
        fake.payments.answer(Err(fake::our_fault()));

        let (status, _, body) = caller
            .send(fake, Method::GET, "/v1/payments", None, None)
            .await;

        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL")
        );
    }
}

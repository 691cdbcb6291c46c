//! The emulated Toss endpoints under `/v1`, and the pipeline every call goes through:
//!
//! 1. authentication (`401`/`400` answers are not stored for idempotency)
//! 2. billing contract (`NOT_SUPPORTED_METHOD` for widget keys and keys without a contract)
//! 3. `Idempotency-Key` (POST only): replay, `409` in flight, or reserve
//! 4. latency knob
//! 5. `TossPayments-Test-Code` (before any payload validation)
//! 6. injected faults (with `commit: false` they answer instead of the operation)
//! 7. validation and the operation itself; the answer is stored for the idempotency key
//! 8. injected faults with `commit: true` replace the answer after the operation

use std::io;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::stream;
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use crate::auth;
use crate::config::{KeyError, KeyKind, key_kind};
use crate::errors::{self, ApiError};
use crate::faults::{ConnectionKill, Endpoint, FaultAction, FaultRule, FaultTarget};
use crate::idempotency::{Admission, MAX_KEY_CHARS, RecordKey, StoredResponse};
use crate::state::{Caller, CancelRequest, ChargeRequest, Sandbox, valid_customer_key};

pub const TEST_CODE_HEADER: &str = "tosspayments-test-code";
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

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
}

/// The parts of a request the pipeline needs.
#[derive(Debug)]
struct Call {
    endpoint: Endpoint,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
    kill: Option<ConnectionKill>,
}

/// A request's parts before its endpoint is known: every handler takes this as its last
/// argument (after `State` and `Path`) and names its endpoint with [`Incoming::call`].
#[derive(Debug)]
struct Incoming {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
    kill: Option<ConnectionKill>,
}

impl<S: Send + Sync> FromRequest<S> for Incoming {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let method = request.method().clone();
        let path = percent_decode_str(request.uri().path())
            .decode_utf8_lossy()
            .into_owned();
        let headers = request.headers().clone();
        let kill = request.extensions().get::<ConnectionKill>().cloned();
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            method,
            path,
            headers,
            body,
            kill,
        })
    }
}

impl Incoming {
    fn call(self, endpoint: Endpoint) -> Call {
        Call {
            endpoint,
            method: self.method,
            path: self.path,
            headers: self.headers,
            body: self.body,
            kill: self.kill,
        }
    }
}

/// What an operation answers on success.
#[derive(Debug)]
enum Success {
    Json(String),
    Empty,
}

type Outcome = Result<Success, ApiError>;

fn json<T: serde::Serialize>(value: &T) -> Outcome {
    serde_json::to_string(value)
        .map(Success::Json)
        .map_err(|_| ApiError::of("FAILED_INTERNAL_SYSTEM_PROCESSING"))
}

async fn issue(State(sandbox): State<Sandbox>, incoming: Incoming) -> Response {
    run(
        sandbox,
        incoming.call(Endpoint::Issue),
        |sandbox, caller, body| {
            let object = json_object(body)?;
            let auth_key = required_str(&object, "authKey")?;
            if auth_key.is_empty() || auth_key.chars().count() > 300 {
                return Err(ApiError::invalid_request(
                    "authKey는 1자 이상 300자 이하여야 합니다.",
                ));
            }
            let customer_key = required_str(&object, "customerKey")?;
            if !valid_customer_key(customer_key, 300) {
                return Err(ApiError::of("INVALID_CUSTOMER_KEY"));
            }
            json(&sandbox.issue(caller, auth_key, customer_key)?)
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

/// Releases an idempotency reservation unless an answer was stored (e.g. when the client
/// hangs up during injected latency and the handler future is dropped).
struct Reservation {
    sandbox: Sandbox,
    key: RecordKey,
    token: u64,
    settled: bool,
}

impl Reservation {
    fn complete(mut self, response: StoredResponse) {
        self.sandbox.complete(&self.key, self.token, response);
        self.settled = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled {
            self.sandbox.release(&self.key, self.token);
        }
    }
}

async fn run<F>(sandbox: Sandbox, call: Call, operation: F) -> Response
where
    F: FnOnce(&Sandbox, &Caller, &Bytes) -> Outcome,
{
    let caller = match authenticate(&sandbox, &call.headers) {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
    };
    if call.endpoint.is_billing() && !caller.billing_contract {
        return ApiError::of("NOT_SUPPORTED_METHOD").into_response();
    }
    let facts = BodyFacts::read(&call.body);
    if call.endpoint == Endpoint::Charge {
        sandbox.note_charge_request(facts.order_id.as_deref());
    }

    let reservation = if call.method == Method::POST {
        match reserve(&sandbox, &call, &caller) {
            Gate::Proceed(reservation) => reservation,
            Gate::Answer(stored) => return respond(&stored),
        }
    } else {
        None
    };

    if let Some(delay) = sandbox.latency(call.endpoint) {
        tokio::time::sleep(delay).await;
    }

    if let Some(code) = call.headers.get(TEST_CODE_HEADER) {
        let error = test_code_error(code.to_str().unwrap_or_default());
        let stored = stored(&Err(error));
        if let Some(reservation) = reservation {
            reservation.complete(stored.clone());
        }
        return respond(&stored);
    }

    // A look-up by order id carries its order in the path, not in a body.
    let path_order_id = (call.endpoint == Endpoint::GetPaymentByOrderId)
        .then(|| call.path.rsplit('/').next())
        .flatten();
    let fault = sandbox.draw_fault(FaultTarget {
        endpoint: call.endpoint,
        customer_key: facts.customer_key.as_deref(),
        order_id: facts.order_id.as_deref().or(path_order_id),
    });
    if let Some(rule) = fault.as_ref().filter(|rule| !rule.commit) {
        tracing::info!(
            endpoint = call.endpoint.name(),
            "injected fault before the operation"
        );
        // dropping the reservation releases it: nothing happened, a retry runs afresh
        drop(reservation);
        return fault_response(rule, None, call.kill).await;
    }

    let outcome = operation(&sandbox, &caller, &call.body);
    let stored = stored(&outcome);
    if let Some(reservation) = reservation {
        reservation.complete(stored.clone());
    }
    match fault {
        Some(rule) => {
            tracing::info!(
                endpoint = call.endpoint.name(),
                "injected fault after the operation"
            );
            fault_response(&rule, Some(&stored), call.kill).await
        }
        None => respond(&stored),
    }
}

fn authenticate(sandbox: &Sandbox, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let secret_key = auth::secret_key(headers)?;
    match key_kind(&secret_key) {
        Ok(KeyKind::Api | KeyKind::Widget) => {}
        Err(KeyError::Live) => {
            return Err(ApiError::with_message(
                "UNAUTHORIZED_KEY",
                "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다. (sandbox: live keys are refused)",
            ));
        }
        Err(_) => return Err(ApiError::of("UNAUTHORIZED_KEY")),
    }
    sandbox
        .caller(&secret_key)
        .ok_or_else(|| ApiError::of("UNAUTHORIZED_KEY"))
}

/// The idempotency gate's verdict.
enum Gate {
    /// Go on; `Some` holds a reservation to settle.
    Proceed(Option<Reservation>),
    /// Answer this now (invalid key, replay, in flight).
    Answer(StoredResponse),
}

fn error_answer(code: &str) -> Gate {
    Gate::Answer(stored(&Err(ApiError::of(code))))
}

fn reserve(sandbox: &Sandbox, call: &Call, caller: &Caller) -> Gate {
    let Some(value) = call.headers.get(IDEMPOTENCY_HEADER) else {
        return Gate::Proceed(None);
    };
    let Ok(idempotency_key) = value.to_str() else {
        return error_answer("INVALID_IDEMPOTENCY_KEY");
    };
    if idempotency_key.is_empty() {
        return Gate::Proceed(None);
    }
    if idempotency_key.chars().count() > MAX_KEY_CHARS {
        return error_answer("INVALID_IDEMPOTENCY_KEY");
    }
    let key = RecordKey {
        secret_key: caller.secret_key.clone(),
        method: call.method.to_string(),
        path: call.path.clone(),
        idempotency_key: idempotency_key.to_owned(),
    };
    match sandbox.admit(key.clone(), &caller.mid, call.endpoint) {
        Admission::Reserved { token } => Gate::Proceed(Some(Reservation {
            sandbox: sandbox.clone(),
            key,
            token,
            settled: false,
        })),
        Admission::Replay(response) => Gate::Answer(response),
        Admission::InFlight => error_answer("IDEMPOTENT_REQUEST_PROCESSING"),
    }
}

fn test_code_error(code: &str) -> ApiError {
    let code = code.trim();
    match errors::lookup(code) {
        Some(_) => ApiError::of(code),
        None => ApiError::of("INVALID_TEST_CODE"),
    }
}

fn stored(outcome: &Outcome) -> StoredResponse {
    match outcome {
        Ok(Success::Json(body)) => StoredResponse {
            status: 200,
            body: Some(body.clone()),
        },
        Ok(Success::Empty) => StoredResponse {
            status: 200,
            body: None,
        },
        Err(error) => StoredResponse {
            status: error.status,
            body: Some(error.body()),
        },
    }
}

fn respond(stored: &StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match &stored.body {
        Some(body) => (status, [(CONTENT_TYPE, "application/json")], body.clone()).into_response(),
        None => (status, Body::empty()).into_response(),
    }
}

/// About half of a body, cut on a character boundary.
fn half_of(body: &str) -> String {
    let target = body.len() / 2;
    let cut = (0..=target)
        .rev()
        .find(|i| body.is_char_boundary(*i))
        .unwrap_or(0);
    body.get(..cut).unwrap_or_default().to_owned()
}

const BROKEN_JSON: &str = r#"{"mId":"tosspayments","version":"2022-11-16","status":"#;

async fn fault_response(
    rule: &FaultRule,
    real: Option<&StoredResponse>,
    kill: Option<ConnectionKill>,
) -> Response {
    let real_body = real.and_then(|r| r.body.as_deref());
    match &rule.action {
        FaultAction::Error {
            status,
            code,
            message,
        } => {
            let base = ApiError::of(code);
            ApiError::custom(
                status.unwrap_or(base.status),
                code.clone(),
                message.clone().unwrap_or(base.message),
            )
            .into_response()
        }
        FaultAction::MalformedBody { status, body } => {
            let status = status
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK);
            let body = body
                .clone()
                .or_else(|| real_body.map(half_of))
                .unwrap_or_else(|| BROKEN_JSON.to_owned());
            (status, [(CONTENT_TYPE, "application/json")], body).into_response()
        }
        FaultAction::DropConnection => match kill {
            Some(kill) => {
                kill.fire();
                // the connection task drops this future together with the connection
                std::future::pending::<Response>().await
            }
            None => truncated(real, real_body),
        },
        FaultAction::TruncateBody => truncated(real, real_body),
    }
}

/// Headers and part of the body, then a body error: hyper closes the connection mid-body.
fn truncated(real: Option<&StoredResponse>, real_body: Option<&str>) -> Response {
    let status = real
        .and_then(|r| StatusCode::from_u16(r.status).ok())
        .unwrap_or(StatusCode::OK);
    let partial = real_body
        .map(half_of)
        .unwrap_or_else(|| BROKEN_JSON.to_owned());
    let chunks: Vec<Result<Bytes, io::Error>> = vec![
        Ok(Bytes::from(partial)),
        Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "sandbox fault: body truncated",
        )),
    ];
    let mut response = Response::new(Body::from_stream(stream::iter(chunks)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Lenient reading of `customerKey` and `orderId` for counters and fault filters.
#[derive(Debug, Default)]
struct BodyFacts {
    customer_key: Option<String>,
    order_id: Option<String>,
}

impl BodyFacts {
    fn read(body: &Bytes) -> Self {
        let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
            return Self::default();
        };
        let text = |name: &str| object.get(name).and_then(Value::as_str).map(str::to_owned);
        Self {
            customer_key: text("customerKey"),
            order_id: text("orderId"),
        }
    }
}

// ----- validation -------------------------------------------------------------------------------

fn json_object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(ApiError::invalid_request(
            "요청 본문이 올바른 JSON 객체가 아닙니다.",
        )),
    }
}

fn present<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).filter(|value| !value.is_null())
}

fn required_str<'a>(object: &'a Map<String, Value>, name: &str) -> Result<&'a str, ApiError> {
    match present(object, name) {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(ApiError::invalid_request(format!(
            "{name}의 형식이 올바르지 않습니다."
        ))),
        None => Err(ApiError::invalid_request(format!(
            "필수 파라미터가 누락되었습니다: {name}"
        ))),
    }
}

fn optional_str<'a>(
    object: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, ApiError> {
    match present(object, name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(ApiError::invalid_request(format!(
            "{name}의 형식이 올바르지 않습니다."
        ))),
    }
}

/// A KRW amount: a JSON integer, or a number with no fractional part (`100.0`).
fn integer(value: &Value, name: &str) -> Result<i64, ApiError> {
    let invalid = || ApiError::invalid_request(format!("{name}은(는) 정수여야 합니다."));
    let Value::Number(number) = value else {
        return Err(invalid());
    };
    if let Some(n) = number.as_i64() {
        return Ok(n);
    }
    match number.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => Ok(f as i64),
        _ => Err(invalid()),
    }
}

fn optional_integer(object: &Map<String, Value>, name: &str) -> Result<Option<i64>, ApiError> {
    present(object, name).map(|v| integer(v, name)).transpose()
}

fn valid_order_id(order_id: &str) -> bool {
    (6..=64).contains(&order_id.len())
        && order_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.chars().count() <= 100
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
}

pub(crate) fn parse_charge(body: &Bytes) -> Result<ChargeRequest, ApiError> {
    let object = json_object(body)?;
    let customer_key = required_str(&object, "customerKey")?;
    if !valid_customer_key(customer_key, 300) {
        return Err(ApiError::of("INVALID_CUSTOMER_KEY"));
    }
    let order_id = required_str(&object, "orderId")?;
    if !valid_order_id(order_id) {
        return Err(ApiError::of("INVALID_ORDER_ID"));
    }
    let order_name = required_str(&object, "orderName")?;
    let order_name_chars = order_name.chars().count();
    if order_name_chars == 0 || order_name_chars > 100 {
        return Err(ApiError::of("INVALID_ORDER_NAME"));
    }
    let amount = match present(&object, "amount") {
        Some(value) => integer(value, "amount")?,
        None => {
            return Err(ApiError::invalid_request(
                "필수 파라미터가 누락되었습니다: amount",
            ));
        }
    };
    if amount <= 0 {
        return Err(ApiError::of("BELOW_ZERO_AMOUNT"));
    }
    if amount < 100 {
        return Err(ApiError::of("BELOW_MINIMUM_AMOUNT"));
    }
    if let Some(email) = optional_str(&object, "customerEmail")?
        && !valid_email(email)
    {
        return Err(ApiError::of("INVALID_EMAIL"));
    }
    if let Some(name) = optional_str(&object, "customerName")?
        && name.chars().count() > 100
    {
        return Err(ApiError::invalid_request(
            "customerName은 100자 이하여야 합니다.",
        ));
    }
    let tax_free_amount = optional_integer(&object, "taxFreeAmount")?.unwrap_or(0);
    let tax_exemption_amount = optional_integer(&object, "taxExemptionAmount")?.unwrap_or(0);
    if tax_free_amount < 0
        || tax_exemption_amount < 0
        || tax_free_amount + tax_exemption_amount > amount
    {
        return Err(ApiError::invalid_request(
            "면세 금액은 0 이상, 결제 금액 이하여야 합니다.",
        ));
    }
    let installment_months = optional_integer(&object, "cardInstallmentPlan")?.unwrap_or(0);
    if !(installment_months == 0 || (2..=12).contains(&installment_months)) {
        return Err(ApiError::of("INVALID_CARD_INSTALLMENT_PLAN"));
    }
    if installment_months >= 2 && amount < 50_000 {
        return Err(ApiError::with_message(
            "INVALID_CARD_INSTALLMENT_PLAN",
            "할부는 50,000원 이상 결제에서만 가능합니다.",
        ));
    }
    Ok(ChargeRequest {
        customer_key: customer_key.to_owned(),
        amount,
        order_id: order_id.to_owned(),
        order_name: order_name.to_owned(),
        tax_free_amount,
        tax_exemption_amount,
        installment_months,
    })
}

pub(crate) fn parse_cancel(body: &Bytes) -> Result<CancelRequest, ApiError> {
    let object = json_object(body)?;
    let cancel_reason = required_str(&object, "cancelReason")?;
    let reason_chars = cancel_reason.chars().count();
    if reason_chars == 0 || reason_chars > 200 {
        return Err(ApiError::invalid_request(
            "cancelReason은 1자 이상 200자 이하여야 합니다.",
        ));
    }
    Ok(CancelRequest {
        cancel_reason: cancel_reason.to_owned(),
        cancel_amount: optional_integer(&object, "cancelAmount")?,
        refundable_amount: optional_integer(&object, "refundableAmount")?,
    })
}

/// Unknown paths under the API answer Toss-style 404 bodies.
pub(crate) async fn not_found() -> Response {
    ApiError::of("NOT_FOUND").into_response()
}

pub(crate) async fn method_not_allowed() -> Response {
    ApiError::of("NOT_FOUND_HTTP_METHOD").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> Bytes {
        Bytes::from(value.to_string())
    }

    fn charge_code(value: Value) -> String {
        parse_charge(&body(value))
            .err()
            .map(|e| e.code)
            .unwrap_or_default()
    }

    fn valid() -> Value {
        serde_json::json!({
            "customerKey": "cust_1", "amount": 4900, "orderId": "order-0001",
            "orderName": "토스 프라임 구독", "unknownField": null
        })
    }

    fn with(field: &str, value: Value) -> Value {
        let mut v = valid();
        v[field] = value;
        v
    }

    #[test]
    fn a_valid_charge_body_with_unknown_fields_is_accepted() {
        assert!(parse_charge(&body(valid())).is_ok());
    }

    #[test]
    fn a_fractional_amount_is_an_invalid_request_but_a_whole_float_is_fine() {
        assert_eq!(
            charge_code(with("amount", serde_json::json!(1500.5))),
            "INVALID_REQUEST"
        );
        assert_eq!(
            charge_code(with("amount", serde_json::json!("4900"))),
            "INVALID_REQUEST"
        );
        assert!(parse_charge(&body(with("amount", serde_json::json!(4900.0)))).is_ok());
    }

    #[test]
    fn amounts_below_one_hundred_and_at_most_zero_have_their_own_codes() {
        assert_eq!(
            charge_code(with("amount", serde_json::json!(99))),
            "BELOW_MINIMUM_AMOUNT"
        );
        assert_eq!(
            charge_code(with("amount", serde_json::json!(0))),
            "BELOW_ZERO_AMOUNT"
        );
        assert_eq!(
            charge_code(with("amount", serde_json::json!(-100))),
            "BELOW_ZERO_AMOUNT"
        );
    }

    #[test]
    fn order_ids_follow_the_six_to_sixty_four_character_charset() {
        assert_eq!(
            charge_code(with("orderId", serde_json::json!("abc12"))),
            "INVALID_ORDER_ID"
        );
        assert_eq!(
            charge_code(with("orderId", serde_json::json!("order=0001"))),
            "INVALID_ORDER_ID"
        );
        assert_eq!(
            charge_code(with("orderId", Value::String("a".repeat(65)))),
            "INVALID_ORDER_ID"
        );
        assert!(parse_charge(&body(with("orderId", Value::String("a".repeat(64))))).is_ok());
    }

    #[test]
    fn order_names_must_have_one_to_one_hundred_characters() {
        assert_eq!(
            charge_code(with("orderName", serde_json::json!(""))),
            "INVALID_ORDER_NAME"
        );
        assert_eq!(
            charge_code(with("orderName", Value::String("가".repeat(101)))),
            "INVALID_ORDER_NAME"
        );
        assert!(parse_charge(&body(with("orderName", Value::String("가".repeat(100))))).is_ok());
    }

    #[test]
    fn a_malformed_email_is_invalid_email() {
        assert_eq!(
            charge_code(with("customerEmail", serde_json::json!("nope"))),
            "INVALID_EMAIL"
        );
        assert!(parse_charge(&body(with("customerEmail", serde_json::json!("a@b.com")))).is_ok());
    }

    #[test]
    fn installments_need_two_to_twelve_months_and_fifty_thousand_won() {
        assert_eq!(
            charge_code(with("cardInstallmentPlan", serde_json::json!(1))),
            "INVALID_CARD_INSTALLMENT_PLAN"
        );
        assert_eq!(
            charge_code(with("cardInstallmentPlan", serde_json::json!(3))),
            "INVALID_CARD_INSTALLMENT_PLAN"
        );
        let mut big = with("cardInstallmentPlan", serde_json::json!(3));
        big["amount"] = serde_json::json!(50_000);
        assert!(parse_charge(&body(big)).is_ok());
    }

    #[test]
    fn a_cancel_needs_a_reason_of_at_most_two_hundred_characters() {
        let code = |v: Value| {
            parse_cancel(&body(v))
                .err()
                .map(|e| e.code)
                .unwrap_or_default()
        };
        assert_eq!(code(serde_json::json!({})), "INVALID_REQUEST");
        assert_eq!(
            code(serde_json::json!({"cancelReason": "가".repeat(201)})),
            "INVALID_REQUEST"
        );
        assert!(parse_cancel(&body(serde_json::json!({"cancelReason": "고객 요청"}))).is_ok());
    }

    #[test]
    fn half_of_a_korean_body_is_cut_on_a_character_boundary() {
        let cut = half_of("가나다라");
        assert!("가나다라".starts_with(&cut));
        assert!(!cut.is_empty());
    }
}

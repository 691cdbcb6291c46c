//! The pipeline every call to an emulated endpoint goes through:
//!
//! 1. authentication (`401`/`400` answers are not stored for idempotency)
//! 2. billing contract (`NOT_SUPPORTED_METHOD` for widget keys and keys without a contract)
//! 3. `Idempotency-Key` (POST only): replay, `409` in flight, or reserve
//! 4. latency knob
//! 5. `TossPayments-Test-Code` (before any payload validation)
//! 6. injected faults (with `commit: false` they answer instead of the operation)
//! 7. validation and the operation itself; the answer is stored for the idempotency key
//! 8. injected faults with `commit: true` replace the answer after the operation

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::auth;
use crate::config::{KeyError, KeyKind, key_kind};
use crate::errors::{self, ApiError};
use crate::fault_answers::fault_response;
use crate::faults::{ConnectionKill, Endpoint, FaultTarget};
use crate::idempotency::{Admission, MAX_KEY_CHARS, RecordKey, StoredResponse};
use crate::state::{Caller, Sandbox};

pub const TEST_CODE_HEADER: &str = "tosspayments-test-code";
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// The parts of a request the pipeline needs.
#[derive(Debug)]
pub(crate) struct Call {
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
pub(crate) struct Incoming {
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
    pub(crate) fn call(self, endpoint: Endpoint) -> Call {
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
pub(crate) enum Success {
    Json(String),
    Empty,
}

pub(crate) type Outcome = Result<Success, ApiError>;

pub(crate) fn json<T: serde::Serialize>(value: &T) -> Outcome {
    serde_json::to_string(value)
        .map(Success::Json)
        .map_err(|_| ApiError::of("FAILED_INTERNAL_SYSTEM_PROCESSING"))
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

pub(crate) async fn run<F>(sandbox: Sandbox, call: Call, operation: F) -> Response
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

pub(crate) fn respond(stored: &StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match &stored.body {
        Some(body) => (status, [(CONTENT_TYPE, "application/json")], body.clone()).into_response(),
        None => (status, Body::empty()).into_response(),
    }
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

//! The HTTP client. One method per Toss endpoint; none of them retries a POST.

use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use domain::{AuthKey, BillingKey, CustomerKey, IdempotencyKey, Krw, OrderId, PaymentKey};
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::billing::Billing;
use crate::code::{ErrorCode, Operation};
use crate::config::{Config, KeyMode, MIN_LIVE_CHARGE_TIMEOUT};
use crate::error::Error;
use crate::path::segment;
use crate::payment::{CancelRequest, ChargeRequest, Payment};

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const TRACE_ID: &str = "x-tosspayments-trace-id";
const SNIPPET_CHARS: usize = 200;

/// A Toss Payments client. Cheap to clone (it shares one connection pool); `Debug` never shows
/// the secret key.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// `api_base` without a trailing slash; paths start with `/`.
    base: String,
    key_mode: KeyMode,
    charge_timeout: Duration,
    request_timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("key_mode", &self.key_mode)
            .field("charge_timeout", &self.charge_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// One HTTP exchange to make.
struct Call<'a> {
    operation: Operation,
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
    idempotency_key: Option<&'a IdempotencyKey>,
    timeout: Duration,
    /// For logs only.
    order_id: Option<&'a str>,
    payment_key: Option<&'a str>,
}

/// Toss's answer, read in full.
struct Answer {
    status: u16,
    body: Vec<u8>,
    trace_id: Option<String>,
}

impl Answer {
    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IssueRequest<'a> {
    auth_key: &'a str,
    customer_key: &'a str,
}

/// A v1 error body `{code, message}`; the v2 shape `{error: {code, message}}` is accepted too.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error: Option<Box<ErrorBody>>,
}

impl Client {
    /// Builds the client and its `Authorization: Basic base64(secret + ":")` header once.
    ///
    /// Refuses an empty key, a base URL that is not http(s), and, for a live key, a charge
    /// timeout under 60 s (Toss says an approval can take that long). Test keys may use short
    /// timeouts so tests and local emulators can exercise the timeout path.
    pub fn new(config: Config) -> Result<Self, Error> {
        let secret = config.trimmed_secret();
        if secret.is_empty() {
            return Err(Error::InvalidConfig("the Toss secret key is empty".into()));
        }
        let key_mode = KeyMode::of(secret);
        if key_mode == KeyMode::Live && config.charge_timeout < MIN_LIVE_CHARGE_TIMEOUT {
            return Err(Error::InvalidConfig(format!(
                "the charge timeout must be at least {}s with a live key",
                MIN_LIVE_CHARGE_TIMEOUT.as_secs()
            )));
        }
        if !matches!(config.api_base.scheme(), "http" | "https")
            || config.api_base.cannot_be_a_base()
        {
            return Err(Error::InvalidConfig(
                "the Toss API base must be an http(s) URL".into(),
            ));
        }

        let token = STANDARD.encode(format!("{secret}:"));
        let mut authorization = HeaderValue::from_str(&format!("Basic {token}")).map_err(|_| {
            Error::InvalidConfig("the Authorization header could not be built".into())
        })?;
        authorization.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, authorization);
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));

        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("toss-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Error::InvalidConfig(format!("the HTTP client could not be built: {e}"))
            })?;

        Ok(Self {
            http,
            base: config.api_base.as_str().trim_end_matches('/').to_owned(),
            key_mode,
            charge_timeout: config.charge_timeout,
            request_timeout: config.request_timeout,
        })
    }

    /// Whether the configured key moves real money.
    pub fn key_mode(&self) -> KeyMode {
        self.key_mode
    }

    /// `POST /v1/billing/authorizations/issue`: exchanges the one-time `authKey` from the
    /// success redirect for a billing key.
    pub async fn issue_billing_key(
        &self,
        auth_key: &AuthKey,
        customer_key: &CustomerKey,
        idempotency_key: &IdempotencyKey,
    ) -> Result<Billing, Error> {
        let operation = Operation::IssueBillingKey;
        let body = to_json(&IssueRequest {
            auth_key: auth_key.expose_secret(),
            customer_key: customer_key.as_str(),
        })?;
        let answer = self
            .execute(Call {
                operation,
                method: Method::POST,
                path: "/v1/billing/authorizations/issue".into(),
                body: Some(body),
                idempotency_key: Some(idempotency_key),
                timeout: self.request_timeout,
                order_id: None,
                payment_key: None,
            })
            .await?;
        decode(operation, answer)
    }

    /// `POST /v1/billing/{billingKey}`: charges the card behind a billing key. Never retried
    /// here: on an unknown outcome the caller looks the order up and retries with the same
    /// `Idempotency-Key` and order id.
    pub async fn charge(
        &self,
        billing_key: &BillingKey,
        request: &ChargeRequest,
        idempotency_key: &IdempotencyKey,
    ) -> Result<Payment, Error> {
        let operation = Operation::Charge;
        let path = format!("/v1/billing/{}", path_segment(billing_key.expose_secret())?);
        let answer = self
            .execute(Call {
                operation,
                method: Method::POST,
                path,
                body: Some(to_json(request)?),
                idempotency_key: Some(idempotency_key),
                timeout: self.charge_timeout,
                order_id: Some(request.order_id.as_str()),
                payment_key: None,
            })
            .await?;
        decode(operation, answer)
    }

    /// `GET /v1/payments/orders/{orderId}`: the reconciliation lookup.
    pub async fn payment_by_order_id(&self, order_id: &OrderId) -> Result<Payment, Error> {
        let path = format!("/v1/payments/orders/{}", path_segment(order_id.as_str())?);
        self.look_up(path, Some(order_id.as_str()), None).await
    }

    /// `GET /v1/payments/{paymentKey}`.
    pub async fn payment(&self, payment_key: &PaymentKey) -> Result<Payment, Error> {
        let path = format!("/v1/payments/{}", path_segment(payment_key.as_str())?);
        self.look_up(path, None, Some(payment_key.as_str())).await
    }

    /// `GET /v1/transactions`: one page of the merchant's payments and cancels in a window
    /// (the settlement check). Toss says it can take as long as a charge; a transport error is
    /// retried once, like a look-up.
    pub async fn transactions(
        &self,
        query: &crate::TransactionQuery,
    ) -> Result<Vec<crate::Transaction>, Error> {
        let operation = Operation::LookUp;
        let call = || Call {
            operation,
            method: Method::GET,
            path: query.path(),
            body: None,
            idempotency_key: None,
            timeout: self.charge_timeout,
            order_id: None,
            payment_key: None,
        };
        let answer = match self.execute(call()).await {
            Err(Error::Transport { .. }) => self.execute(call()).await?,
            other => other?,
        };
        decode(operation, answer)
    }

    /// `POST /v1/payments/{paymentKey}/cancel`: a full refund when `amount` is `None`.
    pub async fn cancel_payment(
        &self,
        payment_key: &PaymentKey,
        reason: &str,
        amount: Option<Krw>,
        idempotency_key: &IdempotencyKey,
    ) -> Result<Payment, Error> {
        self.cancel_payment_from(payment_key, reason, amount, None, idempotency_key)
            .await
    }

    /// [`Self::cancel_payment`], refused by Toss unless the payment's balance is still
    /// `refundable` (`refundableAmount`).
    pub async fn cancel_payment_from(
        &self,
        payment_key: &PaymentKey,
        reason: &str,
        amount: Option<Krw>,
        refundable: Option<Krw>,
        idempotency_key: &IdempotencyKey,
    ) -> Result<Payment, Error> {
        let operation = Operation::Cancel;
        let path = format!(
            "/v1/payments/{}/cancel",
            path_segment(payment_key.as_str())?
        );
        let body = to_json(&CancelRequest {
            cancel_reason: reason,
            cancel_amount: amount.map(Krw::won),
            refundable_amount: refundable.map(Krw::won),
        })?;
        let answer = self
            .execute(Call {
                operation,
                method: Method::POST,
                path,
                body: Some(body),
                idempotency_key: Some(idempotency_key),
                timeout: self.request_timeout,
                order_id: None,
                payment_key: Some(payment_key.as_str()),
            })
            .await?;
        decode(operation, answer)
    }

    /// `DELETE /v1/billing/{billingKey}`. Idempotent: a key Toss does not know or already
    /// removed (`NOT_FOUND_BILLING`, `ALREADY_REMOVED_BILLING_KEY`, any 404) counts as deleted.
    pub async fn delete_billing_key(&self, billing_key: &BillingKey) -> Result<(), Error> {
        let operation = Operation::DeleteBillingKey;
        let path = format!("/v1/billing/{}", path_segment(billing_key.expose_secret())?);
        let answer = self
            .execute(Call {
                operation,
                method: Method::DELETE,
                path,
                body: None,
                idempotency_key: None,
                timeout: self.request_timeout,
                order_id: None,
                payment_key: None,
            })
            .await?;
        // Success is a 200 with an empty body: nothing to parse.
        if answer.is_success() || answer.status == 404 {
            return Ok(());
        }
        match api_error(operation, answer) {
            Error::Api {
                code: ErrorCode::NotFoundBilling | ErrorCode::AlreadyRemovedBillingKey,
                ..
            } => Ok(()),
            other => Err(other),
        }
    }

    /// A GET, retried once if the connection failed (a lookup has no side effect). A timeout
    /// is not retried: it already used the whole time budget.
    async fn look_up(
        &self,
        path: String,
        order_id: Option<&str>,
        payment_key: Option<&str>,
    ) -> Result<Payment, Error> {
        let operation = Operation::LookUp;
        let call = |path: String| Call {
            operation,
            method: Method::GET,
            path,
            body: None,
            idempotency_key: None,
            timeout: self.request_timeout,
            order_id,
            payment_key,
        };
        let answer = match self.execute(call(path.clone())).await {
            Err(Error::Transport { .. }) => {
                tracing::info!(operation = %operation, order_id, payment_key, "retrying a lookup once after a transport error");
                self.execute(call(path)).await?
            }
            other => other?,
        };
        decode(operation, answer)
    }

    async fn execute(&self, call: Call<'_>) -> Result<Answer, Error> {
        let Call {
            operation,
            method,
            path,
            body,
            idempotency_key,
            timeout,
            order_id,
            payment_key,
        } = call;
        let url = Url::parse(&format!("{}{path}", self.base))
            .map_err(|_| Error::InvalidConfig("the Toss request URL could not be built".into()))?;
        let mut request = self.http.request(method, url).timeout(timeout);
        if let Some(key) = idempotency_key {
            let value = HeaderValue::from_str(key.as_str()).map_err(|_| {
                Error::InvalidConfig("the Idempotency-Key is not a valid header value".into())
            })?;
            request = request.header(IDEMPOTENCY_KEY, value);
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body);
        }

        tracing::debug!(operation = %operation, order_id, payment_key, "calling Toss");
        let started = Instant::now();
        let result = read_answer(request).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match result {
            Ok(answer) => {
                tracing::info!(
                    operation = %operation,
                    order_id,
                    payment_key,
                    status = answer.status,
                    trace_id = answer.trace_id.as_deref(),
                    latency_ms,
                    "Toss answered"
                );
                Ok(answer)
            }
            Err(source) => {
                let error = if source.is_timeout() {
                    Error::Timeout { operation }
                } else {
                    Error::Transport {
                        operation,
                        source: source.without_url(),
                    }
                };
                tracing::info!(
                    operation = %operation,
                    order_id,
                    payment_key,
                    latency_ms,
                    error = %error,
                    "Toss did not answer"
                );
                Err(error)
            }
        }
    }
}

async fn read_answer(request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let trace_id = response
        .headers()
        .get(TRACE_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.bytes().await?.to_vec();
    Ok(Answer {
        status,
        body,
        trace_id,
    })
}

fn path_segment(value: &str) -> Result<String, Error> {
    segment(value)
        .ok_or_else(|| Error::InvalidConfig("a path identifier cannot be `.` or `..`".into()))
}

fn to_json(body: &impl Serialize) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(body)
        .map_err(|_| Error::InvalidConfig("the request body could not be serialised".into()))
}

/// A success body as `T`, or the error Toss sent.
fn decode<T: DeserializeOwned>(operation: Operation, answer: Answer) -> Result<T, Error> {
    if !answer.is_success() {
        return Err(api_error(operation, answer));
    }
    serde_json::from_slice(&answer.body).map_err(|source| Error::Decode {
        operation,
        status: answer.status,
        body_snippet: snippet(operation, &answer),
        source,
    })
}

/// The error a non-success answer stands for.
fn api_error(operation: Operation, answer: Answer) -> Error {
    let parsed = serde_json::from_slice::<ErrorBody>(&answer.body).and_then(|body| {
        let (code, message) = match body {
            ErrorBody {
                code: Some(code),
                message,
                ..
            } => (code, message),
            ErrorBody {
                error: Some(inner), ..
            } => match *inner {
                ErrorBody {
                    code: Some(code),
                    message,
                    ..
                } => (code, message),
                _ => return Err(serde::de::Error::missing_field("code")),
            },
            _ => return Err(serde::de::Error::missing_field("code")),
        };
        Ok((code, message.unwrap_or_default()))
    });
    match parsed {
        Ok((code, message)) => Error::Api {
            operation,
            status: answer.status,
            code: ErrorCode::parse(&code),
            message,
            trace_id: answer.trace_id,
        },
        Err(source) => Error::Decode {
            operation,
            status: answer.status,
            body_snippet: snippet(operation, &answer),
            source,
        },
    }
}

/// The start of a body for diagnostics. A successful issue answer carries the new billing key,
/// so that one is never quoted.
fn snippet(operation: Operation, answer: &Answer) -> String {
    if operation == Operation::IssueBillingKey && answer.is_success() {
        return String::new();
    }
    String::from_utf8_lossy(&answer.body)
        .chars()
        .take(SNIPPET_CHARS)
        .collect()
}

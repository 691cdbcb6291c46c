//! A guard in front of `lambda_http`'s event → `http::Request` conversion.
//!
//! That conversion (lambda_http 1.3, `request.rs` / aws_lambda_events' `Body`) panics on input a
//! client can shape: `Url::parse(..).unwrap()` of `<x-forwarded-proto>://<host><path>` (a host
//! with a space, a forwarded proto that is not a scheme, a path like `:99`), `.expect("failed to
//! build request")` when the raw query string holds characters `http::Uri` refuses (a raw space,
//! a quote, an angle bracket), and `.expect(..)` on a body flagged base64 that is not. The release
//! profile has `panic = "abort"`: such a request would kill the instance (every warm request it
//! would have served pays a cold start), not just fail. Unwinding is not an option per function
//! (the panic strategy is per profile, shared by the whole workspace), so this guard refuses
//! those requests with a 400 before the conversion runs.
//!
//! The checks mirror the conversion's own steps, so a request that passes converts; the e2e test
//! `e2e_malformed_gateway_events_get_a_400_and_the_instance_keeps_serving` sends each case
//! through the real binary.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use lambda_http::aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_http::http::{HeaderValue, Uri, header};
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, LambdaEvent, Service, lambda_runtime};
use serde::Serialize;
use tracing::warn;
use url::Url;

/// Wraps `lambda_http`'s adapter: refuses an event whose conversion would panic.
#[derive(Debug, Clone)]
pub(crate) struct Guard<'a, S> {
    inner: S,
    /// The lifetime of what the adapter's futures borrow (the handler's state).
    _borrows: PhantomData<&'a ()>,
}

impl<S> Guard<'_, S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            _borrows: PhantomData,
        }
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The adapter's answer, or the guard's refusal (both serialize as the gateway's response).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Answer<R> {
    Converted(R),
    Refused(Box<ApiGatewayV2httpResponse>),
}

impl<'a, S> Service<LambdaEvent<LambdaRequest>> for Guard<'a, S>
where
    S: Service<LambdaEvent<LambdaRequest>>,
    S::Response: Send + 'a,
    S::Future: Send + 'a,
    S::Error: Send + 'a,
{
    type Response = Answer<S::Response>;
    type Error = S::Error;
    type Future = BoxFuture<'a, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, event: LambdaEvent<LambdaRequest>) -> Self::Future {
        let problem = match &event.payload {
            LambdaRequest::ApiGatewayV2(request) => malformed(request),
            _ => None,
        };
        match problem {
            Some(problem) => {
                warn!(
                    problem,
                    "refused a malformed gateway event before conversion"
                );
                Box::pin(async { Ok(Answer::Refused(Box::new(bad_request()))) })
            }
            None => {
                let converted = self.inner.call(event);
                Box::pin(async move { converted.await.map(Answer::Converted) })
            }
        }
    }
}

/// Why `lambda_http` could not turn this event into a request without panicking, if it could not.
pub(crate) fn malformed(request: &ApiGatewayV2httpRequest) -> Option<&'static str> {
    let raw_path = request.raw_path.as_deref().unwrap_or_default();
    // The stage prefix lambda_http may add (it skips it for `$default` or when told to by an env
    // var): check both shapes.
    let mut paths = vec![raw_path.to_owned()];
    if let Some(stage) = request.request_context.stage.as_deref() {
        paths.push(format!("/{stage}{raw_path}"));
    }
    let host = request
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(request.request_context.domain_name.as_deref());
    let scheme = request
        .headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("https");
    for path in &paths {
        let base = match host {
            Some(host) => match Url::parse(&format!("{scheme}://{host}{path}")) {
                Ok(url) => url.to_string(),
                Err(_) => return Some("host, x-forwarded-proto and path do not form a URL"),
            },
            None => match Url::parse(&format!("http://localhost{path}")) {
                Ok(url) => url.path().to_owned(),
                Err(_) => return Some("the path does not form a URL"),
            },
        };
        let query = request.raw_query_string.as_deref().unwrap_or_default();
        let uri = if query.is_empty() {
            base
        } else {
            format!("{base}?{query}")
        };
        if Uri::try_from(uri).is_err() {
            return Some("the raw query string has characters a URI cannot hold");
        }
    }
    if request.is_base64_encoded
        && let Some(body) = request.body.as_deref()
        && !is_canonical_base64(body)
    {
        return Some("the body is flagged base64 but is not");
    }
    None
}

/// What `base64::engine::general_purpose::STANDARD` decodes: padded, canonical trailing bits.
fn is_canonical_base64(text: &str) -> bool {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return false;
    }
    let padding = bytes.iter().rev().take_while(|b| **b == b'=').count();
    let data = &bytes[..bytes.len() - padding];
    let value = |b: u8| match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    if padding > 2 || data.iter().any(|b| value(*b).is_none()) {
        return false;
    }
    // The bits after the last whole byte must be zero.
    match (padding, data.last().and_then(|b| value(*b))) {
        (1, Some(last)) => last & 0b11 == 0,
        (2, Some(last)) => last & 0b1111 == 0,
        _ => true,
    }
}

/// The same JSON error shape as the handler's: `{"error":{"code","message"}}`.
fn bad_request() -> ApiGatewayV2httpResponse {
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = 400;
    response.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.body = Some(Body::Text(
        r#"{"error":{"code":"INVALID_REQUEST","message":"malformed request"}}"#.to_owned(),
    ));
    response
}

/// Runs `handler` as `lambda_http::run` does, behind the [`Guard`].
pub(crate) async fn run<'a, S, R, E>(handler: S) -> Result<(), lambda_runtime::Error>
where
    S: Service<lambda_http::Request, Response = R, Error = E>,
    S::Future: Send + 'a,
    R: lambda_http::IntoResponse,
    E: std::fmt::Debug + Into<lambda_runtime::Diagnostic> + Send + 'a,
{
    lambda_runtime::run(Guard::new(lambda_http::Adapter::from(handler))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> serde_json::Value {
        serde_json::from_str(include_str!("../../../events/billing-api.success.json")).unwrap()
    }

    /// Events a client can shape so that lambda_http's conversion panics.
    pub(crate) fn malformed_events() -> Vec<(&'static str, serde_json::Value)> {
        let with = |change: &dyn Fn(&mut serde_json::Value)| {
            let mut event = sample();
            change(&mut event);
            event
        };
        vec![
            (
                "a raw space in the query",
                with(&|e| e["rawQueryString"] = "customerKey=user 1&authKey=k".into()),
            ),
            (
                "a raw quote in the query",
                with(&|e| e["rawQueryString"] = "customerKey=\"x\"&authKey=k".into()),
            ),
            (
                "a raw angle bracket in the query",
                with(&|e| e["rawQueryString"] = "customerKey=<x>&authKey=k".into()),
            ),
            (
                "a host with a space",
                with(&|e| e["headers"]["host"] = "a b.example".into()),
            ),
            (
                "a forwarded proto that is no scheme",
                with(&|e| e["headers"]["x-forwarded-proto"] = "1 https".into()),
            ),
            (
                "a path that reads as a port",
                with(&|e| e["rawPath"] = ":99999".into()),
            ),
            (
                "a body flagged base64 that is not",
                with(&|e| {
                    e["isBase64Encoded"] = true.into();
                    e["body"] = "not base64!".into();
                }),
            ),
        ]
    }

    fn parse(event: &serde_json::Value) -> ApiGatewayV2httpRequest {
        serde_json::from_value(event.clone()).unwrap()
    }

    #[test]
    fn the_sample_events_are_well_formed() {
        assert_eq!(malformed(&parse(&sample())), None);
        let fail: serde_json::Value =
            serde_json::from_str(include_str!("../../../events/billing-api.fail.json")).unwrap();
        assert_eq!(malformed(&parse(&fail)), None);
    }

    #[test]
    fn every_event_that_would_panic_the_conversion_is_found_and_really_would_panic() {
        for (case, event) in malformed_events() {
            assert!(malformed(&parse(&event)).is_some(), "{case}: not found");
            let converted = std::panic::catch_unwind(|| {
                lambda_http::request::from_str(&event.to_string()).map(drop)
            });
            assert!(
                converted.is_err(),
                "{case}: lambda_http converts it without panicking"
            );
        }
    }

    #[test]
    fn base64_bodies_are_checked_as_the_standard_engine_decodes_them() {
        for ok in ["", "QQ==", "QUI=", "QUJD", "aGVsbG8="] {
            assert!(is_canonical_base64(ok), "{ok}");
        }
        for bad in ["Q", "QR==", "QUJ=", "QUJD=", "Q===", "QU!D", "aGVsbG8"] {
            assert!(!is_canonical_base64(bad), "{bad}");
        }
    }
}

//! The one place an error becomes an HTTP answer: `{"error":{"code","message"}}` with a status.
//! Messages are fixed texts chosen here; a cause is logged, never echoed.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::{error, info};

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The bearer token was missing or did not verify (401), or the issuer's keys could not
    /// be had (503). The reason goes to the log only.
    #[error("not authenticated")]
    Auth(#[from] auth::Error),
    #[error("no such route")]
    NotFound,
    /// `allow` lists the methods the path answers (the `Allow` header).
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    /// The request cannot be valid; `message` says which part, without echoing it.
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: &'static str,
    },
    /// The body is larger than the route accepts (413).
    #[error("the body is too large")]
    TooLarge,
    /// A body that is not JSON (415).
    #[error("the body must be JSON")]
    NotJson,
    /// The request is valid but the subscription's state refuses it (409, or 422 for a
    /// reused idempotency key, or 503 when it was too busy); `detail` adds fields to the
    /// error object (the balance of an insufficient consumption, say).
    #[error("{message}")]
    Refused {
        status: StatusCode,
        code: &'static str,
        message: &'static str,
        detail: Option<serde_json::Map<String, serde_json::Value>>,
    },
    /// Something failed on our side. Logged with its cause chain; answered as a bare 500.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApiError::Internal(e.into())
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Auth(e) => {
                let failure = e.failure();
                let status =
                    StatusCode::from_u16(failure.status()).unwrap_or(StatusCode::UNAUTHORIZED);
                (status, failure.code(), failure.message())
            }
            ApiError::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND", "no such route"),
            ApiError::MethodNotAllowed { .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "this method is not allowed here",
            ),
            ApiError::BadRequest { code, message } => (StatusCode::BAD_REQUEST, code, message),
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "the body is too large",
            ),
            ApiError::NotJson => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "the body must be application/json",
            ),
            ApiError::Refused {
                status,
                code,
                message,
                ..
            } => (*status, code, message),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "something went wrong on our side; try again later",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Auth(e) => info!(reason = e.reason(), error.message = %e, "refused a caller"),
            ApiError::Internal(e) => {
                error!(error.message = %e, error.cause_chain = %billing::cause_chain(e.as_ref()), "request failed on our side")
            }
            _ => {}
        }
        let (status, code, message) = self.parts();
        let mut error = serde_json::Map::new();
        error.insert("code".into(), code.into());
        error.insert("message".into(), message.into());
        if let ApiError::Refused {
            detail: Some(detail),
            ..
        } = &self
        {
            for (k, v) in detail {
                error.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let body = serde_json::json!({ "error": error });
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::MethodNotAllowed { allow } = self {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn answer(e: ApiError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = e.into_response();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 4096).await.unwrap();
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).unwrap(),
        )
    }

    #[tokio::test]
    async fn an_authentication_failure_is_a_401_with_a_bearer_challenge_and_no_reason() {
        let (status, headers, body) = answer(auth::Error::Expired.into()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(body["error"]["code"], "UNAUTHENTICATED");
        assert!(!body.to_string().contains("expired"), "{body}");
    }

    #[tokio::test]
    async fn an_internal_error_is_a_500_that_does_not_echo_its_cause() {
        let cause = std::io::Error::other("table billing-prod: secret detail");
        let (status, _, body) = answer(ApiError::internal(cause)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "INTERNAL");
        assert!(!body.to_string().contains("secret"), "{body}");
    }
}

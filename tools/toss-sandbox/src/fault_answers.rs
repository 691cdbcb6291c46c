//! What an injected fault answers instead of (or after) the operation: a Toss error, a malformed
//! or truncated body, or a connection dropped mid-request.

use std::io;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use futures::stream;

use crate::errors::ApiError;
use crate::faults::{ConnectionKill, FaultAction, FaultRule};
use crate::idempotency::StoredResponse;

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

pub(crate) async fn fault_response(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_of_a_korean_body_is_cut_on_a_character_boundary() {
        let cut = half_of("가나다라");
        assert!("가나다라".starts_with(&cut));
        assert!(!cut.is_empty());
    }
}

//! The router and the entry point the runtime calls.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, Uri, header};
use lambda_http::{Request, RequestExt};
use tower::ServiceExt;

use crate::capability::{Account, Checkout, Webhooks};
use crate::routes;
use crate::state::State;

/// Every route of the function.
pub fn app(state: State) -> Router {
    app_with(state)
}

/// Every route, calling `B` (a fake in the in-file tests) for what billing decides.
pub(crate) fn app_with<B: Checkout + Account + Webhooks>(state: State<B>) -> Router {
    routes::router().with_state(Arc::new(state))
}

/// Runs one request through the router. Routing uses the path without an API Gateway stage
/// prefix, and every answer is marked uncacheable and not to be sent as a referrer.
pub async fn handle(
    app: &Router,
    mut request: Request,
) -> Result<axum::response::Response, Infallible> {
    let raw = request.raw_http_path();
    if !raw.is_empty() && raw != request.uri().path() {
        let query = request
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        if let Ok(uri) = format!("{raw}{query}").parse::<Uri>() {
            *request.uri_mut() = uri;
        }
    }
    let mut response = app.clone().oneshot(request).await?;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use axum::http::{Method, StatusCode};
    use axum::response::Response;

    use super::*;

    fn state() -> State {
        crate::state::testing::state("http://127.0.0.1:9")
    }

    fn event(name: &str) -> Request {
        let json = match name {
            "success" => include_str!("../../../events/billing-api.success.json"),
            _ => include_str!("../../../events/billing-api.fail.json"),
        };
        lambda_http::request::from_str(json).unwrap()
    }

    async fn send(request: Request) -> Response {
        handle(&app(state()), request).await.unwrap()
    }

    async fn json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn location(response: &Response) -> &str {
        response.headers()[header::LOCATION].to_str().unwrap()
    }

    #[tokio::test]
    async fn the_sample_fail_event_redirects_to_the_app_fail_url_with_the_sanitised_code() {
        let response = send(event("fail")).await;
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(
            location(&response),
            "https://app.example/billing/failed?code=PAY_PROCESS_CANCELED"
        );
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(response.headers()[header::REFERRER_POLICY], "no-referrer");
    }

    #[tokio::test]
    async fn the_sample_success_event_parses_and_reaches_the_use_case() {
        // The table is unreachable here, so the use case fails on our side: the customer is
        // still redirected (never a 5xx), and the URL carries no secret from the request.
        let request = event("success");
        let raw = request.uri().query().unwrap().to_owned();
        let response = send(request).await;
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(
            location(&response),
            "https://app.example/billing/failed?code=SERVICE_ERROR"
        );
        let auth_key = raw
            .split('&')
            .find_map(|p| p.strip_prefix("authKey="))
            .unwrap();
        assert!(!location(&response).contains(auth_key));
    }

    #[tokio::test]
    async fn unknown_routes_and_wrong_methods_get_json_errors_not_redirects() {
        for method in [Method::POST, Method::HEAD, Method::PUT] {
            let mut request = event("fail");
            *request.method_mut() = method.clone();
            let response = send(request).await;
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method}"
            );
            assert_eq!(response.headers()[header::ALLOW], "GET", "{method}");
            if method != Method::HEAD {
                assert_eq!(json(response).await["error"]["code"], "METHOD_NOT_ALLOWED");
            }
        }
        let mut request = event("fail").with_raw_http_path("/billing/fail/extra");
        *request.uri_mut() = "/billing/fail/extra".parse().unwrap();
        let response = send(request).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(json(response).await["error"]["code"], "NOT_FOUND");
    }

    #[tokio::test]
    async fn a_bad_query_redirects_to_the_fail_url_without_touching_toss_or_the_table() {
        // The table and Toss are unreachable here: an answer other than SERVICE_ERROR proves
        // the refusal came before either was asked.
        let state = "0".repeat(64);
        for (query, code) in [
            ("customerKey=x&authKey=k".to_owned(), "INVALID_STATE"),
            (
                "state=XYZ&customerKey=x&authKey=k".to_owned(),
                "INVALID_STATE",
            ),
            (
                format!("state={state}&state={state}&customerKey=x&authKey=k"),
                "INVALID_REQUEST",
            ),
            (
                format!("state={state}&customerKey=%ED%95%9C&authKey=k"),
                "INVALID_REQUEST",
            ),
            (
                format!("state={state}&customerKey=user_1"),
                "INVALID_REQUEST",
            ),
        ] {
            let mut request = event("success");
            *request.uri_mut() = format!("/billing/success?{query}").parse().unwrap();
            let response = send(request).await;
            assert_eq!(
                location(&response),
                format!("https://app.example/billing/failed?code={code}"),
                "{query}"
            );
        }
    }

    #[tokio::test]
    async fn a_stage_prefix_in_the_path_does_not_change_the_route() {
        let json = include_str!("../../../events/billing-api.fail.json")
            .replace("\"stage\": \"$default\"", "\"stage\": \"prod\"");
        let request = lambda_http::request::from_str(&json).unwrap();
        let response = send(request).await;
        assert_eq!(response.status(), StatusCode::FOUND);
    }
}

//! `POST /toss/webhooks` (product §11): public (Toss signs none of the payment and billing
//! webhooks), so the body is parsed at the edge into the one thing believed, which payment or
//! key it names, and `billing::Billing::handle_webhook` re-fetches and converges. Answers:
//! `200` when handled (or a duplicate, or a type not acted on), `400` for an unparseable body
//! or a missing transmission id (nothing written), `409` while the same delivery is being
//! processed by another request, `500` when processing failed (Toss retries both).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State as Shared;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use billing::{TransmissionId, WebhookEvent, WebhookOutcome};
use domain::{BillingKey, PaymentKey};
use serde::Deserialize;
use serde_json::Value;
use tracing::{error, info, warn};

use crate::capability::Webhooks;
use crate::error::ApiError;
use crate::state::State;

/// A Payment object with a few cancels is a few KB; anything larger is not from Toss.
const MAX_BODY_BYTES: usize = 64 * 1024;

pub(crate) const TRANSMISSION_ID_HEADER: &str = "tosspayments-webhook-transmission-id";

/// The envelope of every webhook. Toss may add fields; only these are read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    event_type: String,
    data: serde_json::Map<String, Value>,
}

fn invalid(message: &'static str) -> ApiError {
    ApiError::BadRequest {
        code: "INVALID_WEBHOOK",
        message,
    }
}

/// The body as far as it is believed. Unknown event types parse (as `Other`).
pub(crate) fn parse_event(bytes: &[u8]) -> Result<WebhookEvent, ApiError> {
    let envelope: Envelope = serde_json::from_slice(bytes)
        .map_err(|_| invalid("the body is not a Toss webhook: {eventType, createdAt, data}"))?;
    let field = |name: &str| envelope.data.get(name).and_then(Value::as_str);
    match envelope.event_type.as_str() {
        "PAYMENT_STATUS_CHANGED" => field("paymentKey")
            .filter(|k| {
                k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            })
            .and_then(|k| PaymentKey::parse(k).ok())
            .map(|payment_key| WebhookEvent::PaymentStatusChanged { payment_key })
            .ok_or_else(|| invalid("PAYMENT_STATUS_CHANGED needs data.paymentKey")),
        "BILLING_DELETED" => field("billingKey")
            .and_then(|k| BillingKey::parse(k).ok())
            .map(|billing_key| WebhookEvent::BillingDeleted { billing_key })
            .ok_or_else(|| invalid("BILLING_DELETED needs data.billingKey")),
        _ => Ok(WebhookEvent::Other),
    }
}

/// `POST /toss/webhooks`
pub(crate) async fn receive<B: Webhooks>(
    Shared(state): Shared<Arc<State<B>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return refused("unknown", ApiError::TooLarge),
    };
    let event = match parse_event(&bytes) {
        Ok(event) => event,
        Err(e) => return refused("unknown", e),
    };
    let event_type = event.event_type();
    let Some(id) = headers
        .get(TRANSMISSION_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(TransmissionId::parse)
    else {
        return refused(
            event_type,
            invalid("the tosspayments-webhook-transmission-id header is missing or malformed"),
        );
    };
    match state
        .billing
        .handle_webhook(&id, &event, chrono::Utc::now())
        .await
    {
        Ok(WebhookOutcome::Processed(converged)) => {
            info!(event_type, outcome = converged.as_str(), "webhook handled");
            billing::metrics::webhook(event_type, converged.as_str());
            received()
        }
        Ok(WebhookOutcome::Duplicate) => {
            info!(event_type, "webhook delivered again; already handled");
            billing::metrics::webhook(event_type, "duplicate");
            received()
        }
        Ok(WebhookOutcome::InProgress) => {
            warn!(event_type, "webhook delivered again while being handled");
            billing::metrics::webhook(event_type, "in_progress");
            ApiError::Refused {
                status: StatusCode::CONFLICT,
                code: "WEBHOOK_IN_PROGRESS",
                message: "this delivery is being handled; send it again later",
                detail: None,
            }
            .into_response()
        }
        Err(e) => {
            error!(event_type, error.message = %e, error.cause_chain = %billing::cause_chain(&e), "webhook failed; Toss will retry it");
            billing::metrics::webhook(event_type, "error");
            ApiError::internal(e).into_response()
        }
    }
}

fn received() -> Response {
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({ "received": true })),
    )
        .into_response()
}

fn refused(event_type: &'static str, e: ApiError) -> Response {
    warn!(event_type, reason = %e, "refused a webhook");
    billing::metrics::webhook(event_type, "invalid");
    e.into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_payment_webhook_is_believed_for_its_payment_key_only() {
        let body =
            br#"{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"2026-01-01T00:00:00.000000",
            "data":{"paymentKey":"tgen_20260101000000abcde","status":"CANCELED","totalAmount":1}}"#;
        let event = parse_event(body).unwrap();
        assert_eq!(
            event,
            WebhookEvent::PaymentStatusChanged {
                payment_key: PaymentKey::parse("tgen_20260101000000abcde").unwrap()
            }
        );
    }

    #[test]
    fn an_unknown_event_type_parses_as_other() {
        let body = br#"{"eventType":"DEPOSIT_CALLBACK","createdAt":"x","data":{}}"#;
        assert_eq!(parse_event(body).unwrap(), WebhookEvent::Other);
    }

    #[test]
    fn bodies_that_are_not_toss_webhooks_are_refused() {
        for body in [
            &b""[..],
            b"not json",
            b"[]",
            br#"{"data":{}}"#,
            br#"{"eventType":7,"data":{}}"#,
            br#"{"eventType":"PAYMENT_STATUS_CHANGED","data":"x"}"#,
            br#"{"eventType":"PAYMENT_STATUS_CHANGED","data":{}}"#,
            br#"{"eventType":"PAYMENT_STATUS_CHANGED","data":{"paymentKey":""}}"#,
            br#"{"eventType":"PAYMENT_STATUS_CHANGED","data":{"paymentKey":"a/../b"}}"#,
            br#"{"eventType":"BILLING_DELETED","data":{"billingKey":null,"reason":null}}"#,
            br#"{"eventType":"BILLING_DELETED","data":{"billingKey":"has space"}}"#,
        ] {
            assert!(
                parse_event(body).is_err(),
                "{:?} should be refused",
                String::from_utf8_lossy(body)
            );
        }
    }

    use axum::http::header;
    use billing::Convergence;
    use domain::OrderId;
    use lambda_http::Body;

    use crate::capability::fake::{self, Fake};

    const PAYMENT: &str = r#"{"eventType":"PAYMENT_STATUS_CHANGED","createdAt":"2026-01-01T00:00:00.000000","data":{"paymentKey":"tgen_20260101000000abcde","status":"DONE"}}"#;

    /// Toss delivering `body` with transmission id `id` (none when `None`).
    fn delivery(id: Option<&str>, body: &str) -> lambda_http::Request {
        let mut request = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/toss/webhooks")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(id) = id {
            request = request.header(TRANSMISSION_ID_HEADER, id);
        }
        request.body(Body::Text(body.to_owned())).unwrap()
    }

    /// Toss's delivery of a payment webhook when handling it answers `result`.
    async fn deliver(result: Result<WebhookOutcome, billing::Error>) -> (StatusCode, Value) {
        let fake = Fake::new();
        fake.handle_webhook.answer(result);
        let calls = fake.calls.clone();
        let response = fake::send(
            fake,
            "http://127.0.0.1:9",
            delivery(Some("wh-0001"), PAYMENT),
        )
        .await;
        let status = response.status();
        assert_eq!(
            fake::calls(&calls),
            ["handle_webhook wh-0001 PAYMENT_STATUS_CHANGED"]
        );
        (status, fake::json(response).await)
    }

    #[tokio::test]
    async fn a_handled_webhook_or_a_duplicate_is_acknowledged_with_200_whatever_it_converged_to() {
        for outcome in [
            WebhookOutcome::Processed(Convergence::Settled {
                order_id: OrderId::parse("01JD0000000000000000000000-0-0").unwrap(),
            }),
            WebhookOutcome::Processed(Convergence::NotOurs),
            WebhookOutcome::Processed(Convergence::Disagrees),
            WebhookOutcome::Duplicate,
        ] {
            let (status, body) = deliver(Ok(outcome.clone())).await;

            assert_eq!(status, StatusCode::OK, "{outcome:?}");
            assert_eq!(body, serde_json::json!({"received": true}));
        }
    }

    #[tokio::test]
    async fn a_delivery_being_handled_by_another_request_is_a_409_so_toss_sends_it_again() {
        let (status, body) = deliver(Ok(WebhookOutcome::InProgress)).await;

        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["error"]["code"], "WEBHOOK_IN_PROGRESS");
    }

    #[tokio::test]
    async fn a_webhook_failing_on_our_side_is_a_bare_500_so_toss_retries_it() {
        let (status, body) = deliver(Err(fake::our_fault())).await;

        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "INTERNAL");
        assert!(!body.to_string().contains("UNAUTHORIZED_KEY"), "{body}");
    }

    #[tokio::test]
    async fn a_delivery_without_a_transmission_id_or_with_a_bad_body_is_a_400_before_billing_is_asked()
     {
        for request in [
            delivery(None, PAYMENT),
            delivery(Some("bad id"), PAYMENT),
            delivery(Some("wh-0001"), "not json"),
        ] {
            // A fake with no answer panics if asked.
            let response = fake::send(Fake::new(), "http://127.0.0.1:9", request).await;

            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
            assert_eq!(
                fake::json(response).await["error"]["code"],
                "INVALID_WEBHOOK"
            );
        }
    }
}

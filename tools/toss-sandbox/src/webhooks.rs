//! Webhook delivery (docs/toss-api.md §7): each merchant (secret key) may register one URL; a
//! cancel sends `PAYMENT_STATUS_CHANGED` (data: the Payment), a deleted billing key sends
//! `BILLING_DELETED` (data: `{billingKey, reason}`). A successful billing charge sends nothing,
//! as at Toss.
//!
//! A delivery is a `POST` of `{eventType, createdAt, data}` (`createdAt` in Korea time without an
//! offset, `yyyy-MM-ddTHH:mm:ss.SSSSSS`) with the three `tosspayments-webhook-transmission-*`
//! headers. Anything but `200` is retried at 1, 4, 16, 64, 256, 1024 and 4096 minutes, each
//! minute lasting `minuteMillis` real milliseconds. One notification keeps its transmission id
//! through its duplicates and retries (the sandbox's reading of "unique per delivery"); the
//! retried count tells the retries apart.
//!
//! Knobs per endpoint: `duplicates` (extra copies of each first delivery) and `outOfOrder`
//! (notifications are held until [`Sandbox::flush_webhooks`], which sends them newest first).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::model::kst;
use crate::outbox::{Event, Outgoing};
use crate::snapshot::fingerprint;
use crate::state::{Sandbox, State};

/// Toss's retry schedule, in minutes after the previous failure.
pub const RETRY_MINUTES: [u64; 7] = [1, 4, 16, 64, 256, 1024, 4096];

/// How long the sandbox waits for the merchant's answer.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

pub const TRANSMISSION_TIME_HEADER: &str = "tosspayments-webhook-transmission-time";
pub const TRANSMISSION_RETRIED_COUNT_HEADER: &str =
    "tosspayments-webhook-transmission-retried-count";
pub const TRANSMISSION_ID_HEADER: &str = "tosspayments-webhook-transmission-id";

/// `createdAt` of a webhook body: Korea time, microseconds, no offset.
fn created_at(at: DateTime<Utc>) -> String {
    at.with_timezone(&chrono_tz::Asia::Seoul)
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

impl State {
    /// Queues the notification of `event` for `owner`'s endpoint: returned to be sent once the
    /// lock is released, or held for a flush; `None` when nothing is to be sent now.
    pub(crate) fn webhook(&mut self, owner: &str, event: Event) -> Option<Outgoing> {
        let endpoint = self.webhooks.endpoints.get(owner)?.clone();
        let now = self.now();
        let (event_type, subject, data) = match event {
            Event::PaymentStatusChanged(payment) => (
                "PAYMENT_STATUS_CHANGED",
                payment.payment_key.clone(),
                serde_json::to_value(&payment).unwrap_or_default(),
            ),
            Event::BillingDeleted {
                billing_key,
                reason,
            } => (
                "BILLING_DELETED",
                fingerprint(&billing_key),
                json!({ "billingKey": billing_key, "reason": reason }),
            ),
        };
        let body = json!({ "eventType": event_type, "createdAt": created_at(now), "data": data });
        let outgoing = Outgoing {
            transmission_id: ulid::Ulid::new().to_string().to_lowercase(),
            endpoint,
            event_type,
            subject,
            body: body.to_string(),
        };
        if outgoing.endpoint.out_of_order {
            self.webhooks.held.push(outgoing);
            None
        } else {
            Some(outgoing)
        }
    }
}

impl Sandbox {
    /// Registers (or replaces) the webhook URL of the merchant `secret_key`.
    pub fn set_webhook(&self, secret_key: &str, endpoint: crate::outbox::WebhookEndpoint) {
        self.lock()
            .webhooks
            .endpoints
            .insert(secret_key.to_owned(), endpoint);
    }

    pub fn clear_webhook(&self, secret_key: &str) -> bool {
        self.lock().webhooks.endpoints.remove(secret_key).is_some()
    }

    /// Every delivery made so far, oldest first.
    pub fn webhook_deliveries(&self) -> Vec<crate::outbox::WebhookDelivery> {
        self.lock().webhooks.log.clone()
    }

    /// Sends the held notifications, newest first, each one's first delivery after the
    /// previous one's. Returns how many there were.
    pub fn flush_webhooks(&self) -> usize {
        let held = std::mem::take(&mut self.lock().webhooks.held);
        let count = held.len();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let sandbox = self.clone();
            runtime.spawn(async move {
                for outgoing in held.into_iter().rev() {
                    sandbox.first_delivery(outgoing).await;
                }
            });
        }
        count
    }

    /// Sends a queued notification in the background (outside any lock).
    pub(crate) fn send_webhook(&self, outgoing: Option<Outgoing>) {
        let Some(outgoing) = outgoing else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let sandbox = self.clone();
                runtime.spawn(async move { sandbox.first_delivery(outgoing).await });
            }
            Err(_) => tracing::warn!("no runtime to deliver a webhook on; dropped"),
        }
    }

    /// The first delivery (and its duplicates); on failure the retries go on in the background.
    async fn first_delivery(&self, outgoing: Outgoing) {
        let http = match reqwest::Client::builder()
            .no_proxy()
            .timeout(DELIVERY_TIMEOUT)
            .build()
        {
            Ok(http) => http,
            Err(error) => {
                tracing::error!(%error, "cannot build the webhook client");
                return;
            }
        };
        let mut delivered = false;
        for _ in 0..=outgoing.endpoint.duplicates {
            delivered |= self.post(&http, &outgoing, 0).await;
        }
        if !delivered {
            let sandbox = self.clone();
            tokio::spawn(async move { sandbox.retries(http, outgoing).await });
        }
    }

    async fn retries(&self, http: reqwest::Client, outgoing: Outgoing) {
        for (retried, minutes) in (1u32..).zip(RETRY_MINUTES) {
            let wait = minutes.saturating_mul(outgoing.endpoint.minute_millis);
            tokio::time::sleep(Duration::from_millis(wait)).await;
            if self.post(&http, &outgoing, retried).await {
                return;
            }
        }
        tracing::warn!(
            event_type = outgoing.event_type,
            "webhook undelivered after every retry (Toss would e-mail the merchant)"
        );
    }

    /// One POST; true when the merchant answered `200`.
    async fn post(&self, http: &reqwest::Client, outgoing: &Outgoing, retried: u32) -> bool {
        let sent_at = kst(self.now());
        let answer = http
            .post(&outgoing.endpoint.url)
            .header("content-type", "application/json")
            .header(TRANSMISSION_TIME_HEADER, &sent_at)
            .header(TRANSMISSION_RETRIED_COUNT_HEADER, retried.to_string())
            .header(TRANSMISSION_ID_HEADER, &outgoing.transmission_id)
            .body(outgoing.body.clone())
            .send()
            .await;
        let (status, error) = match answer {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(error) => (None, Some(without_url(&error))),
        };
        tracing::info!(
            event_type = outgoing.event_type,
            retried,
            status,
            "webhook delivered"
        );
        self.lock()
            .webhooks
            .log
            .push(crate::outbox::WebhookDelivery {
                transmission_id: outgoing.transmission_id.clone(),
                event_type: outgoing.event_type.to_owned(),
                subject: outgoing.subject.clone(),
                retried_count: retried,
                status,
                error,
                sent_at,
            });
        status == Some(200)
    }
}

fn without_url(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection refused"
    } else {
        "failed"
    };
    kind.to_owned()
}

//! What the sandbox keeps about webhooks: each merchant's endpoint and knobs, notifications
//! held for out-of-order sending, and the delivery log. Sending them is `webhooks.rs`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::model::Payment;

/// One merchant's webhook registration and its knobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookEndpoint {
    pub url: String,
    /// Real milliseconds per minute of the retry schedule (60000 plays it in real time).
    #[serde(default = "real_minute")]
    pub minute_millis: u64,
    /// Extra copies of every first delivery (same body, same transmission id).
    #[serde(default)]
    pub duplicates: u32,
    /// Hold notifications until a flush, which sends them newest first.
    #[serde(default)]
    pub out_of_order: bool,
}

fn real_minute() -> u64 {
    60_000
}

impl WebhookEndpoint {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            minute_millis: real_minute(),
            duplicates: 0,
            out_of_order: false,
        }
    }
}

/// One POST the sandbox made (or tried to), for tests. `subject` names what the event is about
/// without a secret: the paymentKey, or the billing key's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    pub transmission_id: String,
    pub event_type: String,
    pub subject: String,
    pub retried_count: u32,
    /// The merchant's HTTP status; `None` when no answer came (refused, timed out).
    pub status: Option<u16>,
    pub error: Option<String>,
    pub sent_at: String,
}

/// What happened at Toss that a merchant is told about.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    PaymentStatusChanged(Box<Payment>),
    BillingDeleted {
        billing_key: String,
        reason: Option<String>,
    },
}

/// A notification on its way to one URL.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) endpoint: WebhookEndpoint,
    pub(crate) transmission_id: String,
    pub(crate) event_type: &'static str,
    pub(crate) subject: String,
    pub(crate) body: String,
}

#[derive(Debug, Default)]
pub(crate) struct Webhooks {
    pub(crate) endpoints: HashMap<String, WebhookEndpoint>,
    pub(crate) held: Vec<Outgoing>,
    pub(crate) log: Vec<WebhookDelivery>,
}

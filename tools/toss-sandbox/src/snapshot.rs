//! What `GET /__sandbox/state` shows: the money that moved, without secrets.
//!
//! Billing keys appear only as [`fingerprint`]s; secret keys only as a MID and a short hint.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cards::TestCard;
use crate::config::KeyKind;
use crate::faults::Endpoint;

/// First 16 hex digits of the SHA-256 of a billing key: how inspection names a billing key.
pub fn fingerprint(billing_key: &str) -> String {
    let digest = hex::encode(Sha256::digest(billing_key.as_bytes()));
    digest.get(..16).unwrap_or_default().to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// The sandbox clock, `+09:00`.
    pub now: String,
    pub clock_offset_seconds: i64,
    pub seed: u64,
    pub merchants: Vec<MerchantView>,
    pub billing_keys: Vec<BillingKeyView>,
    pub payments: Vec<PaymentView>,
    pub charge_attempts: Vec<ChargeAttemptView>,
    pub idempotency: Vec<IdempotencyView>,
    pub counters: Counters,
}

impl Snapshot {
    pub fn payment_by_order_id(&self, order_id: &str) -> Option<&PaymentView> {
        self.payments.iter().find(|p| p.order_id == order_id)
    }

    pub fn billing_key(&self, billing_key: &str) -> Option<&BillingKeyView> {
        let wanted = fingerprint(billing_key);
        self.billing_keys.iter().find(|b| b.fingerprint == wanted)
    }

    /// Charge requests received with this orderId (replays and refused ones included).
    pub fn charge_requests_for(&self, order_id: &str) -> u64 {
        self.counters
            .charge_requests_by_order_id
            .get(order_id)
            .copied()
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MerchantView {
    pub mid: String,
    /// The key's first characters, never the whole key.
    pub key_hint: String,
    pub key_kind: KeyKind,
    pub billing_contract: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingKeyView {
    pub mid: String,
    pub fingerprint: String,
    pub customer_key: String,
    pub card: TestCard,
    pub card_type: String,
    pub owner_type: String,
    pub masked_number: String,
    pub issued_at: String,
    pub deleted: bool,
    pub deleted_at: Option<String>,
    pub approved_charges: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    pub mid: String,
    pub payment_key: String,
    pub order_id: String,
    pub order_name: String,
    pub customer_key: String,
    pub billing_key_fingerprint: String,
    pub total_amount: i64,
    pub balance_amount: i64,
    pub status: String,
    pub approved_at: Option<String>,
    pub cancels: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargeAttemptView {
    pub mid: String,
    pub order_id: String,
    pub customer_key: String,
    pub billing_key_fingerprint: String,
    pub amount: i64,
    /// `DONE`, or the error code the charge answered.
    pub outcome: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdempotencyView {
    pub mid: String,
    pub method: String,
    pub endpoint: Endpoint,
    pub idempotency_key: String,
    pub in_flight: bool,
    pub status: Option<u16>,
    pub created_at: String,
    pub expires_at: String,
    pub replays: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Counters {
    /// Every authenticated `POST /v1/billing/{billingKey}`.
    pub charge_requests: u64,
    /// The same, per body `orderId` (when the body had one).
    pub charge_requests_by_order_id: BTreeMap<String, u64>,
    /// Charges that reached `DONE`.
    pub done_charges: u64,
    /// Charges refused by the card or a forced decline.
    pub declined_charges: u64,
    pub approved_amount: i64,
    pub canceled_amount: i64,
    pub billing_keys_issued: u64,
    pub billing_keys_deleted: u64,
    pub idempotent_replays: u64,
    pub injected_faults: u64,
}

//! The stored shape of a charge attempt: what the store reads back and writes out. Building
//! a [`ChargeAttempt`] from a record restores a saved one; it is not a transition.

use chrono::{DateTime, Utc};

use super::{AttemptKind, AttemptStatus, ChargeAttempt, Lease};
use crate::{CardRef, CustomerKey, Krw, OrderId, PaymentKey, SubscriptionId};

/// Every stored field of a [`ChargeAttempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeAttemptRecord {
    pub subscription_id: SubscriptionId,
    pub customer_key: CustomerKey,
    pub period: u32,
    pub attempt: u32,
    pub order_id: OrderId,
    pub amount: Krw,
    /// Refunds holding part of `amount` (done, or still waiting for Toss's word).
    pub refunded: Krw,
    pub kind: AttemptKind,
    pub status: AttemptStatus,
    /// The billing key the charge was (last) sent with, so that a decline is blamed on the
    /// card that was actually tried.
    pub card: Option<CardRef>,
    pub lease: Option<Lease>,
    pub payment_key: Option<PaymentKey>,
    pub approved_at: Option<DateTime<Utc>>,
    /// The card sales slip Toss issued for an approved charge.
    pub receipt_url: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub reconcile_count: u32,
    pub next_reconcile_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ChargeAttempt {
    /// The attempt a record describes.
    pub fn restore(record: ChargeAttemptRecord) -> Self {
        let ChargeAttemptRecord {
            subscription_id,
            customer_key,
            period,
            attempt,
            order_id,
            amount,
            refunded,
            kind,
            status,
            card,
            lease,
            payment_key,
            approved_at,
            receipt_url,
            error_code,
            error_message,
            reconcile_count,
            next_reconcile_at,
            created_at,
            updated_at,
        } = record;
        Self {
            subscription_id,
            customer_key,
            period,
            attempt,
            order_id,
            amount,
            refunded,
            kind,
            status,
            card,
            lease,
            payment_key,
            approved_at,
            receipt_url,
            error_code,
            error_message,
            reconcile_count,
            next_reconcile_at,
            created_at,
            updated_at,
        }
    }

    /// The stored fields, for writing the item (or for a test to start from).
    pub fn to_record(&self) -> ChargeAttemptRecord {
        ChargeAttemptRecord {
            subscription_id: self.subscription_id.clone(),
            customer_key: self.customer_key.clone(),
            period: self.period,
            attempt: self.attempt,
            order_id: self.order_id.clone(),
            amount: self.amount,
            refunded: self.refunded,
            kind: self.kind,
            status: self.status,
            card: self.card.clone(),
            lease: self.lease.clone(),
            payment_key: self.payment_key.clone(),
            approved_at: self.approved_at,
            receipt_url: self.receipt_url.clone(),
            error_code: self.error_code.clone(),
            error_message: self.error_message.clone(),
            reconcile_count: self.reconcile_count,
            next_reconcile_at: self.next_reconcile_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

//! What the rest of the workspace reads of a charge attempt; every change is a named
//! transition (`attempt.rs`), and the store rebuilds one through
//! [`ChargeAttemptRecord`](super::record::ChargeAttemptRecord).

use chrono::{DateTime, Utc};

use super::{AttemptKind, AttemptStatus, ChargeAttempt, Lease};
use crate::{CardRef, CustomerKey, Krw, OrderId, PaymentKey, SubscriptionId};

impl ChargeAttempt {
    pub fn subscription_id(&self) -> &SubscriptionId {
        &self.subscription_id
    }

    pub fn customer_key(&self) -> &CustomerKey {
        &self.customer_key
    }

    pub fn period(&self) -> u32 {
        self.period
    }

    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    pub fn order_id(&self) -> &OrderId {
        &self.order_id
    }

    pub fn amount(&self) -> Krw {
        self.amount
    }

    /// Refunds holding part of `amount` (done, or still waiting for Toss's word).
    pub fn refunded(&self) -> Krw {
        self.refunded
    }

    pub fn kind(&self) -> AttemptKind {
        self.kind
    }

    pub fn status(&self) -> AttemptStatus {
        self.status
    }

    /// The billing key the charge was (last) sent with, so that a decline is blamed on the
    /// card that was actually tried.
    pub fn card(&self) -> Option<&CardRef> {
        self.card.as_ref()
    }

    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    pub fn payment_key(&self) -> Option<&PaymentKey> {
        self.payment_key.as_ref()
    }

    pub fn approved_at(&self) -> Option<DateTime<Utc>> {
        self.approved_at
    }

    /// The card sales slip Toss issued for an approved charge.
    pub fn receipt_url(&self) -> Option<&str> {
        self.receipt_url.as_deref()
    }

    pub fn error_code(&self) -> Option<&str> {
        self.error_code.as_deref()
    }

    pub fn error_message(&self) -> Option<&str> {
        self.error_message.as_deref()
    }

    pub fn reconcile_count(&self) -> u32 {
        self.reconcile_count
    }

    pub fn next_reconcile_at(&self) -> Option<DateTime<Utc>> {
        self.next_reconcile_at
    }

    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    pub fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

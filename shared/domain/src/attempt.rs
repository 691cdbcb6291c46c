//! One charge attempt: the ledger entry written before Toss is called and completed after.

use chrono::{DateTime, Duration, Utc};

use crate::{CardRef, CustomerKey, Krw, OrderId, PaymentKey, SubscriptionId};

mod access;
pub(crate) mod record;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKind {
    /// The first period, charged right after the card is registered.
    First,
    /// A scheduled renewal on the anniversary day.
    Renewal,
    /// A dunning retry after a declined renewal.
    Retry,
    /// A charge made because the customer registered a new card while past due.
    CardUpdate,
}

impl AttemptKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::First => "first",
            Self::Renewal => "renewal",
            Self::Retry => "retry",
            Self::CardUpdate => "card_update",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::First, Self::Renewal, Self::Retry, Self::CardUpdate]
            .into_iter()
            .find(|k| k.as_str() == value)
    }
}

/// Where an attempt stands. Only `Done` grants a period; `Pending` and `Unknown` are never
/// read as failures: they are reconciled with Toss by order id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptStatus {
    /// Claimed; the request may or may not have reached Toss.
    Pending,
    /// Sent, but the answer was lost or inconclusive; look it up again later.
    Unknown,
    /// Toss approved it (`DONE`).
    Done,
    /// Toss declined it; no money moved.
    Declined,
    /// Toss refused it for a reason on our side (key, contract, request) or this customer's
    /// data; no money moved.
    NotCharged,
    /// Toss's record shows something no rule may act on alone (approved and then refunded, or
    /// aborted for a reason the class table does not know): an operator decides. Final for
    /// the engine; the subscription is put on hold in the same write.
    Review,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Unknown => "UNKNOWN",
            Self::Done => "DONE",
            Self::Declined => "DECLINED",
            Self::NotCharged => "NOT_CHARGED",
            Self::Review => "REVIEW",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Unknown,
            Self::Done,
            Self::Declined,
            Self::NotCharged,
            Self::Review,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }

    /// Whether the outcome is final (and so the subscription must already reflect it).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Done | Self::Declined | Self::NotCharged | Self::Review
        )
    }
}

/// Exclusive right to work on an attempt until `until`; whoever finds it expired may take over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeAttempt {
    subscription_id: SubscriptionId,
    customer_key: CustomerKey,
    period: u32,
    attempt: u32,
    order_id: OrderId,
    amount: Krw,
    /// Refunds holding part of `amount` (done, or still waiting for Toss's word).
    refunded: Krw,
    kind: AttemptKind,
    status: AttemptStatus,
    /// The billing key the charge was (last) sent with, so that a decline is blamed on the
    /// card that was actually tried.
    card: Option<CardRef>,
    lease: Option<Lease>,
    payment_key: Option<PaymentKey>,
    approved_at: Option<DateTime<Utc>>,
    /// The card sales slip Toss issued for an approved charge.
    receipt_url: Option<String>,
    error_code: Option<String>,
    error_message: Option<String>,
    reconcile_count: u32,
    next_reconcile_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Look-ups of an unknown outcome back off: 1 min, 5 min, 30 min, 2 h, then every 6 h.
const RECONCILE_BACKOFF_MINUTES: [i64; 5] = [1, 5, 30, 120, 360];

impl ChargeAttempt {
    #[allow(clippy::too_many_arguments)]
    pub fn claim(
        subscription_id: SubscriptionId,
        customer_key: CustomerKey,
        period: u32,
        attempt: u32,
        amount: Krw,
        kind: AttemptKind,
        lease: Lease,
        now: DateTime<Utc>,
    ) -> Self {
        let order_id = OrderId::for_attempt(&subscription_id, period, attempt);
        Self {
            subscription_id,
            customer_key,
            period,
            attempt,
            order_id,
            amount,
            refunded: Krw::new(0),
            kind,
            status: AttemptStatus::Pending,
            card: None,
            lease: Some(lease),
            payment_key: None,
            approved_at: None,
            receipt_url: None,
            error_code: None,
            error_message: None,
            reconcile_count: 0,
            next_reconcile_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Whether someone else holds a live lease on it at `now`.
    pub fn is_leased_at(&self, now: DateTime<Utc>) -> bool {
        self.lease.as_ref().is_some_and(|l| l.until > now)
    }

    /// Whether an unfinished attempt may be picked up for reconciliation at `now`.
    pub fn may_reconcile_at(&self, now: DateTime<Utc>) -> bool {
        !self.status.is_final()
            && !self.is_leased_at(now)
            && self.next_reconcile_at.is_none_or(|t| t <= now)
    }

    pub fn mark_done(
        &mut self,
        payment_key: PaymentKey,
        approved_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        self.status = AttemptStatus::Done;
        self.payment_key = Some(payment_key);
        self.approved_at = Some(approved_at);
        self.error_code = None;
        self.error_message = None;
        self.finish(now);
    }

    pub fn mark_declined(&mut self, code: &str, message: &str, now: DateTime<Utc>) {
        self.status = AttemptStatus::Declined;
        self.set_error(code, message);
        self.finish(now);
    }

    /// Sends the question to an operator: no rule may settle it alone.
    pub fn mark_for_review(&mut self, code: &str, message: &str, now: DateTime<Utc>) {
        self.status = AttemptStatus::Review;
        self.set_error(code, message);
        self.finish(now);
    }

    pub fn mark_not_charged(&mut self, code: &str, message: &str, now: DateTime<Utc>) {
        self.status = AttemptStatus::NotCharged;
        self.set_error(code, message);
        self.finish(now);
    }

    /// Leaves the attempt open and schedules the next look-up with backoff.
    pub fn mark_unknown(&mut self, code: &str, message: &str, now: DateTime<Utc>) {
        self.status = AttemptStatus::Unknown;
        self.set_error(code, message);
        let step = usize::try_from(self.reconcile_count).unwrap_or(usize::MAX);
        let minutes = RECONCILE_BACKOFF_MINUTES
            .get(step)
            .or(RECONCILE_BACKOFF_MINUTES.last())
            .copied()
            .unwrap_or(360);
        self.reconcile_count = self.reconcile_count.saturating_add(1);
        self.next_reconcile_at = Some(now + Duration::minutes(minutes));
        self.lease = None;
        self.updated_at = now;
    }

    /// The charge is (about to be) sent with `card`. Returns false when it already was.
    pub fn send_with(&mut self, card: CardRef, now: DateTime<Utc>) -> bool {
        if self.card.as_ref() == Some(&card) {
            return false;
        }
        self.card = Some(card);
        self.updated_at = self.updated_at.max(now);
        true
    }

    /// The card sales slip Toss issued for the approved charge.
    pub fn attach_receipt(&mut self, receipt_url: Option<String>) {
        self.receipt_url = receipt_url;
    }

    /// Takes over an attempt whose lease expired (a dead run's): ours until `lease.until`.
    pub fn take_over(&mut self, lease: Lease, now: DateTime<Utc>) {
        self.lease = Some(lease);
        self.updated_at = now;
    }

    /// All of the amount is held by a refund (an approval given back in full).
    pub fn hold_all_for_refund(&mut self) {
        self.refunded = self.amount;
    }

    fn set_error(&mut self, code: &str, message: &str) {
        self.error_code = Some(code.chars().take(64).collect());
        self.error_message = Some(message.chars().take(200).collect());
    }

    fn finish(&mut self, now: DateTime<Utc>) {
        self.lease = None;
        self.next_reconcile_at = None;
        self.updated_at = now;
    }
}

/// A place in a user's payments, newest first: the subscription (its position among the
/// user's subscriptions, oldest = 0) and the last payment shown of it (`period`, `attempt`),
/// or `None` to start at its newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentsCursor {
    pub subscription: u32,
    pub after: Option<(u32, u32)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(now: DateTime<Utc>) -> ChargeAttempt {
        ChargeAttempt::claim(
            SubscriptionId::parse("01JDQ4ZC1V3M5N7P9R2T4W6Y8A").unwrap(),
            CustomerKey::parse("user_1").unwrap(),
            2,
            1,
            Krw::new(3900),
            AttemptKind::Renewal,
            Lease {
                owner: "run-a".into(),
                until: now + Duration::minutes(5),
            },
            now,
        )
    }

    #[test]
    fn a_claimed_attempt_is_pending_under_a_lease_with_an_order_id_from_its_coordinates() {
        let now = Utc::now();
        let a = attempt(now);
        assert_eq!(a.status, AttemptStatus::Pending);
        assert_eq!(a.order_id.as_str(), "01JDQ4ZC1V3M5N7P9R2T4W6Y8A-2-1");
        assert!(a.is_leased_at(now));
        assert!(!a.may_reconcile_at(now));
        assert!(a.may_reconcile_at(now + Duration::minutes(6)));
    }

    #[test]
    fn unknown_outcomes_are_looked_up_again_with_growing_backoff_and_never_become_final() {
        let now = Utc::now();
        let mut a = attempt(now);
        let mut waits = Vec::new();
        for _ in 0..7 {
            a.mark_unknown(
                "FAILED_INTERNAL_SYSTEM_PROCESSING",
                "잠시 후 다시 시도해주세요",
                now,
            );
            waits.push((a.next_reconcile_at.unwrap() - now).num_minutes());
            assert!(!a.status.is_final());
        }
        assert_eq!(waits, vec![1, 5, 30, 120, 360, 360, 360]);
        assert!(!a.may_reconcile_at(now));
        assert!(a.may_reconcile_at(now + Duration::minutes(360)));
    }

    #[test]
    fn a_done_attempt_keeps_its_payment_key_and_drops_its_lease() {
        let now = Utc::now();
        let mut a = attempt(now);
        a.mark_done(PaymentKey::parse("tviva20261201").unwrap(), now, now);
        assert_eq!(a.status, AttemptStatus::Done);
        assert!(a.lease.is_none());
        assert!(a.status.is_final());
    }

    #[test]
    fn statuses_and_kinds_round_trip_through_their_stored_names() {
        for s in [
            AttemptStatus::Pending,
            AttemptStatus::Unknown,
            AttemptStatus::Done,
            AttemptStatus::Declined,
            AttemptStatus::NotCharged,
            AttemptStatus::Review,
        ] {
            assert_eq!(AttemptStatus::parse(s.as_str()), Some(s));
        }
        for k in [
            AttemptKind::First,
            AttemptKind::Renewal,
            AttemptKind::Retry,
            AttemptKind::CardUpdate,
        ] {
            assert_eq!(AttemptKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(AttemptStatus::parse("done"), None);
    }
}

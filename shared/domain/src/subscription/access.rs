//! What the rest of the workspace reads of a subscription. The fields are private to the
//! domain so that every change goes through a named transition (`subscription.rs`); the store
//! rebuilds one from its item through [`SubscriptionRecord`](super::SubscriptionRecord).

use chrono::{DateTime, Utc};

use super::{CancelReason, Dunning, Hold, Status, Subscription};
use crate::{BillingKey, CreditEntry, CustomerKey, CustomerName, Email, SubscriptionId};

impl Subscription {
    pub fn id(&self) -> &SubscriptionId {
        &self.id
    }

    pub fn customer_key(&self) -> &CustomerKey {
        &self.customer_key
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// `None` once deleted at Toss.
    pub fn billing_key(&self) -> Option<&BillingKey> {
        self.billing_key.as_ref()
    }

    /// Keys this subscription used before and that still exist at Toss: deleted by the sweep
    /// until Toss confirms (a replaced card's key, say).
    pub fn retired_billing_keys(&self) -> &[BillingKey] {
        &self.retired_billing_keys
    }

    /// Masked as Toss returns it (`43301234****123*`).
    pub fn card_number_masked(&self) -> Option<&str> {
        self.card_number_masked.as_deref()
    }

    /// The card company's name (`현대`) as Toss gave it, or its issuer code when Toss no
    /// longer sends names.
    pub fn card_company(&self) -> Option<&str> {
        self.card_company.as_deref()
    }

    pub fn customer_email(&self) -> Option<&Email> {
        self.customer_email.as_ref()
    }

    pub fn customer_name(&self) -> Option<&CustomerName> {
        self.customer_name.as_ref()
    }

    /// The moment of the first successful charge: every period is computed from it.
    pub fn anchor(&self) -> Option<DateTime<Utc>> {
        self.anchor
    }

    /// The period the next charge is for (0 = the first month).
    pub fn next_period(&self) -> u32 {
        self.next_period
    }

    /// Attempts already applied to this subscription for `next_period`.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// When the sweep should next act; `None` when there is nothing to do.
    pub fn next_charge_at(&self) -> Option<DateTime<Utc>> {
        self.next_charge_at
    }

    pub fn current_period_end(&self) -> Option<DateTime<Utc>> {
        self.current_period_end
    }

    /// The credits balance: the current period's allowance (plus carried-over credits with
    /// rollover) less what was consumed. Only ever changed together with a [`CreditEntry`].
    pub fn credits(&self) -> u64 {
        self.credits
    }

    /// Credits consumed since the current period was granted (a statutory withdrawal needs
    /// none used).
    pub fn credits_used_in_period(&self) -> u64 {
        self.credits_used_in_period
    }

    /// Ledger entries of changes made to this value and not yet written: the store writes them
    /// in the same transaction as the subscription and clears the list. Never stored on the
    /// subscription's item.
    pub fn pending_credits(&self) -> &[CreditEntry] {
        &self.pending_credits
    }

    pub fn cancel_at_period_end(&self) -> bool {
        self.cancel_at_period_end
    }

    /// The key of a statutory withdrawal's refund that Toss has not answered yet. While it is
    /// set no credit can be spent and no renewal claimed; the subscription ends (and its
    /// credits are taken back) only once Toss says the money is back, and nothing changes if
    /// Toss refuses (see `billing::withdrawal`).
    pub fn withdrawal(&self) -> Option<&str> {
        self.withdrawal.as_deref()
    }

    pub fn dunning(&self) -> Option<&Dunning> {
        self.dunning.as_ref()
    }

    /// Set while an operator must look (see [`Hold`]).
    pub fn on_hold(&self) -> Option<&Hold> {
        self.hold.as_ref()
    }

    pub fn canceled_at(&self) -> Option<DateTime<Utc>> {
        self.canceled_at
    }

    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.cancel_reason
    }

    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    pub fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }

    /// Optimistic-concurrency version, bumped on every write.
    pub fn version(&self) -> u64 {
        self.version
    }
}

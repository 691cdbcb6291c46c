//! The subscription state machine: what the sweep should do next, and how each charge
//! outcome moves a subscription. Pure functions of (state, time, policy).

use chrono::{DateTime, Utc};

use crate::period::{kst_days_after, period_due_at, period_start};

mod access;
pub(crate) mod record;
use crate::{
    BillingKey, CreditChange, CreditEntry, CustomerKey, CustomerName, DunningPolicy, Email,
    OrderId, Plan, SubscriptionId,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Card registered, first charge not (yet) successful: no access.
    Incomplete,
    Active,
    /// A renewal was declined; retries are scheduled.
    PastDue,
    /// Terminal. Registering a card again starts a new subscription.
    Canceled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incomplete => "incomplete",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Incomplete,
            Self::Active,
            Self::PastDue,
            Self::Canceled,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// `cancel_at_period_end` was set and the period ended.
    PeriodEnd,
    /// Every dunning retry failed, or the card could never succeed and the window closed.
    DunningExhausted,
    /// The first charge never succeeded and nobody finished the checkout in time.
    Abandoned,
    /// The customer canceled an unpaid (`incomplete` or `past_due`) subscription.
    Customer,
    /// The current period was refunded in full (by an operator or in Toss's console).
    Refunded,
    /// The customer withdrew within the statutory window (청약철회) and was refunded.
    Withdrawn,
}

impl CancelReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PeriodEnd => "period_end",
            Self::DunningExhausted => "dunning_exhausted",
            Self::Abandoned => "abandoned",
            Self::Customer => "customer",
            Self::Refunded => "refunded",
            Self::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::PeriodEnd,
            Self::DunningExhausted,
            Self::Abandoned,
            Self::Customer,
            Self::Refunded,
            Self::Withdrawn,
        ]
        .into_iter()
        .find(|r| r.as_str() == value)
    }
}

/// How a declined charge bears on the retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclineKind {
    /// Worth trying again on a later day (limit exceeded, insufficient funds, issuer refusal).
    Soft,
    /// The card can never succeed (stopped, expired, billing key unknown): only a new card helps.
    NeedsNewCard,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dunning {
    /// When the first renewal of this cycle was declined.
    pub started_at: DateTime<Utc>,
    /// Declined attempts in this cycle, the first one included.
    pub failed_attempts: u32,
    pub card_unusable: bool,
    pub last_code: String,
}

/// An operator must look before the engine touches this subscription's charges again: Toss
/// refused this customer's data, or its record of a payment is one no rule may settle alone.
/// The sweep leaves a held subscription alone (it is out of the due index) and counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Toss's code, or ours (`PAYMENT_CANCELED`, …).
    pub code: String,
    /// The attempt that caused it.
    pub order_id: Option<OrderId>,
    pub since: DateTime<Utc>,
}

/// What the sweep should do with a subscription at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextAction {
    Nothing,
    /// Charge `period` (a renewal, or a dunning retry when past due).
    Charge {
        period: u32,
    },
    /// Only finish an attempt already under way (the first charge's outcome is unknown).
    ReconcileOnly,
    Cancel(CancelReason),
    /// Canceled, but its billing key still exists at Toss.
    DeleteBillingKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    id: SubscriptionId,
    customer_key: CustomerKey,
    status: Status,
    /// `None` once deleted at Toss.
    billing_key: Option<BillingKey>,
    /// Keys this subscription used before and that still exist at Toss: deleted by the sweep
    /// until Toss confirms (a replaced card's key, say).
    retired_billing_keys: Vec<BillingKey>,
    /// Masked as Toss returns it (`43301234****123*`).
    card_number_masked: Option<String>,
    /// The card company's name (`현대`) as Toss gave it, or its issuer code when Toss no
    /// longer sends names.
    card_company: Option<String>,
    customer_email: Option<Email>,
    customer_name: Option<CustomerName>,
    /// The moment of the first successful charge: every period is computed from it.
    anchor: Option<DateTime<Utc>>,
    /// The period the next charge is for (0 = the first month).
    next_period: u32,
    /// Attempts already applied to this subscription for `next_period`.
    attempts: u32,
    /// When the sweep should next act; `None` when there is nothing to do.
    next_charge_at: Option<DateTime<Utc>>,
    current_period_end: Option<DateTime<Utc>>,
    /// The credits balance: the current period's allowance (plus carried-over credits with
    /// rollover) less what was consumed. Only ever changed together with a [`CreditEntry`].
    credits: u64,
    /// Credits consumed since the current period was granted (a statutory withdrawal needs
    /// none used).
    credits_used_in_period: u64,
    /// Ledger entries of changes made to this value and not yet written: the store writes them
    /// in the same transaction as the subscription and clears the list. Never stored on the
    /// subscription's item.
    pending_credits: Vec<CreditEntry>,
    cancel_at_period_end: bool,
    /// The key of a statutory withdrawal's refund that Toss has not answered yet. While it is
    /// set no credit can be spent and no renewal claimed; the subscription ends (and its
    /// credits are taken back) only once Toss says the money is back, and nothing changes if
    /// Toss refuses (see `billing::withdrawal`).
    withdrawal: Option<String>,
    dunning: Option<Dunning>,
    /// Set while an operator must look (see [`Hold`]).
    hold: Option<Hold>,
    canceled_at: Option<DateTime<Utc>>,
    cancel_reason: Option<CancelReason>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version, bumped on every write.
    version: u64,
}

impl Subscription {
    /// A new subscription whose first charge is about to be attempted.
    pub fn new(
        id: SubscriptionId,
        customer_key: CustomerKey,
        billing_key: BillingKey,
        card_number_masked: Option<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            customer_key,
            status: Status::Incomplete,
            billing_key: Some(billing_key),
            retired_billing_keys: Vec::new(),
            card_number_masked,
            card_company: None,
            customer_email: None,
            customer_name: None,
            anchor: None,
            next_period: 0,
            attempts: 0,
            // Due at once, so that an interrupted first charge is reconciled by the sweep.
            next_charge_at: Some(now),
            current_period_end: None,
            credits: 0,
            credits_used_in_period: 0,
            pending_credits: Vec::new(),
            cancel_at_period_end: false,
            withdrawal: None,
            dunning: None,
            hold: None,
            canceled_at: None,
            cancel_reason: None,
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }

    pub fn next_action(&self, as_of: DateTime<Utc>) -> NextAction {
        if self.status == Status::Canceled {
            return if self.billing_key.is_some() {
                NextAction::DeleteBillingKey
            } else {
                NextAction::Nothing
            };
        }
        if self.hold.is_some() {
            return NextAction::Nothing;
        }
        match self.next_charge_at {
            Some(due) if due <= as_of => {}
            _ => return NextAction::Nothing,
        }
        match self.status {
            Status::Incomplete => NextAction::ReconcileOnly,
            Status::Active if self.cancel_at_period_end => {
                NextAction::Cancel(CancelReason::PeriodEnd)
            }
            Status::Active => NextAction::Charge {
                period: self.next_period,
            },
            Status::PastDue if self.dunning.as_ref().is_some_and(|d| d.card_unusable) => {
                NextAction::Cancel(CancelReason::DunningExhausted)
            }
            Status::PastDue => NextAction::Charge {
                period: self.next_period,
            },
            Status::Canceled => NextAction::Nothing,
        }
    }

    /// When the due index should surface this subscription; `None` keeps it out.
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        let own = match self.status {
            Status::Canceled if self.billing_key.is_some() => {
                Some(self.canceled_at.unwrap_or(self.updated_at))
            }
            Status::Canceled => None,
            _ if self.hold.is_some() => None,
            _ => self.next_charge_at,
        };
        // A retired key still alive at Toss keeps the subscription in the index until deleted.
        let retired = (!self.retired_billing_keys.is_empty()).then_some(self.updated_at);
        match (own, retired) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Number of the attempt a new charge of `next_period` would be.
    pub fn next_attempt(&self) -> u32 {
        self.attempts + 1
    }

    /// Toss approved the charge for `period` at `approved_at`.
    pub fn apply_success(&mut self, period: u32, approved_at: DateTime<Utc>, plan: &Plan) {
        let anchor = *self.anchor.get_or_insert(approved_at);
        self.status = Status::Active;
        self.next_period = period + 1;
        self.attempts = 0;
        self.dunning = None;
        self.grant_period_credits(period, plan, approved_at);
        self.current_period_end = Some(period_start(anchor, period + 1));
        self.next_charge_at = Some(period_due_at(anchor, period + 1));
        self.touch(approved_at);
    }

    /// Toss declined attempt `attempt` for `period` at `at`. Returns whether the subscription
    /// must now be canceled (the caller deletes the billing key and then calls [`cancel`]).
    ///
    /// [`cancel`]: Self::cancel
    pub fn apply_decline(
        &mut self,
        attempt: u32,
        kind: DeclineKind,
        code: &str,
        at: DateTime<Utc>,
        policy: &DunningPolicy,
    ) -> bool {
        self.attempts = attempt;
        self.touch(at);
        if self.status == Status::Incomplete {
            // No access was ever granted: nothing to retry; a new registration charges again.
            // It stays due so that the sweep ends it (and deletes its key) once abandoned.
            return false;
        }
        let previous = self.dunning.take();
        let dunning = Dunning {
            started_at: previous.as_ref().map_or(at, |d| d.started_at),
            failed_attempts: previous.as_ref().map_or(1, |d| d.failed_attempts + 1),
            card_unusable: kind == DeclineKind::NeedsNewCard
                || previous.as_ref().is_some_and(|d| d.card_unusable),
            last_code: code.to_owned(),
        };
        self.status = Status::PastDue;
        let next = if dunning.card_unusable {
            // Retries cannot help: wait for a new card until the window closes.
            Some(kst_days_after(dunning.started_at, policy.window_days()))
                .filter(|close| *close > at)
        } else {
            let retry_index = usize::try_from(dunning.failed_attempts - 1).unwrap_or(usize::MAX);
            policy
                .retry_day(retry_index)
                .map(|d| kst_days_after(dunning.started_at, d))
        };
        self.dunning = Some(dunning);
        match next {
            Some(when) => {
                self.next_charge_at = Some(when);
                false
            }
            None => true,
        }
    }

    /// Ends the subscription. Its billing key stays until [`billing_key_deleted`] is called.
    ///
    /// [`billing_key_deleted`]: Self::billing_key_deleted
    pub fn cancel(&mut self, reason: CancelReason, at: DateTime<Utc>) {
        if self.status != Status::Canceled && self.credits > 0 {
            // A canceled subscription's credits cannot be spent: they lapse with it.
            let expired = self.credits;
            self.credits = 0;
            self.record_credits(CreditChange::Expire, expired, None, "canceled".into(), at);
        }
        self.status = Status::Canceled;
        self.cancel_reason = Some(reason);
        self.canceled_at = Some(at);
        self.next_charge_at = None;
        self.touch(at);
    }

    pub fn billing_key_deleted(&mut self, at: DateTime<Utc>) {
        self.billing_key = None;
        self.touch(at);
    }

    /// Toss says `key` was deleted on its side (the `BILLING_DELETED` webhook: the customer or
    /// the card company removed it). Only the current key matters: the card is gone, so the
    /// key is dropped (Toss has nothing left to delete) together with the card shown to the
    /// app. The paid period runs on; at the next renewal or retry the engine finds no key and
    /// records the "needs a new card" decline without calling Toss (`apply_decline` with
    /// [`DeclineKind::NeedsNewCard`]). Returns false, changing nothing, for any other key.
    pub fn card_deleted_at_toss(&mut self, key: &BillingKey, at: DateTime<Utc>) -> bool {
        if self.billing_key.as_ref() != Some(key) {
            return false;
        }
        self.billing_key = None;
        self.card_number_masked = None;
        self.card_company = None;
        self.touch(at);
        true
    }

    /// Toss confirmed the deletion of a retired key.
    pub fn retired_key_deleted(&mut self, key: &BillingKey, at: DateTime<Utc>) {
        self.retired_billing_keys.retain(|k| k != key);
        self.touch(at);
    }

    /// Puts the subscription on hold for an operator (see [`Hold`]); no period is granted and
    /// no dunning starts.
    pub fn hold(&mut self, code: &str, order_id: Option<OrderId>, at: DateTime<Utc>) {
        self.hold = Some(Hold {
            code: code.chars().take(64).collect(),
            order_id,
            since: at,
        });
        self.touch(at);
    }

    /// An operator looked and lets the engine carry on: the next charge of the period goes
    /// out under the next attempt number.
    pub fn release_hold(&mut self, at: DateTime<Utc>) {
        self.hold = None;
        self.next_charge_at = Some(at);
        self.touch(at);
    }

    /// The customer asked to stop at the end of the paid period: the sweep ends it then,
    /// without charging.
    pub fn schedule_cancel(&mut self, at: DateTime<Utc>) {
        self.cancel_at_period_end = true;
        self.touch(at);
    }

    /// Whether a scheduled cancel can still be taken back at `now`: only while the paid
    /// period lasts.
    pub fn resumable(&self, now: DateTime<Utc>) -> bool {
        self.status == Status::Active
            && self.cancel_at_period_end
            && self.current_period_end.is_some_and(|end| now < end)
    }

    /// A statutory withdrawal's refund `refund_key` is claimed: until Toss answers, nothing
    /// may be spent and nothing charged (the store's conditions read this).
    pub fn begin_withdrawal(&mut self, refund_key: &str, at: DateTime<Utc>) {
        self.withdrawal = Some(refund_key.to_owned());
        self.touch(at);
    }

    /// Toss answered the withdrawal's refund `refund_key` (done or refused): the lock is
    /// lifted. Returns whether it was this refund's lock.
    pub fn end_withdrawal(&mut self, refund_key: &str, at: DateTime<Utc>) -> bool {
        if self.withdrawal.as_deref() != Some(refund_key) {
            return false;
        }
        self.withdrawal = None;
        self.touch(at);
        true
    }

    /// Takes back a scheduled cancel (see [`resumable`](Self::resumable)).
    pub fn resume(&mut self, at: DateTime<Utc>) {
        self.cancel_at_period_end = false;
        self.touch(at);
    }

    /// A charge of the current period is claimed now (a new card on an unpaid subscription):
    /// the subscription is due at once, so that the sweep reconciles the attempt if its
    /// outcome is never recorded.
    pub fn charge_now(&mut self, at: DateTime<Utc>) {
        self.next_charge_at = Some(at);
        self.touch(at);
    }

    /// When an `incomplete` subscription with nothing under way is given up and its key
    /// deleted.
    pub fn abandoned_at(&self, expiry: chrono::Duration) -> DateTime<Utc> {
        self.created_at + expiry
    }

    /// A new card for a live subscription. Returns the key it replaces, which is also kept in
    /// [`retired_billing_keys`] until Toss confirms its deletion.
    ///
    /// [`retired_billing_keys`]: Self::retired_billing_keys
    pub fn replace_card(
        &mut self,
        billing_key: BillingKey,
        card_number_masked: Option<String>,
        at: DateTime<Utc>,
    ) -> Option<BillingKey> {
        if let Some(d) = self.dunning.as_mut() {
            d.card_unusable = false;
        }
        self.card_number_masked = card_number_masked;
        self.touch(at);
        let old = self.billing_key.replace(billing_key.clone());
        if let Some(old) = old.as_ref().filter(|old| **old != billing_key) {
            self.retired_billing_keys.push(old.clone());
        }
        old
    }

    /// A key Toss issued for this customer that no subscription uses: listed as retired, so
    /// that the sweep deletes it until Toss confirms. Returns false (and changes nothing) when
    /// it is the current key.
    pub fn retire_unused_key(&mut self, key: &BillingKey) -> bool {
        if self.billing_key.as_ref() == Some(key) {
            return false;
        }
        if !self.retired_billing_keys.contains(key) {
            self.retired_billing_keys.push(key.clone());
        }
        true
    }

    /// The card company Toss named for the current card.
    pub fn set_card_company(&mut self, company: Option<String>) {
        self.card_company = company;
    }

    /// What the customer gave at their latest registration goes on the receipts from now on
    /// (a corrected e-mail that Toss refused before, say); what they left out stays as it was.
    pub fn update_contact(&mut self, email: Option<Email>, name: Option<CustomerName>) {
        if let Some(email) = email {
            self.customer_email = Some(email);
        }
        if let Some(name) = name {
            self.customer_name = Some(name);
        }
    }

    /// The sweep looks at it again at `at` (an `incomplete` subscription waiting to be given
    /// up). Returns false when it already would.
    pub fn revisit_at(&mut self, at: DateTime<Utc>) -> bool {
        if self.next_charge_at == Some(at) {
            return false;
        }
        self.next_charge_at = Some(at);
        true
    }

    /// Whether a newly registered card should be charged at once.
    pub fn charges_on_new_card(&self) -> bool {
        self.hold.is_none() && matches!(self.status, Status::Incomplete | Status::PastDue)
    }

    /// A paid period's allowance: without rollover the unused credits expire first, in the
    /// same write.
    fn grant_period_credits(&mut self, period: u32, plan: &Plan, at: DateTime<Utc>) {
        let reference = format!("period-{period}");
        if !plan.credits_roll_over() && self.credits > 0 {
            let expired = self.credits;
            self.credits = 0;
            self.record_credits(
                CreditChange::Expire,
                expired,
                period.checked_sub(1),
                reference.clone(),
                at,
            );
        }
        let granted = u64::from(plan.credits());
        self.credits = self.credits.saturating_add(granted);
        self.credits_used_in_period = 0;
        if granted > 0 {
            self.record_credits(CreditChange::Grant, granted, Some(period), reference, at);
        }
    }

    /// Takes back up to `amount` of the current balance (a refunded period's credits).
    /// Returns how many were taken; nothing is recorded when there is nothing to take.
    pub fn revoke_credits(
        &mut self,
        amount: u64,
        period: Option<u32>,
        reference: String,
        at: DateTime<Utc>,
    ) -> u64 {
        let taken = amount.min(self.credits);
        if taken > 0 {
            self.credits -= taken;
            self.record_credits(CreditChange::Revoke, taken, period, reference, at);
            self.touch(at);
        }
        taken
    }

    fn record_credits(
        &mut self,
        change: CreditChange,
        amount: u64,
        period: Option<u32>,
        reference: String,
        at: DateTime<Utc>,
    ) {
        self.pending_credits.push(CreditEntry {
            change,
            amount,
            balance: Some(self.credits),
            period,
            reference,
            at,
        });
    }

    fn touch(&mut self, at: DateTime<Utc>) {
        if at > self.updated_at {
            self.updated_at = at;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Krw;

    fn kst(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn plan() -> Plan {
        Plan::new(Krw::new(3900), "Saju맛피아 Pro", 30).unwrap()
    }

    fn new_sub(now: DateTime<Utc>) -> Subscription {
        Subscription::new(
            SubscriptionId::parse("01JDQ4ZC1V3M5N7P9R2T4W6Y8A").unwrap(),
            CustomerKey::parse("user_1").unwrap(),
            BillingKey::parse("bk_1").unwrap(),
            None,
            now,
        )
    }

    fn active_since(anchor: DateTime<Utc>) -> Subscription {
        let mut s = new_sub(anchor);
        s.apply_success(0, anchor, &plan());
        s
    }

    #[test]
    fn a_current_key_deleted_at_toss_leaves_the_paid_period_and_no_card() {
        let anchor = kst("2026-01-15T10:00:00+09:00");
        let mut s = active_since(anchor);
        s.card_number_masked = Some("43301234****123*".into());
        let renewal = s.next_charge_at;

        let changed = s.card_deleted_at_toss(&BillingKey::parse("bk_1").unwrap(), anchor);

        assert!(changed);
        assert_eq!(s.billing_key, None);
        assert_eq!(s.card_number_masked, None);
        assert_eq!(s.status, Status::Active);
        assert_eq!(s.next_charge_at, renewal);
        assert_eq!(s.credits, 30);
    }

    #[test]
    fn a_deleted_key_that_is_not_the_current_one_changes_nothing() {
        let anchor = kst("2026-01-15T10:00:00+09:00");
        let mut s = active_since(anchor);
        s.replace_card(BillingKey::parse("bk_2").unwrap(), None, anchor);
        let before = s.clone();

        assert!(!s.card_deleted_at_toss(&BillingKey::parse("bk_1").unwrap(), anchor));
        assert!(!s.card_deleted_at_toss(&BillingKey::parse("bk_9").unwrap(), anchor));
        assert_eq!(s, before);
    }

    #[test]
    fn a_first_success_anchors_the_calendar_grants_credits_and_schedules_the_next_month() {
        let t = kst("2026-01-31T10:00:00+09:00");
        let s = active_since(t);
        assert_eq!(s.status, Status::Active);
        assert_eq!(s.anchor, Some(t));
        assert_eq!(s.credits, 30);
        assert_eq!(s.next_period, 1);
        assert_eq!(s.current_period_end, Some(kst("2026-02-28T10:00:00+09:00")));
        assert_eq!(s.next_charge_at, Some(kst("2026-02-28T00:00:00+09:00")));
    }

    #[test]
    fn renewals_are_due_on_the_anniversary_day_and_not_before() {
        let s = active_since(kst("2026-01-31T10:00:00+09:00"));
        assert_eq!(
            s.next_action(kst("2026-02-27T09:00:00+09:00")),
            NextAction::Nothing
        );
        assert_eq!(
            s.next_action(kst("2026-02-28T09:00:00+09:00")),
            NextAction::Charge { period: 1 }
        );
    }

    #[test]
    fn with_rollover_unused_credits_add_up_and_nothing_expires() {
        let anchor = kst("2026-01-31T10:00:00+09:00");
        let mut s = active_since(anchor);
        let rolling = plan().with_rollover(true);
        s.apply_success(1, kst("2026-02-28T09:00:05+09:00"), &rolling);
        s.apply_success(2, kst("2026-03-31T09:00:05+09:00"), &rolling);
        assert_eq!(s.credits, 90);
        assert!(
            s.pending_credits
                .iter()
                .all(|e| e.change == CreditChange::Grant)
        );
        assert_eq!(crate::replay_balance(&s.pending_credits), Some(90));
    }

    #[test]
    fn a_withdrawal_lock_is_lifted_only_by_its_own_refund_and_changes_nothing_else() {
        let anchor = kst("2026-01-31T10:00:00+09:00");
        let mut s = active_since(anchor);
        let before = s.clone();
        let at = kst("2026-02-02T10:00:00+09:00");
        s.begin_withdrawal("refund-X-0-1-1", at);
        assert_eq!(s.withdrawal.as_deref(), Some("refund-X-0-1-1"));
        assert!(
            !s.end_withdrawal("refund-X-0-1-2", at),
            "another refund's key"
        );
        assert!(s.withdrawal.is_some());
        assert!(s.end_withdrawal("refund-X-0-1-1", at));
        assert_eq!(s.withdrawal, None);
        assert_eq!(
            (s.status, s.credits, s.next_charge_at, s.next_period),
            (
                before.status,
                before.credits,
                before.next_charge_at,
                before.next_period
            )
        );
    }

    #[test]
    fn ending_a_subscription_expires_its_credits_once_and_a_scheduled_cancel_can_be_taken_back() {
        let anchor = kst("2026-01-31T10:00:00+09:00");
        let mut s = active_since(anchor);
        let in_period = kst("2026-02-10T00:00:00+09:00");
        s.schedule_cancel(in_period);
        assert!(s.resumable(in_period));
        assert!(
            !s.resumable(kst("2026-02-28T10:00:00+09:00")),
            "period over"
        );
        s.resume(in_period);
        assert!(!s.cancel_at_period_end && !s.resumable(in_period));

        s.cancel(CancelReason::Customer, in_period);
        s.cancel(CancelReason::Customer, in_period);
        assert_eq!(s.credits, 0);
        let expiries: Vec<_> = s
            .pending_credits
            .iter()
            .filter(|e| e.change == CreditChange::Expire)
            .map(|e| (e.amount, e.reference.as_str()))
            .collect();
        assert_eq!(expiries, [(30, "canceled")]);
        assert_eq!(crate::replay_balance(&s.pending_credits), Some(0));
        assert_eq!(
            CancelReason::parse("customer"),
            Some(CancelReason::Customer)
        );
    }

    #[test]
    fn each_paid_period_resets_the_allowance_and_keeps_the_anchor_day() {
        let anchor = kst("2026-01-31T10:00:00+09:00");
        let mut s = active_since(anchor);
        s.credits -= 12;
        s.pending_credits.clear();
        s.apply_success(1, kst("2026-02-28T09:00:05+09:00"), &plan());
        s.apply_success(2, kst("2026-03-31T09:00:05+09:00"), &plan());
        assert_eq!(s.credits, 30);
        let changes: Vec<_> = s
            .pending_credits
            .iter()
            .map(|e| (e.change, e.amount, e.period, e.balance))
            .collect();
        assert_eq!(
            changes,
            [
                (CreditChange::Expire, 18, Some(0), Some(0)),
                (CreditChange::Grant, 30, Some(1), Some(30)),
                (CreditChange::Expire, 30, Some(1), Some(0)),
                (CreditChange::Grant, 30, Some(2), Some(30)),
            ]
        );
        assert_eq!(s.anchor, Some(anchor));
        assert_eq!(s.next_charge_at, Some(kst("2026-04-30T00:00:00+09:00")));
        assert_eq!(s.current_period_end, Some(kst("2026-04-30T10:00:00+09:00")));
    }

    #[test]
    fn a_declined_renewal_is_retried_one_three_and_five_days_after_the_first_failure_then_canceled()
    {
        let policy = DunningPolicy::default();
        let mut s = active_since(kst("2026-01-10T10:00:00+09:00"));
        let first_fail = kst("2026-02-10T09:00:03+09:00");
        assert!(!s.apply_decline(
            1,
            DeclineKind::Soft,
            "REJECT_CARD_PAYMENT",
            first_fail,
            &policy
        ));
        assert_eq!(s.status, Status::PastDue);
        assert_eq!(s.next_charge_at, Some(kst("2026-02-11T00:00:00+09:00")));
        assert!(!s.apply_decline(
            2,
            DeclineKind::Soft,
            "REJECT_CARD_PAYMENT",
            kst("2026-02-11T09:00:00+09:00"),
            &policy
        ));
        assert_eq!(s.next_charge_at, Some(kst("2026-02-13T00:00:00+09:00")));
        assert!(!s.apply_decline(
            3,
            DeclineKind::Soft,
            "REJECT_CARD_PAYMENT",
            kst("2026-02-13T09:00:00+09:00"),
            &policy
        ));
        assert_eq!(s.next_charge_at, Some(kst("2026-02-15T00:00:00+09:00")));
        let cancel = s.apply_decline(
            4,
            DeclineKind::Soft,
            "REJECT_CARD_PAYMENT",
            kst("2026-02-15T09:00:00+09:00"),
            &policy,
        );
        assert!(cancel, "the last retry failing ends the subscription");
        assert_eq!(s.credits, 30, "no credits without a payment");
    }

    #[test]
    fn with_no_retries_configured_the_first_decline_ends_the_subscription() {
        let policy = DunningPolicy::parse("").unwrap();
        let mut s = active_since(kst("2026-01-10T10:00:00+09:00"));
        assert!(s.apply_decline(
            1,
            DeclineKind::Soft,
            "REJECT_CARD_PAYMENT",
            kst("2026-02-10T09:00:00+09:00"),
            &policy
        ));
    }

    #[test]
    fn a_card_that_can_never_succeed_skips_retries_and_is_canceled_when_the_window_closes() {
        let policy = DunningPolicy::default();
        let mut s = active_since(kst("2026-01-10T10:00:00+09:00"));
        let at = kst("2026-02-10T09:00:00+09:00");
        assert!(!s.apply_decline(
            1,
            DeclineKind::NeedsNewCard,
            "INVALID_STOPPED_CARD",
            at,
            &policy
        ));
        assert_eq!(s.next_charge_at, Some(kst("2026-02-15T00:00:00+09:00")));
        assert_eq!(
            s.next_action(kst("2026-02-12T09:00:00+09:00")),
            NextAction::Nothing
        );
        assert_eq!(
            s.next_action(kst("2026-02-15T09:00:00+09:00")),
            NextAction::Cancel(CancelReason::DunningExhausted)
        );
    }

    #[test]
    fn a_new_card_while_past_due_is_charged_at_once_and_resumes_on_the_original_anchor() {
        let policy = DunningPolicy::default();
        let anchor = kst("2026-01-31T10:00:00+09:00");
        let mut s = active_since(anchor);
        s.apply_decline(
            1,
            DeclineKind::NeedsNewCard,
            "INVALID_STOPPED_CARD",
            kst("2026-02-28T09:00:00+09:00"),
            &policy,
        );
        let old = s.replace_card(
            BillingKey::parse("bk_2").unwrap(),
            None,
            kst("2026-03-02T12:00:00+09:00"),
        );
        assert!(old.is_some());
        assert!(s.charges_on_new_card());
        assert!(!s.dunning.as_ref().unwrap().card_unusable);
        s.apply_success(1, kst("2026-03-02T12:00:05+09:00"), &plan());
        assert_eq!(s.status, Status::Active);
        assert_eq!(s.dunning, None);
        assert_eq!(s.next_charge_at, Some(kst("2026-03-31T00:00:00+09:00")));
    }

    #[test]
    fn a_declined_first_charge_leaves_the_subscription_incomplete_and_due_only_to_be_ended_later() {
        let now = kst("2026-01-10T10:00:00+09:00");
        let mut s = new_sub(now);
        assert_eq!(s.next_action(now), NextAction::ReconcileOnly);
        assert!(!s.apply_decline(
            1,
            DeclineKind::Soft,
            "REJECT_CARD_PAYMENT",
            now,
            &DunningPolicy::default()
        ));
        assert_eq!(s.status, Status::Incomplete);
        assert_eq!(s.next_action(now), NextAction::ReconcileOnly);
        assert_eq!(
            s.abandoned_at(chrono::Duration::hours(24)),
            kst("2026-01-11T10:00:00+09:00")
        );
        assert_eq!(s.next_attempt(), 2);
        assert_eq!(s.credits, 0);
    }

    #[test]
    fn cancel_at_period_end_cancels_instead_of_charging_and_then_the_key_is_deleted() {
        let mut s = active_since(kst("2026-01-10T10:00:00+09:00"));
        s.cancel_at_period_end = true;
        let at = kst("2026-02-10T09:00:00+09:00");
        assert_eq!(
            s.next_action(at),
            NextAction::Cancel(CancelReason::PeriodEnd)
        );
        s.cancel(CancelReason::PeriodEnd, at);
        assert_eq!(s.next_action(at), NextAction::DeleteBillingKey);
        assert_eq!(s.due_at(), Some(at));
        s.billing_key_deleted(at);
        assert_eq!(s.next_action(at), NextAction::Nothing);
        assert_eq!(s.due_at(), None);
    }

    #[test]
    fn a_held_subscription_is_out_of_the_sweep_and_a_new_card_does_not_charge_it() {
        let mut s = active_since(kst("2026-01-10T10:00:00+09:00"));
        let at = kst("2026-02-10T09:00:00+09:00");
        s.hold("INVALID_EMAIL", None, at);
        assert_eq!(s.next_action(at), NextAction::Nothing);
        assert_eq!(s.due_at(), None);
        s.status = Status::PastDue;
        assert!(!s.charges_on_new_card(), "an operator decides first");
    }

    #[test]
    fn a_replaced_key_is_kept_due_for_deletion_until_toss_confirms_it() {
        let mut s = active_since(kst("2026-01-10T10:00:00+09:00"));
        let at = kst("2026-01-20T12:00:00+09:00");
        let old = s.replace_card(BillingKey::parse("bk_2").unwrap(), None, at);
        assert_eq!(s.retired_billing_keys, vec![old.clone().unwrap()]);
        assert_eq!(s.due_at(), Some(at), "due now, to delete the old key");
        s.retired_key_deleted(&old.unwrap(), at);
        assert_eq!(s.due_at(), Some(kst("2026-02-10T00:00:00+09:00")));
    }

    #[test]
    fn registering_the_same_key_again_retires_nothing() {
        let mut s = active_since(kst("2026-01-10T10:00:00+09:00"));
        s.replace_card(
            BillingKey::parse("bk_1").unwrap(),
            None,
            kst("2026-01-20T12:00:00+09:00"),
        );
        assert!(s.retired_billing_keys.is_empty());
    }

    #[test]
    fn statuses_round_trip_through_their_stored_names() {
        for st in [
            Status::Incomplete,
            Status::Active,
            Status::PastDue,
            Status::Canceled,
        ] {
            assert_eq!(Status::parse(st.as_str()), Some(st));
        }
        for r in [
            CancelReason::PeriodEnd,
            CancelReason::DunningExhausted,
            CancelReason::Abandoned,
        ] {
            assert_eq!(CancelReason::parse(r.as_str()), Some(r));
        }
    }
}

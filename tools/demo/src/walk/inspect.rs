//! What the table and the Toss sandbox hold, and the checks made against them: a customer's
//! stored subscription, their refunds, Toss's record of a refund, and the closing reconciliation
//! of the ledger with the sandbox.

use anyhow::{Context, ensure};
use domain::{AttemptStatus, ChargeAttempt, Status, Subscription};
use toss_sandbox::Snapshot;

use super::{ALICE, BOB, CAROL, Customer, DAVE, ERIN, Walk};
use crate::config::PLAN_CREDITS;
use crate::fmt::{kst, kst_at, won};

/// What a stored subscription must be: its state, credits and next charge day (Seoul calendar).
#[derive(Debug, Clone, Copy)]
pub(super) struct Sub {
    status: Status,
    credits: u64,
    next: Option<(i32, u32, u32)>,
}

impl Sub {
    /// Ended: no credits, nothing scheduled.
    pub(super) const CANCELED: Self = Self {
        status: Status::Canceled,
        credits: 0,
        next: None,
    };

    /// Paid up with the plan's credits, next charged on the given day.
    pub(super) const fn active(year: i32, month: u32, day: u32) -> Self {
        Self {
            status: Status::Active,
            credits: PLAN_CREDITS,
            next: Some((year, month, day)),
        }
    }

    /// A renewal declined: the month's credits kept, the next retry on the given day.
    pub(super) const fn past_due(year: i32, month: u32, day: u32) -> Self {
        Self {
            status: Status::PastDue,
            ..Self::active(year, month, day)
        }
    }

    /// Checks a subscription against this.
    pub(super) fn check(&self, sub: &Subscription) -> anyhow::Result<()> {
        ensure!(
            sub.status() == self.status && sub.credits() == self.credits,
            "{}: expected {} with {} credits, found {} with {}",
            sub.customer_key().as_str(),
            self.status.as_str(),
            self.credits,
            sub.status().as_str(),
            sub.credits()
        );
        let want = self
            .next
            .map(|(y, m, d)| kst_at(y, m, d, 0, 0))
            .transpose()?;
        ensure!(
            sub.next_charge_at() == want,
            "{}: expected the next charge at {:?}, found {:?}",
            sub.customer_key().as_str(),
            want.map(kst),
            sub.next_charge_at().map(kst)
        );
        Ok(())
    }
}

impl Walk<'_> {
    pub(super) fn snapshot(&self) -> Snapshot {
        self.stack.sandbox.sandbox().snapshot()
    }

    /// Charge requests Toss has received so far, from anyone.
    pub(super) fn charge_requests(&self) -> u64 {
        self.snapshot().counters.charge_requests
    }

    pub(super) async fn subscription(&self, who: Customer) -> anyhow::Result<Option<Subscription>> {
        match self.keys.get(who.name) {
            Some(key) => Ok(self.stack.store.customer_subscription(key).await?),
            None => Ok(None),
        }
    }

    pub(super) async fn current(&self, who: Customer) -> anyhow::Result<Subscription> {
        self.subscription(who)
            .await?
            .with_context(|| format!("{} has no subscription in the table", who.name))
    }

    /// `who`'s stored subscription, checked against `want`.
    pub(super) async fn expect_sub(
        &self,
        who: Customer,
        want: Sub,
    ) -> anyhow::Result<Subscription> {
        let sub = self.current(who).await?;
        want.check(&sub)?;
        Ok(sub)
    }

    /// `who`'s refunds in the ledger: (amount, status).
    pub(super) async fn refunds(&self, who: Customer) -> anyhow::Result<Vec<(u64, String)>> {
        let sub = self.current(who).await?;
        Ok(self
            .stack
            .store
            .refunds(sub.id())
            .await?
            .iter()
            .map(|r| (r.amount.won(), r.status.as_str().to_owned()))
            .collect())
    }

    /// Toss holds `who`'s one payment fully canceled, by one cancel.
    pub(super) fn expect_refunded_at_toss(&self, who: Customer) -> anyhow::Result<()> {
        let key = self.key(who)?.as_str().to_owned();
        let snapshot = self.snapshot();
        let payments: Vec<_> = snapshot
            .payments
            .iter()
            .filter(|p| p.customer_key == key)
            .collect();
        ensure!(
            payments.len() == 1
                && payments[0].status == "CANCELED"
                && payments[0].balance_amount == 0
                && payments[0].cancels == 1,
            "{}: Toss should hold one payment canceled once: {payments:?}",
            who.name
        );
        Ok(())
    }

    /// The closing check: the table's ledger and Toss's side agree, order id by order id.
    pub(super) async fn reconcile(&mut self) -> anyhow::Result<()> {
        let snapshot = self.snapshot();
        println!();
        println!(
            "── Reconciliation: table ledger vs the Toss sandbox, by order id {}",
            "─".repeat(84)
        );
        let mut done_total = 0u64;
        for (who, paid_months, declined) in [(ALICE, 4usize, 4usize), (BOB, 1, 0)] {
            let sub = self.current(who).await?;
            let ledger = self.stack.store.ledger(sub.id()).await?;
            let done: Vec<&ChargeAttempt> = ledger
                .iter()
                .filter(|e| e.status() == AttemptStatus::Done)
                .collect();
            let refused = ledger
                .iter()
                .filter(|e| e.status() == AttemptStatus::Declined)
                .count();
            ensure!(
                done.len() == paid_months && refused == declined,
                "{}: expected {paid_months} DONE and {declined} declined ledger entries, found {} and {refused}",
                who.name,
                done.len()
            );
            ensure!(
                ledger.iter().all(|e| e.status().is_final()),
                "{}: an attempt is still open",
                who.name
            );
            for entry in &done {
                let payment = snapshot
                    .payment_by_order_id(entry.order_id().as_str())
                    .with_context(|| {
                        format!(
                            "Toss has no payment for order {}",
                            entry.order_id().as_str()
                        )
                    })?;
                ensure!(
                    payment.status == "DONE"
                        && u64::try_from(payment.total_amount).ok() == Some(entry.amount().won())
                        && entry.payment_key().map(|k| k.as_str())
                            == Some(payment.payment_key.as_str()),
                    "order {}: the ledger and Toss disagree ({payment:?})",
                    entry.order_id().as_str()
                );
                ensure!(
                    snapshot.charge_requests_for(entry.order_id().as_str()) == 1,
                    "order {} was sent to Toss more than once",
                    entry.order_id().as_str()
                );
                done_total += entry.amount().won();
            }
            let key = self.key(who)?.as_str();
            let toss_done = snapshot
                .payments
                .iter()
                .filter(|p| p.customer_key == key && p.status == "DONE")
                .count();
            ensure!(
                toss_done == done.len(),
                "{}: Toss has {toss_done} DONE payments, the ledger {}",
                who.name,
                done.len()
            );
            let keys = snapshot
                .billing_keys
                .iter()
                .filter(|k| k.customer_key == key)
                .collect::<Vec<_>>();
            ensure!(
                keys.len() == 1 && keys.iter().all(|k| k.deleted),
                "{}: expected one billing key, deleted at Toss: {keys:?}",
                who.name
            );
            println!(
                "   {:<6} {} paid month(s) = {} · {} declined attempt(s) · {} · billing key deleted at Toss · every DONE order id found at Toss, charged once",
                who.name,
                done.len(),
                won(done.iter().map(|e| e.amount().won()).sum()),
                refused,
                sub.status().as_str(),
            );
        }
        let mut refunded_total = 0u64;
        for who in [DAVE, ERIN] {
            let sub = self.current(who).await?;
            let ledger = self.stack.store.ledger(sub.id()).await?;
            let refunds = self.stack.store.refunds(sub.id()).await?;
            let paid: u64 = ledger
                .iter()
                .filter(|e| e.status() == AttemptStatus::Done)
                .map(|e| e.amount().won())
                .sum();
            let back: u64 = refunds
                .iter()
                .filter(|r| r.status.as_str() == "DONE")
                .map(|r| r.amount.won())
                .sum();
            let key = self.key(who)?.as_str();
            let at_toss: Vec<_> = snapshot
                .payments
                .iter()
                .filter(|p| p.customer_key == key)
                .collect();
            let toss_paid: i64 = at_toss.iter().map(|p| p.total_amount).sum();
            let toss_balance: i64 = at_toss.iter().map(|p| p.balance_amount).sum();
            ensure!(
                u64::try_from(toss_paid).ok() == Some(paid)
                    && u64::try_from(toss_paid - toss_balance).ok() == Some(back)
                    && back == paid
                    && sub.status() == Status::Canceled,
                "{}: the ledger ({paid} paid, {back} refunded) and Toss ({toss_paid} paid, {toss_balance} left) disagree",
                who.name
            );
            done_total += paid;
            refunded_total += back;
            println!(
                "   {:<6} 1 paid month = {} · refunded {} (ledger = Toss's cancels) · {}",
                who.name,
                won(paid),
                won(back),
                sub.status().as_str(),
            );
        }
        let carol = self.key(CAROL)?.as_str();
        ensure!(
            snapshot
                .billing_keys
                .iter()
                .all(|k| k.customer_key != carol),
            "carol's refused card got a billing key"
        );
        let counters = &snapshot.counters;
        ensure!(
            u64::try_from(counters.approved_amount).ok() == Some(done_total)
                && u64::try_from(counters.canceled_amount).ok() == Some(refunded_total)
                && counters.done_charges == 7
                && counters.declined_charges == 4,
            "the sandbox's counters disagree: {counters:?}"
        );
        println!(
            "   Toss     {} approved in {} payments, {} refunded, {} declines, {} billing keys issued, {} deleted; carol: no billing key",
            won(done_total),
            counters.done_charges,
            won(refunded_total),
            counters.declined_charges,
            counters.billing_keys_issued,
            counters.billing_keys_deleted,
        );
        Ok(())
    }
}

//! The daily settlement check (product §12): Toss's transactions of one Seoul calendar day
//! against the ledger, both ways.
//!
//! - Every approval Toss lists under one of our order ids must have a `DONE` ledger entry with
//!   the same paymentKey and amount. An entry still `PENDING`/`UNKNOWN` that Toss has `DONE` is
//!   repaired: looked up by order id once more and settled through the charge engine, as the
//!   sweep's reconciliation would (the outcome is Toss's answer, never a guess).
//! - Every `DONE` entry of that day must be in Toss's list; one that is not is looked up by order
//!   id (the list can lag) before it is reported.
//!
//! - Every cancel Toss lists under one of our order ids must be in the refund ledger (by its
//!   `transactionKey`); one that is not is converged from Toss's record of the payment (a
//!   console refund whose webhook never arrived) before it is reported.
//!
//! Everything else is reported, never changed: a payment the ledger does not know, a paid entry
//! Toss does not have, a different amount or paymentKey, a declined entry Toss has `DONE`. A
//! failed look-up decides nothing: the check stops with an error and the next run tries again.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use domain::{AttemptStatus, ChargeAttempt, OrderId, SubscriptionId};
use serde::Serialize;
use toss::{ErrorClass, PaymentStatus, Transaction, TransactionQuery};
use tracing::{error, info, warn};

use crate::engine::{Mode, Settled};
use crate::error::toss_failure;
use crate::{Billing, Error, Invariant};

/// Rows per page of Toss's list.
const PAGE: u32 = 1000;
/// A bound on the pages of one day (5,000,000 rows): a cursor that never ends is a bug.
const MAX_PAGES: usize = 5000;
/// The last second of a day, as Toss's transactions query takes its end.
const LAST_SECOND: NaiveTime = match NaiveTime::from_hms_opt(23, 59, 59) {
    Some(t) => t,
    None => panic!("23:59:59 is a time"),
};

/// What kind of disagreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MismatchKind {
    /// Toss approved an order of ours that the ledger does not know.
    MissingInLedger,
    /// The ledger has the entry `DONE`; Toss has no such payment.
    MissingAtToss,
    AmountDiffers,
    PaymentKeyDiffers,
    /// Toss has it `DONE`; the ledger says it was declined or not charged, or it could not be
    /// settled (the entry stays as it was).
    StatusDiffers,
    /// Toss cancelled (part of) an order of ours; the refund ledger has no such cancel even
    /// after converging it from Toss's record.
    RefundMissingInLedger,
}

impl MismatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingInLedger => "missing_in_ledger",
            Self::MissingAtToss => "missing_at_toss",
            Self::AmountDiffers => "amount_differs",
            Self::PaymentKeyDiffers => "payment_key_differs",
            Self::StatusDiffers => "status_differs",
            Self::RefundMissingInLedger => "refund_missing_in_ledger",
        }
    }
}

/// One disagreement, for the operator: the order id and what differs (no key, no card).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub kind: MismatchKind,
    pub order_id: String,
    pub detail: String,
}

/// What one check found. Returned as the invocation's result and logged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SettlementReport {
    /// The Seoul calendar day checked (`YYYY-MM-DD`).
    pub day: String,
    /// Approvals Toss listed under our order ids.
    pub toss_approvals: u64,
    /// Rows of other orders (another shop on the same merchant id).
    pub other_rows: u64,
    /// Cancels Toss listed under our order ids.
    pub toss_cancels: u64,
    /// Of those, cancels the refund ledger already had.
    pub refunds_matched: u64,
    /// Of those, cancels recorded now from Toss's record (a console refund whose webhook
    /// never arrived).
    pub refunds_recorded: u64,
    /// `DONE` ledger entries of the day.
    pub ledger_paid: u64,
    /// Approvals that match their ledger entry.
    pub matched: u64,
    /// Entries settled from Toss's record (`UNKNOWN` or `PENDING` that Toss has `DONE`).
    pub repaired: u64,
    pub mismatches: Vec<Mismatch>,
}

/// The Seoul calendar day before the one `at` falls on: the day a run at `at` checks.
pub fn previous_kst_day(at: DateTime<Utc>) -> NaiveDate {
    let today = at.with_timezone(&domain::SEOUL).date_naive();
    today.pred_opt().unwrap_or(today)
}

/// What [`Billing::take_over_and_settle`] came to.
#[derive(Debug)]
pub(crate) enum Repair {
    /// Taken over and settled from Toss's record; `Charged` when it is now `DONE`.
    Settled(Settled),
    /// A running worker holds the entry's lease; it settles the entry itself.
    Leased,
    /// Another worker took the entry over first.
    TakenMeanwhile,
    /// The entry's subscription is missing.
    NoSubscription,
}

/// Our order ids are `<subscription id>-<period>-<attempt>` (`OrderId::for_attempt`).
pub(crate) fn our_attempt(order_id: &str) -> Option<(SubscriptionId, u32, u32)> {
    let mut parts = order_id.rsplitn(3, '-');
    let attempt = parts.next()?.parse().ok()?;
    let period = parts.next()?.parse().ok()?;
    let id = SubscriptionId::parse(parts.next()?).ok()?;
    (OrderId::for_attempt(&id, period, attempt).as_str() == order_id)
        .then_some((id, period, attempt))
}

impl Billing {
    /// Checks the Seoul calendar day `day` (see the module's doc). `run_id` names this run's
    /// leases on the entries it repairs.
    #[tracing::instrument(skip_all, fields(day = %day))]
    pub async fn settle_day(
        &self,
        day: NaiveDate,
        run_id: &str,
        now: DateTime<Utc>,
    ) -> Result<SettlementReport, Error> {
        let rows = self.toss_rows(day).await?;
        let paid = self.store.paid_on(day).await?;
        let mut report = SettlementReport {
            day: day.format("%Y-%m-%d").to_string(),
            ledger_paid: paid.len() as u64,
            ..SettlementReport::default()
        };
        let paid_by_order: BTreeMap<&str, &ChargeAttempt> =
            paid.iter().map(|a| (a.order_id().as_str(), a)).collect();
        let listed: BTreeSet<&str> = rows.iter().map(|r| r.order_id.as_str()).collect();

        for row in &rows {
            let ours = our_attempt(&row.order_id);
            if let (PaymentStatus::Canceled | PaymentStatus::PartialCanceled, Some((id, ..))) =
                (&row.status, &ours)
            {
                if self.check_cancel(row, id, now, &mut report).await? {
                    continue;
                }
                // Not one of the payment's cancels: its approval, listed with the status the
                // payment has now. Compared as an approval.
            } else if row.status != PaymentStatus::Done || ours.is_none() {
                report.other_rows += 1;
                continue;
            }
            report.toss_approvals += 1;
            let entry = match paid_by_order.get(row.order_id.as_str()) {
                Some(entry) => Some((*entry).clone()),
                None => match &ours {
                    Some((id, period, attempt)) => {
                        self.store.attempt(id, *period, *attempt).await?
                    }
                    None => None,
                },
            };
            match entry {
                None => report.mismatch(
                    MismatchKind::MissingInLedger,
                    &row.order_id,
                    format!(
                        "Toss approved {} KRW; the ledger has no such order",
                        row.amount.won()
                    ),
                ),
                Some(entry) => match entry.status() {
                    AttemptStatus::Done => report.compare(row, &entry),
                    AttemptStatus::Pending | AttemptStatus::Unknown => {
                        self.repair(row, entry, run_id, now, &mut report).await?
                    }
                    other => report.mismatch(
                        MismatchKind::StatusDiffers,
                        &row.order_id,
                        format!("Toss has it DONE; the ledger has it {}", other.as_str()),
                    ),
                },
            }
        }

        for entry in &paid {
            if !listed.contains(entry.order_id().as_str()) {
                self.confirm_missing(entry, &mut report).await?;
            }
        }

        let summary = (
            report.toss_approvals,
            report.matched,
            report.repaired,
            report.mismatches.len(),
        );
        if report.mismatches.is_empty() {
            info!(?report, "settlement check finished");
        } else {
            for m in &report.mismatches {
                error!(order_id = %m.order_id, kind = m.kind.as_str(), detail = %m.detail, "settlement mismatch");
            }
            error!(
                approvals = summary.0,
                matched = summary.1,
                repaired = summary.2,
                mismatches = summary.3,
                "settlement check found mismatches"
            );
        }
        Ok(report)
    }

    /// A row of ours with a cancel status: a cancel the refund ledger has (by its
    /// `transactionKey`), or one of the payment's cancels recorded now from Toss's record, or
    /// reported. Returns false when the row is none of the payment's cancels (then it is the
    /// approval, listed with the payment's status now).
    async fn check_cancel(
        &self,
        row: &Transaction,
        id: &SubscriptionId,
        now: DateTime<Utc>,
        report: &mut SettlementReport,
    ) -> Result<bool, Error> {
        if self.store.cancel_recorded(id, &row.transaction_key).await? {
            report.toss_cancels += 1;
            report.refunds_matched += 1;
            return Ok(true);
        }
        let payment = self
            .toss
            .payment(&row.payment_key)
            .await
            .map_err(toss_failure)?;
        if !payment
            .cancels
            .iter()
            .any(|c| c.transaction_key.as_deref() == Some(row.transaction_key.as_str()))
        {
            return Ok(false);
        }
        report.toss_cancels += 1;
        self.converge_refunds(&payment, now).await?;
        if self.store.cancel_recorded(id, &row.transaction_key).await? {
            warn!(order_id = %row.order_id, "a cancel Toss lists was not in the refund ledger; recorded from Toss's record");
            report.refunds_recorded += 1;
        } else {
            report.mismatch(
                MismatchKind::RefundMissingInLedger,
                &row.order_id,
                format!(
                    "Toss cancelled {} KRW; the refund ledger has no such cancel",
                    row.amount.won()
                ),
            );
        }
        Ok(true)
    }

    /// All of Toss's rows of the day, page by page.
    async fn toss_rows(&self, day: NaiveDate) -> Result<Vec<Transaction>, Error> {
        let (start, end) = (day.and_time(NaiveTime::MIN), day.and_time(LAST_SECOND));
        let mut query = TransactionQuery {
            start,
            end,
            starting_after: None,
            limit: PAGE,
        };
        let mut rows = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self.toss.transactions(&query).await.map_err(toss_failure)?;
            let full = page.len() >= PAGE as usize;
            query.starting_after = page.last().map(|r| r.transaction_key.clone());
            rows.extend(page);
            if !full {
                return Ok(rows);
            }
        }
        Err(Invariant::TransactionsUnbounded {
            day,
            pages: MAX_PAGES,
        }
        .into())
    }

    /// An entry Toss has `DONE` that the ledger holds open: settled from Toss's own record.
    async fn repair(
        &self,
        row: &Transaction,
        entry: ChargeAttempt,
        run_id: &str,
        now: DateTime<Utc>,
        report: &mut SettlementReport,
    ) -> Result<(), Error> {
        let detail = match self.take_over_and_settle(entry, run_id, now).await? {
            Repair::Settled(Settled::Charged { .. }) => {
                report.repaired += 1;
                return Ok(());
            }
            Repair::NoSubscription => "the entry's subscription is missing".to_owned(),
            // A worker holds it right now; it settles it itself.
            Repair::Leased => "being settled by a running charge; check again tomorrow".to_owned(),
            Repair::TakenMeanwhile => "taken by another run meanwhile".to_owned(),
            Repair::Settled(other) => format!("Toss lists it DONE; settling it gave {other:?}"),
        };
        report.mismatch(MismatchKind::StatusDiffers, &row.order_id, detail);
        Ok(())
    }

    /// Takes over an open entry (`PENDING`/`UNKNOWN`) that Toss has `DONE` under `owner`'s
    /// lease and settles it through the engine in reconcile mode: looked up by order id once
    /// more, so the outcome is Toss's answer, never a guess. The settlement check and the
    /// webhook route both repair entries this way.
    pub(crate) async fn take_over_and_settle(
        &self,
        mut entry: ChargeAttempt,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Repair, Error> {
        let Some(sub) = self.store.subscription(entry.subscription_id()).await? else {
            return Ok(Repair::NoSubscription);
        };
        if entry.lease().is_some_and(|l| l.until > now) {
            return Ok(Repair::Leased);
        }
        entry.take_over(self.lease(owner, now), now);
        match self.store.take_over_attempt(&entry, now).await {
            Err(e) if e.is_conflict() => Ok(Repair::TakenMeanwhile),
            Err(e) => Err(e.into()),
            Ok(()) => {
                warn!(order_id = %entry.order_id(), "settling an open entry Toss has DONE");
                let settled = self.settle(sub, entry, owner, Mode::Reconcile, now).await?;
                Ok(Repair::Settled(settled))
            }
        }
    }

    /// A `DONE` entry missing from Toss's list: looked up by order id before it is reported.
    async fn confirm_missing(
        &self,
        entry: &ChargeAttempt,
        report: &mut SettlementReport,
    ) -> Result<(), Error> {
        match self.toss.payment_by_order_id(entry.order_id()).await {
            Ok(payment) if payment.status == PaymentStatus::Done => {
                let row = Transaction {
                    transaction_key: String::new(),
                    payment_key: payment.payment_key,
                    order_id: payment.order_id,
                    status: payment.status,
                    amount: payment.total_amount,
                    transaction_at: payment.approved_at,
                    method: payment.method,
                    currency: None,
                };
                report.compare(&row, entry);
                Ok(())
            }
            Ok(payment) => {
                report.mismatch(
                    MismatchKind::StatusDiffers,
                    entry.order_id().as_str(),
                    format!("the ledger has it DONE; Toss has it {:?}", payment.status),
                );
                Ok(())
            }
            Err(e) if matches!(e.class(), ErrorClass::NotFound) => {
                report.mismatch(
                    MismatchKind::MissingAtToss,
                    entry.order_id().as_str(),
                    format!(
                        "the ledger has {} KRW DONE; Toss has no such payment",
                        entry.amount().won()
                    ),
                );
                Ok(())
            }
            Err(e) => Err(toss_failure(e)),
        }
    }
}

impl SettlementReport {
    fn mismatch(&mut self, kind: MismatchKind, order_id: &str, detail: impl Into<String>) {
        self.mismatches.push(Mismatch {
            kind,
            order_id: order_id.to_owned(),
            detail: detail.into(),
        });
    }

    /// A Toss approval against its `DONE` entry.
    fn compare(&mut self, row: &Transaction, entry: &ChargeAttempt) {
        let mut same = true;
        if row.amount != entry.amount() {
            same = false;
            self.mismatch(
                MismatchKind::AmountDiffers,
                &row.order_id,
                format!(
                    "Toss {} KRW, ledger {} KRW",
                    row.amount.won(),
                    entry.amount().won()
                ),
            );
        }
        if entry.payment_key() != Some(&row.payment_key) {
            same = false;
            self.mismatch(
                MismatchKind::PaymentKeyDiffers,
                &row.order_id,
                "Toss and the ledger name different paymentKeys",
            );
        }
        self.matched += u64::from(same);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_order_ids_of_our_own_shape_are_ours() {
        let id = SubscriptionId::parse("01JDQ3ZC7E8Y2ZQ7W6N8R4M5TB").unwrap();
        let ours = OrderId::for_attempt(&id, 3, 1);

        assert_eq!(our_attempt(ours.as_str()), Some((id, 3, 1)));
        assert_eq!(our_attempt("preflight-key-check"), None);
        assert_eq!(our_attempt("shop-order-20261201-0001"), None);
    }

    #[test]
    fn a_run_checks_the_seoul_day_before_its_own() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T18:00:00Z")
            .unwrap()
            .to_utc();

        // 03:00 KST on Dec 2 checks Dec 1.
        assert_eq!(
            previous_kst_day(at),
            NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
        );
    }
}

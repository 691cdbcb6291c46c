//! The renewal sweep: page through the due index, and for each due subscription claim →
//! charge → record, with bounded concurrency, until the work or the time runs out.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use domain::{
    AttemptKind, AttemptStatus, CancelReason, ChargeAttempt, NextAction, OrderId, Subscription,
    SubscriptionId,
};
use futures::{StreamExt, stream};
use tokio::sync::{Mutex, Semaphore, SemaphorePermit};
use toss::{ErrorClass, KeyMode};
use tracing::{error, info, warn};

use store::Due;

use crate::engine::{Mode, Settled};
use crate::error::toss_failure;
use crate::summary::Summary;
use crate::{Billing, Error, Invariant};

/// How one sweep runs.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Subscriptions due at or before this moment are charged (the event's `time`).
    pub as_of: DateTime<Utc>,
    /// Charges in flight at Toss at once. Page reads and claims run ahead of the charges
    /// (up to as many again), so a slot waits on Toss, not on the table.
    pub concurrency: usize,
    /// Stop claiming new work after this instant (the Lambda deadline minus a margin).
    pub stop_claiming_at: Option<Instant>,
    /// Identifies this run's leases in the ledger.
    pub run_id: String,
    /// Due-index page size.
    pub page_size: i32,
}

/// The sweep's as-of time from the scheduled event. With a test key any time is accepted (the
/// event is a test clock); with a live key a time over 5 minutes in the future is refused.
pub fn as_of_from_event(
    event_time: DateTime<Utc>,
    mode: KeyMode,
    wall_clock: DateTime<Utc>,
) -> Result<DateTime<Utc>, Error> {
    if mode == KeyMode::Live && event_time > wall_clock + Duration::minutes(5) {
        return Err(Error::InvalidAsOf { event_time });
    }
    Ok(event_time)
}

#[derive(Debug)]
enum Processed {
    Settled(Settled),
    Canceled {
        key_deleted: bool,
    },
    KeyDeleted,
    Skipped,
    /// An attempt is under another worker's live lease until then (see the second pass).
    Leased {
        until: DateTime<Utc>,
    },
    /// Not started: the run stopped claiming while this one waited for a Toss slot.
    NotStarted,
    Nothing,
    /// A paid attempt's open refunds were looked up: this many settled, this many still open.
    Refunds {
        settled: u64,
        open: u64,
        refused: u64,
    },
}

/// Why a run stops before its end.
#[derive(Debug)]
enum Stop {
    /// Toss refused a request of ours (see [`Error::OurFault`]).
    OurFault(Option<toss::ErrorCode>),
    /// `REFUSED_DATA_BREAKER` customers' data refused in one run.
    ManyCustomersRefused,
}

struct Run<'a> {
    billing: &'a Billing,
    options: &'a SweepOptions,
    abort: AtomicBool,
    summary: Mutex<Summary>,
    /// Why the run stopped early, when it did: the first reason found wins.
    stop: OnceLock<Stop>,
    /// One permit per charge in flight at Toss (`SweepOptions::concurrency`).
    toss_slots: Semaphore,
    /// Subscriptions whose open attempt was under a live lease: revisited once it expires,
    /// if that is before this run must stop (a killed run's retry picks its attempts up).
    leased: Mutex<Vec<(SubscriptionId, DateTime<Utc>)>>,
    /// Customers whose data Toss refused in this run (see `REFUSED_DATA_BREAKER`).
    refused_data: AtomicU64,
    /// Attempts left `UNKNOWN` by this run: order id → when the attempt was claimed.
    unknown_open: Mutex<HashMap<OrderId, DateTime<Utc>>>,
    /// Payments whose open refunds this run settled already.
    refund_orders: Mutex<HashSet<OrderId>>,
    started: Instant,
}

/// This many customers' data refused in one run is no longer one customer's problem: more
/// likely a bug of ours sends every customer's data wrong. The run stops (as for our own
/// fault) instead of holding everyone.
const REFUSED_DATA_BREAKER: u64 = 5;

/// Attempts to read one page of the due index before giving the shard up for this run.
const PAGE_READS: u32 = 3;

impl Run<'_> {
    /// The engine's clock: wall time, or the test clock when it runs ahead, advancing with
    /// wall time from the run's start either way (so a lease expires during a test-clock run
    /// exactly as it does in a real one).
    fn now(&self) -> DateTime<Utc> {
        let elapsed = Duration::from_std(self.started.elapsed()).unwrap_or_default();
        Utc::now().max(self.options.as_of + elapsed)
    }

    /// Waits for a Toss slot; held from the claim until the outcome is recorded.
    async fn toss_slot(&self) -> Result<SemaphorePermit<'_>, Error> {
        self.toss_slots
            .acquire()
            .await
            .map_err(|_| Invariant::TossSlotsClosed.into())
    }

    fn may_claim(&self) -> bool {
        !self.abort.load(Ordering::SeqCst)
            && self
                .options
                .stop_claiming_at
                .is_none_or(|t| Instant::now() < t)
    }
}

impl Billing {
    /// The sweep's turn at one paid attempt's open refunds (the due index surfaces a refund
    /// Toss has not answered): Toss's record is read and each is settled or sent again under
    /// its own key (see `settle_refunds`).
    async fn settle_open_refunds(
        &self,
        order_id: &OrderId,
        now: DateTime<Utc>,
    ) -> Result<Processed, Error> {
        let outcomes = self.settle_refunds(order_id, now).await?;
        let count =
            |f: fn(&crate::RefundOutcome) -> bool| outcomes.iter().filter(|o| f(o)).count() as u64;
        let open = count(|o| matches!(o, crate::RefundOutcome::Unknown { .. }));
        let refused = count(|o| matches!(o, crate::RefundOutcome::Refused { .. }));
        if refused > 0 {
            error!(order_id = %order_id, refused, "Toss refused refunds the sweep sent again; an operator must look");
        }
        Ok(Processed::Refunds {
            settled: outcomes.len() as u64 - open,
            open,
            refused,
        })
    }

    /// Runs one sweep. Returns `Err` when Toss refused us for a reason on our side (nothing
    /// further was claimed and no subscription was changed by that refusal), and
    /// [`Error::SweepIncomplete`] when some subscriptions could not be processed (a table
    /// error, a malformed item): every other one was, and a retry of the run is safe.
    #[tracing::instrument(skip_all, fields(run = %options.run_id, as_of = %options.as_of))]
    pub async fn sweep(&self, options: &SweepOptions) -> Result<Summary, Error> {
        self.preflight().await?;
        let run = Arc::new(Run {
            billing: self,
            options,
            abort: AtomicBool::new(false),
            summary: Mutex::new(Summary {
                as_of: options.as_of.to_rfc3339(),
                ..Summary::default()
            }),
            stop: OnceLock::new(),
            toss_slots: Semaphore::new(options.concurrency.max(1)),
            leased: Mutex::new(Vec::new()),
            refused_data: AtomicU64::new(0),
            unknown_open: Mutex::new(HashMap::new()),
            refund_orders: Mutex::new(HashSet::new()),
            started: Instant::now(),
        });

        let store = &self.store;
        let pages = stream::iter(store.due_shards())
            .map(move |shard| {
                Box::pin(
                    stream::unfold(Some((None, shard)), move |state| async move {
                        let (start, shard) = state?;
                        match read_page(store, shard, options, start).await {
                            Ok(page) => {
                                let next = page.next.map(|cursor| (Some(cursor), shard));
                                Some((stream::iter(page.ids), next))
                            }
                            // The shard cannot go on without its cursor: count it, end it.
                            Err(e) => Some((stream::iter(vec![Err(e)]), None)),
                        }
                    })
                    .flatten(),
                )
            })
            // Every shard is read at once, one page ahead: a page read never stalls the charges.
            .flatten_unordered(None);

        let run_ref = &run;
        pages
            .map(|item| async move {
                if !run_ref.may_claim() {
                    if !run_ref.abort.load(Ordering::SeqCst) {
                        run_ref.summary.lock().await.stopped_early = true;
                    }
                    return;
                }
                match item {
                    Ok(Due::Subscription(id)) => {
                        run_ref.summary.lock().await.due += 1;
                        // The index holds keys only: act on the subscription as it is now.
                        let result = match run_ref.billing.store.subscription(&id).await {
                            // Boxed: a charge's future is large; each item's is built on the
                            // heap instead of being moved through the stack (debug builds).
                            Ok(Some(sub)) => Box::pin(run_ref.billing.process(run_ref, sub)).await,
                            Ok(None) => Ok(Processed::Skipped),
                            Err(e) => Err(e.into()),
                        };
                        run_ref.count(&id, result).await;
                    }
                    Ok(Due::Refunds {
                        subscription,
                        order_id,
                    }) => {
                        // One settlement per payment and run, however many of its refunds
                        // are open: each is sent with the balance the one before left.
                        if run_ref.refund_orders.lock().await.insert(order_id.clone()) {
                            // Boxed: the refund path's future is large, and the sweep's
                            // stream would otherwise carry it inline for every item.
                            let result = Box::pin(
                                run_ref
                                    .billing
                                    .settle_open_refunds(&order_id, run_ref.now()),
                            )
                            .await;
                            run_ref.count(&subscription, result).await;
                        }
                    }
                    Err(e) => {
                        // A malformed item (its key is in the error) or a shard that could not
                        // be read: the rest of the run goes on, and the run reports failure.
                        error!(error = %e, "a due subscription could not be read");
                        run_ref.summary.lock().await.errors += 1;
                    }
                }
            })
            // Twice the Toss slots: while `concurrency` charges wait on Toss, as many due
            // subscriptions are read, ready for the next free slot.
            .buffer_unordered(options.concurrency.max(1).saturating_mul(2))
            .collect::<()>()
            .await;

        self.revisit_leased(&run).await;
        run.count_unknown_open().await;

        let summary = run.summary.lock().await.clone();
        if let Some(stop) = run.stop.get() {
            let error = match stop {
                Stop::OurFault(code) => Error::OurFault { code: code.clone() },
                Stop::ManyCustomersRefused => Error::ManyCustomersRefused {
                    refused: run.refused_data.load(Ordering::SeqCst),
                },
            };
            error!(?summary, error = %error, "sweep stopped early");
            return Err(error);
        }
        if summary.errors > 0 {
            error!(?summary, "sweep finished with errors");
            return Err(Error::SweepIncomplete {
                summary: Box::new(summary),
            });
        }
        info!(?summary, "sweep finished");
        Ok(summary)
    }

    /// The second pass: attempts that were under another worker's live lease (a run killed
    /// mid-charge, whose retry this may be) are taken over once the lease expires, if that
    /// is before this run must stop claiming. Without a known deadline nothing waits.
    async fn revisit_leased(&self, run: &Run<'_>) {
        let Some(stop) = run.options.stop_claiming_at else {
            return;
        };
        let mut leased = std::mem::take(&mut *run.leased.lock().await);
        leased.sort_by_key(|(_, until)| *until);
        for (id, until) in leased {
            if !run.may_claim() {
                break;
            }
            let wait = (until - run.now()).to_std().unwrap_or_default()
                + std::time::Duration::from_millis(50);
            if Instant::now() + wait >= stop {
                run.summary.lock().await.stopped_early = true;
                break;
            }
            tokio::time::sleep(wait).await;
            let sub = match self.store.subscription(&id).await {
                Ok(Some(sub)) => sub,
                Ok(None) => continue,
                Err(e) => {
                    run.count(&id, Err(e.into())).await;
                    continue;
                }
            };
            info!(subscription = %id, "revisiting an attempt whose lease has expired");
            run.summary.lock().await.skipped -= 1;
            let result = Box::pin(self.process(run, sub)).await;
            run.count(&id, result).await;
        }
    }

    /// One cheap look-up before claiming anything: a wrong or revoked key is found here and
    /// the run stops before touching a single subscription.
    async fn preflight(&self) -> Result<(), Error> {
        let probe =
            OrderId::parse("preflight-key-check").map_err(|source| Invariant::BuiltValue {
                what: "order id",
                source,
            })?;
        match self.toss.payment_by_order_id(&probe).await {
            Ok(_) => Ok(()),
            Err(e) if e.class() == ErrorClass::NotFound => Ok(()),
            Err(e) => Err(toss_failure(e)),
        }
    }

    async fn process(&self, run: &Run<'_>, sub: Subscription) -> Result<Processed, Error> {
        let sub = if sub.retired_billing_keys().is_empty() {
            sub
        } else {
            match self.delete_retired_keys(sub, run.now()).await? {
                Some(fresh) => fresh,
                None => return Ok(Processed::Skipped),
            }
        };
        let action = sub.next_action(run.options.as_of);
        if action == NextAction::Nothing {
            return Ok(Processed::Nothing);
        }
        // The Toss slot is taken before anything is claimed, and the deadline checked once it
        // is ours: a claim is never left waiting for a slot while the run's time runs out.
        let _slot = run.toss_slot().await?;
        if !run.may_claim() {
            return Ok(Processed::NotStarted);
        }
        // The copy may have waited for the slot: a customer's cancel can have landed meanwhile,
        // with no attempt yet to refuse it. Act on the subscription as it is now (one more
        // consistent read; the claim also checks it in the same transaction).
        let Some(sub) = self.store.subscription(sub.id()).await? else {
            return Ok(Processed::Skipped);
        };
        let action = sub.next_action(run.options.as_of);
        let now = run.now();
        match action {
            NextAction::Nothing => Ok(Processed::Nothing),
            NextAction::Charge { period } => {
                let kind = if sub.dunning().is_some() {
                    AttemptKind::Retry
                } else {
                    AttemptKind::Renewal
                };
                let attempt = self.new_attempt(
                    &sub,
                    period,
                    sub.next_attempt(),
                    kind,
                    &run.options.run_id,
                    now,
                );
                match self.store.claim_attempt(&attempt, &sub).await {
                    Ok(()) => {
                        failpoint!("after_claim");
                        self.settle_now(run, sub, attempt, Mode::Fresh, now).await
                    }
                    Err(e) if e.is_conflict() => self.resolve_claimed(run, sub, period, kind).await,
                    Err(e) => Err(e.into()),
                }
            }
            NextAction::ReconcileOnly => match self.open_attempt(&sub).await? {
                Some(open) => self.take_over(run, sub, open).await,
                None => self.expire_incomplete(sub, now).await,
            },
            NextAction::Cancel(reason) => {
                // Never end a subscription while one of its charges may have gone through:
                // settle that attempt first (a later run cancels once it is final).
                if let Some(open) = self.open_attempt(&sub).await? {
                    return self.take_over(run, sub, open).await;
                }
                self.cancel_now(sub, reason, now).await
            }
            NextAction::DeleteBillingKey => {
                Ok(if self.delete_billing_key_of(sub.id(), now).await? {
                    Processed::KeyDeleted
                } else {
                    Processed::Skipped
                })
            }
        }
    }

    /// The latest attempt of the subscription's current period, if it is still open.
    async fn open_attempt(&self, sub: &Subscription) -> Result<Option<ChargeAttempt>, Error> {
        Ok(self
            .store
            .last_attempt(sub.id(), sub.next_period())
            .await?
            .filter(|a| !a.status().is_final()))
    }

    async fn cancel_now(
        &self,
        mut sub: Subscription,
        reason: CancelReason,
        now: DateTime<Utc>,
    ) -> Result<Processed, Error> {
        sub.cancel(reason, now);
        match self.store.save_subscription(&mut sub).await {
            Ok(()) => {}
            Err(e) if e.is_conflict() => return Ok(Processed::Skipped),
            Err(e) => return Err(e.into()),
        }
        info!(subscription = %sub.id(), reason = reason.as_str(), "subscription canceled");
        let key_deleted = self.delete_billing_key_of(sub.id(), now).await?;
        Ok(Processed::Canceled { key_deleted })
    }

    /// An `incomplete` subscription with nothing under way: ended once abandoned (its key is
    /// deleted at Toss), otherwise left in the index until then.
    async fn expire_incomplete(
        &self,
        mut sub: Subscription,
        now: DateTime<Utc>,
    ) -> Result<Processed, Error> {
        let abandoned_at = sub.abandoned_at(self.settings.incomplete_expiry);
        if now >= abandoned_at {
            return self.cancel_now(sub, CancelReason::Abandoned, now).await;
        }
        if !sub.revisit_at(abandoned_at) {
            return Ok(Processed::Nothing);
        }
        match self.store.save_subscription(&mut sub).await {
            Ok(()) => Ok(Processed::Nothing),
            Err(e) if e.is_conflict() => Ok(Processed::Skipped),
            Err(e) => Err(e.into()),
        }
    }

    /// The attempt we wanted to create exists already, or the subscription changed since it
    /// was read (a cancel saved in between). Work out which from a fresh read and the ledger.
    async fn resolve_claimed(
        &self,
        run: &Run<'_>,
        seen: Subscription,
        period: u32,
        kind: AttemptKind,
    ) -> Result<Processed, Error> {
        let Some(sub) = self.store.subscription(seen.id()).await? else {
            return Ok(Processed::Skipped);
        };
        if sub.version() != seen.version() {
            // The index was stale: the subscription moved on; the next run sees it as it is.
            return Ok(Processed::Skipped);
        }
        let Some(last) = self.store.last_attempt(sub.id(), period).await? else {
            return Ok(Processed::Skipped);
        };
        let now = run.now();
        match last.status() {
            AttemptStatus::Pending | AttemptStatus::Unknown => self.take_over(run, sub, last).await,
            // Toss refused an earlier attempt for a reason on our side and nothing was charged,
            // or an operator looked at the attempt sent for review and released the hold:
            // this run may try again under the next attempt number.
            AttemptStatus::NotCharged | AttemptStatus::Review => {
                let attempt = self.new_attempt(
                    &sub,
                    period,
                    last.attempt() + 1,
                    kind,
                    &run.options.run_id,
                    now,
                );
                match self.store.claim_attempt(&attempt, &sub).await {
                    Ok(()) => {
                        failpoint!("after_claim");
                        self.settle_now(run, sub, attempt, Mode::Fresh, now).await
                    }
                    Err(e) if e.is_conflict() => Ok(Processed::Skipped),
                    Err(e) => Err(e.into()),
                }
            }
            AttemptStatus::Done | AttemptStatus::Declined => {
                // The subscription and the ledger were read one after the other: another run's
                // outcome transaction may have committed in between. Only a subscription that
                // still has not moved after that is a real disagreement.
                match self.store.subscription(sub.id()).await? {
                    Some(fresh) if fresh.version() == sub.version() => {}
                    _ => return Ok(Processed::Skipped),
                }
                error!(
                    subscription = %sub.id(),
                    order_id = %last.order_id(),
                    "the ledger has a final attempt the subscription does not reflect; leaving it for a human"
                );
                Err(Invariant::LedgerDisagrees {
                    subscription: sub.id().clone(),
                    order_id: last.order_id().clone(),
                }
                .into())
            }
        }
    }

    /// Takes over an unfinished attempt (its worker died or its outcome was unknown) and
    /// reconciles it by order id, if its lease has expired and its look-up is due.
    async fn take_over(
        &self,
        run: &Run<'_>,
        sub: Subscription,
        mut attempt: ChargeAttempt,
    ) -> Result<Processed, Error> {
        let now = run.now();
        if !attempt.may_reconcile_at(now) {
            if attempt.status() == AttemptStatus::Unknown {
                run.note_unknown(&attempt).await;
            }
            return Ok(match attempt.lease() {
                Some(lease) if lease.until > now => Processed::Leased { until: lease.until },
                _ => Processed::Skipped,
            });
        }
        attempt.take_over(self.lease(&run.options.run_id, now), now);
        match self.store.take_over_attempt(&attempt, now).await {
            Ok(()) => {}
            Err(e) if e.is_conflict() => return Ok(Processed::Skipped),
            Err(e) => return Err(e.into()),
        }
        warn!(subscription = %sub.id(), order_id = %attempt.order_id(), "reconciling an unfinished attempt");
        self.settle_now(run, sub, attempt, Mode::Reconcile, now)
            .await
    }

    /// Settles an attempt this run holds (just claimed, or taken over); the caller holds a
    /// Toss slot from before the claim until the outcome is recorded.
    async fn settle_now(
        &self,
        run: &Run<'_>,
        sub: Subscription,
        attempt: ChargeAttempt,
        mode: Mode,
        now: DateTime<Utc>,
    ) -> Result<Processed, Error> {
        let (order_id, created_at) = (attempt.order_id().clone(), attempt.created_at());
        let settled = self
            .settle(sub, attempt, &run.options.run_id, mode, now)
            .await?;
        if matches!(settled, Settled::Unknown { .. }) {
            run.unknown_open.lock().await.insert(order_id, created_at);
        }
        Ok(Processed::Settled(settled))
    }
}

/// One page of one shard, read again (with a short backoff) when the table fails.
async fn read_page(
    store: &store::Store,
    shard: u32,
    options: &SweepOptions,
    start: Option<store::Cursor>,
) -> Result<store::DuePage, store::Error> {
    let mut tries = 0;
    loop {
        tries += 1;
        match store
            .due_page(shard, options.as_of, start.clone(), options.page_size)
            .await
        {
            Ok(page) => return Ok(page),
            Err(e) if tries < PAGE_READS => {
                warn!(shard, error = %e, "reading the due index failed; trying the page again");
                tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(tries))).await;
            }
            Err(e) => return Err(e),
        }
    }
}

impl Run<'_> {
    async fn note_unknown(&self, attempt: &ChargeAttempt) {
        self.unknown_open
            .lock()
            .await
            .insert(attempt.order_id().clone(), attempt.created_at());
    }

    /// The summary's `unknown_open` and `oldest_unknown_age_seconds`, once the run is over.
    async fn count_unknown_open(&self) {
        let open = self.unknown_open.lock().await;
        let now = self.now();
        let oldest = open
            .values()
            .map(|created| (now - *created).num_seconds().max(0))
            .max()
            .unwrap_or(0);
        let mut s = self.summary.lock().await;
        s.unknown_open = open.len() as u64;
        s.oldest_unknown_age_seconds = u64::try_from(oldest).unwrap_or(0);
    }

    async fn count(&self, id: &SubscriptionId, result: Result<Processed, Error>) {
        let mut s = self.summary.lock().await;
        match result {
            Ok(Processed::Settled(Settled::Charged { amount, reconciled })) => {
                s.charged += 1;
                s.reconciled += u64::from(reconciled);
                s.total_charged_krw += amount.won();
            }
            Ok(Processed::Settled(Settled::Declined { canceled, .. })) => {
                s.declined += 1;
                if canceled {
                    s.canceled += 1;
                } else {
                    s.retry_scheduled += 1;
                }
            }
            Ok(Processed::Settled(Settled::Unknown { .. })) => s.unknown_outcome += 1,
            Ok(Processed::Settled(Settled::Anomaly)) => s.errors += 1,
            Ok(Processed::Settled(Settled::Superseded)) => s.skipped += 1,
            Ok(Processed::Settled(Settled::Held { refused_data, code })) => {
                s.held += 1;
                if refused_data {
                    let refused = self.refused_data.fetch_add(1, Ordering::SeqCst) + 1;
                    if refused >= REFUSED_DATA_BREAKER {
                        error!(last_code = %code, refused, "Toss refused the data of too many customers in one run; stopping as for our own fault");
                        self.abort.store(true, Ordering::SeqCst);
                        let _ = self.stop.set(Stop::ManyCustomersRefused);
                    }
                }
            }
            Ok(Processed::Settled(Settled::NotCharged { .. })) => s.skipped += 1,
            Ok(Processed::Canceled { key_deleted }) => {
                s.canceled += 1;
                s.billing_keys_deleted += u64::from(key_deleted);
            }
            Ok(Processed::KeyDeleted) => s.billing_keys_deleted += 1,
            Ok(Processed::Leased { until }) => {
                s.skipped += 1;
                drop(s);
                self.leased.lock().await.push((id.clone(), until));
            }
            Ok(Processed::NotStarted) => {
                s.skipped += 1;
                s.stopped_early = true;
            }
            Ok(Processed::Skipped | Processed::Nothing) => s.skipped += 1,
            Ok(Processed::Refunds {
                settled,
                open,
                refused,
            }) => {
                s.refunds_settled += settled;
                s.refunds_open += open;
                s.refunds_refused += refused;
            }
            Err(Error::OurFault { code }) => {
                self.abort.store(true, Ordering::SeqCst);
                let _ = self.stop.set(Stop::OurFault(code));
            }
            Err(e) => {
                error!(subscription = %id, error = %crate::cause_chain(&e), "processing a due subscription failed");
                s.errors += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_test_key_accepts_an_event_time_more_than_five_minutes_ahead() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let ahead = now + Duration::minutes(6);
        assert_eq!(as_of_from_event(ahead, KeyMode::Test, now).unwrap(), ahead);
        let near = now + Duration::minutes(5);
        assert_eq!(as_of_from_event(near, KeyMode::Live, now).unwrap(), near);
        let refused = as_of_from_event(ahead, KeyMode::Live, now).unwrap_err();
        assert!(
            matches!(refused, Error::InvalidAsOf { event_time } if event_time == ahead),
            "{refused:?}"
        );
        assert!(refused.to_string().contains("2026-12-01 00:06:00 UTC"));
    }
}

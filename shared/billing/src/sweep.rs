//! The renewal sweep: page through the due index, and for each due subscription claim →
//! charge → record, with bounded concurrency, until the work or the time runs out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use domain::{AttemptKind, AttemptStatus, ChargeAttempt, NextAction, OrderId, Subscription};
use futures::{StreamExt, TryStreamExt, stream};
use serde::Serialize;
use tokio::sync::{Mutex, Semaphore, SemaphorePermit};
use toss::{ErrorClass, KeyMode};
use tracing::{error, info, warn};

use crate::engine::{Mode, Settled};
use crate::{Billing, Error};

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

/// What a sweep did. Logged and returned as the function's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub as_of: String,
    /// Subscriptions the due index returned.
    pub due: u64,
    pub charged: u64,
    /// Of `charged`, attempts whose outcome was recovered by looking the order up.
    pub reconciled: u64,
    pub declined: u64,
    pub retry_scheduled: u64,
    pub canceled: u64,
    pub unknown_outcome: u64,
    /// Due but claimed by another run, or not actionable yet (e.g. a look-up backing off).
    pub skipped: u64,
    pub billing_keys_deleted: u64,
    /// Per-subscription failures other than Toss's answers (the table unreachable, say).
    pub errors: u64,
    pub total_charged_krw: u64,
    /// True when the run stopped claiming because its deadline was near.
    pub stopped_early: bool,
}

/// The sweep's as-of time from the scheduled event. With a test key any time is accepted (the
/// event is a test clock); with a live key a time over 5 minutes in the future is refused.
pub fn as_of_from_event(
    event_time: DateTime<Utc>,
    mode: KeyMode,
    wall_clock: DateTime<Utc>,
) -> Result<DateTime<Utc>, Error> {
    if mode == KeyMode::Live && event_time > wall_clock + Duration::minutes(5) {
        return Err(Error::InvalidAsOf(format!(
            "the event time {event_time} is more than 5 minutes in the future; only test keys accept a test clock"
        )));
    }
    Ok(event_time)
}

#[derive(Debug)]
enum Processed {
    Settled(Settled),
    Canceled { key_deleted: bool },
    KeyDeleted,
    Skipped,
    Nothing,
}

struct Run<'a> {
    billing: &'a Billing,
    options: &'a SweepOptions,
    abort: AtomicBool,
    summary: Mutex<Summary>,
    our_fault: Mutex<Option<String>>,
    /// One permit per charge in flight at Toss (`SweepOptions::concurrency`).
    toss_slots: Semaphore,
}

impl Run<'_> {
    /// The engine's clock: wall time, or the test clock when it runs ahead.
    fn now(&self) -> DateTime<Utc> {
        Utc::now().max(self.options.as_of)
    }

    /// Waits for a Toss slot; held from the charge until its outcome is recorded.
    async fn toss_slot(&self) -> Result<SemaphorePermit<'_>, Error> {
        self.toss_slots
            .acquire()
            .await
            .map_err(|_| Error::Internal("the sweep's Toss slots were closed".into()))
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
    /// Runs one sweep. Returns `Err` when Toss refused us for a reason on our side (nothing
    /// further was claimed and no subscription was changed by that refusal).
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
            our_fault: Mutex::new(None),
            toss_slots: Semaphore::new(options.concurrency.max(1)),
        });

        let store = &self.store;
        let pages = stream::iter(store.due_shards())
            .map(move |shard| {
                Box::pin(
                    stream::try_unfold((Some(None), shard), move |(cursor, shard)| async move {
                        let Some(start) = cursor else { return Ok(None) };
                        let page = store
                            .due_page(shard, options.as_of, start, options.page_size)
                            .await?;
                        let next = page.next.map(Some);
                        Ok::<_, store::Error>(Some((
                            stream::iter(page.subscriptions.into_iter().map(Ok::<_, store::Error>)),
                            (next, shard),
                        )))
                    })
                    .try_flatten(),
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
                    Ok(sub) => {
                        run_ref.summary.lock().await.due += 1;
                        let result = run_ref.billing.process(run_ref, sub).await;
                        run_ref.count(result).await;
                    }
                    Err(e) => {
                        error!(error = %e, "reading the due index failed");
                        run_ref.summary.lock().await.errors += 1;
                    }
                }
            })
            // Twice the Toss slots: while `concurrency` charges wait on Toss, as many due
            // subscriptions are read and claimed, ready for the next free slot.
            .buffer_unordered(options.concurrency.max(1).saturating_mul(2))
            .collect::<()>()
            .await;

        let summary = run.summary.lock().await.clone();
        if let Some(code) = run.our_fault.lock().await.clone() {
            error!(?summary, code = %code, "sweep stopped: Toss refused our request");
            return Err(Error::OurFault { code });
        }
        info!(?summary, "sweep finished");
        Ok(summary)
    }

    /// One cheap look-up before claiming anything: a wrong or revoked key is found here and
    /// the run stops before touching a single subscription.
    async fn preflight(&self) -> Result<(), Error> {
        let probe =
            OrderId::parse("preflight-key-check").map_err(|e| Error::Internal(e.to_string()))?;
        match self.toss.payment_by_order_id(&probe).await {
            Ok(_) => Ok(()),
            Err(e) => match e.class() {
                ErrorClass::NotFound => Ok(()),
                ErrorClass::OurFault => Err(Error::OurFault {
                    code: e.code().unwrap_or_default().to_owned(),
                }),
                _ => Err(Error::TossUnavailable(e)),
            },
        }
    }

    async fn process(&self, run: &Run<'_>, sub: Subscription) -> Result<Processed, Error> {
        let now = run.now();
        match sub.next_action(run.options.as_of) {
            NextAction::Nothing => Ok(Processed::Nothing),
            NextAction::Charge { period } => {
                let kind = if sub.dunning.is_some() {
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
                match self.store.claim_attempt(&attempt).await {
                    Ok(()) => {
                        failpoint!("after_claim");
                        self.settle_in_slot(run, sub, attempt, Mode::Fresh, now)
                            .await
                    }
                    Err(e) if e.is_conflict() => self.resolve_claimed(run, sub, period, kind).await,
                    Err(e) => Err(e.into()),
                }
            }
            NextAction::ReconcileOnly => {
                match self
                    .store
                    .attempt(&sub.id, sub.next_period, sub.next_attempt())
                    .await?
                {
                    Some(open) if !open.status.is_final() => self.take_over(run, sub, open).await,
                    _ => {
                        // Nothing under way for this unpaid subscription: take it out of the index.
                        let mut sub = sub;
                        sub.next_charge_at = None;
                        match self.store.save_subscription(&mut sub).await {
                            Ok(()) => Ok(Processed::Nothing),
                            Err(e) if e.is_conflict() => Ok(Processed::Skipped),
                            Err(e) => Err(e.into()),
                        }
                    }
                }
            }
            NextAction::Cancel(reason) => {
                let mut sub = sub;
                sub.cancel(reason, now);
                match self.store.save_subscription(&mut sub).await {
                    Ok(()) => {}
                    Err(e) if e.is_conflict() => return Ok(Processed::Skipped),
                    Err(e) => return Err(e.into()),
                }
                info!(subscription = %sub.id, reason = reason.as_str(), "subscription canceled");
                let key_deleted = self.delete_billing_key_of(&sub.id, now).await?;
                Ok(Processed::Canceled { key_deleted })
            }
            NextAction::DeleteBillingKey => {
                Ok(if self.delete_billing_key_of(&sub.id, now).await? {
                    Processed::KeyDeleted
                } else {
                    Processed::Skipped
                })
            }
        }
    }

    /// The attempt we wanted to create exists already. Work out why from the ledger.
    async fn resolve_claimed(
        &self,
        run: &Run<'_>,
        seen: Subscription,
        period: u32,
        kind: AttemptKind,
    ) -> Result<Processed, Error> {
        let Some(sub) = self.store.subscription(&seen.id).await? else {
            return Ok(Processed::Skipped);
        };
        if sub.version != seen.version {
            // The index was stale: the subscription moved on; the next run sees it as it is.
            return Ok(Processed::Skipped);
        }
        let attempts = self.store.attempts_for_period(&sub.id, period).await?;
        let Some(last) = attempts.into_iter().last() else {
            return Ok(Processed::Skipped);
        };
        let now = run.now();
        match last.status {
            AttemptStatus::Pending | AttemptStatus::Unknown => self.take_over(run, sub, last).await,
            AttemptStatus::NotCharged => {
                // Toss refused an earlier attempt for a reason on our side and nothing was
                // charged; this run may try again under the next attempt number.
                let attempt = self.new_attempt(
                    &sub,
                    period,
                    last.attempt + 1,
                    kind,
                    &run.options.run_id,
                    now,
                );
                match self.store.claim_attempt(&attempt).await {
                    Ok(()) => {
                        failpoint!("after_claim");
                        self.settle_in_slot(run, sub, attempt, Mode::Fresh, now)
                            .await
                    }
                    Err(e) if e.is_conflict() => Ok(Processed::Skipped),
                    Err(e) => Err(e.into()),
                }
            }
            AttemptStatus::Done | AttemptStatus::Declined => {
                // The subscription and the ledger were read one after the other: another run's
                // outcome transaction may have committed in between. Only a subscription that
                // still has not moved after that is a real disagreement.
                match self.store.subscription(&sub.id).await? {
                    Some(fresh) if fresh.version == sub.version => {}
                    _ => return Ok(Processed::Skipped),
                }
                error!(
                    subscription = %sub.id,
                    order_id = %last.order_id,
                    "the ledger has a final attempt the subscription does not reflect; leaving it for a human"
                );
                Err(Error::Internal("ledger and subscription disagree".into()))
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
            return Ok(Processed::Skipped);
        }
        attempt.lease = Some(self.lease(&run.options.run_id, now));
        attempt.updated_at = now;
        match self.store.take_over_attempt(&attempt, now).await {
            Ok(()) => {}
            Err(e) if e.is_conflict() => return Ok(Processed::Skipped),
            Err(e) => return Err(e.into()),
        }
        warn!(subscription = %sub.id, order_id = %attempt.order_id, "reconciling an unfinished attempt");
        self.settle_in_slot(run, sub, attempt, Mode::Reconcile, now)
            .await
    }

    /// Settles an attempt this run holds (just claimed, or taken over) once a Toss slot is
    /// free; the slot is held from the charge until its outcome is recorded.
    async fn settle_in_slot(
        &self,
        run: &Run<'_>,
        sub: Subscription,
        attempt: ChargeAttempt,
        mode: Mode,
        now: DateTime<Utc>,
    ) -> Result<Processed, Error> {
        let _slot = run.toss_slot().await?;
        Ok(Processed::Settled(
            self.settle(sub, attempt, &run.options.run_id, mode, now)
                .await?,
        ))
    }
}

impl Run<'_> {
    async fn count(&self, result: Result<Processed, Error>) {
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
            Ok(Processed::Canceled { key_deleted }) => {
                s.canceled += 1;
                s.billing_keys_deleted += u64::from(key_deleted);
            }
            Ok(Processed::KeyDeleted) => s.billing_keys_deleted += 1,
            Ok(Processed::Skipped | Processed::Nothing) => s.skipped += 1,
            Err(Error::OurFault { code }) => {
                self.abort.store(true, Ordering::SeqCst);
                drop(s);
                self.our_fault.lock().await.get_or_insert(code);
            }
            Err(e) => {
                error!(error = %e, cause = ?e, "processing a due subscription failed");
                s.errors += 1;
            }
        }
    }
}

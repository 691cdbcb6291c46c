//! The charge engine: settles one claimed attempt and records its outcome.

use chrono::{DateTime, Duration, Utc};
use domain::{
    AttemptKind, AttemptStatus, CancelReason, ChargeAttempt, DeclineKind, DunningPolicy, Lease,
    Plan, Subscription,
};
use toss::{ChargeRequest, ErrorClass, Payment, PaymentStatus};
use tracing::{error, info, warn};

use crate::Error;

/// Tunables of the engine, read from configuration once per cold start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub plan: Plan,
    pub dunning: DunningPolicy,
    /// How long a claimed attempt is exclusively ours; longer than a charge can take.
    pub lease: Duration,
}

/// The billing service: Toss, the table, and the plan. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Billing {
    pub(crate) toss: toss::Client,
    pub(crate) store: store::Store,
    pub(crate) settings: Settings,
}

/// How a settled attempt ended, for the caller's summary and redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Settled {
    Charged {
        amount: domain::Krw,
        reconciled: bool,
    },
    Declined {
        code: String,
        canceled: bool,
    },
    Unknown {
        code: String,
    },
    /// The subscription moved on meanwhile; the attempt was recorded alone (see logs).
    Anomaly,
    /// Declined with a card the customer replaced meanwhile: nothing was charged, the attempt
    /// is recorded as not charged and the next run charges the new card.
    Superseded,
}

/// Whether to ask Toss first (an attempt that may already have been sent) or charge at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Fresh,
    Reconcile,
}

const RECORD_RETRIES: usize = 5;

impl Billing {
    pub fn new(toss: toss::Client, store: store::Store, settings: Settings) -> Self {
        Self {
            toss,
            store,
            settings,
        }
    }

    pub fn store(&self) -> &store::Store {
        &self.store
    }

    pub fn toss(&self) -> &toss::Client {
        &self.toss
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Opens the connections to DynamoDB and Toss during init (both TLS handshakes, in
    /// parallel), so a cold start's first event does not pay for them. Failures are only
    /// logged: the first real request reports them properly (a wrong key, say, stops the sweep
    /// at its preflight).
    pub async fn warm_up(&self) {
        let started = std::time::Instant::now();
        let probe = domain::OrderId::parse("warmup-connection").ok();
        let (table, toss) = tokio::join!(self.store.warm_up(), async {
            match &probe {
                Some(id) => self.toss.payment_by_order_id(id).await.map(|_| ()),
                None => Ok(()),
            }
        });
        let toss_reachable = match &toss {
            Ok(()) => true,
            Err(e) => e.status().is_some(),
        };
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            table_ok = table.is_ok(),
            toss_reachable,
            "connections warmed up"
        );
    }

    pub(crate) fn lease(&self, owner: &str, now: DateTime<Utc>) -> Lease {
        Lease {
            owner: owner.to_owned(),
            until: now + self.settings.lease,
        }
    }

    /// A new attempt at charging `period` of `sub`, claimed by `owner` under a fresh lease.
    /// The amount is the configured plan's, never anything from a request.
    pub(crate) fn new_attempt(
        &self,
        sub: &Subscription,
        period: u32,
        number: u32,
        kind: AttemptKind,
        owner: &str,
        now: DateTime<Utc>,
    ) -> ChargeAttempt {
        ChargeAttempt::claim(
            sub.id.clone(),
            sub.customer_key.clone(),
            period,
            number,
            self.settings.plan.amount(),
            kind,
            self.lease(owner, now),
            now,
        )
    }

    /// Settles an attempt we hold the lease on: charges (or looks up) at Toss, then records
    /// the outcome. `now` is the engine's clock (the sweep's test clock when it runs ahead).
    #[tracing::instrument(skip_all, fields(subscription = %sub.id, order_id = %attempt.order_id, attempt = attempt.attempt, mode = ?mode))]
    pub(crate) async fn settle(
        &self,
        sub: Subscription,
        attempt: ChargeAttempt,
        owner: &str,
        mode: Mode,
        now: DateTime<Utc>,
    ) -> Result<Settled, Error> {
        let answer = match mode {
            Mode::Fresh => self.charge(&sub, &attempt).await,
            Mode::Reconcile => match self.toss.payment_by_order_id(&attempt.order_id).await {
                // Toss has no payment under this order id: send the very same charge again
                // (same order id, same idempotency key); Toss refuses a duplicate.
                Err(e) if e.class() == ErrorClass::NotFound => self.charge(&sub, &attempt).await,
                other => other,
            },
        };
        failpoint!("after_toss_answer");
        self.record(sub, attempt, owner, answer, mode, now).await
    }

    async fn charge(
        &self,
        sub: &Subscription,
        attempt: &ChargeAttempt,
    ) -> Result<Payment, toss::Error> {
        let Some(billing_key) = sub.billing_key.as_ref() else {
            // Only a canceled subscription has no key; nothing can be charged.
            return Err(toss::Error::Api {
                operation: toss::Operation::Charge,
                status: 404,
                code: toss::ErrorCode::parse("NOT_FOUND_BILLING"),
                message: "the subscription has no billing key".into(),
                trace_id: None,
            });
        };
        let plan = &self.settings.plan;
        let request = ChargeRequest {
            customer_key: sub.customer_key.clone(),
            amount: attempt.amount,
            order_id: attempt.order_id.clone(),
            order_name: plan.order_name().to_owned(),
            customer_email: sub.customer_email.clone(),
            customer_name: sub.customer_name.clone(),
        };
        self.toss
            .charge(billing_key, &request, &(&attempt.order_id).into())
            .await
    }

    async fn record(
        &self,
        sub: Subscription,
        mut attempt: ChargeAttempt,
        owner: &str,
        answer: Result<Payment, toss::Error>,
        mode: Mode,
        now: DateTime<Utc>,
    ) -> Result<Settled, Error> {
        let reconciled = mode == Mode::Reconcile;
        let error = match answer {
            Ok(payment) => {
                return self
                    .record_payment(sub, attempt, owner, payment, reconciled, now)
                    .await;
            }
            Err(e) => e,
        };
        let code = error.code().unwrap_or("NO_RESPONSE").to_owned();
        let message = error.to_string();
        match error.class() {
            ErrorClass::SoftDecline => {
                self.record_decline(sub, attempt, owner, DeclineKind::Soft, &code, &message, now)
                    .await
            }
            ErrorClass::NeedsNewCard | ErrorClass::Rejected => {
                self.record_decline(
                    sub,
                    attempt,
                    owner,
                    DeclineKind::NeedsNewCard,
                    &code,
                    &message,
                    now,
                )
                .await
            }
            ErrorClass::OurFault => {
                error!(code = %code, "Toss refused the charge for a reason on our side; stopping");
                attempt.mark_not_charged(&code, &message, now);
                self.store.save_attempt(&attempt, owner).await?;
                Err(Error::OurFault { code })
            }
            ErrorClass::OutcomeUnknown | ErrorClass::AlreadyProcessed | ErrorClass::NotFound => {
                warn!(code = %code, "charge outcome unknown; looking the order up");
                match self.toss.payment_by_order_id(&attempt.order_id).await {
                    Ok(payment) if payment.status == PaymentStatus::Done => {
                        self.record_payment(sub, attempt, owner, payment, true, now)
                            .await
                    }
                    Err(e) if e.class() == ErrorClass::OurFault => {
                        let code = e.code().unwrap_or_default().to_owned();
                        Err(Error::OurFault { code })
                    }
                    _ => {
                        attempt.mark_unknown(&code, &message, now);
                        self.store.save_attempt(&attempt, owner).await?;
                        Ok(Settled::Unknown { code })
                    }
                }
            }
        }
    }

    async fn record_payment(
        &self,
        sub: Subscription,
        mut attempt: ChargeAttempt,
        owner: &str,
        payment: Payment,
        reconciled: bool,
        now: DateTime<Utc>,
    ) -> Result<Settled, Error> {
        match &payment.status {
            PaymentStatus::Done => {}
            PaymentStatus::Aborted | PaymentStatus::Expired => {
                let (code, message) = payment
                    .failure
                    .as_ref()
                    .map(|f| (f.code.clone(), f.message.clone()))
                    .unwrap_or_else(|| {
                        (
                            "PAYMENT_ABORTED".into(),
                            "Toss reports the payment as aborted".into(),
                        )
                    });
                let kind = match toss::class::class_of_code(
                    toss::Operation::Charge,
                    &toss::ErrorCode::parse(&code),
                ) {
                    ErrorClass::SoftDecline => DeclineKind::Soft,
                    _ => DeclineKind::NeedsNewCard,
                };
                return self
                    .record_decline(sub, attempt, owner, kind, &code, &message, now)
                    .await;
            }
            PaymentStatus::Canceled | PaymentStatus::PartialCanceled => {
                // Approved, then refunded by someone: the period was not paid for.
                return self
                    .record_decline(
                        sub,
                        attempt,
                        owner,
                        DeclineKind::Soft,
                        "PAYMENT_CANCELED",
                        "the payment was canceled",
                        now,
                    )
                    .await;
            }
            other => {
                let code = format!("PAYMENT_{}", other.as_str());
                attempt.mark_unknown(&code, "the payment is not final yet", now);
                self.store.save_attempt(&attempt, owner).await?;
                return Ok(Settled::Unknown { code });
            }
        }
        if payment.order_id != attempt.order_id.as_str() {
            error!("Toss answered with another order's payment; leaving the attempt open");
            attempt.mark_unknown("ORDER_MISMATCH", "Toss answered with another order", now);
            self.store.save_attempt(&attempt, owner).await?;
            return Ok(Settled::Unknown {
                code: "ORDER_MISMATCH".into(),
            });
        }
        if payment.total_amount != attempt.amount {
            error!(
                charged = payment.total_amount.won(),
                expected = attempt.amount.won(),
                "Toss charged another amount than requested"
            );
        }
        let approved_at = payment.approved_at.map_or(now, |t| t.with_timezone(&Utc));
        attempt.mark_done(payment.payment_key.clone(), approved_at, now);
        let period = attempt.period;
        let plan = self.settings.plan.clone();
        let applied = self
            .write_outcome(sub, &mut attempt, owner, |s, _| {
                if s.next_period != period {
                    return false;
                }
                s.apply_success(period, approved_at, &plan);
                true
            })
            .await?;
        if !applied {
            return Ok(Settled::Anomaly);
        }
        info!(
            amount = payment.total_amount.won(),
            reconciled, "charge approved"
        );
        Ok(Settled::Charged {
            amount: payment.total_amount,
            reconciled,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_decline(
        &self,
        sub: Subscription,
        mut attempt: ChargeAttempt,
        owner: &str,
        kind: DeclineKind,
        code: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<Settled, Error> {
        attempt.mark_declined(code, message, now);
        let (period, number) = (attempt.period, attempt.attempt);
        let policy = self.settings.dunning.clone();
        let mut cancel = false;
        let mut superseded = false;
        let charged_key = sub.billing_key.clone();
        let applied = self
            .write_outcome(sub, &mut attempt, owner, |s, a| {
                if s.next_period != period {
                    return false;
                }
                if s.billing_key != charged_key {
                    // The card was replaced while this charge was under way (the sweep read the
                    // subscription before the redirect changed it): the decline says nothing
                    // about the new card, so it must not start dunning.
                    a.mark_not_charged(
                        "CARD_REPLACED",
                        "declined with a card replaced meanwhile",
                        now,
                    );
                    superseded = true;
                    return false;
                }
                cancel = s.apply_decline(number, kind, code, now, &policy);
                if cancel {
                    s.cancel(CancelReason::DunningExhausted, now);
                }
                true
            })
            .await?;
        if superseded {
            info!(
                code,
                "declined with a replaced card; the next run charges the new one"
            );
            return Ok(Settled::Superseded);
        }
        if !applied {
            return Ok(Settled::Anomaly);
        }
        info!(code, ?kind, canceled = cancel, "charge declined");
        if cancel {
            self.delete_billing_key_of(&attempt.subscription_id, now)
                .await?;
        }
        Ok(Settled::Declined {
            code: code.to_owned(),
            canceled: cancel,
        })
    }

    /// Writes the attempt's final state and the subscription change in one transaction,
    /// re-reading the subscription when someone else changed it meanwhile (a card update,
    /// say). `change` returns false when the subscription no longer expects this attempt; the
    /// attempt is then recorded alone so the ledger still tells the truth.
    async fn write_outcome(
        &self,
        mut sub: Subscription,
        attempt: &mut ChargeAttempt,
        owner: &str,
        mut change: impl FnMut(&mut Subscription, &mut ChargeAttempt) -> bool,
    ) -> Result<bool, Error> {
        for _ in 0..RECORD_RETRIES {
            let mut next = sub.clone();
            if !change(&mut next, attempt) {
                if attempt.status == AttemptStatus::NotCharged {
                    // The change turned the outcome into "nothing charged" (see record_decline).
                    self.store.save_attempt(attempt, owner).await?;
                    return Ok(false);
                }
                error!(
                    subscription_period = sub.next_period,
                    attempt_period = attempt.period,
                    "the subscription no longer expects this attempt; recording the ledger entry alone"
                );
                self.store.save_attempt(attempt, owner).await?;
                return Ok(false);
            }
            match self.store.record_outcome(&mut next, attempt, owner).await {
                Ok(()) => return Ok(true),
                Err(e) if e.is_conflict() => {
                    // Our lease is ours alone, so the subscription must have changed: reload.
                    match self.store.subscription(&sub.id).await? {
                        Some(fresh) => sub = fresh,
                        None => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Store(store::Error::ConditionFailed))
    }

    /// Deletes a canceled subscription's billing key at Toss and forgets it. A failure is
    /// left for the next sweep (the subscription stays in the due index until it succeeds).
    pub(crate) async fn delete_billing_key_of(
        &self,
        id: &domain::SubscriptionId,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let Some(mut sub) = self.store.subscription(id).await? else {
            return Ok(false);
        };
        let Some(key) = sub.billing_key.clone() else {
            return Ok(false);
        };
        match self.toss.delete_billing_key(&key).await {
            Ok(()) => {
                sub.billing_key_deleted(now);
                match self.store.save_subscription(&mut sub).await {
                    Ok(()) => Ok(true),
                    Err(e) if e.is_conflict() => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) if e.class() == ErrorClass::OurFault => Err(Error::OurFault {
                code: e.code().unwrap_or_default().to_owned(),
            }),
            Err(e) => {
                warn!(error = %e, "billing key deletion failed; the next sweep retries it");
                Ok(false)
            }
        }
    }

    /// Best-effort deletion of a key no subscription uses any more (a replaced card).
    pub(crate) async fn forget_billing_key(&self, key: &domain::BillingKey) {
        if let Err(e) = self.toss.delete_billing_key(key).await {
            warn!(error = %e, "could not delete a replaced billing key at Toss");
        }
    }
}

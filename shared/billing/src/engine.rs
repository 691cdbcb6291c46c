//! The charge engine: settles one claimed attempt and records its outcome.

use chrono::{DateTime, Duration, Utc};
use domain::{
    AttemptKind, AttemptStatus, CancelReason, ChargeAttempt, DeclineKind, DunningPolicy, Lease,
    Plan, Status, Subscription,
};
use toss::{ChargeRequest, ErrorClass, Payment};
use tracing::{error, info, warn};

use crate::Error;
use crate::outcome::{ChargeOutcome, Source, decide, toss_code};

/// Tunables of the engine, read from configuration once per cold start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub plan: Plan,
    pub dunning: DunningPolicy,
    /// How long a claimed attempt is exclusively ours; longer than a charge can take.
    pub lease: Duration,
    /// How long an `incomplete` subscription (first charge never paid, nothing under way)
    /// waits for its customer before it is ended and its billing key deleted.
    pub incomplete_expiry: Duration,
    /// Days after a period's charge during which it may be withdrawn (청약철회) if none of
    /// its credits were used (`REFUND_WITHDRAWAL_DAYS`).
    pub withdrawal_days: u32,
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
    /// Toss refused this customer's data at a first charge: nothing was charged.
    NotCharged {
        code: String,
    },
    /// Held for an operator (refused customer data, or a payment record no rule may settle).
    Held {
        code: String,
        /// Toss refused the customer's data (as opposed to a payment record for review).
        refused_data: bool,
    },
}

/// What writing a charge's outcome came to.
enum Written {
    /// The entry and the subscription's change, together.
    Applied,
    /// The subscription no longer expects the attempt: the entry alone.
    Alone,
    /// The subscription ended while the charge was in flight: nothing written yet.
    Ended,
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
        let mut attempt = ChargeAttempt::claim(
            sub.id().clone(),
            sub.customer_key().clone(),
            period,
            number,
            self.settings.plan.amount(),
            kind,
            self.lease(owner, now),
            now,
        );
        if let Some(key) = sub.billing_key() {
            attempt.send_with(key.fingerprint(), now);
        }
        attempt
    }

    /// Settles an attempt we hold the lease on: charges (or looks up) at Toss, reads the answer
    /// with [`decide`], then writes what it decided. `now` is the engine's clock (the sweep's
    /// test clock when it runs ahead).
    #[tracing::instrument(skip_all, fields(subscription = %sub.id(), order_id = %attempt.order_id(), attempt = attempt.attempt(), mode = ?mode))]
    pub(crate) async fn settle(
        &self,
        sub: Subscription,
        mut attempt: ChargeAttempt,
        owner: &str,
        mode: Mode,
        now: DateTime<Utc>,
    ) -> Result<Settled, Error> {
        let mut looked_up = mode == Mode::Reconcile;
        let (source, answer) = match mode {
            Mode::Fresh => (
                Source::Charge,
                self.charge(&sub, &mut attempt, owner).await?,
            ),
            Mode::Reconcile => {
                let found = self.toss.payment_by_order_id(attempt.order_id()).await;
                match decide(Source::LookUp, &found, &attempt) {
                    // Toss has no payment under this order id: send the very same charge again
                    // (same order id, same idempotency key); Toss refuses a duplicate.
                    ChargeOutcome::NotFound => (
                        Source::Resend,
                        self.charge(&sub, &mut attempt, owner).await?,
                    ),
                    _ => (Source::LookUp, found),
                }
            }
        };
        failpoint!("after_toss_answer");
        let mut outcome = decide(source, &answer, &attempt);
        if source != Source::LookUp && matches!(outcome, ChargeOutcome::Unknown { .. }) {
            warn!(code = ?answer.as_ref().err().and_then(|e| e.code()), "charge outcome unknown; looking the order up");
            let found = self.toss.payment_by_order_id(attempt.order_id()).await;
            match decide(Source::LookUp, &found, &attempt) {
                // Nothing more is known: keep the charge's own answer.
                ChargeOutcome::NotFound | ChargeOutcome::Unknown { .. } => {}
                found => {
                    looked_up = true;
                    outcome = found;
                }
            }
        }
        self.apply(sub, attempt, owner, outcome, looked_up, now)
            .await
    }

    /// Sends the attempt's charge with the subscription's current card, first noting in the
    /// ledger which card that is (so a decline is blamed on the card actually tried).
    async fn charge(
        &self,
        sub: &Subscription,
        attempt: &mut ChargeAttempt,
        owner: &str,
    ) -> Result<Result<Payment, toss::Error>, Error> {
        let Some(billing_key) = sub.billing_key() else {
            // A canceled subscription has no key, nor one whose key Toss deleted
            // (`card_deleted_at_toss`): nothing is sent, and the answer is the decline Toss
            // gives a deleted key, so the customer is asked for a new card.
            return Ok(Err(toss::Error::Api {
                operation: toss::Operation::Charge,
                status: 404,
                code: toss::ErrorCode::parse("NOT_FOUND_BILLING"),
                message: "the subscription has no billing key".into(),
                trace_id: None,
            }));
        };
        let card = billing_key.fingerprint();
        if attempt.send_with(card, Utc::now()) {
            self.store.save_attempt(attempt, owner).await?;
        }
        let plan = &self.settings.plan;
        let request = ChargeRequest {
            customer_key: sub.customer_key().clone(),
            amount: attempt.amount(),
            order_id: attempt.order_id().clone(),
            order_name: plan.order_name().to_owned(),
            customer_email: sub.customer_email().map(|e| e.as_str().to_owned()),
            customer_name: sub.customer_name().map(|n| n.as_str().to_owned()),
        };
        Ok(self
            .toss
            .charge(billing_key, &request, &attempt.order_id().into())
            .await)
    }

    /// Writes what [`decide`] decided; nothing here interprets Toss's answer again.
    async fn apply(
        &self,
        sub: Subscription,
        mut attempt: ChargeAttempt,
        owner: &str,
        outcome: ChargeOutcome,
        looked_up: bool,
        now: DateTime<Utc>,
    ) -> Result<Settled, Error> {
        match outcome {
            ChargeOutcome::Approved {
                payment_key,
                approved_at,
                amount,
                receipt_url,
            } => {
                let approved_at = approved_at.unwrap_or(now);
                let mut attempt = attempt;
                attempt.attach_receipt(receipt_url);
                self.record_payment(
                    sub,
                    attempt,
                    owner,
                    (payment_key, approved_at, amount),
                    looked_up,
                    now,
                )
                .await
            }
            ChargeOutcome::Declined {
                kind,
                code,
                message,
            } => {
                self.record_decline(sub, attempt, owner, kind, &code, &message, now)
                    .await
            }
            ChargeOutcome::OurFault { code, message } => {
                error!(code = %code, "Toss refused the charge for a reason on our side; stopping");
                attempt.mark_not_charged(&code, &message, now);
                self.store.save_attempt(&attempt, owner).await?;
                Err(Error::OurFault {
                    code: toss_code(&code),
                })
            }
            ChargeOutcome::CustomerRefused { code, message } => {
                attempt.mark_not_charged(&code, &message, now);
                if sub.status() == Status::Incomplete {
                    // A first charge: the customer sees the code and can register again.
                    warn!(code = %code, "Toss refused this customer's data at the first charge");
                    self.store.save_attempt(&attempt, owner).await?;
                    return Ok(Settled::NotCharged { code });
                }
                error!(code = %code, "Toss refused this customer's data; holding the subscription for an operator");
                self.hold(sub, attempt, owner, code, true, now).await
            }
            ChargeOutcome::Review { code, message } => {
                error!(code = %code, "Toss's record of this payment needs an operator; holding the subscription");
                attempt.mark_for_review(&code, &message, now);
                self.hold(sub, attempt, owner, code, false, now).await
            }
            ChargeOutcome::Unknown { code, message } => {
                attempt.mark_unknown(&code, &message, now);
                self.store.save_attempt(&attempt, owner).await?;
                Ok(Settled::Unknown { code })
            }
            ChargeOutcome::NotFound => {
                // Only a look-up says this, and `settle` re-sends the charge instead; should it
                // ever reach here, the attempt simply stays open.
                attempt.mark_unknown("NOT_FOUND_PAYMENT", "no payment under this order yet", now);
                self.store.save_attempt(&attempt, owner).await?;
                Ok(Settled::Unknown {
                    code: "NOT_FOUND_PAYMENT".into(),
                })
            }
            ChargeOutcome::LookUpRefused { code } => {
                // A look-up's error settles nothing: the attempt stays open for a later run.
                error!(code = %code, "Toss refused a look-up for a reason on our side; stopping with the attempt open");
                attempt.mark_unknown(&code, "the look-up was refused", now);
                self.store.save_attempt(&attempt, owner).await?;
                Err(Error::OurFault {
                    code: toss_code(&code),
                })
            }
        }
    }

    /// Records the attempt (not charged, or for review) and holds the subscription for an
    /// operator, in one write.
    async fn hold(
        &self,
        sub: Subscription,
        mut attempt: ChargeAttempt,
        owner: &str,
        code: String,
        refused_data: bool,
        now: DateTime<Utc>,
    ) -> Result<Settled, Error> {
        let (period, order_id) = (attempt.period(), attempt.order_id().clone());
        let applied = self
            .write_outcome(sub, &mut attempt, owner, |s, _| {
                if s.next_period() != period {
                    return false;
                }
                s.hold(&code, Some(order_id.clone()), now);
                true
            })
            .await?;
        Ok(if applied {
            Settled::Held { code, refused_data }
        } else {
            Settled::Anomaly
        })
    }

    async fn record_payment(
        &self,
        sub: Subscription,
        mut attempt: ChargeAttempt,
        owner: &str,
        (payment_key, approved_at, amount): (domain::PaymentKey, DateTime<Utc>, domain::Krw),
        reconciled: bool,
        now: DateTime<Utc>,
    ) -> Result<Settled, Error> {
        if amount != attempt.amount() {
            error!(
                charged = amount.won(),
                expected = attempt.amount().won(),
                "Toss charged another amount than requested"
            );
        }
        attempt.mark_done(payment_key, approved_at, now);
        let period = attempt.period();
        let plan = self.settings.plan.clone();
        let written = self
            .write_outcome_of(sub, &mut attempt, owner, |s, _| {
                if s.next_period() != period {
                    return false;
                }
                s.apply_success(period, approved_at, &plan);
                true
            })
            .await?;
        match written {
            Written::Applied => {}
            Written::Alone => return Ok(Settled::Anomaly),
            Written::Ended => {
                // Boxed: rare, and its refund future would otherwise grow every settle's.
                Box::pin(self.give_back(attempt, amount, owner, now)).await?;
                return Ok(Settled::Anomaly);
            }
        }
        info!(amount = amount.won(), reconciled, "charge approved");
        Ok(Settled::Charged { amount, reconciled })
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
        let (period, number) = (attempt.period(), attempt.attempt());
        let policy = self.settings.dunning.clone();
        let mut cancel = false;
        let mut superseded = false;
        // The card the declined charge was sent with: the ledger's note, or (for an attempt
        // written before the ledger kept it) the card as this run read it.
        let tried = attempt
            .card()
            .cloned()
            .or_else(|| sub.billing_key().map(domain::BillingKey::fingerprint));
        let applied = self
            .write_outcome(sub, &mut attempt, owner, |s, a| {
                if s.next_period() != period {
                    return false;
                }
                if s.billing_key().map(domain::BillingKey::fingerprint) != tried {
                    // The card was replaced after this charge was sent: the decline says
                    // nothing about the new card, so it must not start dunning.
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
            self.delete_billing_key_of(attempt.subscription_id(), now)
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
        sub: Subscription,
        attempt: &mut ChargeAttempt,
        owner: &str,
        change: impl FnMut(&mut Subscription, &mut ChargeAttempt) -> bool,
    ) -> Result<bool, Error> {
        Ok(
            match self.write_outcome_of(sub, attempt, owner, change).await? {
                Written::Applied => true,
                Written::Alone => false,
                Written::Ended => {
                    // Nothing was charged: the ledger entry alone tells it.
                    self.store.save_attempt(attempt, owner).await?;
                    false
                }
            },
        )
    }

    /// [`write_outcome`](Self::write_outcome), telling apart a subscription that ended while
    /// the charge was in flight (`Ended`: nothing is written; an ended subscription is never
    /// revived by a charge, put into dunning by a decline, or held).
    async fn write_outcome_of(
        &self,
        mut sub: Subscription,
        attempt: &mut ChargeAttempt,
        owner: &str,
        mut change: impl FnMut(&mut Subscription, &mut ChargeAttempt) -> bool,
    ) -> Result<Written, Error> {
        for _ in 0..RECORD_RETRIES {
            if sub.status() == Status::Canceled {
                return Ok(Written::Ended);
            }
            let mut next = sub.clone();
            if !change(&mut next, attempt) {
                if attempt.status() == AttemptStatus::NotCharged {
                    // The change turned the outcome into "nothing charged" (see record_decline).
                    self.store.save_attempt(attempt, owner).await?;
                    return Ok(Written::Alone);
                }
                error!(
                    subscription_period = sub.next_period(),
                    attempt_period = attempt.period(),
                    "the subscription no longer expects this attempt; recording the ledger entry alone"
                );
                self.store.save_attempt(attempt, owner).await?;
                return Ok(Written::Alone);
            }
            match self.store.record_outcome(&mut next, attempt, owner).await {
                Ok(()) => return Ok(Written::Applied),
                Err(e) if e.is_conflict() => {
                    // Our lease is ours alone, so the subscription must have changed: reload.
                    match self.store.subscription(sub.id()).await? {
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
        let Some(key) = sub.billing_key().cloned() else {
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
                code: e.error_code().cloned(),
            }),
            Err(e) => {
                warn!(error = %e, "billing key deletion failed; the next sweep retries it");
                Ok(false)
            }
        }
    }

    /// Deletes the keys a subscription retired (a replaced card's), and forgets each one Toss
    /// confirms gone. Returns the subscription as saved, or `None` when it changed meanwhile
    /// (the next run tries again). A key Toss no longer knows counts as deleted.
    pub(crate) async fn delete_retired_keys(
        &self,
        mut sub: Subscription,
        now: DateTime<Utc>,
    ) -> Result<Option<Subscription>, Error> {
        let mut deleted = Vec::new();
        for key in sub.retired_billing_keys() {
            match self.toss.delete_billing_key(key).await {
                Ok(()) => deleted.push(key.clone()),
                Err(e) if e.class() == ErrorClass::NeedsNewCard => deleted.push(key.clone()),
                Err(e) if e.class() == ErrorClass::OurFault => {
                    return Err(Error::OurFault {
                        code: e.error_code().cloned(),
                    });
                }
                Err(e) => {
                    warn!(error = %e, "a retired billing key could not be deleted yet; the next sweep retries");
                }
            }
        }
        if deleted.is_empty() {
            return Ok(Some(sub));
        }
        for key in &deleted {
            sub.retired_key_deleted(key, now);
        }
        match self.store.save_subscription(&mut sub).await {
            Ok(()) => {
                info!(
                    count = deleted.len(),
                    "retired billing keys deleted at Toss"
                );
                Ok(Some(sub))
            }
            Err(e) if e.is_conflict() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Best-effort deletion of a key no subscription uses any more (a replaced card).
    pub(crate) async fn forget_billing_key(&self, key: &domain::BillingKey) {
        if let Err(e) = self.toss.delete_billing_key(key).await {
            warn!(error = %e, "could not delete a replaced billing key at Toss");
        }
    }
}

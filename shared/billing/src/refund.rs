//! Refunds, mirroring the charge engine (product §11): the refund is claimed in the ledger
//! first (a conditional create that also holds its amount against the payment's refundable
//! balance), Toss's cancel is sent with an idempotency key derived from the entry, and the
//! answer is settled into the ledger. An unknown answer is looked up by paymentKey and the
//! refund found by its key in the cancel's reason; it is never sent again under another key.
//!
//! Three decisions, each logged as its own step: money back, taking back the period's unused
//! credits, ending the subscription now. A full refund of the current period does all three;
//! a partial one only gives money back unless the caller asks for more.

use chrono::{DateTime, Utc};
use domain::{
    AttemptStatus, CancelReason, ChargeAttempt, Krw, OrderId, PaymentKey, Refund, RefundBy,
    RefundStatus, Status, Subscription,
};
use store::RefundWrite;
use toss::{ErrorClass, Payment};
use tracing::{error, info, warn};

use crate::settlement::our_attempt;
use crate::{Billing, Contended, Error, Invariant};

/// A refund as the edge parsed it.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    /// The paid attempt to give money back from.
    pub order_id: OrderId,
    /// `None`: everything still refundable.
    pub amount: Option<Krw>,
    pub reason: String,
    pub by: RefundBy,
    /// `None`: the rule (only a full refund of the current period ends the subscription).
    pub end_subscription: Option<bool>,
    /// `None`: the rule (only a full refund of the current period takes its credits back).
    pub take_back_credits: Option<bool>,
    /// An operator's id for this request: the same id again answers with the refund it
    /// claimed the first time and claims nothing (an invocation retried after a timeout).
    pub request_id: Option<RequestId>,
}

impl RefundRequest {
    /// What the request asks for, to tell a retry of it from another request under its id.
    fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{:?}|{:?}",
            self.order_id,
            self.amount
                .map_or("rest".to_owned(), |a| a.won().to_string()),
            self.end_subscription,
            self.take_back_credits
        )
    }
}

/// An operator's refund request id: 1 to 64 of `A-Z a-z 0-9 . _ : -`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    pub fn parse(value: &str) -> Option<Self> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
        ok.then(|| Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a refund came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// Toss gave the money back; the ledger says so.
    Refunded {
        refund: Refund,
        ended: bool,
        credits_taken: u64,
    },
    /// Toss's answer was lost and a look-up did not find the cancel (yet): the refund stays
    /// open, its amount held, and is settled by a later look-up.
    Unknown { refund: Refund },
    /// Toss refused it; no money moved and the amount is free again.
    Refused { refund: Refund, code: String },
    /// The amount is zero or more than what is left to refund.
    NotRefundable { refundable: Krw },
    /// No paid attempt of ours has this order id.
    NoSuchPayment,
    /// The request id was used before for another request; nothing was done.
    RequestIdReused,
}

/// What a convergence with Toss's record of one payment did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Converged {
    /// Cancels Toss had that no ledger entry named (made in Toss's console), now recorded.
    pub recorded: Vec<Refund>,
    /// Our own open refunds Toss's record showed done, now settled.
    pub settled: Vec<Refund>,
    /// Cancels that could not be recorded (their transactionKey), for an operator.
    pub unrecorded: Vec<String>,
}

/// The reason sent to Toss with the give-back of a charge approved after the end.
const GIVE_BACK_REASON: &str =
    "구독 종료 후 승인된 결제 환불 (charged after the subscription ended)";

const WRITE_RETRIES: usize = 8;

impl Billing {
    /// Gives money back from a paid attempt (see the module's documentation). Nothing is sent
    /// to Toss unless the refund was first claimed within the payment's refundable balance.
    #[tracing::instrument(skip_all, fields(order_id = %request.order_id, by = %request.by.as_stored()))]
    pub async fn refund(
        &self,
        request: &RefundRequest,
        now: DateTime<Utc>,
    ) -> Result<RefundOutcome, Error> {
        let Some(attempt) = self.paid_attempt(&request.order_id).await? else {
            return Ok(RefundOutcome::NoSuchPayment);
        };
        let Some(payment_key) = attempt.payment_key().cloned() else {
            return Ok(RefundOutcome::NoSuchPayment);
        };
        if let Some(answer) = self.answer_seen_request(request, &attempt, now).await? {
            return Ok(answer);
        }
        // Toss's record first: a console refund the ledger lacks is recorded before anything
        // is decided, and its balance is sent along so that Toss refuses a stale cancel.
        let (_, payment) = self.settle_open(&payment_key, now).await?;
        for _ in 0..WRITE_RETRIES {
            let Some(attempt) = self.paid_attempt(&request.order_id).await? else {
                return Ok(RefundOutcome::NoSuchPayment);
            };
            let left = left_to_refund(&attempt, &payment);
            let amount = request.amount.unwrap_or(left);
            if amount.won() == 0 || amount > left {
                return Ok(RefundOutcome::NotRefundable { refundable: left });
            }
            let sub = self.subscription_of(attempt.subscription_id()).await?;
            // Full: nothing is left of the payment once this refund is done.
            let whole = amount == left;
            let rule = whole && is_current_period(&sub, &attempt);
            let mut refund = self
                .next_refund(&attempt, amount, &request.reason, request.by.clone(), now)
                .await?;
            refund.ends_subscription = request.end_subscription.unwrap_or(rule);
            refund.takes_back_credits = request.take_back_credits.unwrap_or(rule);
            let claimed = match &request.request_id {
                Some(id) => {
                    self.store
                        .claim_requested_refund(
                            &refund,
                            attempt.amount(),
                            id.as_str(),
                            &request.fingerprint(),
                        )
                        .await?
                }
                None => {
                    self.store
                        .claim_refund(&refund, attempt.amount(), None)
                        .await?
                }
            };
            match claimed {
                RefundWrite::Written => {
                    info!(refund = %refund.key(), amount = amount.won(), "refund claimed");
                    return self.send_refund(refund, payment.balance_amount, now).await;
                }
                RefundWrite::RequestSeen => {
                    // The same request, racing: answer as the one that claimed it.
                    if let Some(answer) = self.answer_seen_request(request, &attempt, now).await? {
                        return Ok(answer);
                    }
                    continue;
                }
                RefundWrite::OverBalance => {
                    return Ok(RefundOutcome::NotRefundable {
                        refundable: self.refundable_now(&request.order_id, &payment).await?,
                    });
                }
                // Another refund took the number, or raced us: read again.
                _ => continue,
            }
        }
        Err(Invariant::KeptConflicting(Contended::RefundClaim).into())
    }

    /// A request whose id was used before: the refund it claimed, as it stands now (nothing
    /// is sent), or `RequestIdReused` when it asked for something else. `None` for a new id.
    async fn answer_seen_request(
        &self,
        request: &RefundRequest,
        attempt: &ChargeAttempt,
        now: DateTime<Utc>,
    ) -> Result<Option<RefundOutcome>, Error> {
        let Some(id) = &request.request_id else {
            return Ok(None);
        };
        let Some(seen) = self.store.refund_request(id.as_str()).await? else {
            return Ok(None);
        };
        if seen.fingerprint != request.fingerprint()
            || &seen.subscription_id != attempt.subscription_id()
            || (seen.period, seen.attempt) != (attempt.period(), attempt.attempt())
        {
            return Ok(Some(RefundOutcome::RequestIdReused));
        }
        let refund = self
            .store
            .refunds_of(attempt.subscription_id(), seen.period, seen.attempt)
            .await?
            .into_iter()
            .find(|r| r.number == seen.number)
            .ok_or_else(|| Invariant::RequestWithoutRefund {
                request: id.as_str().to_owned(),
                order_id: attempt.order_id().clone(),
                number: seen.number,
            })?;
        info!(refund = %refund.key(), "a refund request seen before: answered from its refund");
        if refund.status.is_open() {
            // Still open: settled from Toss's record now (sent again under its own key if
            // nobody is sending it), rather than left to the next sweep.
            if let Err(e) = self.settle_refunds(attempt.order_id(), now).await {
                warn!(error = %e, "an open refund could not be settled now; the sweep will");
            }
        }
        self.as_settled(refund).await.map(Some)
    }

    /// Gives back in full a charge Toss approved for a subscription that had ended while it
    /// was in flight (a full refund ended it): the `DONE` entry and the claimed refund of all
    /// of it are written in one transaction, so the give-back can never be lost between two
    /// writes; Toss is then asked, and an unanswered refund is in the due index for the sweep.
    pub(crate) async fn give_back(
        &self,
        mut attempt: ChargeAttempt,
        approved: domain::Krw,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        error!(order_id = %attempt.order_id(), "Toss approved a charge for a subscription that had ended meanwhile; giving it back in full");
        let mut refund = self
            .next_refund(&attempt, approved, GIVE_BACK_REASON, RefundBy::System, now)
            .await?;
        refund.ends_subscription = false;
        refund.takes_back_credits = false;
        attempt.hold_all_for_refund();
        self.store
            .record_attempt_given_back(&attempt, owner, &refund)
            .await?;
        match self.send_refund(refund, Some(approved), now).await? {
            RefundOutcome::Refunded { .. } => {
                info!(order_id = %attempt.order_id(), "a charge approved after the end was given back");
            }
            RefundOutcome::Unknown { .. } => {
                warn!(order_id = %attempt.order_id(), "a give-back's answer is unknown; the sweep settles it");
            }
            other => {
                error!(order_id = %attempt.order_id(), ?other, "a give-back was not refunded; an operator must refund this payment");
            }
        }
        Ok(())
    }

    /// Settles the open refunds of a paid attempt: Toss's record first (a cancel it has is
    /// recorded), then each refund Toss still does not show is sent again under its own
    /// idempotency key and with Toss's current balance as `refundableAmount`, so that it can
    /// never apply twice. Returns what each open refund came to (and the console's cancels
    /// recorded once a refused one of ours no longer held their amount).
    pub async fn settle_refunds(
        &self,
        order_id: &OrderId,
        now: DateTime<Utc>,
    ) -> Result<Vec<RefundOutcome>, Error> {
        let Some(payment_key) = self
            .paid_attempt(order_id)
            .await?
            .and_then(|a| a.payment_key().cloned())
        else {
            return Ok(Vec::new());
        };
        Ok(self.settle_open(&payment_key, now).await?.0)
    }

    /// [`settle_refunds`](Self::settle_refunds) of one payment; also returns Toss's record of
    /// it as it is afterwards (read again when anything was sent meanwhile).
    async fn settle_open(
        &self,
        payment_key: &PaymentKey,
        now: DateTime<Utc>,
    ) -> Result<(Vec<RefundOutcome>, Payment), Error> {
        let payment = self
            .toss
            .payment(payment_key)
            .await
            .map_err(Error::TossUnavailable)?;
        let converged = self.converge_refunds(&payment, now).await?;
        let mut outcomes = self.resend_open(&payment, now).await?;
        if outcomes.is_empty() {
            outcomes.extend(converged.settled.into_iter().map(settled));
            return Ok((outcomes, payment));
        }
        let payment = self
            .toss
            .payment(payment_key)
            .await
            .map_err(Error::TossUnavailable)?;
        let released = outcomes
            .iter()
            .any(|o| matches!(o, RefundOutcome::Refused { .. }));
        if released {
            // A cancel made in Toss's console may not have fit while one of our refunds held
            // its amount; Toss refused ours (the console took the money back first), so the
            // console's cancel fits now.
            let again = self.converge_refunds(&payment, now).await?;
            outcomes.extend(again.recorded.into_iter().map(settled));
        }
        outcomes.extend(converged.settled.into_iter().map(settled));
        Ok((outcomes, payment))
    }

    /// Sends again each open refund of the payment's attempt nobody is sending now.
    async fn resend_open(
        &self,
        payment: &Payment,
        now: DateTime<Utc>,
    ) -> Result<Vec<RefundOutcome>, Error> {
        let Ok(order_id) = OrderId::parse(payment.order_id.clone()) else {
            return Ok(Vec::new());
        };
        let Some(attempt) = self.paid_attempt(&order_id).await? else {
            return Ok(Vec::new());
        };
        let open: Vec<Refund> = self
            .store
            .refunds_of(
                attempt.subscription_id(),
                attempt.period(),
                attempt.attempt(),
            )
            .await?
            .into_iter()
            // A refund claimed moments ago is still being sent by whoever claimed it.
            .filter(|r| {
                r.status == RefundStatus::Unknown
                    || (r.status.is_open() && r.updated_at + self.settings.lease <= now)
            })
            .collect();
        let mut outcomes = Vec::new();
        // Toss's balance as each one is sent: a refund done before the next lowers it.
        let mut balance = payment.balance_amount;
        let mut open = open.into_iter();
        while let Some(refund) = open.next() {
            warn!(refund = %refund.key(), "an open refund Toss does not show: sent again under its own key");
            let outcome = self.send_refund(refund, balance, now).await?;
            let RefundOutcome::Refunded { refund, .. } = &outcome else {
                // The balance after this one is not known: the others wait (still open) for
                // the next look-up rather than be sent with a balance Toss would refuse.
                outcomes.push(outcome);
                outcomes.extend(open.map(|refund| RefundOutcome::Unknown { refund }));
                break;
            };
            balance = balance.map(|b| Krw::new(b.won().saturating_sub(refund.amount.won())));
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// Converges the ledger to Toss's record of one payment (a look-up's or a webhook's
    /// re-fetched payment): a cancel naming one of our open refunds settles it; a cancel no
    /// entry names (made in Toss's console) is recorded as a refund, with the same policy as
    /// ours. Idempotent (each cancel is recorded once, by its transactionKey) and it never
    /// calls Toss's cancel. A payment that is not one of our paid attempts is left alone.
    #[tracing::instrument(skip_all, fields(payment_key = %payment.payment_key))]
    pub async fn converge_refunds(
        &self,
        payment: &Payment,
        now: DateTime<Utc>,
    ) -> Result<Converged, Error> {
        let mut report = Converged::default();
        let Ok(order_id) = OrderId::parse(payment.order_id.clone()) else {
            return Ok(report);
        };
        let Some(attempt) = self.paid_attempt(&order_id).await? else {
            return Ok(report);
        };
        if attempt.payment_key() != Some(&payment.payment_key) {
            warn!("a payment under our order id with another paymentKey; left for an operator");
            return Ok(report);
        }
        let mut canceled_so_far = Krw::new(0);
        for cancel in &payment.cancels {
            if cancel.cancel_status.as_deref().is_some_and(|s| s != "DONE") {
                continue;
            }
            canceled_so_far = canceled_so_far
                .checked_add(cancel.cancel_amount)
                .unwrap_or(canceled_so_far);
            let Some(tx) = cancel.transaction_key.clone() else {
                continue;
            };
            let canceled_at = cancel.canceled_at.map_or(now, |t| t.with_timezone(&Utc));
            let whole = canceled_so_far >= payment.total_amount;
            match self
                .converge_one(&attempt, cancel, &tx, canceled_at, whole, now)
                .await?
            {
                Some(Found::Settled(r)) => report.settled.push(r),
                Some(Found::Recorded(r)) => report.recorded.push(r),
                Some(Found::Unrecorded) => report.unrecorded.push(tx),
                None => {}
            }
        }
        Ok(report)
    }

    async fn converge_one(
        &self,
        attempt: &ChargeAttempt,
        cancel: &toss::PaymentCancel,
        tx: &str,
        canceled_at: DateTime<Utc>,
        whole: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<Found>, Error> {
        for _ in 0..WRITE_RETRIES {
            let refunds = self
                .store
                .refunds_of(
                    attempt.subscription_id(),
                    attempt.period(),
                    attempt.attempt(),
                )
                .await?;
            if refunds
                .iter()
                .any(|r| r.transaction_key.as_deref() == Some(tx))
            {
                return Ok(None);
            }
            let reason = cancel.cancel_reason.as_deref().unwrap_or_default();
            if let Some(ours) = refunds
                .iter()
                .find(|r| r.status.is_open() && r.is_named_in(reason))
            {
                if ours.amount != cancel.cancel_amount {
                    error!(refund = %ours.key(), ours = ours.amount.won(), toss = cancel.cancel_amount.won(), "Toss cancelled another amount than this refund asked; settled as Toss's cancel, an operator must look");
                }
                let mut ours = ours.clone();
                ours.mark_done(tx.to_owned(), canceled_at, now);
                return match self.settle_done(&mut ours, now).await? {
                    Some(_) => Ok(Some(Found::Settled(ours))),
                    None => continue,
                };
            }
            // A cancel no entry names: made in Toss's console.
            let sub = self.subscription_of(attempt.subscription_id()).await?;
            let mut found = self
                .next_refund(
                    attempt,
                    cancel.cancel_amount,
                    reason,
                    RefundBy::TossConsole,
                    now,
                )
                .await?;
            let rule = whole && is_current_period(&sub, attempt);
            found.ends_subscription = rule;
            found.takes_back_credits = rule;
            found.mark_done(tx.to_owned(), canceled_at, now);
            let mut sub = sub;
            let (ended, taken) = self.apply_policy(&mut sub, &found, now);
            let changed = (ended || taken > 0).then_some(&mut sub);
            match self
                .store
                .record_found_refund(&found, attempt.amount(), changed)
                .await?
            {
                RefundWrite::Written => {
                    info!(refund = %found.key(), amount = found.amount.won(), "step 1: money back (made in Toss's console), recorded");
                    self.after_policy(&sub, ended, now).await?;
                    return Ok(Some(Found::Recorded(found)));
                }
                RefundWrite::AlreadyRecorded => return Ok(None),
                RefundWrite::OverBalance => {
                    error!(
                        transaction_key = tx,
                        "a cancel at Toss exceeds what the ledger holds refundable; an operator must look"
                    );
                    return Ok(Some(Found::Unrecorded));
                }
                _ => continue,
            }
        }
        Ok(Some(Found::Unrecorded))
    }

    /// Sends a claimed refund's cancel and settles what Toss said.
    pub(crate) async fn send_refund(
        &self,
        mut refund: Refund,
        balance_before: Option<Krw>,
        now: DateTime<Utc>,
    ) -> Result<RefundOutcome, Error> {
        failpoint!("before_refund_cancel");
        let answer = self
            .toss
            .cancel_payment_from(
                &refund.payment_key,
                &refund.cancel_reason(),
                Some(refund.amount),
                balance_before,
                &refund.idempotency_key(),
            )
            .await;
        failpoint!("after_refund_answer");
        let mut verdict = read_cancel(&answer, &refund);
        if verdict == Verdict::Unknown {
            warn!(code = ?answer.as_ref().err().and_then(|e| e.code()), "refund outcome unknown; looking the payment up");
            if let Ok(found) = self.toss.payment(&refund.payment_key).await {
                let nothing_left = found.balance_amount.is_some_and(|b| b.won() == 0);
                verdict = read_cancel(&Ok(found), &refund);
                if verdict == Verdict::Unknown && nothing_left {
                    // Fully cancelled and none of its cancels is ours: the record is final,
                    // so this refund can never happen (another took the money back first).
                    verdict = Verdict::Refused("ALREADY_CANCELED_PAYMENT".into());
                }
            }
        }
        match verdict {
            Verdict::Done { tx, at } => {
                refund.mark_done(tx, at, now);
                match self.settle_done(&mut refund, now).await? {
                    Some((ended, credits_taken)) => Ok(RefundOutcome::Refunded {
                        refund,
                        ended,
                        credits_taken,
                    }),
                    None => self.as_settled(refund).await,
                }
            }
            Verdict::Refused(code) => {
                refund.mark_refused(&code, now);
                warn!(refund = %refund.key(), code, "Toss refused the refund; its amount is free again");
                if self.settle_refused(&refund, now).await? {
                    Ok(RefundOutcome::Refused { refund, code })
                } else {
                    self.as_settled(refund).await
                }
            }
            Verdict::Unknown => {
                refund.mark_unknown(now);
                warn!(refund = %refund.key(), "refund left open: Toss's record will settle it");
                match self.store.settle_refund(&refund, None).await? {
                    RefundWrite::Written => Ok(RefundOutcome::Unknown { refund }),
                    _ => self.as_settled(refund).await,
                }
            }
        }
    }

    /// Records a refund Toss refused: its amount is free again and, for a withdrawal, the
    /// subscription is as it was before (its lock lifted; nothing was ended or taken), in one
    /// write. False when someone else settled it meanwhile.
    async fn settle_refused(&self, refund: &Refund, now: DateTime<Utc>) -> Result<bool, Error> {
        for _ in 0..WRITE_RETRIES {
            let mut sub = self.subscription_of(&refund.subscription_id).await?;
            let unlocked = sub.end_withdrawal(&refund.key(), now);
            match self
                .store
                .settle_refund(refund, unlocked.then_some(&mut sub))
                .await?
            {
                RefundWrite::Written => {
                    if unlocked {
                        info!(refund = %refund.key(), "the withdrawal was refused by Toss: the subscription goes on as it was");
                    }
                    return Ok(true);
                }
                RefundWrite::NotOpen | RefundWrite::AlreadyRecorded => return Ok(false),
                _ => continue,
            }
        }
        Err(Invariant::KeptConflicting(Contended::RefusedRefund).into())
    }

    /// Records a refund Toss did, with the policy steps it carries, in one write. `None` when
    /// someone else settled it meanwhile.
    async fn settle_done(
        &self,
        refund: &mut Refund,
        now: DateTime<Utc>,
    ) -> Result<Option<(bool, u64)>, Error> {
        for _ in 0..WRITE_RETRIES {
            let mut sub = self.subscription_of(&refund.subscription_id).await?;
            let unlocked = sub.end_withdrawal(&refund.key(), now);
            let (ended, taken) = self.apply_policy(&mut sub, refund, now);
            let changed = (unlocked || ended || taken > 0).then_some(&mut sub);
            match self.store.settle_refund(refund, changed).await? {
                RefundWrite::Written => {
                    info!(refund = %refund.key(), amount = refund.amount.won(), transaction_key = ?refund.transaction_key, "step 1: money back");
                    self.after_policy(&sub, ended, now).await?;
                    return Ok(Some((ended, taken)));
                }
                RefundWrite::NotOpen | RefundWrite::AlreadyRecorded => return Ok(None),
                _ => continue,
            }
        }
        Err(Invariant::KeptConflicting(Contended::DoneRefund).into())
    }

    /// Steps 2 and 3 on the subscription value (written with the refund by the caller):
    /// returns whether it was ended and how many credits were taken back.
    fn apply_policy(
        &self,
        sub: &mut Subscription,
        refund: &Refund,
        now: DateTime<Utc>,
    ) -> (bool, u64) {
        if sub.status() == Status::Canceled {
            return (false, 0);
        }
        if (refund.takes_back_credits || refund.ends_subscription)
            && refund.period + 1 != sub.next_period()
        {
            // Decided when the refunded period was the current one; a renewal was paid since
            // (it was in flight when the refund was claimed). Ending now would take the new
            // period's service and credits without its money back: left for an operator.
            error!(refund = %refund.key(), refunded_period = refund.period, next_period = sub.next_period(), "a refund of a period that is no longer current: the subscription was not ended and no credits were taken");
            return (false, 0);
        }
        let mut taken = 0;
        if refund.takes_back_credits {
            let grant = u64::from(self.settings.plan.credits());
            taken = sub.revoke_credits(grant, Some(refund.period), refund.key(), now);
            info!(refund = %refund.key(), taken, "step 2: the period's unused credits taken back");
        }
        if refund.ends_subscription {
            let reason = match refund.by {
                RefundBy::Withdrawal => CancelReason::Withdrawn,
                _ => CancelReason::Refunded,
            };
            sub.cancel(reason, now);
            info!(refund = %refund.key(), subscription = %sub.id(), "step 3: the subscription ended now");
            return (true, taken);
        }
        (false, taken)
    }

    /// After the write: an ended subscription's card is deleted at Toss.
    async fn after_policy(
        &self,
        sub: &Subscription,
        ended: bool,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if ended && sub.billing_key().is_some() {
            self.delete_billing_key_of(sub.id(), now).await?;
        }
        Ok(())
    }

    /// The subscription a refund or a paid attempt belongs to (it is never deleted).
    async fn subscription_of(&self, id: &domain::SubscriptionId) -> Result<Subscription, Error> {
        self.store
            .subscription(id)
            .await?
            .ok_or_else(|| Invariant::SubscriptionMissing(id.clone()).into())
    }

    /// The refund as someone else settled it.
    async fn as_settled(&self, refund: Refund) -> Result<RefundOutcome, Error> {
        let stored = self
            .store
            .refunds_of(&refund.subscription_id, refund.period, refund.attempt)
            .await?
            .into_iter()
            .find(|r| r.number == refund.number)
            .unwrap_or(refund);
        Ok(match &stored.status {
            RefundStatus::Done => RefundOutcome::Refunded {
                refund: stored,
                ended: false,
                credits_taken: 0,
            },
            RefundStatus::Refused { code } => RefundOutcome::Refused {
                code: code.clone(),
                refund: stored,
            },
            RefundStatus::Claimed | RefundStatus::Unknown => {
                RefundOutcome::Unknown { refund: stored }
            }
        })
    }

    /// The paid (`DONE`) attempt an order id of ours names.
    pub(crate) async fn paid_attempt(
        &self,
        order_id: &OrderId,
    ) -> Result<Option<ChargeAttempt>, Error> {
        let Some((id, period, number)) = our_attempt(order_id.as_str()) else {
            return Ok(None);
        };
        Ok(self
            .store
            .attempt(&id, period, number)
            .await?
            .filter(|a| a.status() == AttemptStatus::Done))
    }

    /// A new refund of `attempt`, numbered after every refund it has.
    pub(crate) async fn next_refund(
        &self,
        attempt: &ChargeAttempt,
        amount: Krw,
        reason: &str,
        by: RefundBy,
        now: DateTime<Utc>,
    ) -> Result<Refund, Error> {
        let number = self
            .store
            .refunds_of(
                attempt.subscription_id(),
                attempt.period(),
                attempt.attempt(),
            )
            .await?
            .iter()
            .map(|r| r.number)
            .max()
            .unwrap_or(0)
            + 1;
        let payment_key = attempt
            .payment_key()
            .cloned()
            .ok_or_else(|| Invariant::PaidWithoutPaymentKey(attempt.order_id().clone()))?;
        Ok(Refund::claim(
            attempt.subscription_id().clone(),
            attempt.period(),
            attempt.attempt(),
            payment_key,
            number,
            amount,
            reason,
            by,
            now,
        ))
    }

    async fn refundable_now(&self, order_id: &OrderId, payment: &Payment) -> Result<Krw, Error> {
        Ok(self
            .paid_attempt(order_id)
            .await?
            .map_or(Krw::new(0), |a| left_to_refund(&a, payment)))
    }
}

/// A refund found done in Toss's record, as an outcome.
fn settled(refund: Refund) -> RefundOutcome {
    RefundOutcome::Refunded {
        refund,
        ended: false,
        credits_taken: 0,
    }
}

enum Found {
    Settled(Refund),
    Recorded(Refund),
    Unrecorded,
}

/// What is left: the ledger's own balance, never more than Toss's.
fn left_to_refund(attempt: &ChargeAttempt, payment: &Payment) -> Krw {
    let ours = attempt
        .amount()
        .won()
        .saturating_sub(attempt.refunded().won());
    let toss = payment.balance_amount.map_or(ours, Krw::won);
    Krw::new(ours.min(toss))
}

/// Whether `attempt` paid for the subscription's current period.
pub(crate) fn is_current_period(sub: &Subscription, attempt: &ChargeAttempt) -> bool {
    sub.status() != Status::Canceled && attempt.period() + 1 == sub.next_period()
}

/// Codes that refuse our credentials, not the refund.
fn is_credentials(code: &str) -> bool {
    matches!(
        code,
        "UNAUTHORIZED_KEY"
            | "INVALID_API_KEY"
            | "INCORRECT_BASIC_AUTH_FORMAT"
            | "FORBIDDEN_REQUEST"
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Done { tx: String, at: DateTime<Utc> },
    Refused(String),
    Unknown,
}

/// What Toss's answer to a cancel (or a look-up after it) means for one refund: done when the
/// payment's `cancels[]` holds a cancel naming it; refused on a definite error; unknown on
/// anything else (a lost answer, a 5xx, a duplicate request still being processed).
fn read_cancel(answer: &Result<Payment, toss::Error>, refund: &Refund) -> Verdict {
    match answer {
        Ok(payment) => payment
            .cancels
            .iter()
            .filter(|c| c.cancel_status.as_deref().is_none_or(|s| s == "DONE"))
            .find(|c| {
                c.cancel_reason
                    .as_deref()
                    .is_some_and(|r| refund.is_named_in(r))
            })
            .and_then(|c| {
                Some(Verdict::Done {
                    tx: c.transaction_key.clone()?,
                    at: c
                        .canceled_at
                        .map_or(refund.updated_at, |t| t.with_timezone(&Utc)),
                })
            })
            .unwrap_or(Verdict::Unknown),
        Err(e) => match (e, e.class()) {
            (_, ErrorClass::OutcomeUnknown | ErrorClass::AlreadyProcessed) => Verdict::Unknown,
            // Our own key refused (revoked, wrong): no word about this refund; it stays open.
            (toss::Error::Api { status: 401, .. }, _) => Verdict::Unknown,
            (toss::Error::Api { code, .. }, _) if is_credentials(code.as_str()) => Verdict::Unknown,
            (toss::Error::Api { code, .. }, _) => Verdict::Refused(code.as_str().to_owned()),
            _ => Verdict::Unknown,
        },
    }
}

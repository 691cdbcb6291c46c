//! Toss's webhooks (product §11). Payment and billing webhooks are unsigned, so the body is
//! trusted for nothing but which payment or key to look at:
//!
//! - `PAYMENT_STATUS_CHANGED`: the payment is fetched from Toss by its `paymentKey` and the
//!   ledger converged to Toss's record ([`Billing::converge_payment`]);
//! - `BILLING_DELETED`: if the key is a subscription's current one, the card is gone
//!   (`Subscription::card_deleted_at_toss`); anyone able to send this needs the secret key
//!   itself, and the worst it can do is make a customer register a card again.
//!
//! Each delivery is processed once: claimed in the table under its transmission id before any
//! work, marked done after. A delivery that fails is released, so that Toss's retry (anything
//! but `200` is retried) is processed from the start: converging is idempotent, so processing
//! twice is harmless, while remembering a failure as done would lose the event. A worker that
//! dies keeps the claim only until its lease (the function's timeout) runs out.

use chrono::{DateTime, Duration, Utc};
use domain::{AttemptStatus, BillingKey, OrderId, PaymentKey, SubscriptionId};
use store::WebhookClaim;
use toss::{ErrorClass, PaymentStatus};
use tracing::{error, info, warn};

use crate::engine::Settled;
use crate::error::toss_failure;
use crate::settlement::{Repair, our_attempt};
use crate::{Billing, Error};

/// How long a claimed delivery is ours: billing-api's timeout, so a claim never outlives
/// the worker that made it by more.
const WEBHOOK_LEASE_SECONDS: i64 = 120;

/// Attempts at saving a subscription that changes under us.
const SAVE_RETRIES: usize = 5;

/// `tosspayments-webhook-transmission-id`: 1 to 128 characters of `[A-Za-z0-9._:-]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransmissionId(String);

impl TransmissionId {
    pub fn parse(value: &str) -> Option<Self> {
        let ok = (1..=128).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        ok.then(|| Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A webhook as far as it is believed: which payment or key it names, nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    PaymentStatusChanged {
        payment_key: PaymentKey,
    },
    BillingDeleted {
        billing_key: BillingKey,
    },
    /// A type this service does not act on: acknowledged, nothing done.
    Other,
}

impl WebhookEvent {
    /// The event type, for logs and metrics (never the payload).
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::PaymentStatusChanged { .. } => "PAYMENT_STATUS_CHANGED",
            Self::BillingDeleted { .. } => "BILLING_DELETED",
            Self::Other => "OTHER",
        }
    }
}

/// What handling one delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// Processed now.
    Processed(Convergence),
    /// Processed before under the same transmission id: nothing done again.
    Duplicate,
    /// Another worker is processing the same delivery right now; the caller answers so that
    /// Toss sends it again (by then it is done, or released after a failure).
    InProgress,
}

/// What the ledger did to agree with Toss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Convergence {
    /// An attempt we held `PENDING`/`UNKNOWN` that Toss has `DONE` was settled from Toss's
    /// record.
    Settled { order_id: OrderId },
    /// The ledger already says what Toss says.
    InStep,
    /// A worker holds the attempt's lease right now and settles it itself.
    BeingSettled,
    /// Toss does not know the payment, or it is not one of our attempts: nothing changed.
    NotOurs,
    /// Toss's record and the ledger disagree in a way no rule settles here (logged; the daily
    /// settlement check reports it): nothing changed.
    Disagrees,
    /// Toss has the payment canceled in full or in part: cancels the ledger lacked were
    /// recorded (a console refund), or our own open refunds settled, with the refund policy.
    RefundsRecorded { recorded: usize, settled: usize },
    /// The subscription's current card was deleted at Toss and is marked gone.
    CardGone { subscription_id: SubscriptionId },
    /// The deleted key is no subscription's current key: nothing changed.
    NotACurrentKey,
    /// An event type this service does not act on.
    Ignored,
}

impl Convergence {
    /// The outcome's name, for the metric and the delivery's record.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Settled { .. } => "settled",
            Self::InStep => "in_step",
            Self::BeingSettled => "being_settled",
            Self::NotOurs => "not_ours",
            Self::Disagrees => "disagrees",
            Self::RefundsRecorded { .. } => "refunds_recorded",
            Self::CardGone { .. } => "card_gone",
            Self::NotACurrentKey => "not_a_current_key",
            Self::Ignored => "ignored",
        }
    }
}

impl Billing {
    /// Handles one webhook delivery once (see the module's doc). An `Err` means nothing was
    /// decided and the delivery was released: answer so that Toss retries it.
    #[tracing::instrument(skip_all, fields(event_type = event.event_type()))]
    pub async fn handle_webhook(
        &self,
        id: &TransmissionId,
        event: &WebhookEvent,
        now: DateTime<Utc>,
    ) -> Result<WebhookOutcome, Error> {
        if *event == WebhookEvent::Other {
            return Ok(WebhookOutcome::Processed(Convergence::Ignored));
        }
        let owner = format!("webhook-{}", ulid::Ulid::new());
        let event_type = event.event_type();
        let lease = Duration::seconds(WEBHOOK_LEASE_SECONDS);
        match self
            .store
            .claim_webhook(id.as_str(), event_type, &owner, now, lease)
            .await?
        {
            WebhookClaim::Claimed => {}
            WebhookClaim::Done { .. } => return Ok(WebhookOutcome::Duplicate),
            WebhookClaim::InProgress => return Ok(WebhookOutcome::InProgress),
        }
        let result = match event {
            WebhookEvent::PaymentStatusChanged { payment_key } => {
                self.payment_status_changed(payment_key, &owner, now).await
            }
            WebhookEvent::BillingDeleted { billing_key } => {
                self.billing_deleted(billing_key, now).await
            }
            WebhookEvent::Other => Ok(Convergence::Ignored),
        };
        match result {
            Ok(converged) => {
                if let Err(e) = self
                    .store
                    .finish_webhook(id.as_str(), event_type, &owner, converged.as_str(), now)
                    .await
                {
                    // The work is done; a retry after the lease would only converge again.
                    warn!(error.message = %e, "could not mark a processed webhook done");
                }
                Ok(WebhookOutcome::Processed(converged))
            }
            Err(e) => {
                if let Err(release) = self.store.release_webhook(id.as_str(), &owner).await {
                    warn!(error.message = %release, "could not release a failed webhook; its lease frees it");
                }
                Err(e)
            }
        }
    }

    /// `PAYMENT_STATUS_CHANGED`: one look-up of the payment at Toss, then the ledger converges
    /// to that record. What the body said about status or amount is never read.
    async fn payment_status_changed(
        &self,
        payment_key: &PaymentKey,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Convergence, Error> {
        let payment = match self.toss.payment(payment_key).await {
            Ok(payment) => payment,
            Err(e) if e.class() == ErrorClass::NotFound => {
                info!("a webhook named a payment Toss does not have; nothing changed");
                return Ok(Convergence::NotOurs);
            }
            Err(e) => return Err(toss_failure(e)),
        };
        if payment.payment_key != *payment_key {
            error!(order_id = %payment.order_id, "Toss answered a look-up with another payment; nothing changed");
            return Ok(Convergence::Disagrees);
        }
        self.converge_payment(&payment, owner, now).await
    }

    /// Converges the ledger to Toss's record of one payment; the one place a webhook's
    /// payment changes anything. Only an order id of our own attempts is looked at.
    pub(crate) async fn converge_payment(
        &self,
        payment: &toss::Payment,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Convergence, Error> {
        let Some((id, period, attempt)) = our_attempt(&payment.order_id) else {
            info!(order_id = %payment.order_id, "a webhook's payment is not one of our attempts");
            return Ok(Convergence::NotOurs);
        };
        match payment.status {
            PaymentStatus::Done => self.converge_done(&id, period, attempt, owner, now).await,
            PaymentStatus::Canceled | PaymentStatus::PartialCanceled => {
                // A refund made in Toss's console, or our own whose answer was lost: the refund
                // use case records each cancel once (by transactionKey), never sends one.
                // A cancel that does not fit while one of our open refunds holds its amount is
                // left to the sweep, which settles ours (a refusal frees the amount) and then
                // records it: the webhook stays quick.
                let refunds = self.converge_refunds(payment, now).await?;
                if !refunds.unrecorded.is_empty() {
                    warn!(
                        order_id = %payment.order_id,
                        unrecorded = refunds.unrecorded.len(),
                        "Toss has cancels of this payment the ledger cannot record; an operator decides"
                    );
                    return Ok(Convergence::Disagrees);
                }
                Ok(
                    if refunds.recorded.is_empty() && refunds.settled.is_empty() {
                        Convergence::InStep
                    } else {
                        Convergence::RefundsRecorded {
                            recorded: refunds.recorded.len(),
                            settled: refunds.settled.len(),
                        }
                    },
                )
            }
            // Not a state a billing charge of ours is left in after Toss answered; the
            // engine's own look-ups settle such attempts.
            _ => Ok(Convergence::InStep),
        }
    }

    /// Toss has the attempt `DONE`: an open entry is settled now, exactly as the settlement
    /// check repairs one; anything else is left as it is.
    async fn converge_done(
        &self,
        id: &SubscriptionId,
        period: u32,
        attempt: u32,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Convergence, Error> {
        let Some(entry) = self.store.attempt(id, period, attempt).await? else {
            error!(subscription = %id, period, attempt, "Toss has DONE an order of ours the ledger does not know");
            return Ok(Convergence::Disagrees);
        };
        let order_id = entry.order_id().clone();
        match entry.status() {
            AttemptStatus::Done => Ok(Convergence::InStep),
            AttemptStatus::Pending | AttemptStatus::Unknown => {
                match self.take_over_and_settle(entry, owner, now).await? {
                    Repair::Settled(Settled::Charged { .. }) => {
                        info!(order_id = %order_id, "webhook settled an open attempt Toss has DONE");
                        Ok(Convergence::Settled { order_id })
                    }
                    Repair::Leased | Repair::TakenMeanwhile => Ok(Convergence::BeingSettled),
                    Repair::NoSubscription => Ok(Convergence::Disagrees),
                    Repair::Settled(other) => {
                        error!(order_id = %order_id, ?other, "Toss has it DONE; settling it gave another outcome");
                        Ok(Convergence::Disagrees)
                    }
                }
            }
            other => {
                error!(order_id = %order_id, ledger = other.as_str(), "Toss has it DONE; the ledger has it final otherwise");
                Ok(Convergence::Disagrees)
            }
        }
    }

    /// `BILLING_DELETED`: the subscription whose current key this is (found by the key's
    /// fingerprint, then compared key to key) loses its card. Anything else changes nothing.
    async fn billing_deleted(
        &self,
        billing_key: &BillingKey,
        now: DateTime<Utc>,
    ) -> Result<Convergence, Error> {
        let candidates = self
            .store
            .subscriptions_with_card(&billing_key.fingerprint())
            .await?;
        for id in candidates {
            for _ in 0..SAVE_RETRIES {
                let Some(mut sub) = self.store.subscription(&id).await? else {
                    break;
                };
                if !sub.card_deleted_at_toss(billing_key, now) {
                    break;
                }
                match self.store.save_subscription(&mut sub).await {
                    Ok(()) => {
                        warn!(subscription = %id, status = sub.status().as_str(), "billing key deleted at Toss; the card is gone");
                        return Ok(Convergence::CardGone {
                            subscription_id: id,
                        });
                    }
                    Err(e) if e.is_conflict() => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            // Still this subscription's key after every retry: not handled, so the delivery
            // is released and Toss's retry runs it again (never marked done unrecorded).
            if self
                .store
                .subscription(&id)
                .await?
                .is_some_and(|s| s.billing_key() == Some(billing_key))
            {
                return Err(Error::Store(store::Error::ConditionFailed));
            }
        }
        info!("a deleted billing key is no subscription's current key; nothing changed");
        Ok(Convergence::NotACurrentKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmission_ids_are_short_plain_tokens() {
        assert!(TransmissionId::parse("01JDQ4ZC1V3M5N7P9R2T4W6Y8A").is_some());
        assert!(TransmissionId::parse("wh_2024-12-01:0001.a").is_some());
        for bad in ["", "has space", "slash/", "ünï", &"x".repeat(129)] {
            assert!(TransmissionId::parse(bad).is_none(), "{bad:?}");
        }
    }
}

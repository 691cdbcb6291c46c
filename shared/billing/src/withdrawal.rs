//! Statutory withdrawal (청약철회, product §11): the latest paid period is refunded in full
//! when asked within `REFUND_WITHDRAWAL_DAYS` of its charge and none of its credits were used.
//!
//! The refund is claimed in one transaction with a lock on the subscription (`withdrawal`,
//! the refund's key), written before Toss is called and conditioned on the subscription not
//! having changed since it was read (a consumption bumps its version). While the lock is set
//! no credit can be spent and no renewal claimed (the store's conditions read it), so a
//! credit spent concurrently either lands first (and the withdrawal is refused) or is refused:
//! never both a refund and a used credit. The subscription ends and the period's credits are
//! taken back only once Toss says the money is back (`settle_done`, in the write that records
//! it); if Toss refuses, the lock is lifted in the write that records the refusal and the
//! customer keeps the service they paid for. An unanswered refund keeps the lock until Toss's
//! record settles it (a look-up, the sweep, a webhook).

use chrono::{DateTime, Duration, Utc};
use domain::{AttemptStatus, CancelReason, ChargeAttempt, Krw, RefundBy, Status, Subscription};
use store::RefundWrite;
use tracing::{info, warn};

use crate::refund::{RefundOutcome, is_current_period};
use crate::{Billing, Error};

/// What a withdrawal would refund, and until when it may be asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawable {
    pub amount: Krw,
    pub until: DateTime<Utc>,
}

/// The rule: `paid` (the latest paid attempt) is withdrawable iff it paid for the current
/// period of an active subscription, nothing of it was refunded, `now` is before its approval
/// plus `days`, and none of the period's credits were used.
pub fn withdrawable(
    sub: &Subscription,
    paid: &ChargeAttempt,
    days: u32,
    now: DateTime<Utc>,
) -> Option<Withdrawable> {
    if sub.status() != Status::Active
        || sub.withdrawal().is_some()
        || paid.status() != AttemptStatus::Done
        || !is_current_period(sub, paid)
        || paid.refunded().won() > 0
        || sub.credits_used_in_period() > 0
    {
        return None;
    }
    let until = paid.approved_at()? + Duration::days(i64::from(days));
    (now < until).then_some(Withdrawable {
        amount: paid.amount(),
        until,
    })
}

/// The reason sent to Toss and kept in the ledger.
const WITHDRAWAL_REASON: &str = "청약철회 (statutory withdrawal)";

const WITHDRAW_RETRIES: usize = 8;

/// What a withdrawal came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WithdrawOutcome {
    /// Withdrawn (now, or by an earlier request): the money is back and the subscription
    /// ended; the subscription as it is now, and the refund's outcome when this request made
    /// it.
    Withdrawn {
        subscription: Box<Subscription>,
        refund: Option<Box<RefundOutcome>>,
    },
    /// Claimed and sent, but Toss's answer is not known yet (now, or for an earlier request):
    /// the subscription is locked until Toss's record settles the refund.
    Pending {
        subscription: Box<Subscription>,
    },
    /// Toss refused the refund (its code): nothing changed, the subscription goes on.
    Refused {
        code: String,
    },
    NotWithdrawable,
    NoActiveSubscription,
}

impl Billing {
    /// The latest paid period's withdrawal terms, if it is withdrawable now (one read of the
    /// ledger, skipped when the subscription alone says no).
    pub async fn withdrawable(
        &self,
        sub: &Subscription,
        now: DateTime<Utc>,
    ) -> Result<Option<Withdrawable>, Error> {
        Ok(self
            .latest_paid(sub)
            .await?
            .and_then(|paid| withdrawable(sub, &paid, self.settings.withdrawal_days, now)))
    }

    /// A withdrawal asked again while its refund waits for Toss: Toss's record is read and
    /// the refund sent again under its own key if nobody is sending it (a request that died
    /// after the claim, an answer that was lost), so the lock never waits for the next sweep
    /// when the customer asks. Answers as the refund now stands.
    async fn pending_withdrawal(
        &self,
        sub: Subscription,
        now: DateTime<Utc>,
    ) -> Result<WithdrawOutcome, Error> {
        let outcomes = match self.paid_for_current_period(&sub).await? {
            Some(paid) => match self.settle_refunds(paid.order_id(), now).await {
                Ok(outcomes) => outcomes,
                Err(e) => {
                    warn!(error = %e, "a pending withdrawal could not be settled now; the sweep will");
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let lock = sub.withdrawal().map(str::to_owned);
        let subscription = Box::new(self.store.subscription(sub.id()).await?.unwrap_or(sub));
        let ours = |o: &&RefundOutcome| match o {
            RefundOutcome::Refunded { refund, .. } | RefundOutcome::Refused { refund, .. } => {
                Some(refund.key()) == lock
            }
            _ => false,
        };
        Ok(match outcomes.iter().find(ours) {
            // Ended with the money back (ours, or a console refund recorded once ours was
            // refused): that is what the customer asked for.
            _ if subscription.status() == Status::Canceled => WithdrawOutcome::Withdrawn {
                subscription,
                refund: None,
            },
            Some(RefundOutcome::Refused { code, .. }) => {
                WithdrawOutcome::Refused { code: code.clone() }
            }
            _ => WithdrawOutcome::Pending { subscription },
        })
    }

    async fn latest_paid(&self, sub: &Subscription) -> Result<Option<ChargeAttempt>, Error> {
        if sub.status() != Status::Active || sub.credits_used_in_period() > 0 {
            return Ok(None);
        }
        self.paid_for_current_period(sub).await
    }

    /// The `DONE` attempt that paid for the subscription's current period, if any.
    async fn paid_for_current_period(
        &self,
        sub: &Subscription,
    ) -> Result<Option<ChargeAttempt>, Error> {
        let Some(period) = sub.next_period().checked_sub(1) else {
            return Ok(None);
        };
        Ok(self
            .store
            .attempts_for_period(sub.id(), period)
            .await?
            .into_iter()
            .find(|a| a.status() == AttemptStatus::Done))
    }

    /// Refunds the latest paid period in full, ends the subscription now and takes back its
    /// credits, if it is withdrawable (see the module's documentation).
    #[tracing::instrument(skip_all)]
    pub async fn withdraw(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<WithdrawOutcome, Error> {
        let mut checked_toss = false;
        for _ in 0..WITHDRAW_RETRIES {
            let Some(mut sub) = self.store.user_view(user_id).await?.subscription else {
                return Ok(WithdrawOutcome::NoActiveSubscription);
            };
            if sub.status() == Status::Canceled {
                // A replay of a withdrawal answers as the first one did; nothing is sent.
                // (Ended by a refund recorded while the withdrawal was being asked: the same.)
                return Ok(
                    if matches!(
                        sub.cancel_reason(),
                        Some(CancelReason::Withdrawn | CancelReason::Refunded)
                    ) {
                        WithdrawOutcome::Withdrawn {
                            subscription: Box::new(sub),
                            refund: None,
                        }
                    } else {
                        WithdrawOutcome::NoActiveSubscription
                    },
                );
            }
            if sub.withdrawal().is_some() {
                return self.pending_withdrawal(sub, now).await;
            }
            let Some(paid) = self.latest_paid(&sub).await? else {
                return Ok(WithdrawOutcome::NotWithdrawable);
            };
            let Some(terms) = withdrawable(&sub, &paid, self.settings.withdrawal_days, now) else {
                return Ok(WithdrawOutcome::NotWithdrawable);
            };
            let Some(payment_key) = paid.payment_key().cloned() else {
                return Ok(WithdrawOutcome::NotWithdrawable);
            };
            // Toss's record first (once): a refund made in its console is recorded, and then
            // the period is no longer withdrawable in full.
            let payment = self
                .toss
                .payment(&payment_key)
                .await
                .map_err(Error::TossUnavailable)?;
            if !checked_toss {
                checked_toss = true;
                if !self
                    .converge_refunds(&payment, now)
                    .await?
                    .recorded
                    .is_empty()
                {
                    continue;
                }
            }
            if payment.balance_amount.is_some_and(|b| b != terms.amount) {
                return Ok(WithdrawOutcome::NotWithdrawable);
            }
            let mut refund = self
                .next_refund(
                    &paid,
                    terms.amount,
                    WITHDRAWAL_REASON,
                    RefundBy::Withdrawal,
                    now,
                )
                .await?;
            // Steps 2 and 3, applied when Toss says the money is back.
            refund.ends_subscription = true;
            refund.takes_back_credits = true;
            sub.begin_withdrawal(&refund.key(), now);
            match self
                .store
                .claim_refund(&refund, paid.amount(), Some(&mut sub))
                .await?
            {
                RefundWrite::Written => {
                    info!(refund = %refund.key(), "withdrawal claimed: nothing can be spent or charged until Toss answers");
                    let outcome = self.send_refund(refund, Some(terms.amount), now).await?;
                    if matches!(outcome, RefundOutcome::Refused { .. }) {
                        // Refused because another cancel (in Toss's console) took the money
                        // first, say: that cancel fits the ledger now ours is released.
                        if let Err(e) = self.settle_refunds(paid.order_id(), now).await {
                            warn!(error = %e, "a refused withdrawal's payment could not be converged now; the settlement check will");
                        }
                    }
                    let subscription =
                        Box::new(self.store.subscription(sub.id()).await?.unwrap_or(sub));
                    return Ok(match outcome {
                        RefundOutcome::Refunded { .. } => WithdrawOutcome::Withdrawn {
                            subscription,
                            refund: Some(Box::new(outcome)),
                        },
                        // Ended all the same: a console refund of the period was recorded.
                        RefundOutcome::Refused { .. }
                            if subscription.status() == Status::Canceled =>
                        {
                            WithdrawOutcome::Withdrawn {
                                subscription,
                                refund: None,
                            }
                        }
                        RefundOutcome::Refused { code, .. } => WithdrawOutcome::Refused { code },
                        _ => WithdrawOutcome::Pending { subscription },
                    });
                }
                RefundWrite::OverBalance => return Ok(WithdrawOutcome::NotWithdrawable),
                // The subscription changed (a consumption, another withdrawal): read again.
                _ => continue,
            }
        }
        Ok(WithdrawOutcome::NotWithdrawable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{
        AttemptKind, BillingKey, ChargeAttemptRecord, CustomerKey, Lease, PaymentKey, Plan,
        SubscriptionId, SubscriptionRecord,
    };

    fn kst(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn paid_period() -> (Subscription, ChargeAttempt) {
        let at = kst("2026-12-01T10:00:00+09:00");
        let mut sub = Subscription::new(
            SubscriptionId::parse("01JDQ4ZC1V3M5N7P9R2T4W6Y8A").unwrap(),
            CustomerKey::parse("user_1").unwrap(),
            BillingKey::parse("bk_1").unwrap(),
            None,
            at,
        );
        sub.apply_success(0, at, &Plan::new(Krw::new(3900), "Pro", 30).unwrap());
        let mut paid = ChargeAttempt::claim(
            sub.id().clone(),
            sub.customer_key().clone(),
            0,
            0,
            Krw::new(3900),
            AttemptKind::First,
            Lease {
                owner: "t".into(),
                until: at,
            },
            at,
        );
        paid.mark_done(PaymentKey::parse("pk_1").unwrap(), at, at);
        (sub, paid)
    }

    #[test]
    fn the_latest_period_is_withdrawable_until_seven_days_after_its_charge_with_no_credit_used() {
        let (sub, paid) = paid_period();
        let until = kst("2026-12-08T10:00:00+09:00");
        assert_eq!(
            withdrawable(&sub, &paid, 7, kst("2026-12-08T09:59:59+09:00")),
            Some(Withdrawable {
                amount: Krw::new(3900),
                until
            })
        );
        assert_eq!(withdrawable(&sub, &paid, 7, until), None);
    }

    #[test]
    fn one_used_credit_a_refund_or_an_older_period_makes_it_not_withdrawable() {
        let now = kst("2026-12-02T10:00:00+09:00");
        let (sub, paid) = paid_period();
        let used = Subscription::restore(SubscriptionRecord {
            credits_used_in_period: 1,
            ..sub.to_record()
        });
        assert_eq!(withdrawable(&used, &paid, 7, now), None);
        let refunded = ChargeAttempt::restore(ChargeAttemptRecord {
            refunded: Krw::new(100),
            ..paid.to_record()
        });
        assert_eq!(withdrawable(&sub, &refunded, 7, now), None);
        let later = Subscription::restore(SubscriptionRecord {
            next_period: 2,
            ..sub.to_record()
        });
        assert_eq!(withdrawable(&later, &paid, 7, now), None);
    }
}

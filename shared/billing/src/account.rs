//! The signed-in user's own subscription (product §10.3): what it is, spending its credits,
//! cancelling and resuming it, and its payments. Every use case starts from the verified user
//! id; nothing here takes a customer key or subscription id from a request.

use chrono::{DateTime, Utc};
use domain::{ChargeAttempt, PaymentsCursor, Status, Subscription};
use sha2::{Digest, Sha256};
use store::{ConsumeWrite, Consumption, UserView};
use tracing::{info, warn};

use crate::{Billing, Error};

/// A consumption as the edge parsed it.
#[derive(Debug, Clone)]
pub struct ConsumeRequest {
    /// The `Idempotency-Key` header, already checked to be 1–255 visible ASCII characters.
    pub idempotency_key: String,
    pub amount: u64,
}

impl ConsumeRequest {
    /// What the table keeps instead of the key itself.
    pub fn key_hash(&self) -> String {
        hex::encode(Sha256::digest(self.idempotency_key.as_bytes()))
    }

    /// The request's identity for "same key, another body": the canonical amount.
    pub fn request_hash(&self) -> String {
        hex::encode(Sha256::digest(
            format!("consume:{}", self.amount).as_bytes(),
        ))
    }
}

/// What a consumption came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumeOutcome {
    /// `amount` credits were spent now; `credits` remain.
    Consumed { consumed: u64, credits: u64 },
    /// The key was used before with the same request: the first answer, as it was given.
    Replay { status: u16, body: String },
    /// The key was used before with another request.
    KeyReused,
    /// Not enough credits; nothing changed.
    Insufficient { credits: u64 },
    /// No subscription that may use credits (none, incomplete, canceled).
    NoActiveSubscription,
    /// The subscription was too busy to take the write; nothing changed; try again.
    Busy,
    /// A statutory withdrawal waits for Toss's answer: nothing can be spent meanwhile.
    WithdrawalPending,
}

/// What a cancel or resume request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// Done (or already so); the subscription as it is now.
    Changed(Box<Subscription>),
    /// No subscription that can be canceled.
    NoActiveSubscription,
    /// Not a subscription that can be resumed.
    NotResumable,
    /// A charge of the subscription is under way or its outcome unknown: it is settled first
    /// (by the sweep); try again shortly.
    PaymentPending,
}

/// One page of the user's payments, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentsPage {
    pub payments: Vec<ChargeAttempt>,
    /// Where the next page starts.
    pub next: Option<PaymentsCursor>,
}

/// Transaction conflicts on one subscription are retried this many times.
const CONSUME_RETRIES: u32 = 8;
/// Optimistic writes of a cancel or resume are retried this many times.
const CHANGE_RETRIES: u32 = 5;

impl Billing {
    /// The user's customer key and latest subscription (two reads).
    pub async fn account(&self, user_id: &str) -> Result<UserView, Error> {
        Ok(self.store.user_view(user_id).await?)
    }

    /// Spends credits of the user's subscription under an idempotency key: concurrent calls
    /// never overspend, and a key is spent at most once.
    pub async fn consume_credits(
        &self,
        user_id: &str,
        request: &ConsumeRequest,
        now: DateTime<Utc>,
    ) -> Result<ConsumeOutcome, Error> {
        let key_hash = request.key_hash();
        let request_hash = request.request_hash();
        let view = self.store.user_view(user_id).await?;
        let usable = view
            .subscription
            .filter(|s| matches!(s.status(), Status::Active | Status::PastDue));
        let Some(sub) = usable else {
            // A replay of a key spent before the subscription ended still gets its answer.
            return self
                .refuse(user_id, request, ConsumeOutcome::NoActiveSubscription, now)
                .await;
        };
        let consumption = Consumption {
            user_id,
            subscription_id: sub.id(),
            key_hash: &key_hash,
            request_hash: &request_hash,
            amount: request.amount,
            at: now,
        };
        let mut delay_ms = 5u64;
        for _ in 0..CONSUME_RETRIES {
            match self.store.consume_credits(&consumption).await? {
                ConsumeWrite::Consumed => {
                    let credits = self
                        .store
                        .subscription(sub.id())
                        .await?
                        .map_or(0, |s| s.credits());
                    info!(amount = request.amount, credits, "credits consumed");
                    crate::metrics::credits_consumed(request.amount);
                    return Ok(ConsumeOutcome::Consumed {
                        consumed: request.amount,
                        credits,
                    });
                }
                ConsumeWrite::KeyUsed => {
                    return self
                        .first_answer(user_id, &key_hash, &request_hash)
                        .await
                        .map(|first| first.unwrap_or(ConsumeOutcome::Busy));
                }
                ConsumeWrite::Refused => {
                    let refusal = match self.store.subscription(sub.id()).await? {
                        // Not remembered under the key: once Toss answers, the same request
                        // is either spent or refused for good.
                        Some(s) if s.withdrawal().is_some() => ConsumeOutcome::WithdrawalPending,
                        Some(s) if matches!(s.status(), Status::Active | Status::PastDue) => {
                            ConsumeOutcome::Insufficient {
                                credits: s.credits(),
                            }
                        }
                        _ => ConsumeOutcome::NoActiveSubscription,
                    };
                    return self.refuse(user_id, request, refusal, now).await;
                }
                ConsumeWrite::Conflict => {
                    let jitter = rand::random::<u64>() % delay_ms;
                    tokio::time::sleep(std::time::Duration::from_millis(delay_ms + jitter)).await;
                    delay_ms = (delay_ms * 2).min(200);
                }
            }
        }
        warn!("credits consumption kept conflicting; the caller is asked to retry");
        Ok(ConsumeOutcome::Busy)
    }

    /// A refusal, unless the key was used before (then its first answer). A lack of credits is
    /// remembered under the key, so that retrying the same request later gets it again instead
    /// of spending credits granted meanwhile (product §10.3: a key replays its first answer).
    async fn refuse(
        &self,
        user_id: &str,
        request: &ConsumeRequest,
        refusal: ConsumeOutcome,
        now: DateTime<Utc>,
    ) -> Result<ConsumeOutcome, Error> {
        let (key_hash, request_hash) = (request.key_hash(), request.request_hash());
        let code = match &refusal {
            ConsumeOutcome::Insufficient { credits } => ("INSUFFICIENT_CREDITS", Some(*credits)),
            // Nothing to spend from: not remembered (a user without a subscription writes
            // nothing, and the key serves once the user subscribes).
            _ => {
                return Ok(self
                    .first_answer(user_id, &key_hash, &request_hash)
                    .await?
                    .unwrap_or(refusal));
            }
        };
        for _ in 0..2 {
            if let Some(first) = self.first_answer(user_id, &key_hash, &request_hash).await? {
                return Ok(first);
            }
            if self
                .store
                .remember_refusal(user_id, &key_hash, &request_hash, code, request.amount, now)
                .await?
            {
                return Ok(refusal);
            }
            // Another request under the same key was recorded meanwhile: answer as it did.
        }
        Ok(refusal)
    }

    /// What a key used before answers now: its first answer, or `KeyReused` for another
    /// request; `None` for a key never used (or forgotten after its time to live).
    async fn first_answer(
        &self,
        user_id: &str,
        key_hash: &str,
        request_hash: &str,
    ) -> Result<Option<ConsumeOutcome>, Error> {
        let Some(record) = self.store.idempotency_record(user_id, key_hash).await? else {
            return Ok(None);
        };
        if record.request_hash != request_hash {
            return Ok(Some(ConsumeOutcome::KeyReused));
        }
        match record.refusal {
            Some((code, Some(credits))) if code == "INSUFFICIENT_CREDITS" => {
                return Ok(Some(ConsumeOutcome::Insufficient { credits }));
            }
            Some(_) => return Ok(Some(ConsumeOutcome::NoActiveSubscription)),
            None => {}
        }
        Ok(Some(match record.answer {
            Some((status, body)) => ConsumeOutcome::Replay { status, body },
            // The first request spent the credits but its answer was never kept (it is still
            // running, or died before): answer as it would have, with the balance of now.
            None => {
                let credits = match &record.subscription_id {
                    Some(id) => self
                        .store
                        .subscription(id)
                        .await?
                        .map_or(0, |s| s.credits()),
                    None => 0,
                };
                ConsumeOutcome::Consumed {
                    consumed: record.amount,
                    credits,
                }
            }
        }))
    }

    /// Keeps the answer given for a consumption, so that a replay repeats it.
    pub async fn remember_consume_answer(
        &self,
        user_id: &str,
        request: &ConsumeRequest,
        status: u16,
        body: &str,
    ) -> Result<(), Error> {
        Ok(self
            .store
            .remember_answer(user_id, &request.key_hash(), status, body)
            .await?)
    }

    /// `active`: ends it at the end of the paid period (the sweep does it, without charging).
    /// `incomplete`/`past_due`: ends it now and deletes the card's billing key. Never while a
    /// charge of it is under way or unknown.
    pub async fn cancel_subscription(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<ChangeOutcome, Error> {
        for _ in 0..CHANGE_RETRIES {
            let Some(mut sub) = self.store.user_view(user_id).await?.subscription else {
                return Ok(ChangeOutcome::NoActiveSubscription);
            };
            match sub.status() {
                Status::Canceled => return Ok(ChangeOutcome::NoActiveSubscription),
                Status::Active if sub.cancel_at_period_end() => {
                    return Ok(ChangeOutcome::Changed(Box::new(sub)));
                }
                _ => {}
            }
            let last = self.store.last_attempt(sub.id(), sub.next_period()).await?;
            if let Some(open) = &last
                && !open.status().is_final()
            {
                info!(order_id = %open.order_id(), "cancel refused while a charge is open");
                return Ok(ChangeOutcome::PaymentPending);
            }
            // The slot the sweep would claim next for this period: saved only while it is
            // still empty, so a charge claimed after the check above refuses this save.
            let next_slot = last.map_or(sub.next_attempt(), |a| {
                sub.next_attempt().max(a.attempt() + 1)
            });
            let ends_now = sub.status() != Status::Active;
            if ends_now {
                sub.cancel(domain::CancelReason::Customer, now);
            } else {
                sub.schedule_cancel(now);
            }
            match self
                .store
                .save_subscription_unless_claimed(&mut sub, next_slot)
                .await
            {
                Ok(()) => {
                    info!(subscription = %sub.id(), ends_now, "canceled by the customer");
                    if ends_now && self.delete_billing_key_of(sub.id(), now).await? {
                        // Read back so the answer shows the key gone.
                        if let Some(fresh) = self.store.subscription(sub.id()).await? {
                            sub = fresh;
                        }
                    }
                    return Ok(ChangeOutcome::Changed(Box::new(sub)));
                }
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(ChangeOutcome::PaymentPending)
    }

    /// Takes back a cancel at period end while the period lasts.
    pub async fn resume_subscription(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<ChangeOutcome, Error> {
        for _ in 0..CHANGE_RETRIES {
            let Some(mut sub) = self.store.user_view(user_id).await?.subscription else {
                return Ok(ChangeOutcome::NotResumable);
            };
            if !sub.resumable(now) {
                return Ok(ChangeOutcome::NotResumable);
            }
            sub.resume(now);
            match self.store.save_subscription(&mut sub).await {
                Ok(()) => {
                    info!(subscription = %sub.id(), "cancel at period end taken back");
                    return Ok(ChangeOutcome::Changed(Box::new(sub)));
                }
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(ChangeOutcome::PaymentPending)
    }

    /// The user's payments (every ledger entry of its subscription), newest first.
    pub async fn payments(
        &self,
        user_id: &str,
        limit: u32,
        after: Option<PaymentsCursor>,
    ) -> Result<PaymentsPage, Error> {
        // Every subscription the user ever started, newest first: a user who resubscribed
        // sees the earlier subscription's payments after the current one's.
        let ids = self.store.user_subscription_ids(user_id).await?;
        let Some(newest) = ids.len().checked_sub(1) else {
            return Ok(PaymentsPage {
                payments: Vec::new(),
                next: None,
            });
        };
        let (mut index, mut from) = match after {
            // A cursor naming no subscription of the user's (one from before the list, say)
            // starts at the newest.
            Some(c) => (
                usize::try_from(c.subscription)
                    .ok()
                    .filter(|i| *i <= newest)
                    .unwrap_or(newest),
                c.after,
            ),
            None => (newest, None),
        };
        let mut payments = Vec::new();
        while let Some(id) = ids.get(index) {
            let room = limit.saturating_sub(u32::try_from(payments.len()).unwrap_or(u32::MAX));
            let (page, next) = self.store.attempts_page(id, room, from).await?;
            payments.extend(page);
            let cursor = |subscription: usize, after| PaymentsCursor {
                subscription: u32::try_from(subscription).unwrap_or(u32::MAX),
                after,
            };
            if let Some(next) = next {
                return Ok(PaymentsPage {
                    payments,
                    next: Some(cursor(index, Some(next))),
                });
            }
            let Some(older) = index.checked_sub(1) else {
                break;
            };
            if payments.len() >= limit as usize {
                return Ok(PaymentsPage {
                    payments,
                    next: Some(cursor(older, None)),
                });
            }
            (index, from) = (older, None);
        }
        Ok(PaymentsPage {
            payments,
            next: None,
        })
    }
}

//! Card registration from Toss's billing-auth redirect: issue the billing key, then start a
//! subscription and charge its first month, or replace the card of an existing one.

use chrono::{DateTime, Utc};
use domain::{
    AttemptKind, AttemptStatus, AuthKey, CheckoutRefusal, CheckoutState, CustomerKey,
    IdempotencyKey, Status, Subscription, SubscriptionId,
};
use sha2::{Digest, Sha256};
use store::RedirectRecord;
use toss::ErrorClass;
use tracing::{error, info, warn};

use crate::engine::{Mode, Settled};
use crate::{Billing, Error, Invariant};

/// What the success redirect carried, already parsed at the edge.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The checkout this redirect finishes (product §10.2): nothing reaches Toss without one.
    pub state: CheckoutState,
    pub customer_key: CustomerKey,
    pub auth_key: AuthKey,
    pub customer_email: Option<domain::Email>,
    pub customer_name: Option<domain::CustomerName>,
}

/// Where the customer lands. Loading the same redirect again gives the same outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationOutcome {
    /// First month (or the overdue period) paid; the subscription is active.
    Subscribed { subscription_id: SubscriptionId },
    /// An active subscription now charges the new card from its next renewal.
    CardReplaced { subscription_id: SubscriptionId },
    /// Nothing was granted; why, as the fail redirect names it.
    Failed { code: FailureCode },
    /// The charge was sent but its outcome is not known yet; the sweep reconciles it.
    Pending { subscription_id: SubscriptionId },
}

/// Why a registration failed, as the app's fail URL names it (`?code=`): one of ours, or the
/// code Toss gave for the customer's card, passed through as it is. Turned into text only where
/// the redirect is answered ([`FailureCode::as_str`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureCode {
    /// The checkout state is missing, unknown, expired, or was used with another authKey.
    InvalidState,
    /// The redirect's customerKey is not its checkout's, or the authKey was already used for
    /// another customerKey.
    CustomerMismatch,
    /// Toss could not be reached or answered inconclusively; loading the page again retries.
    TossUnavailable,
    /// A charge is under way and its outcome is not known yet.
    PaymentPending,
    /// Misconfiguration on the merchant's side; the customer can do nothing.
    ServiceError,
    /// Another registration for this customer is being processed at the same moment.
    ConcurrentRequest,
    /// The redirect itself is malformed.
    InvalidRequest,
    /// Toss's code for the customer's card (a decline, card data Toss refused), or the code
    /// Toss's fail redirect carried.
    Toss(toss::ErrorCode),
}

impl FailureCode {
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidState => "INVALID_STATE",
            Self::CustomerMismatch => "CUSTOMER_MISMATCH",
            Self::TossUnavailable => "TOSS_UNAVAILABLE",
            Self::PaymentPending => "PAYMENT_PENDING",
            Self::ServiceError => "SERVICE_ERROR",
            Self::ConcurrentRequest => "CONCURRENT_REQUEST",
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::Toss(code) => code.as_str(),
        }
    }

    /// Toss's code, as Toss or the ledger gave it.
    pub fn toss(code: &str) -> Self {
        Self::Toss(toss::ErrorCode::parse(code))
    }

    /// A code as the redirect record stored it ([`as_str`](Self::as_str)).
    fn from_stored(code: &str) -> Self {
        [
            Self::InvalidState,
            Self::CustomerMismatch,
            Self::TossUnavailable,
            Self::PaymentPending,
            Self::ServiceError,
            Self::ConcurrentRequest,
            Self::InvalidRequest,
        ]
        .into_iter()
        .find(|ours| ours.as_str() == code)
        .unwrap_or_else(|| Self::toss(code))
    }
}

impl From<CheckoutRefusal> for FailureCode {
    fn from(refusal: CheckoutRefusal) -> Self {
        match refusal {
            CheckoutRefusal::InvalidState => Self::InvalidState,
            CheckoutRefusal::CustomerMismatch => Self::CustomerMismatch,
        }
    }
}

/// SHA-256 of the authKey: the redirect record's key, so the authKey itself is never stored.
fn auth_key_hash(auth_key: &AuthKey) -> String {
    hex::encode(Sha256::digest(auth_key.expose_secret().as_bytes()))
}

const START_RETRIES: usize = 3;

/// What the checkout says about a success redirect.
enum Admission {
    /// Refused before Toss is called; nothing was written.
    Refused(CheckoutRefusal),
    /// This redirect was processed before: its recorded result.
    Replay(RedirectRecord),
    /// The checkout is now spent on this authKey; `user_id` started it.
    Admitted { user_id: String },
}

impl Billing {
    /// Handles one success redirect. Errors are only for our own faults and the table being
    /// unreachable; every customer-side outcome is a [`RegistrationOutcome`].
    #[tracing::instrument(skip_all, fields(customer = %registration.customer_key))]
    pub async fn register_card(
        &self,
        registration: &Registration,
        now: DateTime<Utc>,
    ) -> Result<RegistrationOutcome, Error> {
        let hash = auth_key_hash(&registration.auth_key);
        let user_id = match self.admit(registration, &hash, now).await? {
            Admission::Refused(refusal) => {
                warn!(
                    code = refusal.code(),
                    "refused a success redirect before calling Toss"
                );
                return Ok(RegistrationOutcome::Failed {
                    code: refusal.into(),
                });
            }
            Admission::Replay(record) => {
                return self.replay(&record, &registration.customer_key).await;
            }
            Admission::Admitted { user_id } => user_id,
        };
        if let Some(record) = self.store.redirect(&hash).await? {
            return self.replay(&record, &registration.customer_key).await;
        }
        let idempotency_key =
            IdempotencyKey::parse(format!("issue-{}", &hash[..48])).map_err(|source| {
                Invariant::BuiltValue {
                    what: "idempotency key",
                    source,
                }
            })?;
        let billing = match self
            .toss
            .issue_billing_key(
                &registration.auth_key,
                &registration.customer_key,
                &idempotency_key,
            )
            .await
        {
            Ok(billing) => billing,
            Err(e) => return self.issue_failed(e, &hash, registration, now).await,
        };
        if billing.customer_key != registration.customer_key.as_str() {
            error!("Toss issued a billing key for another customerKey; refusing it");
            self.forget_billing_key(&billing.billing_key).await;
            return Ok(RegistrationOutcome::Failed {
                code: FailureCode::CustomerMismatch,
            });
        }
        let masked = billing.card.as_ref().and_then(|c| c.number.clone());
        // The company's name while Toss still sends it (API versions before 2024-06-01), else
        // the issuer's code from Toss's card-company table.
        let company = billing
            .card_company
            .clone()
            .or_else(|| billing.card.as_ref().and_then(|c| c.issuer_code.clone()));
        let owner = format!("api-{}", ulid::Ulid::new());

        for _ in 0..START_RETRIES {
            let current = self
                .store
                .customer_subscription(&registration.customer_key)
                .await?;
            let result = match current {
                Some(sub) if sub.status() != Status::Canceled => {
                    // Boxed: the charge they may start makes a large future, which would
                    // otherwise sit on the stack of whatever polls the redirect.
                    Box::pin(self.update_card(
                        sub,
                        registration,
                        &billing.billing_key,
                        (masked.clone(), company.clone()),
                        &hash,
                        &owner,
                        now,
                    ))
                    .await
                }
                previous => {
                    Box::pin(self.start(
                        registration,
                        &user_id,
                        previous.map(|s| s.id().clone()),
                        &billing.billing_key,
                        (masked.clone(), company.clone()),
                        &hash,
                        &owner,
                        now,
                    ))
                    .await
                }
            };
            match result {
                Ok(outcome) => return Ok(outcome),
                Err(Error::Store(e)) if e.is_conflict() => {
                    // Either this very redirect was processed concurrently (reload while the
                    // first request ran), or the customer's subscription changed: look again.
                    if let Some(record) = self.store.redirect(&hash).await? {
                        return self.replay(&record, &registration.customer_key).await;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        warn!("the customer's subscription kept changing; giving up this redirect");
        self.retire_unused_key(&registration.customer_key, &billing.billing_key, now)
            .await;
        Ok(RegistrationOutcome::Failed {
            code: FailureCode::ConcurrentRequest,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn start(
        &self,
        registration: &Registration,
        user_id: &str,
        replaces: Option<SubscriptionId>,
        billing_key: &domain::BillingKey,
        (masked, company): (Option<String>, Option<String>),
        hash: &str,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<RegistrationOutcome, Error> {
        let id = SubscriptionId::parse(ulid::Ulid::new().to_string()).map_err(|source| {
            Invariant::BuiltValue {
                what: "subscription id",
                source,
            }
        })?;
        let mut sub = Subscription::new(
            id.clone(),
            registration.customer_key.clone(),
            billing_key.clone(),
            masked,
            now,
        );
        sub.set_card_company(company);
        sub.update_contact(
            registration.customer_email.clone(),
            registration.customer_name.clone(),
        );
        let attempt = self.new_attempt(&sub, 0, 1, AttemptKind::First, owner, now);
        let record = RedirectRecord {
            auth_key_hash: hash.to_owned(),
            customer_key: sub.customer_key().clone(),
            subscription_id: Some(id.clone()),
            order_id: Some((0, 1)),
            failure_code: None,
            created_at: now,
        };
        self.store
            .start_subscription(&mut sub, user_id, replaces.as_ref(), &attempt, &record)
            .await?;
        info!(subscription = %id, "subscription started; charging the first month");
        let settled = self.settle(sub, attempt, owner, Mode::Fresh, now).await;
        Ok(outcome_of(id, settled))
    }

    #[allow(clippy::too_many_arguments)]
    async fn update_card(
        &self,
        mut sub: Subscription,
        registration: &Registration,
        billing_key: &domain::BillingKey,
        (masked, company): (Option<String>, Option<String>),
        hash: &str,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<RegistrationOutcome, Error> {
        let id = sub.id().clone();
        let charge_now = sub.charges_on_new_card();
        let mut number = sub.next_attempt();
        if charge_now {
            match self.store.last_attempt(&id, sub.next_period()).await? {
                Some(open) if !open.status().is_final() => {
                    // A charge of this period is under way or its outcome unknown: it is
                    // settled first (by the sweep), never charged twice. Nothing changes now.
                    warn!(order_id = %open.order_id(), "a new card while a charge is under way; refusing it for now");
                    return self
                        .refuse_redirect(hash, &sub, billing_key, FailureCode::PaymentPending, now)
                        .await;
                }
                // Attempts Toss refused on our side do not count as tries, but their numbers
                // are taken: the next attempt comes after the last one in the ledger.
                Some(last) if last.attempt() >= number => number = last.attempt() + 1,
                _ => {}
            }
        }
        sub.replace_card(billing_key.clone(), masked, now);
        sub.set_card_company(company);
        sub.update_contact(
            registration.customer_email.clone(),
            registration.customer_name.clone(),
        );
        let attempt = charge_now.then(|| {
            let kind = if sub.status() == Status::Incomplete {
                AttemptKind::First
            } else {
                AttemptKind::CardUpdate
            };
            // Due at once in the same write as the claim: should this request die before the
            // outcome is recorded, the sweep finds the attempt and reconciles it.
            sub.charge_now(now);
            self.new_attempt(&sub, sub.next_period(), number, kind, owner, now)
        });
        let record = RedirectRecord {
            auth_key_hash: hash.to_owned(),
            customer_key: sub.customer_key().clone(),
            subscription_id: Some(id.clone()),
            order_id: attempt.as_ref().map(|a| (a.period(), a.attempt())),
            failure_code: None,
            created_at: now,
        };
        self.store
            .update_from_redirect(&mut sub, attempt.as_ref(), &record)
            .await?;
        let retired_a_key = !sub.retired_billing_keys().is_empty();
        let outcome = match attempt {
            None => {
                info!(subscription = %id, "card replaced on an active subscription; nothing charged");
                RegistrationOutcome::CardReplaced {
                    subscription_id: id.clone(),
                }
            }
            Some(attempt) => {
                info!(subscription = %id, "card replaced on an unpaid subscription; charging at once");
                let settled = self.settle(sub, attempt, owner, Mode::Fresh, now).await;
                outcome_of(id.clone(), settled)
            }
        };
        // The replaced key stays listed on the subscription until Toss confirms its deletion;
        // whatever fails here (the customer's outcome is already decided), the sweep deletes it.
        if retired_a_key {
            let deleted = match self.store.subscription(&id).await {
                Ok(Some(fresh)) => self.delete_retired_keys(fresh, now).await.map(|_| ()),
                Ok(None) => Ok(()),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = deleted {
                warn!(error = %e, "could not delete the replaced billing key yet; the sweep retries");
            }
        }
        Ok(outcome)
    }

    /// Refuses a redirect without touching the subscription: the freshly issued key is
    /// deleted, and the refusal is recorded so that a reload lands on the same answer.
    async fn refuse_redirect(
        &self,
        hash: &str,
        sub: &Subscription,
        billing_key: &domain::BillingKey,
        code: FailureCode,
        now: DateTime<Utc>,
    ) -> Result<RegistrationOutcome, Error> {
        let record = RedirectRecord {
            auth_key_hash: hash.to_owned(),
            customer_key: sub.customer_key().clone(),
            subscription_id: None,
            order_id: None,
            failure_code: Some(code.as_str().to_owned()),
            created_at: now,
        };
        match self.store.record_redirect(&record).await {
            Ok(()) => {}
            Err(e) if e.is_conflict() => {}
            Err(e) => return Err(e.into()),
        }
        if sub.billing_key() != Some(billing_key) {
            self.retire_unused_key(sub.customer_key(), billing_key, now)
                .await;
        }
        Ok(RegistrationOutcome::Failed { code })
    }

    /// A key Toss issued that no subscription will use: listed on the customer's subscription
    /// as retired (so the sweep deletes it until Toss confirms), then deleted at once if Toss
    /// lets us. Only a customer without any subscription falls back to a best-effort delete.
    async fn retire_unused_key(
        &self,
        customer: &CustomerKey,
        key: &domain::BillingKey,
        now: DateTime<Utc>,
    ) {
        for _ in 0..START_RETRIES {
            let mut sub = match self.store.customer_subscription(customer).await {
                Ok(Some(sub)) => sub,
                Ok(None) => break,
                Err(e) => {
                    warn!(error = %e, "could not read the subscription to retire a key on");
                    break;
                }
            };
            if !sub.retire_unused_key(key) {
                return;
            }
            match self.store.save_subscription(&mut sub).await {
                Ok(()) => {
                    if let Err(e) = self.delete_retired_keys(sub, now).await {
                        warn!(error = %e, "could not delete a retired key yet; the sweep retries");
                    }
                    return;
                }
                Err(e) if e.is_conflict() => continue,
                Err(e) => {
                    warn!(error = %e, "could not record a key to retire");
                    break;
                }
            }
        }
        self.forget_billing_key(key).await;
    }

    /// Checks the redirect against its checkout before anything else happens: at most one
    /// read and one conditional write, and a refused redirect writes nothing (issue 14).
    async fn admit(
        &self,
        registration: &Registration,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Admission, Error> {
        let Some(checkout) = self.store.checkout(&registration.state.hash()).await? else {
            return Ok(Admission::Refused(CheckoutRefusal::InvalidState));
        };
        if checkout.auth_key_hash.as_deref() == Some(hash) {
            // The same redirect again (a reload, or a second tab): it lands on the first
            // one's result, even once the checkout has expired.
            if checkout.customer_key != registration.customer_key {
                return Ok(Admission::Refused(CheckoutRefusal::CustomerMismatch));
            }
            if let Some(record) = self.store.redirect(hash).await? {
                return Ok(Admission::Replay(record));
            }
        }
        if let Err(refusal) = checkout.admits(&registration.customer_key, hash, now) {
            return Ok(Admission::Refused(refusal));
        }
        match self
            .store
            .bind_checkout(&checkout.state_hash, hash, now)
            .await
        {
            Ok(()) => Ok(Admission::Admitted {
                user_id: checkout.user_id,
            }),
            // Another authKey bound it first, or it expired meanwhile.
            Err(e) if e.is_conflict() => Ok(Admission::Refused(CheckoutRefusal::InvalidState)),
            Err(e) => Err(e.into()),
        }
    }

    async fn issue_failed(
        &self,
        e: toss::Error,
        hash: &str,
        registration: &Registration,
        now: DateTime<Utc>,
    ) -> Result<RegistrationOutcome, Error> {
        let code = e.code().unwrap_or("TOSS_UNAVAILABLE").to_owned();
        match e.class() {
            ErrorClass::OurFault => {
                // A misconfiguration (key, contract): the log keeps Toss's code for the alarm;
                // the customer gets our stable code.
                error!(code = %code, error = %e, "Toss refused the billing-key issue for a reason on our side");
                Ok(RegistrationOutcome::Failed {
                    code: FailureCode::ServiceError,
                })
            }
            ErrorClass::CustomerData => {
                // The authKey belongs to another customerKey (or the key is not one Toss
                // accepts): a customer can cause this at will, so it is no outage and no alarm.
                warn!(code = %code, "Toss refused the billing-key issue for this customer's data");
                Ok(RegistrationOutcome::Failed {
                    code: FailureCode::CustomerMismatch,
                })
            }
            ErrorClass::OutcomeUnknown | ErrorClass::AlreadyProcessed => {
                // Not recorded: loading the page again retries with the same idempotency key.
                warn!(code = %code, error = %e, "billing-key issue outcome unknown");
                Ok(RegistrationOutcome::Failed {
                    code: FailureCode::TossUnavailable,
                })
            }
            ErrorClass::SoftDecline
            | ErrorClass::NeedsNewCard
            | ErrorClass::Rejected
            | ErrorClass::NotFound => {
                info!(code = %code, "card registration rejected");
                let record = RedirectRecord {
                    auth_key_hash: hash.to_owned(),
                    customer_key: registration.customer_key.clone(),
                    subscription_id: None,
                    order_id: None,
                    failure_code: Some(code.clone()),
                    created_at: now,
                };
                match self.store.record_redirect(&record).await {
                    Ok(()) => {}
                    Err(e) if e.is_conflict() => {}
                    Err(e) => return Err(e.into()),
                }
                Ok(RegistrationOutcome::Failed {
                    code: FailureCode::toss(&code),
                })
            }
        }
    }

    /// The outcome of a redirect processed before, read back from the ledger.
    async fn replay(
        &self,
        record: &RedirectRecord,
        customer_key: &CustomerKey,
    ) -> Result<RegistrationOutcome, Error> {
        if &record.customer_key != customer_key {
            warn!("an authKey already used by another customer was presented again");
            return Ok(RegistrationOutcome::Failed {
                code: FailureCode::CustomerMismatch,
            });
        }
        if let Some(code) = &record.failure_code {
            return Ok(RegistrationOutcome::Failed {
                code: FailureCode::from_stored(code),
            });
        }
        let Some(id) = record.subscription_id.clone() else {
            return Ok(RegistrationOutcome::Failed {
                code: FailureCode::ServiceError,
            });
        };
        let Some((period, number)) = record.order_id else {
            return Ok(RegistrationOutcome::CardReplaced {
                subscription_id: id,
            });
        };
        let attempt = self.store.attempt(&id, period, number).await?;
        Ok(
            match attempt.as_ref().map(|a| (a.status(), a.error_code())) {
                Some((AttemptStatus::Done, _)) => RegistrationOutcome::Subscribed {
                    subscription_id: id,
                },
                Some((AttemptStatus::Declined, code)) => RegistrationOutcome::Failed {
                    code: FailureCode::toss(code.unwrap_or("DECLINED")),
                },
                Some((AttemptStatus::NotCharged, code)) => RegistrationOutcome::Failed {
                    // The customer's own data may be named; a refusal on our side may not.
                    code: code
                        .filter(|c| {
                            toss::class::class_of_code(
                                toss::Operation::Charge,
                                &toss::ErrorCode::parse(c),
                            ) == ErrorClass::CustomerData
                        })
                        .map_or(FailureCode::ServiceError, FailureCode::toss),
                },
                Some((
                    AttemptStatus::Pending | AttemptStatus::Unknown | AttemptStatus::Review,
                    _,
                ))
                | None => RegistrationOutcome::Pending {
                    subscription_id: id,
                },
            },
        )
    }
}

fn outcome_of(id: SubscriptionId, settled: Result<Settled, Error>) -> RegistrationOutcome {
    match settled {
        Ok(Settled::Charged { .. }) => RegistrationOutcome::Subscribed {
            subscription_id: id,
        },
        Ok(Settled::Declined { code, .. } | Settled::NotCharged { code }) => {
            RegistrationOutcome::Failed {
                code: FailureCode::toss(&code),
            }
        }
        Ok(
            Settled::Unknown { .. } | Settled::Anomaly | Settled::Superseded | Settled::Held { .. },
        ) => RegistrationOutcome::Pending {
            subscription_id: id,
        },
        Err(Error::OurFault { .. }) => RegistrationOutcome::Failed {
            code: FailureCode::ServiceError,
        },
        // The charge's outcome was not written: the attempt stays open under its lease and the
        // sweep reconciles it by order id.
        Err(e) => {
            error!(error = %e, "recording the first charge failed; the sweep will reconcile it");
            RegistrationOutcome::Pending {
                subscription_id: id,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_code_reads_back_from_the_text_the_redirect_record_keeps() {
        for code in [
            FailureCode::InvalidState,
            FailureCode::CustomerMismatch,
            FailureCode::TossUnavailable,
            FailureCode::PaymentPending,
            FailureCode::ServiceError,
            FailureCode::ConcurrentRequest,
            FailureCode::InvalidRequest,
            FailureCode::toss("INVALID_CARD_NUMBER"),
            FailureCode::toss("A_CODE_TOSS_ADDED_LATER"),
        ] {
            assert_eq!(FailureCode::from_stored(code.as_str()), code);
        }
        assert_eq!(
            FailureCode::toss("REJECT_CARD_PAYMENT").as_str(),
            "REJECT_CARD_PAYMENT"
        );
        assert_eq!(
            FailureCode::from(CheckoutRefusal::InvalidState),
            FailureCode::InvalidState
        );
    }
}

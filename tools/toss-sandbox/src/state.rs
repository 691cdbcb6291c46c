//! The sandbox's records (merchants, authKeys, billing keys, payments, charge attempts) behind one
//! mutex, the [`Sandbox`] handle on them, and what the request pipeline asks of them. The knobs,
//! the snapshot and the API operations are further `impl Sandbox` blocks in `knobs.rs`,
//! `inspect.rs` and `ops/`.
//!
//! One mutex guards everything; no lock is held across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration as StdDuration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::cards::TestCard;
use crate::config::{KeyError, KeyKind, SandboxConfig, SecretKeySpec, key_kind};
use crate::errors::ApiError;
use crate::faults::{DeclineRule, Endpoint, FaultRule, FaultTarget, Faults};
use crate::idempotency::{Admission, IdempotencyStore, RecordKey, StoredResponse};
use crate::model::{Payment, kst_compact};
use crate::outbox::Webhooks;
use crate::requests::ChargeRequest;
use crate::snapshot::{Counters, fingerprint};

/// The caller of an API request, after authentication.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) secret_key: String,
    pub(crate) mid: String,
    pub(crate) billing_contract: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Merchant {
    pub(crate) mid: String,
    pub(crate) kind: KeyKind,
    pub(crate) billing_contract: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct AuthKeyRecord {
    pub(crate) customer_key: String,
    pub(crate) card: TestCard,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) used: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct BillingKeyRecord {
    pub(crate) owner: String,
    pub(crate) customer_key: String,
    pub(crate) card: TestCard,
    pub(crate) issued_at: DateTime<Utc>,
    pub(crate) deleted_at: Option<DateTime<Utc>>,
    pub(crate) approved_charges: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct PaymentRecord {
    pub(crate) owner: String,
    pub(crate) customer_key: String,
    pub(crate) billing_key_fingerprint: String,
    pub(crate) payment: Payment,
}

#[derive(Debug, Clone)]
pub(crate) struct ChargeAttempt {
    pub(crate) owner: String,
    pub(crate) order_id: String,
    pub(crate) customer_key: String,
    pub(crate) billing_key_fingerprint: String,
    pub(crate) amount: i64,
    pub(crate) outcome: String,
    pub(crate) at: DateTime<Utc>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) config: SandboxConfig,
    pub(crate) clock_offset: Duration,
    pub(crate) merchants: HashMap<String, Merchant>,
    pub(crate) auth_keys: HashMap<String, AuthKeyRecord>,
    pub(crate) billing_keys: HashMap<String, BillingKeyRecord>,
    pub(crate) billing_key_order: Vec<String>,
    pub(crate) payments: Vec<PaymentRecord>,
    pub(crate) attempts: Vec<ChargeAttempt>,
    pub(crate) idempotency: IdempotencyStore,
    pub(crate) faults: Faults,
    pub(crate) declines: Vec<DeclineRule>,
    pub(crate) counters: Counters,
    pub(crate) webhooks: Webhooks,
}

impl State {
    pub(crate) fn new(config: SandboxConfig) -> Result<Self, KeyError> {
        let mut merchants = HashMap::new();
        for spec in config.initial_keys() {
            let (key, merchant) = merchant_from(&spec)?;
            merchants.insert(key, merchant);
        }
        Ok(Self {
            clock_offset: Duration::seconds(config.clock_offset_seconds),
            merchants,
            auth_keys: HashMap::new(),
            billing_keys: HashMap::new(),
            billing_key_order: Vec::new(),
            payments: Vec::new(),
            attempts: Vec::new(),
            idempotency: IdempotencyStore::default(),
            faults: Faults::new(config.seed, config.faults.clone()),
            declines: config.declines.clone(),
            counters: Counters::default(),
            webhooks: Webhooks::default(),
            config,
        })
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    pub(crate) fn mid_of(&self, owner: &str) -> String {
        self.merchants
            .get(owner)
            .map(|m| m.mid.clone())
            .unwrap_or_else(|| "(revoked)".to_owned())
    }

    pub(crate) fn payment_index(&self, owner: &str, payment_key: &str) -> Option<usize> {
        self.payments
            .iter()
            .position(|p| p.owner == owner && p.payment.payment_key == payment_key)
    }

    pub(crate) fn order_index(&self, owner: &str, order_id: &str) -> Option<usize> {
        self.payments
            .iter()
            .position(|p| p.owner == owner && p.payment.order_id == order_id)
    }

    pub(crate) fn new_payment_key(&self, now: DateTime<Utc>) -> String {
        loop {
            let candidate = format!("tgen_{}{}", kst_compact(now), random_alphanumeric(5));
            if !self
                .payments
                .iter()
                .any(|p| p.payment.payment_key == candidate)
            {
                return candidate;
            }
        }
    }

    pub(crate) fn new_billing_key(&self) -> String {
        loop {
            let bytes: [u8; 32] = rand::rng().random();
            let candidate = URL_SAFE.encode(bytes);
            if !self.billing_keys.contains_key(&candidate) {
                return candidate;
            }
        }
    }

    pub(crate) fn record_attempt(
        &mut self,
        owner: &str,
        billing_key: &str,
        request: &ChargeRequest,
        outcome: &str,
        now: DateTime<Utc>,
    ) {
        self.attempts.push(ChargeAttempt {
            owner: owner.to_owned(),
            order_id: request.order_id.clone(),
            customer_key: request.customer_key.clone(),
            billing_key_fingerprint: fingerprint(billing_key),
            amount: request.amount,
            outcome: outcome.to_owned(),
            at: now,
        });
    }

    /// A forced decline for this customer, consuming one use of it.
    pub(crate) fn take_decline(&mut self, customer_key: &str) -> Option<ApiError> {
        let index = self
            .declines
            .iter()
            .position(|d| d.customer_key == customer_key && d.times != Some(0))?;
        let rule = &mut self.declines[index];
        if let Some(times) = rule.times.as_mut() {
            *times -= 1;
        }
        let base = ApiError::of(&rule.code);
        Some(ApiError::custom(
            rule.status.unwrap_or(base.status),
            rule.code.clone(),
            rule.message.clone().unwrap_or(base.message),
        ))
    }
}

pub(crate) fn merchant_from(spec: &SecretKeySpec) -> Result<(String, Merchant), KeyError> {
    let kind = key_kind(&spec.secret_key)?;
    let mid = spec.resolved_mid()?;
    Ok((
        spec.secret_key.clone(),
        Merchant {
            mid,
            kind,
            billing_contract: spec.billing_contract && kind == KeyKind::Api,
        },
    ))
}

pub(crate) fn random_alphanumeric(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

pub(crate) fn random_digits(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

pub(crate) fn transaction_key() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode_upper(bytes)
}

/// A handle on one sandbox's state; cheap to clone, shared by the server and tests.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Mutex<State>>,
}

/// Shows no state: it holds secret keys, billing keys and authKeys.
impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").finish_non_exhaustive()
    }
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Result<Self, KeyError> {
        Ok(Self {
            inner: Arc::new(Mutex::new(State::new(config)?)),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn caller(&self, secret_key: &str) -> Option<Caller> {
        let state = self.lock();
        state.merchants.get(secret_key).map(|m| Caller {
            secret_key: secret_key.to_owned(),
            mid: m.mid.clone(),
            billing_contract: m.billing_contract,
        })
    }

    pub(crate) fn admit(&self, key: RecordKey, mid: &str, endpoint: Endpoint) -> Admission {
        let mut state = self.lock();
        let now = state.now();
        let admission = state.idempotency.admit(key, mid, endpoint, now);
        if matches!(admission, Admission::Replay(_)) {
            state.counters.idempotent_replays += 1;
        }
        admission
    }

    pub(crate) fn complete(&self, key: &RecordKey, token: u64, response: StoredResponse) {
        self.lock().idempotency.complete(key, token, response);
    }

    pub(crate) fn release(&self, key: &RecordKey, token: u64) {
        self.lock().idempotency.release(key, token);
    }

    pub(crate) fn latency(&self, endpoint: Endpoint) -> Option<StdDuration> {
        self.lock().faults.latency(endpoint)
    }

    pub(crate) fn draw_fault(&self, target: FaultTarget<'_>) -> Option<FaultRule> {
        let mut state = self.lock();
        let rule = state.faults.draw(target);
        if rule.is_some() {
            state.counters.injected_faults += 1;
        }
        rule
    }

    pub(crate) fn note_charge_request(&self, order_id: Option<&str>) {
        let mut state = self.lock();
        state.counters.charge_requests += 1;
        if let Some(order_id) = order_id {
            *state
                .counters
                .charge_requests_by_order_id
                .entry(order_id.to_owned())
                .or_default() += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_of_a_sandbox_shows_no_keys() {
        let sandbox = Sandbox::new(SandboxConfig::default()).unwrap_or_else(|e| panic!("{e}"));
        let auth_key = sandbox
            .mint_auth_key("customer-1", TestCard::Ok)
            .unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{sandbox:?}");
        assert!(!shown.contains(crate::config::DOCS_SECRET_KEY));
        assert!(!shown.contains(&auth_key));
    }

    #[test]
    fn billing_keys_look_like_real_ones() {
        let sandbox = Sandbox::new(SandboxConfig::default()).unwrap_or_else(|e| panic!("{e}"));
        let key = sandbox.lock().new_billing_key();
        assert_eq!(key.len(), 44);
        assert!(key.ends_with('='));
        assert!(
            key.trim_end_matches('=')
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}

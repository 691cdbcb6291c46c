//! The knobs tests and the control API turn: the clock, reset, authKeys minted without the page,
//! secret keys, fault rules and forced declines.

use chrono::{DateTime, Duration, Utc};

use crate::cards::TestCard;
use crate::config::{KeyError, SecretKeySpec, key_hint};
use crate::errors::ApiError;
use crate::faults::{DeclineRule, FaultConfig};
use crate::model::Billing;
use crate::requests::valid_customer_key;
use crate::snapshot::MerchantView;
use crate::state::{AuthKeyRecord, Sandbox, State, merchant_from, random_alphanumeric};

impl Sandbox {
    /// The sandbox clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.lock().now()
    }

    pub fn clock_offset(&self) -> Duration {
        self.lock().clock_offset
    }

    pub fn set_clock_offset(&self, offset: Duration) {
        self.lock().clock_offset = offset;
    }

    /// Move the sandbox clock forward (or back, with a negative duration).
    pub fn advance_clock(&self, by: Duration) {
        let mut state = self.lock();
        state.clock_offset += by;
    }

    /// Back to the start-up configuration: no payments, billing keys, authKeys, idempotency
    /// records, counters, runtime keys, faults, declines or clock shift.
    pub fn reset(&self) {
        let mut state = self.lock();
        let config = state.config.clone();
        match State::new(config) {
            Ok(fresh) => *state = fresh,
            // the configuration was accepted at start-up, so this cannot fail; keep the old state
            Err(error) => tracing::error!(%error, "reset failed"),
        }
    }

    /// Mint an authKey as if the card window had succeeded, without the page.
    pub fn mint_auth_key(&self, customer_key: &str, card: TestCard) -> Result<String, ApiError> {
        if !valid_customer_key(customer_key, 300) {
            return Err(ApiError::of("INVALID_CUSTOMER_KEY"));
        }
        let mut state = self.lock();
        let now = state.now();
        let auth_key = loop {
            let candidate = format!("bln_{}", random_alphanumeric(32));
            if !state.auth_keys.contains_key(&candidate) {
                break candidate;
            }
        };
        state.auth_keys.insert(
            auth_key.clone(),
            AuthKeyRecord {
                customer_key: customer_key.to_owned(),
                card,
                created_at: now,
                used: false,
            },
        );
        Ok(auth_key)
    }

    /// Mint an authKey and exchange it at once for `secret_key`, as the card window followed by
    /// `POST /v1/billing/authorizations/issue` would: a real, chargeable billing key without
    /// two HTTP round trips (for load tests that seed thousands of customers).
    pub fn issue_billing_key(
        &self,
        secret_key: &str,
        customer_key: &str,
        card: TestCard,
    ) -> Result<Billing, ApiError> {
        let caller = self
            .caller(secret_key)
            .ok_or_else(|| ApiError::of("UNAUTHORIZED_KEY"))?;
        let auth_key = self.mint_auth_key(customer_key, card)?;
        self.issue(&caller, &auth_key, customer_key)
    }

    /// Register (or update) a secret key.
    pub fn register_secret_key(&self, spec: &SecretKeySpec) -> Result<MerchantView, KeyError> {
        let (key, merchant) = merchant_from(spec)?;
        let view = MerchantView {
            mid: merchant.mid.clone(),
            key_hint: key_hint(&key),
            key_kind: merchant.kind,
            billing_contract: merchant.billing_contract,
        };
        self.lock().merchants.insert(key, merchant);
        Ok(view)
    }

    /// Stop accepting a secret key. Its data stays for inspection.
    pub fn revoke_secret_key(&self, secret_key: &str) -> bool {
        self.lock().merchants.remove(secret_key).is_some()
    }

    pub fn faults(&self) -> (u64, FaultConfig) {
        let state = self.lock();
        (state.faults.seed, state.faults.config.clone())
    }

    pub fn set_faults(&self, config: FaultConfig) {
        self.lock().faults.config = config;
    }

    pub fn set_seed(&self, seed: u64) {
        self.lock().faults.reseed(seed);
    }

    pub fn declines(&self) -> Vec<DeclineRule> {
        self.lock().declines.clone()
    }

    pub fn add_decline(&self, rule: DeclineRule) {
        self.lock().declines.push(rule);
    }

    pub fn clear_declines(&self, customer_key: Option<&str>) {
        let mut state = self.lock();
        match customer_key {
            Some(customer_key) => state.declines.retain(|d| d.customer_key != customer_key),
            None => state.declines.clear(),
        }
    }
}

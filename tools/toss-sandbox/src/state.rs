//! The sandbox's state and the business rules that change it.
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

use crate::cards::{ChargeBehaviour, TestCard};
use crate::config::{KeyError, KeyKind, SandboxConfig, SecretKeySpec, key_hint, key_kind};
use crate::errors::ApiError;
use crate::faults::{DeclineRule, Endpoint, FaultConfig, FaultRule, FaultTarget, Faults};
use crate::idempotency::{Admission, IdempotencyStore, RecordKey, RecordState, StoredResponse};
use crate::model::{
    API_VERSION, Billing, BillingCard, Cancel, Payment, PaymentCard, Url, vat_split,
};
use crate::snapshot::{
    BillingKeyView, ChargeAttemptView, Counters, IdempotencyView, MerchantView, PaymentView,
    Snapshot, fingerprint,
};

/// A timestamp as Toss writes it: ISO 8601, Korea time, `+09:00`.
pub fn kst(at: DateTime<Utc>) -> String {
    at.with_timezone(&chrono_tz::Asia::Seoul)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// The caller of an API request, after authentication.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub secret_key: String,
    pub mid: String,
    pub billing_contract: bool,
}

#[derive(Debug, Clone)]
struct Merchant {
    mid: String,
    kind: KeyKind,
    billing_contract: bool,
}

#[derive(Debug, Clone)]
struct AuthKeyRecord {
    customer_key: String,
    card: TestCard,
    created_at: DateTime<Utc>,
    used: bool,
}

#[derive(Debug, Clone)]
struct BillingKeyRecord {
    owner: String,
    customer_key: String,
    card: TestCard,
    issued_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
    approved_charges: u64,
}

#[derive(Debug, Clone)]
struct PaymentRecord {
    owner: String,
    customer_key: String,
    billing_key_fingerprint: String,
    payment: Payment,
}

#[derive(Debug, Clone)]
struct ChargeAttempt {
    owner: String,
    order_id: String,
    customer_key: String,
    billing_key_fingerprint: String,
    amount: i64,
    outcome: String,
    at: DateTime<Utc>,
}

/// A validated charge request body.
#[derive(Debug, Clone)]
pub(crate) struct ChargeRequest {
    pub customer_key: String,
    pub amount: i64,
    pub order_id: String,
    pub order_name: String,
    pub tax_free_amount: i64,
    pub tax_exemption_amount: i64,
    pub installment_months: i64,
}

/// A validated cancel request body.
#[derive(Debug, Clone)]
pub(crate) struct CancelRequest {
    pub cancel_reason: String,
    pub cancel_amount: Option<i64>,
    pub refundable_amount: Option<i64>,
}

#[derive(Debug)]
struct State {
    config: SandboxConfig,
    clock_offset: Duration,
    merchants: HashMap<String, Merchant>,
    auth_keys: HashMap<String, AuthKeyRecord>,
    billing_keys: HashMap<String, BillingKeyRecord>,
    billing_key_order: Vec<String>,
    payments: Vec<PaymentRecord>,
    attempts: Vec<ChargeAttempt>,
    idempotency: IdempotencyStore,
    faults: Faults,
    declines: Vec<DeclineRule>,
    counters: Counters,
}

impl State {
    fn new(config: SandboxConfig) -> Result<Self, KeyError> {
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
            config,
        })
    }

    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    fn mid_of(&self, owner: &str) -> String {
        self.merchants
            .get(owner)
            .map(|m| m.mid.clone())
            .unwrap_or_else(|| "(revoked)".to_owned())
    }

    fn payment_index(&self, owner: &str, payment_key: &str) -> Option<usize> {
        self.payments
            .iter()
            .position(|p| p.owner == owner && p.payment.payment_key == payment_key)
    }

    fn order_index(&self, owner: &str, order_id: &str) -> Option<usize> {
        self.payments
            .iter()
            .position(|p| p.owner == owner && p.payment.order_id == order_id)
    }

    fn new_payment_key(&self, now: DateTime<Utc>) -> String {
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

    fn new_billing_key(&self) -> String {
        loop {
            let bytes: [u8; 32] = rand::rng().random();
            let candidate = URL_SAFE.encode(bytes);
            if !self.billing_keys.contains_key(&candidate) {
                return candidate;
            }
        }
    }

    fn record_attempt(
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
    fn take_decline(&mut self, customer_key: &str) -> Option<ApiError> {
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

fn merchant_from(spec: &SecretKeySpec) -> Result<(String, Merchant), KeyError> {
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

fn random_alphanumeric(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn random_digits(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

fn transaction_key() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode_upper(bytes)
}

fn kst_compact(at: DateTime<Utc>) -> String {
    at.with_timezone(&chrono_tz::Asia::Seoul)
        .format("%Y%m%d%H%M%S")
        .to_string()
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

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    // ----- control ---------------------------------------------------------------------------

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

    pub fn snapshot(&self) -> Snapshot {
        let state = self.lock();
        let now = state.now();
        let mut merchants: Vec<MerchantView> = state
            .merchants
            .iter()
            .map(|(key, m)| MerchantView {
                mid: m.mid.clone(),
                key_hint: key_hint(key),
                key_kind: m.kind,
                billing_contract: m.billing_contract,
            })
            .collect();
        merchants.sort_by(|a, b| a.mid.cmp(&b.mid));
        let billing_keys = state
            .billing_key_order
            .iter()
            .filter_map(|key| state.billing_keys.get(key).map(|r| (key, r)))
            .map(|(key, r)| {
                let profile = r.card.profile();
                BillingKeyView {
                    mid: state.mid_of(&r.owner),
                    fingerprint: fingerprint(key),
                    customer_key: r.customer_key.clone(),
                    card: r.card,
                    card_type: profile.card_type.to_owned(),
                    owner_type: profile.owner_type.to_owned(),
                    masked_number: profile.masked_number(),
                    issued_at: kst(r.issued_at),
                    deleted: r.deleted_at.is_some(),
                    deleted_at: r.deleted_at.map(kst),
                    approved_charges: r.approved_charges,
                }
            })
            .collect();
        let payments = state
            .payments
            .iter()
            .map(|r| PaymentView {
                mid: state.mid_of(&r.owner),
                payment_key: r.payment.payment_key.clone(),
                order_id: r.payment.order_id.clone(),
                order_name: r.payment.order_name.clone(),
                customer_key: r.customer_key.clone(),
                billing_key_fingerprint: r.billing_key_fingerprint.clone(),
                total_amount: r.payment.total_amount,
                balance_amount: r.payment.balance_amount,
                status: r.payment.status.clone(),
                approved_at: r.payment.approved_at.clone(),
                cancels: r.payment.cancels.as_ref().map_or(0, Vec::len),
            })
            .collect();
        let charge_attempts = state
            .attempts
            .iter()
            .map(|a| ChargeAttemptView {
                mid: state.mid_of(&a.owner),
                order_id: a.order_id.clone(),
                customer_key: a.customer_key.clone(),
                billing_key_fingerprint: a.billing_key_fingerprint.clone(),
                amount: a.amount,
                outcome: a.outcome.clone(),
                at: kst(a.at),
            })
            .collect();
        let mut idempotency: Vec<(DateTime<Utc>, IdempotencyView)> = state
            .idempotency
            .records()
            .map(|(key, record)| {
                (
                    record.created_at,
                    IdempotencyView {
                        mid: record.mid.clone(),
                        method: key.method.clone(),
                        endpoint: record.endpoint,
                        idempotency_key: key.idempotency_key.clone(),
                        in_flight: matches!(record.state, RecordState::InFlight { .. }),
                        status: match &record.state {
                            RecordState::Done(response) => Some(response.status),
                            RecordState::InFlight { .. } => None,
                        },
                        created_at: kst(record.created_at),
                        expires_at: kst(record.created_at + crate::idempotency::retention()),
                        replays: record.replays,
                    },
                )
            })
            .collect();
        idempotency.sort_by_key(|(at, _)| *at);
        Snapshot {
            now: kst(now),
            clock_offset_seconds: state.clock_offset.num_seconds(),
            seed: state.faults.seed,
            merchants,
            billing_keys,
            payments,
            charge_attempts,
            idempotency: idempotency.into_iter().map(|(_, view)| view).collect(),
            counters: state.counters.clone(),
        }
    }

    // ----- request plumbing ----------------------------------------------------------------

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

    // ----- operations -------------------------------------------------------------------------

    /// `POST /v1/billing/authorizations/issue`
    pub(crate) fn issue(
        &self,
        caller: &Caller,
        auth_key: &str,
        customer_key: &str,
    ) -> Result<Billing, ApiError> {
        let mut state = self.lock();
        let now = state.now();
        let ttl = Duration::seconds(state.config.auth_key_ttl_seconds);
        let record = state
            .auth_keys
            .get(auth_key)
            .cloned()
            .ok_or_else(|| ApiError::of("NOT_FOUND_BILLING"))?;
        if record.used {
            return Err(ApiError::with_message(
                "INVALID_BILLING_AUTH",
                "이미 사용된 빌링 인증입니다.",
            ));
        }
        if now > record.created_at + ttl {
            return Err(ApiError::with_message(
                "INVALID_BILLING_AUTH",
                "만료된 빌링 인증입니다.",
            ));
        }
        if record.customer_key != customer_key {
            return Err(ApiError::of("NOT_MATCHES_CUSTOMER_KEY"));
        }
        let profile = record.card.profile();
        if let Some(code) = profile.registration_error {
            if let Some(entry) = state.auth_keys.get_mut(auth_key) {
                entry.used = true;
            }
            return Err(ApiError::of(code));
        }
        let billing_key = state.new_billing_key();
        if let Some(entry) = state.auth_keys.get_mut(auth_key) {
            entry.used = true;
        }
        state.billing_keys.insert(
            billing_key.clone(),
            BillingKeyRecord {
                owner: caller.secret_key.clone(),
                customer_key: customer_key.to_owned(),
                card: record.card,
                issued_at: now,
                deleted_at: None,
                approved_charges: 0,
            },
        );
        state.billing_key_order.push(billing_key.clone());
        state.counters.billing_keys_issued += 1;
        Ok(Billing {
            m_id: caller.mid.clone(),
            customer_key: customer_key.to_owned(),
            authenticated_at: kst(now),
            method: "카드".to_owned(),
            billing_key,
            card: BillingCard {
                issuer_code: profile.issuer_code.to_owned(),
                acquirer_code: profile.acquirer_code.to_owned(),
                number: profile.masked_number(),
                card_type: profile.card_type.to_owned(),
                owner_type: profile.owner_type.to_owned(),
            },
            card_company: profile.company.to_owned(),
            card_number: profile.masked_number(),
        })
    }

    /// `POST /v1/billing/{billingKey}`
    pub(crate) fn charge(
        &self,
        caller: &Caller,
        billing_key: &str,
        request: &ChargeRequest,
    ) -> Result<Payment, ApiError> {
        let mut state = self.lock();
        let now = state.now();
        let record = match state.billing_keys.get(billing_key) {
            Some(r) if r.owner == caller.secret_key && r.deleted_at.is_none() => r.clone(),
            _ => return Err(ApiError::of("INVALID_BILL_KEY_REQUEST")),
        };
        if record.customer_key != request.customer_key {
            return Err(ApiError::of("NOT_MATCHES_CUSTOMER_KEY"));
        }
        if state
            .order_index(&caller.secret_key, &request.order_id)
            .is_some()
        {
            return Err(ApiError::of("DUPLICATED_ORDER_ID"));
        }
        let profile = record.card.profile();
        let decline = state
            .take_decline(&request.customer_key)
            .or_else(|| match profile.charge {
                ChargeBehaviour::Approve => None,
                ChargeBehaviour::Decline(code) => Some(ApiError::of(code)),
                ChargeBehaviour::DeclineAfterFirst(code) => {
                    (record.approved_charges > 0).then(|| ApiError::of(code))
                }
            });
        if let Some(error) = decline {
            state.counters.declined_charges += 1;
            state.record_attempt(&caller.secret_key, billing_key, request, &error.code, now);
            return Err(error);
        }

        let payment_key = state.new_payment_key(now);
        let transaction_key = transaction_key();
        let (supplied_amount, vat) = vat_split(
            request.amount,
            request.tax_free_amount,
            request.tax_exemption_amount,
        );
        let payment = Payment {
            m_id: caller.mid.clone(),
            version: API_VERSION.to_owned(),
            payment_key: payment_key.clone(),
            status: "DONE".to_owned(),
            last_transaction_key: transaction_key.clone(),
            order_id: request.order_id.clone(),
            order_name: request.order_name.clone(),
            requested_at: kst(now),
            approved_at: Some(kst(now)),
            use_escrow: false,
            culture_expense: false,
            card: Some(PaymentCard {
                issuer_code: profile.issuer_code.to_owned(),
                acquirer_code: profile.acquirer_code.to_owned(),
                number: profile.masked_number(),
                installment_plan_months: request.installment_months,
                is_interest_free: false,
                interest_payer: None,
                approve_no: random_digits(8),
                use_card_point: false,
                card_type: profile.card_type.to_owned(),
                owner_type: profile.owner_type.to_owned(),
                acquire_status: "READY".to_owned(),
                amount: request.amount,
            }),
            virtual_account: None,
            transfer: None,
            mobile_phone: None,
            gift_certificate: None,
            cash_receipt: None,
            cash_receipts: None,
            discount: None,
            cancels: None,
            secret: None,
            kind: "BILLING".to_owned(),
            easy_pay: None,
            country: "KR".to_owned(),
            failure: None,
            is_partial_cancelable: request.tax_exemption_amount == 0,
            receipt: Some(Url {
                url: format!(
                    "https://dashboard-sandbox.tosspayments.com/receipt/redirection?transactionId={transaction_key}&ref=PX"
                ),
            }),
            checkout: Some(Url {
                url: format!("https://api.tosspayments.com/v1/payments/{payment_key}/checkout"),
            }),
            currency: "KRW".to_owned(),
            total_amount: request.amount,
            balance_amount: request.amount,
            supplied_amount,
            vat,
            tax_free_amount: request.tax_free_amount,
            tax_exemption_amount: request.tax_exemption_amount,
            metadata: None,
            method: Some("카드".to_owned()),
        };
        if let Some(entry) = state.billing_keys.get_mut(billing_key) {
            entry.approved_charges += 1;
        }
        state.payments.push(PaymentRecord {
            owner: caller.secret_key.clone(),
            customer_key: request.customer_key.clone(),
            billing_key_fingerprint: fingerprint(billing_key),
            payment: payment.clone(),
        });
        state.counters.done_charges += 1;
        state.counters.approved_amount += request.amount;
        state.record_attempt(&caller.secret_key, billing_key, request, "DONE", now);
        Ok(payment)
    }

    /// `GET /v1/payments/{paymentKey}`
    pub(crate) fn payment(&self, caller: &Caller, payment_key: &str) -> Result<Payment, ApiError> {
        let state = self.lock();
        state
            .payment_index(&caller.secret_key, payment_key)
            .and_then(|i| state.payments.get(i))
            .map(|r| r.payment.clone())
            .ok_or_else(|| ApiError::of("NOT_FOUND_PAYMENT"))
    }

    /// `GET /v1/payments/orders/{orderId}`
    pub(crate) fn payment_by_order_id(
        &self,
        caller: &Caller,
        order_id: &str,
    ) -> Result<Payment, ApiError> {
        let state = self.lock();
        state
            .order_index(&caller.secret_key, order_id)
            .and_then(|i| state.payments.get(i))
            .map(|r| r.payment.clone())
            .ok_or_else(|| ApiError::of("NOT_FOUND_PAYMENT"))
    }

    /// `POST /v1/payments/{paymentKey}/cancel`
    pub(crate) fn cancel(
        &self,
        caller: &Caller,
        payment_key: &str,
        request: &CancelRequest,
    ) -> Result<Payment, ApiError> {
        let mut state = self.lock();
        let now = state.now();
        let index = state
            .payment_index(&caller.secret_key, payment_key)
            .ok_or_else(|| ApiError::of("NOT_FOUND_PAYMENT"))?;
        let Some(record) = state.payments.get_mut(index) else {
            return Err(ApiError::of("NOT_FOUND_PAYMENT"));
        };
        let payment = &mut record.payment;
        if payment.status == "CANCELED" {
            return Err(ApiError::of("ALREADY_CANCELED_PAYMENT"));
        }
        let balance = payment.balance_amount;
        if let Some(refundable) = request.refundable_amount
            && refundable != balance
        {
            return Err(ApiError::of("NOT_MATCHES_REFUNDABLE_AMOUNT"));
        }
        let amount = request.cancel_amount.unwrap_or(balance);
        if amount <= 0 || amount > balance {
            return Err(ApiError::of("NOT_CANCELABLE_AMOUNT"));
        }
        if amount < balance && !payment.is_partial_cancelable {
            return Err(ApiError::of("NOT_ALLOWED_PARTIAL_REFUND"));
        }
        let remaining = balance - amount;
        let transaction_key = transaction_key();
        payment.cancels.get_or_insert_with(Vec::new).push(Cancel {
            transaction_key: transaction_key.clone(),
            cancel_reason: request.cancel_reason.clone(),
            tax_exemption_amount: 0,
            canceled_at: kst(now),
            transfer_discount_amount: 0,
            easy_pay_discount_amount: 0,
            receipt_key: None,
            cancel_amount: amount,
            tax_free_amount: 0,
            refundable_amount: remaining,
            card_discount_amount: 0,
            cancel_status: "DONE".to_owned(),
            cancel_request_id: None,
        });
        payment.balance_amount = remaining;
        let (supplied, vat) = vat_split(
            remaining,
            payment.tax_free_amount.min(remaining),
            payment.tax_exemption_amount.min(remaining),
        );
        payment.supplied_amount = supplied;
        payment.vat = vat;
        payment.last_transaction_key = transaction_key;
        payment.status = if remaining == 0 {
            "CANCELED".to_owned()
        } else {
            "PARTIAL_CANCELED".to_owned()
        };
        if remaining == 0
            && let Some(card) = payment.card.as_mut()
        {
            card.acquire_status = "CANCELED".to_owned();
        }
        let answer = payment.clone();
        state.counters.canceled_amount += amount;
        Ok(answer)
    }

    /// `DELETE /v1/billing/{billingKey}`
    pub(crate) fn delete_billing_key(
        &self,
        caller: &Caller,
        billing_key: &str,
    ) -> Result<(), ApiError> {
        let mut state = self.lock();
        let now = state.now();
        let record = match state.billing_keys.get_mut(billing_key) {
            Some(r) if r.owner == caller.secret_key => r,
            _ => return Err(ApiError::of("NOT_FOUND_BILLING")),
        };
        if record.deleted_at.is_some() {
            return Err(ApiError::of("ALREADY_REMOVED_BILLING_KEY"));
        }
        record.deleted_at = Some(now);
        state.counters.billing_keys_deleted += 1;
        Ok(())
    }
}

/// `customerKey`: letters, digits, `-_=.@`, 2..=`max` characters, never the SDK's guest key.
pub fn valid_customer_key(customer_key: &str, max: usize) -> bool {
    let len = customer_key.chars().count();
    (2..=max).contains(&len)
        && customer_key != "@@ANONYMOUS"
        && customer_key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '=' | '.' | '@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_in_korea_time_with_the_offset() {
        let at = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kst(at), "2026-01-01T09:00:00+09:00");
    }

    #[test]
    fn customer_keys_follow_the_toss_charset_and_length() {
        assert!(valid_customer_key("a1", 50));
        assert!(valid_customer_key("user-1_2=3.4@5", 50));
        assert!(!valid_customer_key("a", 50));
        assert!(!valid_customer_key("has space", 50));
        assert!(!valid_customer_key(&"a".repeat(51), 50));
        assert!(!valid_customer_key("@@ANONYMOUS", 50));
    }

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

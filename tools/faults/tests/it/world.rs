//! The test world: a fresh table, a sandbox, `Billing` in-process, log capture, and the
//! invariant checks every scenario ends with.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use billing::{Billing, Registration, RegistrationOutcome, Settings, Summary, SweepOptions};
use chrono::{DateTime, Duration, Utc};
use domain::{
    AttemptStatus, AuthKey, Checkout, CheckoutState, CustomerKey, DunningPolicy, Krw, Plan,
    Subscription,
};
use futures::StreamExt;
use secrecy::SecretString;
use toss_sandbox::{
    Endpoint, FaultAction, FaultConfig, FaultRule, RunningSandbox, SandboxConfig, Snapshot,
    TestCard,
};

pub const SECRET: &str = toss_sandbox::DOCS_SECRET_KEY;
pub const AMOUNT: u64 = 3900;
pub const CREDITS: u64 = 30;

/// Every line the in-process code logged at debug, for the secret scan.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_ansi(false)
            .with_writer(move || Capture(writer.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn settings() -> Settings {
    Settings {
        plan: Plan::new(Krw::new(AMOUNT), "Saju맛피아 Pro 월 구독", CREDITS as u32).unwrap(),
        dunning: DunningPolicy::default(),
        lease: Duration::seconds(60),
        incomplete_expiry: Duration::hours(24),
        withdrawal_days: 7,
    }
}

pub fn client(base_url: &str, secret: &str, charge_timeout_ms: u64) -> toss::Client {
    let mut config = toss::Config::new(
        SecretString::from(secret.to_owned()),
        base_url.parse().unwrap(),
    );
    config.charge_timeout = std::time::Duration::from_millis(charge_timeout_ms);
    config.request_timeout = std::time::Duration::from_secs(5);
    toss::Client::new(config).unwrap()
}

pub fn rule(commit: bool, probability: f64, action: FaultAction) -> FaultRule {
    FaultRule {
        endpoint: Some(Endpoint::Charge),
        probability,
        times: None,
        commit,
        customer_key: None,
        order_id: None,
        action,
    }
}

pub fn error(status: u16, code: &str) -> FaultAction {
    FaultAction::Error {
        status: Some(status),
        code: code.into(),
        message: None,
    }
}

/// Every Toss fault of the issue, as (name, commit, action).
pub fn toss_faults() -> Vec<(&'static str, bool, FaultAction)> {
    vec![
        (
            "500 without a charge",
            false,
            error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
        ),
        (
            "500 after charging",
            true,
            error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
        ),
        (
            "connection dropped after charging",
            true,
            FaultAction::DropConnection,
        ),
        (
            "connection dropped before charging",
            false,
            FaultAction::DropConnection,
        ),
        (
            "409 IDEMPOTENT_REQUEST_PROCESSING",
            false,
            error(409, "IDEMPOTENT_REQUEST_PROCESSING"),
        ),
        (
            "DUPLICATED_ORDER_ID after charging",
            true,
            error(400, "DUPLICATED_ORDER_ID"),
        ),
        (
            "malformed JSON after charging",
            true,
            FaultAction::MalformedBody {
                status: Some(200),
                body: None,
            },
        ),
        (
            "malformed JSON without a charge",
            false,
            FaultAction::MalformedBody {
                status: Some(500),
                body: Some("<html>bad gateway".into()),
            },
        ),
        (
            "truncated JSON after charging",
            true,
            FaultAction::TruncateBody,
        ),
        ("429", false, error(429, "TOO_MANY_REQUESTS")),
        (
            "unknown error code",
            false,
            error(400, "SOMETHING_TOSS_ADDED_LATER"),
        ),
        (
            "unknown error code after charging",
            true,
            error(500, "SOMETHING_TOSS_ADDED_LATER"),
        ),
    ]
}

pub struct World {
    pub sandbox: RunningSandbox,
    pub billing: Billing,
    pub store: store::Store,
    pub endpoint: String,
    pub table: String,
    /// Every customer subscribed, with the authKey its redirect carried.
    pub customers: Mutex<Vec<(String, String)>>,
}

impl World {
    pub async fn new() -> Self {
        Self::with(SandboxConfig::default().with_seed(7), 5_000).await
    }

    pub async fn with(sandbox: SandboxConfig, charge_timeout_ms: u64) -> Self {
        log_buffer();
        let (dynamodb, table) = testkit::dynamo::fresh_table().await.unwrap();
        let endpoint = testkit::dynamo::endpoint().await.unwrap();
        let sandbox = toss_sandbox::spawn(sandbox).await.unwrap();
        let store = store::Store::new(dynamodb, table.clone());
        let billing = Billing::new(
            client(&sandbox.base_url(), SECRET, charge_timeout_ms),
            store.clone(),
            settings(),
        );
        Self {
            sandbox,
            billing,
            store,
            endpoint,
            table,
            customers: Mutex::new(Vec::new()),
        }
    }

    pub async fn registration(&self, customer: &str, card: TestCard) -> Registration {
        let auth_key = self
            .sandbox
            .sandbox()
            .mint_auth_key(customer, card)
            .unwrap();
        let customer_key = CustomerKey::parse(customer).unwrap();
        Registration {
            state: open_checkout(&self.store, &customer_key).await,
            customer_key,
            auth_key: AuthKey::parse(auth_key).unwrap(),
            customer_email: Some(domain::Email::parse("fault@example.com").unwrap()),
            customer_name: None,
        }
    }

    /// Subscribes `n` customers named `<prefix>_<i>` (16 at a time), each charged its first month.
    pub async fn subscribe_many(&self, prefix: &str, n: usize, now: DateTime<Utc>) -> Vec<String> {
        let names: Vec<String> = (0..n).map(|i| format!("{prefix}_{i:04}")).collect();
        futures::stream::iter(names.clone())
            .map(|name| async move {
                let registration = self.registration(&name, TestCard::Ok).await;
                let outcome = self
                    .billing
                    .register_card(&registration, now)
                    .await
                    .unwrap();
                assert!(
                    matches!(outcome, RegistrationOutcome::Subscribed { .. }),
                    "{outcome:?}"
                );
                self.customers
                    .lock()
                    .unwrap()
                    .push((name, registration.auth_key.expose_secret().to_owned()));
            })
            .buffer_unordered(16)
            .collect::<()>()
            .await;
        names
    }

    pub async fn subscription(&self, customer: &str) -> Subscription {
        self.store
            .customer_subscription(&CustomerKey::parse(customer).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    pub async fn sweep(&self, as_of: DateTime<Utc>) -> Summary {
        self.billing.sweep(&options(as_of)).await.unwrap()
    }

    pub fn snapshot(&self) -> Snapshot {
        self.sandbox.sandbox().snapshot()
    }

    /// Clears every fault and sweeps (each time past the longest look-up backoff) until no
    /// outcome is left unknown; returns the charges those sweeps made.
    pub async fn settle(&self, mut as_of: DateTime<Utc>) -> u64 {
        self.sandbox.sandbox().set_faults(FaultConfig::default());
        let mut charged = 0;
        for _ in 0..4 {
            as_of += Duration::hours(7);
            let s = self.sweep(as_of).await;
            charged += s.charged;
            assert_eq!(s.declined, 0, "{s:?}");
            if s.unknown_outcome == 0 && s.errors == 0 {
                return charged;
            }
        }
        panic!("outcomes still unknown after four settling sweeps");
    }

    /// Invariants 1–4 over every subscription, from Toss's record and from the table.
    /// `strict`: nothing may be in flight (every Toss payment has its DONE ledger entry).
    /// Returns the periods paid per customer.
    pub async fn check(&self, strict: bool) -> BTreeMap<String, u32> {
        let snapshot = self.snapshot();
        let customers: Vec<String> = self
            .customers
            .lock()
            .unwrap()
            .iter()
            .map(|(c, _)| c.clone())
            .collect();
        let mut toss_done: BTreeMap<&str, Vec<&toss_sandbox::snapshot::PaymentView>> =
            BTreeMap::new();
        for p in snapshot.payments.iter().filter(|p| p.status == "DONE") {
            toss_done
                .entry(p.customer_key.as_str())
                .or_default()
                .push(p);
        }
        let known: BTreeSet<&str> = customers.iter().map(String::as_str).collect();
        for customer in toss_done.keys() {
            assert!(
                known.contains(customer),
                "Toss charged a stranger {customer}"
            );
        }
        let mut paid = BTreeMap::new();
        for customer in &customers {
            let sub = self.subscription(customer).await;
            let ledger = self.store.ledger(sub.id()).await.unwrap();
            let payments = toss_done
                .get(customer.as_str())
                .cloned()
                .unwrap_or_default();
            // Invariant 3: every Toss payment is in the ledger under its order id (nothing lost),
            // never recorded as failed; at most one per period (invariant 1).
            let mut periods = BTreeSet::new();
            for p in &payments {
                let entry = ledger
                    .iter()
                    .find(|a| a.order_id().as_str() == p.order_id)
                    .unwrap_or_else(|| {
                        panic!("{customer}: Toss payment {} not in the ledger", p.order_id)
                    });
                assert!(
                    !matches!(
                        entry.status(),
                        AttemptStatus::Declined | AttemptStatus::NotCharged
                    ),
                    "{customer}: a charged order is recorded as failed: {entry:?}"
                );
                assert!(
                    periods.insert(entry.period()),
                    "{customer}: two Toss charges for period {}",
                    entry.period()
                );
                // Invariant 4: the plan's amount.
                assert_eq!(p.total_amount as u64, AMOUNT, "{customer}");
                if strict {
                    assert_eq!(entry.status(), AttemptStatus::Done, "{customer}: {entry:?}");
                }
            }
            // Invariants 2 and 3: every DONE ledger entry is a Toss payment with that key and amount.
            let done: Vec<_> = ledger
                .iter()
                .filter(|a| a.status() == AttemptStatus::Done)
                .collect();
            for a in &done {
                let p = payments
                    .iter()
                    .find(|p| p.order_id == a.order_id().as_str())
                    .unwrap_or_else(|| {
                        panic!("{customer}: DONE in the ledger, not at Toss: {a:?}")
                    });
                assert_eq!(
                    Some(p.payment_key.as_str()),
                    a.payment_key().map(|k| k.as_str())
                );
                assert_eq!(a.amount().won(), AMOUNT);
            }
            // Invariant 2: periods and credits only for DONE charges.
            assert_eq!(
                sub.next_period() as usize,
                done.len(),
                "{customer}: periods granted vs DONE charges"
            );
            let entries = self.store.credit_entries(sub.id()).await.unwrap();
            let granted: u64 = entries
                .iter()
                .filter(|e| e.change == domain::CreditChange::Grant)
                .map(|e| e.amount)
                .sum();
            assert_eq!(
                granted,
                CREDITS * done.len() as u64,
                "{customer}: credits granted"
            );
            assert_eq!(
                domain::replay_balance(&entries),
                Some(sub.credits()),
                "{customer}: credit entries vs balance"
            );
            assert!(
                sub.credits() <= CREDITS,
                "{customer}: more than one allowance"
            );
            if strict {
                assert_eq!(payments.len(), done.len(), "{customer}: Toss vs ledger");
                assert!(
                    ledger.iter().all(|a| a.status().is_final()),
                    "{customer}: an attempt left open: {ledger:#?}"
                );
            }
            paid.insert(customer.clone(), sub.next_period());
        }
        paid
    }

    /// Secrets that must never show up anywhere: the secret key, every billing key, every
    /// authKey, and the card numbers the sandbox's cards carry.
    pub async fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![SECRET.to_owned()];
        let customers = self.customers.lock().unwrap().clone();
        for (customer, auth_key) in customers {
            secrets.push(auth_key);
            if let Some(key) = self.subscription(&customer).await.billing_key() {
                secrets.push(key.expose_secret().to_owned());
            }
        }
        secrets
    }

    /// Asserts that none of the texts (logs, responses, URLs) holds a secret or a card number.
    pub async fn assert_no_secrets_in(&self, texts: &[&str]) {
        let secrets = self.secrets().await;
        for text in texts {
            assert_no_secret(text, &secrets);
        }
    }
}

pub fn assert_no_secret(text: &str, secrets: &[String]) {
    for s in secrets {
        if let Some(at) = text.find(s.as_str()) {
            let from = text[..at]
                .char_indices()
                .rev()
                .nth(300)
                .map_or(0, |(i, _)| i);
            panic!(
                "a secret ({}…) leaked after: {}",
                &s[..6.min(s.len())],
                &text[from..at]
            );
        }
    }
    if let Some(at) = card_number_at(text) {
        let from = text[..at]
            .char_indices()
            .rev()
            .nth(200)
            .map_or(0, |(i, _)| i);
        panic!(
            "an unmasked 16-digit card number leaked, in: {}",
            &text[from..(at + 40).min(text.len())]
        );
    }
}

/// Where the text holds a card number: a standalone token of 16 digits (or four groups of four
/// separated by `-` or a space) that is one of the sandbox's test cards or passes the Luhn check
/// every real card number passes (so hex ids that happen to be all digits are not reported).
/// Returns the byte offset of its start.
pub fn card_number_at(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let alone = |start: usize, len: usize| {
        let before = start.checked_sub(1).and_then(|i| bytes.get(i));
        let after = bytes.get(start + len);
        !before.is_some_and(u8::is_ascii_alphanumeric)
            && !after.is_some_and(u8::is_ascii_alphanumeric)
    };
    let is_card = |digits: Vec<u8>| {
        let number = String::from_utf8(digits).unwrap_or_default();
        toss_sandbox::TestCard::ALL
            .iter()
            .any(|c| c.profile().number == number)
            || luhn(&number)
    };
    let plain = (0..bytes.len().saturating_sub(15)).find(|&i| {
        bytes[i..i + 16].iter().all(u8::is_ascii_digit)
            && alone(i, 16)
            && is_card(bytes[i..i + 16].to_vec())
    });
    let grouped = (0..bytes.len().saturating_sub(18)).find(|&i| {
        bytes[i..i + 19].iter().enumerate().all(|(j, b)| {
            if j % 5 == 4 {
                *b == b'-' || *b == b' '
            } else {
                b.is_ascii_digit()
            }
        }) && alone(i, 19)
            && is_card(
                bytes[i..i + 19]
                    .iter()
                    .copied()
                    .filter(u8::is_ascii_digit)
                    .collect(),
            )
    });
    plain.or(grouped)
}

fn luhn(number: &str) -> bool {
    let sum: u32 = number
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[test]
fn card_numbers_are_found_alone_or_grouped_but_not_inside_ids() {
    assert_eq!(card_number_at("card 4330123412341234 ok"), Some(5));
    assert_eq!(card_number_at("n=\"4330-1234-1234-1234\""), Some(3));
    assert_eq!(card_number_at("masked 43301234****1234"), None);
    assert_eq!(card_number_at("request_id=d0f04330123412341234ab"), None);
    assert_eq!(card_number_at("nanos 17640000000000000001"), None);
    assert_eq!(card_number_at("Parent=0711723168768341;Sampled=1"), None);
    assert_eq!(
        card_number_at("visa 4111111111111111."),
        Some(5),
        "Luhn-valid"
    );
}

pub fn options(as_of: DateTime<Utc>) -> SweepOptions {
    SweepOptions {
        as_of,
        concurrency: 8,
        stop_claiming_at: None,
        run_id: format!("fault-{}", ulid::Ulid::new()),
        page_size: 50,
    }
}

/// A month after `start`: every subscription made at `start` is due for period 1.
pub fn next_month(start: DateTime<Utc>) -> DateTime<Utc> {
    start + Duration::days(32)
}

/// A checkout for `customer` that stays open for the whole test (tests run on simulated
/// dates), stored as `POST /v1/checkout` would store it; returns its state.
pub async fn open_checkout(store: &store::Store, customer: &CustomerKey) -> CheckoutState {
    // Distinct per checkout: a ULID's 16 bytes, twice (a checkout state needs 32).
    let id = ulid::Ulid::new().to_bytes();
    let mut entropy = [0u8; 32];
    entropy[..16].copy_from_slice(&id);
    entropy[16..].copy_from_slice(&ulid::Ulid::new().to_bytes());
    let state = CheckoutState::from_entropy(entropy);
    let checkout = Checkout {
        state_hash: state.hash(),
        user_id: format!("user-of-{customer}"),
        customer_key: customer.clone(),
        created_at: DateTime::<Utc>::UNIX_EPOCH,
        expires_at: DateTime::parse_from_rfc3339("2100-01-01T00:00:00+09:00")
            .unwrap()
            .with_timezone(&Utc),
        auth_key_hash: None,
    };
    store.create_checkout(&checkout).await.unwrap();
    state
}

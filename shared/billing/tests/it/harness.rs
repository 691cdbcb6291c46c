use billing::{Billing, Registration, RegistrationOutcome, Settings, Summary, SweepOptions};
use chrono::{DateTime, Duration, Utc};
use domain::{
    AuthKey, ChargeAttempt, Checkout, CheckoutState, CustomerKey, DunningPolicy, Krw, Plan,
    Subscription,
};
use secrecy::SecretString;
use toss_sandbox::{RunningSandbox, SandboxConfig, Snapshot, TestCard};

pub const SECRET: &str = toss_sandbox::DOCS_SECRET_KEY;

pub struct World {
    pub sandbox: RunningSandbox,
    pub billing: Billing,
    pub store: store::Store,
    /// The raw table, for planting what the store itself would never write.
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub table: String,
}

pub fn kst(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A checkout for `customer` that stays open for the whole test (tests run on simulated
/// dates), stored as `POST /v1/checkout` would store it; returns its state.
pub async fn open_checkout(store: &store::Store, customer: &CustomerKey) -> CheckoutState {
    let state = CheckoutState::from_entropy(rand::random());
    let checkout = Checkout {
        state_hash: state.hash(),
        user_id: format!("user-of-{customer}"),
        customer_key: customer.clone(),
        created_at: DateTime::<Utc>::UNIX_EPOCH,
        expires_at: kst("2100-01-01T00:00:00+09:00"),
        auth_key_hash: None,
    };
    store.create_checkout(&checkout).await.unwrap();
    state
}

pub fn settings() -> Settings {
    Settings {
        plan: Plan::new(Krw::new(3900), "Saju맛피아 Pro 월 구독", 30).unwrap(),
        dunning: DunningPolicy::default(),
        lease: Duration::seconds(60),
        incomplete_expiry: Duration::hours(24),
        withdrawal_days: 7,
    }
}

pub fn client_for(sandbox: &RunningSandbox, secret: &str) -> toss::Client {
    let mut config = toss::Config::new(
        SecretString::from(secret.to_owned()),
        sandbox.base_url().parse().unwrap(),
    );
    config.charge_timeout = std::time::Duration::from_secs(5);
    config.request_timeout = std::time::Duration::from_secs(5);
    toss::Client::new(config).unwrap()
}

impl World {
    pub async fn new() -> Self {
        Self::with(SandboxConfig::default(), settings()).await
    }

    pub async fn with(sandbox: SandboxConfig, settings: Settings) -> Self {
        let (dynamodb, table) = testkit::dynamo::fresh_table().await.unwrap();
        let sandbox = toss_sandbox::spawn(sandbox).await.unwrap();
        let store = store::Store::new(dynamodb.clone(), table.clone());
        let billing = Billing::new(client_for(&sandbox, SECRET), store.clone(), settings);
        Self {
            sandbox,
            billing,
            store,
            dynamodb,
            table,
        }
    }

    /// The same table and settings, but another secret key.
    pub fn billing_with_key(&self, secret: &str) -> Billing {
        Billing::new(
            client_for(&self.sandbox, secret),
            self.store.clone(),
            self.billing.settings().clone(),
        )
    }

    /// What the browser brings back from the sandbox's card window for this customer and card.
    pub async fn redirect(&self, customer: &str, card: TestCard) -> Registration {
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
            customer_email: None,
            customer_name: None,
        }
    }

    pub async fn subscribe(
        &self,
        customer: &str,
        card: TestCard,
        now: DateTime<Utc>,
    ) -> Subscription {
        let outcome = self
            .billing
            .register_card(&self.redirect(customer, card).await, now)
            .await
            .unwrap();
        assert!(
            matches!(outcome, RegistrationOutcome::Subscribed { .. }),
            "{outcome:?}"
        );
        self.subscription(customer).await
    }

    pub async fn subscription(&self, customer: &str) -> Subscription {
        self.store
            .customer_subscription(&CustomerKey::parse(customer).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    pub async fn ledger(&self, customer: &str) -> Vec<ChargeAttempt> {
        let sub = self.subscription(customer).await;
        self.store.ledger(sub.id()).await.unwrap()
    }

    pub async fn sweep(&self, as_of: DateTime<Utc>) -> Summary {
        self.billing.sweep(&options(as_of)).await.unwrap()
    }

    pub fn snapshot(&self) -> Snapshot {
        self.sandbox.sandbox().snapshot()
    }

    /// Billing keys of this customer that still exist at Toss.
    pub fn live_billing_keys(&self, customer: &str) -> usize {
        self.snapshot()
            .billing_keys
            .iter()
            .filter(|k| k.customer_key == customer && !k.deleted)
            .count()
    }

    /// Payments Toss approved for this customer (status DONE).
    pub fn done_payments(&self, customer: &str) -> usize {
        self.snapshot()
            .payments
            .iter()
            .filter(|p| p.customer_key == customer && p.status == "DONE")
            .count()
    }

    /// Invariants 1–3 for one customer: at most one DONE charge per period, a DONE ledger
    /// entry for each Toss payment and for every granted period, and credits matching.
    pub async fn assert_ledger_matches_toss(&self, customer: &str) {
        let sub = self.subscription(customer).await;
        let ledger = self.store.ledger(sub.id()).await.unwrap();
        let snapshot = self.snapshot();
        let done: Vec<_> = ledger
            .iter()
            .filter(|a| a.status() == domain::AttemptStatus::Done)
            .collect();
        let mut periods: Vec<u32> = done.iter().map(|a| a.period()).collect();
        periods.dedup();
        assert_eq!(
            periods.len(),
            done.len(),
            "two DONE charges for one period: {ledger:#?}"
        );
        let toss_done: Vec<_> = snapshot
            .payments
            .iter()
            .filter(|p| p.customer_key == customer && p.status == "DONE")
            .collect();
        assert_eq!(
            toss_done.len(),
            done.len(),
            "Toss and the ledger disagree: {toss_done:#?} vs {done:#?}"
        );
        for a in &done {
            let p = snapshot
                .payment_by_order_id(a.order_id().as_str())
                .expect("ledger DONE without a Toss payment");
            assert_eq!(p.status, "DONE");
            assert_eq!(p.total_amount as u64, a.amount().won());
            assert_eq!(
                Some(p.payment_key.as_str()),
                a.payment_key().map(|k| k.as_str())
            );
        }
        assert_eq!(
            u64::from(sub.next_period()),
            done.len() as u64,
            "periods granted without a DONE charge"
        );
        // The credits ledger: one grant of the allowance per DONE charge, and the entries add
        // up to the balance (which never exceeds one allowance without rollover).
        let entries = self.store.credit_entries(sub.id()).await.unwrap();
        let granted: u64 = entries
            .iter()
            .filter(|e| e.change == domain::CreditChange::Grant)
            .map(|e| e.amount)
            .sum();
        assert_eq!(
            granted,
            30 * done.len() as u64,
            "credits without a DONE charge"
        );
        assert_eq!(
            domain::replay_balance(&entries),
            Some(sub.credits()),
            "the credit entries do not add up to the balance: {entries:#?}"
        );
        assert!(
            sub.credits() <= 30,
            "more than one allowance: {}",
            sub.credits()
        );
    }
}

pub fn options(as_of: DateTime<Utc>) -> SweepOptions {
    SweepOptions {
        as_of,
        concurrency: 8,
        stop_claiming_at: None,
        run_id: format!("test-{}", ulid::Ulid::new()),
        page_size: 25,
    }
}

/// An operator's refund of `attempt` (`None`: everything left), with the rule's policy.
pub fn operator_refund(attempt: &ChargeAttempt, amount: Option<u64>) -> billing::RefundRequest {
    billing::RefundRequest {
        order_id: attempt.order_id().clone(),
        amount: amount.map(Krw::new),
        reason: "고객 요청".into(),
        by: domain::RefundBy::Operator {
            name: "jisoo".into(),
        },
        end_subscription: None,
        take_back_credits: None,
        request_id: None,
    }
}

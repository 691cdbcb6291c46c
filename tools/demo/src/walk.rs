//! `demo walk`: the scripted timeline. Every step is checked like a test; the first surprise
//! stops the walk with a non-zero exit.
//!
//! Each customer signs in with the local issuer (a session token for `user_demo_<name>`, as
//! Clerk's `getToken()` gives the app), starts a checkout with `POST /v1/checkout`, and opens the
//! sandbox's card window with the customer key and URLs it answered. The customer keys are the
//! backend's random ones, learned from the checkout and kept per customer here. The app's other
//! routes (`/v1/subscription`, `/v1/credits/consume`, cancel, resume, `/v1/payments`) are called
//! as the Saju app would call them, with a fresh token each time.
//!
//! The test clock: the sandbox clock is moved to each moment before acting (Toss's `approvedAt`
//! comes from it, and the first one is the subscription's anchor), and each renewal run is an
//! EventBridge event whose `time` is 09:00 KST (00:00 UTC) of the day, as the daily schedule
//! would send it.

mod scenes;

use std::collections::HashMap;

use anyhow::{Context, bail, ensure};
use auth_issuer::TokenRequest;
use chrono::{DateTime, Utc};
use domain::{AttemptKind, AttemptStatus, ChargeAttempt, CustomerKey, Status, Subscription};
use reqwest::Method;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::Value;
use toss_sandbox::Snapshot;

use crate::cli::Args;
use crate::config::{CLIENT_KEY, DUNNING_RETRY_DAYS, PLAN_AMOUNT, PLAN_CREDITS};
use crate::fmt::{columns, kst, kst_at, kst_day, pad, rpad, won};
use crate::stack::Stack;

/// A signed-in user of the app. The customer key Toss knows them by is the backend's, learned
/// from their first checkout ([`Walk::keys`]).
#[derive(Debug, Clone, Copy)]
struct Customer {
    name: &'static str,
    /// The sign-in provider's user id (the token's `sub`).
    user_id: &'static str,
}

const ALICE: Customer = Customer {
    name: "alice",
    user_id: "user_demo_alice",
};
const BOB: Customer = Customer {
    name: "bob",
    user_id: "user_demo_bob",
};
const CAROL: Customer = Customer {
    name: "carol",
    user_id: "user_demo_carol",
};
const DAVE: Customer = Customer {
    name: "dave",
    user_id: "user_demo_dave",
};
const ERIN: Customer = Customer {
    name: "erin",
    user_id: "user_demo_erin",
};

/// What `POST /v1/checkout` answered: what the front end hands to the card window.
#[derive(Debug, Clone)]
struct Checkout {
    customer_key: String,
    success_url: String,
    fail_url: String,
}

/// An answer of the app API: its status and JSON body.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    json: Value,
}

impl Answer {
    fn error_code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }

    fn credits(&self) -> Option<u64> {
        self.json["credits"].as_u64()
    }
}

/// Column widths of the timeline: when, who, what, order id, amount, result (Toss's or the
/// app API's), state, credits.
const WIDTHS: [usize; 8] = [25, 5, 35, 30, 8, 26, 10, 7];

pub(crate) async fn run(args: &Args) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let stack = Stack::start(args).await?;
    let mut walk = Walk {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .context("build the HTTP client")?,
        stack: &stack,
        printed: HashMap::new(),
        keys: HashMap::new(),
    };
    walk.intro();
    walk.script().await?;
    println!(
        "\nEvery step ended as expected ({} s). Everything started for the demo is being stopped.",
        started.elapsed().as_secs()
    );
    Ok(())
}

struct Walk<'a> {
    stack: &'a Stack,
    http: reqwest::Client,
    /// Ledger entries already shown, per customer.
    printed: HashMap<&'static str, usize>,
    /// Each customer's key, as the backend's checkout answered it.
    keys: HashMap<&'static str, CustomerKey>,
}

impl Walk<'_> {
    fn intro(&self) {
        let urls = self.stack.urls();
        println!();
        println!(
            "Toss billing-key subscriptions, locally: Pro plan {}/month, {} credits per paid month, retries {} days after a declined renewal.",
            won(PLAN_AMOUNT),
            PLAN_CREDITS,
            DUNNING_RETRY_DAYS.map(|d| format!("+{d}")).join(", ")
        );
        println!(
            "  DynamoDB   {}  table {} (created from template.yaml)",
            urls.dynamodb, urls.table
        );
        println!(
            "  Toss       {}  (the sandbox; its clock is the test clock)",
            urls.sandbox
        );
        println!(
            "  functions  {}  (cargo lambda watch: billing-api, charge-subscriptions; logs {})",
            urls.lambda, urls.function_logs
        );
        println!(
            "  sign-in    {}  (the local OIDC issuer; billing-api verifies its tokens against its JWKS)",
            self.stack.issuer.issuer_url()
        );
        println!(
            "  customers  alice = {}, bob = {}, carol = {} (user ids; each checkout answers a random customer key)",
            ALICE.user_id, BOB.user_id, CAROL.user_id
        );
        println!();
        let header = [
            "when (KST)",
            "who",
            "what",
            "Toss order id",
            "amount",
            "result",
            "state",
            "credits",
        ];
        println!("{}", line(&header.map(str::to_owned)));
        println!("{}", line(&WIDTHS.map(|w| "─".repeat(w))));
    }

    /// A fresh session token for the customer, as the app's `getToken()` would give.
    fn token(&self, who: Customer) -> anyhow::Result<String> {
        self.stack
            .issuer
            .issuer()
            .mint(&TokenRequest::for_user(who.user_id))
            .with_context(|| format!("mint a session token for {}", who.name))
    }

    /// One call of the app API on billing-api as `who` (bearer token; never printed).
    async fn api(
        &self,
        who: Customer,
        method: Method,
        path: &str,
        idempotency_key: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<Answer> {
        let url = format!("{}{path}", self.stack.urls().billing_api);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(self.token(who)?);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path} as {}", who.name))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .with_context(|| format!("read the answer to {method} {path}"))?;
        let json = serde_json::from_str(&text).with_context(|| {
            format!(
                "{method} {path} as {} answered {status} with no JSON: {text}\n(function logs: {})",
                who.name,
                self.stack.urls().function_logs
            )
        })?;
        Ok(Answer { status, json })
    }

    /// `POST /v1/checkout` as `who`: the customer key (the same on every checkout of one user)
    /// and the success and fail URLs carrying the checkout's state.
    async fn checkout(&mut self, who: Customer) -> anyhow::Result<Checkout> {
        let answer = self
            .api(who, Method::POST, "/v1/checkout", None, None)
            .await?;
        ensure!(
            answer.status == 201,
            "POST /v1/checkout for {} answered {}: {}",
            who.name,
            answer.status,
            answer.json
        );
        let field = |name: &str| {
            answer.json[name]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("the checkout answer has no {name}"))
        };
        let checkout = Checkout {
            customer_key: field("customerKey")?,
            success_url: field("successUrl")?,
            fail_url: field("failUrl")?,
        };
        let api = self.stack.urls().billing_api;
        for (url, route) in [
            (&checkout.success_url, "/billing/success?state="),
            (&checkout.fail_url, "/billing/fail?state="),
        ] {
            ensure!(
                url.starts_with(&format!("{api}{route}")),
                "the checkout's URLs should be billing-api's {route}…, got {}",
                redacted(url)
            );
        }
        let key = CustomerKey::parse(&checkout.customer_key)
            .context("the checkout's customer key does not fit Toss's rules")?;
        ensure!(
            !checkout.customer_key.contains(who.user_id),
            "the customer key must not be derived from the user id"
        );
        if let Some(known) = self.keys.get(who.name) {
            ensure!(
                known == &key,
                "{}'s second checkout answered another customer key",
                who.name
            );
        }
        self.keys.insert(who.name, key);
        Ok(checkout)
    }

    /// The customer's key, known since their first checkout.
    fn key(&self, who: Customer) -> anyhow::Result<&CustomerKey> {
        self.keys
            .get(who.name)
            .with_context(|| format!("{} has not checked out yet", who.name))
    }

    /// What the app and the browser do: a checkout, the card window (the sandbox page, submitted
    /// with `card`) → billing-api's redirect → the app. Returns where the customer lands.
    async fn register(&mut self, who: Customer, card: &str) -> anyhow::Result<String> {
        let checkout = self.checkout(who).await?;
        let urls = self.stack.urls();
        let page = url::Url::parse_with_params(
            &format!("{}/billing-auth/submit", urls.sandbox),
            [
                ("clientKey", CLIENT_KEY),
                ("customerKey", checkout.customer_key.as_str()),
                ("successUrl", &checkout.success_url),
                ("failUrl", &checkout.fail_url),
                ("card", card),
            ],
        )?;
        let to_billing_api = self.redirect(page.as_str(), who).await?;
        ensure!(
            to_billing_api.starts_with(&urls.billing_api),
            "the card window should send {} to billing-api, sent to {}",
            who.name,
            redacted(&to_billing_api)
        );
        let landing = self.redirect(&to_billing_api, who).await?;
        // The app page the customer sees (signed in: the app's session cookie).
        let response = self
            .http
            .get(&landing)
            .header(COOKIE, crate::app::session_cookie(who.user_id))
            .send()
            .await
            .with_context(|| format!("GET {}", redacted(&landing)))?;
        ensure!(
            response.status().is_success(),
            "the app answered {} for {}",
            response.status(),
            redacted(&landing)
        );
        Ok(landing)
    }

    async fn redirect(&self, url: &str, who: Customer) -> anyhow::Result<String> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .with_context(|| format!("GET {}", redacted(url)))?;
        if response.status().as_u16() != 302 {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            bail!(
                "expected a 302 for {}'s registration at {}, got {status}: {body}\n(function logs: {})",
                who.name,
                redacted(url),
                self.stack.urls().function_logs
            );
        }
        response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .context("a 302 without Location")
    }

    fn set_clock(&self, at: DateTime<Utc>) {
        self.stack
            .sandbox
            .sandbox()
            .set_clock_offset(at - Utc::now());
    }

    fn snapshot(&self) -> Snapshot {
        self.stack.sandbox.sandbox().snapshot()
    }

    async fn subscription(&self, who: Customer) -> anyhow::Result<Option<Subscription>> {
        match self.keys.get(who.name) {
            Some(key) => Ok(self.stack.store.customer_subscription(key).await?),
            None => Ok(None),
        }
    }

    async fn current(&self, who: Customer) -> anyhow::Result<Subscription> {
        self.subscription(who)
            .await?
            .with_context(|| format!("{} has no subscription in the table", who.name))
    }

    /// Prints the customer's ledger entries not shown yet; returns the subscription and ledger.
    async fn show(
        &mut self,
        who: Customer,
        at: DateTime<Utc>,
        first_row: &str,
    ) -> anyhow::Result<(Subscription, Vec<ChargeAttempt>)> {
        let sub = self.current(who).await?;
        let ledger = self.stack.store.ledger(sub.id()).await?;
        if !first_row.is_empty() {
            self.row(
                at,
                who,
                first_row,
                "-",
                "-",
                "billing key issued",
                Status::Incomplete.as_str(),
                "0",
            );
        }
        let shown = self.printed.entry(who.name).or_insert(0);
        let new: Vec<ChargeAttempt> = ledger.iter().skip(*shown).cloned().collect();
        *shown = ledger.len();
        for entry in &new {
            let what = match entry.kind() {
                AttemptKind::First => format!("first charge, month {}", entry.period() + 1),
                AttemptKind::Renewal => format!("renewal, month {}", entry.period() + 1),
                AttemptKind::Retry => format!(
                    "retry {} of month {}",
                    entry.attempt().saturating_sub(1),
                    entry.period() + 1
                ),
                AttemptKind::CardUpdate => format!("new card charge, month {}", entry.period() + 1),
            };
            let result = match entry.status() {
                AttemptStatus::Done => "DONE".to_owned(),
                AttemptStatus::Declined => entry.error_code().unwrap_or("DECLINED").to_owned(),
                other => other.as_str().to_owned(),
            };
            self.row(
                entry.approved_at().unwrap_or(entry.updated_at()),
                who,
                &what,
                entry.order_id().as_str(),
                &won(entry.amount().won()),
                &result,
                sub.status().as_str(),
                &sub.credits().to_string(),
            );
        }
        if !new.is_empty() {
            let next = match sub.next_charge_at() {
                Some(next) => format!("next charge {}", kst_day(next)),
                None => "nothing scheduled".to_owned(),
            };
            note(&format!(
                "{}: {}, {} credits, {}",
                who.name,
                sub.status().as_str(),
                sub.credits(),
                next
            ));
        }
        Ok((sub, ledger))
    }

    /// One daily run of `charge-subscriptions` at 09:00 KST of `day`, its summary checked.
    async fn sweep(
        &mut self,
        (year, month, day): (i32, u32, u32),
        label: &str,
        expected: &[(&str, u64)],
    ) -> anyhow::Result<Value> {
        let at = kst_at(year, month, day, 9, 0)?;
        self.set_clock(at);
        let summary = self.stack.sweep(at).await?;
        let count = |field: &str| summary.get(field).and_then(Value::as_u64).unwrap_or(0);
        let title = format!(
            "── {}: charge-subscriptions, event time {} · {label} ",
            kst(at),
            at.format("%Y-%m-%dT%H:%M:%SZ")
        );
        println!();
        println!(
            "{title}{}",
            "─".repeat(150usize.saturating_sub(columns(&title)))
        );
        println!(
            "   summary: due {}, charged {} ({}), declined {}, retries scheduled {}, canceled {}, unknown {}",
            count("due"),
            count("charged"),
            won(count("total_charged_krw")),
            count("declined"),
            count("retry_scheduled"),
            count("canceled"),
            count("unknown_outcome"),
        );
        for (field, want) in expected {
            ensure!(
                count(field) == *want,
                "the run at {} ({label}) should have {field} = {want}; its summary: {summary}",
                kst(at)
            );
        }
        for field in ["errors", "unknown_outcome"] {
            ensure!(
                count(field) == 0,
                "the run at {} had {field}: {summary}",
                kst(at)
            );
        }
        for who in [ALICE, BOB] {
            self.show(who, at, "").await?;
        }
        Ok(summary)
    }

    /// The closing check: the table's ledger and Toss's side agree, order id by order id.
    async fn reconcile(&mut self) -> anyhow::Result<()> {
        let snapshot = self.snapshot();
        println!();
        println!(
            "── Reconciliation: table ledger vs the Toss sandbox, by order id {}",
            "─".repeat(84)
        );
        let mut done_total = 0u64;
        for (who, paid_months, declined) in [(ALICE, 4usize, 4usize), (BOB, 1, 0)] {
            let sub = self.current(who).await?;
            let ledger = self.stack.store.ledger(sub.id()).await?;
            let done: Vec<&ChargeAttempt> = ledger
                .iter()
                .filter(|e| e.status() == AttemptStatus::Done)
                .collect();
            let refused = ledger
                .iter()
                .filter(|e| e.status() == AttemptStatus::Declined)
                .count();
            ensure!(
                done.len() == paid_months && refused == declined,
                "{}: expected {paid_months} DONE and {declined} declined ledger entries, found {} and {refused}",
                who.name,
                done.len()
            );
            ensure!(
                ledger.iter().all(|e| e.status().is_final()),
                "{}: an attempt is still open",
                who.name
            );
            for entry in &done {
                let payment = snapshot
                    .payment_by_order_id(entry.order_id().as_str())
                    .with_context(|| {
                        format!(
                            "Toss has no payment for order {}",
                            entry.order_id().as_str()
                        )
                    })?;
                ensure!(
                    payment.status == "DONE"
                        && u64::try_from(payment.total_amount).ok() == Some(entry.amount().won())
                        && entry.payment_key().map(|k| k.as_str())
                            == Some(payment.payment_key.as_str()),
                    "order {}: the ledger and Toss disagree ({payment:?})",
                    entry.order_id().as_str()
                );
                ensure!(
                    snapshot.charge_requests_for(entry.order_id().as_str()) == 1,
                    "order {} was sent to Toss more than once",
                    entry.order_id().as_str()
                );
                done_total += entry.amount().won();
            }
            let key = self.key(who)?.as_str();
            let toss_done = snapshot
                .payments
                .iter()
                .filter(|p| p.customer_key == key && p.status == "DONE")
                .count();
            ensure!(
                toss_done == done.len(),
                "{}: Toss has {toss_done} DONE payments, the ledger {}",
                who.name,
                done.len()
            );
            let keys = snapshot
                .billing_keys
                .iter()
                .filter(|k| k.customer_key == key)
                .collect::<Vec<_>>();
            ensure!(
                keys.len() == 1 && keys.iter().all(|k| k.deleted),
                "{}: expected one billing key, deleted at Toss: {keys:?}",
                who.name
            );
            println!(
                "   {:<6} {} paid month(s) = {} · {} declined attempt(s) · {} · billing key deleted at Toss · every DONE order id found at Toss, charged once",
                who.name,
                done.len(),
                won(done.iter().map(|e| e.amount().won()).sum()),
                refused,
                sub.status().as_str(),
            );
        }
        let mut refunded_total = 0u64;
        for who in [DAVE, ERIN] {
            let sub = self.current(who).await?;
            let ledger = self.stack.store.ledger(sub.id()).await?;
            let refunds = self.stack.store.refunds(sub.id()).await?;
            let paid: u64 = ledger
                .iter()
                .filter(|e| e.status() == AttemptStatus::Done)
                .map(|e| e.amount().won())
                .sum();
            let back: u64 = refunds
                .iter()
                .filter(|r| r.status.as_str() == "DONE")
                .map(|r| r.amount.won())
                .sum();
            let key = self.key(who)?.as_str();
            let at_toss: Vec<_> = snapshot
                .payments
                .iter()
                .filter(|p| p.customer_key == key)
                .collect();
            let toss_paid: i64 = at_toss.iter().map(|p| p.total_amount).sum();
            let toss_balance: i64 = at_toss.iter().map(|p| p.balance_amount).sum();
            ensure!(
                u64::try_from(toss_paid).ok() == Some(paid)
                    && u64::try_from(toss_paid - toss_balance).ok() == Some(back)
                    && back == paid
                    && sub.status() == Status::Canceled,
                "{}: the ledger ({paid} paid, {back} refunded) and Toss ({toss_paid} paid, {toss_balance} left) disagree",
                who.name
            );
            done_total += paid;
            refunded_total += back;
            println!(
                "   {:<6} 1 paid month = {} · refunded {} (ledger = Toss's cancels) · {}",
                who.name,
                won(paid),
                won(back),
                sub.status().as_str(),
            );
        }
        let carol = self.key(CAROL)?.as_str();
        ensure!(
            snapshot
                .billing_keys
                .iter()
                .all(|k| k.customer_key != carol),
            "carol's refused card got a billing key"
        );
        let counters = &snapshot.counters;
        ensure!(
            u64::try_from(counters.approved_amount).ok() == Some(done_total)
                && u64::try_from(counters.canceled_amount).ok() == Some(refunded_total)
                && counters.done_charges == 7
                && counters.declined_charges == 4,
            "the sandbox's counters disagree: {counters:?}"
        );
        println!(
            "   Toss     {} approved in {} payments, {} refunded, {} declines, {} billing keys issued, {} deleted; carol: no billing key",
            won(done_total),
            counters.done_charges,
            won(refunded_total),
            counters.declined_charges,
            counters.billing_keys_issued,
            counters.billing_keys_deleted,
        );
        Ok(())
    }

    /// One app-API call on the timeline: what was asked and what it answered.
    fn api_row(&self, at: DateTime<Utc>, who: Customer, what: &str, answer: &Answer, result: &str) {
        let state = answer.json["status"].as_str().unwrap_or("-").to_owned();
        let credits = answer
            .credits()
            .or_else(|| answer.json["error"]["credits"].as_u64())
            .map_or_else(|| "-".to_owned(), |c| c.to_string());
        self.row(at, who, what, "-", "-", result, &state, &credits);
    }

    #[allow(clippy::too_many_arguments)]
    fn row(
        &self,
        at: DateTime<Utc>,
        who: Customer,
        what: &str,
        order_id: &str,
        amount: &str,
        result: &str,
        state: &str,
        credits: &str,
    ) {
        let cells = [
            kst(at),
            who.name.to_owned(),
            what.to_owned(),
            order_id.to_owned(),
            rpad(amount, WIDTHS[4]),
            result.to_owned(),
            state.to_owned(),
            rpad(credits, WIDTHS[7]),
        ];
        println!("{}", line(&cells));
    }
}

fn line(cells: &[String; 8]) -> String {
    let mut out = String::new();
    for (i, (cell, width)) in cells.iter().zip(WIDTHS).enumerate() {
        if i > 0 {
            out.push_str("  ");
        }
        out.push_str(&pad(cell, width));
    }
    out.trim_end().to_owned()
}

/// A URL without its query string: the checkout's state and Toss's authKey travel there, and
/// neither belongs in the output.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let had_query = parsed.query().is_some();
            parsed.set_query(None);
            parsed.set_fragment(None);
            if had_query {
                format!("{parsed}?…")
            } else {
                parsed.to_string()
            }
        }
        Err(_) => "(not a URL)".to_owned(),
    }
}

fn note(text: &str) {
    println!("{}· {text}", " ".repeat(WIDTHS[0] + 2));
}

/// Checks a subscription's state, credits and next charge day (Seoul calendar).
fn expect_sub(
    sub: &Subscription,
    status: Status,
    credits: u64,
    next: Option<(i32, u32, u32)>,
) -> anyhow::Result<()> {
    ensure!(
        sub.status() == status && sub.credits() == credits,
        "{}: expected {} with {credits} credits, found {} with {}",
        sub.customer_key().as_str(),
        status.as_str(),
        sub.status().as_str(),
        sub.credits()
    );
    let want = next.map(|(y, m, d)| kst_at(y, m, d, 0, 0)).transpose()?;
    ensure!(
        sub.next_charge_at() == want,
        "{}: expected the next charge at {:?}, found {:?}",
        sub.customer_key().as_str(),
        want.map(kst),
        sub.next_charge_at().map(kst)
    );
    Ok(())
}

//! `demo walk`: the scripted timeline. Every step is checked like a test; the first surprise
//! stops the walk with a non-zero exit.
//!
//! The test clock: the sandbox clock is moved to each moment before acting (Toss's `approvedAt`
//! comes from it, and the first one is the subscription's anchor), and each renewal run is an
//! EventBridge event whose `time` is 09:00 KST (00:00 UTC) of the day, as the daily schedule
//! would send it.

mod scenes;

use std::collections::HashMap;

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use domain::{AttemptKind, AttemptStatus, ChargeAttempt, CustomerKey, Status, Subscription};
use reqwest::header::{COOKIE, LOCATION};
use serde_json::Value;
use toss_sandbox::Snapshot;

use crate::cli::Args;
use crate::config::{CLIENT_KEY, DUNNING_RETRY_DAYS, PLAN_AMOUNT, PLAN_CREDITS};
use crate::fmt::{columns, kst, kst_at, kst_day, pad, rpad, won};
use crate::stack::Stack;

#[derive(Debug, Clone, Copy)]
struct Customer {
    name: &'static str,
    key: &'static str,
}

const ALICE: Customer = Customer {
    name: "alice",
    key: "user_demo_alice",
};
const BOB: Customer = Customer {
    name: "bob",
    key: "user_demo_bob",
};
const CAROL: Customer = Customer {
    name: "carol",
    key: "user_demo_carol",
};

/// Column widths of the timeline: when, who, what, order id, amount, Toss result, state, credits.
const WIDTHS: [usize; 8] = [25, 5, 35, 30, 8, 19, 10, 7];

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
    /// Ledger entries already shown, per customer key.
    printed: HashMap<&'static str, usize>,
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
            "  customers  alice = {}, bob = {}, carol = {}",
            ALICE.key, BOB.key, CAROL.key
        );
        println!();
        let header = [
            "when (KST)",
            "who",
            "what",
            "Toss order id",
            "amount",
            "Toss result",
            "state",
            "credits",
        ];
        println!("{}", line(&header.map(str::to_owned)));
        println!("{}", line(&WIDTHS.map(|w| "─".repeat(w))));
    }

    /// What the browser does: the card window (the sandbox page, submitted with `card`) →
    /// billing-api's redirect → the app. Returns where the customer lands.
    async fn register(&self, who: Customer, card: &str) -> anyhow::Result<String> {
        let urls = self.stack.urls();
        let page = url::Url::parse_with_params(
            &format!("{}/billing-auth/submit", urls.sandbox),
            [
                ("clientKey", CLIENT_KEY),
                ("customerKey", who.key),
                ("successUrl", &urls.success_url),
                ("failUrl", &urls.fail_url),
                ("card", card),
            ],
        )?;
        let to_billing_api = self.redirect(page.as_str(), who).await?;
        ensure!(
            to_billing_api.starts_with(&urls.lambda),
            "the card window should send {} to billing-api, sent to {to_billing_api}",
            who.name
        );
        let landing = self.redirect(&to_billing_api, who).await?;
        // The app page the customer sees.
        let response = self
            .http
            .get(&landing)
            .header(COOKIE, format!("demo_customer={}", who.key))
            .send()
            .await
            .with_context(|| format!("GET {landing}"))?;
        ensure!(
            response.status().is_success(),
            "the app answered {} for {landing}",
            response.status()
        );
        Ok(landing)
    }

    async fn redirect(&self, url: &str, who: Customer) -> anyhow::Result<String> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        if response.status().as_u16() != 302 {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            bail!(
                "expected a 302 for {}'s registration, got {status}: {body}\n(function logs: {})",
                who.name,
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
        let key = CustomerKey::parse(who.key)?;
        Ok(self.stack.store.customer_subscription(&key).await?)
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
        let ledger = self.stack.store.ledger(&sub.id).await?;
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
        let shown = self.printed.entry(who.key).or_insert(0);
        let new: Vec<ChargeAttempt> = ledger.iter().skip(*shown).cloned().collect();
        *shown = ledger.len();
        for entry in &new {
            let what = match entry.kind {
                AttemptKind::First => format!("first charge, month {}", entry.period + 1),
                AttemptKind::Renewal => format!("renewal, month {}", entry.period + 1),
                AttemptKind::Retry => format!(
                    "retry {} of month {}",
                    entry.attempt.saturating_sub(1),
                    entry.period + 1
                ),
                AttemptKind::CardUpdate => format!("new card charge, month {}", entry.period + 1),
            };
            let result = match entry.status {
                AttemptStatus::Done => "DONE".to_owned(),
                AttemptStatus::Declined => entry
                    .error_code
                    .clone()
                    .unwrap_or_else(|| "DECLINED".to_owned()),
                other => other.as_str().to_owned(),
            };
            self.row(
                entry.approved_at.unwrap_or(entry.updated_at),
                who,
                &what,
                entry.order_id.as_str(),
                &won(entry.amount.won()),
                &result,
                sub.status.as_str(),
                &sub.credits.to_string(),
            );
        }
        if !new.is_empty() {
            let next = match sub.next_charge_at {
                Some(next) => format!("next charge {}", kst_day(next)),
                None => "nothing scheduled".to_owned(),
            };
            note(&format!(
                "{}: {}, {} credits, {}",
                who.name,
                sub.status.as_str(),
                sub.credits,
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
            let ledger = self.stack.store.ledger(&sub.id).await?;
            let done: Vec<&ChargeAttempt> = ledger
                .iter()
                .filter(|e| e.status == AttemptStatus::Done)
                .collect();
            let refused = ledger
                .iter()
                .filter(|e| e.status == AttemptStatus::Declined)
                .count();
            ensure!(
                done.len() == paid_months && refused == declined,
                "{}: expected {paid_months} DONE and {declined} declined ledger entries, found {} and {refused}",
                who.name,
                done.len()
            );
            ensure!(
                ledger.iter().all(|e| e.status.is_final()),
                "{}: an attempt is still open",
                who.name
            );
            for entry in &done {
                let payment = snapshot
                    .payment_by_order_id(entry.order_id.as_str())
                    .with_context(|| {
                        format!("Toss has no payment for order {}", entry.order_id.as_str())
                    })?;
                ensure!(
                    payment.status == "DONE"
                        && u64::try_from(payment.total_amount).ok() == Some(entry.amount.won())
                        && entry.payment_key.as_ref().map(|k| k.as_str())
                            == Some(payment.payment_key.as_str()),
                    "order {}: the ledger and Toss disagree ({payment:?})",
                    entry.order_id.as_str()
                );
                ensure!(
                    snapshot.charge_requests_for(entry.order_id.as_str()) == 1,
                    "order {} was sent to Toss more than once",
                    entry.order_id.as_str()
                );
                done_total += entry.amount.won();
            }
            let toss_done = snapshot
                .payments
                .iter()
                .filter(|p| p.customer_key == who.key && p.status == "DONE")
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
                .filter(|k| k.customer_key == who.key)
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
                won(done.iter().map(|e| e.amount.won()).sum()),
                refused,
                sub.status.as_str(),
            );
        }
        ensure!(
            snapshot
                .billing_keys
                .iter()
                .all(|k| k.customer_key != CAROL.key),
            "carol's refused card got a billing key"
        );
        let counters = &snapshot.counters;
        ensure!(
            u64::try_from(counters.approved_amount).ok() == Some(done_total)
                && counters.done_charges == 5
                && counters.declined_charges == 4,
            "the sandbox's counters disagree: {counters:?}"
        );
        println!(
            "   Toss     {} approved in {} payments, {} declines, {} billing keys issued, {} deleted; carol: no billing key",
            won(done_total),
            counters.done_charges,
            counters.declined_charges,
            counters.billing_keys_issued,
            counters.billing_keys_deleted,
        );
        Ok(())
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
        sub.status == status && sub.credits == credits,
        "{}: expected {} with {credits} credits, found {} with {}",
        sub.customer_key.as_str(),
        status.as_str(),
        sub.status.as_str(),
        sub.credits
    );
    let want = next.map(|(y, m, d)| kst_at(y, m, d, 0, 0)).transpose()?;
    ensure!(
        sub.next_charge_at == want,
        "{}: expected the next charge at {:?}, found {:?}",
        sub.customer_key.as_str(),
        want.map(kst),
        sub.next_charge_at.map(kst)
    );
    Ok(())
}

//! `demo walk`: the scripted timeline. Every step is checked like a test; the first surprise
//! stops the walk with a non-zero exit.
//!
//! The test clock: the sandbox clock is moved to each moment before acting (Toss's `approvedAt`
//! comes from it, and the first one is the subscription's anchor), and each renewal run is an
//! EventBridge event whose `time` is 09:00 KST (00:00 UTC) of the day, as the daily schedule
//! would send it.

use std::collections::HashMap;

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use domain::{AttemptKind, AttemptStatus, ChargeAttempt, CustomerKey, Status, Subscription};
use reqwest::header::{COOKIE, LOCATION};
use serde_json::Value;
use toss_sandbox::{DeclineRule, Snapshot};

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

    /// The whole timeline, scene by scene, in calendar order; each scene checks its own outcome.
    /// Renewals run one daily sweep at a time, only on the days where something is due.
    async fn script(&mut self) -> anyhow::Result<()> {
        self.alice_subscribes_on_the_31st().await?;
        self.carols_card_is_refused().await?;
        self.bob_asks_to_cancel_at_period_end().await?;
        self.february_renewal_delivered_twice().await?;
        self.bobs_period_ends().await?;
        self.renewals_in_march_and_april().await?;
        self.alices_card_declines_until_she_is_canceled().await?;
        self.reconcile().await
    }

    /// Alice registers a card on 2027-01-31 at 10:00: the anchor is a 31st.
    async fn alice_subscribes_on_the_31st(&mut self) -> anyhow::Result<()> {
        let jan31 = kst_at(2027, 1, 31, 10, 0)?;
        self.set_clock(jan31);
        let landing = self.register(ALICE, "ok").await?;
        let (sub, _) = self
            .show(ALICE, jan31, "card registered (test card ok)")
            .await?;
        ensure!(
            landing == format!("{}/done", self.stack.urls().app),
            "alice should land on the app's /done page, landed on {landing}"
        );
        expect_sub(&sub, Status::Active, PLAN_CREDITS, Some((2027, 2, 28)))?;
        let anchor = sub.anchor.context("an active subscription has an anchor")?;
        ensure!(
            kst_day(anchor) == "2027-01-31 (일)",
            "the anchor should be Jan 31 in Seoul, is {}",
            kst(anchor)
        );
        note(&format!(
            "anchor {} → renewals on the 31st, clamped to the month's end: Feb 28, Mar 31, Apr 30, May 31",
            kst(anchor)
        ));
        Ok(())
    }

    /// Carol's card is refused by the card window: nothing is stored.
    async fn carols_card_is_refused(&mut self) -> anyhow::Result<()> {
        let jan31 = kst_at(2027, 1, 31, 10, 0)?;
        let landing = self.register(CAROL, "invalid-number").await?;
        ensure!(
            landing == format!("{}/failed?code=INVALID_CARD_NUMBER", self.stack.urls().app),
            "carol should land on /failed?code=INVALID_CARD_NUMBER, landed on {landing}"
        );
        ensure!(
            self.subscription(CAROL).await?.is_none(),
            "carol's failed registration stored a subscription"
        );
        self.row(
            jan31,
            CAROL,
            "card refused at registration",
            "-",
            "-",
            "INVALID_CARD_NUMBER",
            "(none)",
            "-",
        );
        note(
            "carol lands on the app's /failed?code=INVALID_CARD_NUMBER; no subscription, no charge",
        );
        Ok(())
    }

    /// Bob subscribes on Feb 10 and chooses to stop at the end of his first month.
    async fn bob_asks_to_cancel_at_period_end(&mut self) -> anyhow::Result<()> {
        let feb10 = kst_at(2027, 2, 10, 10, 0)?;
        self.set_clock(feb10);
        self.register(BOB, "check").await?;
        let (mut bob, _) = self
            .show(BOB, feb10, "card registered (test card check)")
            .await?;
        expect_sub(&bob, Status::Active, PLAN_CREDITS, Some((2027, 3, 10)))?;
        // No API sets this yet (docs/money-rules.md §6, "not built yet"):
        // the demo writes the flag straight into the table, as that API will.
        bob.cancel_at_period_end = true;
        self.stack
            .store
            .save_subscription(&mut bob)
            .await
            .context("set bob's cancel_at_period_end")?;
        self.row(
            feb10,
            BOB,
            "asks to cancel at period end",
            "-",
            "-",
            "-",
            bob.status.as_str(),
            &bob.credits.to_string(),
        );
        note(
            "no API for this exists yet (docs/money-rules.md §6): the demo set cancel_at_period_end = true directly in the table",
        );
        Ok(())
    }

    /// Alice's first renewal (Jan 31 → Feb 28), then the same schedule event again: no charge.
    async fn february_renewal_delivered_twice(&mut self) -> anyhow::Result<()> {
        self.sweep(
            (2027, 2, 28),
            "renewal month 2 (Jan 31 → Feb 28)",
            &[("due", 1), ("charged", 1), ("total_charged_krw", 3900)],
        )
        .await?;
        expect_sub(
            &self.current(ALICE).await?,
            Status::Active,
            2 * PLAN_CREDITS,
            Some((2027, 3, 31)),
        )?;

        let before = self.snapshot().counters.charge_requests;
        self.sweep(
            (2027, 2, 28),
            "the same event delivered again",
            &[("due", 0), ("charged", 0)],
        )
        .await?;
        ensure!(
            self.snapshot().counters.charge_requests == before,
            "a repeated run sent a charge to Toss"
        );
        note("the schedule delivered twice charges nothing: Toss saw no new request");
        Ok(())
    }

    /// Bob's first period ends: canceled without a charge, his billing key deleted.
    async fn bobs_period_ends(&mut self) -> anyhow::Result<()> {
        self.sweep(
            (2027, 3, 10),
            "bob's period ends",
            &[("due", 1), ("charged", 0), ("canceled", 1)],
        )
        .await?;
        let bob = self.current(BOB).await?;
        expect_sub(&bob, Status::Canceled, PLAN_CREDITS, None)?;
        ensure!(
            bob.billing_key.is_none(),
            "bob's billing key should be deleted after the cancellation"
        );
        self.row(
            kst_at(2027, 3, 10, 9, 0)?,
            BOB,
            "canceled at period end, not charged",
            "-",
            "-",
            "billing key deleted",
            bob.status.as_str(),
            &bob.credits.to_string(),
        );
        Ok(())
    }

    /// Alice renews on Mar 31 and, clamped to the month's end, on Apr 30.
    async fn renewals_in_march_and_april(&mut self) -> anyhow::Result<()> {
        self.sweep(
            (2027, 3, 31),
            "renewal month 3",
            &[("due", 1), ("charged", 1)],
        )
        .await?;
        expect_sub(
            &self.current(ALICE).await?,
            Status::Active,
            3 * PLAN_CREDITS,
            Some((2027, 4, 30)),
        )?;

        self.sweep(
            (2027, 4, 30),
            "renewal month 4 (31st → Apr 30)",
            &[("due", 1), ("charged", 1)],
        )
        .await?;
        expect_sub(
            &self.current(ALICE).await?,
            Status::Active,
            4 * PLAN_CREDITS,
            Some((2027, 5, 31)),
        )?;
        Ok(())
    }

    /// Alice's card starts declining: the renewal and every dunning retry fail, then she is canceled.
    async fn alices_card_declines_until_she_is_canceled(&mut self) -> anyhow::Result<()> {
        self.stack.sandbox.sandbox().add_decline(DeclineRule {
            customer_key: ALICE.key.to_owned(),
            code: "REJECT_CARD_PAYMENT".to_owned(),
            status: None,
            message: None,
            times: None,
        });
        println!();
        note(
            "from here alice's card declines every charge (sandbox knob: forced REJECT_CARD_PAYMENT for user_demo_alice)",
        );
        self.sweep(
            (2027, 5, 31),
            "renewal month 5",
            &[
                ("due", 1),
                ("charged", 0),
                ("declined", 1),
                ("retry_scheduled", 1),
            ],
        )
        .await?;
        expect_sub(
            &self.current(ALICE).await?,
            Status::PastDue,
            4 * PLAN_CREDITS,
            Some((2027, 6, 1)),
        )?;
        self.sweep(
            (2027, 6, 1),
            "dunning retry 1 (+1 day)",
            &[("due", 1), ("declined", 1), ("retry_scheduled", 1)],
        )
        .await?;
        expect_sub(
            &self.current(ALICE).await?,
            Status::PastDue,
            4 * PLAN_CREDITS,
            Some((2027, 6, 3)),
        )?;
        self.sweep(
            (2027, 6, 3),
            "dunning retry 2 (+3 days)",
            &[("due", 1), ("declined", 1), ("retry_scheduled", 1)],
        )
        .await?;
        expect_sub(
            &self.current(ALICE).await?,
            Status::PastDue,
            4 * PLAN_CREDITS,
            Some((2027, 6, 5)),
        )?;
        self.sweep(
            (2027, 6, 5),
            "dunning retry 3 (+5 days), the last",
            &[("due", 1), ("declined", 1), ("canceled", 1)],
        )
        .await?;
        let alice = self.current(ALICE).await?;
        expect_sub(&alice, Status::Canceled, 4 * PLAN_CREDITS, None)?;
        ensure!(
            alice.billing_key.is_none(),
            "alice's billing key should be deleted after the last retry"
        );
        self.row(
            kst_at(2027, 6, 5, 9, 0)?,
            ALICE,
            "canceled: every retry declined",
            "-",
            "-",
            "billing key deleted",
            alice.status.as_str(),
            &alice.credits.to_string(),
        );
        Ok(())
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

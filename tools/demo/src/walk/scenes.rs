//! The scenes of `demo walk`, in calendar order. Each scene is told in the [`Walk`] steps (a
//! checked app-API call and its row, a registration, a daily run and its expected outcomes) and
//! checks its own outcome.

use anyhow::{Context, ensure};
use domain::Status;
use serde_json::{Value, json};
use toss_sandbox::DeclineRule;

use super::client::{Call, Want};
use super::inspect::Sub;
use super::steps::Counts;
use super::timeline::{note, row};
use super::{ALICE, BOB, CAROL, DAVE, ERIN, Walk};
use crate::config::{PLAN_AMOUNT, PLAN_CREDITS};
use crate::fmt::{kst, kst_at, kst_day};

/// A declined charge with a retry scheduled.
const RETRIED: Counts<'static> = &[("due", 1), ("declined", 1), ("retry_scheduled", 1)];

impl Walk<'_> {
    /// The whole timeline, scene by scene, in calendar order; each scene checks its own outcome.
    /// Renewals run one daily sweep at a time, only on the days where something is due.
    pub(super) async fn script(&mut self) -> anyhow::Result<()> {
        self.alice_subscribes_on_the_31st().await?;
        self.carols_card_is_refused().await?;
        self.alice_reads_her_subscription_and_spends_her_credits()
            .await?;
        self.bob_cancels_at_period_end_resumes_and_cancels_again()
            .await?;
        self.dave_withdraws_within_the_window().await?;
        self.erins_payment_is_refunded_in_tosss_console().await?;
        self.february_renewal_delivered_twice().await?;
        self.bobs_period_ends().await?;
        self.renewals_in_march_and_april().await?;
        self.alices_card_declines_until_she_is_canceled().await?;
        self.alice_reads_her_payments().await?;
        self.reconcile().await
    }

    /// Alice checks out and registers a card on 2027-01-31 at 10:00: the anchor is a 31st.
    async fn alice_subscribes_on_the_31st(&mut self) -> anyhow::Result<()> {
        let jan31 = kst_at(2027, 1, 31, 10, 0)?;
        self.set_clock(jan31);
        let landing = self.register(ALICE, "ok").await?;
        note(&format!(
            "alice signed in ({}) → POST /v1/checkout → customer key {} (random, the backend's) and URLs bound to a single-use state",
            ALICE.user_id,
            self.key(ALICE)?.as_str()
        ));
        let (sub, _) = self
            .registered(ALICE, jan31, "ok", Sub::active(2027, 2, 28))
            .await?;
        ensure!(
            landing == format!("{}/done", self.stack.urls().app),
            "alice should land on the app's /done page, landed on {landing}"
        );
        let anchor = sub
            .anchor()
            .context("an active subscription has an anchor")?;
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

    /// The Saju app asks whether alice is Pro, then spends readings: one, its replay (no double
    /// spend), the rest of the month's allowance, and one too many.
    async fn alice_reads_her_subscription_and_spends_her_credits(&mut self) -> anyhow::Result<()> {
        let at = kst_at(2027, 1, 31, 10, 5)?;
        let feb28 = kst_at(2027, 2, 28, 0, 0)?;
        let status = self
            .ask(
                at,
                ALICE,
                Call::subscription(),
                Want::ok()
                    .with("/status", "active")
                    .with("/credits", PLAN_CREDITS)
                    .with("/cancelAtPeriodEnd", false)
                    .at("/nextChargeAt", feb28),
                "200",
            )
            .await?;
        let card = status.json["card"]["number"].as_str().unwrap_or_default();
        ensure!(
            card.contains('*'),
            "the card number should be masked: {card:?}"
        );
        note(&format!(
            "the app sees: active, {PLAN_CREDITS} credits, card {card}, next charge {}",
            kst_day(feb28)
        ));

        let one_reading = json!({"consumed": 1, "credits": 29});
        self.ask(
            at,
            ALICE,
            Call::consume("reading-alice-0001", 1),
            Want::ok().body(one_reading.clone()),
            "200 consumed 1",
        )
        .await?;
        // The replay must get the first answer and spend nothing.
        self.ask(
            at,
            ALICE,
            Call::consume("reading-alice-0001", 1).shown_as("  same Idempotency-Key again"),
            Want::ok().body(one_reading),
            "200 replayed",
        )
        .await?;
        self.call(ALICE, Call::subscription(), Want::ok().with("/credits", 29))
            .await?;
        let stored = self.current(ALICE).await?.credits();
        ensure!(
            stored == 29,
            "the replay spent again: the table has {stored}"
        );
        note("the replay got the first answer; the balance is still 29 in the API and the table");

        self.ask(
            at,
            ALICE,
            Call::consume("reading-alice-0001", 2).shown_as("  same key, another amount"),
            Want::refused(422, "IDEMPOTENCY_KEY_REUSED"),
            "422 KEY_REUSED",
        )
        .await?;
        self.ask(
            at,
            ALICE,
            Call::consume("reading-alice-0002", 29),
            Want::ok().body(json!({"consumed": 29, "credits": 0})),
            "200 consumed 29",
        )
        .await?;
        self.ask(
            at,
            ALICE,
            Call::consume("reading-alice-0003", 1),
            Want::refused(409, "INSUFFICIENT_CREDITS").with("/error/credits", 0),
            "409 INSUFFICIENT_CREDITS",
        )
        .await?;
        ensure!(
            self.current(ALICE).await?.credits() == 0,
            "the refused reading changed the balance"
        );
        note("out of readings until the next paid month; the refused call changed nothing");
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
        self.call(
            CAROL,
            Call::subscription(),
            Want::ok().with("/status", "none"),
        )
        .await?;
        row(
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
            "carol lands on the app's /failed?code=INVALID_CARD_NUMBER; GET /v1/subscription says \"none\"; no charge",
        );
        Ok(())
    }

    /// Bob subscribes on Feb 10, asks to stop at the end of his first month, changes his mind,
    /// and asks again.
    async fn bob_cancels_at_period_end_resumes_and_cancels_again(&mut self) -> anyhow::Result<()> {
        let feb10 = kst_at(2027, 2, 10, 10, 0)?;
        self.subscribe(BOB, feb10, "check", Sub::active(2027, 3, 10))
            .await?;

        let at = kst_at(2027, 2, 10, 10, 30)?;
        let active = |cancel_at_period_end: bool| {
            Want::ok()
                .with("/status", "active")
                .with("/cancelAtPeriodEnd", cancel_at_period_end)
        };
        for (call, flag, want, result) in [
            (Call::cancel(), true, active(true), "200 cancelAtPeriodEnd"),
            (Call::resume(), false, active(false), "200 resumed"),
            (
                Call::cancel(),
                true,
                // Ending at period end: nothing more is charged.
                active(true).with("/nextChargeAt", Value::Null),
                "200 cancelAtPeriodEnd",
            ),
        ] {
            self.ask(at, BOB, call, want, result).await?;
            let stored = self.current(BOB).await?;
            ensure!(
                stored.cancel_at_period_end() == flag && stored.status() == Status::Active,
                "bob: the table has cancel_at_period_end = {}, status {}",
                stored.cancel_at_period_end(),
                stored.status().as_str()
            );
        }
        note(&format!(
            "bob keeps Pro until {}; the sweep that day ends it without charging",
            kst_day(kst_at(2027, 3, 10, 0, 0)?)
        ));
        Ok(())
    }

    /// Dave subscribes on Feb 12 and, two days later with no reading used, withdraws
    /// (청약철회): his period is refunded in full at Toss and his subscription ends at once.
    async fn dave_withdraws_within_the_window(&mut self) -> anyhow::Result<()> {
        let feb12 = kst_at(2027, 2, 12, 10, 0)?;
        self.subscribe(DAVE, feb12, "ok", Sub::active(2027, 3, 12))
            .await?;

        let feb14 = kst_at(2027, 2, 14, 9, 0)?;
        self.set_clock(feb14);
        self.ask(
            feb14,
            DAVE,
            Call::subscription(),
            Want::ok()
                .with("/withdrawable/amount", PLAN_AMOUNT)
                .at("/withdrawable/until", kst_at(2027, 2, 19, 10, 0)?),
            "withdrawable 3,900 until 02-19",
        )
        .await?;
        self.ask(
            feb14,
            DAVE,
            Call::withdraw(),
            Want::ok().with("/status", "canceled"),
            "200 refunded, ended now",
        )
        .await?;
        let refunds = self.refunds(DAVE).await?;
        ensure!(
            refunds == [(PLAN_AMOUNT, "DONE".to_owned())],
            "dave's ledger should hold one done refund of the whole period: {refunds:?}"
        );
        self.expect_refunded_at_toss(DAVE)?;
        note(
            "dave's 3,900 is back on his card (one cancel at Toss); his credits are taken back and his card deleted",
        );
        Ok(())
    }

    /// Erin subscribes on Feb 15; the next day the merchant refunds her in Toss's console.
    /// Toss tells billing-api by webhook, and the ledger and her subscription follow.
    async fn erins_payment_is_refunded_in_tosss_console(&mut self) -> anyhow::Result<()> {
        let feb15 = kst_at(2027, 2, 15, 10, 0)?;
        let (_, ledger) = self
            .subscribe(ERIN, feb15, "ok", Sub::active(2027, 3, 15))
            .await?;
        let payment_key = ledger
            .iter()
            .find_map(|e| e.payment_key().cloned())
            .context("erin's first charge has a paymentKey")?;

        let feb16 = kst_at(2027, 2, 16, 11, 0)?;
        self.set_clock(feb16);
        self.stack
            .sandbox
            .sandbox()
            .console_cancel(payment_key.as_str(), "고객 요청 (콘솔 환불)", None)
            .map_err(|e| anyhow::anyhow!("the console refund was refused: {e:?}"))?;
        // Toss delivers PAYMENT_STATUS_CHANGED to POST /toss/webhooks; wait for the ledger.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let refunds = loop {
            let refunds = self.refunds(ERIN).await?;
            if !refunds.is_empty() || std::time::Instant::now() > deadline {
                break refunds;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        };
        ensure!(
            refunds == [(PLAN_AMOUNT, "DONE".to_owned())],
            "the console refund should reach erin's ledger once: {refunds:?}"
        );
        // A full refund of the current period ends it and takes back its credits.
        self.ask(
            feb16,
            ERIN,
            Call::subscription().shown_as("console refund → webhook → GET /v1/subscription"),
            Want::ok().with("/status", "canceled").with("/credits", 0),
            "refund recorded, ended",
        )
        .await?;
        self.expect_refunded_at_toss(ERIN)?;
        note(
            "erin was refunded in Toss's console; the webhook was re-checked against Toss's record before the ledger recorded it",
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
        // A monthly allowance: the new period's credits, not added to what was left.
        self.expect_sub(ALICE, Sub::active(2027, 3, 31)).await?;
        note(&format!(
            "a paid month sets alice's balance to the plan's {PLAN_CREDITS} credits (unused credits would expire)"
        ));

        let before = self.charge_requests();
        self.sweep(
            (2027, 2, 28),
            "the same event delivered again",
            &[("due", 0), ("charged", 0)],
        )
        .await?;
        ensure!(
            self.charge_requests() == before,
            "a repeated run sent a charge to Toss"
        );
        note("the schedule delivered twice charges nothing: Toss saw no new request");
        Ok(())
    }

    /// Bob's first period ends: canceled without a charge, his billing key deleted.
    async fn bobs_period_ends(&mut self) -> anyhow::Result<()> {
        let before = self.charge_requests();
        self.sweep(
            (2027, 3, 10),
            "bob's period ends",
            &[("due", 1), ("charged", 0), ("canceled", 1)],
        )
        .await?;
        ensure!(
            self.charge_requests() == before,
            "bob's period end sent a charge to Toss"
        );
        let at = kst_at(2027, 3, 10, 9, 0)?;
        self.ended(at, BOB, "canceled at period end, not charged")
            .await?;
        self.call(
            BOB,
            Call::subscription(),
            Want::ok().with("/status", "canceled").with("/credits", 0),
        )
        .await?;
        // A canceled subscription's credits cannot be spent.
        self.ask(
            at,
            BOB,
            Call::consume("reading-bob-0001", 1),
            Want::refused(409, "NO_ACTIVE_SUBSCRIPTION"),
            "409 NO_ACTIVE_SUBSCRIPTION",
        )
        .await?;
        Ok(())
    }

    /// Alice renews on Mar 31 and, clamped to the month's end, on Apr 30.
    async fn renewals_in_march_and_april(&mut self) -> anyhow::Result<()> {
        for (day, label, then) in [
            ((2027, 3, 31), "renewal month 3", Sub::active(2027, 4, 30)),
            (
                (2027, 4, 30),
                "renewal month 4 (31st → Apr 30)",
                Sub::active(2027, 5, 31),
            ),
        ] {
            self.sweep(day, label, &[("due", 1), ("charged", 1)])
                .await?;
            self.expect_sub(ALICE, then).await?;
        }
        Ok(())
    }

    /// Alice's card starts declining: the renewal and every dunning retry fail, then she is canceled.
    async fn alices_card_declines_until_she_is_canceled(&mut self) -> anyhow::Result<()> {
        self.stack.sandbox.sandbox().add_decline(DeclineRule {
            customer_key: self.key(ALICE)?.as_str().to_owned(),
            code: "REJECT_CARD_PAYMENT".to_owned(),
            status: None,
            message: None,
            times: None,
        });
        println!();
        note(
            "from here alice's card declines every charge (sandbox knob: forced REJECT_CARD_PAYMENT for her customer key)",
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
        self.expect_sub(ALICE, Sub::past_due(2027, 6, 1)).await?;
        self.ask(
            kst_at(2027, 5, 31, 9, 0)?,
            ALICE,
            Call::subscription(),
            Want::ok()
                .with("/status", "past_due")
                .with("/pastDue/lastCode", "REJECT_CARD_PAYMENT"),
            "200 pastDue",
        )
        .await?;
        for (day, label, then) in [
            (
                (2027, 6, 1),
                "dunning retry 1 (+1 day)",
                Sub::past_due(2027, 6, 3),
            ),
            (
                (2027, 6, 3),
                "dunning retry 2 (+3 days)",
                Sub::past_due(2027, 6, 5),
            ),
        ] {
            self.sweep(day, label, RETRIED).await?;
            self.expect_sub(ALICE, then).await?;
        }
        self.sweep(
            (2027, 6, 5),
            "dunning retry 3 (+5 days), the last",
            &[("due", 1), ("declined", 1), ("canceled", 1)],
        )
        .await?;
        self.ended(
            kst_at(2027, 6, 5, 9, 0)?,
            ALICE,
            "canceled: every retry declined",
        )
        .await
    }

    /// The app's payment history for alice, newest first, two pages.
    async fn alice_reads_her_payments(&mut self) -> anyhow::Result<()> {
        let at = kst_at(2027, 6, 5, 9, 30)?;
        let first = self.call(ALICE, Call::payments(None), Want::ok()).await?;
        let cursor = first.json["nextCursor"]
            .as_str()
            .context("eight payments in pages of five: the first page has a next cursor")?;
        // The second page is the last.
        let second = self
            .call(
                ALICE,
                Call::payments(Some(cursor)),
                Want::ok().with("/nextCursor", Value::Null),
            )
            .await?;
        let payments: Vec<&Value> = [&first, &second]
            .iter()
            .flat_map(|page| page.json["payments"].as_array().into_iter().flatten())
            .collect();
        let shape: Vec<(String, String)> = payments
            .iter()
            .map(|p| {
                (
                    p["kind"].as_str().unwrap_or("?").to_owned(),
                    p["status"].as_str().unwrap_or("?").to_owned(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = [
            ("retry", "DECLINED"),
            ("retry", "DECLINED"),
            ("retry", "DECLINED"),
            ("renewal", "DECLINED"),
            ("renewal", "DONE"),
            ("renewal", "DONE"),
            ("renewal", "DONE"),
            ("first", "DONE"),
        ]
        .iter()
        .map(|(k, s)| ((*k).to_owned(), (*s).to_owned()))
        .collect();
        ensure!(
            shape == expected,
            "alice's payments, newest first, should be {expected:?}; got {shape:?}"
        );
        ensure!(
            payments
                .iter()
                .filter(|p| p["status"] == "DECLINED")
                .all(|p| p["failure"]["code"] == "REJECT_CARD_PAYMENT"),
            "every declined payment should say why"
        );
        let paid: u64 = payments
            .iter()
            .filter(|p| p["status"] == "DONE")
            .filter_map(|p| p["amount"].as_u64())
            .sum();
        // The row names the payments read; its state and credits are the subscription's, read
        // after it.
        self.ask(
            at,
            ALICE,
            Call::subscription().shown_as("GET /v1/payments?limit=5 (+1 page)"),
            Want::ok().with("/status", "canceled").with("/credits", 0),
            "200 8 payments",
        )
        .await?;
        note(&format!(
            "newest first: 3 retries and the May renewal DECLINED (REJECT_CARD_PAYMENT), 4 months DONE = {}",
            crate::fmt::won(paid)
        ));
        Ok(())
    }
}

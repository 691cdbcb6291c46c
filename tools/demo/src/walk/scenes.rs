//! The scenes of `demo walk`, in calendar order. Each scene acts through the [`Walk`] helpers
//! (check out and register a card, call the app API, move the clock, run a sweep) and checks its
//! own outcome.

use anyhow::{Context, ensure};
use chrono::{DateTime, Utc};
use domain::Status;
use reqwest::Method;
use serde_json::{Value, json};
use toss_sandbox::DeclineRule;

use super::{ALICE, Answer, BOB, CAROL, Customer, DAVE, ERIN, Walk, expect_sub, note};
use crate::config::{PLAN_AMOUNT, PLAN_CREDITS};
use crate::fmt::{kst, kst_at, kst_day};

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
            .show(ALICE, jan31, "card registered (test card ok)")
            .await?;
        ensure!(
            landing == format!("{}/done", self.stack.urls().app),
            "alice should land on the app's /done page, landed on {landing}"
        );
        expect_sub(&sub, Status::Active, PLAN_CREDITS, Some((2027, 2, 28)))?;
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
        let status = self.status(ALICE).await?;
        ensure!(
            status.json["status"] == "active"
                && status.credits() == Some(PLAN_CREDITS)
                && status.json["cancelAtPeriodEnd"] == false,
            "alice's status should be active with {PLAN_CREDITS} credits: {}",
            status.json
        );
        ensure!(
            time(&status.json["nextChargeAt"]) == Some(kst_at(2027, 2, 28, 0, 0)?),
            "alice's next charge should be Feb 28: {}",
            status.json
        );
        let card = status.json["card"]["number"].as_str().unwrap_or_default();
        ensure!(
            card.contains('*'),
            "the card number should be masked: {card:?}"
        );
        self.api_row(at, ALICE, "GET /v1/subscription", &status, "200");
        note(&format!(
            "the app sees: active, {PLAN_CREDITS} credits, card {card}, next charge {}",
            kst_day(kst_at(2027, 2, 28, 0, 0)?)
        ));

        let reading = self
            .consume(ALICE, "reading-alice-0001", json!({"amount": 1}))
            .await?;
        ensure!(
            reading.status == 200 && reading.json == json!({"consumed": 1, "credits": 29}),
            "one reading should leave 29 credits: {} {}",
            reading.status,
            reading.json
        );
        self.api_row(
            at,
            ALICE,
            "POST /v1/credits/consume 1",
            &reading,
            "200 consumed 1",
        );

        let replay = self
            .consume(ALICE, "reading-alice-0001", json!({"amount": 1}))
            .await?;
        ensure!(
            replay.status == reading.status && replay.json == reading.json,
            "the replay should get the first answer: {} {}",
            replay.status,
            replay.json
        );
        let after = self.status(ALICE).await?;
        let stored = self.current(ALICE).await?.credits();
        ensure!(
            after.credits() == Some(29) && stored == 29,
            "the replay spent again: the API says {:?}, the table {stored}",
            after.credits()
        );
        self.api_row(
            at,
            ALICE,
            "  same Idempotency-Key again",
            &replay,
            "200 replayed",
        );
        note("the replay got the first answer; the balance is still 29 in the API and the table");

        let reused = self
            .consume(ALICE, "reading-alice-0001", json!({"amount": 2}))
            .await?;
        ensure!(
            reused.status == 422 && reused.error_code() == "IDEMPOTENCY_KEY_REUSED",
            "the same key with another body should be refused: {} {}",
            reused.status,
            reused.json
        );
        self.api_row(
            at,
            ALICE,
            "  same key, another amount",
            &reused,
            "422 KEY_REUSED",
        );

        let rest = self
            .consume(ALICE, "reading-alice-0002", json!({"amount": 29}))
            .await?;
        ensure!(
            rest.status == 200 && rest.json == json!({"consumed": 29, "credits": 0}),
            "29 readings should leave 0 credits: {} {}",
            rest.status,
            rest.json
        );
        self.api_row(
            at,
            ALICE,
            "POST /v1/credits/consume 29",
            &rest,
            "200 consumed 29",
        );

        let empty = self
            .consume(ALICE, "reading-alice-0003", json!({"amount": 1}))
            .await?;
        ensure!(
            empty.status == 409
                && empty.error_code() == "INSUFFICIENT_CREDITS"
                && empty.json["error"]["credits"] == 0,
            "a reading with no credits left should be refused: {} {}",
            empty.status,
            empty.json
        );
        ensure!(
            self.current(ALICE).await?.credits() == 0,
            "the refused reading changed the balance"
        );
        self.api_row(
            at,
            ALICE,
            "POST /v1/credits/consume 1",
            &empty,
            "409 INSUFFICIENT_CREDITS",
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
        let status = self.status(CAROL).await?;
        ensure!(
            status.json["status"] == "none",
            "carol should have no subscription in the API: {}",
            status.json
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
            "carol lands on the app's /failed?code=INVALID_CARD_NUMBER; GET /v1/subscription says \"none\"; no charge",
        );
        Ok(())
    }

    /// Bob subscribes on Feb 10, asks to stop at the end of his first month, changes his mind,
    /// and asks again.
    async fn bob_cancels_at_period_end_resumes_and_cancels_again(&mut self) -> anyhow::Result<()> {
        let feb10 = kst_at(2027, 2, 10, 10, 0)?;
        self.set_clock(feb10);
        self.register(BOB, "check").await?;
        let (bob, _) = self
            .show(BOB, feb10, "card registered (test card check)")
            .await?;
        expect_sub(&bob, Status::Active, PLAN_CREDITS, Some((2027, 3, 10)))?;

        let at = kst_at(2027, 2, 10, 10, 30)?;
        let mut last = None;
        for (path, flag, what) in [
            (
                "/v1/subscription/cancel",
                true,
                "POST /v1/subscription/cancel",
            ),
            (
                "/v1/subscription/resume",
                false,
                "POST /v1/subscription/resume",
            ),
            (
                "/v1/subscription/cancel",
                true,
                "POST /v1/subscription/cancel",
            ),
        ] {
            let answer = self.api(BOB, Method::POST, path, None, None).await?;
            ensure!(
                answer.status == 200
                    && answer.json["status"] == "active"
                    && answer.json["cancelAtPeriodEnd"] == flag,
                "{what} should answer active with cancelAtPeriodEnd {flag}: {} {}",
                answer.status,
                answer.json
            );
            let stored = self.current(BOB).await?;
            ensure!(
                stored.cancel_at_period_end() == flag && stored.status() == Status::Active,
                "{what}: the table has cancel_at_period_end = {}",
                stored.cancel_at_period_end()
            );
            let result = if flag {
                "200 cancelAtPeriodEnd"
            } else {
                "200 resumed"
            };
            self.api_row(at, BOB, what, &answer, result);
            last = Some(answer);
        }
        let last = last.context("three calls were made")?;
        ensure!(
            last.json["nextChargeAt"].is_null(),
            "a subscription canceled at period end shows no next charge: {}",
            last.json
        );
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
        self.set_clock(feb12);
        self.register(DAVE, "ok").await?;
        let (dave, _) = self
            .show(DAVE, feb12, "card registered (test card ok)")
            .await?;
        expect_sub(&dave, Status::Active, PLAN_CREDITS, Some((2027, 3, 12)))?;

        let feb14 = kst_at(2027, 2, 14, 9, 0)?;
        self.set_clock(feb14);
        let status = self.status(DAVE).await?;
        let until = time(&status.json["withdrawable"]["until"]);
        ensure!(
            status.json["withdrawable"]["amount"] == PLAN_AMOUNT
                && until == Some(kst_at(2027, 2, 19, 10, 0)?),
            "dave's first days should be withdrawable in full until Feb 19: {}",
            status.json
        );
        self.api_row(
            feb14,
            DAVE,
            "GET /v1/subscription",
            &status,
            "withdrawable 3,900 until 02-19",
        );
        let answer = self
            .api(
                DAVE,
                Method::POST,
                "/v1/subscription/cancel",
                None,
                Some(json!({ "mode": "withdraw" })),
            )
            .await?;
        ensure!(
            answer.status == 200 && answer.json["status"] == "canceled",
            "dave's withdrawal should end his subscription now: {} {}",
            answer.status,
            answer.json
        );
        self.api_row(
            feb14,
            DAVE,
            "POST /v1/subscription/cancel withdraw",
            &answer,
            "200 refunded, ended now",
        );
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
        self.set_clock(feb15);
        self.register(ERIN, "ok").await?;
        let (erin, ledger) = self
            .show(ERIN, feb15, "card registered (test card ok)")
            .await?;
        expect_sub(&erin, Status::Active, PLAN_CREDITS, Some((2027, 3, 15)))?;
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
        let status = self.status(ERIN).await?;
        ensure!(
            status.json["status"] == "canceled" && status.credits() == Some(0),
            "a full refund of erin's current period ends it and takes back its credits: {}",
            status.json
        );
        self.api_row(
            feb16,
            ERIN,
            "console refund → webhook → GET /v1/subscription",
            &status,
            "refund recorded, ended",
        );
        self.expect_refunded_at_toss(ERIN)?;
        note(
            "erin was refunded in Toss's console; the webhook was re-checked against Toss's record before the ledger recorded it",
        );
        Ok(())
    }

    /// `who`'s refunds in the ledger: (amount, status).
    async fn refunds(&self, who: Customer) -> anyhow::Result<Vec<(u64, String)>> {
        let sub = self.current(who).await?;
        Ok(self
            .stack
            .store
            .refunds(sub.id())
            .await?
            .iter()
            .map(|r| (r.amount.won(), r.status.as_str().to_owned()))
            .collect())
    }

    /// Toss holds `who`'s one payment fully canceled, by one cancel.
    fn expect_refunded_at_toss(&self, who: Customer) -> anyhow::Result<()> {
        let key = self.key(who)?.as_str().to_owned();
        let snapshot = self.snapshot();
        let payments: Vec<_> = snapshot
            .payments
            .iter()
            .filter(|p| p.customer_key == key)
            .collect();
        ensure!(
            payments.len() == 1
                && payments[0].status == "CANCELED"
                && payments[0].balance_amount == 0
                && payments[0].cancels == 1,
            "{}: Toss should hold one payment canceled once: {payments:?}",
            who.name
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
        expect_sub(
            &self.current(ALICE).await?,
            Status::Active,
            PLAN_CREDITS,
            Some((2027, 3, 31)),
        )?;
        note(&format!(
            "a paid month sets alice's balance to the plan's {PLAN_CREDITS} credits (unused credits would expire)"
        ));

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
        let before = self.snapshot().counters.charge_requests;
        self.sweep(
            (2027, 3, 10),
            "bob's period ends",
            &[("due", 1), ("charged", 0), ("canceled", 1)],
        )
        .await?;
        ensure!(
            self.snapshot().counters.charge_requests == before,
            "bob's period end sent a charge to Toss"
        );
        let bob = self.current(BOB).await?;
        expect_sub(&bob, Status::Canceled, 0, None)?;
        ensure!(
            bob.billing_key().is_none(),
            "bob's billing key should be deleted after the cancellation"
        );
        let at = kst_at(2027, 3, 10, 9, 0)?;
        self.row(
            at,
            BOB,
            "canceled at period end, not charged",
            "-",
            "-",
            "billing key deleted",
            bob.status().as_str(),
            &bob.credits().to_string(),
        );
        let status = self.status(BOB).await?;
        ensure!(
            status.json["status"] == "canceled" && status.credits() == Some(0),
            "bob should be canceled with no credits in the API: {}",
            status.json
        );
        let reading = self
            .consume(BOB, "reading-bob-0001", json!({"amount": 1}))
            .await?;
        ensure!(
            reading.status == 409 && reading.error_code() == "NO_ACTIVE_SUBSCRIPTION",
            "a canceled subscription's credits cannot be spent: {} {}",
            reading.status,
            reading.json
        );
        self.api_row(
            at,
            BOB,
            "POST /v1/credits/consume 1",
            &reading,
            "409 NO_ACTIVE_SUBSCRIPTION",
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
            PLAN_CREDITS,
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
            PLAN_CREDITS,
            Some((2027, 5, 31)),
        )?;
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
        expect_sub(
            &self.current(ALICE).await?,
            Status::PastDue,
            PLAN_CREDITS,
            Some((2027, 6, 1)),
        )?;
        let status = self.status(ALICE).await?;
        ensure!(
            status.json["status"] == "past_due"
                && status.json["pastDue"]["lastCode"] == "REJECT_CARD_PAYMENT",
            "the app should see alice past due: {}",
            status.json
        );
        self.api_row(
            kst_at(2027, 5, 31, 9, 0)?,
            ALICE,
            "GET /v1/subscription",
            &status,
            "200 pastDue",
        );
        self.sweep(
            (2027, 6, 1),
            "dunning retry 1 (+1 day)",
            &[("due", 1), ("declined", 1), ("retry_scheduled", 1)],
        )
        .await?;
        expect_sub(
            &self.current(ALICE).await?,
            Status::PastDue,
            PLAN_CREDITS,
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
            PLAN_CREDITS,
            Some((2027, 6, 5)),
        )?;
        self.sweep(
            (2027, 6, 5),
            "dunning retry 3 (+5 days), the last",
            &[("due", 1), ("declined", 1), ("canceled", 1)],
        )
        .await?;
        let alice = self.current(ALICE).await?;
        expect_sub(&alice, Status::Canceled, 0, None)?;
        ensure!(
            alice.billing_key().is_none(),
            "alice's billing key should be deleted after the last retry"
        );
        self.row(
            kst_at(2027, 6, 5, 9, 0)?,
            ALICE,
            "canceled: every retry declined",
            "-",
            "-",
            "billing key deleted",
            alice.status().as_str(),
            &alice.credits().to_string(),
        );
        Ok(())
    }

    /// The app's payment history for alice, newest first, two pages.
    async fn alice_reads_her_payments(&mut self) -> anyhow::Result<()> {
        let at = kst_at(2027, 6, 5, 9, 30)?;
        let first = self
            .api(ALICE, Method::GET, "/v1/payments?limit=5", None, None)
            .await?;
        ensure!(first.status == 200, "GET /v1/payments: {}", first.json);
        let cursor = first.json["nextCursor"]
            .as_str()
            .context("eight payments in pages of five: the first page has a next cursor")?;
        let second = self
            .api(
                ALICE,
                Method::GET,
                &format!("/v1/payments?limit=5&cursor={cursor}"),
                None,
                None,
            )
            .await?;
        ensure!(second.status == 200, "GET /v1/payments: {}", second.json);
        ensure!(
            second.json["nextCursor"].is_null(),
            "the second page is the last: {}",
            second.json
        );
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
        let status = self.status(ALICE).await?;
        ensure!(
            status.json["status"] == "canceled" && status.credits() == Some(0),
            "alice should be canceled with no credits in the API: {}",
            status.json
        );
        self.api_row(
            at,
            ALICE,
            "GET /v1/payments?limit=5 (+1 page)",
            &status,
            "200 8 payments",
        );
        note(&format!(
            "newest first: 3 retries and the May renewal DECLINED (REJECT_CARD_PAYMENT), 4 months DONE = {}",
            crate::fmt::won(paid)
        ));
        Ok(())
    }

    /// `GET /v1/subscription` as `who`, expecting a `200`.
    async fn status(&self, who: Customer) -> anyhow::Result<Answer> {
        let answer = self
            .api(who, Method::GET, "/v1/subscription", None, None)
            .await?;
        ensure!(
            answer.status == 200,
            "GET /v1/subscription for {}: {} {}",
            who.name,
            answer.status,
            answer.json
        );
        Ok(answer)
    }

    /// `POST /v1/credits/consume` as `who` with an Idempotency-Key.
    async fn consume(&self, who: Customer, key: &str, body: Value) -> anyhow::Result<Answer> {
        self.api(
            who,
            Method::POST,
            "/v1/credits/consume",
            Some(key),
            Some(body),
        )
        .await
    }
}

/// An RFC 3339 time from the API.
fn time(value: &Value) -> Option<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

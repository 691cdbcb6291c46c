//! The scenes of `demo walk`, in calendar order. Each scene acts through the [`Walk`] helpers
//! (register a card, move the clock, run a sweep) and checks its own outcome.

use anyhow::{Context, ensure};
use domain::Status;
use toss_sandbox::DeclineRule;

use super::{ALICE, BOB, CAROL, Walk, expect_sub, note};
use crate::config::PLAN_CREDITS;
use crate::fmt::{kst, kst_at, kst_day};

impl Walk<'_> {
    /// The whole timeline, scene by scene, in calendar order; each scene checks its own outcome.
    /// Renewals run one daily sweep at a time, only on the days where something is due.
    pub(super) async fn script(&mut self) -> anyhow::Result<()> {
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
}

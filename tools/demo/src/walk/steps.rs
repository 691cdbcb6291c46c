//! The shapes the scenes are told in, each one checked and printed in one go: an app-API call
//! and its row, a card registration and the first charge, a daily run and the outcomes it must
//! report, a subscription that has ended.

use anyhow::ensure;
use chrono::{DateTime, Utc};
use domain::{ChargeAttempt, Status, Subscription};
use serde_json::Value;

use super::client::{Answer, Call, Want};
use super::inspect::Sub;
use super::timeline::{api_row, row, sweep_banner};
use super::{ALICE, BOB, Customer, Walk};
use crate::fmt::{kst, kst_at};

/// What a daily run's summary must count, field by field.
pub(super) type Counts<'a> = &'a [(&'a str, u64)];

impl Walk<'_> {
    /// Moves the sandbox clock (the test clock) to `at`.
    pub(super) fn set_clock(&self, at: DateTime<Utc>) {
        self.stack
            .sandbox
            .sandbox()
            .set_clock_offset(at - Utc::now());
    }

    /// `who` makes `call` at `at`; the answer must hold `want`, and the timeline shows it as
    /// `result` with the answer's state and credits.
    pub(super) async fn ask(
        &self,
        at: DateTime<Utc>,
        who: Customer,
        call: Call,
        want: Want,
        result: &str,
    ) -> anyhow::Result<Answer> {
        let what = call.what().to_owned();
        let answer = self.call(who, call, want).await?;
        api_row(at, who, &what, &answer, result);
        Ok(answer)
    }

    /// `who` checks out at `at` and registers `card`; the first charge must leave the stored
    /// subscription as `then`.
    pub(super) async fn subscribe(
        &mut self,
        who: Customer,
        at: DateTime<Utc>,
        card: &str,
        then: Sub,
    ) -> anyhow::Result<(Subscription, Vec<ChargeAttempt>)> {
        self.set_clock(at);
        self.register(who, card).await?;
        self.registered(who, at, card, then).await
    }

    /// Shows `who`'s registered card and first charge; the stored subscription must be `then`.
    pub(super) async fn registered(
        &mut self,
        who: Customer,
        at: DateTime<Utc>,
        card: &str,
        then: Sub,
    ) -> anyhow::Result<(Subscription, Vec<ChargeAttempt>)> {
        row(
            at,
            who,
            &format!("card registered (test card {card})"),
            "-",
            "-",
            "billing key issued",
            Status::Incomplete.as_str(),
            "0",
        );
        let (sub, ledger) = self.show(who).await?;
        then.check(&sub)?;
        Ok((sub, ledger))
    }

    /// One daily run of `charge-subscriptions` at 09:00 KST of `day`: its summary must count
    /// `expected` (and no errors or unknown outcomes); then the charges it made are shown.
    pub(super) async fn sweep(
        &mut self,
        (year, month, day): (i32, u32, u32),
        label: &str,
        expected: Counts<'_>,
    ) -> anyhow::Result<()> {
        let at = kst_at(year, month, day, 9, 0)?;
        self.set_clock(at);
        let summary = self.stack.sweep(at).await?;
        let count = |field: &str| summary.get(field).and_then(Value::as_u64).unwrap_or(0);
        sweep_banner(at, label, count);
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
            self.show(who).await?;
        }
        Ok(())
    }

    /// `who`'s subscription has ended (canceled, no credits, nothing scheduled) and their billing
    /// key is gone; shown as `what`.
    pub(super) async fn ended(
        &self,
        at: DateTime<Utc>,
        who: Customer,
        what: &str,
    ) -> anyhow::Result<()> {
        let sub = self.expect_sub(who, Sub::CANCELED).await?;
        ensure!(
            sub.billing_key().is_none(),
            "{}'s billing key should be deleted once the subscription ended",
            who.name
        );
        row(
            at,
            who,
            what,
            "-",
            "-",
            "billing key deleted",
            sub.status().as_str(),
            &sub.credits().to_string(),
        );
        Ok(())
    }
}

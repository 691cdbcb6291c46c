//! The printed timeline: the intro, one row per thing that happened, notes under rows, the
//! banner of each daily run, and the ledger entries the table holds that were not shown yet.

use chrono::{DateTime, Utc};
use domain::{AttemptKind, AttemptStatus, ChargeAttempt, Subscription};

use super::client::Answer;
use super::{ALICE, BOB, CAROL, Customer, Walk};
use crate::config::{DUNNING_RETRY_DAYS, PLAN_AMOUNT, PLAN_CREDITS};
use crate::fmt::{columns, kst, kst_day, pad, rpad, won};

/// Column widths of the timeline: when, who, what, order id, amount, result (Toss's or the
/// app API's), state, credits.
const WIDTHS: [usize; 8] = [25, 5, 35, 30, 8, 26, 10, 7];

impl Walk<'_> {
    pub(super) fn intro(&self) {
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

    /// Prints the customer's ledger entries not shown yet; returns the subscription and ledger.
    pub(super) async fn show(
        &mut self,
        who: Customer,
    ) -> anyhow::Result<(Subscription, Vec<ChargeAttempt>)> {
        let sub = self.current(who).await?;
        let ledger = self.stack.store.ledger(sub.id()).await?;
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
            row(
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
}

/// One app-API call on the timeline: what was asked and what it answered.
pub(super) fn api_row(at: DateTime<Utc>, who: Customer, what: &str, answer: &Answer, result: &str) {
    let state = answer.json["status"].as_str().unwrap_or("-").to_owned();
    let credits = answer.json["credits"]
        .as_u64()
        .or_else(|| answer.json["error"]["credits"].as_u64())
        .map_or_else(|| "-".to_owned(), |c| c.to_string());
    row(at, who, what, "-", "-", result, &state, &credits);
}

#[allow(clippy::too_many_arguments)]
pub(super) fn row(
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

/// The banner of one daily run of `charge-subscriptions` and the counts its summary reports.
pub(super) fn sweep_banner(at: DateTime<Utc>, label: &str, count: impl Fn(&str) -> u64) {
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
}

pub(super) fn note(text: &str) {
    println!("{}· {text}", " ".repeat(WIDTHS[0] + 2));
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

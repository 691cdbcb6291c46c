//! `bench sweep …`: one sweep in its own process, so its peak resident memory is its own.
//! Prints one JSON line: the summary, DynamoDB requests per operation, time, peak RSS.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use billing::{Billing, Settings, SweepOptions};
use chrono::{DateTime, Utc};
use domain::{DunningPolicy, Krw, Plan};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::counting::{self, RequestCounter};

/// What the sweep process reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepReport {
    pub due: u64,
    pub charged: u64,
    pub skipped: u64,
    pub declined: u64,
    pub unknown_outcome: u64,
    pub errors: u64,
    pub stopped_early: bool,
    /// DynamoDB requests sent, per operation.
    pub requests: BTreeMap<String, u64>,
    /// The sweep call alone (not process start or client set-up).
    pub elapsed_ms: f64,
    /// `VmHWM` of this process when the sweep returned.
    pub peak_rss_kb: u64,
    /// CPU time (user + system, all threads) this process spent in the sweep call.
    pub cpu_ms: f64,
}

/// Arguments of the sweep process.
#[derive(Debug, Clone)]
pub struct SweepArgs {
    pub endpoint: String,
    pub table: String,
    pub toss_base: String,
    pub concurrency: usize,
    pub as_of: DateTime<Utc>,
    pub stop_after_ms: Option<u64>,
}

impl SweepArgs {
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "sweep".to_owned(),
            self.endpoint.clone(),
            self.table.clone(),
            self.toss_base.clone(),
            self.concurrency.to_string(),
            self.as_of.to_rfc3339(),
        ];
        if let Some(ms) = self.stop_after_ms {
            args.push(ms.to_string());
        }
        args
    }

    pub fn from_args(args: &[String]) -> anyhow::Result<Self> {
        let [endpoint, table, toss_base, concurrency, as_of, rest @ ..] = args else {
            anyhow::bail!(
                "usage: bench sweep <endpoint> <table> <toss-base> <concurrency> <as-of> [stop-after-ms]"
            );
        };
        Ok(Self {
            endpoint: endpoint.clone(),
            table: table.clone(),
            toss_base: toss_base.clone(),
            concurrency: concurrency.parse().context("concurrency")?,
            as_of: DateTime::parse_from_rfc3339(as_of)
                .context("as-of")?
                .with_timezone(&Utc),
            stop_after_ms: rest
                .first()
                .map(|v| v.parse())
                .transpose()
                .context("stop-after-ms")?,
        })
    }
}

/// The engine settings every benchmark process uses (the template's defaults).
pub fn settings() -> anyhow::Result<Settings> {
    Ok(Settings {
        plan: Plan::new(Krw::new(3900), "Saju맛피아 Pro 월 구독", 30)?,
        dunning: DunningPolicy::default(),
        lease: chrono::Duration::seconds(300),
        incomplete_expiry: chrono::Duration::hours(24),
        withdrawal_days: 7,
    })
}

pub async fn run(args: SweepArgs) -> anyhow::Result<()> {
    let counter = RequestCounter::default();
    let dynamodb = counting::client(&args.endpoint, Some(counter.clone()));
    let toss = toss::Client::new(toss::Config::new(
        SecretString::from(toss_sandbox::DOCS_SECRET_KEY.to_owned()),
        args.toss_base.parse().context("toss base URL")?,
    ))?;
    let billing = Billing::new(
        toss,
        store::Store::new(dynamodb, args.table.clone()),
        settings()?,
    );
    let options = SweepOptions {
        as_of: args.as_of,
        concurrency: args.concurrency,
        stop_claiming_at: args
            .stop_after_ms
            .map(|ms| Instant::now() + Duration::from_millis(ms)),
        run_id: format!("bench-{}", ulid::Ulid::new()),
        page_size: 100,
    };
    let cpu_before = cpu_ms()?;
    let started = Instant::now();
    let summary = billing.sweep(&options).await?;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let report = SweepReport {
        due: summary.due,
        charged: summary.charged,
        skipped: summary.skipped,
        declined: summary.declined,
        unknown_outcome: summary.unknown_outcome,
        errors: summary.errors,
        stopped_early: summary.stopped_early,
        requests: counter.counts(),
        elapsed_ms,
        peak_rss_kb: peak_rss_kb()?,
        cpu_ms: cpu_ms()? - cpu_before,
    };
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &report)?;
    writeln!(out)?;
    Ok(())
}

/// `VmHWM` (peak resident set) of this process, from `/proc/self/status`.
fn peak_rss_kb() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("read /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")
}

/// User + system CPU time of this process so far, from `/proc/self/stat` (clock ticks of
/// 10 ms, Linux's USER_HZ on x86_64 and arm64).
fn cpu_ms() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("read /proc/self/stat")?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat
        .rsplit_once(") ")
        .map(|(_, r)| r)
        .context("parse /proc/self/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .context("short /proc/self/stat")?
            .parse::<f64>()?)
    };
    Ok((ticks(11)? + ticks(12)?) * 10.0)
}

//! `bench`: the renewal sweep's throughput benchmark, and a cold-start timer.
//!
//! ```text
//! bench [run] [--n N] [--latency-ms 50,500] [--concurrency 8,32,128] [--seconds S]
//!             [--memory-n 100000] [--skip-n N] [--chain-n N]
//! bench coldstart [--starts 20] [--node tools/coldstart/node/index.mjs] \
//!       <charge-subscriptions bootstrap> <billing-api bootstrap>
//! bench app-api [--requests 1000] [--concurrency 1,16] [--users 32]
//! bench sweep …           (internal: one sweep in its own process)
//! ```
//! See docs/performance.md.

mod app_api;
mod coldstart;
mod counting;
mod seed;
mod sweeper;
mod throughput;

use anyhow::{Context, bail};

fn list<T: std::str::FromStr>(value: &str, flag: &str) -> anyhow::Result<Vec<T>> {
    value
        .split(',')
        .map(|v| v.trim().parse::<T>().ok())
        .collect::<Option<Vec<T>>>()
        .with_context(|| format!("{flag} takes a comma-separated list of whole numbers"))
}

fn parse_run(args: &[String]) -> anyhow::Result<throughput::Options> {
    let mut options = throughput::Options::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .with_context(|| format!("{flag} takes a whole number"))
        };
        match flag.as_str() {
            "--n" => options.n = number()?,
            "--latency-ms" => options.latencies_ms = list(value, flag)?,
            "--concurrency" => options.concurrencies = list(value, flag)?,
            "--seconds" => options.seconds = value.parse().context("--seconds")?,
            "--memory-n" => options.memory_n = number()?,
            "--skip-n" => options.skip_n = number()?,
            "--chain-n" => options.chain_n = number()?,
            other => bail!("unknown flag {other}; see docs/performance.md"),
        }
    }
    if options.latencies_ms.contains(&0) || options.concurrencies.contains(&0) {
        bail!("latencies and concurrencies must be above 0");
    }
    Ok(options)
}

fn parse_app_api(args: &[String]) -> anyhow::Result<app_api::Options> {
    let mut options = app_api::Options::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--requests" => options.requests = value.parse().context("--requests")?,
            "--concurrency" => options.concurrencies = list(value, flag)?,
            "--users" => options.users = value.parse().context("--users")?,
            other => bail!("unknown flag {other}; see docs/performance.md"),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("sweep") => sweeper::run(sweeper::SweepArgs::from_args(&args[1..])?).await,
        Some("coldstart") => coldstart(&args[1..]).await,
        Some("app-api") => {
            let table = app_api::run(parse_app_api(&args[1..])?).await?;
            std::io::Write::write_all(&mut std::io::stdout().lock(), table.as_bytes())?;
            Ok(())
        }
        Some("run") => finish(throughput::run(parse_run(&args[1..])?).await?),
        _ => finish(throughput::run(parse_run(&args)?).await?),
    }
}

async fn coldstart(args: &[String]) -> anyhow::Result<()> {
    let mut starts = 20;
    let mut node = None;
    let mut bins = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--starts" => starts = it.next().context("--starts N")?.parse()?,
            "--node" => node = Some(it.next().context("--node <index.mjs>")?.clone()),
            other => bins.push(other.to_owned()),
        }
    }
    let [charge, api] = bins.as_slice() else {
        bail!(
            "usage: bench coldstart [--starts N] [--node index.mjs] <charge-subscriptions> <billing-api>"
        );
    };
    let mut targets = vec![
        coldstart::Target {
            name: "charge-subscriptions".into(),
            command: vec![charge.clone()],
            event: coldstart::EventKind::Scheduled,
        },
        coldstart::Target {
            name: "billing-api".into(),
            command: vec![api.clone()],
            event: coldstart::EventKind::BillingSuccess,
        },
    ];
    if let Some(script) = node {
        targets.push(coldstart::Target {
            name: "sweep first step (seed's language)".into(),
            command: vec!["node".into(), script],
            event: coldstart::EventKind::Scheduled,
        });
    }
    let table = coldstart::run(targets, starts).await?;
    std::io::Write::write_all(&mut std::io::stdout().lock(), table.as_bytes())?;
    Ok(())
}

fn finish(ok: bool) -> anyhow::Result<()> {
    if !ok {
        bail!("a renewal was not charged exactly once (see PROBLEM lines above)");
    }
    Ok(())
}

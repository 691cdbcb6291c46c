//! `bench`: the renewal sweep's throughput benchmark, and a cold-start timer.
//!
//! ```text
//! bench run [--n N] [--latency-ms 50,500] [--concurrency 8,32,128] [--seconds S]
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

use anyhow::bail;
use clap::{Args, Parser, Subcommand};

/// The renewal sweep's throughput benchmark, the app API's benchmark and a cold-start timer
/// (see docs/performance.md).
#[derive(Debug, Parser)]
#[command(name = "bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The sweep's throughput table: seeds due subscriptions, runs the sweep in its own process.
    Run(RunArgs),
    /// GET /v1/subscription and POST /v1/credits/consume through billing-api's router.
    AppApi(AppApiArgs),
    /// Process start to first event handled, under a local Lambda Runtime API.
    Coldstart(ColdstartArgs),
    /// Internal: one sweep in its own process (`run` starts it).
    #[command(hide = true)]
    Sweep {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Unset flags keep `throughput::Options`' defaults.
#[derive(Debug, Args)]
struct RunArgs {
    /// Most subscriptions seeded for one setting.
    #[arg(long)]
    n: Option<usize>,
    /// Latencies injected on every charge, in ms (comma-separated, each above 0).
    #[arg(long = "latency-ms", value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..))]
    latency_ms: Option<Vec<u64>>,
    /// Charges in flight at Toss (comma-separated, each above 0).
    #[arg(long, value_delimiter = ',', value_parser = positive)]
    concurrency: Option<Vec<usize>>,
    /// Each setting seeds about limit × seconds subscriptions.
    #[arg(long)]
    seconds: Option<f64>,
    /// Subscriptions for the memory row (0: none).
    #[arg(long = "memory-n")]
    memory_n: Option<usize>,
    /// Subscriptions another run holds a claim on (0: none).
    #[arg(long = "skip-n")]
    skip_n: Option<usize>,
    /// Subscriptions for the chain row (0: none).
    #[arg(long = "chain-n")]
    chain_n: Option<usize>,
}

impl RunArgs {
    fn options(self) -> throughput::Options {
        let d = throughput::Options::default();
        throughput::Options {
            n: self.n.unwrap_or(d.n),
            latencies_ms: self.latency_ms.unwrap_or(d.latencies_ms),
            concurrencies: self.concurrency.unwrap_or(d.concurrencies),
            seconds: self.seconds.unwrap_or(d.seconds),
            memory_n: self.memory_n.unwrap_or(d.memory_n),
            skip_n: self.skip_n.unwrap_or(d.skip_n),
            chain_n: self.chain_n.unwrap_or(d.chain_n),
        }
    }
}

/// Unset flags keep `app_api::Options`' defaults.
#[derive(Debug, Args)]
struct AppApiArgs {
    /// Requests per row.
    #[arg(long)]
    requests: Option<usize>,
    /// Concurrent callers per row (comma-separated, each above 0).
    #[arg(long, value_delimiter = ',', value_parser = positive)]
    concurrency: Option<Vec<usize>>,
    /// Subscribed users the requests are spread over.
    #[arg(long)]
    users: Option<usize>,
}

impl AppApiArgs {
    fn options(self) -> app_api::Options {
        let d = app_api::Options::default();
        app_api::Options {
            requests: self.requests.unwrap_or(d.requests),
            concurrencies: self.concurrency.unwrap_or(d.concurrencies),
            users: self.users.unwrap_or(d.users),
        }
    }
}

#[derive(Debug, Args)]
struct ColdstartArgs {
    /// Cold starts per function.
    #[arg(long, default_value_t = 20)]
    starts: usize,
    /// The seed's Node.js sweep (tools/coldstart/node/index.mjs), timed beside ours.
    #[arg(long)]
    node: Option<String>,
    /// charge-subscriptions' bootstrap.
    charge: String,
    /// billing-api's bootstrap.
    api: String,
}

fn positive(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("must be a whole number above 0".into()),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => finish(throughput::run(args.options()).await?),
        Command::AppApi(args) => {
            let table = app_api::run(args.options()).await?;
            std::io::Write::write_all(&mut std::io::stdout().lock(), table.as_bytes())?;
            Ok(())
        }
        Command::Coldstart(args) => coldstart(args).await,
        Command::Sweep { args } => sweeper::run(sweeper::SweepArgs::from_args(&args)?).await,
    }
}

async fn coldstart(args: ColdstartArgs) -> anyhow::Result<()> {
    let ColdstartArgs {
        starts,
        node,
        charge,
        api,
    } = args;
    let mut targets = vec![
        coldstart::Target {
            name: "charge-subscriptions".into(),
            command: vec![charge],
            event: coldstart::EventKind::Scheduled,
        },
        coldstart::Target {
            name: "billing-api".into(),
            command: vec![api],
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

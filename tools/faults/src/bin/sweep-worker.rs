//! One renewal sweep as a process: the `charge-subscriptions` configuration (same env vars, same
//! `billing::Config`), the as-of time from `SWEEP_AS_OF` (RFC 3339) and the run id from
//! `SWEEP_RUN_ID`. Built with `billing/failpoints`: `BILLING_FAILPOINT=<name>` parks the process at
//! that step so a test can SIGKILL it there. Prints the summary as one JSON line on stdout; logs go
//! to stderr at `RUST_LOG` (default debug).

use std::io::Write;

use anyhow::Context;
use billing::SweepOptions;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let env = |name: &str| std::env::var(name).ok();
    let config = billing::Config::from_lookup(env).context("configuration")?;
    let as_of = env("SWEEP_AS_OF").context("SWEEP_AS_OF is required")?;
    let as_of = chrono::DateTime::parse_from_rfc3339(&as_of)
        .context("SWEEP_AS_OF is not RFC 3339")?
        .with_timezone(&chrono::Utc);
    let concurrency = env("CHARGE_CONCURRENCY")
        .map(|v| v.parse::<usize>())
        .transpose()
        .context("CHARGE_CONCURRENCY")?
        .unwrap_or(8);
    let run_id = env("SWEEP_RUN_ID").unwrap_or_else(|| format!("worker-{}", std::process::id()));

    let aws = aws_config::load_from_env().await;
    let store = store::Store::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name);
    let toss = toss::Client::new(config.toss)?;
    let billing = billing::Billing::new(toss, store, config.settings);
    let options = SweepOptions {
        as_of,
        concurrency,
        stop_claiming_at: None,
        run_id,
        page_size: 100,
    };
    let summary = billing.sweep(&options).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(&summary)?)?;
    Ok(())
}

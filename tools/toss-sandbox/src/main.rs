//! `toss-sandbox`: serve the Toss billing emulator on 127.0.0.1 until SIGINT/SIGTERM.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use toss_sandbox::{Latency, SandboxConfig, SecretKeySpec};

/// toss-sandbox: a stateful local emulator of the Toss Payments billing API
#[derive(Debug, Parser)]
#[command(
    name = "toss-sandbox",
    after_help = "Logs go to stderr; RUST_LOG sets the filter (default info)."
)]
struct Args {
    /// Listen address [default: 127.0.0.1]
    #[arg(long, value_name = "IP")]
    host: Option<IpAddr>,
    /// Listen port; 0 = any free port [default: 8790]
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// Accept this test secret key (repeatable): KEY or KEY=MID
    #[arg(long = "secret-key", value_name = "KEY")]
    secret_keys: Vec<String>,
    /// Accept this key but without a billing contract (repeatable)
    #[arg(long = "no-contract-key", value_name = "KEY")]
    no_contract_keys: Vec<String>,
    /// Do not accept the public docs test keys
    #[arg(long)]
    no_docs_keys: bool,
    /// Seed of the fault RNG [default: 1]
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Latency on every endpoint: fixed, or uniform between MIN and MAX
    #[arg(long = "latency-ms", value_name = "MS|MIN..MAX", value_parser = parse_latency)]
    latency: Option<Latency>,
    /// Start the sandbox clock shifted by S seconds
    #[arg(
        long = "clock-offset-secs",
        value_name = "S",
        allow_negative_numbers = true
    )]
    clock_offset_secs: Option<i64>,
    /// JSON SandboxConfig; the other flags override what it says
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = sandbox_config(args)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")?
        .block_on(run(config))
}

async fn run(config: SandboxConfig) -> anyhow::Result<()> {
    let sandbox = toss_sandbox::spawn(config).await?;
    tracing::info!(
        base_url = %sandbox.base_url(),
        "set TOSS_API_BASE to the base URL; control API under /__sandbox/"
    );
    shutdown_signal().await?;
    tracing::info!("shutting down");
    sandbox.shutdown().await
}

async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("listen for SIGINT")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}

/// The configuration file (or the defaults on 127.0.0.1:8790), then every flag on top of it.
fn sandbox_config(args: Args) -> anyhow::Result<SandboxConfig> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("read the config file {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("parse the config file {}", path.display()))?
        }
        None => SandboxConfig {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8790),
            ..SandboxConfig::default()
        },
    };
    config.bind = SocketAddr::new(
        args.host.unwrap_or(config.bind.ip()),
        args.port.unwrap_or(config.bind.port()),
    );
    for raw in args.secret_keys {
        config.secret_keys.push(match raw.split_once('=') {
            Some((key, mid)) => SecretKeySpec::new(key).with_mid(mid),
            None => SecretKeySpec::new(raw),
        });
    }
    for key in args.no_contract_keys {
        config
            .secret_keys
            .push(SecretKeySpec::new(key).without_billing_contract());
    }
    if args.no_docs_keys {
        config.docs_keys = false;
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if let Some(latency) = args.latency {
        config.faults.latency.default = Some(latency);
    }
    if let Some(offset) = args.clock_offset_secs {
        config.clock_offset_seconds = offset;
    }
    Ok(config)
}

fn parse_latency(text: &str) -> anyhow::Result<Latency> {
    match text.split_once("..") {
        Some((min, max)) => Ok(Latency::Uniform {
            min_ms: min.trim().parse().context("bad minimum")?,
            max_ms: max.trim().parse().context("bad maximum")?,
        }),
        None => Ok(Latency::Fixed {
            ms: text.trim().parse().context("not a number")?,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> SandboxConfig {
        Args::try_parse_from(std::iter::once("toss-sandbox").chain(args.iter().copied()))
            .map_err(anyhow::Error::from)
            .and_then(sandbox_config)
            .unwrap_or_else(|e| panic!("parse failed for {args:?}: {e}"))
    }

    #[test]
    fn the_default_listens_on_loopback_port_8790() {
        assert_eq!(
            parse(&[]).bind,
            "127.0.0.1:8790".parse().unwrap_or_else(|e| panic!("{e}"))
        );
    }

    #[test]
    fn latency_takes_a_fixed_value_or_a_range() {
        assert_eq!(parse_latency("25").ok(), Some(Latency::Fixed { ms: 25 }));
        assert_eq!(
            parse_latency("10..30").ok(),
            Some(Latency::Uniform {
                min_ms: 10,
                max_ms: 30
            })
        );
    }

    #[test]
    fn secret_keys_can_name_their_mid_and_drop_the_contract() {
        let config = parse(&[
            "--secret-key",
            "test_sk_a=shop_a",
            "--no-contract-key",
            "test_sk_b",
            "--seed",
            "9",
        ]);
        assert_eq!(config.seed, 9);
        assert_eq!(config.secret_keys[0].mid.as_deref(), Some("shop_a"));
        assert!(!config.secret_keys[1].billing_contract);
    }

    #[test]
    fn the_clock_can_start_in_the_past() {
        assert_eq!(
            parse(&["--clock-offset-secs", "-3600"]).clock_offset_seconds,
            -3600
        );
    }

    #[test]
    fn an_unknown_flag_is_an_error() {
        assert!(Args::try_parse_from(["toss-sandbox", "--bogus"]).is_err());
    }
}

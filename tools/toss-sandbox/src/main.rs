//! `toss-sandbox`: serve the Toss billing emulator on 127.0.0.1 until SIGINT/SIGTERM.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Context, bail};
use toss_sandbox::{Latency, SandboxConfig, SecretKeySpec};

const HELP: &str = "\
toss-sandbox: a stateful local emulator of the Toss Payments billing API

USAGE: toss-sandbox [OPTIONS]

OPTIONS:
  --host <IP>                 listen address (default 127.0.0.1)
  --port <PORT>               listen port (default 8790; 0 = any free port)
  --secret-key <KEY>          accept this test secret key (repeatable); KEY or KEY=MID
  --no-contract-key <KEY>     accept this key but without a billing contract (repeatable)
  --no-docs-keys              do not accept the public docs test keys
  --seed <N>                  seed of the fault RNG (default 1)
  --latency-ms <MS|MIN..MAX>  latency on every endpoint: fixed, or uniform between MIN and MAX
  --clock-offset-secs <S>     start the sandbox clock shifted by S seconds
  --config <FILE>             JSON SandboxConfig (flags given after it override it)
  -h, --help                  this text

Logs go to stderr; RUST_LOG sets the filter (default info).";

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let Some(config) = parse_args(std::env::args().skip(1))? else {
        eprintln!("{HELP}");
        return Ok(());
    };
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

/// `Ok(None)` means: print the help.
fn parse_args(args: impl Iterator<Item = String>) -> anyhow::Result<Option<SandboxConfig>> {
    let mut config = SandboxConfig::default();
    let mut host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut port: u16 = 8790;
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--host" => {
                host = value("--host")?
                    .parse()
                    .context("--host: not an IP address")?
            }
            "--port" => {
                port = value("--port")?
                    .parse()
                    .context("--port: not a port number")?
            }
            "--secret-key" => {
                let raw = value("--secret-key")?;
                let spec = match raw.split_once('=') {
                    Some((key, mid)) => SecretKeySpec::new(key).with_mid(mid),
                    None => SecretKeySpec::new(raw),
                };
                config.secret_keys.push(spec);
            }
            "--no-contract-key" => config
                .secret_keys
                .push(SecretKeySpec::new(value("--no-contract-key")?).without_billing_contract()),
            "--no-docs-keys" => config.docs_keys = false,
            "--seed" => config.seed = value("--seed")?.parse().context("--seed: not a number")?,
            "--latency-ms" => {
                config.faults.latency.default = Some(parse_latency(&value("--latency-ms")?)?)
            }
            "--clock-offset-secs" => {
                config.clock_offset_seconds = value("--clock-offset-secs")?
                    .parse()
                    .context("--clock-offset-secs: not a number")?;
            }
            "--config" => {
                let path = value("--config")?;
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("read the config file {path}"))?;
                config = serde_json::from_str(&text)
                    .with_context(|| format!("parse the config file {path}"))?;
                host = config.bind.ip();
                port = config.bind.port();
            }
            other => bail!("unknown argument {other:?}; see --help"),
        }
    }
    config.bind = SocketAddr::new(host, port);
    Ok(Some(config))
}

fn parse_latency(text: &str) -> anyhow::Result<Latency> {
    match text.split_once("..") {
        Some((min, max)) => Ok(Latency::Uniform {
            min_ms: min.trim().parse().context("--latency-ms: bad minimum")?,
            max_ms: max.trim().parse().context("--latency-ms: bad maximum")?,
        }),
        None => Ok(Latency::Fixed {
            ms: text.trim().parse().context("--latency-ms: not a number")?,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> SandboxConfig {
        parse_args(args.iter().map(|s| s.to_string()))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("parse failed for {args:?}"))
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
    fn an_unknown_flag_is_an_error() {
        assert!(parse_args(["--bogus".to_string()].into_iter()).is_err());
    }
}

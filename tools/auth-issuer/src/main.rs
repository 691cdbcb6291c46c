//! `auth-issuer`: serve a local OIDC issuer on 127.0.0.1 until SIGINT/SIGTERM.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use auth_issuer::{IssuerConfig, SigningKey};
use clap::Parser;

/// A local OIDC issuer (JWKS + Clerk-like session tokens) for tests and the demo.
///
/// Control API under /__issuer/ (see the README). Logs go to stderr; RUST_LOG sets the filter.
#[derive(Debug, Parser)]
#[command(name = "auth-issuer")]
struct Args {
    /// Listen address.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// Listen port (0 = any free port).
    #[arg(long, default_value_t = 8791)]
    port: u16,
    /// The `iss` of the tokens (default http://<host>:<port>).
    #[arg(long = "issuer-url", value_name = "URL")]
    issuer_url: Option<String>,
    /// Token lifetime in seconds.
    #[arg(long = "lifetime-secs", value_name = "S", default_value_t = 60)]
    lifetime_secs: u64,
    /// `azp` of tokens that name none (default http://localhost:3000).
    #[arg(long, value_name = "ORIGIN", conflicts_with = "no_azp")]
    azp: Option<String>,
    /// Tokens carry no `azp` unless asked.
    #[arg(long = "no-azp")]
    no_azp: bool,
    /// Sign with this PKCS#8 PEM key, RSA or P-256 (repeatable; the last of each algorithm
    /// signs; a missing algorithm gets a generated key).
    #[arg(long = "key", value_name = "FILE")]
    keys: Vec<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = issuer_config(Args::parse())?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")?
        .block_on(run(config))
}

async fn run(config: IssuerConfig) -> anyhow::Result<()> {
    let issuer = auth_issuer::spawn(config).await?;
    tracing::info!(
        issuer = issuer.issuer_url(),
        jwks = %issuer.jwks_url(),
        "set AUTH_ISSUER to the issuer; mint tokens with POST /__issuer/tokens"
    );
    shutdown_signal().await?;
    tracing::info!("shutting down");
    issuer.shutdown().await
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

fn issuer_config(args: Args) -> anyhow::Result<IssuerConfig> {
    let mut config = IssuerConfig {
        bind: SocketAddr::new(args.host, args.port),
        issuer_url: args
            .issuer_url
            .map(|url| url.trim_end_matches('/').to_owned()),
        lifetime: Duration::from_secs(args.lifetime_secs),
        ..IssuerConfig::default()
    };
    if args.no_azp {
        config.default_azp = None;
    } else if let Some(azp) = args.azp {
        config.default_azp = Some(azp);
    }
    for path in args.keys {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("read the key file {}", path.display()))?;
        let key = SigningKey::from_pkcs8_pem(&text)
            .with_context(|| format!("load the key file {}", path.display()))?;
        config.keys.push(key);
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> anyhow::Result<IssuerConfig> {
        issuer_config(Args::try_parse_from(
            std::iter::once("auth-issuer").chain(args.iter().copied()),
        )?)
    }

    #[test]
    fn the_default_listens_on_loopback_port_8791_with_the_apps_origin_as_azp() {
        let c = config(&[]).unwrap();
        assert_eq!(c.bind, "127.0.0.1:8791".parse().unwrap());
        assert_eq!(c.default_azp.as_deref(), Some("http://localhost:3000"));
        assert_eq!(c.lifetime, Duration::from_secs(60));
        assert_eq!(c.issuer_url, None);
    }

    #[test]
    fn flags_set_the_address_issuer_lifetime_and_azp() {
        let c = config(&[
            "--host",
            "127.0.0.2",
            "--port",
            "0",
            "--issuer-url",
            "http://issuer.test/",
            "--lifetime-secs",
            "5",
            "--azp",
            "https://app.example",
        ])
        .unwrap();
        assert_eq!(c.bind, "127.0.0.2:0".parse().unwrap());
        assert_eq!(c.issuer_url.as_deref(), Some("http://issuer.test"));
        assert_eq!(c.lifetime, Duration::from_secs(5));
        assert_eq!(c.default_azp.as_deref(), Some("https://app.example"));
        assert_eq!(config(&["--no-azp"]).unwrap().default_azp, None);
    }

    #[test]
    fn bad_input_is_refused_naming_it() {
        for (args, named) in [
            (&["--port", "70000"][..], "--port"),
            (&["--host", "localhost"][..], "--host"),
            (&["--azp", "x", "--no-azp"][..], "--no-azp"),
            (&["--unknown"][..], "--unknown"),
            (
                &["--key", "/nonexistent/key.pem"][..],
                "/nonexistent/key.pem",
            ),
        ] {
            let error = format!("{:#}", config(args).unwrap_err());
            assert!(error.contains(named), "{args:?}: {error}");
        }
    }
}

//! `auth-issuer`: serve a local OIDC issuer on 127.0.0.1 until SIGINT/SIGTERM.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use auth_issuer::{IssuerConfig, SigningKey};

const HELP: &str = "\
auth-issuer: a local OIDC issuer (JWKS + Clerk-like session tokens) for tests and the demo

USAGE: auth-issuer [OPTIONS]

OPTIONS:
  --host <IP>              listen address (default 127.0.0.1)
  --port <PORT>            listen port (default 8791; 0 = any free port)
  --issuer-url <URL>       the iss of the tokens (default http://<host>:<port>)
  --lifetime-secs <S>      token lifetime (default 60)
  --azp <ORIGIN>           azp of tokens that name none (default http://localhost:3000)
  --no-azp                 tokens carry no azp unless asked
  --key <FILE>             sign with this PKCS#8 PEM key, RSA or P-256 (repeatable; the last of
                           each algorithm signs; a missing algorithm gets a generated key)
  -h, --help               this text

Control API under /__issuer/ (see the README). Logs go to stderr; RUST_LOG sets the filter.";

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

/// `Ok(None)` means: print the help.
fn parse_args(args: impl Iterator<Item = String>) -> anyhow::Result<Option<IssuerConfig>> {
    let mut config = IssuerConfig::default();
    let mut host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut port: u16 = 8791;
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
            "--issuer-url" => {
                config.issuer_url = Some(value("--issuer-url")?.trim_end_matches('/').to_owned())
            }
            "--lifetime-secs" => {
                let secs: u64 = value("--lifetime-secs")?
                    .parse()
                    .context("--lifetime-secs: not a number")?;
                config.lifetime = Duration::from_secs(secs);
            }
            "--azp" => config.default_azp = Some(value("--azp")?),
            "--no-azp" => config.default_azp = None,
            "--key" => {
                let path = value("--key")?;
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("read the key file {path}"))?;
                let key = SigningKey::from_pkcs8_pem(&text)
                    .with_context(|| format!("load the key file {path}"))?;
                config.keys.push(key);
            }
            other => bail!("unknown argument {other:?}; see --help"),
        }
    }
    config.bind = SocketAddr::new(host, port);
    Ok(Some(config))
}

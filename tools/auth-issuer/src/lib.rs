//! A local OIDC issuer for tests and the demo: it serves `/.well-known/openid-configuration` and
//! `/.well-known/jwks.json` on loopback and mints Clerk-like session tokens (RS256 or ES256),
//! including the hostile ones a verifier must refuse.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use auth_issuer::{IssuerConfig, TokenRequest};
//! let issuer = auth_issuer::spawn(IssuerConfig::default()).await?;
//! // AUTH_ISSUER = issuer.issuer_url(); the JWKS is at issuer.jwks_url()
//! let token = issuer.issuer().mint(&TokenRequest::for_user("user_1"))?;
//! # let _ = token;
//! issuer.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! See the crate README for the endpoints and the forgeries.

pub mod issuer;
pub mod keys;
pub mod server;
pub mod token;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use issuer::{Issuer, JwksFault, MintError, unix_now};
pub use keys::{KeyError, SigningAlg, SigningKey};
pub use token::{Forgery, TokenRequest};

/// How to start an issuer.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// Default `127.0.0.1:0` (a free port).
    pub bind: SocketAddr,
    /// The `iss` of its tokens; default `http://<bound address>`.
    pub issuer_url: Option<String>,
    /// Token lifetime; default 60 s, like a Clerk session token.
    pub lifetime: Duration,
    /// `azp` of tokens that do not name one; default `http://localhost:3000`.
    pub default_azp: Option<String>,
    /// Keys to publish and sign with (the last of each algorithm signs); an algorithm without
    /// one gets a generated key.
    pub keys: Vec<SigningKey>,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        IssuerConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            issuer_url: None,
            lifetime: Duration::from_secs(60),
            default_azp: Some("http://localhost:3000".to_owned()),
            keys: Vec::new(),
        }
    }
}

/// Start an issuer on `config.bind`.
pub async fn spawn(config: IssuerConfig) -> anyhow::Result<RunningIssuer> {
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("bind the issuer to {}", config.bind))?;
    let addr = listener.local_addr().context("read the issuer address")?;
    let issuer_url = config
        .issuer_url
        .unwrap_or_else(|| format!("http://{addr}"));
    let keys = config.keys;
    let (lifetime, default_azp) = (config.lifetime, config.default_azp);
    // key generation is CPU work (RSA especially): keep it off the async workers
    let issuer =
        tokio::task::spawn_blocking(move || Issuer::new(issuer_url, lifetime, default_azp, keys))
            .await
            .context("the key generation task failed")?
            .context("generate the signing keys")?;
    let (shutdown, mut signal) = watch::channel(false);
    let app = server::router(issuer.clone());
    let task = tokio::spawn(async move {
        let stopped = async move {
            let _ = signal.wait_for(|stop| *stop).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::error!(error.message = %e, "the issuer server stopped");
        }
    });
    tracing::info!(%addr, issuer = issuer.issuer_url(), "auth issuer listening");
    Ok(RunningIssuer {
        addr,
        issuer,
        shutdown,
        task: Some(task),
    })
}

/// An issuer serving in the background. Dropping it stops the server.
#[derive(Debug)]
pub struct RunningIssuer {
    addr: SocketAddr,
    issuer: Issuer,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RunningIssuer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The value for `AUTH_ISSUER`.
    pub fn issuer_url(&self) -> &str {
        self.issuer.issuer_url()
    }

    /// The value for `AUTH_JWKS_URL` (also its default).
    pub fn jwks_url(&self) -> String {
        self.issuer.jwks_url()
    }

    /// The in-process handle: mint, rotate, count.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// Stop accepting, let open requests finish, and wait for the server.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            task.await.context("the issuer server task failed")?;
        }
        Ok(())
    }
}

impl Drop for RunningIssuer {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

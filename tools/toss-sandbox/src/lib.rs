//! A stateful local emulator of the Toss Payments billing API (like stripe-mock, with state).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use toss_sandbox::{SandboxConfig, TestCard};
//! let sandbox = toss_sandbox::spawn(SandboxConfig::default()).await?;
//! let auth_key = sandbox.sandbox().mint_auth_key("customer-1", TestCard::Ok)?;
//! // point the Toss client at sandbox.base_url() and exchange auth_key for a billing key …
//! let state = sandbox.sandbox().snapshot();
//! # let _ = (auth_key, state);
//! sandbox.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! See the crate README for the endpoints, knobs and test cards.

// Private behind the re-exports below, except the two modules other crates name by path
// (`faults::LatencyConfig`, `snapshot::PaymentView`).
mod auth;
mod cards;
mod config;
mod control;
mod errors;
mod fault_answers;
pub mod faults;
mod idempotency;
mod inspect;
mod knobs;
mod model;
mod ops;
mod outbox;
mod page;
mod pipeline;
mod requests;
mod routes;
mod server;
pub mod snapshot;
mod state;
mod webhooks;

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use auth::basic_header;
pub use cards::TestCard;
pub use config::{
    DOCS_CLIENT_KEY, DOCS_MID, DOCS_SECRET_KEY, DOCS_WIDGET_SECRET_KEY, KeyError, KeyKind,
    SandboxConfig, SecretKeySpec,
};
pub use errors::ApiError;
pub use faults::{
    DeclineRule, Endpoint, FaultAction, FaultConfig, FaultRule, Latency, LatencyConfig,
};
pub use model::{Billing, BillingCard, Cancel, Payment, PaymentCard};
pub use outbox::{WebhookDelivery, WebhookEndpoint};
pub use pipeline::{IDEMPOTENCY_HEADER, TEST_CODE_HEADER};
pub use server::TRACE_ID_HEADER;
pub use snapshot::{
    BillingKeyView, ChargeAttemptView, Counters, IdempotencyView, MerchantView, PaymentView,
    Snapshot, fingerprint,
};
pub use state::Sandbox;
pub use webhooks::{
    RETRY_MINUTES, TRANSMISSION_ID_HEADER, TRANSMISSION_RETRIED_COUNT_HEADER,
    TRANSMISSION_TIME_HEADER,
};

/// Start a sandbox on `config.bind` (by default `127.0.0.1:0`, a free port).
pub async fn spawn(config: SandboxConfig) -> anyhow::Result<RunningSandbox> {
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("bind the sandbox to {}", config.bind))?;
    let addr = listener.local_addr().context("read the sandbox address")?;
    let sandbox = Sandbox::new(config).context("register the configured secret keys")?;
    let (shutdown, signal) = watch::channel(false);
    let router = server::router(sandbox.clone());
    let task = tokio::spawn(server::serve(listener, router, signal));
    tracing::info!(%addr, "toss sandbox listening");
    Ok(RunningSandbox {
        addr,
        sandbox,
        shutdown,
        task: Some(task),
    })
}

/// A sandbox serving in the background. Dropping it stops the server.
#[derive(Debug)]
pub struct RunningSandbox {
    addr: SocketAddr,
    sandbox: Sandbox,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RunningSandbox {
    /// `http://127.0.0.1:<port>`, the value for `TOSS_API_BASE`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The in-process handle: mint authKeys, set knobs, read the state.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// The billing-auth page URL the SDK's `requestBillingAuth` would open.
    pub fn billing_auth_url(
        &self,
        client_key: &str,
        customer_key: &str,
        success_url: &str,
        fail_url: &str,
    ) -> String {
        page::append_query(
            &format!("{}/billing-auth", self.base_url()),
            &[
                ("clientKey", client_key),
                ("customerKey", customer_key),
                ("successUrl", success_url),
                ("failUrl", fail_url),
            ],
        )
    }

    /// Stop accepting, let open requests finish (at most ~5 s), and wait for the server.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            task.await.context("the sandbox server task failed")?;
        }
        Ok(())
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

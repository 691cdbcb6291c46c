//! The verifier against a real issuer (tools/auth-issuer) over HTTP on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod forgeries;
mod keys;
mod secrecy;
mod tokens;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth::{AuthUser, Clock, Config, Error, Verifier};
use auth_issuer::{IssuerConfig, RunningIssuer, TokenRequest};

/// A clock for the refetch pacing that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    offset: Mutex<Duration>,
}

impl ManualClock {
    pub fn new() -> Arc<Self> {
        Arc::new(ManualClock {
            start: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        })
    }

    pub fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + *self.offset.lock().unwrap()
    }
}

/// An issuer, and a verifier that trusts it.
#[derive(Debug)]
pub struct Env {
    pub issuer: RunningIssuer,
    pub clock: Arc<ManualClock>,
    pub verifier: Verifier,
}

impl Env {
    pub async fn new() -> Env {
        Env::with(|config| config).await
    }

    /// With the verifier's configuration adjusted.
    pub async fn with(adjust: impl FnOnce(Config) -> Config) -> Env {
        let issuer = auth_issuer::spawn(IssuerConfig::default()).await.unwrap();
        let clock = ManualClock::new();
        let config = adjust(Config::new(issuer.issuer_url()).unwrap());
        let verifier = Verifier::with_clock(config, clock.clone()).unwrap();
        Env {
            issuer,
            clock,
            verifier,
        }
    }

    pub fn mint(&self, request: TokenRequest) -> String {
        self.issuer.issuer().mint(&request).unwrap()
    }

    /// Through the header, as the API will call it.
    pub async fn verify(&self, token: &str) -> Result<AuthUser, Error> {
        let header = format!("Bearer {token}");
        self.verifier.authenticate(Some(header.as_bytes())).await
    }

    pub fn fetches(&self) -> u64 {
        self.issuer.issuer().jwks_fetches()
    }
}

/// The user id of a successful verification, or the refusal.
pub fn user(result: Result<AuthUser, Error>) -> String {
    match result {
        Ok(user) => user.user_id.to_string(),
        Err(e) => panic!("expected a user, got {e:?}"),
    }
}

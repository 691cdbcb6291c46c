//! Start-up configuration of a sandbox.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::faults::{DeclineRule, FaultConfig, Latency};

/// The public docs test secret key (API 개별 연동 키), accepted by default.
pub const DOCS_SECRET_KEY: &str = "test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R";
/// The client key paired with [`DOCS_SECRET_KEY`] in the official sample.
pub const DOCS_CLIENT_KEY: &str = "test_ck_D5GePWvyJnrK0W0k6q8gLzN97Eoq";
/// The public docs widget secret key: accepted, but billing endpoints refuse it.
pub const DOCS_WIDGET_SECRET_KEY: &str = "test_gsk_docs_OaPz8L5KdmQXkzRz3y47BMw6";
/// The MID the docs key plays.
pub const DOCS_MID: &str = "tosspayments";

/// The kind of secret key, from its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyKind {
    /// `test_sk_`: API 개별 연동 secret key.
    Api,
    /// `test_gsk_`: widget secret key; cannot do billing.
    Widget,
}

/// Why a key cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("live keys are refused: the sandbox only plays test mode")]
    Live,
    #[error("not a test secret key (expected a test_sk_ or test_gsk_ prefix)")]
    NotASecretKey,
    #[error("a MID must be 1 to 14 characters")]
    BadMid,
}

/// Classify a secret key by prefix.
pub fn key_kind(secret_key: &str) -> Result<KeyKind, KeyError> {
    if secret_key.starts_with("live_") {
        Err(KeyError::Live)
    } else if secret_key.len() > "test_sk_".len() && secret_key.starts_with("test_sk_") {
        Ok(KeyKind::Api)
    } else if secret_key.len() > "test_gsk_".len() && secret_key.starts_with("test_gsk_") {
        Ok(KeyKind::Widget)
    } else {
        Err(KeyError::NotASecretKey)
    }
}

/// The MID a key plays unless one is configured: `tosspayments` for the docs key, else
/// `tsbx` + 8 hex digits of the key's SHA-256 (stable across runs, never the key itself).
pub fn default_mid(secret_key: &str) -> String {
    if secret_key == DOCS_SECRET_KEY {
        return DOCS_MID.to_owned();
    }
    let digest = hex::encode(Sha256::digest(secret_key.as_bytes()));
    format!("tsbx{}", digest.get(..8).unwrap_or("00000000"))
}

/// A key's first 12 characters then `…`, for logs and inspection.
pub fn key_hint(secret_key: &str) -> String {
    let head: String = secret_key.chars().take(12).collect();
    format!("{head}…")
}

/// A secret key the sandbox accepts; each key is its own merchant.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySpec {
    pub secret_key: String,
    /// Defaults to [`default_mid`].
    #[serde(default)]
    pub mid: Option<String>,
    /// `false`: billing endpoints answer `400 NOT_SUPPORTED_METHOD`.
    #[serde(default = "yes")]
    pub billing_contract: bool,
}

fn yes() -> bool {
    true
}

impl SecretKeySpec {
    pub fn new(secret_key: impl Into<String>) -> Self {
        Self {
            secret_key: secret_key.into(),
            mid: None,
            billing_contract: true,
        }
    }

    pub fn with_mid(mut self, mid: impl Into<String>) -> Self {
        self.mid = Some(mid.into());
        self
    }

    pub fn without_billing_contract(mut self) -> Self {
        self.billing_contract = false;
        self
    }

    pub(crate) fn resolved_mid(&self) -> Result<String, KeyError> {
        let mid = self
            .mid
            .clone()
            .unwrap_or_else(|| default_mid(&self.secret_key));
        if mid.is_empty() || mid.chars().count() > 14 {
            return Err(KeyError::BadMid);
        }
        Ok(mid)
    }
}

impl fmt::Debug for SecretKeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKeySpec")
            .field("secret_key", &key_hint(&self.secret_key))
            .field("mid", &self.mid)
            .field("billing_contract", &self.billing_contract)
            .finish()
    }
}

/// Everything a sandbox starts with. `POST /__sandbox/reset` returns to this.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SandboxConfig {
    /// Where to listen; `127.0.0.1:0` (any free port) by default.
    pub bind: SocketAddr,
    /// Accept [`DOCS_SECRET_KEY`] and [`DOCS_WIDGET_SECRET_KEY`] (default `true`).
    pub docs_keys: bool,
    pub secret_keys: Vec<SecretKeySpec>,
    /// Seed of the fault RNG.
    pub seed: u64,
    pub faults: FaultConfig,
    pub declines: Vec<DeclineRule>,
    /// Shift of the sandbox clock against the real one.
    pub clock_offset_seconds: i64,
    /// How long a minted authKey can be exchanged (sandbox clock).
    pub auth_key_ttl_seconds: i64,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            docs_keys: true,
            secret_keys: Vec::new(),
            seed: 1,
            faults: FaultConfig::default(),
            declines: Vec::new(),
            clock_offset_seconds: 0,
            auth_key_ttl_seconds: 600,
        }
    }
}

impl SandboxConfig {
    pub fn with_bind(mut self, bind: SocketAddr) -> Self {
        self.bind = bind;
        self
    }

    pub fn with_secret_key(mut self, spec: SecretKeySpec) -> Self {
        self.secret_keys.push(spec);
        self
    }

    pub fn without_docs_keys(mut self) -> Self {
        self.docs_keys = false;
        self
    }

    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn with_faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }

    /// Latency on every endpoint.
    pub fn with_latency(mut self, latency: Latency) -> Self {
        self.faults.latency.default = Some(latency);
        self
    }

    pub fn with_clock_offset_seconds(mut self, seconds: i64) -> Self {
        self.clock_offset_seconds = seconds;
        self
    }

    /// The keys to register at start-up, docs keys first.
    pub(crate) fn initial_keys(&self) -> Vec<SecretKeySpec> {
        let mut keys = Vec::new();
        if self.docs_keys {
            keys.push(SecretKeySpec::new(DOCS_SECRET_KEY));
            keys.push(SecretKeySpec::new(DOCS_WIDGET_SECRET_KEY).with_mid("tgdocs"));
        }
        keys.extend(self.secret_keys.iter().cloned());
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_classified_by_prefix() {
        assert_eq!(key_kind(DOCS_SECRET_KEY), Ok(KeyKind::Api));
        assert_eq!(key_kind(DOCS_WIDGET_SECRET_KEY), Ok(KeyKind::Widget));
        assert_eq!(key_kind("live_sk_abc"), Err(KeyError::Live));
        assert_eq!(key_kind(DOCS_CLIENT_KEY), Err(KeyError::NotASecretKey));
    }

    #[test]
    fn a_generated_mid_fits_fourteen_characters_and_hides_the_key() {
        let mid = default_mid("test_sk_someonesownkey");
        assert!(mid.len() <= 14 && mid.starts_with("tsbx"), "{mid}");
        assert!(!mid.contains("someone"));
    }

    #[test]
    fn debug_output_never_shows_the_whole_secret_key() {
        let spec = SecretKeySpec::new("test_sk_verysecretvalue123");
        assert!(!format!("{spec:?}").contains("verysecretvalue123"));
    }
}

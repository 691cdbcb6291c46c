//! The issuer's state: published keys, the current key per algorithm, the JWKS fetch counter and
//! fault, and the minting of honest and hostile tokens.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::keys::{KeyError, SigningAlg, SigningKey};
use crate::token::{Forgery, TokenRequest};

/// How the JWKS endpoint misbehaves (the issuer is down, slow, or answers rubbish).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum JwksFault {
    /// Answer with this HTTP status and an empty body.
    Status { status: u16 },
    /// Answer a valid JWKS padded with whitespace to `bytes` bytes.
    Oversized { bytes: usize },
    /// The same, streamed in 1 KiB chunks without a `Content-Length` (chunked encoding), so a
    /// client cannot refuse it from the header alone.
    OversizedStream { bytes: usize },
    /// Answer 200 with a body that is not JSON.
    NotJson,
    /// Wait this long before answering normally.
    Delay { millis: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    #[error("could not encode the claims: {0}")]
    Json(#[from] serde_json::Error),
}

/// Handle on the issuer's state; cheap to clone, shared with the HTTP server.
#[derive(Debug, Clone)]
pub struct Issuer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    issuer_url: String,
    lifetime: Duration,
    default_azp: Option<String>,
    state: Mutex<State>,
    jwks_fetches: AtomicU64,
    counter: AtomicU64,
}

#[derive(Debug)]
struct State {
    /// What the JWKS serves, in publication order.
    published: Vec<SigningKey>,
    /// The kid that signs honest tokens, per algorithm.
    current: HashMap<SigningAlg, String>,
    /// Keys never published, for forgeries.
    strangers: HashMap<SigningAlg, SigningKey>,
    fault: Option<JwksFault>,
}

impl Issuer {
    /// `keys` are published first; an algorithm without a key gets a generated one. The last key
    /// of each algorithm signs.
    pub fn new(
        issuer_url: String,
        lifetime: Duration,
        default_azp: Option<String>,
        keys: Vec<SigningKey>,
    ) -> Result<Self, KeyError> {
        let mut published = keys;
        for alg in [SigningAlg::Rs256, SigningAlg::Es256] {
            if !published.iter().any(|key| key.alg() == alg) {
                published.push(SigningKey::generate(alg)?);
            }
        }
        let current = published
            .iter()
            .map(|key| (key.alg(), key.kid().to_owned()))
            .collect();
        Ok(Issuer {
            inner: Arc::new(Inner {
                issuer_url,
                lifetime,
                default_azp,
                state: Mutex::new(State {
                    published,
                    current,
                    strangers: HashMap::new(),
                    fault: None,
                }),
                jwks_fetches: AtomicU64::new(0),
                counter: AtomicU64::new(0),
            }),
        })
    }

    /// The `iss` of honest tokens (and the base of the discovery URLs).
    pub fn issuer_url(&self) -> &str {
        &self.inner.issuer_url
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.inner.issuer_url)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // a panic while holding the lock leaves the state consistent (every update is one assignment)
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The JWKS as served (ignoring any fault).
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self
                .state()
                .published
                .iter()
                .map(|key| key.jwk().clone())
                .collect::<Vec<Jwk>>(),
        }
    }

    /// The kid that signs honest tokens of this algorithm.
    pub fn current_kid(&self, alg: SigningAlg) -> String {
        self.state().current.get(&alg).cloned().unwrap_or_default()
    }

    /// Every published kid, oldest first.
    pub fn kids(&self) -> Vec<String> {
        self.state()
            .published
            .iter()
            .map(|key| key.kid().to_owned())
            .collect()
    }

    /// Publish a new key for `alg` and sign with it from now on; the old one stays published
    /// unless `retire_old` (then tokens it signed no longer verify after a refetch).
    pub fn rotate(&self, alg: SigningAlg, retire_old: bool) -> Result<String, KeyError> {
        let key = SigningKey::generate(alg)?;
        let kid = key.kid().to_owned();
        let mut state = self.state();
        if retire_old && let Some(old) = state.current.get(&alg).cloned() {
            state.published.retain(|key| key.kid() != old);
        }
        state.published.push(key);
        state.current.insert(alg, kid.clone());
        tracing::info!(%alg, %kid, retire_old, "rotated the signing key");
        Ok(kid)
    }

    /// Stop publishing `kid` (tokens it signed keep verifying only where the JWKS is cached).
    pub fn retire(&self, kid: &str) -> bool {
        let mut state = self.state();
        let before = state.published.len();
        state.published.retain(|key| key.kid() != kid);
        state.published.len() != before
    }

    /// How many times `/.well-known/jwks.json` was requested since the start (or the last reset).
    pub fn jwks_fetches(&self) -> u64 {
        self.inner.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn reset_jwks_fetches(&self) {
        self.inner.jwks_fetches.store(0, Ordering::SeqCst);
    }

    pub(crate) fn count_jwks_fetch(&self) {
        self.inner.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    }

    pub fn set_jwks_fault(&self, fault: Option<JwksFault>) {
        self.state().fault = fault;
    }

    pub fn jwks_fault(&self) -> Option<JwksFault> {
        self.state().fault
    }

    /// The discovery document (`/.well-known/openid-configuration`), the fields a verifier reads.
    pub fn openid_configuration(&self) -> Value {
        json!({
            "issuer": self.inner.issuer_url,
            "jwks_uri": self.jwks_url(),
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
        })
    }

    /// Mint a token as `request` says.
    pub fn mint(&self, request: &TokenRequest) -> Result<String, MintError> {
        let claims = self.claims(request)?;
        let alg = request.alg.unwrap_or(SigningAlg::Rs256);
        match request.forgery {
            None => {
                let key = self.current_key(alg)?;
                sign(&key, key.kid(), alg.algorithm(), &claims)
            }
            Some(Forgery::StrangerKey) => {
                let stranger = self.stranger(alg)?;
                let kid = self.current_kid(alg);
                sign(&stranger, &kid, alg.algorithm(), &claims)
            }
            Some(Forgery::UnknownKid) => {
                let stranger = self.stranger(alg)?;
                let kid = format!("unknown-{}", self.next());
                sign(&stranger, &kid, alg.algorithm(), &claims)
            }
            Some(Forgery::NoKid) => {
                let key = self.current_key(alg)?;
                let mut header = Header::new(alg.algorithm());
                header.kid = None;
                Ok(jsonwebtoken::encode(&header, &claims, key.encoding_key())?)
            }
            Some(Forgery::AlgNone) => {
                let header = json!({"alg": "none", "typ": "JWT", "kid": self.current_kid(alg)});
                Ok(format!(
                    "{}.{}.",
                    b64_json(&header)?,
                    b64_json(&Value::Object(claims))?
                ))
            }
            Some(Forgery::Hs256WithPublicKey) => {
                let rsa = self.current_key(SigningAlg::Rs256)?;
                let mut header = Header::new(Algorithm::HS256);
                header.kid = Some(rsa.kid().to_owned());
                let secret = EncodingKey::from_secret(rsa.public_key_pem().as_bytes())?;
                Ok(jsonwebtoken::encode(&header, &claims, &secret)?)
            }
            Some(Forgery::KidOfOtherAlg) => {
                let ec = self.current_key(SigningAlg::Es256)?;
                let rsa_kid = self.current_kid(SigningAlg::Rs256);
                sign(&ec, &rsa_kid, Algorithm::ES256, &claims)
            }
            Some(Forgery::TamperedPayload) => {
                let key = self.current_key(alg)?;
                let honest = sign(&key, key.kid(), alg.algorithm(), &claims)?;
                let mut tampered = claims;
                tampered.insert("sub".into(), json!("user_admin"));
                let mut parts = honest.split('.');
                let (header, _, signature) = (parts.next(), parts.next(), parts.next());
                Ok(format!(
                    "{}.{}.{}",
                    header.unwrap_or_default(),
                    b64_json(&Value::Object(tampered))?,
                    signature.unwrap_or_default()
                ))
            }
        }
    }

    fn claims(&self, request: &TokenRequest) -> Result<Map<String, Value>, MintError> {
        let now = unix_now();
        let lifetime = i64::try_from(self.inner.lifetime.as_secs()).unwrap_or(i64::MAX);
        let mut claims = Map::new();
        let iss = request.iss.as_deref().unwrap_or(&self.inner.issuer_url);
        claims.insert("iss".into(), json!(iss));
        claims.insert(
            "sub".into(),
            json!(request.sub.as_deref().unwrap_or("user_test")),
        );
        if let Some(azp) = request.azp.as_ref().or(self.inner.default_azp.as_ref()) {
            claims.insert("azp".into(), json!(azp));
        }
        let sid = match &request.sid {
            Some(sid) => sid.clone(),
            None => format!("sess_{}", self.next()),
        };
        claims.insert("sid".into(), json!(sid));
        if let Some(aud) = &request.aud {
            claims.insert("aud".into(), aud.clone());
        }
        claims.insert("iat".into(), json!(now));
        claims.insert(
            "nbf".into(),
            json!(now.saturating_add(request.not_before.unwrap_or(-10))),
        );
        claims.insert(
            "exp".into(),
            json!(now.saturating_add(request.expires_in.unwrap_or(lifetime))),
        );
        claims.insert("v".into(), json!(2));
        for name in &request.omit {
            claims.remove(name);
        }
        for (name, value) in &request.claims {
            claims.insert(name.clone(), value.clone());
        }
        Ok(claims)
    }

    fn current_key(&self, alg: SigningAlg) -> Result<SigningKey, KeyError> {
        let state = self.state();
        let kid = state.current.get(&alg);
        state
            .published
            .iter()
            .find(|key| Some(key.kid()) == kid.map(String::as_str))
            .cloned()
            .ok_or(KeyError::Unsupported)
    }

    fn stranger(&self, alg: SigningAlg) -> Result<SigningKey, KeyError> {
        if let Some(key) = self.state().strangers.get(&alg) {
            return Ok(key.clone());
        }
        // generated outside the lock: RSA generation takes a moment
        let key = SigningKey::generate(alg)?;
        Ok(self.state().strangers.entry(alg).or_insert(key).clone())
    }

    fn next(&self) -> u64 {
        self.inner.counter.fetch_add(1, Ordering::SeqCst) + 1
    }
}

fn sign(
    key: &SigningKey,
    kid: &str,
    alg: Algorithm,
    claims: &Map<String, Value>,
) -> Result<String, MintError> {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    Ok(jsonwebtoken::encode(&header, claims, key.encoding_key())?)
}

fn b64_json(value: &Value) -> Result<String, MintError> {
    Ok(URL_SAFE_NO_PAD.encode(serde_json::to_vec(value)?))
}

/// Seconds since the Unix epoch, as JWT times are written.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

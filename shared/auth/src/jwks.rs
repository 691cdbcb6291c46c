//! The issuer's signing keys by kid: fetched once, shared by every verification of the
//! process (so across Lambda invocations), and fetched again only
//!
//! - for a kid the cache lacks (the issuer may have rotated), at most once per refetch interval
//!   (60 s): an attacker cycling kids gets one fetch a minute out of us, not one per request;
//! - when the cache is older than the maximum key age, so a key the issuer withdrew stops
//!   verifying (if that fetch fails, the cached keys stay in use);
//! - never sooner than the retry back-off after a failed fetch, so an outage does not make every
//!   request wait for a timeout.
//!
//! One fetch is in flight at a time: callers that need one queue behind it and use its result,
//! except those holding a (stale) cached key, which go on with it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::header::ACCEPT;
use serde::Deserialize;
use url::Url;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, JwksError, printable};

/// A verification key and the one algorithm it may verify.
pub(crate) struct Key {
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
}

type Keys = HashMap<String, Arc<Key>>;

#[derive(Default)]
struct Cache {
    keys: Arc<Keys>,
    /// When `keys` were fetched; `None` until a fetch succeeded.
    loaded_at: Option<Instant>,
    /// The last fetch caused by an unknown kid (successful or not).
    last_refetch: Option<Instant>,
    /// The last failed fetch, cleared by a successful one.
    last_failure: Option<Instant>,
}

/// Why a fetch is wanted; each has its own limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Nothing loaded yet.
    Load,
    /// The kid is cached but the cache is past its maximum age.
    Stale,
    /// The kid is not in a loaded cache.
    UnknownKid,
}

pub(crate) struct Jwks {
    url: Url,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    refetch_interval: Duration,
    retry_after_failure: Duration,
    max_key_age: Duration,
    max_bytes: usize,
    cache: RwLock<Cache>,
    /// Held while fetching: one fetch in flight.
    fetching: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cache = self.read();
        f.debug_struct("Jwks")
            .field("url", &self.url.as_str())
            .field("kids", &cache.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Jwks {
    pub(crate) fn new(config: &Config, http: reqwest::Client, clock: Arc<dyn Clock>) -> Self {
        Jwks {
            url: config.jwks_url().clone(),
            http,
            clock,
            refetch_interval: config.refetch_interval(),
            retry_after_failure: config.retry_after_failure(),
            max_key_age: config.max_key_age(),
            max_bytes: config.max_jwks_bytes(),
            cache: RwLock::new(Cache::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        // every write replaces whole fields, so a panic elsewhere cannot leave it half-written
        self.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(|p| p.into_inner())
    }

    fn fresh(&self, cache: &Cache, now: Instant) -> bool {
        cache
            .loaded_at
            .is_some_and(|at| now.saturating_duration_since(at) < self.max_key_age)
    }

    fn may_fetch(&self, cache: &Cache, need: Need, now: Instant) -> bool {
        let elapsed = |at: Option<Instant>, wait: Duration| {
            at.is_none_or(|at| now.saturating_duration_since(at) >= wait)
        };
        elapsed(cache.last_failure, self.retry_after_failure)
            && (need != Need::UnknownKid || elapsed(cache.last_refetch, self.refetch_interval))
    }

    /// The key for `kid`, fetching the JWKS when the rules above allow.
    pub(crate) async fn key(&self, kid: &str) -> Result<Arc<Key>, Error> {
        let stale = {
            let cache = self.read();
            match cache.keys.get(kid) {
                Some(key) if self.fresh(&cache, self.clock.now()) => return Ok(key.clone()),
                Some(key) => Some(key.clone()),
                None => None,
            }
        };
        let _fetching = match (stale, self.fetching.try_lock()) {
            (_, Ok(fetching)) => fetching,
            // a refresh is under way: the cached key serves meanwhile instead of queueing
            (Some(key), Err(_)) => return Ok(key),
            (None, Err(_)) => self.fetching.lock().await,
        };
        // whoever held the lock may have fetched what we need meanwhile
        let now = self.clock.now();
        let (cached, need, may_fetch) = {
            let cache = self.read();
            let cached = cache.keys.get(kid).cloned();
            let need = match (&cached, cache.loaded_at) {
                (Some(key), _) if self.fresh(&cache, now) => return Ok(key.clone()),
                (Some(_), _) => Need::Stale,
                (None, Some(_)) => Need::UnknownKid,
                (None, None) => Need::Load,
            };
            (cached, need, self.may_fetch(&cache, need, now))
        };
        if !may_fetch {
            return match (cached, need) {
                (Some(key), _) => Ok(key),
                (None, Need::UnknownKid) if self.read().last_failure.is_none() => {
                    tracing::debug!(
                        kid = %printable(kid),
                        "unknown kid; the JWKS was refetched less than the refetch interval ago"
                    );
                    Err(Error::UnknownKeyId {
                        kid: printable(kid),
                    })
                }
                (None, _) => Err(Error::KeysUnavailable(JwksError::BackingOff)),
            };
        }
        let result = self.fetch_into_cache(need, now).await;
        match (result, cached) {
            (Ok(keys), _) => keys.get(kid).cloned().ok_or_else(|| Error::UnknownKeyId {
                kid: printable(kid),
            }),
            // a stale key beats refusing everyone while the issuer is down
            (Err(_), Some(key)) => Ok(key),
            (Err(error), None) => Err(Error::KeysUnavailable(error)),
        }
    }

    /// Load the keys now unless they are loaded and fresh (for warming up during init).
    pub(crate) async fn refresh(&self) -> Result<(), Error> {
        let _fetching = self.fetching.lock().await;
        let now = self.clock.now();
        let need = {
            let cache = self.read();
            if self.fresh(&cache, now) {
                return Ok(());
            }
            let need = if cache.loaded_at.is_some() {
                Need::Stale
            } else {
                Need::Load
            };
            if !self.may_fetch(&cache, need, now) {
                return Err(Error::KeysUnavailable(JwksError::BackingOff));
            }
            need
        };
        self.fetch_into_cache(need, now)
            .await
            .map(drop)
            .map_err(Error::KeysUnavailable)
    }

    /// Fetch, and record the outcome in the cache. Called with `fetching` held.
    async fn fetch_into_cache(&self, need: Need, now: Instant) -> Result<Arc<Keys>, JwksError> {
        let result = self.fetch().await;
        let mut cache = self.write();
        if need == Need::UnknownKid {
            cache.last_refetch = Some(now);
        }
        match result {
            Ok(keys) => {
                tracing::info!(url = %self.url, kids = keys.len(), ?need, "loaded the issuer's JWKS");
                let keys = Arc::new(keys);
                cache.keys = keys.clone();
                cache.loaded_at = Some(now);
                cache.last_failure = None;
                Ok(keys)
            }
            Err(error) => {
                tracing::warn!(
                    url = %self.url,
                    ?need,
                    error.message = %error,
                    error.cause_chain = ?error,
                    "could not fetch the issuer's JWKS"
                );
                cache.last_failure = Some(now);
                Err(error)
            }
        }
    }

    async fn fetch(&self) -> Result<Keys, JwksError> {
        tracing::debug!(url = %self.url, "fetching the issuer's JWKS");
        let mut response = self
            .http
            .get(self.url.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(JwksError::Transport)?;
        if !response.status().is_success() {
            return Err(JwksError::Status(response.status().as_u16()));
        }
        let limit = self.max_bytes;
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(JwksError::TooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(JwksError::Transport)? {
            if body.len() + chunk.len() > limit {
                return Err(JwksError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        parse(&body)
    }
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

/// The usable keys of a JWKS document: RSA keys for RS256 and P-256 keys for ES256, with a kid,
/// meant for signatures. Anything else (symmetric `oct` keys above all, which would let a token
/// be "signed" with a published value) is skipped, not an error: issuers publish other keys too.
pub(crate) fn parse(body: &[u8]) -> Result<Keys, JwksError> {
    let raw: RawSet = serde_json::from_slice(body).map_err(JwksError::Decode)?;
    let mut keys = Keys::new();
    for value in raw.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            tracing::debug!("skipping a JWK that does not parse");
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let Some(alg) = usable_algorithm(&jwk) else {
            tracing::debug!(kid = %printable(&kid), "skipping a JWK not usable for RS256/ES256 signatures");
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            tracing::debug!(kid = %printable(&kid), "skipping a JWK whose key does not parse");
            continue;
        };
        if keys.contains_key(&kid) {
            tracing::warn!(kid = %printable(&kid), "the JWKS repeats a kid; keeping the first key");
            continue;
        }
        keys.insert(kid, Arc::new(Key { alg, key }));
    }
    Ok(keys)
}

fn usable_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|usage| *usage != PublicKeyUse::Signature)
    {
        return None;
    }
    if jwk
        .common
        .key_operations
        .as_ref()
        .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
    {
        return None;
    }
    match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Some(Algorithm::RS256),
        (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
            if ec.curve == EllipticCurve::P256 =>
        {
            Some(Algorithm::ES256)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    fn rsa(kid: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut jwk = serde_json::json!({"kty": "RSA", "kid": kid, "n": N, "e": "AQAB"});
        for (name, value) in extra.as_object().unwrap() {
            jwk[name] = value.clone();
        }
        jwk
    }

    fn kids(body: serde_json::Value) -> Vec<String> {
        let mut kids: Vec<_> = parse(body.to_string().as_bytes())
            .unwrap()
            .into_keys()
            .collect();
        kids.sort();
        kids
    }

    #[test]
    fn rsa_and_p256_signing_keys_are_kept_with_their_one_algorithm() {
        let body = serde_json::json!({"keys": [
            rsa("r", serde_json::json!({"alg": "RS256", "use": "sig"})),
            {"kty": "EC", "crv": "P-256", "kid": "e",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
        ]});
        let keys = parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(keys["r"].alg, Algorithm::RS256);
        assert_eq!(keys["e"].alg, Algorithm::ES256);
    }

    #[test]
    fn symmetric_encryption_other_algorithm_and_kidless_keys_are_skipped() {
        let body = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0", "alg": "HS256"},
            rsa("enc", serde_json::json!({"use": "enc"})),
            rsa("ops", serde_json::json!({"key_ops": ["encrypt"]})),
            rsa("ps", serde_json::json!({"alg": "PS256"})),
            rsa("rs512", serde_json::json!({"alg": "RS512"})),
            {"kty": "RSA", "n": N, "e": "AQAB"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "weird", "kid": "w"},
            rsa("ok", serde_json::json!({})),
        ]});
        assert_eq!(kids(body), ["ok"]);
    }

    #[test]
    fn a_repeated_kid_keeps_the_first_key() {
        let body = serde_json::json!({"keys": [
            rsa("k", serde_json::json!({})),
            {"kty": "EC", "crv": "P-256", "kid": "k",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
        ]});
        let keys = parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(keys["k"].alg, Algorithm::RS256);
    }

    #[test]
    fn a_body_that_is_not_a_key_set_is_a_decode_error() {
        for body in [&b"<html>"[..], b"{}", b"{\"keys\": {}}", b"[]"] {
            assert!(matches!(parse(body), Err(JwksError::Decode(_))));
        }
    }
}

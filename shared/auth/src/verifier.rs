//! Bearer token → [`AuthUser`], as docs/money-rules.md §10.1 says.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use reqwest::header::{AUTHORIZATION, HeaderMap};
use serde::Deserialize;
use serde_json::Value;

use crate::bearer::{MAX_TOKEN_BYTES, bearer_token, is_jwt_byte};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::error::{Error, printable};
use crate::jwks::Jwks;
use crate::user::{AuthUser, UserId};

/// Verifies bearer tokens of one issuer. Build it once (at cold start) and share it: clones
/// share the JWKS cache and the HTTP connection pool.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    jwks: Jwks,
    rs256: Validation,
    es256: Validation,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.inner.config)
            .field("jwks", &self.inner.jwks)
            .finish()
    }
}

impl Verifier {
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// As [`Verifier::new`], with the clock that paces JWKS refetches (token times always use
    /// the system clock).
    pub fn with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Self, ConfigError> {
        let http = reqwest::Client::builder()
            .timeout(config.fetch_timeout())
            .connect_timeout(config.fetch_timeout().min(Duration::from_secs(2)))
            // a redirect could lead anywhere, including from https to http: the URL is configured
            .redirect(reqwest::redirect::Policy::none())
            // the function reaches the issuer directly; a proxy from the environment is not wanted
            .no_proxy()
            .build()
            .map_err(ConfigError::HttpClient)?;
        let jwks = Jwks::new(&config, http, clock);
        let rs256 = validation(&config, Algorithm::RS256);
        let es256 = validation(&config, Algorithm::ES256);
        Ok(Verifier {
            inner: Arc::new(Inner {
                config,
                jwks,
                rs256,
                es256,
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Fetch the JWKS now, so the first request does not wait for it (call it during init).
    /// A failure is worth a log line, not a failed start: verification fetches again later.
    pub async fn prefetch(&self) -> Result<(), Error> {
        self.inner.jwks.refresh().await
    }

    /// Authenticate a request from its headers (`http::HeaderMap`, as axum and lambda_http hand
    /// them over). Two `Authorization` headers are refused rather than one of them picked.
    pub async fn authenticate_headers(&self, headers: &HeaderMap) -> Result<AuthUser, Error> {
        let mut values = headers.get_all(AUTHORIZATION).iter();
        match (values.next(), values.next()) {
            (None, _) => Err(Error::MissingHeader),
            (Some(_), Some(_)) => Err(Error::MalformedHeader),
            (Some(value), None) => self.authenticate(Some(value.as_bytes())).await,
        }
    }

    /// Authenticate a request from its one `Authorization` header value (`None` when absent).
    pub async fn authenticate(&self, authorization: Option<&[u8]>) -> Result<AuthUser, Error> {
        let header = authorization.ok_or(Error::MissingHeader)?;
        self.verify_token(bearer_token(header)?).await
    }

    /// Verify a compact JWT: header, key by kid, signature, then claims.
    pub async fn verify_token(&self, token: &str) -> Result<AuthUser, Error> {
        let header = parse_header(token)?;
        let alg = match header.alg.as_str() {
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            other => {
                return Err(Error::AlgorithmNotAllowed {
                    alg: printable(other),
                });
            }
        };
        let kid = header.kid.ok_or(Error::MissingKeyId)?;
        let key = self.inner.jwks.key(&kid).await?;
        if key.alg != alg {
            return Err(Error::KeyMismatch {
                alg: name(alg),
                kid: printable(&kid),
                key_alg: name(key.alg),
            });
        }
        let validation = match alg {
            Algorithm::ES256 => &self.inner.es256,
            _ => &self.inner.rs256,
        };
        let claims = jsonwebtoken::decode::<Claims>(token, &key.key, validation)
            .map_err(|e| from_jwt(e.kind()))?
            .claims;
        let parties = self.inner.config.authorized_parties();
        if !parties.is_empty()
            && let Some(azp) = claims.azp
        {
            match azp {
                Value::String(azp) if parties.contains(&azp) => {}
                Value::String(_) => return Err(Error::UnauthorizedParty),
                _ => return Err(Error::InvalidClaim("azp")),
            }
        }
        match claims.sub {
            Some(Value::String(sub)) => UserId::parse(sub)
                .map(AuthUser::new)
                .map_err(|_| Error::InvalidClaim("sub")),
            Some(_) => Err(Error::InvalidClaim("sub")),
            None => Err(Error::MissingClaim("sub")),
        }
    }
}

/// The claims read after jsonwebtoken has checked the signature, `iss`, `exp`, `nbf` and `aud`.
/// Loose types so an ill-typed claim is named as such rather than failing as a whole.
#[derive(Deserialize)]
struct Claims {
    sub: Option<Value>,
    azp: Option<Value>,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
}

/// The JOSE header of a compact JWT (three base64url segments), read before any key is chosen
/// so the algorithm can be checked against the allow-list first.
fn parse_header(token: &str) -> Result<RawHeader, Error> {
    if token.len() > MAX_TOKEN_BYTES || !token.bytes().all(is_jwt_byte) {
        return Err(Error::MalformedToken);
    }
    let mut segments = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(Error::MalformedToken);
    };
    if header.is_empty() || payload.is_empty() {
        return Err(Error::MalformedToken);
    }
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| Error::MalformedToken)?;
    serde_json::from_slice(&json).map_err(|_| Error::MalformedToken)
}

fn validation(config: &Config, alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = config.leeway().as_secs();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_issuer(&[config.issuer()]);
    let mut required = vec!["exp", "nbf", "iss", "sub"];
    match config.audience() {
        Some(audience) => {
            validation.set_audience(&[audience]);
            validation.validate_aud = true;
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    validation
}

fn name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "ES256",
        _ => "RS256",
    }
}

fn claim_name(claim: &str) -> &'static str {
    match claim {
        "exp" => "exp",
        "nbf" => "nbf",
        "iss" => "iss",
        "sub" => "sub",
        "aud" => "aud",
        _ => "registered",
    }
}

fn from_jwt(kind: &ErrorKind) -> Error {
    match kind {
        ErrorKind::ExpiredSignature => Error::Expired,
        ErrorKind::ImmatureSignature => Error::NotYetValid,
        ErrorKind::InvalidIssuer => Error::WrongIssuer,
        ErrorKind::InvalidAudience => Error::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => Error::MissingClaim(claim_name(claim)),
        ErrorKind::InvalidClaimFormat(claim) => Error::InvalidClaim(claim_name(claim)),
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => Error::MalformedToken,
        // InvalidSignature, and a key the crypto refuses (too short an RSA modulus, an EC point
        // off the curve): either way the signature is not proven
        _ => Error::BadSignature,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn segment(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn the_header_is_read_from_the_first_of_exactly_three_segments() {
        let token = format!("{}.e30.sig", segment(r#"{"alg":"RS256","kid":"k1"}"#));
        let header = parse_header(&token).unwrap();
        assert_eq!(
            (header.alg.as_str(), header.kid.as_deref()),
            ("RS256", Some("k1"))
        );
    }

    #[test]
    fn a_token_without_three_segments_or_a_json_header_is_malformed() {
        let header = segment(r#"{"alg":"RS256","kid":"k1"}"#);
        for token in [
            String::new(),
            "abc".to_owned(),
            format!("{header}.e30"),
            format!("{header}.e30.sig.extra"),
            ".e30.sig".to_owned(),
            format!("{header}..sig"),
            format!("{}.e30.sig", segment("not json")),
            format!("{}.e30.sig", segment(r#"{"kid":"k1"}"#)),
            format!("{header}=.e30.sig"),
        ] {
            assert!(
                matches!(parse_header(&token), Err(Error::MalformedToken)),
                "{token:?}"
            );
        }
    }

    #[test]
    fn validation_requires_exp_nbf_iss_and_sub_with_five_seconds_of_leeway() {
        let config = Config::new("https://clerk.example.com").unwrap();
        let validation = validation(&config, Algorithm::RS256);
        assert_eq!(validation.algorithms, [Algorithm::RS256]);
        assert_eq!(validation.leeway, 5);
        assert!(validation.validate_nbf && validation.validate_exp && !validation.validate_aud);
        for claim in ["exp", "nbf", "iss", "sub"] {
            assert!(validation.required_spec_claims.contains(claim), "{claim}");
        }
        let with_aud = validation_for_audience();
        assert!(with_aud.validate_aud && with_aud.required_spec_claims.contains("aud"));
    }

    fn validation_for_audience() -> Validation {
        let config = Config::new("https://clerk.example.com")
            .unwrap()
            .with_audience("billing")
            .unwrap();
        validation(&config, Algorithm::ES256)
    }
}

//! What to trust: the issuer, where its keys are, and which parties and audience to accept.
//! Built from values the function reads from its environment (`AUTH_ISSUER`, `AUTH_JWKS_URL`,
//! `AUTH_AUTHORIZED_PARTIES`, `AUTH_AUDIENCE`); this crate reads no environment itself.

use std::net::IpAddr;
use std::time::Duration;

use url::{Host, Url};

/// Why a configuration value was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: &'static str,
    },
    #[error("could not build the HTTP client for the JWKS")]
    HttpClient(#[source] reqwest::Error),
}

fn invalid(field: &'static str, problem: &'static str) -> ConfigError {
    ConfigError::Invalid { field, problem }
}

/// Verification settings. Only the issuer is required; the rest has the defaults docs/money-rules.md §10.1
/// asks for.
#[derive(Debug, Clone)]
pub struct Config {
    issuer: String,
    jwks_url: Url,
    authorized_parties: Vec<String>,
    audience: Option<String>,
    leeway: Duration,
    refetch_interval: Duration,
    retry_after_failure: Duration,
    max_key_age: Duration,
    fetch_timeout: Duration,
    max_jwks_bytes: usize,
}

impl Config {
    /// Most leeway allowed on `exp` and `nbf`.
    pub const MAX_LEEWAY: Duration = Duration::from_secs(5);

    /// `issuer` is compared byte for byte with the token's `iss` (Clerk's has no trailing slash,
    /// Auth0's has one: copy it exactly). It must be an `https` URL, or `http` on a loopback host
    /// for local runs. The JWKS URL defaults to `<issuer>/.well-known/jwks.json`.
    pub fn new(issuer: impl Into<String>) -> Result<Self, ConfigError> {
        let issuer = issuer.into();
        let url = checked_url("issuer", &issuer)?;
        if url.query().is_some() {
            return Err(invalid("issuer", "must not have a query"));
        }
        let jwks_url = Url::parse(&format!(
            "{}/.well-known/jwks.json",
            issuer.trim_end_matches('/')
        ))
        .map_err(|_| invalid("jwks_url", "is not a URL"))?;
        Ok(Config {
            issuer,
            jwks_url,
            authorized_parties: Vec::new(),
            audience: None,
            leeway: Self::MAX_LEEWAY,
            refetch_interval: Duration::from_secs(60),
            retry_after_failure: Duration::from_secs(5),
            max_key_age: Duration::from_secs(10 * 60),
            fetch_timeout: Duration::from_secs(5),
            max_jwks_bytes: 64 * 1024,
        })
    }

    /// Fetch the keys from here instead (`https`, or `http` on loopback).
    pub fn with_jwks_url(mut self, jwks_url: &str) -> Result<Self, ConfigError> {
        self.jwks_url = checked_url("jwks_url", jwks_url)?;
        Ok(self)
    }

    /// Origins allowed in `azp` (checked only when the token has one, as Clerk advises). Entries
    /// are trimmed and empty ones dropped, so a comma-separated variable can be split and passed
    /// as is; an empty list turns the check off.
    pub fn with_authorized_parties<I, S>(mut self, parties: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = Vec::new();
        for party in parties {
            let party = party.as_ref().trim();
            if party.is_empty() {
                continue;
            }
            if !party.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(
                    "authorized_parties",
                    "an entry has characters other than visible ASCII",
                ));
            }
            list.push(party.to_owned());
        }
        self.authorized_parties = list;
        Ok(self)
    }

    /// Require this `aud` (the token must carry it).
    pub fn with_audience(mut self, audience: impl Into<String>) -> Result<Self, ConfigError> {
        let audience = audience.into();
        if audience.trim().is_empty() {
            return Err(invalid("audience", "is empty"));
        }
        self.audience = Some(audience);
        Ok(self)
    }

    /// Clock-skew leeway on `exp` and `nbf`; at most 5 s (the default).
    pub fn with_leeway(mut self, leeway: Duration) -> Result<Self, ConfigError> {
        if leeway > Self::MAX_LEEWAY {
            return Err(invalid("leeway", "must be at most 5 s"));
        }
        self.leeway = leeway;
        Ok(self)
    }

    /// Least time between two JWKS fetches after a successful one (default 60 s): an unknown kid
    /// inside this window is refused without asking the issuer again.
    pub fn with_refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// Least time between two JWKS fetches after a failed one (default 5 s).
    pub fn with_retry_after_failure(mut self, wait: Duration) -> Self {
        self.retry_after_failure = wait;
        self
    }

    /// Age after which cached keys are fetched again before use (default 10 min), so a key the
    /// issuer withdrew stops verifying. If that fetch fails, the cached keys stay in use.
    pub fn with_max_key_age(mut self, age: Duration) -> Self {
        self.max_key_age = age;
        self
    }

    /// Whole-request timeout of a JWKS fetch (default 5 s; connecting gets at most 2 s of it).
    pub fn with_fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// Largest JWKS body read (default 64 KiB).
    pub fn with_max_jwks_bytes(mut self, bytes: usize) -> Self {
        self.max_jwks_bytes = bytes;
        self
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn jwks_url(&self) -> &Url {
        &self.jwks_url
    }

    pub fn authorized_parties(&self) -> &[String] {
        &self.authorized_parties
    }

    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    pub fn refetch_interval(&self) -> Duration {
        self.refetch_interval
    }

    pub fn retry_after_failure(&self) -> Duration {
        self.retry_after_failure
    }

    pub fn max_key_age(&self) -> Duration {
        self.max_key_age
    }

    pub fn fetch_timeout(&self) -> Duration {
        self.fetch_timeout
    }

    pub fn max_jwks_bytes(&self) -> usize {
        self.max_jwks_bytes
    }
}

/// `https://host…`, or `http://` on a loopback host; no credentials, no fragment.
fn checked_url(field: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|_| invalid(field, "is not a URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(field, "must not carry credentials"));
    }
    if url.fragment().is_some() {
        return Err(invalid(field, "must not have a fragment"));
    }
    let loopback = match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => return Err(invalid(field, "has no host")),
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(invalid(
            field,
            "must be https (http only on a loopback host)",
        )),
        _ => Err(invalid(field, "must be an https URL")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn problem(result: Result<Config, ConfigError>) -> &'static str {
        match result {
            Err(ConfigError::Invalid { problem, .. }) => problem,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_jwks_url_defaults_to_the_well_known_path_of_the_issuer() {
        let clerk = Config::new("https://clerk.example.com").unwrap();
        assert_eq!(
            clerk.jwks_url().as_str(),
            "https://clerk.example.com/.well-known/jwks.json"
        );
        let auth0 = Config::new("https://tenant.auth0.com/").unwrap();
        assert_eq!(auth0.issuer(), "https://tenant.auth0.com/");
        assert_eq!(
            auth0.jwks_url().as_str(),
            "https://tenant.auth0.com/.well-known/jwks.json"
        );
    }

    #[test]
    fn the_defaults_are_those_of_the_product() {
        let config = Config::new("https://clerk.example.com").unwrap();
        assert_eq!(config.leeway(), Duration::from_secs(5));
        assert_eq!(config.refetch_interval(), Duration::from_secs(60));
        assert!(config.authorized_parties().is_empty());
        assert_eq!(config.audience(), None);
    }

    #[test]
    fn plain_http_is_accepted_only_on_loopback() {
        for local in [
            "http://127.0.0.1:8791",
            "http://localhost:8791",
            "http://[::1]:8791",
        ] {
            assert!(Config::new(local).is_ok(), "{local}");
        }
        assert_eq!(
            problem(Config::new("http://clerk.example.com")),
            "must be https (http only on a loopback host)"
        );
        let config = Config::new("https://clerk.example.com").unwrap();
        assert!(
            config
                .clone()
                .with_jwks_url("http://10.0.0.1/jwks.json")
                .is_err()
        );
        assert!(
            config
                .with_jwks_url("https://keys.example.com/jwks.json")
                .is_ok()
        );
    }

    #[test]
    fn urls_with_credentials_fragments_or_other_schemes_are_refused() {
        for bad in [
            "clerk.example.com",
            "ftp://clerk.example.com",
            "https://user:pass@clerk.example.com",
            "https://clerk.example.com#x",
            "https://clerk.example.com?x=1",
        ] {
            assert!(Config::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn authorized_parties_are_trimmed_and_empty_entries_dropped() {
        let config = Config::new("https://clerk.example.com")
            .unwrap()
            .with_authorized_parties(" https://app.example.com, ,https://example.com ".split(','))
            .unwrap();
        assert_eq!(
            config.authorized_parties(),
            ["https://app.example.com", "https://example.com"]
        );
    }

    #[test]
    fn a_leeway_over_five_seconds_or_an_empty_audience_is_refused() {
        let config = Config::new("https://clerk.example.com").unwrap();
        assert_eq!(
            problem(config.clone().with_leeway(Duration::from_secs(6))),
            "must be at most 5 s"
        );
        assert_eq!(problem(config.with_audience(" ")), "is empty");
    }
}

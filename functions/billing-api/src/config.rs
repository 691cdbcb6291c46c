use billing::ConfigError;
use billing::config::var;
use url::Url;

/// Configuration of the HTTP function, read once at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    pub common: billing::Config,
    /// Where the customer lands after a successful registration.
    pub app_success_url: Url,
    /// Where the customer lands after a failure, with `?code=…` added.
    pub app_fail_url: Url,
    /// Whose bearer tokens the `/v1` routes accept (product §10.1).
    pub auth: auth::Config,
    /// This API's public base URL, for the checkout's success and fail URLs (`API_BASE_URL`).
    /// Unset: `https://<domain>` from API Gateway's request context.
    pub api_base_url: Option<Url>,
}

impl Config {
    /// The environment, with the Toss secret key read from SSM when `TOSS_SECRET_KEY_PARAMETER`
    /// names a parameter (a deployed stack).
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let env = |name: &str| std::env::var(name).ok();
        let ssm = billing::secret::Ssm::new(aws_sdk_ssm::Client::new(aws));
        let secret = billing::secret::TossSecret::load(&env, &ssm).await?;
        Self::from_lookup(secret.lookup(env))
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            app_success_url: billing::config::url(&lookup, "APP_SUCCESS_URL", None)?,
            app_fail_url: billing::config::url(&lookup, "APP_FAIL_URL", None)?,
            auth: auth_config(&lookup)?,
            api_base_url: match var(&lookup, "API_BASE_URL") {
                Some(_) => Some(billing::config::url(&lookup, "API_BASE_URL", None)?),
                None => None,
            },
            common: billing::Config::from_lookup(lookup)?,
        })
    }
}

/// `AUTH_ISSUER` (required), `AUTH_JWKS_URL` (default `<issuer>/.well-known/jwks.json`),
/// `AUTH_AUTHORIZED_PARTIES` (comma-separated, optional), `AUTH_AUDIENCE` (optional).
fn auth_config(lookup: &impl Fn(&str) -> Option<String>) -> Result<auth::Config, ConfigError> {
    let named =
        |name: &'static str| move |e: auth::ConfigError| ConfigError::new(name, e.to_string());
    let issuer = billing::config::required(lookup, "AUTH_ISSUER")?;
    let mut config = auth::Config::new(issuer).map_err(named("AUTH_ISSUER"))?;
    if let Some(url) = var(lookup, "AUTH_JWKS_URL") {
        config = config.with_jwks_url(&url).map_err(named("AUTH_JWKS_URL"))?;
    }
    if let Some(parties) = var(lookup, "AUTH_AUTHORIZED_PARTIES") {
        config = config
            .with_authorized_parties(parties.split(','))
            .map_err(named("AUTH_AUTHORIZED_PARTIES"))?;
    }
    if let Some(audience) = var(lookup, "AUTH_AUDIENCE") {
        config = config
            .with_audience(audience)
            .map_err(named("AUTH_AUDIENCE"))?;
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn lookup(extra: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name: &str| {
            let base = [
                ("TOSS_SECRET_KEY", "test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R"),
                ("TABLE_NAME", "billing"),
                ("APP_SUCCESS_URL", "https://app.example/done"),
                ("APP_FAIL_URL", "https://app.example/failed"),
            ];
            extra
                .iter()
                .chain(base.iter())
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_issuer_is_required_and_the_error_names_the_variable() {
        let err = Config::from_lookup(lookup(&[])).unwrap_err();
        assert_eq!(err.name, "AUTH_ISSUER");
    }

    #[test]
    fn the_issuer_alone_gives_the_default_jwks_url_and_no_party_or_audience_check() {
        let config =
            Config::from_lookup(lookup(&[("AUTH_ISSUER", "https://clerk.app.example")])).unwrap();
        assert_eq!(
            config.auth.jwks_url().as_str(),
            "https://clerk.app.example/.well-known/jwks.json"
        );
        assert!(config.auth.authorized_parties().is_empty());
        assert_eq!(config.auth.audience(), None);
    }

    #[test]
    fn the_optional_auth_variables_are_read_and_parties_split_at_commas() {
        let config = Config::from_lookup(lookup(&[
            ("AUTH_ISSUER", "https://clerk.app.example"),
            ("AUTH_JWKS_URL", "https://keys.app.example/jwks"),
            (
                "AUTH_AUTHORIZED_PARTIES",
                "https://app.example, https://www.app.example,",
            ),
            ("AUTH_AUDIENCE", "saju"),
        ]))
        .unwrap();
        assert_eq!(
            config.auth.jwks_url().as_str(),
            "https://keys.app.example/jwks"
        );
        assert_eq!(
            config.auth.authorized_parties(),
            ["https://app.example", "https://www.app.example"]
        );
        assert_eq!(config.auth.audience(), Some("saju"));
    }

    #[test]
    fn an_invalid_auth_value_fails_the_start_naming_its_variable() {
        for (vars, name) in [
            (&[("AUTH_ISSUER", "not a url")][..], "AUTH_ISSUER"),
            (
                &[("AUTH_ISSUER", "http://issuer.example")][..],
                "AUTH_ISSUER",
            ),
            (
                &[
                    ("AUTH_ISSUER", "https://clerk.app.example"),
                    ("AUTH_JWKS_URL", "ftp://keys.example/jwks"),
                ][..],
                "AUTH_JWKS_URL",
            ),
            (
                &[
                    ("AUTH_ISSUER", "https://clerk.app.example"),
                    (
                        "AUTH_AUTHORIZED_PARTIES",
                        "https://app.example,https://ä.example",
                    ),
                ][..],
                "AUTH_AUTHORIZED_PARTIES",
            ),
        ] {
            let vars: &'static [(&'static str, &'static str)] = vars;
            assert_eq!(Config::from_lookup(lookup(vars)).unwrap_err().name, name);
        }
    }
}

use url::Url;

/// Configuration of the HTTP function, read once at cold start.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub common: billing::Config,
    /// Where the customer lands after a successful registration.
    pub app_success_url: Url,
    /// Where the customer lands after a failure, with `?code=…` added.
    pub app_fail_url: Url,
}

impl Config {
    pub(crate) fn from_env() -> Result<Self, billing::ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub(crate) fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, billing::ConfigError> {
        Ok(Self {
            app_success_url: billing::config::url(&lookup, "APP_SUCCESS_URL", None)?,
            app_fail_url: billing::config::url(&lookup, "APP_FAIL_URL", None)?,
            common: billing::Config::from_lookup(lookup)?,
        })
    }
}

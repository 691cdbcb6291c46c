use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// Toss says a billing approval can take up to 60 s; give it a margin.
pub const DEFAULT_CHARGE_TIMEOUT: Duration = Duration::from_secs(65);
/// The least charge timeout a live key accepts (docs/toss-api.md §3.1).
pub const MIN_LIVE_CHARGE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach Toss. `Debug` never shows the secret key.
#[derive(Clone)]
pub struct Config {
    /// `test_sk_…` or `live_sk_…` (an "API 개별 연동 키"; widget keys cannot do billing).
    pub secret_key: SecretString,
    /// `https://api.tosspayments.com` in production; a local server in tests.
    pub api_base: Url,
    /// Whole-request timeout for a charge. At least 60 s with a live key.
    pub charge_timeout: Duration,
    /// Whole-request timeout for issue, lookups, cancel and delete.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Config {
    /// A config with the default timeouts.
    pub fn new(secret_key: SecretString, api_base: Url) -> Self {
        Self {
            secret_key,
            api_base,
            charge_timeout: DEFAULT_CHARGE_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// The secret key without a UTF-8 BOM or surrounding whitespace (a BOM-prefixed key is a
    /// common copy-paste accident that Toss rejects).
    pub(crate) fn trimmed_secret(&self) -> &str {
        trim_key(self.secret_key.expose_secret())
    }
}

pub(crate) fn trim_key(key: &str) -> &str {
    key.trim().trim_start_matches('\u{feff}').trim()
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("secret_key", &"***")
            .field("key_mode", &KeyMode::of(self.trimmed_secret()))
            .field("api_base", &self.api_base.as_str())
            .field("charge_timeout", &self.charge_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Whether a key moves real money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyMode {
    Test,
    Live,
}

impl KeyMode {
    /// `test_sk_` is test and `live_sk_` is live; any other key is test only if it starts with
    /// `test_`, so an unrecognised key is treated as one that moves money.
    pub fn of(secret_key: &str) -> Self {
        if secret_key.starts_with("test_") {
            KeyMode::Test
        } else {
            KeyMode::Live
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_prefix_decides_the_mode_and_unknown_prefixes_count_as_live() {
        assert_eq!(
            KeyMode::of("test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R"),
            KeyMode::Test
        );
        assert_eq!(KeyMode::of("live_sk_abc"), KeyMode::Live);
        assert_eq!(KeyMode::of("test_gsk_docs"), KeyMode::Test);
        assert_eq!(KeyMode::of("sk_whatever"), KeyMode::Live);
        assert_eq!(KeyMode::of(""), KeyMode::Live);
    }

    #[test]
    fn a_bom_and_whitespace_around_the_key_are_stripped() {
        assert_eq!(trim_key("\u{feff}test_sk_abc\n"), "test_sk_abc");
        assert_eq!(trim_key("  \u{feff} live_sk_x "), "live_sk_x");
    }

    #[test]
    fn the_defaults_give_a_charge_more_than_a_minute() {
        let config = Config::new(
            SecretString::from("test_sk_abc"),
            Url::parse("https://api.tosspayments.com").unwrap(),
        );
        assert!(config.charge_timeout >= MIN_LIVE_CHARGE_TIMEOUT);
        assert_eq!(config.request_timeout, Duration::from_secs(15));
        assert_eq!(config.connect_timeout, Duration::from_secs(5));
    }

    #[test]
    fn debug_output_hides_the_secret_key() {
        let config = Config::new(
            SecretString::from("live_sk_verysecret123"),
            Url::parse("https://api.tosspayments.com").unwrap(),
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("verysecret"), "{shown}");
        assert!(shown.contains("Live"), "{shown}");
    }
}

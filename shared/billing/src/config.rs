//! Configuration shared by both functions, parsed once at cold start from a variable lookup
//! (the functions pass the process environment; tests pass a map). A missing or invalid value
//! fails the start naming the variable; the secret key is never echoed.

use std::time::Duration;

use domain::{DunningPolicy, Krw, Plan, PlanError};
use secrecy::SecretString;
use url::Url;

/// A setting that cannot be used; names the variable, never echoes a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub fn new(name: &'static str, problem: impl Into<String>) -> Self {
        Self {
            name,
            problem: problem.into(),
        }
    }
}

use crate::Settings;

/// Everything both functions need to build the billing service.
#[derive(Debug, Clone)]
pub struct Config {
    pub toss: toss::Config,
    pub table_name: String,
    pub settings: Settings,
    /// CloudWatch namespace of the functions' metrics (`METRICS_NAMESPACE`).
    pub metrics_namespace: String,
    /// The KMS key billing keys are sealed under at rest (`BILLING_KEY_KMS_KEY_ID`: key ARN,
    /// id or alias). Unset (local runs): billing keys are stored as they are.
    pub billing_key_kms_key: Option<String>,
}

/// Names the KMS key billing keys are sealed under (see [`Config::billing_key_kms_key`]).
pub const BILLING_KEY_KMS_KEY_ID: &str = "BILLING_KEY_KMS_KEY_ID";

const DEFAULT_API_BASE: &str = "https://api.tosspayments.com";

/// What the table's writes around one charge may take at most (a few round trips, each
/// retried by the SDK), on top of Toss's own timeouts.
const TABLE_SLACK: Duration = Duration::from_secs(10);

impl Config {
    /// The longest one claimed attempt can take to settle: a take-over looks the order up,
    /// sends the charge again and, when that answer is lost, looks it up once more, then
    /// writes the outcome:
    ///
    /// `settle budget = request timeout (look-up) + charge timeout + request timeout (look-up)
    ///  + table slack` = 15 + 65 + 15 + 10 = 105 s with the defaults.
    ///
    /// A sweep stops claiming at least this long before its deadline, and a lease lasts
    /// longer, so that nobody is killed or overtaken in the middle of a charge.
    pub fn settle_budget(&self) -> Duration {
        self.toss.request_timeout * 2 + self.toss.charge_timeout + TABLE_SLACK
    }
}

/// A variable's value, treating an empty one as absent.
pub fn var(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    lookup(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

pub fn required(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<String, ConfigError> {
    var(lookup, name).ok_or_else(|| ConfigError::new(name, "is required"))
}

/// A whole number within `range`, or `default` when unset.
pub fn number<T>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(raw) = var(lookup, name) else {
        return Ok(default);
    };
    raw.parse::<T>()
        .ok()
        .filter(|v| range.contains(v))
        .ok_or_else(|| {
            ConfigError::new(
                name,
                format!(
                    "must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        })
}

/// An absolute http(s) URL.
pub fn url(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: Option<&str>,
) -> Result<Url, ConfigError> {
    let raw = match (var(lookup, name), default) {
        (Some(v), _) => v,
        (None, Some(d)) => d.to_owned(),
        (None, None) => return Err(ConfigError::new(name, "is required")),
    };
    let parsed = Url::parse(&raw).map_err(|_| ConfigError::new(name, "must be an absolute URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ConfigError::new(name, "must be an http(s) URL with a host"));
    }
    Ok(parsed)
}

impl Config {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let secret = required(&lookup, "TOSS_SECRET_KEY")?;
        if !(secret.starts_with("test_sk_") || secret.starts_with("live_sk_")) {
            return Err(ConfigError::new(
                "TOSS_SECRET_KEY",
                "must be an API secret key (test_sk_… or live_sk_…); widget and client keys cannot do billing",
            ));
        }
        let api_base = url(&lookup, "TOSS_API_BASE", Some(DEFAULT_API_BASE))?;
        let table_name = required(&lookup, "TABLE_NAME")?;
        let amount = number(&lookup, "PLAN_AMOUNT", 3900u64, 100..=100_000_000)?;
        let order_name =
            var(&lookup, "PLAN_ORDER_NAME").unwrap_or_else(|| "Pro 월 구독".to_owned());
        let credits = number(&lookup, "PLAN_CREDITS", 30u32, 0..=1_000_000)?;
        let rollover = match var(&lookup, "PLAN_CREDITS_ROLLOVER").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(ConfigError::new(
                    "PLAN_CREDITS_ROLLOVER",
                    "must be true or false",
                ));
            }
        };
        let plan = Plan::new(Krw::new(amount), order_name, credits)
            .map_err(|e| {
                let name = match e {
                    PlanError::AmountBelowMinimum => "PLAN_AMOUNT",
                    PlanError::OrderNameLength | PlanError::OrderNameControl => "PLAN_ORDER_NAME",
                };
                ConfigError::new(name, e.to_string())
            })?
            .with_rollover(rollover);
        let retry_days = |v: &str| {
            DunningPolicy::parse(v)
                .map_err(|e| ConfigError::new("DUNNING_RETRY_DAYS", e.to_string()))
        };
        let dunning = match var(&lookup, "DUNNING_RETRY_DAYS") {
            Some(v) => retry_days(&v)?,
            // An explicitly empty value means "no retries"; unset means the default.
            None if lookup("DUNNING_RETRY_DAYS").is_some() => retry_days("")?,
            None => DunningPolicy::default(),
        };
        let lease_seconds = number(&lookup, "CHARGE_LEASE_SECONDS", 300u32, 1..=3600)?;
        let expiry_hours = number(&lookup, "INCOMPLETE_EXPIRY_HOURS", 24u32, 1..=24 * 90)?;
        let charge_timeout = number(&lookup, "TOSS_CHARGE_TIMEOUT_SECONDS", 65u64, 1..=300)?;
        let withdrawal_days = number(&lookup, "REFUND_WITHDRAWAL_DAYS", 7u32, 0..=365)?;
        let mut toss = toss::Config::new(SecretString::from(secret), api_base);
        toss.charge_timeout = Duration::from_secs(charge_timeout);
        let budget = toss.request_timeout * 2 + toss.charge_timeout + TABLE_SLACK;
        if Duration::from_secs(u64::from(lease_seconds)) <= budget {
            return Err(ConfigError::new(
                "CHARGE_LEASE_SECONDS",
                format!(
                    "must be longer than one charge can take to settle ({} s with these timeouts), or another run could take an attempt over mid-charge",
                    budget.as_secs()
                ),
            ));
        }
        let metrics_namespace =
            var(&lookup, "METRICS_NAMESPACE").unwrap_or_else(|| "TossSubscriptions".to_owned());
        if metrics_namespace.len() > 255
            || !metrics_namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/#:".contains(&b))
        {
            return Err(ConfigError::new(
                "METRICS_NAMESPACE",
                "must be 1 to 255 characters of letters, digits and . _ - / # :",
            ));
        }
        let billing_key_kms_key = var(&lookup, BILLING_KEY_KMS_KEY_ID);
        if billing_key_kms_key
            .as_deref()
            .is_some_and(|key| key.len() > 2048 || key.bytes().any(|b| !b.is_ascii_graphic()))
        {
            return Err(ConfigError::new(
                BILLING_KEY_KMS_KEY_ID,
                "must be a KMS key ARN, key id or alias (visible ASCII, at most 2048 characters)",
            ));
        }
        Ok(Self {
            toss,
            table_name,
            metrics_namespace,
            billing_key_kms_key,
            settings: Settings {
                plan,
                dunning,
                lease: chrono::Duration::seconds(i64::from(lease_seconds)),
                incomplete_expiry: chrono::Duration::hours(i64::from(expiry_hours)),
                withdrawal_days,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    const SECRET: &str = "test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R";

    #[test]
    fn defaults_fill_everything_but_the_key_and_table() {
        let c = Config::from_lookup(lookup(&[("TOSS_SECRET_KEY", SECRET), ("TABLE_NAME", "t")]))
            .unwrap();
        assert_eq!(c.settings.plan.amount(), Krw::new(3900));
        assert_eq!(c.settings.dunning, DunningPolicy::default());
        assert_eq!(c.settings.withdrawal_days, 7);
        assert_eq!(c.toss.api_base.as_str(), "https://api.tosspayments.com/");
        assert!(c.toss.charge_timeout >= Duration::from_secs(60));
    }

    #[test]
    fn a_missing_or_invalid_value_names_its_variable_and_never_echoes_the_secret() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("TABLE_NAME", "t")], "TOSS_SECRET_KEY"),
            (
                &[
                    ("TOSS_SECRET_KEY", "test_gsk_docs_OaPz8L5KdmQXkzRz3y47BMw6"),
                    ("TABLE_NAME", "t"),
                ],
                "TOSS_SECRET_KEY",
            ),
            (&[("TOSS_SECRET_KEY", SECRET)], "TABLE_NAME"),
            (
                &[
                    ("TOSS_SECRET_KEY", SECRET),
                    ("TABLE_NAME", "t"),
                    ("PLAN_AMOUNT", "3900.5"),
                ],
                "PLAN_AMOUNT",
            ),
            (
                &[
                    ("TOSS_SECRET_KEY", SECRET),
                    ("TABLE_NAME", "t"),
                    ("PLAN_AMOUNT", "99"),
                ],
                "PLAN_AMOUNT",
            ),
            (
                &[
                    ("TOSS_SECRET_KEY", SECRET),
                    ("TABLE_NAME", "t"),
                    ("DUNNING_RETRY_DAYS", "5,3"),
                ],
                "DUNNING_RETRY_DAYS",
            ),
            (
                &[
                    ("TOSS_SECRET_KEY", SECRET),
                    ("TABLE_NAME", "t"),
                    ("PLAN_ORDER_NAME", "Pro\n월 구독"),
                ],
                "PLAN_ORDER_NAME",
            ),
            (
                &[
                    ("TOSS_SECRET_KEY", SECRET),
                    ("TABLE_NAME", "t"),
                    ("TOSS_API_BASE", "ftp://x"),
                ],
                "TOSS_API_BASE",
            ),
        ];
        for (vars, name) in cases {
            let err = Config::from_lookup(lookup(vars)).unwrap_err();
            assert_eq!(err.name, *name, "{vars:?}");
            assert!(!err.to_string().contains("zXLkKEyp"), "{err}");
            assert!(!err.to_string().contains("OaPz8L5K"), "{err}");
        }
    }

    #[test]
    fn a_lease_no_longer_than_one_settle_fails_the_start_naming_the_variable() {
        let short = Config::from_lookup(lookup(&[
            ("TOSS_SECRET_KEY", SECRET),
            ("TABLE_NAME", "t"),
            ("CHARGE_LEASE_SECONDS", "105"),
        ]))
        .unwrap_err();
        let enough = Config::from_lookup(lookup(&[
            ("TOSS_SECRET_KEY", SECRET),
            ("TABLE_NAME", "t"),
            ("CHARGE_LEASE_SECONDS", "106"),
        ]))
        .unwrap();

        assert!(
            short.to_string().contains("CHARGE_LEASE_SECONDS"),
            "{short}"
        );
        assert_eq!(enough.settle_budget(), Duration::from_secs(105));
    }

    #[test]
    fn an_explicitly_empty_retry_list_means_no_retries() {
        let c = Config::from_lookup(lookup(&[
            ("TOSS_SECRET_KEY", SECRET),
            ("TABLE_NAME", "t"),
            ("DUNNING_RETRY_DAYS", ""),
        ]))
        .unwrap();
        assert!(c.settings.dunning.retry_days().is_empty());
    }

    #[test]
    fn the_config_debug_output_does_not_show_the_secret_key() {
        let c = Config::from_lookup(lookup(&[("TOSS_SECRET_KEY", SECRET), ("TABLE_NAME", "t")]))
            .unwrap();
        assert!(!format!("{c:?}").contains("zXLkKEyp"));
    }
}

use std::time::Duration;

use billing::config::number;

/// Configuration of the sweep, read once at cold start.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub common: billing::Config,
    /// Charges in flight at once (`CHARGE_CONCURRENCY`).
    pub concurrency: usize,
    /// Stop claiming when less than this is left before the Lambda deadline: at least the
    /// slowest settle of one attempt (`billing::Config::settle_budget`, 105 s by default).
    pub deadline_margin: Duration,
    /// How many times one scheduled sweep may hand its rest to a new invocation
    /// (`SWEEP_MAX_CONTINUATIONS`, 0 = never).
    pub max_continuations: u32,
}

impl Config {
    pub(crate) fn from_env() -> Result<Self, billing::ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub(crate) fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, billing::ConfigError> {
        let concurrency = number(&lookup, "CHARGE_CONCURRENCY", 16usize, 1..=512)?;
        let max_continuations = number(&lookup, "SWEEP_MAX_CONTINUATIONS", 16u32, 0..=96)?;
        let common = billing::Config::from_lookup(&lookup)?;
        // The margin must cover the slowest settle of an attempt claimed just before it
        // (billing::Config::settle_budget); unset, it is exactly that.
        let budget = common.settle_budget();
        let margin = match billing::config::var(&lookup, "DEADLINE_MARGIN_SECONDS") {
            None => budget,
            Some(_) => {
                let margin =
                    Duration::from_secs(number(&lookup, "DEADLINE_MARGIN_SECONDS", 0u64, 0..=600)?);
                if margin < budget {
                    return Err(billing::ConfigError::new(
                        "DEADLINE_MARGIN_SECONDS",
                        format!(
                            "must be at least {} s: the slowest settle of one charge (look-up + charge + look-up + table writes)",
                            budget.as_secs()
                        ),
                    ));
                }
                margin
            }
        };
        Ok(Self {
            concurrency,
            max_continuations,
            deadline_margin: margin,
            common,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, billing::ConfigError> {
        let mut map: HashMap<String, String> = [
            ("TOSS_SECRET_KEY", "test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R"),
            ("TABLE_NAME", "t"),
        ]
        .iter()
        .chain(pairs)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        map.retain(|_, v| !v.is_empty());
        Config::from_lookup(move |k| map.get(k).cloned())
    }

    #[test]
    fn the_deadline_margin_defaults_to_the_slowest_settle_of_one_charge() {
        let c = config(&[]).unwrap();

        assert_eq!(c.deadline_margin, Duration::from_secs(15 + 65 + 15 + 10));
        assert_eq!(c.deadline_margin, c.common.settle_budget());
    }

    #[test]
    fn a_margin_shorter_than_one_settle_fails_the_start_naming_the_variable() {
        let err = config(&[("DEADLINE_MARGIN_SECONDS", "90")]).unwrap_err();
        let longer = config(&[("DEADLINE_MARGIN_SECONDS", "120")]).unwrap();

        assert!(err.to_string().contains("DEADLINE_MARGIN_SECONDS"), "{err}");
        assert_eq!(longer.deadline_margin, Duration::from_secs(120));
    }

    #[test]
    fn a_longer_charge_timeout_raises_the_default_margin_with_it() {
        let c = config(&[
            ("TOSS_CHARGE_TIMEOUT_SECONDS", "120"),
            ("CHARGE_LEASE_SECONDS", "600"),
        ])
        .unwrap();

        assert_eq!(c.deadline_margin, Duration::from_secs(15 + 120 + 15 + 10));
    }
}

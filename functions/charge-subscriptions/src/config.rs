use std::time::Duration;

use billing::config::number;

const RULE_ARN: &str = "SWEEP_RULE_ARN";

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
    /// ARN of this stack's schedule rule (`SWEEP_RULE_ARN`, set by template.yaml): the only
    /// rule whose events start a sweep.
    pub rule_arn: String,
    /// ARN of this stack's settlement rule (`SETTLEMENT_RULE_ARN`): its events run the daily
    /// settlement check. Unset: no event is taken for one.
    pub settlement_rule_arn: Option<String>,
}

impl Config {
    /// The environment, with the Toss secret key read from SSM when `TOSS_SECRET_KEY_PARAMETER`
    /// names a parameter (a deployed stack).
    pub(crate) async fn from_env(
        aws: &aws_config::SdkConfig,
    ) -> Result<Self, billing::ConfigError> {
        let env = |name: &str| std::env::var(name).ok();
        let ssm = billing::secret::Ssm::new(aws_sdk_ssm::Client::new(aws));
        let secret = billing::secret::TossSecret::load(&env, &ssm).await?;
        Self::from_lookup(secret.lookup(env))
    }

    pub(crate) fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, billing::ConfigError> {
        let concurrency = number(&lookup, "CHARGE_CONCURRENCY", 16usize, 1..=512)?;
        let max_continuations = number(&lookup, "SWEEP_MAX_CONTINUATIONS", 16u32, 0..=96)?;
        let rule_arn = billing::config::required(&lookup, RULE_ARN)?;
        if !is_rule_arn(&rule_arn) {
            return Err(billing::ConfigError::new(
                RULE_ARN,
                "must be an EventBridge rule ARN, arn:<partition>:events:<region>:<account>:rule/<name>",
            ));
        }
        let settlement_rule_arn = billing::config::var(&lookup, "SETTLEMENT_RULE_ARN");
        if settlement_rule_arn
            .as_deref()
            .is_some_and(|arn| !is_rule_arn(arn) || arn == rule_arn)
        {
            return Err(billing::ConfigError::new(
                "SETTLEMENT_RULE_ARN",
                "must be an EventBridge rule ARN other than SWEEP_RULE_ARN",
            ));
        }
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
            rule_arn,
            settlement_rule_arn,
            deadline_margin: margin,
            common,
        })
    }
}

/// `arn:<partition>:events:<region>:<account>:rule/<name>` (a rule on the default bus).
fn is_rule_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(
        parts.as_slice(),
        ["arn", partition, "events", region, account, resource]
            if !partition.is_empty()
                && !region.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource.strip_prefix("rule/").is_some_and(|name| !name.is_empty() && !name.contains('/'))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(rule: Option<&'static str>) -> impl Fn(&str) -> Option<String> {
        move |name| match name {
            "TOSS_SECRET_KEY" => Some("test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R".into()),
            "TABLE_NAME" => Some("t".into()),
            RULE_ARN => rule.map(str::to_owned),
            _ => None,
        }
    }

    fn config(pairs: &[(&str, &str)]) -> Result<Config, billing::ConfigError> {
        let map: std::collections::HashMap<String, String> = [
            ("TOSS_SECRET_KEY", "test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R"),
            ("TABLE_NAME", "t"),
            (
                RULE_ARN,
                "arn:aws:events:ap-northeast-2:123456789012:rule/stack-sweep",
            ),
        ]
        .iter()
        .chain(pairs)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
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

    #[test]
    fn the_settlement_rule_is_optional_but_must_be_another_rule_arn() {
        let sweep = "arn:aws:events:ap-northeast-2:123456789012:rule/stack-sweep";
        let settle = "arn:aws:events:ap-northeast-2:123456789012:rule/stack-settlement";

        let unset = config(&[]).unwrap();
        let set = config(&[("SETTLEMENT_RULE_ARN", settle)]).unwrap();
        let same = config(&[("SETTLEMENT_RULE_ARN", sweep)]).unwrap_err();
        let wrong = config(&[("SETTLEMENT_RULE_ARN", "stack-settlement")]).unwrap_err();

        assert_eq!(unset.settlement_rule_arn, None);
        assert_eq!(set.settlement_rule_arn.as_deref(), Some(settle));
        assert_eq!(same.name, "SETTLEMENT_RULE_ARN");
        assert_eq!(wrong.name, "SETTLEMENT_RULE_ARN");
    }

    #[test]
    fn the_schedule_rule_arn_is_required_and_must_be_a_rule_arn() {
        let missing = Config::from_lookup(lookup(None)).unwrap_err();
        let wrong = Config::from_lookup(lookup(Some(
            "arn:aws:lambda:ap-northeast-2:123456789012:function:x",
        )))
        .unwrap_err();
        let ok = Config::from_lookup(lookup(Some(
            "arn:aws:events:ap-northeast-2:123456789012:rule/stack-sweep",
        )))
        .unwrap();

        assert!(missing.to_string().contains(RULE_ARN), "{missing}");
        assert!(wrong.to_string().contains(RULE_ARN), "{wrong}");
        assert_eq!(
            ok.rule_arn,
            "arn:aws:events:ap-northeast-2:123456789012:rule/stack-sweep"
        );
    }
}

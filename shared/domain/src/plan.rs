use crate::Krw;

/// A configuration value that cannot be used; names the variable, never echoes a secret.
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

/// The one plan this deployment sells. The amount charged always comes from here (server
/// configuration), never from a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    amount: Krw,
    order_name: String,
    credits: u32,
    /// Unused credits carry over into the next period (`PLAN_CREDITS_ROLLOVER=true`); by
    /// default a paid period resets the balance to the allowance.
    rollover: bool,
}

impl Plan {
    /// Toss refuses card charges under 100 KRW and order names over 100 characters.
    pub fn new(
        amount: Krw,
        order_name: impl Into<String>,
        credits: u32,
    ) -> Result<Self, ConfigError> {
        let order_name = order_name.into();
        if amount.won() < 100 {
            return Err(ConfigError::new(
                "PLAN_AMOUNT",
                "must be at least 100 KRW (Toss's card minimum)",
            ));
        }
        let chars = order_name.chars().count();
        if order_name.trim().is_empty() || chars > 100 {
            return Err(ConfigError::new(
                "PLAN_ORDER_NAME",
                "must be 1 to 100 characters",
            ));
        }
        if order_name.chars().any(char::is_control) {
            return Err(ConfigError::new(
                "PLAN_ORDER_NAME",
                "must not contain control characters",
            ));
        }
        Ok(Self {
            amount,
            order_name,
            credits,
            rollover: false,
        })
    }

    /// The same plan with unused credits carried over (`true`) or expiring (`false`).
    #[must_use]
    pub fn with_rollover(mut self, rollover: bool) -> Self {
        self.rollover = rollover;
        self
    }

    pub fn credits_roll_over(&self) -> bool {
        self.rollover
    }

    pub fn amount(&self) -> Krw {
        self.amount
    }

    pub fn order_name(&self) -> &str {
        &self.order_name
    }

    pub fn credits(&self) -> u32 {
        self.credits
    }
}

/// Days after the first declined renewal on which it is tried again; after the last one
/// fails the subscription ends. Empty means the first decline ends it (the seed's behaviour).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DunningPolicy {
    retry_days: Vec<u32>,
}

impl DunningPolicy {
    pub fn new(retry_days: Vec<u32>) -> Result<Self, ConfigError> {
        let increasing = retry_days.windows(2).all(|w| w[0] < w[1]);
        if !increasing || retry_days.first() == Some(&0) || retry_days.iter().any(|d| *d > 60) {
            return Err(ConfigError::new(
                "DUNNING_RETRY_DAYS",
                "must be strictly increasing whole days between 1 and 60, e.g. 1,3,5",
            ));
        }
        Ok(Self { retry_days })
    }

    /// Parses `1,3,5` (spaces allowed; an empty string means no retries).
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        if value.trim().is_empty() {
            return Self::new(Vec::new());
        }
        let days = value
            .split(',')
            .map(|d| d.trim().parse::<u32>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                ConfigError::new(
                    "DUNNING_RETRY_DAYS",
                    "must be a comma-separated list of whole days",
                )
            })?;
        Self::new(days)
    }

    pub fn retry_days(&self) -> &[u32] {
        &self.retry_days
    }

    /// Day offset of retry `index` (0-based), if there is one.
    pub fn retry_day(&self, index: usize) -> Option<u32> {
        self.retry_days.get(index).copied()
    }

    /// Days from the first decline until the dunning window closes.
    pub fn window_days(&self) -> u32 {
        self.retry_days.last().copied().unwrap_or(0)
    }
}

impl Default for DunningPolicy {
    fn default() -> Self {
        Self {
            retry_days: vec![1, 3, 5],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_dunning_policy_retries_after_one_three_and_five_days() {
        assert_eq!(DunningPolicy::default().retry_days(), &[1, 3, 5]);
        assert_eq!(
            DunningPolicy::parse(" 1, 3 ,5").unwrap(),
            DunningPolicy::default()
        );
    }

    #[test]
    fn an_empty_retry_list_means_no_retries() {
        let policy = DunningPolicy::parse("").unwrap();
        assert!(policy.retry_days().is_empty());
        assert_eq!(policy.window_days(), 0);
    }

    #[test]
    fn retry_lists_that_are_not_increasing_whole_days_are_refused_naming_the_variable() {
        for bad in ["3,1", "1,1", "0,2", "1.5", "a", "1,,2", "61"] {
            let err = DunningPolicy::parse(bad).unwrap_err();
            assert_eq!(err.name, "DUNNING_RETRY_DAYS", "{bad}");
        }
    }

    #[test]
    fn a_plan_under_tosss_card_minimum_is_refused() {
        assert_eq!(
            Plan::new(Krw::new(99), "Pro", 30).unwrap_err().name,
            "PLAN_AMOUNT"
        );
        assert!(Plan::new(Krw::new(100), "Pro", 30).is_ok());
    }

    #[test]
    fn a_plan_order_name_must_fit_tosss_100_character_limit() {
        assert!(Plan::new(Krw::new(3900), "가".repeat(100), 30).is_ok());
        assert_eq!(
            Plan::new(Krw::new(3900), "가".repeat(101), 30)
                .unwrap_err()
                .name,
            "PLAN_ORDER_NAME"
        );
        assert_eq!(
            Plan::new(Krw::new(3900), "  ", 30).unwrap_err().name,
            "PLAN_ORDER_NAME"
        );
    }
}

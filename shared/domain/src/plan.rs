use crate::Krw;

/// Why a plan cannot be sold. The configuration layer names the setting it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the amount must be at least 100 KRW (Toss's card minimum)")]
    AmountBelowMinimum,
    #[error("the order name must be 1 to 100 characters")]
    OrderNameLength,
    #[error("the order name must not contain control characters")]
    OrderNameControl,
}

/// Why a dunning schedule cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DunningError {
    #[error("retry days must be strictly increasing whole days between 1 and 60, e.g. 1,3,5")]
    NotIncreasing,
    #[error("retry days must be a comma-separated list of whole days")]
    NotAList,
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
    ) -> Result<Self, PlanError> {
        let order_name = order_name.into();
        if amount.won() < 100 {
            return Err(PlanError::AmountBelowMinimum);
        }
        let chars = order_name.chars().count();
        if order_name.trim().is_empty() || chars > 100 {
            return Err(PlanError::OrderNameLength);
        }
        if order_name.chars().any(char::is_control) {
            return Err(PlanError::OrderNameControl);
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
    pub fn new(retry_days: Vec<u32>) -> Result<Self, DunningError> {
        let increasing = retry_days.windows(2).all(|w| w[0] < w[1]);
        if !increasing || retry_days.first() == Some(&0) || retry_days.iter().any(|d| *d > 60) {
            return Err(DunningError::NotIncreasing);
        }
        Ok(Self { retry_days })
    }

    /// Parses `1,3,5` (spaces allowed; an empty string means no retries).
    pub fn parse(value: &str) -> Result<Self, DunningError> {
        if value.trim().is_empty() {
            return Self::new(Vec::new());
        }
        let days = value
            .split(',')
            .map(|d| d.trim().parse::<u32>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| DunningError::NotAList)?;
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
    fn retry_lists_that_are_not_increasing_whole_days_are_refused() {
        for bad in ["3,1", "1,1", "0,2", "61"] {
            assert_eq!(
                DunningPolicy::parse(bad).unwrap_err(),
                DunningError::NotIncreasing,
                "{bad}"
            );
        }
        for bad in ["1.5", "a", "1,,2"] {
            assert_eq!(
                DunningPolicy::parse(bad).unwrap_err(),
                DunningError::NotAList,
                "{bad}"
            );
        }
    }

    #[test]
    fn a_plan_under_tosss_card_minimum_is_refused() {
        assert_eq!(
            Plan::new(Krw::new(99), "Pro", 30).unwrap_err(),
            PlanError::AmountBelowMinimum
        );
        assert!(Plan::new(Krw::new(100), "Pro", 30).is_ok());
    }

    #[test]
    fn a_plan_order_name_must_fit_tosss_100_character_limit() {
        assert!(Plan::new(Krw::new(3900), "가".repeat(100), 30).is_ok());
        assert_eq!(
            Plan::new(Krw::new(3900), "가".repeat(101), 30).unwrap_err(),
            PlanError::OrderNameLength
        );
        assert_eq!(
            Plan::new(Krw::new(3900), "  ", 30).unwrap_err(),
            PlanError::OrderNameLength
        );
        assert_eq!(
            Plan::new(Krw::new(3900), "a\nb", 30).unwrap_err(),
            PlanError::OrderNameControl
        );
    }
}

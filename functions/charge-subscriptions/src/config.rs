use std::time::Duration;

use billing::config::number;

/// Configuration of the sweep, read once at cold start.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub common: billing::Config,
    /// Charges in flight at once (`CHARGE_CONCURRENCY`).
    pub concurrency: usize,
    /// Stop claiming when less than this is left before the Lambda deadline: one charge may
    /// take Toss's full 60 s and its outcome still has to be written.
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
        let margin = number(&lookup, "DEADLINE_MARGIN_SECONDS", 90u64, 0..=600)?;
        let max_continuations = number(&lookup, "SWEEP_MAX_CONTINUATIONS", 16u32, 0..=96)?;
        Ok(Self {
            concurrency,
            max_continuations,
            deadline_margin: Duration::from_secs(margin),
            common: billing::Config::from_lookup(lookup)?,
        })
    }
}

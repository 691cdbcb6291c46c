//! Fault knobs: latency, injected errors, broken bodies, dropped connections, forced declines.
//!
//! Every random choice draws from one RNG seeded by the `seed` knob, so a sequence of requests
//! meets the same faults on every run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// The API endpoints, as fault and latency targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Endpoint {
    /// `POST /v1/billing/authorizations/issue`
    Issue,
    /// `POST /v1/billing/{billingKey}`
    Charge,
    /// `DELETE /v1/billing/{billingKey}`
    DeleteBillingKey,
    /// `GET /v1/payments/{paymentKey}`
    GetPayment,
    /// `GET /v1/payments/orders/{orderId}`
    GetPaymentByOrderId,
    /// `POST /v1/payments/{paymentKey}/cancel`
    Cancel,
    /// `GET /v1/transactions`
    Transactions,
}

impl Endpoint {
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Issue => "issue",
            Endpoint::Charge => "charge",
            Endpoint::DeleteBillingKey => "deleteBillingKey",
            Endpoint::GetPayment => "getPayment",
            Endpoint::GetPaymentByOrderId => "getPaymentByOrderId",
            Endpoint::Cancel => "cancel",
            Endpoint::Transactions => "transactions",
        }
    }

    /// Whether the endpoint needs a billing contract on the key.
    pub fn is_billing(self) -> bool {
        matches!(
            self,
            Endpoint::Issue | Endpoint::Charge | Endpoint::DeleteBillingKey
        )
    }
}

/// A delay distribution in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Latency {
    #[serde(rename_all = "camelCase")]
    Fixed { ms: u64 },
    #[serde(rename_all = "camelCase")]
    Uniform { min_ms: u64, max_ms: u64 },
    /// Normal distribution, clamped at zero.
    #[serde(rename_all = "camelCase")]
    Normal { mean_ms: f64, stddev_ms: f64 },
}

impl Latency {
    pub fn sample(&self, rng: &mut StdRng) -> Duration {
        let ms = match *self {
            Latency::Fixed { ms } => ms,
            Latency::Uniform { min_ms, max_ms } => {
                let (lo, hi) = (min_ms.min(max_ms), min_ms.max(max_ms));
                rng.random_range(lo..=hi)
            }
            Latency::Normal { mean_ms, stddev_ms } => {
                // Box-Muller; `rand` alone has no normal distribution.
                let u1: f64 = rng.random_range(f64::EPSILON..1.0);
                let u2: f64 = rng.random_range(0.0..1.0);
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                let value = mean_ms + stddev_ms * z;
                if value.is_finite() && value > 0.0 {
                    // bounded above by an hour, so the cast cannot overflow
                    value.min(3_600_000.0).round() as u64
                } else {
                    0
                }
            }
        };
        Duration::from_millis(ms)
    }
}

/// Latency per endpoint, falling back to `default`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LatencyConfig {
    pub default: Option<Latency>,
    pub endpoints: BTreeMap<Endpoint, Latency>,
}

impl LatencyConfig {
    pub fn for_endpoint(&self, endpoint: Endpoint) -> Option<Latency> {
        self.endpoints.get(&endpoint).copied().or(self.default)
    }
}

/// What an injected fault does to the response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum FaultAction {
    /// Answer a Toss error body. Code and message default from the catalogue; an unknown
    /// code is sent as is (the way to test "a code the client has never seen").
    #[serde(rename_all = "camelCase")]
    Error {
        #[serde(default)]
        status: Option<u16>,
        code: String,
        #[serde(default)]
        message: Option<String>,
    },
    /// Answer a complete HTTP response whose body is not valid JSON
    /// (default: a JSON object cut in half).
    #[serde(rename_all = "camelCase")]
    MalformedBody {
        #[serde(default)]
        status: Option<u16>,
        #[serde(default)]
        body: Option<String>,
    },
    /// Close the connection without answering anything.
    DropConnection,
    /// Send the status line, headers and part of the body, then close the connection.
    TruncateBody,
}

/// One injected fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// `None` (or omitted) matches every endpoint.
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
    /// Chance in `0.0..=1.0` that a matching request meets this fault.
    #[serde(default = "one")]
    pub probability: f64,
    /// Fire at most this many times (`None`: no limit). Decremented as it fires.
    #[serde(default)]
    pub times: Option<u32>,
    /// `true`: the request is carried out (charge approved, key issued, payment cancelled)
    /// before the fault replaces the answer. `false`: nothing happens.
    #[serde(default)]
    pub commit: bool,
    /// Only requests whose JSON body has this `customerKey`.
    #[serde(default)]
    pub customer_key: Option<String>,
    /// Only requests whose JSON body has this `orderId` (for a look-up by order id: whose path).
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(flatten)]
    pub action: FaultAction,
}

fn one() -> f64 {
    1.0
}

/// Latency plus injected faults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultConfig {
    pub latency: LatencyConfig,
    pub rules: Vec<FaultRule>,
}

/// Force a code on a customer's charges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeclineRule {
    pub customer_key: String,
    pub code: String,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub message: Option<String>,
    /// Apply to this many charges, then stop (`None`: until removed).
    #[serde(default)]
    pub times: Option<u32>,
}

/// The facts of a request a fault rule can match on.
#[derive(Debug, Clone, Copy)]
pub struct FaultTarget<'a> {
    pub endpoint: Endpoint,
    pub customer_key: Option<&'a str>,
    pub order_id: Option<&'a str>,
}

/// Live fault state: the rules with their remaining counts, and the seeded RNG.
#[derive(Debug)]
pub struct Faults {
    pub seed: u64,
    pub config: FaultConfig,
    rng: StdRng,
}

impl Faults {
    pub fn new(seed: u64, config: FaultConfig) -> Self {
        Self {
            seed,
            config,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    pub fn reseed(&mut self, seed: u64) {
        self.seed = seed;
        self.rng = StdRng::seed_from_u64(seed);
    }

    pub fn latency(&mut self, endpoint: Endpoint) -> Option<Duration> {
        let latency = self.config.latency.for_endpoint(endpoint)?;
        Some(latency.sample(&mut self.rng))
    }

    /// The first matching rule that fires for this request, if any. Each matching rule
    /// with a probability below 1 draws one number.
    pub fn draw(&mut self, target: FaultTarget<'_>) -> Option<FaultRule> {
        for rule in &mut self.config.rules {
            if rule.endpoint.is_some_and(|e| e != target.endpoint)
                || rule.times == Some(0)
                || !matches_filter(rule.customer_key.as_deref(), target.customer_key)
                || !matches_filter(rule.order_id.as_deref(), target.order_id)
            {
                continue;
            }
            let fires = if rule.probability >= 1.0 {
                true
            } else if rule.probability <= 0.0 {
                false
            } else {
                self.rng.random_bool(rule.probability)
            };
            if fires {
                if let Some(times) = rule.times.as_mut() {
                    *times -= 1;
                }
                return Some(rule.clone());
            }
        }
        None
    }
}

fn matches_filter(wanted: Option<&str>, actual: Option<&str>) -> bool {
    match wanted {
        None => true,
        Some(wanted) => actual == Some(wanted),
    }
}

/// Lets a handler ask for its connection to be closed without an answer (the `dropConnection`
/// fault); the server's accept loop holds the other end.
#[derive(Debug, Clone, Default)]
pub struct ConnectionKill(Arc<Notify>);

impl ConnectionKill {
    pub fn fire(&self) {
        self.0.notify_one();
    }

    pub(crate) async fn fired(&self) {
        self.0.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(probability: f64, times: Option<u32>) -> FaultRule {
        FaultRule {
            endpoint: Some(Endpoint::Charge),
            probability,
            times,
            commit: false,
            customer_key: None,
            order_id: None,
            action: FaultAction::DropConnection,
        }
    }

    fn charge() -> FaultTarget<'static> {
        FaultTarget {
            endpoint: Endpoint::Charge,
            customer_key: None,
            order_id: None,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_sequence_of_faults() {
        let config = FaultConfig {
            rules: vec![rule(0.5, None)],
            ..FaultConfig::default()
        };
        let run = |seed| {
            let mut faults = Faults::new(seed, config.clone());
            (0..64)
                .map(|_| faults.draw(charge()).is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn a_rule_with_a_count_stops_firing_when_used_up() {
        let config = FaultConfig {
            rules: vec![rule(1.0, Some(2))],
            ..FaultConfig::default()
        };
        let mut faults = Faults::new(1, config);
        let fired: Vec<bool> = (0..4).map(|_| faults.draw(charge()).is_some()).collect();
        assert_eq!(fired, [true, true, false, false]);
    }

    #[test]
    fn a_rule_for_another_endpoint_does_not_fire() {
        let config = FaultConfig {
            rules: vec![rule(1.0, None)],
            ..FaultConfig::default()
        };
        let mut faults = Faults::new(1, config);
        let target = FaultTarget {
            endpoint: Endpoint::Cancel,
            ..charge()
        };
        assert!(faults.draw(target).is_none());
    }

    #[test]
    fn uniform_latency_stays_within_its_bounds() {
        let mut rng = StdRng::seed_from_u64(3);
        let latency = Latency::Uniform {
            min_ms: 10,
            max_ms: 20,
        };
        for _ in 0..100 {
            let ms = latency.sample(&mut rng).as_millis();
            assert!((10..=20).contains(&ms), "{ms}");
        }
    }

    #[test]
    fn normal_latency_is_never_negative_and_centres_on_the_mean() {
        let mut rng = StdRng::seed_from_u64(3);
        let latency = Latency::Normal {
            mean_ms: 100.0,
            stddev_ms: 10.0,
        };
        let samples: Vec<u128> = (0..1000)
            .map(|_| latency.sample(&mut rng).as_millis())
            .collect();
        let mean = samples.iter().sum::<u128>() / 1000;
        assert!((95..=105).contains(&mean), "{mean}");
    }

    #[test]
    fn a_fault_rule_reads_from_flat_json() {
        let rule: FaultRule = serde_json::from_value(serde_json::json!({
            "endpoint": "charge", "kind": "error", "status": 500,
            "code": "FAILED_INTERNAL_SYSTEM_PROCESSING", "commit": true
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(rule.commit);
        assert_eq!(rule.probability, 1.0);
        assert!(matches!(
            rule.action,
            FaultAction::Error {
                status: Some(500),
                ..
            }
        ));
    }
}
